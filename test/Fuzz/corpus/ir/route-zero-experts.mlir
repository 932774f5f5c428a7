func.func @f(%i: tensor<4x0xi32>) -> tensor<4x0xi32> {
  %s, %c, %d = moe.route %i experts = 0 capacity_factor = 1.25 : tensor<4x0xi32> -> tensor<4x0xi32>, tensor<1x0xi64>, tensor<i64>
  return %s : tensor<4x0xi32>
}
