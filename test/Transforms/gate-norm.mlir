// RUN: moe-opt %s --moe-gate-norm="lambda=2.0" | FileCheck %s --check-prefix=SET
// RUN: moe-opt %s --moe-gate-norm="lambda=0" | FileCheck %s --check-prefix=OFF
// RUN: moe-opt %s --moe-gate-norm="lambda=1.0 eps=1e-3" | FileCheck %s --check-prefix=EPS
// RUN: moe-opt %s --moe-fuse-router | moe-opt --moe-gate-norm="lambda=0" | FileCheck %s --check-prefix=FUSED-OFF
// RUN: moe-opt %s --moe-fuse-router | moe-opt --moe-gate-norm="lambda=2.0" | FileCheck %s --check-prefix=FUSED-SET
// RUN: moe-opt %s --moe-fuse-router | FileCheck %s --check-prefix=FUSED
// RUN: moe-opt %s --moe-autodiff | FileCheck %s --check-prefix=EXPANDED-GRAD
// RUN: moe-opt %s --moe-fuse-router --moe-autodiff | FileCheck %s --check-prefix=FUSED-GRAD
// RUN: not moe-opt %s --moe-gate-norm="lambda=-1" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not moe-opt %s --moe-gate-norm="lambda=inf" 2>&1 | FileCheck %s --check-prefix=BAD-INF
// RUN: not moe-opt %s --moe-train-pipeline="gate-norm=nan" 2>&1 | FileCheck %s --check-prefix=BAD-NAN
// RUN: not moe-opt %s --moe-train-pipeline="gate-norm=1e39" 2>&1 | FileCheck %s --check-prefix=BAD-F32
// RUN: not moe-opt %s --moe-gate-norm="lambda=3e38" 2>&1 | FileCheck %s --check-prefix=BAD-SPREAD

// Gating logit normalization in its two forms: the expanded form
// (moe.gate_norm feeding a plain moe.gate, as moe-import writes it) and the
// fused form (the gate's norm_lambda), each through autodiff.

ml_program.global private mutable @w_router : tensor<4x8xf64> {moe.init = #moe.init<normal, 1.0>, moe.trainable}

func.func @forward(%x: tensor<16x8xf64>) -> tensor<f64> {
  %w = ml_program.global_load @w_router : tensor<4x8xf64>
  %z = moe.router %x, %w : tensor<16x8xf64>, tensor<4x8xf64> -> tensor<16x4xf64>
  %zn = moe.gate_norm %z norm_lambda = 1.0 : tensor<16x4xf64>
  %p, %wts, %i = moe.gate %zn top_k = 2 renormalize : tensor<16x4xf64> -> tensor<16x4xf64>, tensor<16x2xf64>, tensor<16x2xi32>
  %aux = moe.aux_loss skywork %p, %i : tensor<16x4xf64>, tensor<16x2xi32> -> tensor<f64>
  return %aux : tensor<f64>
}

// moe-gate-norm replaces the model's lambda with its own.
// SET: %[[Z:.*]] = moe.router
// SET-NEXT: %[[ZN:.*]] = moe.gate_norm %[[Z]] norm_lambda = 2.000000e+00 : tensor<16x4xf64>
// SET-NEXT: moe.gate %[[ZN]] top_k = 2 renormalize
// SET-NOT: moe.gate_norm

// OFF: %[[Z:.*]] = moe.router
// OFF-NEXT: moe.gate %[[Z]] top_k = 2 renormalize
// OFF-NOT: gate_norm
// OFF-NOT: norm_lambda

// The same lambda with another eps is another normalization: the model's
// moe.gate_norm (lambda 1, the default eps 1e-6) takes the asked eps rather
// than being left as it was.
// EPS: %[[Z:.*]] = moe.router
// EPS-NEXT: %[[ZN:.*]] = moe.gate_norm %[[Z]] norm_lambda = 1.000000e+00 norm_eps = 1.000000e-03 : tensor<16x4xf64>
// EPS-NEXT: moe.gate %[[ZN]] top_k = 2 renormalize
// EPS-NOT: moe.gate_norm

// A fused gate (the normalization as its norm_lambda, after
// moe-fuse-router) loses it too: having no moe.gate_norm in front does not
// make it unnormalized already, and lambda=0 leaves a plain gate.
// FUSED-OFF: %[[Z:.*]] = moe.router
// FUSED-OFF-NEXT: moe.gate %[[Z]] top_k = 2 renormalize
// FUSED-OFF-NOT: norm_lambda
// FUSED-OFF-NOT: gate_norm

// With lambda > 0 the fused gate becomes the expanded form with the asked
// lambda.
// FUSED-SET: %[[Z:.*]] = moe.router
// FUSED-SET-NEXT: %[[ZN:.*]] = moe.gate_norm %[[Z]] norm_lambda = 2.000000e+00 : tensor<16x4xf64>
// FUSED-SET-NEXT: moe.gate %[[ZN]] top_k = 2 renormalize
// FUSED-SET-NOT: gate_norm

// FUSED: %[[Z:.*]] = moe.router
// FUSED-NEXT: moe.gate %[[Z]] top_k = 2 norm_lambda = 1.000000e+00 renormalize
// FUSED-NOT: moe.gate_norm

// The expanded form differentiates op by op: the gate's gradient, then the
// normalization's.
// EXPANDED-GRAD-LABEL: func.func @train_step(
// EXPANDED-GRAD: %[[Z:.*]] = moe.router
// EXPANDED-GRAD: %[[DZN:.*]] = moe.gate_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} renormalize : tensor<16x4xf64>
// EXPANDED-GRAD: %[[DZ:.*]] = moe.gate_norm_grad %[[Z]], %[[DZN]] norm_lambda = 1.000000e+00 : tensor<16x4xf64>
// EXPANDED-GRAD: moe.linear_weight_grad %[[DZ]]

// The fused gate's gradient covers the normalization in one op.
// FUSED-GRAD-LABEL: func.func @train_step(
// FUSED-GRAD: %[[DZ:.*]] = moe.gate_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} norm_lambda = 1.000000e+00 renormalize : tensor<16x4xf64>
// FUSED-GRAD-NOT: gate_norm_grad
// FUSED-GRAD: moe.linear_weight_grad %[[DZ]]

// BAD: error: moe-gate-norm: lambda must be >= 0 and eps > 0, both finite in f32, got lambda=-1.000000e+00
// BAD-INF: error: moe-gate-norm: {{.*}} got lambda=INF
// BAD-NAN: error: moe-gate-norm: {{.*}} got lambda=nan
// BAD-F32: error: moe-gate-norm: {{.*}} got lambda=1.000000e+39
// An f32 lambda whose normalized logits would not be: 4 experts reach
// sqrt(3) lambda.
// BAD-SPREAD: error: moe-gate-norm: lambda=3.000000e+38 is too large for this gate's 4 experts: the largest normalized logit, lambda * sqrt(experts - 1), is 5.196152e+38, beyond f32
