// RUN: moe-opt %s -split-input-file -verify-diagnostics

// One case per distinct error of moe.attention_grad's verifier and its
// custom assembly (moe.attention's are in invalid-transformer.mlir).

// moe.attention_grad (ODS): d_result has the type of the query (generic form).
func.func @attention_grad_d_result_type(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x6xf32>, %v: tensor<2x3x2x6xf32>, %o: tensor<2x3x4x6xf32>, %lse: tensor<2x4x3xf32>, %dy: tensor<2x3x4x4xf32>) {
  // expected-error @+1 {{'moe.attention_grad' op failed to verify that all of {query, output, d_result} have same type}}
  %dq:3 = "moe.attention_grad"(%q, %k, %v, %o, %lse, %dy) : (tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x4x6xf32>, tensor<2x4x3xf32>, tensor<2x3x4x4xf32>) -> (tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x2x6xf32>)
  return
}

// -----

// moe.attention_grad (ODS): key and value have one type (generic form).
func.func @attention_grad_value_type(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x6xf32>, %v: tensor<2x3x4x6xf32>, %o: tensor<2x3x4x6xf32>, %lse: tensor<2x4x3xf32>, %dy: tensor<2x3x4x6xf32>) {
  // expected-error @+1 {{'moe.attention_grad' op failed to verify that all of {key, value} have same type}}
  %dq:3 = "moe.attention_grad"(%q, %k, %v, %o, %lse, %dy) : (tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>, tensor<2x4x3xf32>, tensor<2x3x4x6xf32>) -> (tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x2x6xf32>)
  return
}

// -----

// moe.attention_grad (ODS): over bf16 operands the gradients are f32
// (generic form).
func.func @attention_grad_bf16_d_key_type(%q: tensor<2x3x4x6xbf16>, %k: tensor<2x3x2x6xbf16>, %v: tensor<2x3x2x6xbf16>, %o: tensor<2x3x4x6xbf16>, %lse: tensor<2x4x3xf32>, %dy: tensor<2x3x4x6xbf16>) {
  // expected-error @+1 {{'moe.attention_grad' op result #1 must be statically shaped tensor of 32-bit float or 64-bit float values, but got 'tensor<2x3x2x6xbf16>'}}
  %dq:3 = "moe.attention_grad"(%q, %k, %v, %o, %lse, %dy) : (tensor<2x3x4x6xbf16>, tensor<2x3x2x6xbf16>, tensor<2x3x2x6xbf16>, tensor<2x3x4x6xbf16>, tensor<2x4x3xf32>, tensor<2x3x4x6xbf16>) -> (tensor<2x3x4x6xf32>, tensor<2x3x2x6xbf16>, tensor<2x3x2x6xf32>)
  return
}

// -----

// moe.attention_grad (ODS): d_value has the shape of the key and value
// (generic form).
func.func @attention_grad_d_value_shape(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x6xf32>, %v: tensor<2x3x2x6xf32>, %o: tensor<2x3x4x6xf32>, %lse: tensor<2x4x3xf32>, %dy: tensor<2x3x4x6xf32>) {
  // expected-error @+1 {{'moe.attention_grad' op failed to verify that 'd_value' has the shape of 'key' and the element type of a GEMM over it}}
  %dq:3 = "moe.attention_grad"(%q, %k, %v, %o, %lse, %dy) : (tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x4x6xf32>, tensor<2x4x3xf32>, tensor<2x3x4x6xf32>) -> (tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x4x6xf32>)
  return
}

// -----

// moe.attention_grad: the log-sum-exp is the forward's, [batch, heads, seq]
// (generic form).
func.func @attention_grad_lse_shape(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x6xf32>, %lse: tensor<2x3x4xf32>) {
  // expected-error @+1 {{'moe.attention_grad' op 'lse' must be 'tensor<2x4x3xf32>' ([batch, heads, seq] of the query's), got 'tensor<2x3x4xf32>'}}
  %dq:3 = "moe.attention_grad"(%q, %k, %k, %q, %lse, %q) : (tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x4x6xf32>, tensor<2x3x4xf32>, tensor<2x3x4x6xf32>) -> (tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x2x6xf32>)
  return
}

// -----

// moe.attention_grad: bf16 and f32 operands do not mix.
func.func @attention_grad_mixed_operands(%q: tensor<2x3x4x6xbf16>, %k: tensor<2x3x2x6xf32>, %v: tensor<2x3x2x6xf32>, %o: tensor<2x3x4x6xbf16>, %lse: tensor<2x4x3xf32>, %dy: tensor<2x3x4x6xbf16>) {
  // expected-error @+1 {{'moe.attention_grad' op 'key' must have element type 'bf16' (that of 'query'), got 'f32'}}
  %dq:3 = moe.attention_grad %q, %k, %v, %o, %lse, %dy : tensor<2x3x4x6xbf16>, tensor<2x3x2x6xf32>
  return
}

// -----

