// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// Round trip of every moe op, of the #moe.init attribute and of the moe.*
// discardable attributes. The first RUN line checks custom form -> custom form
// -> custom form; the second checks that the generic form re-parses to the
// same custom form.

//===----------------------------------------------------------------------===//
// #moe.init, moe.trainable on ml_program.global
//===----------------------------------------------------------------------===//

// Parameters: no initial value, an initializer and moe.trainable.
// CHECK-LABEL: ml_program.global private mutable @model.embed_tokens.weight : tensor<16x8xf32>
// CHECK-SAME: {moe.init = #moe.init<normal, 2.000000e-02>, moe.trainable}
ml_program.global private mutable @"model.embed_tokens.weight" : tensor<16x8xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}

// CHECK-LABEL: ml_program.global private mutable @model.norm.weight : tensor<8xf32>
// CHECK-SAME: {moe.init = #moe.init<constant, 1.000000e+00>, moe.trainable}
ml_program.global private mutable @"model.norm.weight" : tensor<8xf32> {moe.init = #moe.init<constant, 1.0>, moe.trainable}

// A zero std is allowed (only a negative one is rejected).
// CHECK-LABEL: ml_program.global private mutable @model.layers.0.block_sparse_moe.experts.w1 : tensor<4x12x8xf32>
// CHECK-SAME: {moe.init = #moe.init<normal, 0.000000e+00>, moe.trainable}
ml_program.global private mutable @"model.layers.0.block_sparse_moe.experts.w1" : tensor<4x12x8xf32> {moe.init = #moe.init<normal, 0.0>, moe.trainable}

// Training state: an initializer and no moe.trainable.
// CHECK-LABEL: ml_program.global private mutable @model.layers.0.block_sparse_moe.aux_loss_coeff : tensor<f32>
// CHECK-SAME: {moe.init = #moe.init<constant, 1.000000e-02>}{{$}}
ml_program.global private mutable @"model.layers.0.block_sparse_moe.aux_loss_coeff" : tensor<f32> {moe.init = #moe.init<constant, 1.0e-2>}

// A global with an initial value and an f64 type; a constant may be negative.
// CHECK-LABEL: ml_program.global private mutable @state(dense<1.000000e-02> : tensor<f64>) : tensor<f64>
// CHECK-SAME: {moe.init = #moe.init<constant, -5.000000e-01>}{{$}}
ml_program.global private mutable @state(dense<1.0e-2> : tensor<f64>) : tensor<f64> {moe.init = #moe.init<constant, -0.5>}

//===----------------------------------------------------------------------===//
// moe.input / moe.output on function arguments and results
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @io
// CHECK-SAME: (%[[IDS:.*]]: tensor<2x3xi32> {moe.input = "input_ids"}, %[[LABELS:.*]]: tensor<2x3xi32> {moe.input = "labels"})
// CHECK-SAME: -> (tensor<f32> {moe.output = "loss"}, tensor<2x3xi32>)
// CHECK: %[[CST:.*]] = arith.constant dense<0.000000e+00> : tensor<f32>
// CHECK: return %[[CST]], %[[LABELS]] : tensor<f32>, tensor<2x3xi32>
func.func @io(%ids: tensor<2x3xi32> {moe.input = "input_ids"},
              %labels: tensor<2x3xi32> {moe.input = "labels"})
    -> (tensor<f32> {moe.output = "loss"}, tensor<2x3xi32>) {
  %l = arith.constant dense<0.0> : tensor<f32>
  return %l, %labels : tensor<f32>, tensor<2x3xi32>
}

//===----------------------------------------------------------------------===//
// Transformer ops
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @embedding
// CHECK-SAME: (%[[TABLE:.*]]: tensor<16x8xf32>, %[[IDS:.*]]: tensor<2x3xi32>)
// CHECK: %[[H:.*]] = moe.embedding %[[TABLE]][%[[IDS]]] : tensor<16x8xf32>, tensor<2x3xi32> -> tensor<2x3x8xf32>
// CHECK: return %[[H]] : tensor<2x3x8xf32>
func.func @embedding(%table: tensor<16x8xf32>, %ids: tensor<2x3xi32>) -> tensor<2x3x8xf32> {
  %h = moe.embedding %table[%ids] : tensor<16x8xf32>, tensor<2x3xi32> -> tensor<2x3x8xf32>
  return %h : tensor<2x3x8xf32>
}

// CHECK-LABEL: func.func @embedding_padding
// CHECK: moe.embedding %{{.*}}[%{{.*}}] padding_id = 15 : tensor<16x8xf32>, tensor<2x3xi32> -> tensor<2x3x8xf32>
func.func @embedding_padding(%table: tensor<16x8xf32>, %ids: tensor<2x3xi32>) -> tensor<2x3x8xf32> {
  %h = moe.embedding %table[%ids] padding_id = 15 : tensor<16x8xf32>, tensor<2x3xi32> -> tensor<2x3x8xf32>
  return %h : tensor<2x3x8xf32>
}

// CHECK-LABEL: func.func @rms_norm
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x8xf32>, %[[W:.*]]: tensor<8xf32>)
// CHECK: %[[Y:.*]] = moe.rms_norm %[[X]], %[[W]] eps = 1.000000e-05 : tensor<2x3x8xf32>, tensor<8xf32>
// CHECK: return %[[Y]] : tensor<2x3x8xf32>
func.func @rms_norm(%x: tensor<2x3x8xf32>, %w: tensor<8xf32>) -> tensor<2x3x8xf32> {
  %y = moe.rms_norm %x, %w eps = 1.0e-05 : tensor<2x3x8xf32>, tensor<8xf32>
  return %y : tensor<2x3x8xf32>
}

// f64 tensors are accepted too; 1e-6 has no short exact %e form, so it is
// printed with all its digits.
// CHECK-LABEL: func.func @rms_norm_f64
// CHECK-SAME: (%[[X:.*]]: tensor<8xf64>, %[[W:.*]]: tensor<8xf64>)
// CHECK: %[[Y:.*]] = moe.rms_norm %[[X]], %[[W]] eps = 9.9999999999999995E-7 : tensor<8xf64>, tensor<8xf64>
// CHECK: return %[[Y]] : tensor<8xf64>
func.func @rms_norm_f64(%x: tensor<8xf64>, %w: tensor<8xf64>) -> tensor<8xf64> {
  %y = moe.rms_norm %x, %w eps = 1.000000e-06 : tensor<8xf64>, tensor<8xf64>
  return %y : tensor<8xf64>
}

// A result narrowed to bf16 (moe-narrow-results) prints after an arrow.
// CHECK-LABEL: func.func @rms_norm_narrowed
// CHECK: moe.rms_norm %{{.*}}, %{{.*}} eps = 1.000000e-05 : tensor<2x8xf32> -> tensor<2x8xbf16>, tensor<8xf32>
func.func @rms_norm_narrowed(%x: tensor<2x8xf32>, %w: tensor<8xf32>) -> tensor<2x8xbf16> {
  %y = moe.rms_norm %x, %w eps = 1.0e-05 : tensor<2x8xf32> -> tensor<2x8xbf16>, tensor<8xf32>
  return %y : tensor<2x8xbf16>
}

// CHECK-LABEL: func.func @linear
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x8xf32>, %[[W:.*]]: tensor<6x8xf32>)
// CHECK: %[[Y:.*]] = moe.linear %[[X]], %[[W]] : tensor<2x3x8xf32>, tensor<6x8xf32> -> tensor<2x3x6xf32>
// CHECK: return %[[Y]] : tensor<2x3x6xf32>
func.func @linear(%x: tensor<2x3x8xf32>, %w: tensor<6x8xf32>) -> tensor<2x3x6xf32> {
  %y = moe.linear %x, %w : tensor<2x3x8xf32>, tensor<6x8xf32> -> tensor<2x3x6xf32>
  return %y : tensor<2x3x6xf32>
}

// CHECK-LABEL: func.func @linear_bias
// CHECK-SAME: (%[[X:.*]]: tensor<4x8xf32>, %[[W:.*]]: tensor<2x8xf32>, %[[B:.*]]: tensor<2xf32>)
// CHECK: %[[Y:.*]] = moe.linear %[[X]], %[[W]] bias %[[B]] : tensor<4x8xf32>, tensor<2x8xf32>, tensor<2xf32> -> tensor<4x2xf32>
// CHECK: return %[[Y]] : tensor<4x2xf32>
func.func @linear_bias(%x: tensor<4x8xf32>, %w: tensor<2x8xf32>, %b: tensor<2xf32>) -> tensor<4x2xf32> {
  %y = moe.linear %x, %w bias %b : tensor<4x8xf32>, tensor<2x8xf32>, tensor<2xf32> -> tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}

// CHECK-LABEL: func.func @rope
// CHECK-SAME: (%[[Q:.*]]: tensor<2x3x4x6xf32>)
// CHECK: %[[Y:.*]] = moe.rope %[[Q]] theta = 1.000000e+04 : tensor<2x3x4x6xf32>
// CHECK: return %[[Y]] : tensor<2x3x4x6xf32>
func.func @rope(%q: tensor<2x3x4x6xf32>) -> tensor<2x3x4x6xf32> {
  %y = moe.rope %q theta = 1.0e+04 : tensor<2x3x4x6xf32>
  return %y : tensor<2x3x4x6xf32>
}

// GLM's partial rotary embedding: the first rotary_dim of each head rotate.
// CHECK-LABEL: func.func @rope_partial
// CHECK: moe.rope %{{.*}} theta = 1.000000e+04 rotary_dim = 4 inverse : tensor<2x3x4x6xf32>
func.func @rope_partial(%q: tensor<2x3x4x6xf32>) -> tensor<2x3x4x6xf32> {
  %y = moe.rope %q theta = 1.0e+04 rotary_dim = 4 inverse : tensor<2x3x4x6xf32>
  return %y : tensor<2x3x4x6xf32>
}

// A narrowed result (moe-narrow-results) prints its type after an arrow.
// Interleaved pairs (ERNIE 4.5's), with a partial rotation and the inverse.
// CHECK-LABEL: func.func @rope_interleaved
// CHECK: moe.rope %{{.*}} theta = 1.000000e+04 rotary_dim = 4 interleaved inverse : tensor<2x3x4x6xf32>
func.func @rope_interleaved(%q: tensor<2x3x4x6xf32>) -> tensor<2x3x4x6xf32> {
  %y = moe.rope %q theta = 1.0e+04 rotary_dim = 4 interleaved inverse : tensor<2x3x4x6xf32>
  return %y : tensor<2x3x4x6xf32>
}

// CHECK-LABEL: func.func @rope_narrowed
// CHECK: moe.rope %{{.*}} theta = 1.000000e+04 inverse : tensor<2x3x4x6xf32> -> tensor<2x3x4x6xbf16>
func.func @rope_narrowed(%q: tensor<2x3x4x6xf32>) -> tensor<2x3x4x6xbf16> {
  %y = moe.rope %q theta = 1.0e+04 inverse : tensor<2x3x4x6xf32> -> tensor<2x3x4x6xbf16>
  return %y : tensor<2x3x4x6xbf16>
}

// Grouped-query attention: 4 query heads read 2 key/value heads.
// CHECK-LABEL: func.func @attention
// CHECK-SAME: (%[[Q:.*]]: tensor<2x3x4x6xf32>, %[[K:.*]]: tensor<2x3x2x6xf32>, %[[V:.*]]: tensor<2x3x2x6xf32>)
// CHECK: %[[O:.*]], %[[LSE:.*]] = moe.attention %[[Q]], %[[K]], %[[V]] : tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>
// CHECK-NOT: causal
// CHECK: return %[[O]] : tensor<2x3x4x6xf32>
func.func @attention(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x2x6xf32>, %v: tensor<2x3x2x6xf32>) -> tensor<2x3x4x6xf32> {
  %o, %lse = moe.attention %q, %k, %v : tensor<2x3x4x6xf32>, tensor<2x3x2x6xf32>
  return %o : tensor<2x3x4x6xf32>
}

// CHECK-LABEL: func.func @attention_causal
// CHECK-SAME: (%[[Q:.*]]: tensor<2x3x4x6xf32>, %[[K:.*]]: tensor<2x3x4x6xf32>, %[[V:.*]]: tensor<2x3x4x6xf32>)
// CHECK: %[[O:.*]], %{{.*}} = moe.attention %[[Q]], %[[K]], %[[V]] causal : tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>
// CHECK: return %[[O]] : tensor<2x3x4x6xf32>
func.func @attention_causal(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x4x6xf32>, %v: tensor<2x3x4x6xf32>) -> tensor<2x3x4x6xf32> {
  %o, %lse = moe.attention %q, %k, %v causal : tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>
  return %o : tensor<2x3x4x6xf32>
}

// Causal within a sliding window of 2 positions.
// CHECK-LABEL: func.func @attention_window
// CHECK: moe.attention %{{.*}}, %{{.*}}, %{{.*}} causal window 2 : tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>
func.func @attention_window(%q: tensor<2x3x4x6xf32>, %k: tensor<2x3x4x6xf32>, %v: tensor<2x3x4x6xf32>) -> tensor<2x3x4x6xf32> {
  %o, %lse = moe.attention %q, %k, %v causal window 2 : tensor<2x3x4x6xf32>, tensor<2x3x4x6xf32>
  return %o : tensor<2x3x4x6xf32>
}

// Attention sinks: a logit a query head; f32 beside bf16 operands.
// CHECK-LABEL: func.func @attention_sinks
// CHECK-SAME: (%[[Q:.*]]: tensor<2x3x4x16xbf16>, %[[K:.*]]: tensor<2x3x2x16xbf16>, %[[V:.*]]: tensor<2x3x2x16xbf16>, %[[S:.*]]: tensor<4xf32>)
// CHECK: moe.attention %[[Q]], %[[K]], %[[V]] sinks(%[[S]] : tensor<4xf32>) causal window 2 : tensor<2x3x4x16xbf16>, tensor<2x3x2x16xbf16>
func.func @attention_sinks(%q: tensor<2x3x4x16xbf16>, %k: tensor<2x3x2x16xbf16>, %v: tensor<2x3x2x16xbf16>, %s: tensor<4xf32>) -> tensor<2x3x4x16xf32> {
  %o, %lse = moe.attention %q, %k, %v sinks(%s : tensor<4xf32>) causal window 2 : tensor<2x3x4x16xbf16>, tensor<2x3x2x16xbf16>
  return %o : tensor<2x3x4x16xf32>
}

// Mixed precision: bf16 operands, f32 result.
// CHECK-LABEL: func.func @attention_bf16
// CHECK: moe.attention %{{.*}}, %{{.*}}, %{{.*}} causal : tensor<2x3x4x16xbf16>, tensor<2x3x2x16xbf16>
// CHECK: return %{{.*}} : tensor<2x3x4x16xf32>
func.func @attention_bf16(%q: tensor<2x3x4x16xbf16>, %k: tensor<2x3x2x16xbf16>, %v: tensor<2x3x2x16xbf16>) -> tensor<2x3x4x16xf32> {
  %o, %lse = moe.attention %q, %k, %v causal : tensor<2x3x4x16xbf16>, tensor<2x3x2x16xbf16>
  return %o : tensor<2x3x4x16xf32>
}

// CHECK-LABEL: func.func @elementwise
// CHECK-SAME: (%[[A:.*]]: tensor<2x3x10xf32>, %[[B:.*]]: tensor<2x3x10xf32>)
// CHECK: %[[S:.*]] = moe.swiglu %[[A]], %[[B]] : tensor<2x3x10xf32>
// CHECK: %[[SUM:.*]] = moe.add %[[S]], %[[A]] : tensor<2x3x10xf32>
// CHECK: %[[PROD:.*]] = moe.mul %[[SUM]], %[[B]] : tensor<2x3x10xf32>
// CHECK: %[[SCALED:.*]] = moe.scale %[[PROD]] by 2.500000e-01 : tensor<2x3x10xf32>
// CHECK: return %[[SCALED]] : tensor<2x3x10xf32>
func.func @elementwise(%a: tensor<2x3x10xf32>, %b: tensor<2x3x10xf32>) -> tensor<2x3x10xf32> {
  %s = moe.swiglu %a, %b : tensor<2x3x10xf32>
  %sum = moe.add %s, %a : tensor<2x3x10xf32>
  %prod = moe.mul %sum, %b : tensor<2x3x10xf32>
  %scaled = moe.scale %prod by 0.25 : tensor<2x3x10xf32>
  return %scaled : tensor<2x3x10xf32>
}

// CHECK-LABEL: func.func @last_dim_layout
// CHECK-SAME: (%[[Q:.*]]: tensor<2x3x4x10xf32>, %[[PE:.*]]: tensor<2x3x1x4xf32>)
// CHECK: %[[NOPE:.*]] = moe.slice %[[Q]] from 4 : tensor<2x3x4x10xf32> -> tensor<2x3x4x6xf32>
// CHECK: %[[K:.*]] = moe.concat %[[NOPE]], %[[PE]] : tensor<2x3x4x6xf32>, tensor<2x3x1x4xf32> -> tensor<2x3x4x10xf32>
// CHECK: %[[V:.*]] = moe.pad %[[NOPE]] at 2 : tensor<2x3x4x6xf32> -> tensor<2x3x4x10xf32>
// CHECK: return %[[K]], %[[V]]
func.func @last_dim_layout(%q: tensor<2x3x4x10xf32>, %pe: tensor<2x3x1x4xf32>) -> (tensor<2x3x4x10xf32>, tensor<2x3x4x10xf32>) {
  %nope = moe.slice %q from 4 : tensor<2x3x4x10xf32> -> tensor<2x3x4x6xf32>
  %k = moe.concat %nope, %pe : tensor<2x3x4x6xf32>, tensor<2x3x1x4xf32> -> tensor<2x3x4x10xf32>
  %v = moe.pad %nope at 2 : tensor<2x3x4x6xf32> -> tensor<2x3x4x10xf32>
  return %k, %v : tensor<2x3x4x10xf32>, tensor<2x3x4x10xf32>
}

// CHECK-LABEL: func.func @sigmoid_scale
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x10xf32>, %[[G:.*]]: tensor<2x3x1xf32>)
// CHECK: %[[S:.*]] = moe.sigmoid_scale %[[X]], %[[G]] : tensor<2x3x10xf32>, tensor<2x3x1xf32>
// CHECK: return %[[S]] : tensor<2x3x10xf32>
func.func @sigmoid_scale(%x: tensor<2x3x10xf32>, %g: tensor<2x3x1xf32>) -> tensor<2x3x10xf32> {
  %s = moe.sigmoid_scale %x, %g : tensor<2x3x10xf32>, tensor<2x3x1xf32>
  return %s : tensor<2x3x10xf32>
}

// CHECK-LABEL: func.func @cross_entropy
// CHECK-SAME: (%[[LOGITS:.*]]: tensor<2x3x16xf32>, %[[TARGETS:.*]]: tensor<2x3xi32>)
// CHECK: %[[L:.*]] = moe.cross_entropy %[[LOGITS]], %[[TARGETS]] : tensor<2x3x16xf32>, tensor<2x3xi32> -> tensor<f32>
// CHECK: return %[[L]] : tensor<f32>
func.func @cross_entropy(%logits: tensor<2x3x16xf32>, %targets: tensor<2x3xi32>) -> tensor<f32> {
  %l = moe.cross_entropy %logits, %targets : tensor<2x3x16xf32>, tensor<2x3xi32> -> tensor<f32>
  return %l : tensor<f32>
}

// CHECK-LABEL: func.func @cross_entropy_ignoring
// CHECK: %[[N:.*]] = moe.count_targets %[[TARGETS:.*]] {ignore_index = -100 : i64} : tensor<2x3xi32> -> tensor<f32>
// CHECK: moe.cross_entropy %{{.*}}, %[[TARGETS]] divisor %[[N]] {ignore_index = -100 : i64} : tensor<2x3x16xf32>, tensor<2x3xi32>, tensor<f32> -> tensor<f32>
func.func @cross_entropy_ignoring(%logits: tensor<2x3x16xf32>, %targets: tensor<2x3xi32>) -> tensor<f32> {
  %n = moe.count_targets %targets {ignore_index = -100 : i64} : tensor<2x3xi32> -> tensor<f32>
  %l = moe.cross_entropy %logits, %targets divisor %n {ignore_index = -100 : i64} : tensor<2x3x16xf32>, tensor<2x3xi32>, tensor<f32> -> tensor<f32>
  return %l : tensor<f32>
}

//===----------------------------------------------------------------------===//
// Routing and experts
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @router
// CHECK-SAME: (%[[X:.*]]: tensor<16x8xf32>, %[[WG:.*]]: tensor<4x8xf32>)
// CHECK: %[[Z:.*]] = moe.router %[[X]], %[[WG]] : tensor<16x8xf32>, tensor<4x8xf32> -> tensor<16x4xf32>
// CHECK: return %[[Z]] : tensor<16x4xf32>
func.func @router(%x: tensor<16x8xf32>, %wg: tensor<4x8xf32>) -> tensor<16x4xf32> {
  %z = moe.router %x, %wg : tensor<16x8xf32>, tensor<4x8xf32> -> tensor<16x4xf32>
  return %z : tensor<16x4xf32>
}

// CHECK-LABEL: func.func @router_bias
// CHECK-SAME: (%[[X:.*]]: tensor<16x8xf32>, %[[WG:.*]]: tensor<4x8xf32>, %[[B:.*]]: tensor<4xf32>)
// CHECK: %[[Z:.*]] = moe.router %[[X]], %[[WG]] bias %[[B]] : tensor<16x8xf32>, tensor<4x8xf32>, tensor<4xf32> -> tensor<16x4xf32>
// CHECK: return %[[Z]] : tensor<16x4xf32>
func.func @router_bias(%x: tensor<16x8xf32>, %wg: tensor<4x8xf32>, %b: tensor<4xf32>) -> tensor<16x4xf32> {
  %z = moe.router %x, %wg bias %b : tensor<16x8xf32>, tensor<4x8xf32>, tensor<4xf32> -> tensor<16x4xf32>
  return %z : tensor<16x4xf32>
}

// Plain softmax + top-k: no norm_lambda, no renormalize, default norm_eps
// (elided when printed).
// CHECK-LABEL: func.func @gate
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf32>)
// CHECK: %[[P:.*]], %[[W:.*]], %[[I:.*]] = moe.gate %[[Z]] top_k = 2 : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
// CHECK-NOT: norm_lambda
// CHECK-NOT: renormalize
// CHECK-NOT: norm_eps
// CHECK: return %[[P]], %[[W]], %[[I]] : tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
func.func @gate(%z: tensor<16x4xf32>) -> (tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>) {
  %p, %w, %i = moe.gate %z top_k = 2 : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  return %p, %w, %i : tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
}

