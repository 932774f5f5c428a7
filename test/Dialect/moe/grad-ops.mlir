// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// Round trip of every backward op (MoeGradOps.td), every optimizer op
// (MoeOptimizerOps.td) and of moe.rope's `inverse` attribute. The first RUN
// line checks custom form -> custom form -> custom form; the second checks
// that the generic form re-parses to the same custom form. Invalid forms:
// invalid-grad-ops.mlir.

//===----------------------------------------------------------------------===//
// moe.rope inverse (rope's own vector-Jacobian product)
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @rope_inverse
// CHECK-SAME: (%[[Q:.*]]: tensor<2x3x4x6xf32>)
// CHECK: %[[Y:.*]] = moe.rope %[[Q]] theta = 1.000000e+04 inverse : tensor<2x3x4x6xf32>
// CHECK: %[[Z:.*]] = moe.rope %[[Y]] theta = 1.000000e+04 : tensor<2x3x4x6xf32>
// CHECK: return %[[Z]] : tensor<2x3x4x6xf32>
func.func @rope_inverse(%q: tensor<2x3x4x6xf32>) -> tensor<2x3x4x6xf32> {
  %y = moe.rope %q theta = 1.0e+04 inverse : tensor<2x3x4x6xf32>
  %z = moe.rope %y theta = 1.0e+04 : tensor<2x3x4x6xf32>
  return %z : tensor<2x3x4x6xf32>
}

// RoPE's scaling (#moe.rope_scaling) keeps the parameters its kind reads;
// the others take their defaults and are not printed.
// CHECK-LABEL: func.func @rope_scaling
// CHECK: moe.rope %{{.*}} theta = 5.000000e+05 scaling = <llama3, factor = 8.000000e+00, original_positions = 8.192000e+03> : tensor<2x3x4x6xf32>
// CHECK: moe.rope %{{.*}} theta = 1.000000e+06 scaling = <yarn, factor = 4.000000e+00, original_positions = 3.276800e+04, beta_fast = 1.600000e+01, truncate = false, attention_factor = 1.200000e+00> inverse : tensor<2x3x4x6xf32>
// CHECK: moe.rope %{{.*}} theta = 1.000000e+04 scaling = <linear, factor = 2.000000e+00> : tensor<2x3x4x6xf32>
func.func @rope_scaling(%q: tensor<2x3x4x6xf32>) -> tensor<2x3x4x6xf32> {
  %a = moe.rope %q theta = 5.0e+05 scaling = <llama3, factor = 8.0, original_positions = 8192.0> : tensor<2x3x4x6xf32>
  %b = moe.rope %a theta = 1.0e+06 scaling = <yarn, factor = 4.0, original_positions = 32768.0, beta_fast = 16.0, truncate = false, attention_factor = 1.2> inverse : tensor<2x3x4x6xf32>
  %c = moe.rope %b theta = 1.0e+04 scaling = <linear, factor = 2.0> : tensor<2x3x4x6xf32>
  return %c : tensor<2x3x4x6xf32>
}

//===----------------------------------------------------------------------===//
// Transformer backward ops
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @embedding_grad
// CHECK-SAME: (%[[IDS:.*]]: tensor<2x3xi32>, %[[DY:.*]]: tensor<2x3x8xf32>)
// CHECK: %[[DT:.*]] = moe.embedding_grad %[[IDS]], %[[DY]] : tensor<2x3xi32>, tensor<2x3x8xf32> -> tensor<16x8xf32>
// CHECK: return %[[DT]] : tensor<16x8xf32>
func.func @embedding_grad(%ids: tensor<2x3xi32>, %dy: tensor<2x3x8xf32>) -> tensor<16x8xf32> {
  %dt = moe.embedding_grad %ids, %dy : tensor<2x3xi32>, tensor<2x3x8xf32> -> tensor<16x8xf32>
  return %dt : tensor<16x8xf32>
}

// CHECK-LABEL: func.func @embedding_grad_padding
// CHECK: moe.embedding_grad %{{.*}}, %{{.*}} padding_id = 0 : tensor<2x3xi32>, tensor<2x3x8xf32> -> tensor<16x8xf32>
func.func @embedding_grad_padding(%ids: tensor<2x3xi32>, %dy: tensor<2x3x8xf32>) -> tensor<16x8xf32> {
  %dt = moe.embedding_grad %ids, %dy padding_id = 0 : tensor<2x3xi32>, tensor<2x3x8xf32> -> tensor<16x8xf32>
  return %dt : tensor<16x8xf32>
}

// CHECK-LABEL: func.func @rms_norm_grad
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x8xf32>, %[[W:.*]]: tensor<8xf32>, %[[DY:.*]]: tensor<2x3x8xf32>)
// CHECK: %[[DX:.*]], %[[DW:.*]] = moe.rms_norm_grad %[[X]], %[[W]], %[[DY]] eps = 1.000000e-05 : tensor<2x3x8xf32>, tensor<8xf32>
// CHECK: return %[[DX]], %[[DW]] : tensor<2x3x8xf32>, tensor<8xf32>
func.func @rms_norm_grad(%x: tensor<2x3x8xf32>, %w: tensor<8xf32>, %dy: tensor<2x3x8xf32>) -> (tensor<2x3x8xf32>, tensor<8xf32>) {
  %dx, %dw = moe.rms_norm_grad %x, %w, %dy eps = 1.0e-05 : tensor<2x3x8xf32>, tensor<8xf32>
  return %dx, %dw : tensor<2x3x8xf32>, tensor<8xf32>
}

