// RUN: moe-opt %s --moe-autodiff | FileCheck %s
// RUN: moe-opt %s --moe-autodiff="function=forward gradient-function=grads" | FileCheck %s --check-prefix=NAMED
// RUN: moe-opt %s --moe-autodiff=cotangent-argument=true | FileCheck %s --check-prefix=COTANGENT

// A one-layer MoE block with its aux loss scaled by the layer's coefficient:
// the gradient function returns the loss and one gradient per trainable
// global (in declaration order), none for the coefficient (state).

ml_program.global private mutable @w_router : tensor<4x8xf64> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
ml_program.global private mutable @w1 : tensor<4x6x8xf64> {moe.init = #moe.init<normal, 0.3>, moe.trainable}
ml_program.global private mutable @w3 : tensor<4x6x8xf64> {moe.init = #moe.init<normal, 0.3>, moe.trainable}
ml_program.global private mutable @w2 : tensor<4x8x6xf64> {moe.init = #moe.init<normal, 0.3>, moe.trainable}
ml_program.global private mutable @norm : tensor<8xf64> {moe.init = #moe.init<constant, 1.0>, moe.trainable}
ml_program.global private mutable @unused : tensor<3xf64> {moe.init = #moe.init<constant, 1.0>, moe.trainable}
ml_program.global private mutable @coeff : tensor<f64> {moe.init = #moe.init<constant, 0.01>}

// CHECK-LABEL: func.func @forward(
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[X:.*]]: tensor<16x8xf64>
// CHECK-SAME: -> (tensor<f64> {moe.output = "loss"}, tensor<4x8xf64> {moe.output = "w_router.grad"}, tensor<4x6x8xf64> {moe.output = "w1.grad"}, tensor<4x6x8xf64> {moe.output = "w3.grad"}, tensor<4x8x6xf64> {moe.output = "w2.grad"}, tensor<8xf64> {moe.output = "norm.grad"}, tensor<3xf64> {moe.output = "unused.grad"})
// CHECK: %{{.*}}, %[[PROJ:.*]] = moe.expert_ffn
// CHECK: %[[COEFF:.*]] = ml_program.global_load @coeff
// CHECK: %[[LOSS:.*]] = moe.add
// CHECK: %[[ONE:.*]] = arith.constant dense<1.000000e+00> : tensor<f64>
// The aux loss gets the loss's gradient times the coefficient.
// CHECK: %[[DAUX:.*]] = moe.mul %[[ONE]], %[[COEFF]] : tensor<f64>
// CHECK: %[[DPROBS:.*]] = moe.aux_loss_grad skywork %{{.*}}, %{{.*}}, %[[DAUX]]
// CHECK: %[[DOUT:.*]], %[[DW:.*]] = moe.combine_grad
// The backward reads the projections the forward kept.
// CHECK: %[[DIN:.*]], %[[DW1:.*]], %[[DW3:.*]], %[[DW2:.*]] = moe.expert_ffn_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[PROJ]], %[[DOUT]]
// CHECK: %[[DTOK:.*]] = moe.dispatch_grad %[[DIN]]
// CHECK: %[[DLOGITS:.*]] = moe.gate_grad %{{.*}}, %{{.*}}, %[[DPROBS]], %[[DW]] norm_lambda = 1.000000e+00 renormalize
// CHECK: moe.linear_input_grad %[[DLOGITS]]
// CHECK: %[[DR2:.*]] = moe.linear_weight_grad %[[DLOGITS]], %{{.*}} : tensor<16x4xf64>, tensor<16x8xf64> -> tensor<4x8xf64>
// The token gradients of dispatch and of the router add up before the norm,
// and so do the two uses of the router weight.
// CHECK: %[[DX:.*]] = moe.add %[[DTOK]], %{{.*}} : tensor<16x8xf64>
// CHECK: %[[DROUTER:.*]] = moe.add %{{.*}}, %[[DR2]] : tensor<4x8xf64>
// CHECK: %{{.*}}, %[[DNORM:.*]] = moe.rms_norm_grad %[[X]], %{{.*}}, %[[DX]] eps = 1.000000e-05
// An unused parameter gets zeros.
// CHECK: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : tensor<3xf64>
// CHECK: return %[[LOSS]], %[[DROUTER]], %[[DW1]], %[[DW3]], %[[DW2]], %[[DNORM]], %[[ZERO]]

// With cotangent-argument, the seed is a last argument named "cotangent";
// the forward's arguments keep their places (and no name).
// COTANGENT-LABEL: func.func @train_step(
// COTANGENT-SAME: %{{[^:]*}}: tensor<16x8xf64>, %{{[^:]*}}: tensor<16x4xf64>, %{{[^:]*}}: tensor<f64> {moe.input = "cotangent"}) ->

// NAMED: func.func @forward(
// NAMED: func.func @grads(
func.func @forward(%x: tensor<16x8xf64>, %target: tensor<16x4xf64>) -> (tensor<f64> {moe.output = "loss"}) {
  %norm = ml_program.global_load @norm : tensor<8xf64>
  %h = moe.rms_norm %x, %norm eps = 1.0e-05 : tensor<16x8xf64>, tensor<8xf64>
  %wr = ml_program.global_load @w_router : tensor<4x8xf64>
  %z = moe.router %h, %wr : tensor<16x8xf64>, tensor<4x8xf64> -> tensor<16x4xf64>
  %p, %w, %i = moe.gate %z top_k = 2 norm_lambda = 1.0 renormalize : tensor<16x4xf64> -> tensor<16x4xf64>, tensor<16x2xf64>, tensor<16x2xi32>
  %buf, %slots, %dropped = moe.dispatch %h, %i capacity_factor = 1.0 : tensor<16x8xf64>, tensor<16x2xi32> -> tensor<4x8x8xf64>, tensor<16x2xi32>, tensor<i64>
  %w1 = ml_program.global_load @w1 : tensor<4x6x8xf64>
  %w3 = ml_program.global_load @w3 : tensor<4x6x8xf64>
  %w2 = ml_program.global_load @w2 : tensor<4x8x6xf64>
  %y, %y_proj = moe.expert_ffn %buf, %w1, %w3, %w2 : tensor<4x8x8xf64>, tensor<4x6x8xf64>, tensor<4x8x6xf64> -> tensor<4x2x8x6xf64>
  %out = moe.combine %y, %w, %i, %slots : tensor<4x8x8xf64>, tensor<16x2xf64>, tensor<16x2xi32>, tensor<16x2xi32> -> tensor<16x8xf64>
  %proj = moe.router %out, %wr : tensor<16x8xf64>, tensor<4x8xf64> -> tensor<16x4xf64>
  %diff = moe.mul %proj, %target : tensor<16x4xf64>
  %t = arith.constant dense<[[1], [2], [3], [0], [1], [2], [3], [0], [1], [2], [3], [0], [1], [2], [3], [0]]> : tensor<16x1xi32>
  %flat = tensor.collapse_shape %t [[0, 1]] : tensor<16x1xi32> into tensor<16xi32>
  %ce = moe.cross_entropy %diff, %flat : tensor<16x4xf64>, tensor<16xi32> -> tensor<f64>
  %aux = moe.aux_loss skywork %p, %i : tensor<16x4xf64>, tensor<16x2xi32> -> tensor<f64>
  %coeff = ml_program.global_load @coeff : tensor<f64>
  %scaled = moe.mul %aux, %coeff : tensor<f64>
  %loss = moe.add %ce, %scaled : tensor<f64>
  return %loss : tensor<f64>
}
