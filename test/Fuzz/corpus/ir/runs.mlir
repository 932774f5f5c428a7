func.func @runs(%i: tensor<16x2xi32>, %r: tensor<4x8x8xf32>) -> tensor<4x8x8xf32> {
  %slots, %counts, %dropped = moe.route %i experts = 4 ranks = 2 dropless : tensor<16x2xi32> -> tensor<16x2xi32>, tensor<2x4xi64>, tensor<i64>
  %mine = tensor.extract_slice %counts[0, 0] [2, 2] [1, 1] : tensor<2x4xi64> to tensor<2x2xi64>
  %queue = moe.merge_runs %r, %mine : tensor<4x8x8xf32>, tensor<2x2xi64> -> tensor<2x16x8xf32>
  %back = moe.split_runs %queue, %mine : tensor<2x16x8xf32>, tensor<2x2xi64> -> tensor<4x8x8xf32>
  return %back : tensor<4x8x8xf32>
}