// f64 and a rank-1 input; 1e-6 is printed with all its digits.
// CHECK-LABEL: func.func @rms_norm_grad_f64
// CHECK-SAME: (%[[X:.*]]: tensor<8xf64>, %[[W:.*]]: tensor<8xf64>, %[[DY:.*]]: tensor<8xf64>)
// CHECK: %[[DX:.*]], %[[DW:.*]] = moe.rms_norm_grad %[[X]], %[[W]], %[[DY]] eps = 9.9999999999999995E-7 : tensor<8xf64>, tensor<8xf64>
// CHECK: return %[[DX]], %[[DW]] : tensor<8xf64>, tensor<8xf64>
func.func @rms_norm_grad_f64(%x: tensor<8xf64>, %w: tensor<8xf64>, %dy: tensor<8xf64>) -> (tensor<8xf64>, tensor<8xf64>) {
  %dx, %dw = moe.rms_norm_grad %x, %w, %dy eps = 1.0e-06 : tensor<8xf64>, tensor<8xf64>
  return %dx, %dw : tensor<8xf64>, tensor<8xf64>
}

// An input stored as bf16 (moe-widen-operands): the gradients' type after
// an arrow.
// CHECK-LABEL: func.func @rms_norm_grad_widened
// CHECK: moe.rms_norm_grad {{.*}} eps = 1.000000e-05 : tensor<2x8xbf16> -> tensor<2x8xf32>, tensor<8xf32>
func.func @rms_norm_grad_widened(%x: tensor<2x8xbf16>, %w: tensor<8xf32>, %dy: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<8xf32>) {
  %dx, %dw = moe.rms_norm_grad %x, %w, %dy eps = 1.0e-05 : tensor<2x8xbf16> -> tensor<2x8xf32>, tensor<8xf32>
  return %dx, %dw : tensor<2x8xf32>, tensor<8xf32>
}

// d_result [..., out] x weight [out, in] -> d_input [..., in].
// CHECK-LABEL: func.func @linear_input_grad
// CHECK-SAME: (%[[DY:.*]]: tensor<2x3x6xf32>, %[[W:.*]]: tensor<6x8xf32>)
// CHECK: %[[DX:.*]] = moe.linear_input_grad %[[DY]], %[[W]] : tensor<2x3x6xf32>, tensor<6x8xf32> -> tensor<2x3x8xf32>
// CHECK: return %[[DX]] : tensor<2x3x8xf32>
func.func @linear_input_grad(%dy: tensor<2x3x6xf32>, %w: tensor<6x8xf32>) -> tensor<2x3x8xf32> {
  %dx = moe.linear_input_grad %dy, %w : tensor<2x3x6xf32>, tensor<6x8xf32> -> tensor<2x3x8xf32>
  return %dx : tensor<2x3x8xf32>
}

// d_result [..., out] and input [..., in] -> d_weight [out, in].
// CHECK-LABEL: func.func @linear_weight_grad
// CHECK-SAME: (%[[DY:.*]]: tensor<2x3x6xf32>, %[[X:.*]]: tensor<2x3x8xf32>)
// CHECK: %[[DW:.*]] = moe.linear_weight_grad %[[DY]], %[[X]] : tensor<2x3x6xf32>, tensor<2x3x8xf32> -> tensor<6x8xf32>
// CHECK: return %[[DW]] : tensor<6x8xf32>
func.func @linear_weight_grad(%dy: tensor<2x3x6xf32>, %x: tensor<2x3x8xf32>) -> tensor<6x8xf32> {
  %dw = moe.linear_weight_grad %dy, %x : tensor<2x3x6xf32>, tensor<2x3x8xf32> -> tensor<6x8xf32>
  return %dw : tensor<6x8xf32>
}

// CHECK-LABEL: func.func @bias_grad
// CHECK-SAME: (%[[DY:.*]]: tensor<2x3x6xf64>)
// CHECK: %[[DB:.*]] = moe.bias_grad %[[DY]] : tensor<2x3x6xf64> -> tensor<6xf64>
// CHECK: return %[[DB]] : tensor<6xf64>
func.func @bias_grad(%dy: tensor<2x3x6xf64>) -> tensor<6xf64> {
  %db = moe.bias_grad %dy : tensor<2x3x6xf64> -> tensor<6xf64>
  return %db : tensor<6xf64>
}

// Grouped-query attention: 4 query heads read 2 key/value heads.
// CHECK-LABEL: func.func @attention_grad
// CHECK-SAME: (%[[Q:.*]]: tensor<2x3x4x6xf32>, %[[K:.*]]: tensor<2x3x2x6xf32>, %[[V:.*]]: tensor<2x3x2x6xf32>, %[[O:.*]]: tensor<2x3x4x6xf32>, %[[LSE:.*]]: tensor<2x4x3xf32>, %[[DY:.*]]: tensor<2x3x4x6xf32>)
// CHECK: %[[DQ:.*]], %[[DK:.*]], %[[DV:.*]] = moe.attention_grad %[[Q]], %[[K]], %[[V]], %[[O]], %[[LSE]], %[[DY]] : tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>{{$}}
// CHECK-NOT: causal
// CHECK: return %[[DQ]], %[[DK]], %[[DV]] : tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x2x6xf32>
func.func @attention_grad(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x6xf32>, %v: tensor<2x3x2x6xf32>, %o: tensor<2x3x4x6xf32>, %lse: tensor<2x4x3xf32>, %dy: tensor<2x3x4x6xf32>)
    -> (tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x2x6xf32>) {
  %dq, %dk, %dv = moe.attention_grad %q, %k, %v, %o, %lse, %dy : tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>
  return %dq, %dk, %dv : tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>, tensor<2x3x2x6xf32>
}

