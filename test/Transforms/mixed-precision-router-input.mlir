// RUN: moe-opt %s --moe-autodiff --moe-mixed-precision | FileCheck %s

// A router and a linear layer read one input that has no gradient (an
// argument), so no cotangent tells the router's weight gradient apart, and
// neither does the input, which the linear reads too. The linear's weight
// gradient is narrowed like every linear's: its GEMM reads bf16 copies of
// the logits' cotangent and of the input.

ml_program.global private mutable @w_in : tensor<8x8xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
ml_program.global private mutable @w_router : tensor<4x8xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}

// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[X:[^:]*]]: tensor<16x8xf32>
// CHECK: %[[XB:.*]] = arith.truncf %[[X]] : tensor<16x8xf32> to tensor<16x8xbf16>
// CHECK: moe.linear_weight_grad %{{.*}}, %[[XB]] : tensor<16x8xbf16>, tensor<16x8xbf16> -> tensor<8x8xf32>
func.func @forward(%x: tensor<16x8xf32>, %t: tensor<16xi32>, %e: tensor<16xi32>) -> (tensor<f32> {moe.output = "loss"}) {
  %win = ml_program.global_load @w_in : tensor<8x8xf32>
  %h = moe.linear %x, %win : tensor<16x8xf32>, tensor<8x8xf32> -> tensor<16x8xf32>
  %wr = ml_program.global_load @w_router : tensor<4x8xf32>
  %z = moe.router %x, %wr : tensor<16x8xf32>, tensor<4x8xf32> -> tensor<16x4xf32>
  %ce = moe.cross_entropy %h, %t : tensor<16x8xf32>, tensor<16xi32> -> tensor<f32>
  %routing = moe.cross_entropy %z, %e : tensor<16x4xf32>, tensor<16xi32> -> tensor<f32>
  %loss = moe.add %ce, %routing : tensor<f32>
  return %loss : tensor<f32>
}
