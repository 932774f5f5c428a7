// RUN: moe-opt %s -split-input-file -verify-diagnostics

// One case per distinct error of the routing and expert ops' verifiers
// (MoeOps.cpp), their custom syntax, and representative ODS errors; the
// auxiliary losses and routing metrics are in invalid-aux-losses.mlir.

// moe.router: tokens are [tokens, hidden].
func.func @router_tokens_rank(%x: tensor<2x16x8xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{'moe.router' op 'tokens' must have rank 2 ([tokens, hidden]), got rank 3}}
  %z = moe.router %x, %w : tensor<2x16x8xf32>, tensor<4x8xf32> -> tensor<2x16x4xf32>
  return
}

// -----

// moe.router: the weight is [experts, hidden].
func.func @router_weight_rank(%x: tensor<16x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{'moe.router' op 'weight' must have rank 2 ([experts, hidden]), got rank 1}}
  %z = moe.router %x, %w : tensor<16x8xf32>, tensor<8xf32> -> tensor<16x4xf32>
  return
}

// -----

// moe.router: the tokens' hidden size is the weight's.
func.func @router_hidden(%x: tensor<16x8xf32>, %w: tensor<4x6xf32>) {
  // expected-error @+1 {{'moe.router' op 'tokens' last dimension must be 6 (in_features of 'weight'), got 8}}
  %z = moe.router %x, %w : tensor<16x8xf32>, tensor<4x6xf32> -> tensor<16x4xf32>
  return
}

// -----

// moe.router: the bias is [experts].
func.func @router_bias_shape(%x: tensor<16x8xf32>, %w: tensor<4x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{'moe.router' op 'bias' must have shape [4], got [8]}}
  %z = moe.router %x, %w bias %b : tensor<16x8xf32>, tensor<4x8xf32>, tensor<8xf32> -> tensor<16x4xf32>
  return
}

// -----

// moe.router: the logits are [tokens, experts].
func.func @router_logits_shape(%x: tensor<16x8xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{'moe.router' op 'logits' must have shape [16, 4], got [16, 5]}}
  %z = moe.router %x, %w : tensor<16x8xf32>, tensor<4x8xf32> -> tensor<16x5xf32>
  return
}

// -----

// moe.router: the weight has the element type of the tokens.
func.func @router_weight_element_type(%x: tensor<16x8xf32>, %w: tensor<4x8xf64>) {
  // expected-error @+1 {{'moe.router' op 'weight' must have element type 'f32' (that of 'tokens'), got 'f64'}}
  %z = moe.router %x, %w : tensor<16x8xf32>, tensor<4x8xf64> -> tensor<16x4xf32>
  return
}

// -----

// moe.router: the logits have the element type of the tokens.
func.func @router_logits_element_type(%x: tensor<16x8xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{'moe.router' op 'logits' must have element type 'f32' (that of 'tokens'), got 'f64'}}
  %z = moe.router %x, %w : tensor<16x8xf32>, tensor<4x8xf32> -> tensor<16x4xf64>
  return
}

// -----

// moe.router: the bias has the element type of the tokens.
func.func @router_bias_element_type(%x: tensor<16x8xf32>, %w: tensor<4x8xf32>, %b: tensor<4xf64>) {
  // expected-error @+1 {{'moe.router' op 'bias' must have element type 'f32' (that of 'tokens'), got 'f64'}}
  %z = moe.router %x, %w bias %b : tensor<16x8xf32>, tensor<4x8xf32>, tensor<4xf64> -> tensor<16x4xf32>
  return
}

// -----