// The sinks' gradient: the sinks' type whatever the activations'.
// CHECK-LABEL: func.func @attention_sinks_grad
// CHECK-SAME: (%[[S:.*]]: tensor<4xf32>, %[[LSE:.*]]: tensor<2x4x3xf32>, %[[O:.*]]: tensor<2x3x4x16xbf16>, %[[DY:.*]]: tensor<2x3x4x16xbf16>)
// CHECK: %[[DS:.*]] = moe.attention_sinks_grad %[[S]], %[[LSE]], %[[O]], %[[DY]] : tensor<4xf32>, tensor<2x3x4x16xbf16>{{$}}
// CHECK: return %[[DS]] : tensor<4xf32>
func.func @attention_sinks_grad(%s: tensor<4xf32>, %lse: tensor<2x4x3xf32>, %o: tensor<2x3x4x16xbf16>, %dy: tensor<2x3x4x16xbf16>) -> tensor<4xf32> {
  %ds = moe.attention_sinks_grad %s, %lse, %o, %dy : tensor<4xf32>, tensor<2x3x4x16xbf16>
  return %ds : tensor<4xf32>
}

// CHECK-LABEL: func.func @attention_grad_causal
// CHECK-SAME: (%[[Q:.*]]: tensor<2x3x4x6xf32>, %[[K:.*]]: tensor<2x3x4x6xf32>, %[[V:.*]]: tensor<2x3x4x6xf32>, %[[O:.*]]: tensor<2x3x4x6xf32>, %[[LSE:.*]]: tensor<2x4x3xf32>, %[[DY:.*]]: tensor<2x3x4x6xf32>)
// CHECK: %[[DQ:.*]], %[[DK:.*]], %[[DV:.*]] = moe.attention_grad %[[Q]], %[[K]], %[[V]], %[[O]], %[[LSE]], %[[DY]] causal : tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>
// CHECK: return %[[DQ]], %[[DK]], %[[DV]] : tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>
func.func @attention_grad_causal(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x4x6xf32>, %v: tensor<2x3x4x6xf32>, %o: tensor<2x3x4x6xf32>, %lse: tensor<2x4x3xf32>, %dy: tensor<2x3x4x6xf32>)
    -> (tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>) {
  %dq, %dk, %dv = moe.attention_grad %q, %k, %v, %o, %lse, %dy causal : tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>
  return %dq, %dk, %dv : tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>
}

// CHECK-LABEL: func.func @attention_grad_window
// CHECK: moe.attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} causal window 2 : tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>
func.func @attention_grad_window(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x4x6xf32>, %v: tensor<2x3x4x6xf32>, %o: tensor<2x3x4x6xf32>, %lse: tensor<2x4x3xf32>, %dy: tensor<2x3x4x6xf32>)
    -> (tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>) {
  %dq, %dk, %dv = moe.attention_grad %q, %k, %v, %o, %lse, %dy causal window 2 : tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>
  return %dq, %dk, %dv : tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>
}

// Mixed precision: bf16 operands, f32 gradients.
// CHECK-LABEL: func.func @attention_grad_bf16
// CHECK: moe.attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} causal : tensor<2x3x4x16xbf16>, tensor<2x3x2x16xbf16>
// CHECK: return %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x3x4x16xf32>, tensor<2x3x2x16xf32>, tensor<2x3x2x16xf32>
func.func @attention_grad_bf16(%q: tensor<2x3x4x16xbf16>, %k: tensor<2x3x2x16xbf16>, %v: tensor<2x3x2x16xbf16>, %o: tensor<2x3x4x16xbf16>, %lse: tensor<2x4x3xf32>, %dy: tensor<2x3x4x16xbf16>)
    -> (tensor<2x3x4x16xf32>, tensor<2x3x2x16xf32>, tensor<2x3x2x16xf32>) {
  %dq, %dk, %dv = moe.attention_grad %q, %k, %v, %o, %lse, %dy causal : tensor<2x3x4x16xbf16>, tensor<2x3x2x16xbf16>
  return %dq, %dk, %dv : tensor<2x3x4x16xf32>, tensor<2x3x2x16xf32>, tensor<2x3x2x16xf32>
}

// CHECK-LABEL: func.func @concat_grad
// CHECK-SAME: (%[[DY:.*]]: tensor<2x3x4x10xf32>)
// CHECK: %[[DN:.*]], %[[DP:.*]] = moe.concat_grad %[[DY]] : tensor<2x3x4x10xf32> -> tensor<2x3x4x6xf32>, tensor<2x3x1x4xf32>
// CHECK: return %[[DN]], %[[DP]]
func.func @concat_grad(%dy: tensor<2x3x4x10xf32>) -> (tensor<2x3x4x6xf32>, tensor<2x3x1x4xf32>) {
  %dn, %dp = moe.concat_grad %dy : tensor<2x3x4x10xf32> -> tensor<2x3x4x6xf32>, tensor<2x3x1x4xf32>
  return %dn, %dp : tensor<2x3x4x6xf32>, tensor<2x3x1x4xf32>
}

// CHECK-LABEL: func.func @swiglu_grad
// CHECK-SAME: (%[[G:.*]]: tensor<2x3x10xf32>, %[[U:.*]]: tensor<2x3x10xf32>, %[[DY:.*]]: tensor<2x3x10xf32>)
// CHECK: %[[DG:.*]], %[[DU:.*]] = moe.swiglu_grad %[[G]], %[[U]], %[[DY]] : tensor<2x3x10xf32>
// CHECK: return %[[DG]], %[[DU]] : tensor<2x3x10xf32>, tensor<2x3x10xf32>
func.func @swiglu_grad(%g: tensor<2x3x10xf32>, %u: tensor<2x3x10xf32>, %dy: tensor<2x3x10xf32>) -> (tensor<2x3x10xf32>, tensor<2x3x10xf32>) {
  %dg, %du = moe.swiglu_grad %g, %u, %dy : tensor<2x3x10xf32>
  return %dg, %du : tensor<2x3x10xf32>, tensor<2x3x10xf32>
}

