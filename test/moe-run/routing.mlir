// The interpreter end to end on routing cases worked out by hand.
// RUN: moe-run %s --entry gate_ties | FileCheck %s --check-prefix=GATE
// RUN: moe-run %s --entry gate_normalized | FileCheck %s --check-prefix=NORM
// RUN: moe-run %s --entry dispatch_full | FileCheck %s --check-prefix=DISPATCH
// RUN: moe-run %s --entry aux_losses | FileCheck %s --check-prefix=AUX
// RUN: moe-run %s --entry adaptive | FileCheck %s --check-prefix=ADAPT
// RUN: moe-run %s --entry skywork | FileCheck %s --check-prefix=SKYWORK

// Equal logits tie; the lower expert index wins. Row 0: e/(2e+2) and
// 1/(2e+2); row 1: e^z / (2 + 2e^2 + e). Renormalized weights of two equal probabilities are 1/2 each.
// GATE: probs F64[2, 4] = 0.365529289 0.365529289 0.134470711 0.134470711 0.0540645922 0.399486305 0.399486305 0.146962799
// GATE: weights F64[2, 2] = 0.5 0.5 0.5 0.5
// GATE: indices I32[2, 2] = 0 1 1 2
func.func @gate_ties() -> (tensor<2x4xf64> {moe.output = "probs"}, tensor<2x2xf64> {moe.output = "weights"}, tensor<2x2xi32> {moe.output = "indices"}) {
  %z = arith.constant dense<[[1.0, 1.0, 0.0, 0.0], [0.0, 2.0, 2.0, 1.0]]> : tensor<2x4xf64>
  %p, %w, %i = moe.gate %z top_k = 2 renormalize : tensor<2x4xf64> -> tensor<2x4xf64>, tensor<2x2xf64>, tensor<2x2xi32>
  return %p, %w, %i : tensor<2x4xf64>, tensor<2x2xf64>, tensor<2x2xi32>
}

// z = [0, 3]: mean 1.5, population std 1.5, so z~ = lambda * [-1, 1] with
// lambda = 2 (eps 0): softmax([-2, 2]) = [1/(1+e^4), e^4/(1+e^4)].
// Without renormalization the single weight is the probability itself.
// NORM: probs F64[1, 2] = 0.01798621 0.98201379
// NORM: weights F64[1, 1] = 0.98201379
func.func @gate_normalized() -> (tensor<1x2xf64> {moe.output = "probs"}, tensor<1x1xf64> {moe.output = "weights"}) {
  %z = arith.constant dense<[[0.0, 3.0]]> : tensor<1x2xf64>
  %p, %w, %i = moe.gate %z top_k = 1 norm_lambda = 2.0 norm_eps = 1.0e-300 : tensor<1x2xf64> -> tensor<1x2xf64>, tensor<1x1xf64>, tensor<1x1xi32>
  return %p, %w : tensor<1x2xf64>, tensor<1x1xf64>
}

// Capacity ceil(1.0 * 4 * 1 / 2) = 2: tokens 0 and 1 fill expert 0, token 2
// is dropped (slot -1), token 3 goes to expert 1; combine gives the dropped
// token nothing.
// DISPATCH: buffer F64[2, 2, 1] = 1 2 4 0
// DISPATCH: slots I32[4, 1] = 0 1 -1 0
// DISPATCH: dropped I64[] = 1
// DISPATCH: combined F64[4, 1] = 0.5 1 0 2
func.func @dispatch_full() -> (tensor<2x2x1xf64> {moe.output = "buffer"}, tensor<4x1xi32> {moe.output = "slots"}, tensor<i64> {moe.output = "dropped"}, tensor<4x1xf64> {moe.output = "combined"}) {
  %x = arith.constant dense<[[1.0], [2.0], [3.0], [4.0]]> : tensor<4x1xf64>
  %i = arith.constant dense<[[0], [0], [0], [1]]> : tensor<4x1xi32>
  %w = arith.constant dense<0.5> : tensor<4x1xf64>
  %buf, %slots, %dropped = moe.dispatch %x, %i capacity_factor = 1.0 : tensor<4x1xf64>, tensor<4x1xi32> -> tensor<2x2x1xf64>, tensor<4x1xi32>, tensor<i64>
  %y = moe.combine %buf, %w, %i, %slots : tensor<2x2x1xf64>, tensor<4x1xf64>, tensor<4x1xi32>, tensor<4x1xi32> -> tensor<4x1xf64>
  return %buf, %slots, %dropped, %y : tensor<2x2x1xf64>, tensor<4x1xi32>, tensor<i64>, tensor<4x1xf64>
}

