// RUN: moe-opt %s -split-input-file -verify-diagnostics

// One case per distinct error of the auxiliary-loss, coefficient and
// routing-metric ops' verifiers (MoeOps.cpp), their custom syntax, and
// representative ODS errors.

// moe.pooled_aux_loss_grad: one gradient per layer's indices.
func.func @pooled_aux_loss_grad_layers(%i0: tensor<16x2xi32>, %dl: tensor<f32>) {
  // expected-error @+1 {{'moe.pooled_aux_loss_grad' op has 2 'd_probs' but 1 'indices'}}
  %d0, %d1 = moe.pooled_aux_loss_grad(%i0), %dl : (tensor<16x2xi32>), tensor<f32> -> (tensor<16x4xf32>, tensor<8x4xf32>)
  return
}

// -----

// moe.pooled_aux_loss: every layer has the same experts.
func.func @pooled_aux_loss_experts(%p0: tensor<16x4xf32>, %p1: tensor<8x6xf32>, %i0: tensor<16x2xi32>, %i1: tensor<8x2xi32>) {
  // expected-error @+1 {{'moe.pooled_aux_loss' op 'probs #1' must have shape [8, 4], got [8, 6]}}
  %l = moe.pooled_aux_loss(%p0, %p1), (%i0, %i1) : (tensor<16x4xf32>, tensor<8x6xf32>), (tensor<16x2xi32>, tensor<8x2xi32>) -> tensor<f32>
  return
}

// -----

// moe.pooled_aux_loss: a layer's indices have one row per token.
func.func @pooled_aux_loss_tokens(%p0: tensor<16x4xf32>, %p1: tensor<8x4xf32>, %i0: tensor<16x2xi32>, %i1: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.pooled_aux_loss' op 'indices #1' must have shape [8, 2], got [16, 2]}}
  %l = moe.pooled_aux_loss(%p0, %p1), (%i0, %i1) : (tensor<16x4xf32>, tensor<8x4xf32>), (tensor<16x2xi32>, tensor<16x2xi32>) -> tensor<f32>
  return
}

// -----

// moe.aux_loss: probs are [tokens, experts].
func.func @aux_loss_probs_rank(%p: tensor<64xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.aux_loss' op 'probs' must have rank 2 ([tokens, experts]), got rank 1}}
  %l = moe.aux_loss skywork %p, %i : tensor<64xf32>, tensor<16x2xi32> -> tensor<f32>
  return
}

// -----

// moe.aux_loss: indices are [tokens, top_k].
func.func @aux_loss_indices_rank(%p: tensor<16x4xf32>, %i: tensor<32xi32>) {
  // expected-error @+1 {{'moe.aux_loss' op 'indices' must have rank 2 ([tokens, top_k]), got rank 1}}
  %l = moe.aux_loss switch %p, %i : tensor<16x4xf32>, tensor<32xi32> -> tensor<f32>
  return
}

// -----

// moe.aux_loss: indices have one row per token.
func.func @aux_loss_indices_tokens(%p: tensor<16x4xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{'moe.aux_loss' op 'indices' must have shape [16, 2], got [8, 2]}}
  %l = moe.aux_loss skywork %p, %i : tensor<16x4xf32>, tensor<8x2xi32> -> tensor<f32>
  return
}

// -----

// moe.aux_loss: top_k cannot exceed the number of experts.
func.func @aux_loss_top_k(%p: tensor<16x4xf32>, %i: tensor<16x5xi32>) {
  // expected-error @+1 {{'moe.aux_loss' op 'indices' top_k (5) must be at most the number of experts (4)}}
  %l = moe.aux_loss switch %p, %i : tensor<16x4xf32>, tensor<16x5xi32> -> tensor<f32>
  return
}

// -----

// moe.aux_loss: the result has the element type of probs.
func.func @aux_loss_result_element_type(%p: tensor<16x4xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.aux_loss' op 'result' must have element type 'f32' (that of 'probs'), got 'f64'}}
  %l = moe.aux_loss skywork %p, %i : tensor<16x4xf32>, tensor<16x2xi32> -> tensor<f64>
  return
}

// -----

