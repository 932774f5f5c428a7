func.func @f(%x: tensor<2x8xf32>) -> tensor<2x2x4xf32> {
  %e = tensor.expand_shape %x [[0], [1, 2]] output_shape [2, 2, 4] : tensor<2x8xf32> into tensor<2x2x4xf32>
  %c = tensor.collapse_shape %e [[0], [1, 2]] : tensor<2x2x4xf32> into tensor<2x8xf32>
  return %e : tensor<2x2x4xf32>
}