// CHECK-LABEL: func.func @sigmoid_scale_grad
// CHECK-SAME: (%[[X:.*]]: tensor<6x10xf32>, %[[G:.*]]: tensor<6x1xf32>, %[[DY:.*]]: tensor<6x10xf32>)
// CHECK: %[[DX:.*]], %[[DG:.*]] = moe.sigmoid_scale_grad %[[X]], %[[G]], %[[DY]] : tensor<6x10xf32>, tensor<6x1xf32>
// CHECK: return %[[DX]], %[[DG]] : tensor<6x10xf32>, tensor<6x1xf32>
func.func @sigmoid_scale_grad(%x: tensor<6x10xf32>, %g: tensor<6x1xf32>, %dy: tensor<6x10xf32>) -> (tensor<6x10xf32>, tensor<6x1xf32>) {
  %dx, %dg = moe.sigmoid_scale_grad %x, %g, %dy : tensor<6x10xf32>, tensor<6x1xf32>
  return %dx, %dg : tensor<6x10xf32>, tensor<6x1xf32>
}

// CHECK-LABEL: func.func @cross_entropy_grad
// CHECK-SAME: (%[[LOGITS:.*]]: tensor<2x3x16xf32>, %[[TARGETS:.*]]: tensor<2x3xi32>, %[[DL:.*]]: tensor<f32>)
// CHECK: %[[DZ:.*]] = moe.cross_entropy_grad %[[LOGITS]], %[[TARGETS]], %[[DL]] : tensor<2x3x16xf32>, tensor<2x3xi32>, tensor<f32>
// CHECK: return %[[DZ]] : tensor<2x3x16xf32>
func.func @cross_entropy_grad(%logits: tensor<2x3x16xf32>, %targets: tensor<2x3xi32>, %dl: tensor<f32>) -> tensor<2x3x16xf32> {
  %dz = moe.cross_entropy_grad %logits, %targets, %dl : tensor<2x3x16xf32>, tensor<2x3xi32>, tensor<f32>
  return %dz : tensor<2x3x16xf32>
}

// A gradient narrowed to bf16 (moe-narrow-results) prints after an arrow.
// CHECK-LABEL: func.func @cross_entropy_grad_narrowed
// CHECK: moe.cross_entropy_grad {{.*}} : tensor<2x16xf32> -> tensor<2x16xbf16>, tensor<2xi32>, tensor<f32>
func.func @cross_entropy_grad_narrowed(%logits: tensor<2x16xf32>, %targets: tensor<2xi32>, %dl: tensor<f32>) -> tensor<2x16xbf16> {
  %dz = moe.cross_entropy_grad %logits, %targets, %dl : tensor<2x16xf32> -> tensor<2x16xbf16>, tensor<2xi32>, tensor<f32>
  return %dz : tensor<2x16xbf16>
}

//===----------------------------------------------------------------------===//
// Routing and expert backward ops
//===----------------------------------------------------------------------===//

// No attributes: no norm_lambda, the default norm_eps, no renormalize.
// CHECK-LABEL: func.func @gate_grad
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf32>, %[[I:.*]]: tensor<16x2xi32>, %[[DP:.*]]: tensor<16x4xf32>, %[[DW:.*]]: tensor<16x2xf32>)
// CHECK: %[[DZ:.*]] = moe.gate_grad %[[Z]], %[[I]], %[[DP]], %[[DW]] : tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x2xf32>
// CHECK: return %[[DZ]] : tensor<16x4xf32>
func.func @gate_grad(%z: tensor<16x4xf32>, %i: tensor<16x2xi32>, %dp: tensor<16x4xf32>, %dw: tensor<16x2xf32>) -> tensor<16x4xf32> {
  %dz = moe.gate_grad %z, %i, %dp, %dw : tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x2xf32>
  return %dz : tensor<16x4xf32>
}

// norm_lambda and renormalize (Skywork-MoE).
// CHECK-LABEL: func.func @gate_grad_norm_lambda_renormalize
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf32>, %[[I:.*]]: tensor<16x2xi32>, %[[DP:.*]]: tensor<16x4xf32>, %[[DW:.*]]: tensor<16x2xf32>)
// CHECK: %[[DZ:.*]] = moe.gate_grad %[[Z]], %[[I]], %[[DP]], %[[DW]] norm_lambda = 1.000000e+00 renormalize : tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x2xf32>
// CHECK: return %[[DZ]] : tensor<16x4xf32>
func.func @gate_grad_norm_lambda_renormalize(%z: tensor<16x4xf32>, %i: tensor<16x2xi32>, %dp: tensor<16x4xf32>, %dw: tensor<16x2xf32>) -> tensor<16x4xf32> {
  %dz = moe.gate_grad %z, %i, %dp, %dw norm_lambda = 1.0 renormalize : tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x2xf32>
  return %dz : tensor<16x4xf32>
}

