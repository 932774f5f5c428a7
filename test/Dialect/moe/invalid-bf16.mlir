// RUN: moe-opt %s -split-input-file -verify-diagnostics

// Mixed-precision misuse: a GEMM's operands share one type, bf16 operands
// give f32 results (or, for linear layers without a bias, bf16 ones: the
// f32 result rounded), and only GEMM operands may be bf16 (the router,
// norms, losses and everything else are f32).

func.func @bf16_result_of_f32(%x: tensor<4x8xf32>, %w: tensor<2x8xf32>) {
  // expected-error @+1 {{'moe.linear' op 'result' must have element type 'f32' (that of 'input'), got 'bf16'}}
  %y = moe.linear %x, %w : tensor<4x8xf32>, tensor<2x8xf32> -> tensor<4x2xbf16>
  return
}

// -----

func.func @bf16_result_with_bias(%x: tensor<4x8xbf16>, %w: tensor<2x8xbf16>, %b: tensor<2xf32>) {
  // expected-error @+1 {{'moe.linear' op 'result' may be bf16 only without a bias (its kernels add the GEMM to the bias preloaded into the result)}}
  %y = moe.linear %x, %w bias %b : tensor<4x8xbf16>, tensor<2x8xbf16>, tensor<2xf32> -> tensor<4x2xbf16>
  return
}

// -----

func.func @input_grad_f64_of_bf16(%dy: tensor<4x2xbf16>, %w: tensor<2x8xbf16>) {
  // expected-error @+1 {{'moe.linear_input_grad' op 'd_input' must have element type 'f32' (a GEMM over 'bf16' 'd_result' accumulates in 'f32') or 'bf16' (the accumulation rounded), got 'f64'}}
  %dx = moe.linear_input_grad %dy, %w : tensor<4x2xbf16>, tensor<2x8xbf16> -> tensor<4x8xf64>
  return
}

// -----

func.func @input_grad_bf16_of_f32(%dy: tensor<4x2xf32>, %w: tensor<2x8xf32>) {
  // expected-error @+1 {{'moe.linear_input_grad' op 'd_input' must have element type 'f32' (that of 'd_result'), got 'bf16'}}
  %dx = moe.linear_input_grad %dy, %w : tensor<4x2xf32>, tensor<2x8xf32> -> tensor<4x8xbf16>
  return
}

// -----

func.func @f32_result_of_f64(%x: tensor<4x8xf64>, %w: tensor<2x8xf64>) {
  // expected-error @+1 {{'moe.linear' op 'result' must have element type 'f64' (that of 'input'), got 'f32'}}
  %y = moe.linear %x, %w : tensor<4x8xf64>, tensor<2x8xf64> -> tensor<4x2xf32>
  return
}

// -----

func.func @mixed_operands(%x: tensor<4x8xbf16>, %w: tensor<2x8xf32>) {
  // expected-error @+1 {{'moe.linear' op 'weight' must have element type 'bf16' (that of 'input'), got 'f32'}}
  %y = moe.linear %x, %w : tensor<4x8xbf16>, tensor<2x8xf32> -> tensor<4x2xf32>
  return
}

// -----

func.func @bf16_bias(%x: tensor<4x8xbf16>, %w: tensor<2x8xbf16>, %b: tensor<2xbf16>) {
  // expected-error @+1 {{'moe.linear' op operand #2 must be statically shaped tensor of 32-bit float or 64-bit float values, but got 'tensor<2xbf16>'}}
  %y = moe.linear %x, %w bias %b : tensor<4x8xbf16>, tensor<2x8xbf16>, tensor<2xbf16> -> tensor<4x2xf32>
  return
}

// -----

func.func @weight_grad_bf16_result(%dy: tensor<4x2xbf16>, %x: tensor<4x8xbf16>) {
  // expected-error @+1 {{'moe.linear_weight_grad' op result #0 must be statically shaped tensor of 32-bit float or 64-bit float values, but got 'tensor<2x8xbf16>'}}
  %dw = moe.linear_weight_grad %dy, %x : tensor<4x2xbf16>, tensor<4x8xbf16> -> tensor<2x8xbf16>
  return
}

// -----

