// RUN: moe-opt %s -split-input-file -verify-diagnostics

// One case per distinct error of the backward ops' verifiers (MoeGradOps.cpp,
// with the checks shared with the forward ops), one ODS failure per
// AllTypesMatch group of these ops, and representative ODS constraint
// failures. Messages name the operand or attribute at fault and the value
// expected. Round trips: grad-ops.mlir; optimizer ops:
// invalid-optimizer-ops.mlir; moe.attention_grad: invalid-attention-grad.mlir.

// moe.embedding_grad: d_table is [vocab, hidden].
func.func @embedding_grad_table_rank(%ids: tensor<2x3xi32>, %dy: tensor<2x3x8xf32>) {
  // expected-error @+1 {{'moe.embedding_grad' op 'd_table' must have rank 2 ([vocab, hidden]), got rank 1}}
  %dt = moe.embedding_grad %ids, %dy : tensor<2x3xi32>, tensor<2x3x8xf32> -> tensor<16xf32>
  return
}

// -----

// moe.embedding_grad: the padding id is a row of d_table.
func.func @embedding_grad_negative_padding(%ids: tensor<2x3xi32>, %dy: tensor<2x3x8xf32>) {
  // expected-error @+1 {{'moe.embedding_grad' op padding_id -1 is outside the vocabulary [0, 16)}}
  %dt = moe.embedding_grad %ids, %dy padding_id = -1 : tensor<2x3xi32>, tensor<2x3x8xf32> -> tensor<16x8xf32>
  return
}

// -----

// moe.embedding_grad: d_result is the shape of ids followed by hidden.
func.func @embedding_grad_result_shape(%ids: tensor<2x3xi32>, %dy: tensor<2x3x4xf32>) {
  // expected-error @+1 {{'moe.embedding_grad' op 'd_result' must have shape [2, 3, 8], got [2, 3, 4]}}
  %dt = moe.embedding_grad %ids, %dy : tensor<2x3xi32>, tensor<2x3x4xf32> -> tensor<16x8xf32>
  return
}

// -----

// moe.embedding_grad: d_table has the element type of d_result.
func.func @embedding_grad_element_type(%ids: tensor<2x3xi32>, %dy: tensor<2x3x8xf32>) {
  // expected-error @+1 {{'moe.embedding_grad' op 'd_result' must have element type 'f64' (that of 'd_table'), got 'f32'}}
  %dt = moe.embedding_grad %ids, %dy : tensor<2x3xi32>, tensor<2x3x8xf32> -> tensor<16x8xf64>
  return
}

// -----

// moe.embedding_grad (ODS): ids must be i32.
func.func @embedding_grad_ids_i64(%ids: tensor<2x3xi64>, %dy: tensor<2x3x8xf32>) {
  // expected-error @+1 {{'moe.embedding_grad' op operand #0 must be statically shaped tensor of 32-bit signless integer values, but got 'tensor<2x3xi64>'}}
  %dt = moe.embedding_grad %ids, %dy : tensor<2x3xi64>, tensor<2x3x8xf32> -> tensor<16x8xf32>
  return
}

// -----

// moe.rms_norm_grad: a 0-D input has no axis to normalize.
func.func @rms_norm_grad_rank0(%x: tensor<f32>, %w: tensor<1xf32>, %dy: tensor<f32>) {
  // expected-error @+1 {{'moe.rms_norm_grad' op 'input' must have rank >= 1}}
  %dx, %dw = moe.rms_norm_grad %x, %w, %dy eps = 1.0e-05 : tensor<f32>, tensor<1xf32>
  return
}

// -----

// moe.rms_norm_grad: the weight is [hidden].
func.func @rms_norm_grad_weight_shape(%x: tensor<4x8xf32>, %w: tensor<4xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{'moe.rms_norm_grad' op 'weight' must have shape [8], got [4]}}
  %dx, %dw = moe.rms_norm_grad %x, %w, %dy eps = 1.0e-05 : tensor<4x8xf32>, tensor<4xf32>
  return
}

// -----

// moe.rms_norm_grad: the weight has the element type the op computes in,
// the gradients'.
func.func @rms_norm_grad_weight_element_type(%x: tensor<4x8xf32>, %w: tensor<8xf64>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{'moe.rms_norm_grad' op 'weight' must have element type 'f32' (that of 'd_result'), got 'f64'}}
  %dx, %dw = moe.rms_norm_grad %x, %w, %dy eps = 1.0e-05 : tensor<4x8xf32>, tensor<8xf64>
  return
}

// -----

// moe.rms_norm_grad: eps must be positive.
func.func @rms_norm_grad_eps(%x: tensor<4x8xf32>, %w: tensor<8xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{'moe.rms_norm_grad' op attribute 'eps' must be a positive finite number, got 0.000000e+00}}
  %dx, %dw = moe.rms_norm_grad %x, %w, %dy eps = 0.0 : tensor<4x8xf32>, tensor<8xf32>
  return
}

// -----

// moe.rms_norm_grad (ODS): d_input has the type of d_result (generic form).
func.func @rms_norm_grad_d_result_type(%x: tensor<4x8xf32>, %w: tensor<8xf32>, %dy: tensor<4x8xf64>) {
  // expected-error @+1 {{'moe.rms_norm_grad' op failed to verify that all of {d_result, d_input} have same type}}
  %dx, %dw = "moe.rms_norm_grad"(%x, %w, %dy) <{eps = 1.0e-05 : f64}> : (tensor<4x8xf32>, tensor<8xf32>, tensor<4x8xf64>) -> (tensor<4x8xf32>, tensor<8xf32>)
  return
}

// -----

