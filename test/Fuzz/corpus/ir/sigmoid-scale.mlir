func.func @f(%x: tensor<4x8xf32>, %g: tensor<4x1xf32>, %dy: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x1xf32>) {
  %s = moe.sigmoid_scale %x, %g : tensor<4x8xf32>, tensor<4x1xf32>
  %dx, %dg = moe.sigmoid_scale_grad %x, %g, %dy : tensor<4x8xf32>, tensor<4x1xf32>
  return %s, %dx, %dg : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x1xf32>
}