func.func @input_grad_mixed(%dy: tensor<4x2xf32>, %w: tensor<2x8xbf16>) {
  // expected-error @+1 {{'moe.linear_input_grad' op 'weight' must have element type 'f32' (that of 'd_result'), got 'bf16'}}
  %dx = moe.linear_input_grad %dy, %w : tensor<4x2xf32>, tensor<2x8xbf16> -> tensor<4x8xf32>
  return
}

// -----

// The router stays f32: routing decisions must not flip from rounding.
func.func @bf16_router(%x: tensor<4x8xbf16>, %w: tensor<2x8xbf16>) {
  // expected-error @+1 {{'moe.router' op operand #0 must be statically shaped tensor of 32-bit float or 64-bit float values, but got 'tensor<4x8xbf16>'}}
  %z = moe.router %x, %w : tensor<4x8xbf16>, tensor<2x8xbf16> -> tensor<4x2xf32>
  return
}

// -----

// bf16 tokens take bf16 or f32 weights (rounded as the GEMMs read them),
// all of one type; f32 tokens take f32 weights only.
func.func @expert_ffn_mixed(%buf: tensor<2x3x8xbf16>, %w1: tensor<2x5x8xf32>, %w2: tensor<2x8x5xbf16>) {
  // expected-error @+1 {{'moe.expert_ffn' op 'down_proj' must have element type 'f32' (that of 'gate_proj'), got 'bf16'}}
  %out, %proj = moe.expert_ffn %buf, %w1, %w1, %w2 : tensor<2x3x8xbf16>, tensor<2x5x8xf32>, tensor<2x8x5xbf16> -> tensor<2x2x3x5xbf16>
  return
}

// -----

func.func @expert_ffn_f64_weights(%buf: tensor<2x3x8xbf16>, %w1: tensor<2x5x8xf64>, %w2: tensor<2x8x5xf64>) {
  // expected-error @+1 {{'moe.expert_ffn' op 'gate_proj' must have element type 'bf16' (that of 'input') or f32 (rounded to bf16 as the GEMMs read it), got 'f64'}}
  %out, %proj = moe.expert_ffn %buf, %w1, %w1, %w2 : tensor<2x3x8xbf16>, tensor<2x5x8xf64>, tensor<2x8x5xf64> -> tensor<2x2x3x5xbf16>
  return
}

// -----

func.func @expert_ffn_grad_bf16_weights_of_f32(%buf: tensor<2x3x8xf32>, %w1: tensor<2x5x8xbf16>, %w2: tensor<2x8x5xbf16>, %proj: tensor<2x2x3x5xf32>) {
  // expected-error @+1 {{'moe.expert_ffn_grad' op 'gate_proj' must have element type 'f32' (that of 'input'), got 'bf16'}}
  %din, %dw1, %dw3, %dw2 = moe.expert_ffn_grad %buf, %w1, %w1, %w2, %proj, %buf : tensor<2x3x8xf32>, tensor<2x5x8xbf16>, tensor<2x8x5xbf16>, tensor<2x2x3x5xf32>
  return
}

// -----

func.func @expert_ffn_f32_projections(%buf: tensor<2x3x8xbf16>, %w1: tensor<2x5x8xbf16>, %w2: tensor<2x8x5xbf16>) {
  // expected-error @+1 {{'moe.expert_ffn' op 'projections' must have element type 'bf16' (that of 'input'), got 'f32'}}
  %out, %proj = moe.expert_ffn %buf, %w1, %w1, %w2 : tensor<2x3x8xbf16>, tensor<2x5x8xbf16>, tensor<2x8x5xbf16> -> tensor<2x2x3x5xf32>
  return
}

// -----

// Elementwise ops are f32 (or f64): bf16 is for GEMM operands only.
func.func @bf16_add(%a: tensor<4xbf16>) {
  // expected-error @+1 {{'moe.add' op operand #0 must be statically shaped tensor of 32-bit float or 64-bit float values, but got 'tensor<4xbf16>'}}
  %s = moe.add %a, %a : tensor<4xbf16>
  return
}

// -----

func.func @attention_bf16_result_of_f32(%q: tensor<1x4x2x8xf32>, %k: tensor<1x4x1x8xf32>) {
  // expected-error @+1 {{'moe.attention' op 'result' must have element type 'f32' (that of 'query'), got 'bf16'}}
  %o, %lse = moe.attention %q, %k, %k causal : tensor<1x4x2x8xf32>, tensor<1x4x1x8xf32> -> tensor<1x4x2x8xbf16>
  return
}