// moe.gate: the logits are [tokens, experts].
func.func @gate_rank(%z: tensor<16x4x1xf32>) {
  // expected-error @+1 {{'moe.gate' op 'logits' must have rank 2 ([tokens, experts]), got rank 3}}
  %p, %w, %i = moe.gate %z top_k = 2 : tensor<16x4x1xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

// moe.gate: top_k cannot exceed the number of experts.
func.func @gate_top_k_too_large(%z: tensor<16x4xf32>) {
  // expected-error @+1 {{'moe.gate' op attribute 'top_k' must be at most the number of experts (4), got 5}}
  %p, %w, %i = moe.gate %z top_k = 5 : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x5xf32>, tensor<16x5xi32>
  return
}

// -----

// moe.gate (ODS): top_k must be positive.
func.func @gate_top_k_zero(%z: tensor<16x4xf32>) {
  // expected-error @+1 {{'moe.gate' op attribute 'top_k' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %p, %w, %i = moe.gate %z top_k = 0 : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x0xf32>, tensor<16x0xi32>
  return
}

// -----

// moe.gate: norm_lambda must be positive.
func.func @gate_norm_lambda(%z: tensor<16x4xf32>) {
  // expected-error @+1 {{'moe.gate' op attribute 'norm_lambda' must be a positive finite number, got 0.000000e+00}}
  %p, %w, %i = moe.gate %z top_k = 2 norm_lambda = 0.0 : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

// moe.gate: norm_eps must be positive.
func.func @gate_norm_eps(%z: tensor<16x4xf32>) {
  // expected-error @+1 {{'moe.gate' op attribute 'norm_eps' must be a positive finite number, got -1.000000e-06}}
  %p, %w, %i = moe.gate %z top_k = 2 norm_lambda = 1.0 norm_eps = -1.0e-06 : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

// moe.gate: the bias is [experts].
func.func @gate_bias_shape(%z: tensor<16x4xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{'moe.gate' op 'bias' must have shape [4], got [8]}}
  %p, %w, %i = moe.gate %z bias %b top_k = 2 : tensor<16x4xf32>, tensor<8xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

// moe.gate: the bias has the logits' element type.
func.func @gate_bias_type(%z: tensor<16x4xf32>, %b: tensor<4xf64>) {
  // expected-error @+1 {{'moe.gate' op 'bias' must have element type 'f32' (that of 'logits'), got 'f64'}}
  %p, %w, %i = moe.gate %z bias %b top_k = 2 : tensor<16x4xf32>, tensor<4xf64> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

// moe.gate: the weights' scale is positive.
func.func @gate_scale(%z: tensor<16x4xf32>) {
  // expected-error @+1 {{'moe.gate' op attribute 'scale' must be a positive finite number, got 0.000000e+00}}
  %p, %w, %i = moe.gate %z top_k = 2 scale = 0.0 : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

// moe.gate: groups split the experts evenly, 2 or more a group.
func.func @gate_uneven_groups(%z: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.gate' op attribute 'groups' (3) must split the 8 experts into groups of 2 or more}}
  %p, %w, %i = moe.gate %z top_k = 2 groups = 3 : tensor<16x8xf32> -> tensor<16x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

func.func @gate_single_expert_groups(%z: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.gate' op attribute 'groups' (8) must split the 8 experts into groups of 2 or more (group_score_top)}}
  %p, %w, %i = moe.gate %z top_k = 2 groups = 8 group_top_k = 2 : tensor<16x8xf32> -> tensor<16x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

func.func @gate_group_score_top(%z: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.gate' op attribute 'group_score_top' must be 1 or 2, got 3}}
  %p, %w, %i = moe.gate %z top_k = 2 groups = 2 group_top_k = 1 group_score_top = 3 : tensor<16x8xf32> -> tensor<16x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

func.func @gate_too_many_chosen_groups(%z: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.gate' op attribute 'group_top_k' (3) must be at most 'groups' (2)}}
  %p, %w, %i = moe.gate %z top_k = 2 groups = 2 group_top_k = 3 : tensor<16x8xf32> -> tensor<16x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

// The chosen groups hold every choice.
func.func @gate_top_k_beyond_groups(%z: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.gate' op attribute 'top_k' (3) must be at most the 2 experts of the 1 chosen groups}}
  %p, %w, %i = moe.gate %z top_k = 3 groups = 4 : tensor<16x8xf32> -> tensor<16x8xf32>, tensor<16x3xf32>, tensor<16x3xi32>
  return
}

// -----

// moe.gate (ODS): the scoring is softmax or sigmoid.
func.func @gate_scoring(%z: tensor<16x4xf32>) {
  // expected-error @+1 {{expected string or keyword containing one of the following enum values for attribute 'scoring' [softmax, sigmoid]}}
  %p, %w, %i = moe.gate %z top_k = 2 scoring = relu : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

// moe.expert_load: the indices are [tokens, top_k].
func.func @expert_load_rank(%i: tensor<32xi32>) {
  // expected-error @+1 {{'moe.expert_load' op 'indices' must have rank 2 ([tokens, top_k]), got rank 1}}
  %l = moe.expert_load %i : tensor<32xi32> -> tensor<4xi64>
  return
}

// -----

// moe.expert_load: a token's top_k choices need as many experts.
func.func @expert_load_experts(%i: tensor<16x4xi32>) {
  // expected-error @+1 {{'moe.expert_load' op 'indices' top_k (4) must be at most the number of experts (2)}}
  %l = moe.expert_load %i : tensor<16x4xi32> -> tensor<2xi64>
  return
}

// -----

// moe.expert_bias_update: the bias is [experts].
func.func @expert_bias_rank(%b: tensor<2x4xf32>, %l: tensor<4xi64>) {
  // expected-error @+1 {{'moe.expert_bias_update' op 'bias' must have rank 1 ([experts]), got rank 2}}
  %r = moe.expert_bias_update %b, %l rate = 1.0e-03 : tensor<2x4xf32>, tensor<4xi64>
  return
}

// -----

// moe.expert_bias_update: one load per expert.
func.func @expert_bias_load(%b: tensor<4xf32>, %l: tensor<8xi64>) {
  // expected-error @+1 {{'moe.expert_bias_update' op 'load' must have shape [4], got [8]}}
  %r = moe.expert_bias_update %b, %l rate = 1.0e-03 : tensor<4xf32>, tensor<8xi64>
  return
}

// -----

// moe.expert_bias_update: the rate is non-negative.
func.func @expert_bias_rate(%b: tensor<4xf32>, %l: tensor<4xi64>) {
  // expected-error @+1 {{'moe.expert_bias_update' op attribute 'rate' must be a non-negative finite number, got -1.000000e-03}}
  %r = moe.expert_bias_update %b, %l rate = -1.0e-03 : tensor<4xf32>, tensor<4xi64>
  return
}

// -----

// moe.gate: probs are [tokens, experts].
func.func @gate_probs_shape(%z: tensor<16x4xf32>) {
  // expected-error @+1 {{'moe.gate' op 'probs' must have shape [16, 4], got [16, 2]}}
  %p, %w, %i = moe.gate %z top_k = 2 : tensor<16x4xf32> -> tensor<16x2xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

// moe.gate: weights are [tokens, top_k].
func.func @gate_weights_shape(%z: tensor<16x4xf32>) {
  // expected-error @+1 {{'moe.gate' op 'weights' must have shape [16, 2], got [16, 1]}}
  %p, %w, %i = moe.gate %z top_k = 2 : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x1xf32>, tensor<16x2xi32>
  return
}

// -----

// moe.gate: indices are [tokens, top_k].
func.func @gate_indices_shape(%z: tensor<16x4xf32>) {
  // expected-error @+1 {{'moe.gate' op 'indices' must have shape [16, 2], got [8, 2]}}
  %p, %w, %i = moe.gate %z top_k = 2 : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<8x2xi32>
  return
}

// -----

// moe.gate: probs have the element type of the logits.
func.func @gate_probs_element_type(%z: tensor<16x4xf32>) {
  // expected-error @+1 {{'moe.gate' op 'probs' must have element type 'f32' (that of 'logits'), got 'f64'}}
  %p, %w, %i = moe.gate %z top_k = 2 : tensor<16x4xf32> -> tensor<16x4xf64>, tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

// moe.gate: weights have the element type of the logits.
func.func @gate_weights_element_type(%z: tensor<16x4xf32>) {
  // expected-error @+1 {{'moe.gate' op 'weights' must have element type 'f32' (that of 'logits'), got 'f64'}}
  %p, %w, %i = moe.gate %z top_k = 2 : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x2xf64>, tensor<16x2xi32>
  return
}

// -----

// moe.dispatch: tokens are [tokens, hidden].
func.func @dispatch_tokens_rank(%x: tensor<16x8x1xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'tokens' must have rank 2 ([tokens, hidden]), got rank 3}}
  %b, %s, %d = moe.dispatch %x, %i dropless : tensor<16x8x1xf32>, tensor<16x2xi32> -> tensor<4x16x8xf32>, tensor<16x2xi32>, tensor<i64>
  return
}

// -----

// moe.dispatch: indices are [tokens, top_k].
func.func @dispatch_indices_rank(%x: tensor<16x8xf32>, %i: tensor<16xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'indices' must have rank 2 ([tokens, top_k]), got rank 1}}
  %b, %s, %d = moe.dispatch %x, %i dropless : tensor<16x8xf32>, tensor<16xi32> -> tensor<4x16x8xf32>, tensor<16xi32>, tensor<i64>
  return
}

// -----

// moe.dispatch: the buffer is [experts, capacity, hidden].
func.func @dispatch_buffer_rank(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have rank 3 ([experts, capacity, hidden]), got rank 2}}
  %b, %s, %d = moe.dispatch %x, %i dropless : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<64x8xf32>, tensor<16x2xi32>, tensor<i64>
  return
}

// -----

// moe.dispatch: indices have one row per token.
func.func @dispatch_indices_tokens(%x: tensor<16x8xf32>, %i: tensor<12x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'indices' must have shape [16, 2], got [12, 2]}}
  %b, %s, %d = moe.dispatch %x, %i dropless : tensor<16x8xf32>, tensor<12x2xi32> -> tensor<4x16x8xf32>, tensor<12x2xi32>, tensor<i64>
  return
}

// -----

// moe.dispatch: slots have the shape of indices.
func.func @dispatch_slots_shape(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'slots' must have shape [16, 2], got [16, 1]}}
  %b, %s, %d = moe.dispatch %x, %i dropless : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x16x8xf32>, tensor<16x1xi32>, tensor<i64>
  return
}

// -----

// moe.dispatch: a token cannot pick more experts than there are.
func.func @dispatch_too_few_experts(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have at least top_k = 2 experts, got 1}}
  %b, %s, %d = moe.dispatch %x, %i dropless : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<1x16x8xf32>, tensor<16x2xi32>, tensor<i64>
  return
}