// moe.rms_norm_grad (ODS): d_weight has the type of the weight (generic form).
func.func @rms_norm_grad_d_weight_type(%x: tensor<4x8xf32>, %w: tensor<8xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{'moe.rms_norm_grad' op failed to verify that all of {weight, d_weight} have same type}}
  %dx, %dw = "moe.rms_norm_grad"(%x, %w, %dy) <{eps = 1.0e-05 : f64}> : (tensor<4x8xf32>, tensor<8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return
}

// -----

// moe.linear_input_grad: the weight is [out_features, in_features].
func.func @linear_input_grad_weight_rank(%dy: tensor<2x3x6xf32>, %w: tensor<6xf32>) {
  // expected-error @+1 {{'moe.linear_input_grad' op 'weight' must have rank 2 ([out_features, in_features]), got rank 1}}
  %dx = moe.linear_input_grad %dy, %w : tensor<2x3x6xf32>, tensor<6xf32> -> tensor<2x3x8xf32>
  return
}

// -----

// moe.linear_input_grad: d_result's last axis is out_features.
func.func @linear_input_grad_out_features(%dy: tensor<2x3x8xf32>, %w: tensor<6x8xf32>) {
  // expected-error @+1 {{'moe.linear_input_grad' op 'd_result' last dimension must be 6 (out_features of 'weight')}}
  %dx = moe.linear_input_grad %dy, %w : tensor<2x3x8xf32>, tensor<6x8xf32> -> tensor<2x3x8xf32>
  return
}

// -----

// moe.linear_input_grad: d_input replaces the last axis of d_result by in_features.
func.func @linear_input_grad_d_input_shape(%dy: tensor<2x3x6xf32>, %w: tensor<6x8xf32>) {
  // expected-error @+1 {{'moe.linear_input_grad' op 'd_input' must have shape [2, 3, 8], got [2, 3, 6]}}
  %dx = moe.linear_input_grad %dy, %w : tensor<2x3x6xf32>, tensor<6x8xf32> -> tensor<2x3x6xf32>
  return
}

// -----

// moe.linear_input_grad: the weight has the element type of d_result.
func.func @linear_input_grad_weight_element_type(%dy: tensor<2x3x6xf32>, %w: tensor<6x8xf64>) {
  // expected-error @+1 {{'moe.linear_input_grad' op 'weight' must have element type 'f32' (that of 'd_result'), got 'f64'}}
  %dx = moe.linear_input_grad %dy, %w : tensor<2x3x6xf32>, tensor<6x8xf64> -> tensor<2x3x8xf32>
  return
}

// -----

// moe.linear_input_grad: d_input has the element type of d_result.
func.func @linear_input_grad_d_input_element_type(%dy: tensor<2x3x6xf32>, %w: tensor<6x8xf32>) {
  // expected-error @+1 {{'moe.linear_input_grad' op 'd_input' must have element type 'f32' (that of 'd_result'), got 'f64'}}
  %dx = moe.linear_input_grad %dy, %w : tensor<2x3x6xf32>, tensor<6x8xf32> -> tensor<2x3x8xf64>
  return
}

// -----

// moe.linear_weight_grad: d_result and input have the same leading positions.
func.func @linear_weight_grad_leading(%dy: tensor<2x3x6xf32>, %x: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'moe.linear_weight_grad' op 'd_result' and 'input' must share their leading dimensions, got [2, 3, 6] and [2, 4, 8]}}
  %dw = moe.linear_weight_grad %dy, %x : tensor<2x3x6xf32>, tensor<2x4x8xf32> -> tensor<6x8xf32>
  return
}

// -----

// moe.linear_weight_grad: d_weight is [out_features, in_features].
func.func @linear_weight_grad_d_weight_shape(%dy: tensor<2x3x6xf32>, %x: tensor<2x3x8xf32>) {
  // expected-error @+1 {{'moe.linear_weight_grad' op 'd_weight' must have shape [6, 8], got [8, 6]}}
  %dw = moe.linear_weight_grad %dy, %x : tensor<2x3x6xf32>, tensor<2x3x8xf32> -> tensor<8x6xf32>
  return
}

// -----

// moe.linear_weight_grad: the input has the element type of d_result.
func.func @linear_weight_grad_input_element_type(%dy: tensor<2x3x6xf32>, %x: tensor<2x3x8xf64>) {
  // expected-error @+1 {{'moe.linear_weight_grad' op 'input' must have element type 'f32' (that of 'd_result'), got 'f64'}}
  %dw = moe.linear_weight_grad %dy, %x : tensor<2x3x6xf32>, tensor<2x3x8xf64> -> tensor<6x8xf32>
  return
}

// -----

// moe.linear_weight_grad: d_weight has the element type of d_result.
func.func @linear_weight_grad_d_weight_element_type(%dy: tensor<2x3x6xf32>, %x: tensor<2x3x8xf32>) {
  // expected-error @+1 {{'moe.linear_weight_grad' op 'd_weight' must have element type 'f32' (that of 'd_result'), got 'f64'}}
  %dw = moe.linear_weight_grad %dy, %x : tensor<2x3x6xf32>, tensor<2x3x8xf32> -> tensor<6x8xf64>
  return
}

// -----

// moe.bias_grad: a 0-D d_result has no feature axis.
func.func @bias_grad_rank0(%dy: tensor<f32>) {
  // expected-error @+1 {{'moe.bias_grad' op 'd_result' must have rank >= 1}}
  %db = moe.bias_grad %dy : tensor<f32> -> tensor<1xf32>
  return
}

// -----

