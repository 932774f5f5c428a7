// RUN: not moe-opt %s --moe-autodiff --moe-optimizer 2>&1 | FileCheck %s

// One learning rate, gradient norm and step serve every parameter, so
// they share one element type; an f32 and an f64 one failed inside the
// optimizer's own ops ('moe.global_norm' op 'tensors' #1 must have ...).
// CHECK: error: moe-optimizer: trainable globals of two element types: @v is 'tensor<4xf64>', @w 'tensor<4xf32>'
module {
  ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}
  ml_program.global private mutable @v : tensor<4xf64> {moe.init = #moe.init<normal, 0.02>, moe.trainable}
  func.func @forward(%x: tensor<4xf32> {moe.input = "x"}, %y: tensor<4xf64> {moe.input = "y"}) -> (tensor<f32> {moe.output = "loss"}, tensor<4xf64> {moe.output = "other"}) {
    %w = ml_program.global_load @w : tensor<4xf32>
    %v = ml_program.global_load @v : tensor<4xf64>
    %0 = moe.mul %x, %w : tensor<4xf32>
    %1 = moe.mul %y, %v : tensor<4xf64>
    %e = tensor.expand_shape %0 [[0, 1]] output_shape [1, 4] : tensor<4xf32> into tensor<1x4xf32>
    %l = arith.constant dense<[2]> : tensor<1xi32>
    %ce = moe.cross_entropy %e, %l : tensor<1x4xf32>, tensor<1xi32> -> tensor<f32>
    return %ce, %1 : tensor<f32>, tensor<4xf64>
  }
}