// -----

// moe.dispatch: capacity_factor must be positive.
func.func @dispatch_capacity_factor_zero(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op attribute 'capacity_factor' must be a positive finite number, got 0.000000e+00}}
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 0.0 : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x1x8xf32>, tensor<16x2xi32>, tensor<i64>
  return
}

// -----

// moe.dispatch: capacity_factor must be positive (negative).
func.func @dispatch_capacity_factor_negative(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op attribute 'capacity_factor' must be a positive finite number, got -1.250000e+00}}
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = -1.25 : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x10x8xf32>, tensor<16x2xi32>, tensor<i64>
  return
}

// -----

// moe.dispatch: capacity = ceil(1.25 * 16 * 2 / 4) = 10.
func.func @dispatch_capacity(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have shape [4, 10, 8], got [4, 11, 8]}}
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.25 : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x11x8xf32>, tensor<16x2xi32>, tensor<i64>
  return
}

// -----

// moe.dispatch: dropless capacity is the number of tokens.
func.func @dispatch_dropless_capacity(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have shape [4, 16, 8], got [4, 10, 8]}}
  %b, %s, %d = moe.dispatch %x, %i dropless : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x10x8xf32>, tensor<16x2xi32>, tensor<i64>
  return
}

// -----

// moe.dispatch: the buffer's hidden size is the tokens'.
func.func @dispatch_hidden(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have shape [4, 16, 8], got [4, 16, 6]}}
  %b, %s, %d = moe.dispatch %x, %i dropless : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x16x6xf32>, tensor<16x2xi32>, tensor<i64>
  return
}

