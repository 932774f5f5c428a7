func.func @layer(%x: tensor<16x8xf32>, %wg: tensor<4x8xf32>, %w1: tensor<4x12x8xf32>, %w3: tensor<4x12x8xf32>, %w2: tensor<4x8x12xf32>) -> tensor<16x8xf32> {
  %z = moe.router %x, %wg : tensor<16x8xf32>, tensor<4x8xf32> -> tensor<16x4xf32>
  %p, %w, %i = moe.gate %z top_k = 2 renormalize : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  %buf, %slots, %dropped = moe.dispatch %x, %i capacity_factor = 1.25 : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x10x8xf32>, tensor<16x2xi32>, tensor<i64>
  %y, %proj = moe.expert_ffn %buf, %w1, %w3, %w2 : tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32> -> tensor<4x2x10x12xf32>
  %out = moe.combine %y, %w, %i, %slots : tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x2xi32> -> tensor<16x8xf32>
  return %out : tensor<16x8xf32>
}
