// RUN: moe-opt %s -split-input-file -verify-diagnostics

// One case per distinct error of the transformer ops' verifiers (MoeOps.cpp)
// and a few representative ODS constraint errors. Messages name the operand
// or attribute at fault and the value expected. Routing ops: see
// invalid-routing.mlir; dialect attributes: invalid-attributes.mlir.

// moe.embedding: the table must be [vocab, hidden].
func.func @embedding_table_rank(%table: tensor<16xf32>, %ids: tensor<2x3xi32>) {
  // expected-error @+1 {{'moe.embedding' op 'table' must have rank 2 ([vocab, hidden]), got rank 1}}
  %h = moe.embedding %table[%ids] : tensor<16xf32>, tensor<2x3xi32> -> tensor<2x3x8xf32>
  return
}

// -----

// moe.embedding: the padding id is a row of the table.
func.func @embedding_padding_outside(%table: tensor<16x8xf32>, %ids: tensor<2x3xi32>) {
  // expected-error @+1 {{'moe.embedding' op padding_id 16 is outside the vocabulary [0, 16)}}
  %h = moe.embedding %table[%ids] padding_id = 16 : tensor<16x8xf32>, tensor<2x3xi32> -> tensor<2x3x8xf32>
  return
}

// -----

// moe.embedding: the result is the shape of ids followed by hidden.
func.func @embedding_result_shape(%table: tensor<16x8xf32>, %ids: tensor<2x3xi32>) {
  // expected-error @+1 {{'moe.embedding' op 'result' must have shape [2, 3, 8], got [2, 3, 4]}}
  %h = moe.embedding %table[%ids] : tensor<16x8xf32>, tensor<2x3xi32> -> tensor<2x3x4xf32>
  return
}

// -----

// moe.embedding: the result has the element type of the table.
func.func @embedding_result_element_type(%table: tensor<16x8xf32>, %ids: tensor<2x3xi32>) {
  // expected-error @+1 {{'moe.embedding' op 'result' must have element type 'f32' (that of 'table'), got 'f64'}}
  %h = moe.embedding %table[%ids] : tensor<16x8xf32>, tensor<2x3xi32> -> tensor<2x3x8xf64>
  return
}

// -----

// moe.embedding (ODS): ids must be i32.
func.func @embedding_ids_i64(%table: tensor<16x8xf32>, %ids: tensor<2x3xi64>) {
  // expected-error @+1 {{'moe.embedding' op operand #1 must be statically shaped tensor of 32-bit signless integer values, but got 'tensor<2x3xi64>'}}
  %h = moe.embedding %table[%ids] : tensor<16x8xf32>, tensor<2x3xi64> -> tensor<2x3x8xf32>
  return
}

// -----

// moe.rms_norm: a 0-D input has no axis to normalize.
func.func @rms_norm_rank0(%x: tensor<f32>, %w: tensor<1xf32>) {
  // expected-error @+1 {{'moe.rms_norm' op 'input' must have rank >= 1}}
  %y = moe.rms_norm %x, %w eps = 1.0e-05 : tensor<f32>, tensor<1xf32>
  return
}

// -----

// moe.rms_norm: the weight is [hidden].
func.func @rms_norm_weight_shape(%x: tensor<4x8xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{'moe.rms_norm' op 'weight' must have shape [8], got [4]}}
  %y = moe.rms_norm %x, %w eps = 1.0e-05 : tensor<4x8xf32>, tensor<4xf32>
  return
}

// -----

// moe.rms_norm: the result has the input's shape (generic form).
func.func @rms_norm_result_shape(%x: tensor<4x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{'moe.rms_norm' op 'result' must have shape [4, 8], got [8, 4]}}
  %y = "moe.rms_norm"(%x, %w) <{eps = 1.0e-05 : f64}> : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<8x4xf32>
  return
}

// -----

// moe.rms_norm: a bf16 result (narrowed) only for an f32 input.
func.func @rms_norm_narrowed_f64(%x: tensor<4x8xf64>, %w: tensor<8xf64>) {
  // expected-error @+1 {{'moe.rms_norm' op 'result' must have the element type of 'input' ('f64'), got 'bf16'}}
  %y = moe.rms_norm %x, %w eps = 1.0e-05 : tensor<4x8xf64> -> tensor<4x8xbf16>, tensor<8xf64>
  return
}

// -----