// -----

// moe.dispatch: the buffer has the element type of the tokens.
func.func @dispatch_buffer_element_type(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have the element type of 'tokens' ('f32') or bf16, got 'f64'}}
  %b, %s, %d = moe.dispatch %x, %i dropless : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x16x8xf64>, tensor<16x2xi32>, tensor<i64>
  return
}

// -----

// moe.dispatch (ODS): the dropped count is an i64 scalar.
func.func @dispatch_dropped_type(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op result #2 must be 0D tensor of 64-bit signless integer values, but got 'tensor<i32>'}}
  %b, %s, %d = moe.dispatch %x, %i dropless : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x16x8xf32>, tensor<16x2xi32>, tensor<i32>
  return
}

// -----

// moe.dispatch (ODS): capacity_factor is an f64 attribute (generic form).
func.func @dispatch_capacity_factor_f32(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op attribute 'capacity_factor' failed to satisfy constraint: 64-bit float attribute}}
  %b, %s, %d = "moe.dispatch"(%x, %i) <{capacity_factor = 1.25 : f32}> : (tensor<16x8xf32>, tensor<16x2xi32>) -> (tensor<4x10x8xf32>, tensor<16x2xi32>, tensor<i64>)
  return
}

// -----

// moe.dispatch (syntax): either capacity_factor = <float> or dropless.
func.func @dispatch_no_capacity(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{expected 'capacity_factor = <float>' or 'dropless'}}
  %b, %s, %d = moe.dispatch %x, %i : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x16x8xf32>, tensor<16x2xi32>, tensor<i64>
  return
}

