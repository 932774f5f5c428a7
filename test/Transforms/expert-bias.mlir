// RUN: moe-opt %s --moe-autodiff --moe-expert-bias="rate=0.25" | FileCheck %s
// RUN: moe-opt %s --moe-autodiff --moe-expert-bias | FileCheck %s --check-prefix=DEFAULT
// RUN: not moe-opt %s --moe-expert-bias 2>&1 | FileCheck %s --check-prefix=NO-STEP
// RUN: not moe-opt %s --moe-autodiff --moe-expert-bias="rate=-1" 2>&1 | FileCheck %s --check-prefix=BAD-RATE
// RUN: not moe-opt %s --moe-autodiff --moe-expert-bias="rate=inf" 2>&1 | FileCheck %s --check-prefix=INF-RATE
// RUN: not moe-opt %s --moe-autodiff --moe-expert-bias --moe-expert-bias 2>&1 | FileCheck %s --check-prefix=TWICE
// RUN: not moe-opt %s --moe-autodiff --moe-optimizer --moe-accumulate-gradients=micro-batches=2 --moe-expert-bias 2>&1 | FileCheck %s --check-prefix=AFTER-ACCUMULATE
// RUN: moe-opt %s --moe-autodiff --moe-optimizer --moe-expert-bias --moe-accumulate-gradients=micro-batches=2 | FileCheck %s --check-prefix=ACCUMULATE
// RUN: moe-opt %s --moe-autodiff=recompute=true --moe-expert-bias | FileCheck %s --check-prefix=RECOMPUTE

// One MoE layer (layer 0, which recompute repeats) whose gate chooses with
// a bias held in a state global (no moe.trainable): the pass moves it after
// every step from the step's loads, and autodiff gives it no gradient.

ml_program.global private mutable @w_router : tensor<4x8xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
ml_program.global private mutable @layer.gate.e_score_correction_bias : tensor<4xf32> {moe.init = #moe.init<constant, 0.0>}

func.func @forward(%x: tensor<16x8xf32>, %targets: tensor<16xi32>) -> tensor<f32> {
  %w = ml_program.global_load @w_router : tensor<4x8xf32>
  %z = moe.router %x, %w {moe.layer = 0 : i64} : tensor<16x8xf32>, tensor<4x8xf32> -> tensor<16x4xf32>
  %b = ml_program.global_load @layer.gate.e_score_correction_bias : tensor<4xf32>
  %p, %wts, %i = moe.gate %z bias %b top_k = 2 scoring = sigmoid renormalize {moe.layer = 0 : i64} : tensor<16x4xf32>, tensor<4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  %buf, %slots, %dropped = moe.dispatch %x, %i capacity_factor = 1.0 {moe.layer = 0 : i64} : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x8x8xf32>, tensor<16x2xi32>, tensor<i64>
  %y = moe.combine %buf, %wts, %i, %slots {moe.layer = 0 : i64} : tensor<4x8x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x2xi32> -> tensor<16x8xf32>
  %ce = moe.cross_entropy %y, %targets : tensor<16x8xf32>, tensor<16xi32> -> tensor<f32>
  return %ce : tensor<f32>
}

// CHECK-LABEL: func.func @train_step(
// CHECK: %[[BIAS:.*]] = ml_program.global_load @layer.gate.e_score_correction_bias
// CHECK: %{{.*}}, %{{.*}}, %[[I:.*]] = moe.gate %{{.*}} bias %[[BIAS]] top_k = 2 scoring = sigmoid renormalize
// CHECK: moe.gate_grad %{{.*}}, %[[I]], %{{.*}}, %{{.*}} scoring = sigmoid renormalize
// CHECK-NOT: e_score_correction_bias.grad
// The step's choices, before the capacity's drops, move the bias that made
// them.
// CHECK: %[[LOAD:.*]] = moe.expert_load %[[I]] : tensor<16x2xi32> -> tensor<4xi64>
// CHECK-NEXT: %[[NEXT:.*]] = moe.expert_bias_update %[[BIAS]], %[[LOAD]] rate = 2.500000e-01 : tensor<4xf32>, tensor<4xi64>
// CHECK-NEXT: ml_program.global_store @layer.gate.e_score_correction_bias = %[[NEXT]] : tensor<4xf32>
// CHECK: return

// DEFAULT: moe.expert_bias_update %{{.*}}, %{{.*}} rate = 1.000000e-03

// The backward's recomputed gate chooses alike: the forward's moves the
// bias, once.
// RECOMPUTE-LABEL: func.func @train_step(
// RECOMPUTE: %{{.*}}, %{{.*}}, %[[I:.*]] = moe.gate
// RECOMPUTE: moe.gate
// RECOMPUTE: %[[LOAD:.*]] = moe.expert_load %[[I]]
// RECOMPUTE-NOT: moe.expert_load
// RECOMPUTE: return

// NO-STEP: error: moe-expert-bias: no function @train_step (run moe-autodiff first)
// BAD-RATE: error: moe-expert-bias: need a finite rate >= 0, got -1.000000e+00
// INF-RATE: error: moe-expert-bias: need a finite rate >= 0, got INF
// TWICE: error: moe-expert-bias: @train_step already updates its expert biases (was the pass applied twice?)
// AFTER-ACCUMULATE: error: moe-expert-bias: runs before moe-accumulate-gradients, which 'moe.training' records as applied

// With 2 micro-batches, the micro step adds its loads to the bias's
// accumulator, and the step moves the bias by the sum, then zeroes it.
// ACCUMULATE: ml_program.global private mutable @layer.gate.e_score_correction_bias.load_accum : tensor<4xi64> {moe.init = #moe.init<constant, 0.000000e+00>, moe.transient}
// ACCUMULATE-LABEL: func.func @train_micro_step(
// ACCUMULATE-NOT: global_store @layer.gate.e_score_correction_bias =
// ACCUMULATE: %[[LOAD:.*]] = moe.expert_load
// ACCUMULATE: %[[BEFORE:.*]] = ml_program.global_load @layer.gate.e_score_correction_bias.load_accum
// ACCUMULATE: %[[SUM:.*]] = arith.addi %[[BEFORE]], %[[LOAD]] : tensor<4xi64>
// ACCUMULATE: ml_program.global_store @layer.gate.e_score_correction_bias.load_accum = %[[SUM]]
// ACCUMULATE-NOT: global_store @layer.gate.e_score_correction_bias =
// ACCUMULATE-LABEL: func.func @train_step(
// ACCUMULATE: %[[LOAD2:.*]] = moe.expert_load
// ACCUMULATE: %[[BEFORE2:.*]] = ml_program.global_load @layer.gate.e_score_correction_bias.load_accum
// ACCUMULATE: %[[SUM2:.*]] = arith.addi %[[BEFORE2]], %[[LOAD2]] : tensor<4xi64>
// ACCUMULATE: %[[NEXT2:.*]] = moe.expert_bias_update %{{.*}}, %[[SUM2]]
// ACCUMULATE: ml_program.global_store @layer.gate.e_score_correction_bias = %[[NEXT2]]
// ACCUMULATE: ml_program.global_store @layer.gate.e_score_correction_bias.load_accum = %{{.*}} : tensor<4xi64>
