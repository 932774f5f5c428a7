// RUN: moe-opt %s --moe-mixed-precision -verify-diagnostics
// RUN: not moe-opt %s --moe-mixed-precision=dtype=f16 2>&1 | FileCheck %s --check-prefix=DTYPE

// DTYPE: error: moe-mixed-precision: dtype must be bf16, got 'f16'

// f64 is for gradient checks: not narrowed.
ml_program.global private mutable @w : tensor<2x4xf64> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
func.func @forward(%x: tensor<3x4xf64>) -> (tensor<f64> {moe.output = "loss"}) {
  %w = ml_program.global_load @w : tensor<2x4xf64>
  // expected-error @+1 {{moe-mixed-precision narrows f32 programs, but operand #0 is 'tensor<3x4xf64>'}}
  %y = moe.linear %x, %w : tensor<3x4xf64>, tensor<2x4xf64> -> tensor<3x2xf64>
  %t = arith.constant dense<[0, 1, 1]> : tensor<3xi32>
  %loss = moe.cross_entropy %y, %t : tensor<3x2xf64>, tensor<3xi32> -> tensor<f64>
  return %loss : tensor<f64>
}