// -----

// moe.expert_ffn: the input is [experts, capacity, hidden].
func.func @expert_ffn_input_rank(%x: tensor<40x8xf32>, %w1: tensor<4x12x8xf32>, %w3: tensor<4x12x8xf32>, %w2: tensor<4x8x12xf32>) {
  // expected-error @+1 {{'moe.expert_ffn' op 'input' must have rank 3 ([experts, capacity, hidden]), got rank 2}}
  %y, %p = moe.expert_ffn %x, %w1, %w3, %w2 : tensor<40x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32> -> tensor<4x2x10x12xf32>
  return
}

// -----

// moe.expert_ffn: gate_proj is [experts, ffn, hidden].
func.func @expert_ffn_gate_proj_rank(%x: tensor<4x10x8xf32>, %w1: tensor<48x8xf32>, %w3: tensor<48x8xf32>, %w2: tensor<4x8x12xf32>) {
  // expected-error @+1 {{'moe.expert_ffn' op 'gate_proj' must have rank 3 ([experts, ffn, hidden]), got rank 2}}
  %y, %p = moe.expert_ffn %x, %w1, %w3, %w2 : tensor<4x10x8xf32>, tensor<48x8xf32>, tensor<4x8x12xf32> -> tensor<4x2x10x12xf32>
  return
}

// -----

// moe.expert_ffn: gate_proj has the input's experts and hidden.
func.func @expert_ffn_gate_proj_shape(%x: tensor<4x10x8xf32>, %w1: tensor<2x12x8xf32>, %w3: tensor<2x12x8xf32>, %w2: tensor<4x8x12xf32>) {
  // expected-error @+1 {{'moe.expert_ffn' op 'gate_proj' must have shape [4, 12, 8], got [2, 12, 8]}}
  %y, %y_proj = moe.expert_ffn %x, %w1, %w3, %w2 : tensor<4x10x8xf32>, tensor<2x12x8xf32>, tensor<4x8x12xf32> -> tensor<4x2x10x12xf32>
  return
}

// -----

// moe.expert_ffn: down_proj is [experts, hidden, ffn].
func.func @expert_ffn_down_proj_shape(%x: tensor<4x10x8xf32>, %w1: tensor<4x12x8xf32>, %w3: tensor<4x12x8xf32>, %w2: tensor<4x12x8xf32>) {
  // expected-error @+1 {{'moe.expert_ffn' op 'down_proj' must have shape [4, 8, 12], got [4, 12, 8]}}
  %y, %y_proj = moe.expert_ffn %x, %w1, %w3, %w2 : tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32> -> tensor<4x2x10x12xf32>
  return
}

// -----

// moe.expert_ffn: the projections are [experts, 2, capacity, ffn].
func.func @expert_ffn_projections_shape(%x: tensor<4x10x8xf32>, %w1: tensor<4x12x8xf32>, %w3: tensor<4x12x8xf32>, %w2: tensor<4x8x12xf32>) {
  // expected-error @+1 {{'moe.expert_ffn' op 'projections' must have shape [4, 2, 10, 12], got [4, 10, 12]}}
  %y, %p = moe.expert_ffn %x, %w1, %w3, %w2 : tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32> -> tensor<4x10x12xf32>
  return
}

// -----

// moe.expert_ffn: gate_proj has the element type of the input.
func.func @expert_ffn_gate_proj_element_type(%x: tensor<4x10x8xf32>, %w1: tensor<4x12x8xf64>, %w3: tensor<4x12x8xf64>, %w2: tensor<4x8x12xf32>) {
  // expected-error @+1 {{'moe.expert_ffn' op 'gate_proj' must have element type 'f32' (that of 'input'), got 'f64'}}
  %y, %y_proj = moe.expert_ffn %x, %w1, %w3, %w2 : tensor<4x10x8xf32>, tensor<4x12x8xf64>, tensor<4x8x12xf32> -> tensor<4x2x10x12xf32>
  return
}

