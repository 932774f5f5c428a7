// RUN: moe-run %s --entry round | FileCheck %s

// arith.truncf to bf16 rounds to nearest, ties to even, as the kernels do:
// 1 + 2^-8 is a tie and goes down to 1 (even), 1 + 3 * 2^-8 goes up to
// 1 + 2^-6, just above a tie goes up, the largest bf16 stays, the largest
// f32 overflows to infinity, a NaN stays a NaN. arith.extf is exact.
// CHECK: rounded F32[7] = 1 1.015625 1.0078125 -0.00250244141 3.38953139e+38 inf nan
func.func @round() -> (tensor<7xf32> {moe.output = "rounded"}) {
  %c = arith.constant dense<[1.00390625, 1.01171875, 1.0039064, -2.5e-3, 3.3895314e38, 3.4028235e38, 0x7FC00001]> : tensor<7xf32>
  %b = arith.truncf %c : tensor<7xf32> to tensor<7xbf16>
  %e = arith.extf %b : tensor<7xbf16> to tensor<7xf32>
  return %e : tensor<7xf32>
}
