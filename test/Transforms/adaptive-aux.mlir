// RUN: moe-opt %s --moe-autodiff --moe-adaptive-aux="xi=0.5 alpha-max=0.02 beta=0.9 initial-alpha=0.003" | FileCheck %s
// RUN: moe-opt %s --moe-autodiff --moe-adaptive-aux | FileCheck %s --check-prefix=DEFAULTS
// RUN: moe-opt %s --moe-autodiff --moe-adaptive-aux="initial-alpha=0" | FileCheck %s --check-prefix=ZERO
// RUN: not moe-opt %s --moe-adaptive-aux 2>&1 | FileCheck %s --check-prefix=NO-STEP
// RUN: not moe-opt %s --moe-autodiff --moe-adaptive-aux="beta=1.5" 2>&1 | FileCheck %s --check-prefix=BAD-BETA
// RUN: not moe-opt %s --moe-autodiff --moe-adaptive-aux="initial-alpha=nan" 2>&1 | FileCheck %s --check-prefix=BAD-ALPHA
// RUN: not moe-opt %s --moe-autodiff --moe-adaptive-aux="initial-alpha=1e39" 2>&1 | FileCheck %s --check-prefix=ALPHA-RANGE
// RUN: not moe-opt %s --moe-autodiff --moe-adaptive-aux="xi=inf" 2>&1 | FileCheck %s --check-prefix=BAD-XI
// RUN: not moe-opt %s --moe-autodiff --moe-adaptive-aux --moe-adaptive-aux 2>&1 | FileCheck %s --check-prefix=TWICE
// RUN: not moe-opt %s --moe-autodiff --moe-optimizer --moe-accumulate-gradients=micro-batches=2 --moe-adaptive-aux 2>&1 | FileCheck %s --check-prefix=AFTER-ACCUMULATE

// One MoE layer whose aux loss is scaled by a state global: the pass makes
// that global follow the layer's drop rate after every step.

ml_program.global private mutable @w_router : tensor<4x8xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
ml_program.global private mutable @layer.aux_loss_coeff : tensor<f32> {moe.config_constant, moe.init = #moe.init<constant, 0.01>}

func.func @forward(%x: tensor<16x8xf32>, %targets: tensor<16xi32>) -> tensor<f32> {
  %w = ml_program.global_load @w_router : tensor<4x8xf32>
  %z = moe.router %x, %w : tensor<16x8xf32>, tensor<4x8xf32> -> tensor<16x4xf32>
  %p, %wts, %i = moe.gate %z top_k = 2 renormalize : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  %buf, %slots, %dropped = moe.dispatch %x, %i capacity_factor = 1.0 : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x8x8xf32>, tensor<16x2xi32>, tensor<i64>
  %y = moe.combine %buf, %wts, %i, %slots : tensor<4x8x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x2xi32> -> tensor<16x8xf32>
  %aux = moe.aux_loss skywork %p, %i : tensor<16x4xf32>, tensor<16x2xi32> -> tensor<f32>
  %coeff = ml_program.global_load @layer.aux_loss_coeff : tensor<f32>
  %scaled = moe.mul %coeff, %aux : tensor<f32>
  %ce = moe.cross_entropy %y, %targets : tensor<16x8xf32>, tensor<16xi32> -> tensor<f32>
  %loss = moe.add %ce, %scaled : tensor<f32>
  return %loss : tensor<f32>
}

// The coefficient starts at initial-alpha, training state (checkpointed),
// no longer the config's constant (the attribute goes).
// CHECK: ml_program.global private mutable @layer.aux_loss_coeff : tensor<f32> {moe.init = #moe.init<constant, 3.000000e-03>}
// initial-alpha=0 is a start like any other (only a negative one keeps the
// model's 0.01): the coefficient starts from no aux loss at all.
// ZERO: ml_program.global private mutable @layer.aux_loss_coeff : tensor<f32> {moe.init = #moe.init<constant, 0.000000e+00>}
// CHECK-LABEL: func.func @train_step(
// CHECK: %{{.*}}, %{{.*}}, %[[DROPPED:.*]] = moe.dispatch
// CHECK: %[[ALPHA:.*]] = ml_program.global_load @layer.aux_loss_coeff
// CHECK: moe.mul %[[ALPHA]]
// The step's loss used alpha_i; alpha_{i+1} comes from this step's drops
// over its 16 x 2 assignments.
// CHECK: %[[NEXT:.*]] = moe.adaptive_aux_coeff %[[ALPHA]], %[[DROPPED]] xi = 5.000000e-01 alpha_max = 2.000000e-02 beta = 9.000000e-01 assignments = 32 : tensor<f32>, tensor<i64>
// CHECK-NEXT: ml_program.global_store @layer.aux_loss_coeff = %[[NEXT]] : tensor<f32>
// CHECK: return

// The paper's values by default; the model's initial coefficient is kept.
// DEFAULTS: @layer.aux_loss_coeff : tensor<f32> {moe.init = #moe.init<constant, 1.000000e-02>}
// DEFAULTS: moe.adaptive_aux_coeff %{{.*}}, %{{.*}} xi = 2.000000e-01 alpha_max = 1.000000e-02 beta = 0.98999999999999999 assignments = 32

// NO-STEP: error: moe-adaptive-aux: no function @train_step (run moe-autodiff first)
// BAD-BETA: error: moe-adaptive-aux: need finite xi >= 0 and alpha-max >= 0, 0 <= beta <= 1 and a finite initial-alpha (negative: the model's), got xi=2.000000e-01 alpha-max=1.000000e-02 beta=1.500000e+00 initial-alpha=-1.000000e+00
// BAD-ALPHA: error: moe-adaptive-aux: need finite {{.*}} initial-alpha=nan
// ALPHA-RANGE: error: moe-adaptive-aux: initial-alpha 1.000000e+39 is beyond the range of the coefficient's 'tensor<f32>'
// BAD-XI: error: moe-adaptive-aux: need finite {{.*}} got xi=INF
// Twice, each step would update the coefficients twice.
// TWICE: error: moe-adaptive-aux: @train_step already updates its coefficients (was the pass applied twice?)
// The micro-steps' coefficient updates are accumulate-gradients' rewrite of
// this pass's: it comes first.
// AFTER-ACCUMULATE: error: moe-adaptive-aux: runs before moe-accumulate-gradients, which 'moe.training' records as applied