// norm_lambda without renormalize.
// CHECK-LABEL: func.func @gate_grad_norm_lambda
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf32>, %[[I:.*]]: tensor<16x1xi32>, %[[DP:.*]]: tensor<16x4xf32>, %[[DW:.*]]: tensor<16x1xf32>)
// CHECK: %[[DZ:.*]] = moe.gate_grad %[[Z]], %[[I]], %[[DP]], %[[DW]] norm_lambda = 2.500000e+00 : tensor<16x4xf32>, tensor<16x1xi32>, tensor<16x1xf32>
// CHECK-NOT: renormalize
// CHECK: return %[[DZ]] : tensor<16x4xf32>
func.func @gate_grad_norm_lambda(%z: tensor<16x4xf32>, %i: tensor<16x1xi32>, %dp: tensor<16x4xf32>, %dw: tensor<16x1xf32>) -> tensor<16x4xf32> {
  %dz = moe.gate_grad %z, %i, %dp, %dw norm_lambda = 2.5 : tensor<16x4xf32>, tensor<16x1xi32>, tensor<16x1xf32>
  return %dz : tensor<16x4xf32>
}

// renormalize without norm_lambda (Mixtral); top_k = experts.
// CHECK-LABEL: func.func @gate_grad_renormalize
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf32>, %[[I:.*]]: tensor<16x4xi32>, %[[DP:.*]]: tensor<16x4xf32>, %[[DW:.*]]: tensor<16x4xf32>)
// CHECK: %[[DZ:.*]] = moe.gate_grad %[[Z]], %[[I]], %[[DP]], %[[DW]] renormalize : tensor<16x4xf32>, tensor<16x4xi32>, tensor<16x4xf32>
// CHECK: return %[[DZ]] : tensor<16x4xf32>
func.func @gate_grad_renormalize(%z: tensor<16x4xf32>, %i: tensor<16x4xi32>, %dp: tensor<16x4xf32>, %dw: tensor<16x4xf32>) -> tensor<16x4xf32> {
  %dz = moe.gate_grad %z, %i, %dp, %dw renormalize : tensor<16x4xf32>, tensor<16x4xi32>, tensor<16x4xf32>
  return %dz : tensor<16x4xf32>
}

// A non-default norm_eps is printed, with f64 tensors.
// CHECK-LABEL: func.func @gate_grad_sigmoid
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf32>, %[[I:.*]]: tensor<16x2xi32>, %[[DP:.*]]: tensor<16x4xf32>, %[[DW:.*]]: tensor<16x2xf32>)
// CHECK: %[[DZ:.*]] = moe.gate_grad %[[Z]], %[[I]], %[[DP]], %[[DW]] scoring = sigmoid renormalize scale = 2.500000e+00 : tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x2xf32>
// CHECK: return %[[DZ]] : tensor<16x4xf32>
func.func @gate_grad_sigmoid(%z: tensor<16x4xf32>, %i: tensor<16x2xi32>, %dp: tensor<16x4xf32>, %dw: tensor<16x2xf32>) -> tensor<16x4xf32> {
  %dz = moe.gate_grad %z, %i, %dp, %dw scoring = sigmoid renormalize scale = 2.5 : tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x2xf32>
  return %dz : tensor<16x4xf32>
}

// CHECK-LABEL: func.func @gate_grad_norm_eps
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf64>, %[[I:.*]]: tensor<16x2xi32>, %[[DP:.*]]: tensor<16x4xf64>, %[[DW:.*]]: tensor<16x2xf64>)
// CHECK: %[[DZ:.*]] = moe.gate_grad %[[Z]], %[[I]], %[[DP]], %[[DW]] norm_lambda = 1.000000e+00 norm_eps = 1.000000e-05 renormalize : tensor<16x4xf64>, tensor<16x2xi32>, tensor<16x2xf64>
// CHECK: return %[[DZ]] : tensor<16x4xf64>
func.func @gate_grad_norm_eps(%z: tensor<16x4xf64>, %i: tensor<16x2xi32>, %dp: tensor<16x4xf64>, %dw: tensor<16x2xf64>) -> tensor<16x4xf64> {
  %dz = moe.gate_grad %z, %i, %dp, %dw norm_lambda = 1.0 norm_eps = 1.0e-05 renormalize : tensor<16x4xf64>, tensor<16x2xi32>, tensor<16x2xf64>
  return %dz : tensor<16x4xf64>
}

// An explicit norm_eps equal to the default (1e-6) is elided when printed.
// CHECK-LABEL: func.func @gate_grad_default_norm_eps
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf32>, %[[I:.*]]: tensor<16x2xi32>, %[[DP:.*]]: tensor<16x4xf32>, %[[DW:.*]]: tensor<16x2xf32>)
// CHECK: %[[DZ:.*]] = moe.gate_grad %[[Z]], %[[I]], %[[DP]], %[[DW]] norm_lambda = 1.000000e+00 : tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x2xf32>
// CHECK: return %[[DZ]] : tensor<16x4xf32>
func.func @gate_grad_default_norm_eps(%z: tensor<16x4xf32>, %i: tensor<16x2xi32>, %dp: tensor<16x4xf32>, %dw: tensor<16x2xf32>) -> tensor<16x4xf32> {
  %dz = moe.gate_grad %z, %i, %dp, %dw norm_lambda = 1.0 norm_eps = 1.0e-06 : tensor<16x4xf32>, tensor<16x2xi32>, tensor<16x2xf32>
  return %dz : tensor<16x4xf32>
}

// moe.gate_norm's gradient: the default norm_eps is elided, another printed.
// CHECK-LABEL: func.func @gate_norm_grad
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf32>, %[[DZN:.*]]: tensor<16x4xf32>)
// CHECK: %[[DZ:.*]] = moe.gate_norm_grad %[[Z]], %[[DZN]] norm_lambda = 1.000000e+00 : tensor<16x4xf32>
// CHECK: %[[DZ2:.*]] = moe.gate_norm_grad %[[Z]], %[[DZN]] norm_lambda = 2.500000e+00 norm_eps = 1.000000e-05 : tensor<16x4xf32>
// CHECK: return %[[DZ]], %[[DZ2]] : tensor<16x4xf32>, tensor<16x4xf32>
func.func @gate_norm_grad(%z: tensor<16x4xf32>, %dzn: tensor<16x4xf32>) -> (tensor<16x4xf32>, tensor<16x4xf32>) {
  %dz = moe.gate_norm_grad %z, %dzn norm_lambda = 1.0 : tensor<16x4xf32>
  %dz2 = moe.gate_norm_grad %z, %dzn norm_lambda = 2.5 norm_eps = 1.0e-05 : tensor<16x4xf32>
  return %dz, %dz2 : tensor<16x4xf32>, tensor<16x4xf32>
}

