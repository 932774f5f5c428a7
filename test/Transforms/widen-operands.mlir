// RUN: moe-opt %s --moe-widen-operands | FileCheck %s
// RUN: moe-opt %s --moe-widen-operands -o %t.widened.mlir
// The widening ops read the bf16 activation as arith.extf widens it: the
// same values, so moe-run gives the same bits.
// RUN: moe-run %s --entry norm_grad > %t.converted-norm
// RUN: moe-run %t.widened.mlir --entry norm_grad > %t.widened-norm
// RUN: diff %t.converted-norm %t.widened-norm
// RUN: moe-run %s --entry combined_grad > %t.converted-combine
// RUN: moe-run %t.widened.mlir --entry combined_grad > %t.widened-combine
// RUN: diff %t.converted-combine %t.widened-combine
// With moe-narrow-results too, combine_grad reads bf16 and stores bf16.
// RUN: moe-opt %s --moe-narrow-results --moe-widen-operands | FileCheck %s --check-prefix=BOTH
// RUN: moe-opt %s --moe-narrow-results --moe-widen-operands -o %t.both.mlir
// RUN: moe-run %t.both.mlir --entry combined_grad > %t.both-combine
// RUN: diff %t.converted-combine %t.both-combine
// In either order: a widened operand still computes in f32.
// RUN: moe-opt %s --moe-widen-operands --moe-narrow-results | FileCheck %s --check-prefix=BOTH

// The stored residual stream, widened only for RMSNorm's gradient: the
// conversion goes.
// CHECK-LABEL: func.func @norm_grad
// CHECK: %[[N:.*]] = arith.truncf
// CHECK-NOT: arith.extf
// CHECK: moe.rms_norm_grad %[[N]], %{{.*}}, %{{.*}} eps = 1.000000e-05 : tensor<2x4xbf16> -> tensor<2x4xf32>, tensor<4xf32>
func.func @norm_grad() -> (tensor<2x4xf32> {moe.output = "d_input"}, tensor<4xf32> {moe.output = "d_weight"}) {
  %x = arith.constant dense<[[0.1, -2.2, 0.37, 4.4], [1.5, 0.6, -0.71, 0.8]]> : tensor<2x4xf32>
  %w = arith.constant dense<[1.1, 0.9, -1.3, 0.7]> : tensor<4xf32>
  %dy = arith.constant dense<[[0.3, -0.1, 0.2, 1.7], [-0.9, 0.4, 0.05, 0.6]]> : tensor<2x4xf32>
  %n = arith.truncf %x : tensor<2x4xf32> to tensor<2x4xbf16>
  %e = arith.extf %n : tensor<2x4xbf16> to tensor<2x4xf32>
  %dx, %dw = moe.rms_norm_grad %e, %w, %dy eps = 1.0e-05 : tensor<2x4xf32>, tensor<4xf32>
  return %dx, %dw : tensor<2x4xf32>, tensor<4xf32>
}

