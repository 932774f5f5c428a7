// RUN: moe-opt %s --moe-autodiff --moe-mixed-precision | FileCheck %s
// RUN: moe-opt %s --moe-autodiff --moe-mixed-precision --moe-mixed-precision | FileCheck %s
// RUN: not moe-opt %s --moe-autodiff --moe-mixed-precision --moe-autodiff=gradient-function=again 2>&1 | FileCheck %s --check-prefix=ORDER
// RUN: moe-opt %s --moe-autodiff --moe-mixed-precision --moe-cost-model -o /dev/null 2>&1 | FileCheck %s --check-prefix=COST
// RUN: not moe-opt %s --moe-autodiff --moe-mixed-precision --moe-mixed-precision=weight-copies=per-step 2>&1 | FileCheck %s --check-prefix=OTHER-COPIES

// The cost model prices the conversions as memory-bound ops.
// COST: layer 0 forward: gemm {{[1-9][0-9]*}} flops

// Again with other options: the copies made stay, so it is refused (the
// module would record settings its program does not have).
// OTHER-COPIES: error: moe-mixed-precision: the module was already transformed with 'dtype=bf16 weight-copies=per-gemm'; running it again with 'dtype=bf16 weight-copies=per-step' would not undo that

// moe-autodiff differentiates the f32 program, before mixed precision.
// ORDER: error: moe-autodiff differentiates f32 and f64 programs; run moe-mixed-precision after it

// Two linear layers (one weight) feeding a MoE block. Every activation a
// GEMM reads is narrowed once, right after its definition, and the forward
// and backward GEMMs share the copy; the router, its gradient GEMMs and
// everything else stay f32; every gradient is f32. Running the pass twice
// changes nothing.

