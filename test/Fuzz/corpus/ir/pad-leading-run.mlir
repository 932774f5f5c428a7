func.func @f(%x: tensor<2x3xf32>) -> tensor<3x3xf32> {
  %p = tensor.pad %x low[0, 0] high[2, 0] {
  ^bb0(%i: index, %j: index):
    %zero = arith.constant 0.0 : f32
    tensor.yield %zero : f32
  } : tensor<2x3xf32> to tensor<4x3xf32>
  %r = tensor.extract_slice %p[0, 0] [3, 3] [1, 1] : tensor<4x3xf32> to tensor<3x3xf32>
  return %r : tensor<3x3xf32>
}
