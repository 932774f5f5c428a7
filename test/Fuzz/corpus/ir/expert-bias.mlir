func.func @f(%z: tensor<16x4xf32>, %b: tensor<4xf32>, %dp: tensor<16x4xf32>, %dw: tensor<16x2xf32>) -> (tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x4xf32>, tensor<4xf32>) {
  %p, %w, %i = moe.gate %z bias %b top_k = 2 scoring = sigmoid renormalize : tensor<16x4xf32>, tensor<4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  %dz = moe.gate_grad %z, %i, %dp, %dw scoring = sigmoid renormalize : tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x2xf32>
  %load = moe.expert_load %i : tensor<16x2xi32> -> tensor<4xi64>
  %b1 = moe.expert_bias_update %b, %load rate = 1.0e-03 : tensor<4xf32>, tensor<4xi64>
  return %p, %w, %dz, %b1 : tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x4xf32>, tensor<4xf32>
}