// moe.bias_grad: d_bias is [features], the last axis of d_result.
func.func @bias_grad_shape(%dy: tensor<2x3x6xf32>) {
  // expected-error @+1 {{'moe.bias_grad' op 'd_bias' must have shape [6], got [3]}}
  %db = moe.bias_grad %dy : tensor<2x3x6xf32> -> tensor<3xf32>
  return
}

// -----

// moe.bias_grad: d_bias has the element type of d_result.
func.func @bias_grad_element_type(%dy: tensor<2x3x6xf32>) {
  // expected-error @+1 {{'moe.bias_grad' op 'd_bias' must have element type 'f32' (that of 'd_result'), got 'f64'}}
  %db = moe.bias_grad %dy : tensor<2x3x6xf32> -> tensor<6xf64>
  return
}

// -----

// moe.sigmoid_scale_grad: the operand checks of moe.sigmoid_scale.
func.func @sigmoid_scale_grad_logit(%x: tensor<4x8xf32>, %g: tensor<3x1xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{'moe.sigmoid_scale_grad' op 'logit' must have shape [4, 1] (a gate a row) or [4, 8] (a gate an element), got [3, 1]}}
  %d:2 = moe.sigmoid_scale_grad %x, %g, %dy : tensor<4x8xf32>, tensor<3x1xf32>
  return
}

// -----

// moe.sigmoid_scale_grad (ODS): input, d_result and d_input have one type (generic form).
func.func @sigmoid_scale_grad_types(%x: tensor<4x8xf32>, %g: tensor<4x1xf32>, %dy: tensor<4x6xf32>) {
  // expected-error @+1 {{'moe.sigmoid_scale_grad' op failed to verify that all of {input, d_result, d_input} have same type}}
  %d:2 = "moe.sigmoid_scale_grad"(%x, %g, %dy) : (tensor<4x8xf32>, tensor<4x1xf32>, tensor<4x6xf32>) -> (tensor<4x8xf32>, tensor<4x1xf32>)
  return
}

// -----

// moe.swiglu_grad (ODS): gate, up, d_result, d_gate and d_up have one type (generic form).
func.func @swiglu_grad_types(%g: tensor<4x8xf32>, %u: tensor<4x6xf32>, %dy: tensor<4x8xf32>) {
  // expected-error @+1 {{'moe.swiglu_grad' op failed to verify that all of {gate, up, d_result, d_gate, d_up} have same type}}
  %d:2 = "moe.swiglu_grad"(%g, %u, %dy) : (tensor<4x8xf32>, tensor<4x6xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>)
  return
}

// -----

// moe.cross_entropy_grad: 0-D logits have no vocabulary axis.
func.func @cross_entropy_grad_rank0(%z: tensor<f32>, %t: tensor<i32>, %dl: tensor<f32>) {
  // expected-error @+1 {{'moe.cross_entropy_grad' op 'logits' must have rank >= 1 ([..., vocab])}}
  %dz = moe.cross_entropy_grad %z, %t, %dl : tensor<f32>, tensor<i32>, tensor<f32>
  return
}

// -----

// moe.cross_entropy_grad: targets have the leading shape of the logits.
func.func @cross_entropy_grad_targets_shape(%z: tensor<2x3x16xf32>, %t: tensor<2x4xi32>, %dl: tensor<f32>) {
  // expected-error @+1 {{'moe.cross_entropy_grad' op 'targets' must have shape [2, 3], got [2, 4]}}
  %dz = moe.cross_entropy_grad %z, %t, %dl : tensor<2x3x16xf32>, tensor<2x4xi32>, tensor<f32>
  return
}

// -----

// moe.cross_entropy_grad: d_loss has the element type of the logits.
func.func @cross_entropy_grad_d_loss_element_type(%z: tensor<2x3x16xf32>, %t: tensor<2x3xi32>, %dl: tensor<f64>) {
  // expected-error @+1 {{'moe.cross_entropy_grad' op 'd_loss' must have element type 'f32' (that of 'logits'), got 'f64'}}
  %dz = moe.cross_entropy_grad %z, %t, %dl : tensor<2x3x16xf32>, tensor<2x3xi32>, tensor<f64>
  return
}

// -----

// moe.cross_entropy_grad: d_logits has the type of the logits, or bf16 for
// f32 ones (generic form).
func.func @cross_entropy_grad_d_logits_type(%z: tensor<2x3x16xf32>, %t: tensor<2x3xi32>, %dl: tensor<f32>) {
  // expected-error @+1 {{'moe.cross_entropy_grad' op 'd_logits' must have the element type of 'logits' ('f32') or bf16, got 'f64'}}
  %dz = "moe.cross_entropy_grad"(%z, %t, %dl) : (tensor<2x3x16xf32>, tensor<2x3xi32>, tensor<f32>) -> tensor<2x3x16xf64>
  return
}

// -----

// moe.cross_entropy_grad (ODS): d_loss is a 0-D tensor.
func.func @cross_entropy_grad_d_loss_rank(%z: tensor<2x3x16xf32>, %t: tensor<2x3xi32>, %dl: tensor<1xf32>) {
  // expected-error @+1 {{'moe.cross_entropy_grad' op operand #2 must be 0D tensor of 32-bit float or 64-bit float values, but got 'tensor<1xf32>'}}
  %dz = moe.cross_entropy_grad %z, %t, %dl : tensor<2x3x16xf32>, tensor<2x3xi32>, tensor<1xf32>
  return
}

// -----

// moe.gate_grad: the logits are [tokens, experts].
func.func @gate_grad_logits_rank(%z: tensor<16x4x1xf32>, %i: tensor<16x2xi32>, %dp: tensor<16x4x1xf32>, %dw: tensor<16x2xf32>) {
  // expected-error @+1 {{'moe.gate_grad' op 'logits' must have rank 2 ([tokens, experts]), got rank 3}}
  %dz = moe.gate_grad %z, %i, %dp, %dw : tensor<16x4x1xf32>, tensor<16x2xi32>, tensor<16x2xf32>
  return
}