// moe.rms_norm: the weight has the element type of the input.
func.func @rms_norm_weight_element_type(%x: tensor<4x8xf32>, %w: tensor<8xf64>) {
  // expected-error @+1 {{'moe.rms_norm' op 'weight' must have element type 'f32' (that of 'input'), got 'f64'}}
  %y = moe.rms_norm %x, %w eps = 1.0e-05 : tensor<4x8xf32>, tensor<8xf64>
  return
}

// -----

// moe.rms_norm: eps must be positive.
func.func @rms_norm_eps_zero(%x: tensor<4x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{'moe.rms_norm' op attribute 'eps' must be a positive finite number, got 0.000000e+00}}
  %y = moe.rms_norm %x, %w eps = 0.0 : tensor<4x8xf32>, tensor<8xf32>
  return
}

// -----

// moe.rms_norm: a NaN eps is not positive.
func.func @rms_norm_eps_nan(%x: tensor<4x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{'moe.rms_norm' op attribute 'eps' must be a positive finite number, got nan}}
  %y = moe.rms_norm %x, %w eps = 0x7FF8000000000000 : tensor<4x8xf32>, tensor<8xf32>
  return
}

// -----

// moe.rms_norm (ODS): shapes must be static.
func.func @rms_norm_dynamic(%x: tensor<?x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{'moe.rms_norm' op operand #0 must be statically shaped tensor of 32-bit float or 64-bit float values, but got 'tensor<?x8xf32>'}}
  %y = moe.rms_norm %x, %w eps = 1.0e-05 : tensor<?x8xf32>, tensor<8xf32>
  return
}

// -----

// moe.rms_norm (ODS): f16 is not a supported element type.
func.func @rms_norm_f16(%x: tensor<4x8xf16>, %w: tensor<8xf16>) {
  // expected-error @+1 {{'moe.rms_norm' op operand #0 must be statically shaped tensor of 32-bit float or 64-bit float values, but got 'tensor<4x8xf16>'}}
  %y = moe.rms_norm %x, %w eps = 1.0e-05 : tensor<4x8xf16>, tensor<8xf16>
  return
}

// -----

// moe.linear: the weight is [out_features, in_features].
func.func @linear_weight_rank(%x: tensor<4x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{'moe.linear' op 'weight' must have rank 2 ([out_features, in_features]), got rank 1}}
  %y = moe.linear %x, %w : tensor<4x8xf32>, tensor<8xf32> -> tensor<4x2xf32>
  return
}

// -----

// moe.linear: a 0-D input has no feature axis.
func.func @linear_input_rank0(%x: tensor<f32>, %w: tensor<2x8xf32>) {
  // expected-error @+1 {{'moe.linear' op 'input' must have rank >= 1}}
  %y = moe.linear %x, %w : tensor<f32>, tensor<2x8xf32> -> tensor<2xf32>
  return
}

// -----

// moe.linear: the input's last axis is in_features.
func.func @linear_in_features(%x: tensor<4x8xf32>, %w: tensor<2x6xf32>) {
  // expected-error @+1 {{'moe.linear' op 'input' last dimension must be 6 (in_features of 'weight'), got 8}}
  %y = moe.linear %x, %w : tensor<4x8xf32>, tensor<2x6xf32> -> tensor<4x2xf32>
  return
}

// -----

// moe.linear: the bias is [out_features].
func.func @linear_bias_shape(%x: tensor<4x8xf32>, %w: tensor<2x8xf32>, %b: tensor<3xf32>) {
  // expected-error @+1 {{'moe.linear' op 'bias' must have shape [2], got [3]}}
  %y = moe.linear %x, %w bias %b : tensor<4x8xf32>, tensor<2x8xf32>, tensor<3xf32> -> tensor<4x2xf32>
  return
}

// -----

// moe.linear: the result replaces the last axis by out_features.
func.func @linear_result_shape(%x: tensor<4x8xf32>, %w: tensor<2x8xf32>) {
  // expected-error @+1 {{'moe.linear' op 'result' must have shape [4, 2], got [4, 3]}}
  %y = moe.linear %x, %w : tensor<4x8xf32>, tensor<2x8xf32> -> tensor<4x3xf32>
  return
}

// -----

// moe.linear: the weight has the element type of the input.
func.func @linear_weight_element_type(%x: tensor<4x8xf32>, %w: tensor<2x8xf64>) {
  // expected-error @+1 {{'moe.linear' op 'weight' must have element type 'f32' (that of 'input'), got 'f64'}}
  %y = moe.linear %x, %w : tensor<4x8xf32>, tensor<2x8xf64> -> tensor<4x2xf32>
  return
}