// CHECK-LABEL: func.func @dispatch_grad
// CHECK-SAME: (%[[DBUF:.*]]: tensor<4x10x8xf32>, %[[I:.*]]: tensor<16x2xi32>, %[[SLOTS:.*]]: tensor<16x2xi32>)
// CHECK: %[[DX:.*]] = moe.dispatch_grad %[[DBUF]], %[[I]], %[[SLOTS]] : tensor<4x10x8xf32>, tensor<16x2xi32> -> tensor<16x8xf32>
// CHECK: return %[[DX]] : tensor<16x8xf32>
func.func @dispatch_grad(%dbuf: tensor<4x10x8xf32>, %i: tensor<16x2xi32>, %slots: tensor<16x2xi32>) -> tensor<16x8xf32> {
  %dx = moe.dispatch_grad %dbuf, %i, %slots : tensor<4x10x8xf32>, tensor<16x2xi32> -> tensor<16x8xf32>
  return %dx : tensor<16x8xf32>
}

// CHECK-LABEL: func.func @expert_ffn_grad
// CHECK-SAME: (%[[BUF:.*]]: tensor<4x10x8xf32>, %[[W1:.*]]: tensor<4x12x8xf32>, %[[W3:.*]]: tensor<4x12x8xf32>, %[[W2:.*]]: tensor<4x8x12xf32>, %[[PROJ:.*]]: tensor<4x2x10x12xf32>, %[[DY:.*]]: tensor<4x10x8xf32>)
// CHECK: %[[DX:.*]], %[[DW1:.*]], %[[DW3:.*]], %[[DW2:.*]] = moe.expert_ffn_grad %[[BUF]], %[[W1]], %[[W3]], %[[W2]], %[[PROJ]], %[[DY]] : tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32>, tensor<4x2x10x12xf32>
// CHECK: return %[[DX]], %[[DW1]], %[[DW3]], %[[DW2]] : tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32>
func.func @expert_ffn_grad(%buf: tensor<4x10x8xf32>, %w1: tensor<4x12x8xf32>, %w3: tensor<4x12x8xf32>, %w2: tensor<4x8x12xf32>, %proj: tensor<4x2x10x12xf32>, %dy: tensor<4x10x8xf32>)
    -> (tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32>) {
  %dx, %dw1, %dw3, %dw2 = moe.expert_ffn_grad %buf, %w1, %w3, %w2, %proj, %dy : tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32>, tensor<4x2x10x12xf32>
  return %dx, %dw1, %dw3, %dw2 : tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32>
}

// CHECK-LABEL: func.func @combine_grad
// CHECK-SAME: (%[[OUT:.*]]: tensor<4x10x8xf32>, %[[W:.*]]: tensor<16x2xf32>, %[[I:.*]]: tensor<16x2xi32>, %[[SLOTS:.*]]: tensor<16x2xi32>, %[[DY:.*]]: tensor<16x8xf32>)
// CHECK: %[[DOUT:.*]], %[[DW:.*]] = moe.combine_grad %[[OUT]], %[[W]], %[[I]], %[[SLOTS]], %[[DY]] : tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x8xf32>
// CHECK: return %[[DOUT]], %[[DW]] : tensor<4x10x8xf32>, tensor<16x2xf32>
func.func @combine_grad(%out: tensor<4x10x8xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>, %slots: tensor<16x2xi32>, %dy: tensor<16x8xf32>)
    -> (tensor<4x10x8xf32>, tensor<16x2xf32>) {
  %dout, %dw = moe.combine_grad %out, %w, %i, %slots, %dy : tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x8xf32>
  return %dout, %dw : tensor<4x10x8xf32>, tensor<16x2xf32>
}

// A narrowed expert-output gradient (moe-narrow-results) prints its type
// after an arrow.
// CHECK-LABEL: func.func @combine_grad_narrowed
// CHECK: moe.combine_grad {{.*}} : tensor<4x10x8xf32> -> tensor<4x10x8xbf16>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x8xf32>
func.func @combine_grad_narrowed(%out: tensor<4x10x8xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>, %slots: tensor<16x2xi32>, %dy: tensor<16x8xf32>)
    -> (tensor<4x10x8xbf16>, tensor<16x2xf32>) {
  %dout, %dw = moe.combine_grad %out, %w, %i, %slots, %dy : tensor<4x10x8xf32> -> tensor<4x10x8xbf16>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x8xf32>
  return %dout, %dw : tensor<4x10x8xbf16>, tensor<16x2xf32>
}

// Expert outputs stored as bf16 (moe-widen-operands): the gradient the op
// computes, f32, after an arrow; both bf16 print once.
// CHECK-LABEL: func.func @combine_grad_widened
// CHECK: moe.combine_grad {{.*}} : tensor<4x10x8xbf16> -> tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x8xf32>
// CHECK: moe.combine_grad {{.*}} : tensor<4x10x8xbf16>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x8xf32>
func.func @combine_grad_widened(%out: tensor<4x10x8xbf16>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>, %slots: tensor<16x2xi32>, %dy: tensor<16x8xf32>)
    -> (tensor<4x10x8xf32>, tensor<4x10x8xbf16>) {
  %dout, %dw = moe.combine_grad %out, %w, %i, %slots, %dy : tensor<4x10x8xbf16> -> tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x8xf32>
  %nout, %nw = moe.combine_grad %out, %w, %i, %slots, %dy : tensor<4x10x8xbf16>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x8xf32>
  return %dout, %nout : tensor<4x10x8xf32>, tensor<4x10x8xbf16>
}