ml_program.global private mutable @w_in : tensor<8x8xf32> {moe.init = #moe.init<normal, 0.3>, moe.trainable}
ml_program.global private mutable @w_router : tensor<4x8xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
ml_program.global private mutable @w1 : tensor<4x6x8xf32> {moe.init = #moe.init<normal, 0.3>, moe.trainable}
ml_program.global private mutable @w3 : tensor<4x6x8xf32> {moe.init = #moe.init<normal, 0.3>, moe.trainable}
ml_program.global private mutable @w2 : tensor<4x8x6xf32> {moe.init = #moe.init<normal, 0.3>, moe.trainable}

// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[X:[^:]*]]: tensor<16x8xf32>
// CHECK-SAME: -> (tensor<f32> {moe.output = "loss"}, tensor<8x8xf32> {moe.output = "w_in.grad"}, tensor<4x8xf32> {moe.output = "w_router.grad"}, tensor<4x6x8xf32> {moe.output = "w1.grad"}, tensor<4x6x8xf32> {moe.output = "w3.grad"}, tensor<4x8x6xf32> {moe.output = "w2.grad"})
// CHECK-NEXT: %[[XB:.*]] = arith.truncf %[[X]] : tensor<16x8xf32> to tensor<16x8xbf16>
// CHECK-NEXT: %[[WIN:.*]] = ml_program.global_load @w_in
// A weight is narrowed right before each GEMM that reads it.
// CHECK-NEXT: %[[WINB0:.*]] = arith.truncf %[[WIN]] {moe.layer = 0 : i64} : tensor<8x8xf32> to tensor<8x8xbf16>
// CHECK-NEXT: %[[H0:.*]] = moe.linear %[[XB]], %[[WINB0]] {moe.layer = 0 : i64} : tensor<16x8xbf16>, tensor<8x8xbf16> -> tensor<16x8xf32>
// CHECK-NEXT: %[[H0B:.*]] = arith.truncf %[[H0]] {moe.layer = 0 : i64} : tensor<16x8xf32> to tensor<16x8xbf16>
// CHECK-NEXT: %[[WINB1:.*]] = arith.truncf %[[WIN]] {moe.layer = 0 : i64} : tensor<8x8xf32> to tensor<8x8xbf16>
// CHECK-NEXT: %[[H:.*]] = moe.linear %[[H0B]], %[[WINB1]] {moe.layer = 0 : i64} : tensor<16x8xbf16>, tensor<8x8xbf16> -> tensor<16x8xf32>
// CHECK-NEXT: %[[WR:.*]] = ml_program.global_load @w_router
// CHECK-NEXT: %[[Z:.*]] = moe.router %[[H]], %[[WR]] {{.*}}: tensor<16x8xf32>, tensor<4x8xf32> -> tensor<16x4xf32>
// CHECK: %[[BUF:.*]], %{{.*}}, %{{.*}} = moe.dispatch %[[H]], {{.*}} -> tensor<4x8x8xf32>
// CHECK-NEXT: %[[BUFB:.*]] = arith.truncf %[[BUF]] {moe.layer = 0 : i64} : tensor<4x8x8xf32> to tensor<4x8x8xbf16>
// CHECK: %[[W1B:.*]] = arith.truncf %{{.*}} : tensor<4x6x8xf32> to tensor<4x6x8xbf16>
// CHECK-NEXT: %[[W3B:.*]] = arith.truncf %{{.*}} : tensor<4x6x8xf32> to tensor<4x6x8xbf16>
// CHECK-NEXT: %[[W2B:.*]] = arith.truncf %{{.*}} : tensor<4x8x6xf32> to tensor<4x8x6xbf16>
// The experts keep their projections in bf16.
// CHECK-NEXT: %{{.*}}, %[[PROJ:.*]] = moe.expert_ffn %[[BUFB]], %[[W1B]], %[[W3B]], %[[W2B]] {moe.layer = 0 : i64} : tensor<4x8x8xbf16>, tensor<4x6x8xbf16>, tensor<4x8x6xbf16> -> tensor<4x2x8x6xbf16>
// The backward GEMMs read the forward's bf16 activations and bf16 copies of
// the cotangents; their gradients are f32.
// CHECK: %[[DOUT:.*]], %{{.*}} = moe.combine_grad
// CHECK-NEXT: %[[DOUTB:.*]] = arith.truncf %[[DOUT]] {moe.layer = 0 : i64} : tensor<4x8x8xf32> to tensor<4x8x8xbf16>
// CHECK-NEXT: %[[W1G:.*]] = arith.truncf
// CHECK-NEXT: %[[W3G:.*]] = arith.truncf
// CHECK-NEXT: %[[W2G:.*]] = arith.truncf
// CHECK-NEXT: moe.expert_ffn_grad %[[BUFB]], %[[W1G]], %[[W3G]], %[[W2G]], %[[PROJ]], %[[DOUTB]] {moe.layer = 0 : i64} : tensor<4x8x8xbf16>, tensor<4x6x8xbf16>, tensor<4x8x6xbf16>, tensor<4x2x8x6xbf16>
// The router's gradient GEMMs stay f32.
// CHECK: %[[DZ:.*]] = moe.gate_grad
// CHECK-NEXT: moe.linear_input_grad %[[DZ]], %[[WR]] {moe.layer = 0 : i64} : tensor<16x4xf32>, tensor<4x8xf32> -> tensor<16x8xf32>
// CHECK-NEXT: moe.linear_weight_grad %[[DZ]], %[[H]] {moe.layer = 0 : i64} : tensor<16x4xf32>, tensor<16x8xf32> -> tensor<4x8xf32>
// CHECK: %[[DH:.*]] = moe.add
// CHECK-NEXT: %[[DHB:.*]] = arith.truncf %[[DH]] : tensor<16x8xf32> to tensor<16x8xbf16>
// CHECK-NEXT: %[[WING:.*]] = arith.truncf %[[WIN]] {moe.layer = 0 : i64} : tensor<8x8xf32> to tensor<8x8xbf16>
// CHECK-NEXT: %[[DH0:.*]] = moe.linear_input_grad %[[DHB]], %[[WING]] {moe.layer = 0 : i64} : tensor<16x8xbf16>, tensor<8x8xbf16> -> tensor<16x8xf32>
// CHECK-NEXT: %[[DH0B:.*]] = arith.truncf %[[DH0]] {moe.layer = 0 : i64} : tensor<16x8xf32> to tensor<16x8xbf16>
// CHECK-NEXT: moe.linear_weight_grad %[[DHB]], %[[H0B]] {moe.layer = 0 : i64} : tensor<16x8xbf16>, tensor<16x8xbf16> -> tensor<8x8xf32>
// CHECK-NEXT: moe.linear_weight_grad %[[DH0B]], %[[XB]] {moe.layer = 0 : i64} : tensor<16x8xbf16>, tensor<16x8xbf16> -> tensor<8x8xf32>
// CHECK-NOT: truncf
// CHECK: return

func.func @forward(%x: tensor<16x8xf32>) -> (tensor<f32> {moe.output = "loss"}) {
  %w_in = ml_program.global_load @w_in : tensor<8x8xf32>
  %h0 = moe.linear %x, %w_in {moe.layer = 0 : i64} : tensor<16x8xf32>, tensor<8x8xf32> -> tensor<16x8xf32>
  %h = moe.linear %h0, %w_in {moe.layer = 0 : i64} : tensor<16x8xf32>, tensor<8x8xf32> -> tensor<16x8xf32>
  %wr = ml_program.global_load @w_router : tensor<4x8xf32>
  %z = moe.router %h, %wr {moe.layer = 0 : i64} : tensor<16x8xf32>, tensor<4x8xf32> -> tensor<16x4xf32>
  %p, %w, %i = moe.gate %z top_k = 2 {moe.layer = 0 : i64} : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  %buf, %slots, %dropped = moe.dispatch %h, %i capacity_factor = 1.0 {moe.layer = 0 : i64} : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x8x8xf32>, tensor<16x2xi32>, tensor<i64>
  %w1 = ml_program.global_load @w1 : tensor<4x6x8xf32>
  %w3 = ml_program.global_load @w3 : tensor<4x6x8xf32>
  %w2 = ml_program.global_load @w2 : tensor<4x8x6xf32>
  %y, %y_proj = moe.expert_ffn %buf, %w1, %w3, %w2 {moe.layer = 0 : i64} : tensor<4x8x8xf32>, tensor<4x6x8xf32>, tensor<4x8x6xf32> -> tensor<4x2x8x6xf32>
  %out = moe.combine %y, %w, %i, %slots {moe.layer = 0 : i64} : tensor<4x8x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x2xi32> -> tensor<16x8xf32>
  %sum = moe.add %out, %h : tensor<16x8xf32>
  %t = arith.constant dense<[1, 2, 3, 0, 5, 6, 7, 4, 1, 2, 3, 0, 5, 6, 7, 4]> : tensor<16xi32>
  %loss = moe.cross_entropy %sum, %t : tensor<16x8xf32>, tensor<16xi32> -> tensor<f32>
  return %loss : tensor<f32>
}