// -----

// moe.gate_grad: the indices are [tokens, top_k].
func.func @gate_grad_indices_rank(%z: tensor<16x4xf32>, %i: tensor<16xi32>, %dp: tensor<16x4xf32>, %dw: tensor<16x2xf32>) {
  // expected-error @+1 {{'moe.gate_grad' op 'indices' must have rank 2 ([tokens, top_k]), got rank 1}}
  %dz = moe.gate_grad %z, %i, %dp, %dw : tensor<16x4xf32>, tensor<16xi32>, tensor<16x2xf32>
  return
}

// -----

// moe.gate_grad: the indices have a row per token of the logits.
func.func @gate_grad_indices_tokens(%z: tensor<16x4xf32>, %i: tensor<8x2xi32>, %dp: tensor<16x4xf32>, %dw: tensor<16x2xf32>) {
  // expected-error @+1 {{'moe.gate_grad' op 'indices' must have shape [16, 2], got [8, 2]}}
  %dz = moe.gate_grad %z, %i, %dp, %dw : tensor<16x4xf32>, tensor<8x2xi32>, tensor<16x2xf32>
  return
}

// -----

// moe.gate_grad: d_weights has the shape of the indices.
func.func @gate_grad_d_weights_shape(%z: tensor<16x4xf32>, %i: tensor<16x2xi32>, %dp: tensor<16x4xf32>, %dw: tensor<16x3xf32>) {
  // expected-error @+1 {{'moe.gate_grad' op 'd_weights' must have shape [16, 2], got [16, 3]}}
  %dz = moe.gate_grad %z, %i, %dp, %dw : tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x3xf32>
  return
}

// -----

// moe.gate_grad: norm_lambda must be positive.
func.func @gate_grad_norm_lambda(%z: tensor<16x4xf32>, %i: tensor<16x2xi32>, %dp: tensor<16x4xf32>, %dw: tensor<16x2xf32>) {
  // expected-error @+1 {{'moe.gate_grad' op attribute 'norm_lambda' must be a positive finite number, got 0.000000e+00}}
  %dz = moe.gate_grad %z, %i, %dp, %dw norm_lambda = 0.0 : tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x2xf32>
  return
}

// -----

// moe.gate_grad: norm_eps must be positive.
func.func @gate_grad_norm_eps(%z: tensor<16x4xf32>, %i: tensor<16x2xi32>, %dp: tensor<16x4xf32>, %dw: tensor<16x2xf32>) {
  // expected-error @+1 {{'moe.gate_grad' op attribute 'norm_eps' must be a positive finite number, got -1.000000e-06}}
  %dz = moe.gate_grad %z, %i, %dp, %dw norm_lambda = 1.0 norm_eps = -1.0e-06 : tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x2xf32>
  return
}

// -----

// moe.gate_grad: d_weights has the element type of the logits.
func.func @gate_grad_d_weights_element_type(%z: tensor<16x4xf32>, %i: tensor<16x2xi32>, %dp: tensor<16x4xf32>, %dw: tensor<16x2xf64>) {
  // expected-error @+1 {{'moe.gate_grad' op 'd_weights' must have element type 'f32' (that of 'logits'), got 'f64'}}
  %dz = moe.gate_grad %z, %i, %dp, %dw : tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x2xf64>
  return
}

// -----

// moe.gate_grad (ODS): d_probs has the type of the logits (generic form).
func.func @gate_grad_d_probs_type(%z: tensor<16x4xf32>, %i: tensor<16x2xi32>, %dp: tensor<16x2xf32>, %dw: tensor<16x2xf32>) {
  // expected-error @+1 {{'moe.gate_grad' op failed to verify that all of {logits, d_probs, d_logits} have same type}}
  %dz = "moe.gate_grad"(%z, %i, %dp, %dw) : (tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x2xf32>, tensor<16x2xf32>) -> tensor<16x4xf32>
  return
}

// -----

// moe.gate_norm_grad: the logits are [tokens, experts].
func.func @gate_norm_grad_logits_rank(%z: tensor<16x4x1xf32>, %dzn: tensor<16x4x1xf32>) {
  // expected-error @+1 {{'moe.gate_norm_grad' op 'logits' must have rank 2 ([tokens, experts]), got rank 3}}
  %dz = moe.gate_norm_grad %z, %dzn norm_lambda = 1.0 : tensor<16x4x1xf32>
  return
}

// -----

// moe.gate_norm_grad: norm_lambda must be positive.
func.func @gate_norm_grad_lambda(%z: tensor<16x4xf32>, %dzn: tensor<16x4xf32>) {
  // expected-error @+1 {{'moe.gate_norm_grad' op attribute 'norm_lambda' must be a positive finite number, got -1.000000e+00}}
  %dz = moe.gate_norm_grad %z, %dzn norm_lambda = -1.0 : tensor<16x4xf32>
  return
}

// -----

// moe.gate_norm_grad: norm_eps must be positive.
func.func @gate_norm_grad_eps(%z: tensor<16x4xf32>, %dzn: tensor<16x4xf32>) {
  // expected-error @+1 {{'moe.gate_norm_grad' op attribute 'norm_eps' must be a positive finite number, got 0.000000e+00}}
  %dz = moe.gate_norm_grad %z, %dzn norm_lambda = 1.0 norm_eps = 0.0 : tensor<16x4xf32>
  return
}

// -----