// Skywork-MoE gate: logit normalization and renormalized top-k weights.
// CHECK-LABEL: func.func @gate_norm_renormalize
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf32>)
// CHECK: %[[P:.*]], %[[W:.*]], %[[I:.*]] = moe.gate %[[Z]] top_k = 2 norm_lambda = 1.000000e+00 renormalize : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
// CHECK: return %[[P]], %[[W]], %[[I]] : tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
func.func @gate_norm_renormalize(%z: tensor<16x4xf32>) -> (tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>) {
  %p, %w, %i = moe.gate %z top_k = 2 norm_lambda = 1.0 renormalize : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  return %p, %w, %i : tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
}

// norm_lambda without renormalize.
// CHECK-LABEL: func.func @gate_norm
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf32>)
// CHECK: %[[P:.*]], %[[W:.*]], %[[I:.*]] = moe.gate %[[Z]] top_k = 1 norm_lambda = 2.500000e+00 : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x1xf32>, tensor<16x1xi32>
// CHECK-NOT: renormalize
// CHECK: return %[[P]], %[[W]], %[[I]] : tensor<16x4xf32>, tensor<16x1xf32>, tensor<16x1xi32>
func.func @gate_norm(%z: tensor<16x4xf32>) -> (tensor<16x4xf32>, tensor<16x1xf32>, tensor<16x1xi32>) {
  %p, %w, %i = moe.gate %z top_k = 1 norm_lambda = 2.5 : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x1xf32>, tensor<16x1xi32>
  return %p, %w, %i : tensor<16x4xf32>, tensor<16x1xf32>, tensor<16x1xi32>
}

