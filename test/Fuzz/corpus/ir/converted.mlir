func.func @f(%x: tensor<4x8xf32>, %w: tensor<8xf32>, %o: tensor<2x5x8xbf16>, %g: tensor<4x2xf32>, %i: tensor<4x2xi32>, %s: tensor<4x2xi32>, %t: tensor<4xi32>, %l: tensor<f32>) -> tensor<4x8xbf16> {
  %y = moe.rms_norm %x, %w eps = 1.0e-05 : tensor<4x8xf32> -> tensor<4x8xbf16>, tensor<8xf32>
  %n = arith.truncf %x : tensor<4x8xf32> to tensor<4x8xbf16>
  %dx, %dw = moe.rms_norm_grad %n, %w, %x eps = 1.0e-05 : tensor<4x8xbf16> -> tensor<4x8xf32>, tensor<8xf32>
  %do, %dg = moe.combine_grad %o, %g, %i, %s, %x : tensor<2x5x8xbf16>, tensor<4x2xf32>, tensor<4x2xi32>, tensor<4x8xf32>
  %dz = moe.cross_entropy_grad %x, %t, %l : tensor<4x8xf32> -> tensor<4x8xbf16>, tensor<4xi32>, tensor<f32>
  return %y : tensor<4x8xbf16>
}
