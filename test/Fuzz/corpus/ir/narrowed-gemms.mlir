func.func @f(%x: tensor<4x8xbf16>, %w: tensor<2x8xbf16>, %dy: tensor<4x2xbf16>, %q: tensor<1x4x2x8xbf16>, %k: tensor<1x4x1x8xbf16>) -> (tensor<4x2xbf16>, tensor<4x8xbf16>, tensor<1x4x2x8xbf16>) {
  %y = moe.linear %x, %w : tensor<4x8xbf16>, tensor<2x8xbf16> -> tensor<4x2xbf16>
  %dx = moe.linear_input_grad %dy, %w : tensor<4x2xbf16>, tensor<2x8xbf16> -> tensor<4x8xbf16>
  %o, %lse = moe.attention %q, %k, %k causal : tensor<1x4x2x8xbf16>, tensor<1x4x1x8xbf16> -> tensor<1x4x2x8xbf16>
  return %y, %dx, %o : tensor<4x2xbf16>, tensor<4x8xbf16>, tensor<1x4x2x8xbf16>
}