// -----

// moe.linear: the result has the element type of the input.
func.func @linear_result_element_type(%x: tensor<4x8xf32>, %w: tensor<2x8xf32>) {
  // expected-error @+1 {{'moe.linear' op 'result' must have element type 'f32' (that of 'input'), got 'f64'}}
  %y = moe.linear %x, %w : tensor<4x8xf32>, tensor<2x8xf32> -> tensor<4x2xf64>
  return
}

// -----

// moe.linear: the bias has the element type of the input.
func.func @linear_bias_element_type(%x: tensor<4x8xf32>, %w: tensor<2x8xf32>, %b: tensor<2xf64>) {
  // expected-error @+1 {{'moe.linear' op 'bias' must have element type 'f32' (that of 'input'), got 'f64'}}
  %y = moe.linear %x, %w bias %b : tensor<4x8xf32>, tensor<2x8xf32>, tensor<2xf64> -> tensor<4x2xf32>
  return
}

// -----

// moe.rope: the input is [batch, seq, heads, head_dim].
func.func @rope_rank(%q: tensor<2x3x6xf32>) {
  // expected-error @+1 {{'moe.rope' op 'input' must have rank 4 ([batch, seq, heads, head_dim]), got rank 3}}
  %y = moe.rope %q theta = 1.0e+04 : tensor<2x3x6xf32>
  return
}

// -----

// moe.rope: rotate-half needs an even head_dim.
func.func @rope_odd_head_dim(%q: tensor<2x3x4x5xf32>) {
  // expected-error @+1 {{'moe.rope' op 'input' head_dim must be even, got 5}}
  %y = moe.rope %q theta = 1.0e+04 : tensor<2x3x4x5xf32>
  return
}

// -----

// A partial rotation's dimensions pair up within the head.
func.func @rope_odd_rotary_dim(%q: tensor<2x3x4x6xf32>) {
  // expected-error @+1 {{'moe.rope' op attribute 'rotary_dim' must be even and at most the head_dim (6), got 3}}
  %y = moe.rope %q theta = 1.0e+04 rotary_dim = 3 : tensor<2x3x4x6xf32>
  return
}

// -----

func.func @rope_rotary_dim_beyond_head(%q: tensor<2x3x4x6xf32>) {
  // expected-error @+1 {{'moe.rope' op attribute 'rotary_dim' must be even and at most the head_dim (6), got 8}}
  %y = moe.rope %q theta = 1.0e+04 rotary_dim = 8 : tensor<2x3x4x6xf32>
  return
}

// -----

// moe.rope: a narrowed result is bf16 from f32, not from f64.
func.func @rope_narrowed_f64(%q: tensor<2x3x4x6xf64>) {
  // expected-error @+1 {{'moe.rope' op 'result' must have the element type of 'input' ('f64'), got 'bf16'}}
  %y = moe.rope %q theta = 1.0e+04 : tensor<2x3x4x6xf64> -> tensor<2x3x4x6xbf16>
  return
}

// -----

// moe.rope: the result has the input's shape.
func.func @rope_result_shape(%q: tensor<2x3x4x6xf32>) {
  // expected-error @+1 {{'moe.rope' op 'result' must have shape [2, 3, 4, 6], got [2, 3, 4, 2]}}
  %y = moe.rope %q theta = 1.0e+04 : tensor<2x3x4x6xf32> -> tensor<2x3x4x2xbf16>
  return
}

// -----

// moe.rope: theta must be positive.
func.func @rope_theta(%q: tensor<2x3x4x6xf32>) {
  // expected-error @+1 {{'moe.rope' op attribute 'theta' must be a positive finite number, got -1.000000e+04}}
  %y = moe.rope %q theta = -1.0e+04 : tensor<2x3x4x6xf32>
  return
}

// -----

// moe.attention: the query is [batch, seq, heads, head_dim].
func.func @attention_query_rank(%q: tensor<2x3x24xf32>, %k: tensor<2x3x2x6xf32>, %v: tensor<2x3x2x6xf32>) {
  // expected-error @+1 {{the query of an attention must be a [batch, seq, heads, head_dim] tensor, got 'tensor<2x3x24xf32>'}}
  %o, %lse = moe.attention %q, %k, %v : tensor<2x3x24xf32>, tensor<2x3x2x6xf32>
  return
}