// moe.aux_loss (syntax): unknown kind.
func.func @aux_loss_kind(%p: tensor<16x4xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{expected string or keyword containing one of the following enum values for attribute 'kind' [skywork, switch]}}
  %l = moe.aux_loss gshard %p, %i : tensor<16x4xf32>, tensor<16x2xi32> -> tensor<f32>
  return
}

// -----

// moe.z_loss: logits are [tokens, experts].
func.func @z_loss_rank(%z: tensor<2x16x4xf32>) {
  // expected-error @+1 {{'moe.z_loss' op 'logits' must have rank 2 ([tokens, experts]), got rank 3}}
  %l = moe.z_loss %z : tensor<2x16x4xf32> -> tensor<f32>
  return
}

// -----

// moe.z_loss: the result has the element type of the logits.
func.func @z_loss_result_element_type(%z: tensor<16x4xf64>) {
  // expected-error @+1 {{'moe.z_loss' op 'result' must have element type 'f64' (that of 'logits'), got 'f32'}}
  %l = moe.z_loss %z : tensor<16x4xf64> -> tensor<f32>
  return
}

// -----

// moe.adaptive_aux_coeff: xi >= 0.
func.func @adaptive_xi(%a: tensor<f32>, %d: tensor<i64>) {
  // expected-error @+1 {{'moe.adaptive_aux_coeff' op attribute 'xi' must be a non-negative finite number, got -2.000000e-01}}
  %r = moe.adaptive_aux_coeff %a, %d xi = -0.2 alpha_max = 0.01 beta = 0.99 assignments = 1024 : tensor<f32>, tensor<i64>
  return
}

// -----

// moe.adaptive_aux_coeff: alpha_max >= 0.
func.func @adaptive_alpha_max(%a: tensor<f32>, %d: tensor<i64>) {
  // expected-error @+1 {{'moe.adaptive_aux_coeff' op attribute 'alpha_max' must be a non-negative finite number, got -1.000000e-02}}
  %r = moe.adaptive_aux_coeff %a, %d xi = 0.2 alpha_max = -0.01 beta = 0.99 assignments = 1024 : tensor<f32>, tensor<i64>
  return
}

// -----

// moe.adaptive_aux_coeff: beta in [0, 1] (below).
func.func @adaptive_beta_negative(%a: tensor<f32>, %d: tensor<i64>) {
  // expected-error @+1 {{'moe.adaptive_aux_coeff' op attribute 'beta' must be in [0, 1], got -5.000000e-01}}
  %r = moe.adaptive_aux_coeff %a, %d xi = 0.2 alpha_max = 0.01 beta = -0.5 assignments = 1024 : tensor<f32>, tensor<i64>
  return
}

// -----

// moe.adaptive_aux_coeff: beta in [0, 1] (above).
func.func @adaptive_beta_above_one(%a: tensor<f32>, %d: tensor<i64>) {
  // expected-error @+1 {{'moe.adaptive_aux_coeff' op attribute 'beta' must be in [0, 1], got 1.500000e+00}}
  %r = moe.adaptive_aux_coeff %a, %d xi = 0.2 alpha_max = 0.01 beta = 1.5 assignments = 1024 : tensor<f32>, tensor<i64>
  return
}

// -----

// moe.adaptive_aux_coeff (ODS): assignments must be positive.
func.func @adaptive_assignments(%a: tensor<f32>, %d: tensor<i64>) {
  // expected-error @+1 {{'moe.adaptive_aux_coeff' op attribute 'assignments' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %r = moe.adaptive_aux_coeff %a, %d xi = 0.2 alpha_max = 0.01 beta = 0.99 assignments = 0 : tensor<f32>, tensor<i64>
  return
}

// -----

// moe.adaptive_aux_coeff (ODS): the dropped count is an i64 scalar.
func.func @adaptive_dropped_type(%a: tensor<f32>, %d: tensor<i32>) {
  // expected-error @+1 {{'moe.adaptive_aux_coeff' op operand #1 must be 0D tensor of 64-bit signless integer values, but got 'tensor<i32>'}}
  %r = moe.adaptive_aux_coeff %a, %d xi = 0.2 alpha_max = 0.01 beta = 0.99 assignments = 1024 : tensor<f32>, tensor<i32>
  return
}