// Mean gate values P = [0.75, 0.25]. Skywork: (1/2 - 0.75)^2 + (1/2 - 0.25)^2
// = 0.125. Switch: both assignments chose expert 0, f = [1, 0], so
// 2 * (1 * 0.75 + 0 * 0.25) = 1.5. z-loss of logits [0, 0] and [ln 3, 0]:
// (ln 2^2 + ln 4^2) / 2.
// AUX: skywork F64[] = 0.125
// AUX: switch F64[] = 1.5
// AUX: z F64[] = 1.20113253
func.func @aux_losses() -> (tensor<f64> {moe.output = "skywork"}, tensor<f64> {moe.output = "switch"}, tensor<f64> {moe.output = "z"}) {
  %p = arith.constant dense<[[0.5, 0.5], [1.0, 0.0]]> : tensor<2x2xf64>
  %i = arith.constant dense<[[0], [0]]> : tensor<2x1xi32>
  %logits = arith.constant dense<[[0.0, 0.0], [1.0986122886681098, 0.0]]> : tensor<2x2xf64>
  %s = moe.aux_loss skywork %p, %i : tensor<2x2xf64>, tensor<2x1xi32> -> tensor<f64>
  %w = moe.aux_loss switch %p, %i : tensor<2x2xf64>, tensor<2x1xi32> -> tensor<f64>
  %z = moe.z_loss %logits : tensor<2x2xf64> -> tensor<f64>
  return %s, %w, %z : tensor<f64>, tensor<f64>, tensor<f64>
}

// d = 50 / 100 = 0.5, xi * d = 0.1 clamps to alpha_max = 0.01:
// 0.9 * 0.005 + 0.1 * 0.01 = 0.0055.
// ADAPT: alpha F64[] = 0.0055
func.func @adaptive() -> (tensor<f64> {moe.output = "alpha"}) {
  %a = arith.constant dense<0.005> : tensor<f64>
  %d = arith.constant dense<50> : tensor<i64>
  %n = moe.adaptive_aux_coeff %a, %d xi = 0.2 alpha_max = 0.01 beta = 0.9 assignments = 100 : tensor<f64>, tensor<i64>
  return %n : tensor<f64>
}

// The Skywork-MoE ops. gate_norm: row {1, 2, 4} as in RoutingKernelsTest,
// a constant row gives zeros. Dispatch by priority, capacity ceil(0.75 * 4 *
// 2 / 3) = 2: expert 0's assignments (priorities 0.1, 0.6, 0.3, 0.3) keep
// the 0.6 and the earlier 0.3. Metrics: 2 of 8 dropped; p(1)/p(2) per token
// 2, 5/3, 2, 1 and p(2)/p(3) 1, 3/2, 3, 2; every expert keeps 2. Similarity
// of (1, 0, 1) and (1, 1, 1): 2 / sqrt(6).
// SKYWORK: normalized F64[2, 3] = -2.13808822 -0.534522055 2.67261028 0 0 0
// SKYWORK: slots I32[4, 2] = -1 0 0 0 1 1 -1 1
// SKYWORK: drop_rate F32[] = 0.25
// SKYWORK: max1_max2 F32[] = 1.66666663
// SKYWORK: max2_max3 F32[] = 1.875
// SKYWORK: load I64[3] = 2 2 2
// SKYWORK: similarity F32[] = 0.816496611
func.func @skywork() -> (tensor<2x3xf64> {moe.output = "normalized"}, tensor<4x2xi32> {moe.output = "slots"}, tensor<f32> {moe.output = "drop_rate"}, tensor<f32> {moe.output = "max1_max2"}, tensor<f32> {moe.output = "max2_max3"}, tensor<3xi64> {moe.output = "load"}, tensor<f32> {moe.output = "similarity"}) {
  %z = arith.constant dense<[[1.0, 2.0, 4.0], [5.0, 5.0, 5.0]]> : tensor<2x3xf64>
  %zn = moe.gate_norm %z norm_lambda = 2.0 : tensor<2x3xf64>
  %x = arith.constant dense<[[10.0], [11.0], [12.0], [13.0]]> : tensor<4x1xf32>
  %i = arith.constant dense<[[0, 1], [2, 0], [0, 1], [0, 2]]> : tensor<4x2xi32>
  %w = arith.constant dense<[[0.1, 0.2], [0.5, 0.6], [0.3, 0.1], [0.3, 0.4]]> : tensor<4x2xf32>
  %buf, %slots, %dropped = moe.dispatch %x, %i priority %w capacity_factor = 0.75 : tensor<4x1xf32>, tensor<4x2xi32>, tensor<4x2xf32> -> tensor<3x2x1xf32>, tensor<4x2xi32>, tensor<i64>
  %p = arith.constant dense<[[0.5, 0.25, 0.25], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.4, 0.4, 0.2]]> : tensor<4x3xf32>
  %d, %r12, %r23, %load = moe.routing_metrics %p, %i, %slots : tensor<4x3xf32>, tensor<4x2xi32> -> tensor<f32>, tensor<3xi64>
  %g = arith.constant dense<[[[1.0]], [[1.0]]]> : tensor<2x1x1xf32>
  %u = arith.constant dense<[[[0.0]], [[1.0]]]> : tensor<2x1x1xf32>
  %s = moe.expert_similarity %g, %u, %g : tensor<2x1x1xf32>, tensor<2x1x1xf32> -> tensor<f32>
  return %zn, %slots, %d, %r12, %r23, %load, %s : tensor<2x3xf64>, tensor<4x2xi32>, tensor<f32>, tensor<f32>, tensor<f32>, tensor<3xi64>, tensor<f32>
}
