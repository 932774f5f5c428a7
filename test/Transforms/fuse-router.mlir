// RUN: moe-opt %s --moe-fuse-router | FileCheck %s
// RUN: moe-opt %s --moe-gate-norm=lambda=2.0 | FileCheck %s --check-prefix=SET
// RUN: moe-opt %s --moe-gate-norm=lambda=2.0 --moe-gate-norm=lambda=2.0 | FileCheck %s --check-prefix=SET

// The legality checks of the router patterns (Patterns.h).

// A moe.gate_norm feeding a plain gate folds into it; its layer stays.
// CHECK-LABEL: func.func @folds
// CHECK-NEXT: moe.gate %arg0 top_k = 2 norm_lambda = 1.000000e+00 norm_eps = 1.000000e-03 {moe.layer = 5 : i64}
// CHECK-NOT: moe.gate_norm
// SET-LABEL: func.func @folds
// SET-NEXT: %[[N:.*]] = moe.gate_norm %arg0 norm_lambda = 2.000000e+00 {moe.layer = 5 : i64}
// SET-NEXT: moe.gate %[[N]] top_k = 2 {moe.layer = 5 : i64}
func.func @folds(%z: tensor<6x4xf32>) -> tensor<6x2xf32> {
  %zn = moe.gate_norm %z norm_lambda = 1.0 norm_eps = 1.0e-3 {moe.layer = 5 : i64} : tensor<6x4xf32>
  %p, %w, %i = moe.gate %zn top_k = 2 {moe.layer = 5 : i64} : tensor<6x4xf32> -> tensor<6x4xf32>, tensor<6x2xf32>, tensor<6x2xi32>
  return %w : tensor<6x2xf32>
}

// A gate that normalizes already would normalize twice: not folded.
// CHECK-LABEL: func.func @already_normalizing
// CHECK-NEXT: %[[N:.*]] = moe.gate_norm %arg0 norm_lambda = 1.000000e+00
// CHECK-NEXT: moe.gate %[[N]] top_k = 2 norm_lambda = 3.000000e+00
// moe-gate-norm sets one normalization: the expanded form with its lambda.
// SET-LABEL: func.func @already_normalizing
// SET-NEXT: %[[N:.*]] = moe.gate_norm %arg0 norm_lambda = 2.000000e+00
// SET-NEXT: moe.gate %[[N]] top_k = 2 :
func.func @already_normalizing(%z: tensor<6x4xf32>) -> tensor<6x2xf32> {
  %zn = moe.gate_norm %z norm_lambda = 1.0 : tensor<6x4xf32>
  %p, %w, %i = moe.gate %zn top_k = 2 norm_lambda = 3.0 : tensor<6x4xf32> -> tensor<6x4xf32>, tensor<6x2xf32>, tensor<6x2xi32>
  return %w : tensor<6x2xf32>
}

// The normalized logits have another reader: the gate folds, the
// moe.gate_norm stays for that reader.
// CHECK-LABEL: func.func @shared_norm
// CHECK-NEXT: %[[N:.*]] = moe.gate_norm %arg0 norm_lambda = 1.000000e+00
// CHECK-NEXT: moe.gate %arg0 top_k = 2 norm_lambda = 1.000000e+00
// CHECK: return %{{.*}}, %[[N]]
func.func @shared_norm(%z: tensor<6x4xf32>) -> (tensor<6x2xf32>, tensor<6x4xf32>) {
  %zn = moe.gate_norm %z norm_lambda = 1.0 : tensor<6x4xf32>
  %p, %w, %i = moe.gate %zn top_k = 2 : tensor<6x4xf32> -> tensor<6x4xf32>, tensor<6x2xf32>, tensor<6x2xi32>
  return %w, %zn : tensor<6x2xf32>, tensor<6x4xf32>
}