// -----

// moe.adaptive_aux_coeff: a NaN xi is rejected.
func.func @adaptive_xi_nan(%a: tensor<f32>, %d: tensor<i64>) {
  // expected-error @+1 {{'moe.adaptive_aux_coeff' op attribute 'xi' must be a non-negative finite number, got nan}}
  %r = moe.adaptive_aux_coeff %a, %d xi = 0x7FF8000000000000 alpha_max = 0.01 beta = 0.99 assignments = 1024 : tensor<f32>, tensor<i64>
  return
}

// -----

// moe.adaptive_aux_coeff: a NaN alpha_max is rejected.
func.func @adaptive_alpha_max_nan(%a: tensor<f32>, %d: tensor<i64>) {
  // expected-error @+1 {{'moe.adaptive_aux_coeff' op attribute 'alpha_max' must be a non-negative finite number, got nan}}
  %r = moe.adaptive_aux_coeff %a, %d xi = 0.2 alpha_max = 0x7FF8000000000000 beta = 0.99 assignments = 1024 : tensor<f32>, tensor<i64>
  return
}

// -----

// moe.adaptive_aux_coeff: a NaN beta is not in [0, 1].
func.func @adaptive_beta_nan(%a: tensor<f32>, %d: tensor<i64>) {
  // expected-error @+1 {{'moe.adaptive_aux_coeff' op attribute 'beta' must be in [0, 1], got nan}}
  %r = moe.adaptive_aux_coeff %a, %d xi = 0.2 alpha_max = 0.01 beta = 0x7FF8000000000000 assignments = 1024 : tensor<f32>, tensor<i64>
  return
}

// -----

// moe.routing_metrics: the probs are [tokens, experts].
func.func @routing_metrics_probs_rank(%p: tensor<64xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.routing_metrics' op 'probs' must have rank 2 ([tokens, experts]), got rank 1}}
  %d, %r12, %r23, %l = moe.routing_metrics %p, %i, %s : tensor<64xf32>, tensor<16x2xi32> -> tensor<f32>, tensor<4xi64>
  return
}

// -----

// moe.routing_metrics: the indices are [tokens, top_k].
func.func @routing_metrics_indices_rank(%p: tensor<16x4xf32>, %i: tensor<32xi32>, %s: tensor<32xi32>) {
  // expected-error @+1 {{'moe.routing_metrics' op 'indices' must have rank 2 ([tokens, top_k]), got rank 1}}
  %d, %r12, %r23, %l = moe.routing_metrics %p, %i, %s : tensor<16x4xf32>, tensor<32xi32> -> tensor<f32>, tensor<4xi64>
  return
}

// -----

// moe.routing_metrics: Max2/Max3 needs a third expert.
func.func @routing_metrics_two_experts(%p: tensor<16x2xf32>, %i: tensor<16x1xi32>, %s: tensor<16x1xi32>) {
  // expected-error @+1 {{'moe.routing_metrics' op 'probs' must have at least 3 experts for the Max2/Max3 ratio, got 2}}
  %d, %r12, %r23, %l = moe.routing_metrics %p, %i, %s : tensor<16x2xf32>, tensor<16x1xi32> -> tensor<f32>, tensor<2xi64>
  return
}

// -----

// moe.routing_metrics: the indices have a row per token.
func.func @routing_metrics_indices_tokens(%p: tensor<16x4xf32>, %i: tensor<8x2xi32>, %s: tensor<8x2xi32>) {
  // expected-error @+1 {{'moe.routing_metrics' op 'indices' must have shape [16, 2], got [8, 2]}}
  %d, %r12, %r23, %l = moe.routing_metrics %p, %i, %s : tensor<16x4xf32>, tensor<8x2xi32> -> tensor<f32>, tensor<4xi64>
  return
}

// -----