// -----

// moe.attention: the key is [batch, seq, kv_heads, head_dim].
func.func @attention_key_rank(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x12xf32>, %v: tensor<2x3x12xf32>) {
  // expected-error @+1 {{'moe.attention' op 'key' must have rank 4 ([batch, seq, kv_heads, head_dim]), got rank 3}}
  %o, %lse = moe.attention %q, %k, %v : tensor<2x3x4x6xf32>, tensor<2x3x12xf32>
  return
}

// -----

// moe.attention: a sink a query head.
func.func @attention_sinks_heads(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x6xf32>, %v: tensor<2x3x2x6xf32>, %s: tensor<2xf32>) {
  // expected-error @+1 {{'moe.attention' op 'sinks' must have shape [4], got [2]}}
  %o, %lse = moe.attention %q, %k, %v sinks(%s : tensor<2xf32>) causal : tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>
  return
}

// -----

// moe.attention: bf16 operands' sinks are f32, the scores' type.
func.func @attention_sinks_type(%q: tensor<2x3x4x16xbf16>, %k: tensor<2x3x2x16xbf16>, %v: tensor<2x3x2x16xbf16>, %s: tensor<4xf64>) {
  // expected-error @+1 {{'moe.attention' op 'sinks' must have element type 'f32' (a GEMM over 'bf16' 'query' accumulates in 'f32'), got 'f64'}}
  %o, %lse = moe.attention %q, %k, %v sinks(%s : tensor<4xf64>) causal : tensor<2x3x4x16xbf16>, tensor<2x3x2x16xbf16>
  return
}

// -----

// moe.attention: a sliding window needs causal attention.
func.func @attention_window_not_causal(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x6xf32>, %v: tensor<2x3x2x6xf32>) {
  // expected-error @+1 {{'moe.attention' op 'window' (2) needs 'causal': a sliding window ends at each query's own position}}
  %o, %lse = moe.attention %q, %k, %v window 2 : tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>
  return
}

// -----

// moe.attention: a window holds at least the query's own position.
func.func @attention_window_zero(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x6xf32>, %v: tensor<2x3x2x6xf32>) {
  // expected-error @+1 {{'moe.attention' op attribute 'window' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %o, %lse = moe.attention %q, %k, %v causal window 0 : tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>
  return
}

// -----

// moe.attention: kv_heads must divide the query heads.
func.func @attention_kv_heads(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x3x6xf32>, %v: tensor<2x3x3x6xf32>) {
  // expected-error @+1 {{'moe.attention' op 'key' kv_heads (3) must divide the query heads (4)}}
  %o, %lse = moe.attention %q, %k, %v : tensor<2x3x4x6xf32>, tensor<2x3x3x6xf32>
  return
}

// -----

// moe.attention: zero kv_heads is rejected, not a division by zero.
func.func @attention_zero_kv_heads(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x0x6xf32>, %v: tensor<2x3x0x6xf32>) {
  // expected-error @+1 {{'moe.attention' op 'key' kv_heads (0) must divide the query heads (4)}}
  %o, %lse = moe.attention %q, %k, %v : tensor<2x3x4x6xf32>, tensor<2x3x0x6xf32>
  return
}

// -----

// moe.attention: key and query agree on batch, seq and head_dim.
func.func @attention_key_shape(%q: tensor<2x3x4x6xf32>, %k: tensor<2x5x2x6xf32>, %v: tensor<2x5x2x6xf32>) {
  // expected-error @+1 {{'moe.attention' op 'key' must have shape [2, 3, 2, 6], got [2, 5, 2, 6]}}
  %o, %lse = moe.attention %q, %k, %v : tensor<2x3x4x6xf32>, tensor<2x5x2x6xf32>
  return
}

// -----

// moe.attention: the scores are scaled by 1 / sqrt(head_dim).
func.func @attention_empty_head(%q: tensor<2x3x4x0xf32>, %k: tensor<2x3x2x0xf32>) {
  // expected-error @+1 {{'moe.attention' op 'query' head_dim must be positive, got 0}}
  %o, %lse = moe.attention %q, %k, %k : tensor<2x3x4x0xf32>, tensor<2x3x2x0xf32>
  return
}

// -----