//===----------------------------------------------------------------------===//
// Auxiliary-loss backward ops
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @pooled_aux_loss_and_grad
// CHECK: %[[L:.*]] = moe.pooled_aux_loss(%{{.*}}, %{{.*}}), (%[[I0:.*]], %[[I1:.*]]) : (tensor<16x4xf32>, tensor<8x4xf32>), (tensor<16x2xi32>, tensor<8x2xi32>) -> tensor<f32>
// CHECK: moe.pooled_aux_loss_grad(%[[I0]], %[[I1]]), %[[L]] : (tensor<16x2xi32>, tensor<8x2xi32>), tensor<f32> -> (tensor<16x4xf32>, tensor<8x4xf32>)
func.func @pooled_aux_loss_and_grad(%p0: tensor<16x4xf32>, %p1: tensor<8x4xf32>, %i0: tensor<16x2xi32>, %i1: tensor<8x2xi32>) -> (tensor<16x4xf32>, tensor<8x4xf32>) {
  %l = moe.pooled_aux_loss(%p0, %p1), (%i0, %i1) : (tensor<16x4xf32>, tensor<8x4xf32>), (tensor<16x2xi32>, tensor<8x2xi32>) -> tensor<f32>
  %d0, %d1 = moe.pooled_aux_loss_grad(%i0, %i1), %l : (tensor<16x2xi32>, tensor<8x2xi32>), tensor<f32> -> (tensor<16x4xf32>, tensor<8x4xf32>)
  return %d0, %d1 : tensor<16x4xf32>, tensor<8x4xf32>
}

// CHECK-LABEL: func.func @aux_loss_grad_skywork
// CHECK-SAME: (%[[P:.*]]: tensor<16x4xf32>, %[[I:.*]]: tensor<16x2xi32>, %[[DL:.*]]: tensor<f32>)
// CHECK: %[[DP:.*]] = moe.aux_loss_grad skywork %[[P]], %[[I]], %[[DL]] : tensor<16x4xf32>, tensor<16x2xi32>, tensor<f32>
// CHECK: return %[[DP]] : tensor<16x4xf32>
func.func @aux_loss_grad_skywork(%p: tensor<16x4xf32>, %i: tensor<16x2xi32>, %dl: tensor<f32>) -> tensor<16x4xf32> {
  %dp = moe.aux_loss_grad skywork %p, %i, %dl : tensor<16x4xf32>, tensor<16x2xi32>, tensor<f32>
  return %dp : tensor<16x4xf32>
}

// CHECK-LABEL: func.func @aux_loss_grad_switch
// CHECK-SAME: (%[[P:.*]]: tensor<16x4xf64>, %[[I:.*]]: tensor<16x2xi32>, %[[DL:.*]]: tensor<f64>)
// CHECK: %[[DP:.*]] = moe.aux_loss_grad switch %[[P]], %[[I]], %[[DL]] : tensor<16x4xf64>, tensor<16x2xi32>, tensor<f64>
// CHECK: return %[[DP]] : tensor<16x4xf64>
func.func @aux_loss_grad_switch(%p: tensor<16x4xf64>, %i: tensor<16x2xi32>, %dl: tensor<f64>) -> tensor<16x4xf64> {
  %dp = moe.aux_loss_grad switch %p, %i, %dl : tensor<16x4xf64>, tensor<16x2xi32>, tensor<f64>
  return %dp : tensor<16x4xf64>
}

// CHECK-LABEL: func.func @z_loss_grad
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf32>, %[[DL:.*]]: tensor<f32>)
// CHECK: %[[DZ:.*]] = moe.z_loss_grad %[[Z]], %[[DL]] : tensor<16x4xf32>, tensor<f32>
// CHECK: return %[[DZ]] : tensor<16x4xf32>
func.func @z_loss_grad(%z: tensor<16x4xf32>, %dl: tensor<f32>) -> tensor<16x4xf32> {
  %dz = moe.z_loss_grad %z, %dl : tensor<16x4xf32>, tensor<f32>
  return %dz : tensor<16x4xf32>
}

//===----------------------------------------------------------------------===//
// Optimizer ops
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @lr_schedule
// CHECK-SAME: (%[[STEP:.*]]: tensor<i64>)
// CHECK: %[[LR:.*]] = moe.lr_schedule %[[STEP]] max_lr = 1.000000e-03 min_lr = 1.000000e-04 warmup_steps = 100 decay_steps = 2000 : tensor<i64> -> tensor<f32>
// CHECK: return %[[LR]] : tensor<f32>
func.func @lr_schedule(%step: tensor<i64>) -> tensor<f32> {
  %lr = moe.lr_schedule %step max_lr = 1.0e-03 min_lr = 1.0e-04 warmup_steps = 100
      decay_steps = 2000 : tensor<i64> -> tensor<f32>
  return %lr : tensor<f32>
}