// moe.routing_metrics: top_k cannot exceed the number of experts.
func.func @routing_metrics_top_k(%p: tensor<16x4xf32>, %i: tensor<16x5xi32>, %s: tensor<16x5xi32>) {
  // expected-error @+1 {{'moe.routing_metrics' op 'indices' top_k (5) must be at most the number of experts (4)}}
  %d, %r12, %r23, %l = moe.routing_metrics %p, %i, %s : tensor<16x4xf32>, tensor<16x5xi32> -> tensor<f32>, tensor<4xi64>
  return
}

// -----

// moe.routing_metrics: the load has one count per expert.
func.func @routing_metrics_load_shape(%p: tensor<16x4xf32>, %i: tensor<16x2xi32>, %s: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.routing_metrics' op 'load' must have shape [4], got [5]}}
  %d, %r12, %r23, %l = moe.routing_metrics %p, %i, %s : tensor<16x4xf32>, tensor<16x2xi32> -> tensor<f32>, tensor<5xi64>
  return
}

// -----

// moe.routing_metrics (ODS): the slots have the type of the indices (generic
// form).
func.func @routing_metrics_slots_type(%p: tensor<16x4xf32>, %i: tensor<16x2xi32>, %s: tensor<16x1xi32>) {
  // expected-error @+1 {{'moe.routing_metrics' op failed to verify that all of {indices, slots} have same type}}
  %d, %r12, %r23, %l = "moe.routing_metrics"(%p, %i, %s) : (tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x1xi32>) -> (tensor<f32>, tensor<f32>, tensor<f32>, tensor<4xi64>)
  return
}

// -----

// moe.expert_similarity: the projections are [experts, ffn, hidden].
func.func @expert_similarity_rank(%w1: tensor<4x12xf32>, %w2: tensor<4x12x8xf32>) {
  // expected-error @+1 {{'moe.expert_similarity' op 'gate_proj' must have rank 3 ([experts, ffn, hidden]), got rank 2}}
  %s = moe.expert_similarity %w1, %w1, %w2 : tensor<4x12xf32>, tensor<4x12x8xf32> -> tensor<f32>
  return
}

// -----

// moe.expert_similarity: a similarity needs a pair of experts.
func.func @expert_similarity_one_expert(%w1: tensor<1x12x8xf32>, %w2: tensor<1x8x12xf32>) {
  // expected-error @+1 {{'moe.expert_similarity' op needs at least 2 experts, got 1}}
  %s = moe.expert_similarity %w1, %w1, %w2 : tensor<1x12x8xf32>, tensor<1x8x12xf32> -> tensor<f32>
  return
}

// -----

// moe.expert_similarity: down_proj is [experts, hidden, ffn].
func.func @expert_similarity_down_shape(%w1: tensor<4x12x8xf32>, %w2: tensor<4x12x8xf32>) {
  // expected-error @+1 {{'moe.expert_similarity' op 'down_proj' must have shape [4, 8, 12], got [4, 12, 8]}}
  %s = moe.expert_similarity %w1, %w1, %w2 : tensor<4x12x8xf32>, tensor<4x12x8xf32> -> tensor<f32>
  return
}

// -----

// moe.expert_similarity: down_proj has the element type of gate_proj.
func.func @expert_similarity_element_type(%w1: tensor<4x12x8xf32>, %w2: tensor<4x8x12xf64>) {
  // expected-error @+1 {{'moe.expert_similarity' op 'down_proj' must have element type 'f32' (that of 'gate_proj'), got 'f64'}}
  %s = moe.expert_similarity %w1, %w1, %w2 : tensor<4x12x8xf32>, tensor<4x8x12xf64> -> tensor<f32>
  return
}

// -----

// moe.expert_similarity (ODS): up_proj has the type of gate_proj (generic
// form).
func.func @expert_similarity_up_type(%w1: tensor<4x12x8xf32>, %w3: tensor<4x12x7xf32>, %w2: tensor<4x8x12xf32>) {
  // expected-error @+1 {{'moe.expert_similarity' op failed to verify that all of {gate_proj, up_proj} have same type}}
  %s = "moe.expert_similarity"(%w1, %w3, %w2) : (tensor<4x12x8xf32>, tensor<4x12x7xf32>, tensor<4x8x12xf32>) -> tensor<f32>
  return
}