// moe.attention_grad: the query is [batch, seq, heads, head_dim].
func.func @attention_grad_query_rank(%q: tensor<2x3x6xf32>, %k: tensor<2x3x6xf32>, %v: tensor<2x3x6xf32>, %o: tensor<2x3x6xf32>, %lse: tensor<2x3xf32>, %dy: tensor<2x3x6xf32>) {
  // expected-error @+1 {{the query of an attention must be a [batch, seq, heads, head_dim] tensor, got 'tensor<2x3x6xf32>'}}
  %dq, %dk, %dv = moe.attention_grad %q, %k, %v, %o, %lse, %dy : tensor<2x3x6xf32>, tensor<2x3x6xf32>
  return
}

// -----

// moe.attention_grad: kv_heads must divide the query heads.
func.func @attention_grad_kv_heads(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x3x6xf32>, %v: tensor<2x3x3x6xf32>, %o: tensor<2x3x4x6xf32>, %lse: tensor<2x4x3xf32>, %dy: tensor<2x3x4x6xf32>) {
  // expected-error @+1 {{'moe.attention_grad' op 'key' kv_heads (3) must divide the query heads (4)}}
  %dq, %dk, %dv = moe.attention_grad %q, %k, %v, %o, %lse, %dy : tensor<2x3x4x6xf32>, tensor<2x3x3x6xf32>
  return
}

// -----

// moe.attention_grad: key and query share head_dim.
func.func @attention_grad_key_shape(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x4xf32>, %v: tensor<2x3x2x4xf32>, %o: tensor<2x3x4x6xf32>, %lse: tensor<2x4x3xf32>, %dy: tensor<2x3x4x6xf32>) {
  // expected-error @+1 {{'moe.attention_grad' op 'key' must have shape [2, 3, 2, 6], got [2, 3, 2, 4]}}
  %dq, %dk, %dv = moe.attention_grad %q, %k, %v, %o, %lse, %dy causal : tensor<2x3x4x6xf32>, tensor<2x3x2x4xf32>
  return
}

// -----

// moe.attention_grad: query and key share their element type.
func.func @attention_grad_key_element_type(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x6xf64>, %v: tensor<2x3x2x6xf64>, %o: tensor<2x3x4x6xf32>, %lse: tensor<2x4x3xf32>, %dy: tensor<2x3x4x6xf32>) {
  // expected-error @+1 {{'moe.attention_grad' op 'key' must have element type 'f32' (that of 'query'), got 'f64'}}
  %dq, %dk, %dv = moe.attention_grad %q, %k, %v, %o, %lse, %dy : tensor<2x3x4x6xf32>, tensor<2x3x2x6xf64>
  return
}

// -----

// moe.attention_grad: the query is rank 4 (generic form; the custom form's
// parser refuses it first).
func.func @attention_grad_query_rank(%q: tensor<2x3x6xf32>, %k: tensor<2x3x2x6xf32>, %l: tensor<2x3xf32>) {
  // expected-error @+1 {{'moe.attention_grad' op 'query' must have rank 4 ([batch, seq, heads, head_dim]), got rank 3}}
  %d:3 = "moe.attention_grad"(%q, %k, %k, %q, %l, %q) : (tensor<2x3x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x6xf32>, tensor<2x3xf32>, tensor<2x3x6xf32>) -> (tensor<2x3x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x2x6xf32>)
  return
}

// -----

// moe.attention_grad: a sliding window needs causal attention, as the
// forward's does.
func.func @attention_grad_window_not_causal(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x6xf32>, %v: tensor<2x3x2x6xf32>, %o: tensor<2x3x4x6xf32>, %lse: tensor<2x4x3xf32>, %dy: tensor<2x3x4x6xf32>) {
  // expected-error @+1 {{'moe.attention_grad' op 'window' (3) needs 'causal': a sliding window ends at each query's own position}}
  %dq, %dk, %dv = moe.attention_grad %q, %k, %v, %o, %lse, %dy window 3 : tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>
  return
}

// -----

// moe.attention_sinks_grad: a sink a head of the output.
func.func @attention_sinks_grad_heads(%s: tensor<3xf32>, %lse: tensor<2x4x3xf32>, %o: tensor<2x3x4x6xf32>, %dy: tensor<2x3x4x6xf32>) {
  // expected-error @+1 {{'moe.attention_sinks_grad' op 'sinks' must have shape [4], got [3]}}
  %ds = moe.attention_sinks_grad %s, %lse, %o, %dy : tensor<3xf32>, tensor<2x3x4x6xf32>
  return
}

// -----

// moe.attention_sinks_grad: lse is [batch, heads, seq] of the output's.
func.func @attention_sinks_grad_lse(%s: tensor<4xf32>, %lse: tensor<2x4x5xf32>, %o: tensor<2x3x4x6xf32>, %dy: tensor<2x3x4x6xf32>) {
  // expected-error @+1 {{'moe.attention_sinks_grad' op 'lse' must be 'tensor<2x4x3xf32>' ([batch, heads, seq] of the query's), got 'tensor<2x4x5xf32>'}}
  %ds = "moe.attention_sinks_grad"(%s, %lse, %o, %dy) : (tensor<4xf32>, tensor<2x4x5xf32>, tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>) -> tensor<4xf32>
  return
}