// The stored expert outputs: combine_grad reads them as bf16; the
// conversion stays for its other reader.
// CHECK-LABEL: func.func @combined_grad
// CHECK: %[[N:.*]] = arith.truncf
// CHECK: %[[E:.*]] = arith.extf %[[N]]
// CHECK: moe.combine_grad %[[N]], {{.*}} : tensor<2x4x2xbf16> -> tensor<2x4x2xf32>, tensor<4x1xf32>, tensor<4x1xi32>, tensor<4x2xf32>
// CHECK: return %{{.*}}, %{{.*}}, %[[E]]
// BOTH-LABEL: func.func @combined_grad
// BOTH: %[[N:.*]] = arith.truncf
// BOTH: moe.combine_grad %[[N]], {{.*}} : tensor<2x4x2xbf16>, tensor<4x1xf32>, tensor<4x1xi32>, tensor<4x2xf32>
// BOTH-NOT: arith.truncf
// BOTH: return
func.func @combined_grad() -> (tensor<2x4x2xf32> {moe.output = "d_expert_output"}, tensor<4x1xf32> {moe.output = "d_weights"}, tensor<2x4x2xf32> {moe.output = "expert_output"}) {
  %out = arith.constant dense<[[[0.5, -1.5], [2.25, 0.13], [0.0, 0.0], [0.0, 0.0]], [[1.77, 0.3], [-0.6, 2.2], [0.0, 0.0], [0.0, 0.0]]]> : tensor<2x4x2xf32>
  %i = arith.constant dense<[[0], [1], [1], [0]]> : tensor<4x1xi32>
  %s = arith.constant dense<[[0], [0], [1], [1]]> : tensor<4x1xi32>
  %w = arith.constant dense<[[0.3], [0.7], [1.3], [0.9]]> : tensor<4x1xf32>
  %dy = arith.constant dense<[[1.01, -2.03], [0.5, 0.25], [3.3, 0.1], [-0.7, 0.9]]> : tensor<4x2xf32>
  %n = arith.truncf %out : tensor<2x4x2xf32> to tensor<2x4x2xbf16>
  %e = arith.extf %n : tensor<2x4x2xbf16> to tensor<2x4x2xf32>
  %dout, %dw = moe.combine_grad %e, %w, %i, %s, %dy : tensor<2x4x2xf32>, tensor<4x1xf32>, tensor<4x1xi32>, tensor<4x2xf32>
  %nd = arith.truncf %dout : tensor<2x4x2xf32> to tensor<2x4x2xbf16>
  %wd = arith.extf %nd : tensor<2x4x2xbf16> to tensor<2x4x2xf32>
  return %wd, %dw, %e : tensor<2x4x2xf32>, tensor<4x1xf32>, tensor<2x4x2xf32>
}

// An operand the op does not widen (RMSNorm's weight), and an op without
// WidenableOperandOpInterface, keep their conversions.
// CHECK-LABEL: func.func @not_widenable
// CHECK: %[[W:.*]] = arith.extf %{{.*}} : tensor<4xbf16> to tensor<4xf32>
// CHECK: %[[A:.*]] = arith.extf %{{.*}} : tensor<2x4xbf16> to tensor<2x4xf32>
// CHECK: moe.rms_norm_grad %{{.*}}, %[[W]], %[[A]] eps
// CHECK: moe.add %[[A]], %[[A]]
func.func @not_widenable(%x: tensor<2x4xf32>, %w: tensor<4xbf16>, %a: tensor<2x4xbf16>) -> (tensor<2x4xf32>, tensor<4xf32>, tensor<2x4xf32>) {
  %ew = arith.extf %w : tensor<4xbf16> to tensor<4xf32>
  %ea = arith.extf %a : tensor<2x4xbf16> to tensor<2x4xf32>
  %dx, %dw = moe.rms_norm_grad %x, %ew, %ea eps = 1.0e-05 : tensor<2x4xf32>, tensor<4xf32>
  %s = moe.add %ea, %ea : tensor<2x4xf32>
  return %dx, %dw, %s : tensor<2x4xf32>, tensor<4xf32>, tensor<2x4xf32>
}

// Only bf16 -> f32 widens: an f16 activation keeps its conversion.
// CHECK-LABEL: func.func @f16
// CHECK: %[[E:.*]] = arith.extf
// CHECK: moe.rms_norm_grad %[[E]]
func.func @f16(%x: tensor<2x4xf16>, %w: tensor<4xf32>, %dy: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<4xf32>) {
  %e = arith.extf %x : tensor<2x4xf16> to tensor<2x4xf32>
  %dx, %dw = moe.rms_norm_grad %e, %w, %dy eps = 1.0e-05 : tensor<2x4xf32>, tensor<4xf32>
  return %dx, %dw : tensor<2x4xf32>, tensor<4xf32>
}