// moe.gate_norm_grad (ODS): d_result has the type of the logits (generic
// form).
func.func @gate_norm_grad_d_result_type(%z: tensor<16x4xf32>, %dzn: tensor<16x4xf64>) {
  // expected-error @+1 {{'moe.gate_norm_grad' op failed to verify that all of {logits, d_result, d_logits} have same type}}
  %dz = "moe.gate_norm_grad"(%z, %dzn) {norm_lambda = 1.0 : f64} : (tensor<16x4xf32>, tensor<16x4xf64>) -> tensor<16x4xf32>
  return
}

// -----

// moe.dispatch_grad: d_buffer is [experts, capacity, hidden].
func.func @dispatch_grad_d_buffer_rank(%db: tensor<4x8xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch_grad' op 'd_buffer' must have rank 3 ([experts, capacity, hidden]), got rank 2}}
  %dx = moe.dispatch_grad %db, %i, %s : tensor<4x8xf32>, tensor<16x2xi32> -> tensor<16x8xf32>
  return
}

// -----

// moe.dispatch_grad: the indices are [tokens, top_k].
func.func @dispatch_grad_indices_rank(%db: tensor<4x10x8xf32>, %i: tensor<16xi32>, %s: tensor<16xi32>) {
  // expected-error @+1 {{'moe.dispatch_grad' op 'indices' must have rank 2 ([tokens, top_k]), got rank 1}}
  %dx = moe.dispatch_grad %db, %i, %s : tensor<4x10x8xf32>, tensor<16xi32> -> tensor<16x8xf32>
  return
}

// -----

// moe.dispatch_grad: d_tokens is [tokens, hidden].
func.func @dispatch_grad_d_tokens_shape(%db: tensor<4x10x8xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch_grad' op 'd_tokens' must have shape [16, 8], got [16, 6]}}
  %dx = moe.dispatch_grad %db, %i, %s : tensor<4x10x8xf32>, tensor<16x2xi32> -> tensor<16x6xf32>
  return
}

// -----

// moe.dispatch_grad: d_tokens has the element type of d_buffer.
func.func @dispatch_grad_d_tokens_element_type(%db: tensor<4x10x8xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch_grad' op 'd_tokens' must have element type 'f32' (that of 'd_buffer'), got 'f64'}}
  %dx = moe.dispatch_grad %db, %i, %s : tensor<4x10x8xf32>, tensor<16x2xi32> -> tensor<16x8xf64>
  return
}

// -----

// moe.dispatch_grad (ODS): slots have the type of the indices (generic form).
func.func @dispatch_grad_slots_type(%db: tensor<4x10x8xf32>, %i: tensor<16x2xi32>, %s: tensor<16x1xi32>) {
  // expected-error @+1 {{'moe.dispatch_grad' op failed to verify that all of {indices, slots} have same type}}
  %dx = "moe.dispatch_grad"(%db, %i, %s) : (tensor<4x10x8xf32>, tensor<16x2xi32>, tensor<16x1xi32>) -> tensor<16x8xf32>
  return
}

// -----

// moe.expert_ffn_grad (ODS): d_result has the type of the input (generic form).
func.func @expert_ffn_grad_d_result_type(%x: tensor<4x10x8xf32>, %w1: tensor<4x12x8xf32>, %w3: tensor<4x12x8xf32>, %w2: tensor<4x8x12xf32>, %proj: tensor<4x2x10x12xf32>, %dy: tensor<4x10x8xf64>) {
  // expected-error @+1 {{'moe.expert_ffn_grad' op failed to verify that all of {input, d_result} have same type}}
  %d:4 = "moe.expert_ffn_grad"(%x, %w1, %w3, %w2, %proj, %dy) : (tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32>, tensor<4x2x10x12xf32>, tensor<4x10x8xf64>) -> (tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32>)
  return
}

// -----

// moe.expert_ffn_grad (ODS): gate_proj and up_proj have one type (generic form).
func.func @expert_ffn_grad_up_proj_type(%x: tensor<4x10x8xf32>, %w1: tensor<4x12x8xf32>, %w3: tensor<4x6x8xf32>, %w2: tensor<4x8x12xf32>, %proj: tensor<4x2x10x12xf32>, %dy: tensor<4x10x8xf32>) {
  // expected-error @+1 {{'moe.expert_ffn_grad' op failed to verify that all of {gate_proj, up_proj} have same type}}
  %d:4 = "moe.expert_ffn_grad"(%x, %w1, %w3, %w2, %proj, %dy) : (tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x6x8xf32>, tensor<4x8x12xf32>, tensor<4x2x10x12xf32>, tensor<4x10x8xf32>) -> (tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32>)
  return
}

// -----

// moe.expert_ffn_grad (ODS): d_down_proj has the shape of down_proj, in f32
// for bf16 operands (generic form).
func.func @expert_ffn_grad_d_down_proj_type(%x: tensor<4x10x8xf32>, %w1: tensor<4x12x8xf32>, %w3: tensor<4x12x8xf32>, %w2: tensor<4x8x12xf32>, %proj: tensor<4x2x10x12xf32>, %dy: tensor<4x10x8xf32>) {
  // expected-error @+1 {{'moe.expert_ffn_grad' op failed to verify that 'd_down_proj' has the shape of 'down_proj' and the element type of a GEMM over it}}
  %d:4 = "moe.expert_ffn_grad"(%x, %w1, %w3, %w2, %proj, %dy) : (tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32>, tensor<4x2x10x12xf32>, tensor<4x10x8xf32>) -> (tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>)
  return
}

// -----

