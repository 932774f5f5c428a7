func.func @f(%i: tensor<4611686018427387904x4xi32>) -> tensor<4611686018427387904x4xi32> {
  %s, %c, %d = moe.route %i experts = 4 capacity_factor = 1.0e-300 : tensor<4611686018427387904x4xi32> -> tensor<4611686018427387904x4xi32>, tensor<1x4xi64>, tensor<i64>
  return %s : tensor<4611686018427387904x4xi32>
}