// renormalize without norm_lambda (Mixtral), top_k = experts.
// CHECK-LABEL: func.func @gate_renormalize
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf32>)
// CHECK: %[[P:.*]], %[[W:.*]], %[[I:.*]] = moe.gate %[[Z]] top_k = 4 renormalize : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x4xf32>, tensor<16x4xi32>
// CHECK: return %[[P]], %[[W]], %[[I]] : tensor<16x4xf32>, tensor<16x4xf32>, tensor<16x4xi32>
func.func @gate_renormalize(%z: tensor<16x4xf32>) -> (tensor<16x4xf32>, tensor<16x4xf32>, tensor<16x4xi32>) {
  %p, %w, %i = moe.gate %z top_k = 4 renormalize : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x4xf32>, tensor<16x4xi32>
  return %p, %w, %i : tensor<16x4xf32>, tensor<16x4xf32>, tensor<16x4xi32>
}

// A non-default norm_eps is printed with its keyword; the default is elided
// (see @gate).
// CHECK-LABEL: func.func @gate_norm_eps
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf64>)
// CHECK: %[[P:.*]], %[[W:.*]], %[[I:.*]] = moe.gate %[[Z]] top_k = 2 norm_lambda = 1.000000e+00 norm_eps = 1.000000e-05 renormalize : tensor<16x4xf64> -> tensor<16x4xf64>, tensor<16x2xf64>, tensor<16x2xi32>
// CHECK: return %[[P]], %[[W]], %[[I]] : tensor<16x4xf64>, tensor<16x2xf64>, tensor<16x2xi32>
func.func @gate_norm_eps(%z: tensor<16x4xf64>) -> (tensor<16x4xf64>, tensor<16x2xf64>, tensor<16x2xi32>) {
  %p, %w, %i = moe.gate %z top_k = 2 norm_lambda = 1.0 norm_eps = 1.0e-05 renormalize : tensor<16x4xf64> -> tensor<16x4xf64>, tensor<16x2xf64>, tensor<16x2xi32>
  return %p, %w, %i : tensor<16x4xf64>, tensor<16x2xf64>, tensor<16x2xi32>
}