// moe.combine_grad: expert_output is [experts, capacity, hidden].
func.func @combine_grad_expert_output_rank(%out: tensor<40x8xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>, %dy: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.combine_grad' op 'expert_output' must have rank 3 ([experts, capacity, hidden]), got rank 2}}
  %dout, %dw = moe.combine_grad %out, %w, %i, %s, %dy : tensor<40x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x8xf32>
  return
}

// -----

// moe.combine_grad: the weights are [tokens, top_k].
func.func @combine_grad_weights_rank(%out: tensor<4x10x8xf32>, %w: tensor<32xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>, %dy: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.combine_grad' op 'weights' must have rank 2 ([tokens, top_k]), got rank 1}}
  %dout, %dw = moe.combine_grad %out, %w, %i, %s, %dy : tensor<4x10x8xf32>, tensor<32xf32>, tensor<16x2xi32>, tensor<16x8xf32>
  return
}

// -----

// moe.combine_grad: the indices (and slots) have the shape of the weights.
func.func @combine_grad_indices_shape(%out: tensor<4x10x8xf32>, %w: tensor<16x2xf32>, %i: tensor<16x3xi32>, %s: tensor<16x3xi32>, %dy: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.combine_grad' op 'indices' must have shape [16, 2], got [16, 3]}}
  %dout, %dw = moe.combine_grad %out, %w, %i, %s, %dy : tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x3xi32>, tensor<16x8xf32>
  return
}

// -----

// moe.combine_grad: d_result is [tokens, hidden].
func.func @combine_grad_d_result_shape(%out: tensor<4x10x8xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>, %dy: tensor<16x6xf32>) {
  // expected-error @+1 {{'moe.combine_grad' op 'd_result' must have shape [16, 8], got [16, 6]}}
  %dout, %dw = moe.combine_grad %out, %w, %i, %s, %dy : tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x6xf32>
  return
}

// -----

// moe.combine_grad: the weights have the element type the op computes in,
// d_result's.
func.func @combine_grad_weights_element_type(%out: tensor<4x10x8xf32>, %w: tensor<16x2xf64>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>, %dy: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.combine_grad' op 'weights' must have element type 'f32' (that of 'd_result'), got 'f64'}}
  %dout, %dw = moe.combine_grad %out, %w, %i, %s, %dy : tensor<4x10x8xf32>, tensor<16x2xf64>, tensor<16x2xi32>, tensor<16x8xf32>
  return
}

// -----

// moe.combine_grad: expert_output has d_result's element type (or is bf16
// where that is f32).
func.func @combine_grad_d_result_element_type(%out: tensor<4x10x8xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>, %dy: tensor<16x8xf64>) {
  // expected-error @+1 {{'moe.combine_grad' op 'expert_output' must have the element type of 'd_result' ('f64'), got 'f32'}}
  %dout, %dw = moe.combine_grad %out, %w, %i, %s, %dy : tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x8xf64>
  return
}

// -----

// moe.combine_grad: d_expert_output has d_result's element type, or is bf16
// where that is f32 (generic form).
func.func @combine_grad_d_expert_output_type(%out: tensor<4x10x8xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>, %dy: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.combine_grad' op 'd_expert_output' must have the element type of 'd_result' ('f32') or bf16, got 'f64'}}
  %d:2 = "moe.combine_grad"(%out, %w, %i, %s, %dy) : (tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x2xi32>, tensor<16x8xf32>) -> (tensor<4x10x8xf64>, tensor<16x2xf32>)
  return
}

// -----

// moe.combine_grad (ODS): slots have the type of the indices (generic form).
func.func @combine_grad_slots_type(%out: tensor<4x10x8xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>, %s: tensor<16x3xi32>, %dy: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.combine_grad' op failed to verify that all of {indices, slots} have same type}}
  %d:2 = "moe.combine_grad"(%out, %w, %i, %s, %dy) : (tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x3xi32>, tensor<16x8xf32>) -> (tensor<4x10x8xf32>, tensor<16x2xf32>)
  return
}

// -----

// moe.combine_grad (ODS): d_weights has the type of the weights (generic form).
func.func @combine_grad_d_weights_type(%out: tensor<4x10x8xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>, %dy: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.combine_grad' op failed to verify that all of {weights, d_weights} have same type}}
  %d:2 = "moe.combine_grad"(%out, %w, %i, %s, %dy) : (tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x2xi32>, tensor<16x8xf32>) -> (tensor<4x10x8xf32>, tensor<16x1xf32>)
  return
}

// -----

// moe.aux_loss_grad: the probabilities are [tokens, experts].
func.func @aux_loss_grad_probs_rank(%p: tensor<16x4x1xf32>, %i: tensor<16x2xi32>, %dl: tensor<f32>) {
  // expected-error @+1 {{'moe.aux_loss_grad' op 'probs' must have rank 2 ([tokens, experts]), got rank 3}}
  %dp = moe.aux_loss_grad skywork %p, %i, %dl : tensor<16x4x1xf32>, tensor<16x2xi32>, tensor<f32>
  return
}

// -----

// moe.aux_loss_grad: the indices are [tokens, top_k].
func.func @aux_loss_grad_indices_rank(%p: tensor<16x4xf32>, %i: tensor<32xi32>, %dl: tensor<f32>) {
  // expected-error @+1 {{'moe.aux_loss_grad' op 'indices' must have rank 2 ([tokens, top_k]), got rank 1}}
  %dp = moe.aux_loss_grad switch %p, %i, %dl : tensor<16x4xf32>, tensor<32xi32>, tensor<f32>
  return
}

// -----