// moe.attention: the key has the element type of the query.
func.func @attention_key_element_type(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x6xf64>, %v: tensor<2x3x2x6xf64>) {
  // expected-error @+1 {{'moe.attention' op 'key' must have element type 'f32' (that of 'query'), got 'f64'}}
  %o, %lse = moe.attention %q, %k, %v : tensor<2x3x4x6xf32>, tensor<2x3x2x6xf64>
  return
}

// -----

// moe.attention: over bf16 operands the result is f32 or bf16 (generic
// form).
func.func @attention_bf16_result_type(%q: tensor<2x3x4x6xbf16>, %k: tensor<2x3x2x6xbf16>, %v: tensor<2x3x2x6xbf16>) {
  // expected-error @+1 {{'moe.attention' op 'result' must have element type 'f32' (a GEMM over 'bf16' 'query' accumulates in 'f32') or 'bf16' (the accumulation rounded), got 'f64'}}
  %o:2 = "moe.attention"(%q, %k, %v) : (tensor<2x3x4x6xbf16>, tensor<2x3x2x6xbf16>, tensor<2x3x2x6xbf16>) -> (tensor<2x3x4x6xf64>, tensor<2x4x3xf32>)
  return
}

// -----

// moe.attention: the result has the query's shape (generic form).
func.func @attention_result_shape(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x6xf32>, %v: tensor<2x3x2x6xf32>) {
  // expected-error @+1 {{'moe.attention' op 'result' must have shape [2, 3, 4, 6], got [2, 3, 4, 8]}}
  %o:2 = "moe.attention"(%q, %k, %v) : (tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x2x6xf32>) -> (tensor<2x3x4x8xf32>, tensor<2x4x3xf32>)
  return
}

// -----

// moe.attention (ODS): key and value have one type (generic form).
func.func @attention_value_type(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x6xf32>, %v: tensor<2x3x4x6xf32>) {
  // expected-error @+1 {{'moe.attention' op failed to verify that all of {key, value} have same type}}
  %o:2 = "moe.attention"(%q, %k, %v) : (tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x4x6xf32>) -> (tensor<2x3x4x6xf32>, tensor<2x4x3xf32>)
  return
}

// -----

// moe.attention: the query is rank 4 (generic form; the custom form's
// parser refuses it first).
func.func @attention_query_rank(%q: tensor<2x3x6xf32>, %k: tensor<2x3x2x6xf32>) {
  // expected-error @+1 {{'moe.attention' op 'query' must have rank 4 ([batch, seq, heads, head_dim]), got rank 3}}
  %o:2 = "moe.attention"(%q, %k, %k) : (tensor<2x3x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x2x6xf32>) -> (tensor<2x3x6xf32>, tensor<2x3xf32>)
  return
}

// -----

// moe.attention: the log-sum-exp is [batch, heads, seq] (generic form).
func.func @attention_lse_shape(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x6xf32>) {
  // expected-error @+1 {{'moe.attention' op 'lse' must be 'tensor<2x4x3xf32>' ([batch, heads, seq] of the query's), got 'tensor<2x3x4xf32>'}}
  %o:2 = "moe.attention"(%q, %k, %k) : (tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x2x6xf32>) -> (tensor<2x3x4x6xf32>, tensor<2x3x4xf32>)
  return
}

// -----

// moe.attention: over bf16 operands the log-sum-exp is f32 (generic form).
func.func @attention_bf16_lse_type(%q: tensor<2x3x4x6xbf16>, %k: tensor<2x3x2x6xbf16>) {
  // expected-error @+1 {{'moe.attention' op 'lse' must be 'tensor<2x4x3xf32>' ([batch, heads, seq] of the query's), got 'tensor<2x4x3xf64>'}}
  %o:2 = "moe.attention"(%q, %k, %k) : (tensor<2x3x4x6xbf16>, tensor<2x3x2x6xbf16>, tensor<2x3x2x6xbf16>) -> (tensor<2x3x4x6xf32>, tensor<2x4x3xf64>)
  return
}

// -----

// moe.add (ODS): lhs, rhs and result have one type (generic form).
func.func @add_types(%a: tensor<4x8xf32>, %b: tensor<4x8xf64>) {
  // expected-error @+1 {{'moe.add' op failed to verify that all of {lhs, rhs, result} have same type}}
  %s = "moe.add"(%a, %b) : (tensor<4x8xf32>, tensor<4x8xf64>) -> tensor<4x8xf32>
  return
}

// -----