// Sigmoid scoring with a selection bias (DeepSeek-V3); the default softmax
// scoring is elided (see @gate).
// CHECK-LABEL: func.func @gate_sigmoid_bias
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf32>, %[[B:.*]]: tensor<4xf32>)
// CHECK: %[[P:.*]], %[[W:.*]], %[[I:.*]] = moe.gate %[[Z]] bias %[[B]] top_k = 2 scoring = sigmoid renormalize : tensor<16x4xf32>, tensor<4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
// CHECK: moe.gate %[[Z]] bias %[[B]] top_k = 1 scale = 2.500000e+00 : tensor<16x4xf32>, tensor<4xf32> -> tensor<16x4xf32>, tensor<16x1xf32>, tensor<16x1xi32>
func.func @gate_sigmoid_bias(%z: tensor<16x4xf32>, %b: tensor<4xf32>) -> (tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x1xi32>) {
  %p, %w, %i = moe.gate %z bias %b top_k = 2 scoring = sigmoid renormalize : tensor<16x4xf32>, tensor<4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  %p1, %w1, %i1 = moe.gate %z bias %b top_k = 1 scoring = softmax scale = 2.5 : tensor<16x4xf32>, tensor<4xf32> -> tensor<16x4xf32>, tensor<16x1xf32>, tensor<16x1xi32>
  return %p, %w, %i, %i1 : tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x1xi32>
}