// The bounds: no warmup, a zero minimum (and maximum), decay_steps = warmup_steps + 1.
// CHECK-LABEL: func.func @lr_schedule_bounds
// CHECK-SAME: (%[[STEP:.*]]: tensor<i64>)
// CHECK: %[[LR:.*]] = moe.lr_schedule %[[STEP]] max_lr = 0.000000e+00 min_lr = 0.000000e+00 warmup_steps = 0 decay_steps = 1 : tensor<i64> -> tensor<f64>
// CHECK: return %[[LR]] : tensor<f64>
func.func @lr_schedule_bounds(%step: tensor<i64>) -> tensor<f64> {
  %lr = moe.lr_schedule %step max_lr = 0.0 min_lr = 0.0 warmup_steps = 0 decay_steps = 1 : tensor<i64> -> tensor<f64>
  return %lr : tensor<f64>
}

// CHECK-LABEL: func.func @global_norm_one
// CHECK-SAME: (%[[A:.*]]: tensor<2x3xf32>)
// CHECK: %[[N:.*]] = moe.global_norm %[[A]] : tensor<2x3xf32> -> tensor<f32>
// CHECK: return %[[N]] : tensor<f32>
func.func @global_norm_one(%a: tensor<2x3xf32>) -> tensor<f32> {
  %n = moe.global_norm %a : tensor<2x3xf32> -> tensor<f32>
  return %n : tensor<f32>
}

// Tensors of different shapes (a 0-D one too) taken together.
// CHECK-LABEL: func.func @global_norm_several
// CHECK-SAME: (%[[A:.*]]: tensor<2x3xf64>, %[[B:.*]]: tensor<f64>, %[[C:.*]]: tensor<4x5x6xf64>)
// CHECK: %[[N:.*]] = moe.global_norm %[[A]], %[[B]], %[[C]] : tensor<2x3xf64>, tensor<f64>, tensor<4x5x6xf64> -> tensor<f64>
// CHECK: return %[[N]] : tensor<f64>
func.func @global_norm_several(%a: tensor<2x3xf64>, %b: tensor<f64>, %c: tensor<4x5x6xf64>) -> tensor<f64> {
  %n = moe.global_norm %a, %b, %c : tensor<2x3xf64>, tensor<f64>, tensor<4x5x6xf64> -> tensor<f64>
  return %n : tensor<f64>
}

// CHECK-LABEL: func.func @adamw
// CHECK-SAME: (%[[P:.*]]: tensor<6x8xf32>, %[[G:.*]]: tensor<6x8xf32>, %[[M:.*]]: tensor<6x8xf32>, %[[V:.*]]: tensor<6x8xf32>, %[[LR:.*]]: tensor<f32>, %[[NORM:.*]]: tensor<f32>, %[[STEP:.*]]: tensor<i64>)
// CHECK: %[[P1:.*]], %[[M1:.*]], %[[V1:.*]] = moe.adamw %[[P]], %[[G]], %[[M]], %[[V]], %[[LR]], %[[NORM]], %[[STEP]] beta1 = 9.000000e-01 beta2 = 0.94999999999999996 eps = 1.000000e-08 weight_decay = 1.000000e-01 max_grad_norm = 1.000000e+00 : tensor<6x8xf32>, tensor<f32>, tensor<i64>
// CHECK: return %[[P1]], %[[M1]], %[[V1]] : tensor<6x8xf32>, tensor<6x8xf32>, tensor<6x8xf32>
func.func @adamw(%p: tensor<6x8xf32>, %g: tensor<6x8xf32>, %m: tensor<6x8xf32>, %v: tensor<6x8xf32>,
                 %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>)
    -> (tensor<6x8xf32>, tensor<6x8xf32>, tensor<6x8xf32>) {
  %p1, %m1, %v1 = moe.adamw %p, %g, %m, %v, %lr, %norm, %step beta1 = 0.9
      beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.1 max_grad_norm = 1.0
      : tensor<6x8xf32>, tensor<f32>, tensor<i64>
  return %p1, %m1, %v1 : tensor<6x8xf32>, tensor<6x8xf32>, tensor<6x8xf32>
}

// The bounds: beta1 = beta2 = 0, no weight decay, no clipping
// (max_grad_norm = 0), with f64 tensors.
// CHECK-LABEL: func.func @adamw_bounds
// CHECK-SAME: (%[[P:.*]]: tensor<8xf64>, %[[G:.*]]: tensor<8xf64>, %[[M:.*]]: tensor<8xf64>, %[[V:.*]]: tensor<8xf64>, %[[LR:.*]]: tensor<f64>, %[[NORM:.*]]: tensor<f64>, %[[STEP:.*]]: tensor<i64>)
// CHECK: %[[P1:.*]], %[[M1:.*]], %[[V1:.*]] = moe.adamw %[[P]], %[[G]], %[[M]], %[[V]], %[[LR]], %[[NORM]], %[[STEP]] beta1 = 0.000000e+00 beta2 = 0.000000e+00 eps = 1.000000e-08 weight_decay = 0.000000e+00 max_grad_norm = 0.000000e+00 : tensor<8xf64>, tensor<f64>, tensor<i64>
// CHECK: return %[[P1]], %[[M1]], %[[V1]] : tensor<8xf64>, tensor<8xf64>, tensor<8xf64>
func.func @adamw_bounds(%p: tensor<8xf64>, %g: tensor<8xf64>, %m: tensor<8xf64>, %v: tensor<8xf64>,
                        %lr: tensor<f64>, %norm: tensor<f64>, %step: tensor<i64>)
    -> (tensor<8xf64>, tensor<8xf64>, tensor<8xf64>) {
  %p1, %m1, %v1 = moe.adamw %p, %g, %m, %v, %lr, %norm, %step beta1 = 0.0
      beta2 = 0.0 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 0.0
      : tensor<8xf64>, tensor<f64>, tensor<i64>
  return %p1, %m1, %v1 : tensor<8xf64>, tensor<8xf64>, tensor<8xf64>
}