// moe.swiglu (ODS): gate, up and result have one type (generic form).
func.func @swiglu_types(%a: tensor<4x8xf32>, %b: tensor<4x6xf32>) {
  // expected-error @+1 {{'moe.swiglu' op failed to verify that all of {gate, up, result} have same type}}
  %s = "moe.swiglu"(%a, %b) : (tensor<4x8xf32>, tensor<4x6xf32>) -> tensor<4x8xf32>
  return
}

// -----

// moe.sigmoid_scale (ODS): input and result have one type (generic form).
func.func @sigmoid_scale_types(%x: tensor<4x8xf32>, %g: tensor<4x1xf32>) {
  // expected-error @+1 {{'moe.sigmoid_scale' op failed to verify that all of {input, result} have same type}}
  %s = "moe.sigmoid_scale"(%x, %g) : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x6xf32>
  return
}

// -----

// moe.sigmoid_scale: one logit per row of the input, or per element.
func.func @sigmoid_scale_logit_shape(%x: tensor<4x8xf32>, %g: tensor<4x2xf32>) {
  // expected-error @+1 {{'moe.sigmoid_scale' op 'logit' must have shape [4, 1] (a gate a row) or [4, 8] (a gate an element), got [4, 2]}}
  %s = moe.sigmoid_scale %x, %g : tensor<4x8xf32>, tensor<4x2xf32>
  return
}

// -----

// moe.sigmoid_scale: the logit has the input's element type.
func.func @sigmoid_scale_logit_type(%x: tensor<4x8xf32>, %g: tensor<4x1xf64>) {
  // expected-error @+1 {{'moe.sigmoid_scale' op 'logit' must have element type 'f32' (that of 'input'), got 'f64'}}
  %s = moe.sigmoid_scale %x, %g : tensor<4x8xf32>, tensor<4x1xf64>
  return
}

// -----

// moe.sigmoid_scale: a 0-D input has no rows.
func.func @sigmoid_scale_rank0(%x: tensor<f32>, %g: tensor<1xf32>) {
  // expected-error @+1 {{'moe.sigmoid_scale' op 'input' must have rank >= 1}}
  %s = moe.sigmoid_scale %x, %g : tensor<f32>, tensor<1xf32>
  return
}

// -----

// moe.cross_entropy: 0-D logits have no vocab axis.
func.func @cross_entropy_rank0(%logits: tensor<f32>, %targets: tensor<i32>) {
  // expected-error @+1 {{'moe.cross_entropy' op 'logits' must have rank >= 1 ([..., vocab])}}
  %l = moe.cross_entropy %logits, %targets : tensor<f32>, tensor<i32> -> tensor<f32>
  return
}

// -----

// moe.cross_entropy: targets have the leading shape of logits.
func.func @cross_entropy_targets_shape(%logits: tensor<2x3x16xf32>, %targets: tensor<2x4xi32>) {
  // expected-error @+1 {{'moe.cross_entropy' op 'targets' must have shape [2, 3], got [2, 4]}}
  %l = moe.cross_entropy %logits, %targets : tensor<2x3x16xf32>, tensor<2x4xi32> -> tensor<f32>
  return
}

// -----

// moe.cross_entropy: the result has the element type of the logits.
func.func @cross_entropy_result_element_type(%logits: tensor<2x3x16xf32>, %targets: tensor<2x3xi32>) {
  // expected-error @+1 {{'moe.cross_entropy' op 'result' must have element type 'f32' (that of 'logits'), got 'f64'}}
  %l = moe.cross_entropy %logits, %targets : tensor<2x3x16xf32>, tensor<2x3xi32> -> tensor<f64>
  return
}

// -----

// moe.cross_entropy: an ignore index needs the count of counted targets.
func.func @cross_entropy_ignore_without_divisor(%logits: tensor<2x3x16xf32>, %targets: tensor<2x3xi32>) {
  // expected-error @+1 {{'moe.cross_entropy' op 'ignore_index' needs a 'divisor' (the number of counted targets, from moe.count_targets)}}
  %l = moe.cross_entropy %logits, %targets {ignore_index = -100 : i64} : tensor<2x3x16xf32>, tensor<2x3xi32> -> tensor<f32>
  return
}

// -----

// moe.cross_entropy: the divisor has the element type of the logits.
func.func @cross_entropy_divisor_element_type(%logits: tensor<2x3x16xf32>, %targets: tensor<2x3xi32>, %n: tensor<f64>) {
  // expected-error @+1 {{'moe.cross_entropy' op 'divisor' must have element type 'f32' (that of 'logits'), got 'f64'}}
  %l = moe.cross_entropy %logits, %targets divisor %n {ignore_index = -100 : i64} : tensor<2x3x16xf32>, tensor<2x3xi32>, tensor<f64> -> tensor<f32>
  return
}