// DeepSeek-V3's group-limited routing: groups and group_top_k round-trip,
// printed where not 1, and DeepSeek-V2's group scores by the best expert
// (group_score_top, printed where not 2); groups of one expert score so.
// CHECK-LABEL: func.func @gate_groups
// CHECK: moe.gate %{{.*}} bias %{{.*}} top_k = 2 groups = 4 group_top_k = 2 scoring = sigmoid : tensor<16x8xf32>, tensor<8xf32>
// CHECK: moe.gate %{{.*}} top_k = 2 groups = 2 : tensor<16x8xf32>
// CHECK: moe.gate %{{.*}} top_k = 2 groups = 8 group_top_k = 3 group_score_top = 1 : tensor<16x8xf32>
func.func @gate_groups(%z: tensor<16x8xf32>, %b: tensor<8xf32>) -> (tensor<16x2xi32>, tensor<16x2xi32>, tensor<16x2xi32>) {
  %p, %w, %i = moe.gate %z bias %b top_k = 2 groups = 4 group_top_k = 2 scoring = sigmoid : tensor<16x8xf32>, tensor<8xf32> -> tensor<16x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  %p1, %w1, %i1 = moe.gate %z top_k = 2 groups = 2 group_top_k = 1 : tensor<16x8xf32> -> tensor<16x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  %p2, %w2, %i2 = moe.gate %z top_k = 2 groups = 8 group_top_k = 3 group_score_top = 1 : tensor<16x8xf32> -> tensor<16x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  return %i, %i1, %i2 : tensor<16x2xi32>, tensor<16x2xi32>, tensor<16x2xi32>
}

// The expanded gate normalization: the default norm_eps is elided, another
// one printed; f32 and f64.
// CHECK-LABEL: func.func @gate_norm_op
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf32>, %[[Z64:.*]]: tensor<16x4xf64>)
// CHECK: %[[ZN:.*]] = moe.gate_norm %[[Z]] norm_lambda = 1.000000e+00 : tensor<16x4xf32>
// CHECK: %[[ZN64:.*]] = moe.gate_norm %[[Z64]] norm_lambda = 2.500000e+00 norm_eps = 1.000000e-05 : tensor<16x4xf64>
// CHECK: return %[[ZN]], %[[ZN64]] : tensor<16x4xf32>, tensor<16x4xf64>
func.func @gate_norm_op(%z: tensor<16x4xf32>, %z64: tensor<16x4xf64>) -> (tensor<16x4xf32>, tensor<16x4xf64>) {
  %zn = moe.gate_norm %z norm_lambda = 1.0 : tensor<16x4xf32>
  %zn64 = moe.gate_norm %z64 norm_lambda = 2.5 norm_eps = 1.0e-05 : tensor<16x4xf64>
  return %zn, %zn64 : tensor<16x4xf32>, tensor<16x4xf64>
}

// capacity = ceil(1.25 * 16 * 2 / 4) = 10.
// CHECK-LABEL: func.func @dispatch_capacity_factor
// CHECK-SAME: (%[[X:.*]]: tensor<16x8xf32>, %[[I:.*]]: tensor<16x2xi32>)
// CHECK: %[[BUF:.*]], %[[SLOTS:.*]], %[[DROPPED:.*]] = moe.dispatch %[[X]], %[[I]] capacity_factor = 1.250000e+00 : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x10x8xf32>, tensor<16x2xi32>, tensor<i64>
// CHECK: return %[[BUF]], %[[SLOTS]], %[[DROPPED]] : tensor<4x10x8xf32>, tensor<16x2xi32>, tensor<i64>
func.func @dispatch_capacity_factor(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) -> (tensor<4x10x8xf32>, tensor<16x2xi32>, tensor<i64>) {
  %buf, %slots, %dropped = moe.dispatch %x, %i capacity_factor = 1.25 : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x10x8xf32>, tensor<16x2xi32>, tensor<i64>
  return %buf, %slots, %dropped : tensor<4x10x8xf32>, tensor<16x2xi32>, tensor<i64>
}

