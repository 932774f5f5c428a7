func.func @f(%r: tensor<4x8x8xf32>, %c: tensor<4294967296x4294967296xi64>) -> tensor<4294967296x16x8xf32> {
  %q = moe.merge_runs %r, %c : tensor<4x8x8xf32>, tensor<4294967296x4294967296xi64> -> tensor<4294967296x16x8xf32>
  return %q : tensor<4294967296x16x8xf32>
}