// moe.aux_loss_grad: the indices have a row per token of the probabilities.
func.func @aux_loss_grad_indices_tokens(%p: tensor<16x4xf32>, %i: tensor<8x2xi32>, %dl: tensor<f32>) {
  // expected-error @+1 {{'moe.aux_loss_grad' op 'indices' must have shape [16, 2], got [8, 2]}}
  %dp = moe.aux_loss_grad skywork %p, %i, %dl : tensor<16x4xf32>, tensor<8x2xi32>, tensor<f32>
  return
}

// -----

// moe.aux_loss_grad: d_loss has the element type of the probabilities.
func.func @aux_loss_grad_d_loss_element_type(%p: tensor<16x4xf32>, %i: tensor<16x2xi32>, %dl: tensor<f64>) {
  // expected-error @+1 {{'moe.aux_loss_grad' op 'd_loss' must have element type 'f32' (that of 'probs'), got 'f64'}}
  %dp = moe.aux_loss_grad switch %p, %i, %dl : tensor<16x4xf32>, tensor<16x2xi32>, tensor<f64>
  return
}

// -----

// moe.aux_loss_grad (ODS): d_probs has the type of the probabilities (generic form).
func.func @aux_loss_grad_d_probs_type(%p: tensor<16x4xf32>, %i: tensor<16x2xi32>, %dl: tensor<f32>) {
  // expected-error @+1 {{'moe.aux_loss_grad' op failed to verify that all of {probs, d_probs} have same type}}
  %dp = "moe.aux_loss_grad"(%p, %i, %dl) <{kind = 0 : i32}> : (tensor<16x4xf32>, tensor<16x2xi32>, tensor<f32>) -> tensor<16x2xf32>
  return
}

// -----

// moe.z_loss_grad: the logits are [tokens, experts].
func.func @z_loss_grad_rank(%z: tensor<64xf32>, %dl: tensor<f32>) {
  // expected-error @+1 {{'moe.z_loss_grad' op 'logits' must have rank 2 ([tokens, experts]), got rank 1}}
  %dz = moe.z_loss_grad %z, %dl : tensor<64xf32>, tensor<f32>
  return
}

// -----

// moe.z_loss_grad: d_loss has the element type of the logits.
func.func @z_loss_grad_d_loss_element_type(%z: tensor<16x4xf64>, %dl: tensor<f32>) {
  // expected-error @+1 {{'moe.z_loss_grad' op 'd_loss' must have element type 'f64' (that of 'logits'), got 'f32'}}
  %dz = moe.z_loss_grad %z, %dl : tensor<16x4xf64>, tensor<f32>
  return
}

// -----

// moe.z_loss_grad (ODS): d_logits has the type of the logits (generic form).
func.func @z_loss_grad_d_logits_type(%z: tensor<16x4xf32>, %dl: tensor<f32>) {
  // expected-error @+1 {{'moe.z_loss_grad' op failed to verify that all of {logits, d_logits} have same type}}
  %dz = "moe.z_loss_grad"(%z, %dl) : (tensor<16x4xf32>, tensor<f32>) -> tensor<16x4xf64>
  return
}

// -----

// moe.expert_ffn_grad: the input is [experts, capacity, hidden].
func.func @expert_ffn_grad_input_rank(%x: tensor<40x8xf32>, %w1: tensor<4x12x8xf32>, %w3: tensor<4x12x8xf32>, %w2: tensor<4x8x12xf32>, %proj: tensor<4x2x10x12xf32>, %dy: tensor<40x8xf32>) {
  // expected-error @+1 {{'moe.expert_ffn_grad' op 'input' must have rank 3 ([experts, capacity, hidden]), got rank 2}}
  %dx, %dw1, %dw3, %dw2 = moe.expert_ffn_grad %x, %w1, %w3, %w2, %proj, %dy : tensor<40x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32>, tensor<4x2x10x12xf32>
  return
}

// -----

// moe.expert_ffn_grad: the projections are the forward's [experts, 2, capacity, ffn].
func.func @expert_ffn_grad_projections_shape(%x: tensor<4x10x8xf32>, %w1: tensor<4x12x8xf32>, %w3: tensor<4x12x8xf32>, %w2: tensor<4x8x12xf32>, %proj: tensor<4x2x12x10xf32>, %dy: tensor<4x10x8xf32>) {
  // expected-error @+1 {{'moe.expert_ffn_grad' op 'projections' must have shape [4, 2, 10, 12], got [4, 2, 12, 10]}}
  %dx, %dw1, %dw3, %dw2 = moe.expert_ffn_grad %x, %w1, %w3, %w2, %proj, %dy : tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32>, tensor<4x2x12x10xf32>
  return
}

// -----

// moe.expert_ffn_grad: gate_proj/up_proj have the input's hidden size.
func.func @expert_ffn_grad_gate_proj_shape(%x: tensor<4x10x8xf32>, %w1: tensor<4x12x6xf32>, %w3: tensor<4x12x6xf32>, %w2: tensor<4x8x12xf32>, %proj: tensor<4x2x10x12xf32>, %dy: tensor<4x10x8xf32>) {
  // expected-error @+1 {{'moe.expert_ffn_grad' op 'gate_proj' must have shape [4, 12, 8], got [4, 12, 6]}}
  %dx, %dw1, %dw3, %dw2 = moe.expert_ffn_grad %x, %w1, %w3, %w2, %proj, %dy : tensor<4x10x8xf32>, tensor<4x12x6xf32>, tensor<4x8x12xf32>, tensor<4x2x10x12xf32>
  return
}

// -----