// A bf16 buffer from f32 tokens: a narrowed result (moe-narrow-results).
// CHECK-LABEL: func.func @dispatch_narrowed
// CHECK: moe.dispatch {{.*}} -> tensor<4x10x8xbf16>, tensor<16x2xi32>, tensor<i64>
func.func @dispatch_narrowed(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) -> tensor<4x10x8xbf16> {
  %buf, %slots, %dropped = moe.dispatch %x, %i capacity_factor = 1.25 : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x10x8xbf16>, tensor<16x2xi32>, tensor<i64>
  return %buf : tensor<4x10x8xbf16>
}

// The expert-parallel halves of dispatch: route (one part, then two) and
// place, and the runs of two ranks merged into two experts' queues and split
// again.
// CHECK-LABEL: func.func @route_place_runs
// CHECK-SAME: (%[[X:.*]]: tensor<8x8xf32>, %[[I:.*]]: tensor<16x2xi32>, %[[IL:.*]]: tensor<8x2xi32>, %[[R:.*]]: tensor<4x8x8xf32>)
// CHECK: moe.route %[[I]] experts = 4 capacity_factor = 1.250000e+00 : tensor<16x2xi32> -> tensor<16x2xi32>, tensor<1x4xi64>, tensor<i64>
// CHECK: %[[SLOTS:.*]], %[[COUNTS:.*]], %{{.*}} = moe.route %[[I]] experts = 4 ranks = 2 dropless : tensor<16x2xi32> -> tensor<16x2xi32>, tensor<2x4xi64>, tensor<i64>
// CHECK: moe.place %[[X]], %[[IL]], %{{.*}} : tensor<8x8xf32>, tensor<8x2xi32> -> tensor<4x8x8xf32>
// CHECK: %[[MINE:.*]] = tensor.extract_slice %[[COUNTS]]
// CHECK: %[[Q:.*]] = moe.merge_runs %[[R]], %[[MINE]] : tensor<4x8x8xf32>, tensor<2x2xi64> -> tensor<2x16x8xf32>
// CHECK: moe.split_runs %[[Q]], %[[MINE]] : tensor<2x16x8xf32>, tensor<2x2xi64> -> tensor<4x8x8xf32>
func.func @route_place_runs(%x: tensor<8x8xf32>, %i: tensor<16x2xi32>, %il: tensor<8x2xi32>, %r: tensor<4x8x8xf32>) -> (tensor<4x8x8xf32>, tensor<4x8x8xf32>) {
  %s1, %c1, %d1 = moe.route %i experts = 4 capacity_factor = 1.25 : tensor<16x2xi32> -> tensor<16x2xi32>, tensor<1x4xi64>, tensor<i64>
  %slots, %counts, %dropped = moe.route %i experts = 4 ranks = 2 dropless : tensor<16x2xi32> -> tensor<16x2xi32>, tensor<2x4xi64>, tensor<i64>
  %mine = tensor.extract_slice %slots[0, 0] [8, 2] [1, 1] : tensor<16x2xi32> to tensor<8x2xi32>
  %runs = moe.place %x, %il, %mine : tensor<8x8xf32>, tensor<8x2xi32> -> tensor<4x8x8xf32>
  %mycounts = tensor.extract_slice %counts[0, 0] [2, 2] [1, 1] : tensor<2x4xi64> to tensor<2x2xi64>
  %queue = moe.merge_runs %r, %mycounts : tensor<4x8x8xf32>, tensor<2x2xi64> -> tensor<2x16x8xf32>
  %back = moe.split_runs %queue, %mycounts : tensor<2x16x8xf32>, tensor<2x2xi64> -> tensor<4x8x8xf32>
  return %runs, %back : tensor<4x8x8xf32>, tensor<4x8x8xf32>
}

// dropless: capacity = T = 16.
// CHECK-LABEL: func.func @dispatch_dropless
// CHECK-SAME: (%[[X:.*]]: tensor<16x8xf32>, %[[I:.*]]: tensor<16x2xi32>)
// CHECK: %[[BUF:.*]], %[[SLOTS:.*]], %[[DROPPED:.*]] = moe.dispatch %[[X]], %[[I]] dropless : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x16x8xf32>, tensor<16x2xi32>, tensor<i64>
// CHECK-NOT: capacity_factor
// CHECK: return %[[BUF]], %[[SLOTS]], %[[DROPPED]] : tensor<4x16x8xf32>, tensor<16x2xi32>, tensor<i64>
func.func @dispatch_dropless(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) -> (tensor<4x16x8xf32>, tensor<16x2xi32>, tensor<i64>) {
  %buf, %slots, %dropped = moe.dispatch %x, %i dropless : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x16x8xf32>, tensor<16x2xi32>, tensor<i64>
  return %buf, %slots, %dropped : tensor<4x16x8xf32>, tensor<16x2xi32>, tensor<i64>
}

// Drops by priority (the gate's weights); capacity = ceil(1.0 * 16 * 2 / 4)
// = 8.
// CHECK-LABEL: func.func @dispatch_priority
// CHECK-SAME: (%[[X:.*]]: tensor<16x8xf32>, %[[I:.*]]: tensor<16x2xi32>, %[[W:.*]]: tensor<16x2xf32>)
// CHECK: %[[BUF:.*]], %[[SLOTS:.*]], %[[DROPPED:.*]] = moe.dispatch %[[X]], %[[I]] priority %[[W]] capacity_factor = 1.000000e+00 : tensor<16x8xf32>, tensor<16x2xi32>, tensor<16x2xf32> -> tensor<4x8x8xf32>, tensor<16x2xi32>, tensor<i64>
// CHECK: return %[[BUF]], %[[SLOTS]], %[[DROPPED]] : tensor<4x8x8xf32>, tensor<16x2xi32>, tensor<i64>
func.func @dispatch_priority(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>, %w: tensor<16x2xf32>) -> (tensor<4x8x8xf32>, tensor<16x2xi32>, tensor<i64>) {
  %buf, %slots, %dropped = moe.dispatch %x, %i priority %w capacity_factor = 1.0 : tensor<16x8xf32>, tensor<16x2xi32>, tensor<16x2xf32> -> tensor<4x8x8xf32>, tensor<16x2xi32>, tensor<i64>
  return %buf, %slots, %dropped : tensor<4x8x8xf32>, tensor<16x2xi32>, tensor<i64>
}