// -----

// moe.expert_ffn: down_proj has the element type of the input.
func.func @expert_ffn_down_proj_element_type(%x: tensor<4x10x8xf32>, %w1: tensor<4x12x8xf32>, %w3: tensor<4x12x8xf32>, %w2: tensor<4x8x12xf64>) {
  // expected-error @+1 {{'moe.expert_ffn' op 'down_proj' must have element type 'f32' (that of 'input'), got 'f64'}}
  %y, %y_proj = moe.expert_ffn %x, %w1, %w3, %w2 : tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf64> -> tensor<4x2x10x12xf32>
  return
}

// -----

// moe.expert_ffn (ODS): gate_proj and up_proj have one type (generic form).
func.func @expert_ffn_up_proj_type(%x: tensor<4x10x8xf32>, %w1: tensor<4x12x8xf32>, %w3: tensor<4x6x8xf32>, %w2: tensor<4x8x12xf32>) {
  // expected-error @+1 {{'moe.expert_ffn' op failed to verify that all of {gate_proj, up_proj} have same type}}
  %y:2 = "moe.expert_ffn"(%x, %w1, %w3, %w2) : (tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x6x8xf32>, tensor<4x8x12xf32>) -> (tensor<4x10x8xf32>, tensor<4x2x10x12xf32>)
  return
}

// -----

// moe.combine: expert_output is [experts, capacity, hidden].
func.func @combine_expert_output_rank(%out: tensor<40x8xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.combine' op 'expert_output' must have rank 3 ([experts, capacity, hidden]), got rank 2}}
  %y = moe.combine %out, %w, %i, %s : tensor<40x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x2xi32> -> tensor<16x8xf32>
  return
}

// -----

// moe.combine: weights are [tokens, top_k].
func.func @combine_weights_rank(%out: tensor<4x10x8xf32>, %w: tensor<32xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.combine' op 'weights' must have rank 2 ([tokens, top_k]), got rank 1}}
  %y = moe.combine %out, %w, %i, %s : tensor<4x10x8xf32>, tensor<32xf32>, tensor<16x2xi32>, tensor<16x2xi32> -> tensor<16x8xf32>
  return
}

// -----

// moe.combine: indices have the shape of weights.
func.func @combine_indices_shape(%out: tensor<4x10x8xf32>, %w: tensor<16x2xf32>, %i: tensor<16x1xi32>, %s: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.combine' op 'indices' must have shape [16, 2], got [16, 1]}}
  %y = moe.combine %out, %w, %i, %s : tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x1xi32>, tensor<16x2xi32> -> tensor<16x8xf32>
  return
}

// -----

// moe.combine: slots have the shape of weights.
func.func @combine_slots_shape(%out: tensor<4x10x8xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>, %s: tensor<8x2xi32>) {
  // expected-error @+1 {{'moe.combine' op 'slots' must have shape [16, 2], got [8, 2]}}
  %y = moe.combine %out, %w, %i, %s : tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<8x2xi32> -> tensor<16x8xf32>
  return
}

// -----

// moe.combine: the result is [tokens, hidden].
func.func @combine_result_shape(%out: tensor<4x10x8xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.combine' op 'result' must have shape [16, 8], got [16, 6]}}
  %y = moe.combine %out, %w, %i, %s : tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x2xi32> -> tensor<16x6xf32>
  return
}

// -----

// moe.combine: weights have the element type of expert_output.
func.func @combine_weights_element_type(%out: tensor<4x10x8xf32>, %w: tensor<16x2xf64>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.combine' op 'weights' must have element type 'f32' (that of 'expert_output'), got 'f64'}}
  %y = moe.combine %out, %w, %i, %s : tensor<4x10x8xf32>, tensor<16x2xf64>, tensor<16x2xi32>, tensor<16x2xi32> -> tensor<16x8xf32>
  return
}

// -----

// moe.combine: the result has the element type of expert_output.
func.func @combine_result_element_type(%out: tensor<4x10x8xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.combine' op 'result' must have element type 'f32' (that of 'expert_output'), got 'f64'}}
  %y = moe.combine %out, %w, %i, %s : tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x2xi32> -> tensor<16x8xf64>
  return
}

// -----