// -----

// moe.cross_entropy (ODS): integer logits.
func.func @cross_entropy_i32_logits(%logits: tensor<2x3x16xi32>, %targets: tensor<2x3xi32>) {
  // expected-error @+1 {{'moe.cross_entropy' op operand #0 must be statically shaped tensor of 32-bit float or 64-bit float values, but got 'tensor<2x3x16xi32>'}}
  %l = moe.cross_entropy %logits, %targets : tensor<2x3x16xi32>, tensor<2x3xi32> -> tensor<f32>
  return
}

// -----

// moe.cross_entropy (ODS): the loss is a 0-D tensor.
func.func @cross_entropy_result_rank(%logits: tensor<2x3x16xf32>, %targets: tensor<2x3xi32>) {
  // expected-error @+1 {{'moe.cross_entropy' op result #0 must be 0D tensor of 32-bit float or 64-bit float values, but got 'tensor<1xf32>'}}
  %l = moe.cross_entropy %logits, %targets : tensor<2x3x16xf32>, tensor<2x3xi32> -> tensor<1xf32>
  return
}

// -----

// moe.scale: a factor that would make every value NaN or infinite.
func.func @scale_infinite(%x: tensor<2x3xf32>) {
  // expected-error @+1 {{'moe.scale' op factor must be finite, got INF}}
  %s = moe.scale %x by 0x7FF0000000000000 : tensor<2x3xf32>
  return
}

// -----

// moe.slice: a window past the end of the last dimension.
func.func @slice_past_end(%x: tensor<2x3x10xf32>) {
  // expected-error @+1 {{'moe.slice' op 'result' must be a non-empty window of the 10 elements of 'input''s last dimension, got 4 from offset 7}}
  %s = moe.slice %x from 7 : tensor<2x3x10xf32> -> tensor<2x3x4xf32>
  return
}

// -----

// moe.slice: a window of another tensor's rows.
func.func @slice_other_rows(%x: tensor<2x3x10xf32>) {
  // expected-error @+1 {{'moe.slice' op 'result' must have the shape of 'input' [2, 3, 10] but for its last dimension, got [2, 4, 4]}}
  %s = moe.slice %x from 0 : tensor<2x3x10xf32> -> tensor<2x4x4xf32>
  return
}

// -----

// moe.pad: the input wider than the result.
func.func @pad_narrower(%x: tensor<2x10xf32>) {
  // expected-error @+1 {{'moe.pad' op 'input' must be a non-empty window of the 8 elements of 'result''s last dimension, got 10 from offset 0}}
  %p = moe.pad %x at 0 : tensor<2x10xf32> -> tensor<2x8xf32>
  return
}

// -----

// moe.concat: widths that do not add up to the result's.
func.func @concat_width(%a: tensor<2x4x6xf32>, %b: tensor<2x4x4xf32>) {
  // expected-error @+1 {{'moe.concat' op 'result''s last dimension must be the sum of 'lhs''s and 'rhs''s, 10, got 12}}
  %c = moe.concat %a, %b : tensor<2x4x6xf32>, tensor<2x4x4xf32> -> tensor<2x4x12xf32>
  return
}

// -----

// moe.concat: only a second-to-last dimension of 1 is read for each head.
func.func @concat_broadcast_rows(%a: tensor<2x4x6xf32>, %b: tensor<1x4x4xf32>) {
  // expected-error @+1 {{'moe.concat' op 'rhs' must have the shape of 'result' [2, 4, 10] but for its last dimension (and a second-to-last of 1), got [1, 4, 4]}}
  %c = moe.concat %a, %b : tensor<2x4x6xf32>, tensor<1x4x4xf32> -> tensor<2x4x10xf32>
  return
}

// -----

// moe.concat: operands of two element types.
func.func @concat_types(%a: tensor<2x4x6xf32>, %b: tensor<2x4x4xf64>) {
  // expected-error @+1 {{'moe.concat' op 'rhs' must have element type 'f32' (that of 'result'), got 'f64'}}
  %c = moe.concat %a, %b : tensor<2x4x6xf32>, tensor<2x4x4xf64> -> tensor<2x4x10xf32>
  return
}

