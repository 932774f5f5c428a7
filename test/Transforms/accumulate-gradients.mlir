// RUN: moe-opt %s --moe-autodiff --moe-adaptive-aux --moe-optimizer --moe-accumulate-gradients="micro-batches=4" | FileCheck %s
// RUN: moe-opt %s --moe-autodiff --moe-adaptive-aux --moe-optimizer --moe-accumulate-gradients="micro-batches=4" --moe-cpu-codegen | FileCheck %s --check-prefix=PLAN
// RUN: moe-opt %s --moe-autodiff --moe-optimizer --moe-accumulate-gradients="micro-batches=4" --moe-cuda-codegen | moe-translate --emit=cuda | FileCheck %s --check-prefix=CUDA
// RUN: moe-opt %s --moe-autodiff --moe-optimizer --moe-accumulate-gradients="micro-batches=1" | FileCheck %s --check-prefix=ONE
// RUN: not moe-opt %s --moe-autodiff --moe-accumulate-gradients="micro-batches=2" 2>&1 | FileCheck %s --check-prefix=NO-OPTIMIZER
// RUN: not moe-opt %s --moe-autodiff --moe-optimizer --moe-accumulate-gradients="micro-batches=0" 2>&1 | FileCheck %s --check-prefix=ZERO
// RUN: not moe-opt %s --moe-autodiff --moe-optimizer --moe-accumulate-gradients="micro-batches=2147483648" 2>&1 | FileCheck %s --check-prefix=HUGE
// RUN: not moe-opt %s --moe-autodiff --moe-optimizer --moe-accumulate-gradients="micro-batches=2" --moe-accumulate-gradients="micro-batches=2" 2>&1 | FileCheck %s --check-prefix=TWICE

// One MoE layer (adaptive-aux.mlir's): each optimizer step runs over 4
// micro-batches.