// CHECK-LABEL: func.func @expert_ffn
// CHECK-SAME: (%[[BUF:.*]]: tensor<4x10x8xf32>, %[[W1:.*]]: tensor<4x12x8xf32>, %[[W3:.*]]: tensor<4x12x8xf32>, %[[W2:.*]]: tensor<4x8x12xf32>)
// CHECK: %[[Y:.*]], %{{.*}} = moe.expert_ffn %[[BUF]], %[[W1]], %[[W3]], %[[W2]] : tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32> -> tensor<4x2x10x12xf32>
// CHECK: return %[[Y]] : tensor<4x10x8xf32>
func.func @expert_ffn(%buf: tensor<4x10x8xf32>, %w1: tensor<4x12x8xf32>, %w3: tensor<4x12x8xf32>, %w2: tensor<4x8x12xf32>) -> tensor<4x10x8xf32> {
  %y, %y_proj = moe.expert_ffn %buf, %w1, %w3, %w2 : tensor<4x10x8xf32>, tensor<4x12x8xf32>, tensor<4x8x12xf32> -> tensor<4x2x10x12xf32>
  return %y : tensor<4x10x8xf32>
}

// CHECK-LABEL: func.func @combine
// CHECK-SAME: (%[[OUT:.*]]: tensor<4x10x8xf32>, %[[W:.*]]: tensor<16x2xf32>, %[[I:.*]]: tensor<16x2xi32>, %[[SLOTS:.*]]: tensor<16x2xi32>)
// CHECK: %[[Y:.*]] = moe.combine %[[OUT]], %[[W]], %[[I]], %[[SLOTS]] : tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x2xi32> -> tensor<16x8xf32>
// CHECK: return %[[Y]] : tensor<16x8xf32>
func.func @combine(%out: tensor<4x10x8xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>, %slots: tensor<16x2xi32>) -> tensor<16x8xf32> {
  %y = moe.combine %out, %w, %i, %slots : tensor<4x10x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x2xi32> -> tensor<16x8xf32>
  return %y : tensor<16x8xf32>
}

//===----------------------------------------------------------------------===//
// Auxiliary losses and their coefficients
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @aux_loss
// CHECK-SAME: (%[[P:.*]]: tensor<16x4xf32>, %[[I:.*]]: tensor<16x2xi32>)
// CHECK: %[[SKY:.*]] = moe.aux_loss skywork %[[P]], %[[I]] : tensor<16x4xf32>, tensor<16x2xi32> -> tensor<f32>
// CHECK: %[[SW:.*]] = moe.aux_loss switch %[[P]], %[[I]] : tensor<16x4xf32>, tensor<16x2xi32> -> tensor<f32>
// CHECK: return %[[SKY]], %[[SW]] : tensor<f32>, tensor<f32>
func.func @aux_loss(%p: tensor<16x4xf32>, %i: tensor<16x2xi32>) -> (tensor<f32>, tensor<f32>) {
  %sky = moe.aux_loss skywork %p, %i : tensor<16x4xf32>, tensor<16x2xi32> -> tensor<f32>
  %sw = moe.aux_loss switch %p, %i : tensor<16x4xf32>, tensor<16x2xi32> -> tensor<f32>
  return %sky, %sw : tensor<f32>, tensor<f32>
}

// CHECK-LABEL: func.func @z_loss
// CHECK-SAME: (%[[Z:.*]]: tensor<16x4xf32>, %[[Z64:.*]]: tensor<16x4xf64>)
// CHECK: %[[L:.*]] = moe.z_loss %[[Z]] : tensor<16x4xf32> -> tensor<f32>
// CHECK: %[[L64:.*]] = moe.z_loss %[[Z64]] : tensor<16x4xf64> -> tensor<f64>
// CHECK: return %[[L]], %[[L64]] : tensor<f32>, tensor<f64>
func.func @z_loss(%z: tensor<16x4xf32>, %z64: tensor<16x4xf64>) -> (tensor<f32>, tensor<f64>) {
  %l = moe.z_loss %z : tensor<16x4xf32> -> tensor<f32>
  %l64 = moe.z_loss %z64 : tensor<16x4xf64> -> tensor<f64>
  return %l, %l64 : tensor<f32>, tensor<f64>
}

// CHECK-LABEL: func.func @adaptive_aux_coeff
// CHECK-SAME: (%[[A:.*]]: tensor<f32>, %[[D:.*]]: tensor<i64>)
// CHECK: %[[A1:.*]] = moe.adaptive_aux_coeff %[[A]], %[[D]] xi = 2.000000e-01 alpha_max = 1.000000e-02 beta = 0.98999999999999999 assignments = 1024 : tensor<f32>, tensor<i64>
// CHECK: return %[[A1]] : tensor<f32>
func.func @adaptive_aux_coeff(%a: tensor<f32>, %d: tensor<i64>) -> tensor<f32> {
  %a1 = moe.adaptive_aux_coeff %a, %d xi = 2.0e-01 alpha_max = 1.0e-02
      beta = 9.9e-01 assignments = 1024 : tensor<f32>, tensor<i64>
  return %a1 : tensor<f32>
}

// The bounds of the ranges are allowed: xi = alpha_max = 0, beta = 0 and 1.
// CHECK-LABEL: func.func @adaptive_aux_coeff_bounds
// CHECK-SAME: (%[[A:.*]]: tensor<f64>, %[[D:.*]]: tensor<i64>)
// CHECK: %[[A1:.*]] = moe.adaptive_aux_coeff %[[A]], %[[D]] xi = 0.000000e+00 alpha_max = 0.000000e+00 beta = 0.000000e+00 assignments = 1 : tensor<f64>, tensor<i64>
// CHECK: %[[A2:.*]] = moe.adaptive_aux_coeff %[[A1]], %[[D]] xi = 0.000000e+00 alpha_max = 0.000000e+00 beta = 1.000000e+00 assignments = 1 : tensor<f64>, tensor<i64>
// CHECK: return %[[A2]] : tensor<f64>
func.func @adaptive_aux_coeff_bounds(%a: tensor<f64>, %d: tensor<i64>) -> tensor<f64> {
  %a1 = moe.adaptive_aux_coeff %a, %d xi = 0.0 alpha_max = 0.0 beta = 0.0 assignments = 1 : tensor<f64>, tensor<i64>
  %a2 = moe.adaptive_aux_coeff %a1, %d xi = 0.0 alpha_max = 0.0 beta = 1.0 assignments = 1 : tensor<f64>, tensor<i64>
  return %a2 : tensor<f64>
}