// moe.dispatch: an infinite capacity_factor is rejected as such.
func.func @dispatch_capacity_factor_inf(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op attribute 'capacity_factor' must be a positive finite number, got INF}}
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 0x7FF0000000000000 : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x16x8xf32>, tensor<16x2xi32>, tensor<i64>
  return
}

// -----

// moe.dispatch: a capacity_factor giving more than 2^53 rows is rejected
// as such (not as a buffer of some overflowed shape).
func.func @dispatch_capacity_factor_huge(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op attribute 'capacity_factor' (1.000000e+30) gives more than 2^53 rows per expert}}
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.0e+30 : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x16x8xf32>, tensor<16x2xi32>, tensor<i64>
  return
}

// -----

// moe.gate_norm: the logits are [tokens, experts].
func.func @gate_norm_logits_rank(%z: tensor<16x4x1xf32>) {
  // expected-error @+1 {{'moe.gate_norm' op 'logits' must have rank 2 ([tokens, experts]), got rank 3}}
  %zn = moe.gate_norm %z norm_lambda = 1.0 : tensor<16x4x1xf32>
  return
}

// -----

// moe.gate_norm: norm_lambda must be positive.
func.func @gate_norm_op_lambda(%z: tensor<16x4xf32>) {
  // expected-error @+1 {{'moe.gate_norm' op attribute 'norm_lambda' must be a positive finite number, got 0.000000e+00}}
  %zn = moe.gate_norm %z norm_lambda = 0.0 : tensor<16x4xf32>
  return
}

// -----

// moe.gate_norm: the largest normalized logit, lambda sqrt(experts - 1),
// must be a number of the logits' type (f64 logits may take this lambda).
func.func @gate_norm_op_lambda_spread(%z: tensor<16x4xf32>, %z64: tensor<16x4xf64>) {
  %zn64 = moe.gate_norm %z64 norm_lambda = 3.0e+38 : tensor<16x4xf64>
  // expected-error @+1 {{'moe.gate_norm' op attribute 'norm_lambda' (3.000000e+38) is too large for 4 experts: the largest normalized logit, lambda * sqrt(experts - 1), is 5.196152e+38, beyond 'f32' (3.402823e+38)}}
  %zn = moe.gate_norm %z norm_lambda = 3.0e+38 : tensor<16x4xf32>
  return
}

// -----

// moe.gate_norm: norm_eps must be positive.
func.func @gate_norm_op_eps(%z: tensor<16x4xf32>) {
  // expected-error @+1 {{'moe.gate_norm' op attribute 'norm_eps' must be a positive finite number, got -1.000000e-06}}
  %zn = moe.gate_norm %z norm_lambda = 1.0 norm_eps = -1.0e-06 : tensor<16x4xf32>
  return
}

// -----

// moe.gate_norm (ODS): the result has the type of the logits (generic form).
func.func @gate_norm_result_type(%z: tensor<16x4xf32>) {
  // expected-error @+1 {{'moe.gate_norm' op failed to verify that all of {logits, result} have same type}}
  %zn = "moe.gate_norm"(%z) {norm_lambda = 1.0 : f64} : (tensor<16x4xf32>) -> tensor<16x4xf64>
  return
}

// -----

// moe.dispatch: a dropless dispatch drops nothing, so it takes no priority.
func.func @dispatch_priority_dropless(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>, %w: tensor<16x2xf32>) {
  // expected-error @+1 {{'moe.dispatch' op 'priority' needs a capacity_factor: a dropless dispatch drops nothing}}
  %b, %s, %d = moe.dispatch %x, %i priority %w dropless : tensor<16x8xf32>, tensor<16x2xi32>, tensor<16x2xf32> -> tensor<4x16x8xf32>, tensor<16x2xi32>, tensor<i64>
  return
}

// -----

// moe.dispatch: the priority has the shape of the indices.
func.func @dispatch_priority_shape(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>, %w: tensor<16x1xf32>) {
  // expected-error @+1 {{'moe.dispatch' op 'priority' must have shape [16, 2], got [16, 1]}}
  %b, %s, %d = moe.dispatch %x, %i priority %w capacity_factor = 1.0 : tensor<16x8xf32>, tensor<16x2xi32>, tensor<16x1xf32> -> tensor<4x8x8xf32>, tensor<16x2xi32>, tensor<i64>
  return
}

// -----

