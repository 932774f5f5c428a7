// RUN: moe-opt %s --moe-mixed-precision=weight-copies=per-step | FileCheck %s

// A store to a weight's global ends its per-step copy: the GEMMs after it
// share a copy of the stored value, not the old one.

ml_program.global private mutable @w : tensor<2x4xf32>

// CHECK-LABEL: func.func @stored
// CHECK: %[[W0:.*]] = ml_program.global_load @w
// CHECK-NEXT: %[[C0:.*]] = arith.truncf %[[W0]] : tensor<2x4xf32> to tensor<2x4xbf16>
// CHECK-NEXT: moe.linear %{{.*}}, %[[C0]]
// CHECK-NEXT: ml_program.global_store @w
// CHECK-NEXT: %[[W1:.*]] = ml_program.global_load @w
// CHECK-NEXT: %[[C1:.*]] = arith.truncf %[[W1]] : tensor<2x4xf32> to tensor<2x4xbf16>
// CHECK-NEXT: moe.linear %{{.*}}, %[[C1]]
// CHECK-NEXT: moe.linear %{{.*}}, %[[C1]]
func.func @stored(%x: tensor<3x4xf32>, %new: tensor<2x4xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>) {
  %w0 = ml_program.global_load @w : tensor<2x4xf32>
  %y0 = moe.linear %x, %w0 : tensor<3x4xf32>, tensor<2x4xf32> -> tensor<3x2xf32>
  ml_program.global_store @w = %new : tensor<2x4xf32>
  %w1 = ml_program.global_load @w : tensor<2x4xf32>
  %y1 = moe.linear %x, %w1 : tensor<3x4xf32>, tensor<2x4xf32> -> tensor<3x2xf32>
  %y2 = moe.linear %x, %w1 : tensor<3x4xf32>, tensor<2x4xf32> -> tensor<3x2xf32>
  return %y0, %y1, %y2 : tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>
}