// CHECK-LABEL: func.func @expert_bias
// CHECK-SAME: (%[[B:.*]]: tensor<4xf32>, %[[I:.*]]: tensor<16x2xi32>)
// CHECK: %[[L:.*]] = moe.expert_load %[[I]] : tensor<16x2xi32> -> tensor<4xi64>
// CHECK: %[[B1:.*]] = moe.expert_bias_update %[[B]], %[[L]] rate = 1.000000e-03 : tensor<4xf32>, tensor<4xi64>
// CHECK: return %[[B1]] : tensor<4xf32>
func.func @expert_bias(%b: tensor<4xf32>, %i: tensor<16x2xi32>) -> tensor<4xf32> {
  %load = moe.expert_load %i : tensor<16x2xi32> -> tensor<4xi64>
  %b1 = moe.expert_bias_update %b, %load rate = 1.0e-03 : tensor<4xf32>, tensor<4xi64>
  return %b1 : tensor<4xf32>
}

//===----------------------------------------------------------------------===//
// Routing metrics
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @routing_metrics
// CHECK-SAME: (%[[P:.*]]: tensor<16x4xf32>, %[[I:.*]]: tensor<16x2xi32>, %[[SLOTS:.*]]: tensor<16x2xi32>)
// CHECK: %[[D:.*]], %[[R12:.*]], %[[R23:.*]], %[[LOAD:.*]] = moe.routing_metrics %[[P]], %[[I]], %[[SLOTS]] : tensor<16x4xf32>, tensor<16x2xi32> -> tensor<f32>, tensor<4xi64>
// CHECK: return %[[D]], %[[R12]], %[[R23]], %[[LOAD]] : tensor<f32>, tensor<f32>, tensor<f32>, tensor<4xi64>
func.func @routing_metrics(%p: tensor<16x4xf32>, %i: tensor<16x2xi32>, %slots: tensor<16x2xi32>) -> (tensor<f32>, tensor<f32>, tensor<f32>, tensor<4xi64>) {
  %d, %r12, %r23, %load = moe.routing_metrics %p, %i, %slots : tensor<16x4xf32>, tensor<16x2xi32> -> tensor<f32>, tensor<4xi64>
  return %d, %r12, %r23, %load : tensor<f32>, tensor<f32>, tensor<f32>, tensor<4xi64>
}

// CHECK-LABEL: func.func @expert_similarity
// CHECK-SAME: (%[[W1:.*]]: tensor<4x12x8xf32>, %[[W3:.*]]: tensor<4x12x8xf32>, %[[W2:.*]]: tensor<4x8x12xf32>)
// CHECK: %[[S:.*]] = moe.expert_similarity %[[W1]], %[[W3]], %[[W2]] : tensor<4x12x8xf32>, tensor<4x8x12xf32> -> tensor<f32>
// CHECK: return %[[S]] : tensor<f32>
func.func @expert_similarity(%w1: tensor<4x12x8xf32>, %w3: tensor<4x12x8xf32>, %w2: tensor<4x8x12xf32>) -> tensor<f32> {
  %s = moe.expert_similarity %w1, %w3, %w2 : tensor<4x12x8xf32>, tensor<4x8x12xf32> -> tensor<f32>
  return %s : tensor<f32>
}

// A decay is printed unless it is the default cosine; a constant rate has
// no decay to end, so its decay_steps need not exceed the warmup.
// CHECK-LABEL: func.func @lr_schedule
// CHECK: moe.lr_schedule %{{.*}} max_lr = 1.000000e-03 min_lr = 1.000000e-04 warmup_steps = 10 decay_steps = 100 : tensor<i64> -> tensor<f32>
// CHECK: moe.lr_schedule %{{.*}} decay = linear max_lr
// CHECK: moe.lr_schedule %{{.*}} decay = constant max_lr = 1.000000e-03 min_lr = 1.000000e-04 warmup_steps = 3000 decay_steps = 2000
func.func @lr_schedule(%step: tensor<i64>) -> (tensor<f32>, tensor<f32>, tensor<f32>) {
  %cosine = moe.lr_schedule %step decay = cosine max_lr = 1.0e-03 min_lr = 1.0e-04 warmup_steps = 10 decay_steps = 100 : tensor<i64> -> tensor<f32>
  %linear = moe.lr_schedule %step decay = linear max_lr = 1.0e-03 min_lr = 1.0e-04 warmup_steps = 10 decay_steps = 100 : tensor<i64> -> tensor<f32>
  %constant = moe.lr_schedule %step decay = constant max_lr = 1.0e-03 min_lr = 1.0e-04 warmup_steps = 3000 decay_steps = 2000 : tensor<i64> -> tensor<f32>
  return %cosine, %linear, %constant : tensor<f32>, tensor<f32>, tensor<f32>
}

// moe-fuse-elementwise's loop and its terminator (test/Transforms/
// fuse-elementwise.mlir builds them from chains of ops).
// CHECK-LABEL: func.func @fused_elementwise
// CHECK-SAME: (%[[A:.*]]: tensor<2x3xf32>, %[[B:.*]]: tensor<2x3xf32>)
// CHECK: %[[R:.*]] = moe.fused_elementwise %[[A]], %[[B]] : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xf32> {
// CHECK-NEXT: ^bb0(%[[X:.*]]: f32, %[[Y:.*]]: f32):
// CHECK-NEXT: %[[S:.*]] = arith.addf %[[X]], %[[Y]] : f32
// CHECK-NEXT: %[[P:.*]] = arith.mulf %[[S]], %[[X]] : f32
// CHECK-NEXT: moe.yield %[[P]] : f32
// CHECK-NEXT: }
// CHECK: return %[[R]] : tensor<2x3xf32>
func.func @fused_elementwise(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %r = moe.fused_elementwise %a, %b : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xf32> {
  ^bb0(%x: f32, %y: f32):
    %s = arith.addf %x, %y : f32
    %p = arith.mulf %s, %x : f32
    moe.yield %p : f32
  }
  return %r : tensor<2x3xf32>
}