// moe.route: the parts of the tokens are equal.
func.func @route_ranks(%i: tensor<15x2xi32>) {
  // expected-error @+1 {{'moe.route' op attribute 'ranks' must be positive and divide the 15 tokens, got 2}}
  %s, %c, %d = moe.route %i experts = 4 ranks = 2 dropless : tensor<15x2xi32> -> tensor<15x2xi32>, tensor<2x4xi64>, tensor<i64>
  return
}

// -----

// moe.route: one run length per part and expert.
func.func @route_counts(%i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.route' op 'counts' must have shape [2, 4], got [4, 2]}}
  %s, %c, %d = moe.route %i experts = 4 ranks = 2 dropless : tensor<16x2xi32> -> tensor<16x2xi32>, tensor<4x2xi64>, tensor<i64>
  return
}

// -----

// moe.merge_runs: one block of runs per rank and expert.
func.func @merge_runs_blocks(%r: tensor<6x8x8xf32>, %c: tensor<2x2xi64>) {
  // expected-error @+1 {{'moe.merge_runs' op 'runs' must have shape [4, 8, 8], got [6, 8, 8]}}
  %q = moe.merge_runs %r, %c : tensor<6x8x8xf32>, tensor<2x2xi64> -> tensor<2x16x8xf32>
  return
}

// -----

// moe.split_runs: the queue has one buffer per expert of the counts.
func.func @split_runs_experts(%q: tensor<3x16x8xf32>, %c: tensor<2x2xi64>) {
  // expected-error @+1 {{'moe.split_runs' op 'queue' must have shape [2, 16, 8], got [3, 16, 8]}}
  %r = moe.split_runs %q, %c : tensor<3x16x8xf32>, tensor<2x2xi64> -> tensor<4x8x8xf32>
  return
}

// -----

// moe.merge_runs: runs and queue hold the same element type.
func.func @merge_runs_types(%r: tensor<4x8x8xf64>, %c: tensor<2x2xi64>) {
  // expected-error @+1 {{'moe.merge_runs' op 'queue' must have element type 'f64' (that of 'runs'), got 'f32'}}
  %q = moe.merge_runs %r, %c : tensor<4x8x8xf64>, tensor<2x2xi64> -> tensor<2x16x8xf32>
  return
}

// -----

// moe.dispatch: indices without a column choose no expert (their capacity
// would divide by zero experts).
func.func @dispatch_no_top_k(%x: tensor<4x8xf32>, %i: tensor<4x0xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'indices' must have a column per chosen expert (top_k >= 1), got none}}
  %buf, %slots, %dropped = moe.dispatch %x, %i capacity_factor = 1.25 : tensor<4x8xf32>, tensor<4x0xi32> -> tensor<0x1x8xf32>, tensor<4x0xi32>, tensor<i64>
  return
}

// -----

// moe.route: the same for its indices, with zero experts.
func.func @route_no_top_k(%i: tensor<4x0xi32>) {
  // expected-error @+1 {{'moe.route' op 'indices' must have a column per chosen expert (top_k >= 1), got none}}
  %s, %c, %d = moe.route %i experts = 0 capacity_factor = 1.25 : tensor<4x0xi32> -> tensor<4x0xi32>, tensor<1x0xi64>, tensor<i64>
  return
}

// -----

// moe.route: a shape whose element count wraps int64 (tokens * top_k).
func.func @route_indices_overflow(%i: tensor<4611686018427387904x4xi32>) {
  // expected-error @+1 {{'moe.route' op 'indices' of shape [4611686018427387904, 4] has more elements than an int64 holds}}
  %s, %c, %d = moe.route %i experts = 4 capacity_factor = 1.0e-300 : tensor<4611686018427387904x4xi32> -> tensor<4611686018427387904x4xi32>, tensor<1x4xi64>, tensor<i64>
  return
}

// -----

// moe.merge_runs: the same for the counts (ranks * experts).
func.func @merge_runs_counts_overflow(%r: tensor<4x8x8xf32>, %c: tensor<4294967296x4294967296xi64>) {
  // expected-error @+1 {{'moe.merge_runs' op 'counts' of shape [4294967296, 4294967296] has more elements than an int64 holds}}
  %q = moe.merge_runs %r, %c : tensor<4x8x8xf32>, tensor<4294967296x4294967296xi64> -> tensor<4294967296x16x8xf32>
  return
}