// moe.expert_ffn_grad: down_proj is [experts, hidden, ffn].
func.func @expert_ffn_grad_down_proj_shape(%x: tensor<4x10x8xf32>, %w1: tensor<4x12x8xf32>, %w3: tensor<4x12x8xf32>, %w2: tensor<4x12x8xf32>, %proj: tensor<4x2x10x12xf32>, %dy: tensor<4x10x8xf32>) {
  // expected-error @+1 {{'moe.expert_ffn_grad' op 'down_proj' must have shape [4, 8, 12], got [4, 12, 8]}}
  %dx, %dw1, %dw3, %dw2 = moe.expert_ffn_grad %x, %w1, %w3, %w2, %proj, %dy : tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4x2x10x12xf32>
  return
}

// -----

// moe.expert_ffn_grad: weights have the input's element type.
func.func @expert_ffn_grad_element_type(%x: tensor<4x10x8xf32>, %w1: tensor<4x12x8xf64>, %w3: tensor<4x12x8xf64>, %w2: tensor<4x8x12xf64>, %proj: tensor<4x2x10x12xf32>, %dy: tensor<4x10x8xf32>) {
  // expected-error @+1 {{'moe.expert_ffn_grad' op 'gate_proj' must have element type 'f32' (that of 'input'), got 'f64'}}
  %dx, %dw1, %dw3, %dw2 = moe.expert_ffn_grad %x, %w1, %w3, %w2, %proj, %dy : tensor<4x10x8xf32>, tensor<4x12x8xf64>, tensor<4x8x12xf64>, tensor<4x2x10x12xf32>
  return
}

// -----

// moe.gate_grad: top_k cannot exceed the number of experts.
func.func @gate_grad_top_k(%z: tensor<16x4xf32>, %i: tensor<16x5xi32>, %dp: tensor<16x4xf32>, %dw: tensor<16x5xf32>) {
  // expected-error @+1 {{'moe.gate_grad' op 'indices' top_k (5) must be at most the number of experts (4)}}
  %dz = moe.gate_grad %z, %i, %dp, %dw : tensor<16x4xf32>, tensor<16x5xi32>, tensor<16x5xf32>
  return
}

// -----

// moe.aux_loss_grad: top_k cannot exceed the number of experts.
func.func @aux_loss_grad_top_k(%p: tensor<16x4xf32>, %i: tensor<16x5xi32>, %dl: tensor<f32>) {
  // expected-error @+1 {{'moe.aux_loss_grad' op 'indices' top_k (5) must be at most the number of experts (4)}}
  %dp = moe.aux_loss_grad switch %p, %i, %dl : tensor<16x4xf32>, tensor<16x5xi32>, tensor<f32>
  return
}

// -----

// moe.dispatch_grad: d_buffer has at least top_k experts.
func.func @dispatch_grad_experts(%db: tensor<1x10x8xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch_grad' op 'd_buffer' must have at least top_k = 2 experts, got 1}}
  %dx = moe.dispatch_grad %db, %i, %s : tensor<1x10x8xf32>, tensor<16x2xi32> -> tensor<16x8xf32>
  return
}

// -----

// moe.linear_weight_grad: 0-D operands lack the feature axis.
func.func @linear_weight_grad_rank0(%dy: tensor<f32>, %x: tensor<f32>) {
  // expected-error @+1 {{'moe.linear_weight_grad' op 'd_result' must have rank >= 1}}
  %dw = moe.linear_weight_grad %dy, %x : tensor<f32>, tensor<f32> -> tensor<1x1xf32>
  return
}

// -----

// moe.linear_input_grad: the message gives the actual size.
func.func @linear_input_grad_out_features(%dy: tensor<2x3x8xf32>, %w: tensor<6x8xf32>) {
  // expected-error @+1 {{'moe.linear_input_grad' op 'd_result' last dimension must be 6 (out_features of 'weight'), got 8}}
  %dx = moe.linear_input_grad %dy, %w : tensor<2x3x8xf32>, tensor<6x8xf32> -> tensor<2x3x8xf32>
  return
}

// -----

// moe.rms_norm_grad: a bf16 input (the stored activation, widened) only
// where the op computes in f32.
func.func @rms_norm_grad_bf16_input_f64(%x: tensor<4x8xbf16>, %w: tensor<8xf64>, %dy: tensor<4x8xf64>) {
  // expected-error @+1 {{'moe.rms_norm_grad' op 'input' must have the element type of 'd_result' ('f64'), got 'bf16'}}
  %dx, %dw = moe.rms_norm_grad %x, %w, %dy eps = 1.0e-05 : tensor<4x8xbf16> -> tensor<4x8xf64>, tensor<8xf64>
  return
}

// -----

// moe.rms_norm_grad: d_result has the input's shape.
func.func @rms_norm_grad_d_result_shape(%x: tensor<4x8xbf16>, %w: tensor<8xf32>, %dy: tensor<2x8xf32>) {
  // expected-error @+1 {{'moe.rms_norm_grad' op 'd_result' must have shape [4, 8], got [2, 8]}}
  %dx, %dw = moe.rms_norm_grad %x, %w, %dy eps = 1.0e-05 : tensor<4x8xbf16> -> tensor<2x8xf32>, tensor<8xf32>
  return
}

// -----

// moe.combine_grad: bf16 expert outputs only where the op computes in f32.
func.func @combine_grad_bf16_expert_output_f64(%out: tensor<4x10x8xbf16>, %w: tensor<16x2xf64>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>, %dy: tensor<16x8xf64>) {
  // expected-error @+1 {{'moe.combine_grad' op 'expert_output' must have the element type of 'd_result' ('f64'), got 'bf16'}}
  %dout, %dw = moe.combine_grad %out, %w, %i, %s, %dy : tensor<4x10x8xbf16> -> tensor<4x10x8xf64>, tensor<16x2xf64>, tensor<16x2xi32>, tensor<16x8xf64>
  return
}