ml_program.global private mutable @w_router : tensor<4x8xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
ml_program.global private mutable @layer.aux_loss_coeff : tensor<f32> {moe.init = #moe.init<constant, 0.01>}

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

// The accumulators follow what they serve: transient, zero at first.
// CHECK: module attributes {moe.micro_batches = 4 : i64
// CHECK: @w_router : tensor<4x8xf32>
// CHECK-NEXT: @w_router.grad_accum : tensor<4x8xf32> {moe.init = #moe.init<constant, 0.000000e+00>, moe.transient}
// CHECK: @layer.aux_loss_coeff : tensor<f32>
// CHECK-NEXT: @layer.aux_loss_coeff.dropped_accum : tensor<i64> {moe.init = #moe.init<constant, 0.000000e+00>, moe.transient}

// The micro step: forward and backward, the gradient and the drops added
// to their sums; no other state changes, and only the loss is returned.
// CHECK-LABEL: func.func @train_micro_step(
// CHECK-SAME: -> (tensor<f32> {moe.output = "loss"})
// CHECK: %{{.*}}, %{{.*}}, %[[MDROPPED:.*]] = moe.dispatch
// CHECK: %[[MGRAD:.*]] = moe.linear_weight_grad
// CHECK-NEXT: %[[MACC:.*]] = ml_program.global_load @w_router.grad_accum
// CHECK-NEXT: %[[MSUM:.*]] = moe.fused_elementwise %[[MACC]], %[[MGRAD]]
// CHECK-NEXT: ^bb0(%[[X:.*]]: f32, %[[Y:.*]]: f32):
// CHECK-NEXT: %[[ADD:.*]] = arith.addf %[[X]], %[[Y]] : f32
// CHECK-NEXT: moe.yield %[[ADD]]
// CHECK: ml_program.global_store @w_router.grad_accum = %[[MSUM]]
// CHECK: %[[MD:.*]] = ml_program.global_load @layer.aux_loss_coeff.dropped_accum
// CHECK-NEXT: %[[MDSUM:.*]] = arith.addi %[[MD]], %[[MDROPPED]]
// CHECK-NEXT: ml_program.global_store @layer.aux_loss_coeff.dropped_accum = %[[MDSUM]]
// CHECK-NOT: moe.adamw
// CHECK-NOT: moe.adaptive_aux_coeff
// CHECK-NOT: global_store
// CHECK: return

// The step: its gradient joins the sum, which is divided by 4 and is what
// the norm and AdamW read; the coefficient follows the drops of all 4
// micro-batches (4 x 32 assignments); then the sums are zeroed.
// CHECK-LABEL: func.func @train_step(
// CHECK: %{{.*}}, %{{.*}}, %[[DROPPED:.*]] = moe.dispatch
// CHECK: %[[GRAD:.*]] = moe.linear_weight_grad
// CHECK-NEXT: %[[ACC:.*]] = ml_program.global_load @w_router.grad_accum
// CHECK-NEXT: %[[SUM:.*]] = moe.fused_elementwise %[[ACC]], %[[GRAD]]
// CHECK: arith.addf
// CHECK-NEXT: arith.constant 2.500000e-01 : f32
// CHECK-NEXT: arith.mulf
// CHECK: ml_program.global_store @w_router.grad_accum = %[[SUM]]
// CHECK-NEXT: %[[MEAN:.*]] = ml_program.global_load @w_router.grad_accum
// CHECK: %[[D:.*]] = ml_program.global_load @layer.aux_loss_coeff.dropped_accum
// CHECK-NEXT: %[[DSUM:.*]] = arith.addi %[[D]], %[[DROPPED]]
// CHECK-NEXT: moe.adaptive_aux_coeff %{{.*}}, %[[DSUM]] {{.*}} assignments = 128
// CHECK: moe.global_norm %[[MEAN]]
// CHECK: moe.adamw %{{.*}}, %[[MEAN]],
// CHECK: %[[LAST:.*]] = ml_program.global_load @w_router.grad_accum
// CHECK-NEXT: %[[CLEARED:.*]] = moe.fused_elementwise %[[LAST]]
// CHECK: arith.constant 0.000000e+00 : f32
// CHECK: ml_program.global_store @w_router.grad_accum = %[[CLEARED]]
// CHECK: %[[DCLEARED:.*]] = arith.constant dense<0> : tensor<i64>
// CHECK-NEXT: ml_program.global_store @layer.aux_loss_coeff.dropped_accum = %[[DCLEARED]]
// CHECK-NEXT: return

// The sums are updated in place: no arena buffer, no copy.
// PLAN-LABEL: func.func @train_micro_step(
// PLAN: moe.fused_elementwise %w_router.grad_accum, %{{.*}} {moe.arena_offsets = array<i64: -1>, moe.in_place}
// PLAN-LABEL: func.func @train_step(
// PLAN: moe.fused_elementwise %w_router.grad_accum, %{{.*}} {moe.arena_offsets = array<i64: -1>, moe.in_place}
// PLAN: moe.fused_elementwise %w_router.grad_accum_{{[0-9]+}} {moe.arena_offsets = array<i64: -1>, moe.in_place}

// An in-place CUDA kernel's input and output are one buffer: no
// __restrict__ on them.
// CUDA: __global__ void fused_v{{[0-9]+}}(const float *in0, const float *in1, float *out)
// CUDA: const moe_model model = {MOE_ABI_VERSION, {{.*}}, 1, 4,

// One micro-batch a step changes nothing.
// ONE-NOT: moe.micro_batches
// ONE-NOT: grad_accum
// ONE-NOT: @train_micro_step

// NO-OPTIMIZER: error: moe-accumulate-gradients: no moe.adamw in @train_step (run moe-optimizer first)
// ZERO: error: moe-accumulate-gradients: micro-batches must be at least 1 and below 2^31, got 0
// HUGE: error: moe-accumulate-gradients: micro-batches must be at least 1 and below 2^31, got 2147483648
// TWICE: error: moe-accumulate-gradients: @train_micro_step already exists (was the pass applied twice?)
