func.func @f(%x: tensor<4x8xf32>, %i: tensor<4x0xi32>) -> tensor<0x1x8xf32> {
  %buf, %slots, %dropped = moe.dispatch %x, %i capacity_factor = 1.25 : tensor<4x8xf32>, tensor<4x0xi32> -> tensor<0x1x8xf32>, tensor<4x0xi32>, tensor<i64>
  return %buf : tensor<0x1x8xf32>
}
