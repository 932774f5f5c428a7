// RUN: moe-opt %s '--moe-autodiff=gradient-function=' -verify-diagnostics

// An empty name would be printed as IR that does not parse back.
// expected-error @+1 {{moe-autodiff: gradient-function must name a function}}
module {
  func.func @forward() -> tensor<f32> {
    %c = arith.constant dense<1.0> : tensor<f32>
    return %c : tensor<f32>
  }
}
