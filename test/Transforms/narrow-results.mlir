// RUN: moe-opt %s --moe-narrow-results | FileCheck %s
// RUN: moe-opt %s --moe-narrow-results -o %t.narrowed.mlir
// The narrowed RoPE stores the f32 result rounded as arith.truncf rounds it:
// the same bits.
// RUN: moe-run %s --entry rotate > %t.converted
// RUN: moe-run %t.narrowed.mlir --entry rotate > %t.narrowed
// RUN: diff %t.converted %t.narrowed
// RUN: moe-run %s --entry rotate_collapsed > %t.converted-collapsed
// RUN: moe-run %t.narrowed.mlir --entry rotate_collapsed > %t.narrowed-collapsed
// RUN: diff %t.converted-collapsed %t.narrowed-collapsed
// RUN: moe-run %s --entry routed > %t.converted-routed
// RUN: moe-run %t.narrowed.mlir --entry routed > %t.narrowed-routed
// RUN: diff %t.converted-routed %t.narrowed-routed

// A conversion that is its f32 result's only reader folds into moe.rope.
// CHECK-LABEL: func.func @rotate
// CHECK: %[[Y:.*]] = moe.rope %{{.*}} theta = 1.000000e+04 : tensor<1x4x2x8xf32> -> tensor<1x4x2x8xbf16>
// CHECK-NEXT: %[[W:.*]] = arith.extf %[[Y]]
// CHECK-NEXT: return %[[W]]
func.func @rotate() -> (tensor<1x4x2x8xf32> {moe.output = "rotated"}) {
  %x = arith.constant dense<[[[[0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8], [1.1, 1.2, -1.3, 1.4, 1.5, 1.6, 1.7, -1.8]], [[2.1, 2.2, 2.3, -2.4, 2.5, 2.6, 2.7, 2.8], [-3.1, 3.2, 3.3, 3.4, 3.5, 3.6, -3.7, 3.8]], [[0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08], [10.1, 10.2, 10.3, 10.4, 10.5, 10.6, 10.7, 10.8]], [[-0.11, 0.12, -0.13, 0.14, -0.15, 0.16, -0.17, 0.18], [7.1, 7.3, 7.5, 7.7, 7.9, 8.1, 8.3, 8.5]]]]> : tensor<1x4x2x8xf32>
  %y = moe.rope %x theta = 1.0e+04 : tensor<1x4x2x8xf32>
  %n = arith.truncf %y : tensor<1x4x2x8xf32> to tensor<1x4x2x8xbf16>
  %w = arith.extf %n : tensor<1x4x2x8xbf16> to tensor<1x4x2x8xf32>
  return %w : tensor<1x4x2x8xf32>
}

// Through a reshape that is the result's only reader (a gradient's heads
// collapsed for its GEMMs): the reshape is narrowed too.
// CHECK-LABEL: func.func @rotate_collapsed
// CHECK: %[[Y:.*]] = moe.rope %{{.*}} -> tensor<1x2x2x4xbf16>
// CHECK-NEXT: %[[F:.*]] = tensor.collapse_shape %[[Y]] {{.*}} : tensor<1x2x2x4xbf16> into tensor<2x8xbf16>
// CHECK-NEXT: %[[W:.*]] = arith.extf %[[F]]
func.func @rotate_collapsed() -> (tensor<2x8xf32> {moe.output = "rotated"}) {
  %x = arith.constant dense<[[[[0.1, -0.2, 0.3, 0.4], [0.5, -0.6, 0.7, 0.8]], [[1.1, 1.2, -1.3, 1.4], [1.5, 1.6, 1.7, -1.8]]]]> : tensor<1x2x2x4xf32>
  %y = moe.rope %x theta = 1.0e+04 inverse : tensor<1x2x2x4xf32>
  %f = tensor.collapse_shape %y [[0, 1], [2, 3]] : tensor<1x2x2x4xf32> into tensor<2x8xf32>
  %n = arith.truncf %f : tensor<2x8xf32> to tensor<2x8xbf16>
  %w = arith.extf %n : tensor<2x8xbf16> to tensor<2x8xf32>
  return %w : tensor<2x8xf32>
}

// The experts' buffer and the gradient of their outputs: the results that
// dispatch and combine_grad narrow (not the slots, count or weights'
// gradient).
// CHECK-LABEL: func.func @routed
// CHECK: moe.dispatch {{.*}} -> tensor<2x4x2xbf16>, tensor<4x1xi32>, tensor<i64>
// CHECK-NOT: arith.truncf
// CHECK: moe.combine_grad {{.*}} : tensor<2x4x2xf32> -> tensor<2x4x2xbf16>, tensor<4x1xf32>, tensor<4x1xi32>, tensor<4x2xf32>
// CHECK-NOT: arith.truncf
// CHECK: return
func.func @routed() -> (tensor<2x4x2xf32> {moe.output = "buffer"}, tensor<2x4x2xf32> {moe.output = "d_expert_output"}, tensor<4x1xf32> {moe.output = "d_weights"}) {
  %x = arith.constant dense<[[0.1, 1.1], [2.2, -3.3], [0.37, 0.01], [5.5, 6.6]]> : tensor<4x2xf32>
  %i = arith.constant dense<[[0], [1], [1], [0]]> : tensor<4x1xi32>
  %buf, %slots, %dropped = moe.dispatch %x, %i dropless : tensor<4x2xf32>, tensor<4x1xi32> -> tensor<2x4x2xf32>, tensor<4x1xi32>, tensor<i64>
  %nb = arith.truncf %buf : tensor<2x4x2xf32> to tensor<2x4x2xbf16>
  %wb = arith.extf %nb : tensor<2x4x2xbf16> to tensor<2x4x2xf32>
  %out = arith.constant dense<[[[0.5, -1.5], [2.25, 0.125], [0.0, 0.0], [0.0, 0.0]], [[1.75, 0.3], [-0.6, 2.2], [0.0, 0.0], [0.0, 0.0]]]> : tensor<2x4x2xf32>
  %w = arith.constant dense<[[0.3], [0.7], [1.3], [0.9]]> : tensor<4x1xf32>
  %dy = arith.constant dense<[[1.01, -2.03], [0.5, 0.25], [3.3, 0.1], [-0.7, 0.9]]> : tensor<4x2xf32>
  %dout, %dw = moe.combine_grad %out, %w, %i, %slots, %dy : tensor<2x4x2xf32>, tensor<4x1xf32>, tensor<4x1xi32>, tensor<4x2xf32>
  %nd = arith.truncf %dout : tensor<2x4x2xf32> to tensor<2x4x2xbf16>
  %wd = arith.extf %nd : tensor<2x4x2xbf16> to tensor<2x4x2xf32>
  return %wb, %wd, %dw : tensor<2x4x2xf32>, tensor<2x4x2xf32>, tensor<4x1xf32>
}

// The f32 result has another reader: it stays, and so does the conversion.
// CHECK-LABEL: func.func @shared
// CHECK-NEXT: %[[Y:.*]] = moe.rope %{{.*}} : tensor<1x2x1x4xf32>{{$}}
// CHECK-NEXT: arith.truncf %[[Y]]
func.func @shared(%x: tensor<1x2x1x4xf32>) -> (tensor<1x2x1x4xf32>, tensor<1x2x1x4xbf16>) {
  %y = moe.rope %x theta = 1.0e+04 : tensor<1x2x1x4xf32>
  %n = arith.truncf %y : tensor<1x2x1x4xf32> to tensor<1x2x1x4xbf16>
  return %y, %n : tensor<1x2x1x4xf32>, tensor<1x2x1x4xbf16>
}

// An op without NarrowableResultOpInterface keeps its conversion.
// CHECK-LABEL: func.func @not_narrowable
// CHECK-NEXT: %[[S:.*]] = moe.add
// CHECK-NEXT: arith.truncf %[[S]]
func.func @not_narrowable(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xbf16> {
  %s = moe.add %a, %b : tensor<4xf32>
  %n = arith.truncf %s : tensor<4xf32> to tensor<4xbf16>
  return %n : tensor<4xbf16>
}

// f64 programs are for gradient checks: an f64 RoPE is not narrowed.
// CHECK-LABEL: func.func @f64
// CHECK-NEXT: %[[Y:.*]] = moe.rope %{{.*}} : tensor<1x2x1x4xf64>{{$}}
// CHECK-NEXT: arith.truncf %[[Y]]
func.func @f64(%x: tensor<1x2x1x4xf64>) -> tensor<1x2x1x4xbf16> {
  %y = moe.rope %x theta = 1.0e+04 : tensor<1x2x1x4xf64>
  %n = arith.truncf %y : tensor<1x2x1x4xf64> to tensor<1x2x1x4xbf16>
  return %n : tensor<1x2x1x4xbf16>
}

// RMSNorm's output before the attention's GEMMs, and the logits' gradient
// before the output projection's: both fold.
// RUN: moe-run %s --entry normed > %t.converted-normed
// RUN: moe-run %t.narrowed.mlir --entry normed > %t.narrowed-normed
// RUN: diff %t.converted-normed %t.narrowed-normed
// CHECK-LABEL: func.func @normed
// CHECK: moe.rms_norm {{.*}} : tensor<2x4xf32> -> tensor<2x4xbf16>, tensor<4xf32>
// CHECK: moe.cross_entropy_grad {{.*}} : tensor<2x5xf32> -> tensor<2x5xbf16>, tensor<2xi32>, tensor<f32>
// CHECK-NOT: arith.truncf
// CHECK: return
func.func @normed() -> (tensor<2x4xf32> {moe.output = "normed"}, tensor<2x5xf32> {moe.output = "d_logits"}) {
  %x = arith.constant dense<[[0.1, -2.2, 0.37, 4.4], [1.5, 0.6, -0.71, 0.8]]> : tensor<2x4xf32>
  %w = arith.constant dense<[1.1, 0.9, -1.3, 0.7]> : tensor<4xf32>
  %y = moe.rms_norm %x, %w eps = 1.0e-05 : tensor<2x4xf32>, tensor<4xf32>
  %ny = arith.truncf %y : tensor<2x4xf32> to tensor<2x4xbf16>
  %wy = arith.extf %ny : tensor<2x4xbf16> to tensor<2x4xf32>
  %z = arith.constant dense<[[0.3, -1.1, 2.7, 0.05, -0.4], [1.9, 0.2, -0.8, 0.6, 1.3]]> : tensor<2x5xf32>
  %t = arith.constant dense<[2, 0]> : tensor<2xi32>
  %dl = arith.constant dense<0.7> : tensor<f32>
  %dz = moe.cross_entropy_grad %z, %t, %dl : tensor<2x5xf32>, tensor<2xi32>, tensor<f32>
  %nz = arith.truncf %dz : tensor<2x5xf32> to tensor<2x5xbf16>
  %wz = arith.extf %nz : tensor<2x5xbf16> to tensor<2x5xf32>
  return %wy, %wz : tensor<2x4xf32>, tensor<2x5xf32>
}

// A GEMM over bf16 operands accumulates in f32 and rounds as it stores: a
// linear layer's result (through the heads' reshape) and its input
// gradient narrow; one with a bias or over f32 operands does not.
// RUN: moe-run %s --entry projected > %t.converted-projected
// RUN: moe-run %t.narrowed.mlir --entry projected > %t.narrowed-projected
// RUN: diff %t.converted-projected %t.narrowed-projected
// CHECK-LABEL: func.func @projected
// CHECK: %[[Y:.*]] = moe.linear %{{.*}}, %{{.*}} : tensor<3x4xbf16>, tensor<4x4xbf16> -> tensor<3x4xbf16>
// CHECK-NEXT: %[[HEADS:.*]] = tensor.expand_shape %[[Y]] {{.*}} : tensor<3x4xbf16> into tensor<3x2x2xbf16>
// CHECK-NEXT: %[[DX:.*]] = moe.linear_input_grad %{{.*}}, %{{.*}} : tensor<3x4xbf16>, tensor<4x4xbf16> -> tensor<3x4xbf16>
// CHECK-NEXT: %[[BIASED:.*]] = moe.linear %{{.*}} bias %{{.*}} -> tensor<3x4xf32>
// CHECK-NEXT: arith.truncf %[[BIASED]]
// CHECK-NEXT: %[[F32:.*]] = moe.linear %{{.*}}, %{{.*}} : tensor<3x4xf32>, tensor<4x4xf32> -> tensor<3x4xf32>
// CHECK-NEXT: arith.truncf %[[F32]]
func.func @projected() -> (tensor<3x2x2xf32> {moe.output = "heads"}, tensor<3x4xf32> {moe.output = "d_input"}, tensor<3x4xf32> {moe.output = "biased"}, tensor<3x4xf32> {moe.output = "f32"}) {
  %x32 = arith.constant dense<[[0.1, -0.2, 0.3, 0.4], [1.1, 1.2, -1.3, 1.4], [2.1, -2.2, 2.3, 2.45]]> : tensor<3x4xf32>
  %w32 = arith.constant dense<[[0.5, 0.25, -0.75, 1.5], [1.3, -0.1, 0.7, 0.9], [-2.5, 0.3, 0.2, 0.11], [0.6, 0.6, -0.6, 0.33]]> : tensor<4x4xf32>
  %b = arith.constant dense<[0.01, -0.02, 0.03, 0.5]> : tensor<4xf32>
  %x = arith.truncf %x32 : tensor<3x4xf32> to tensor<3x4xbf16>
  %w = arith.truncf %w32 : tensor<4x4xf32> to tensor<4x4xbf16>
  %y = moe.linear %x, %w : tensor<3x4xbf16>, tensor<4x4xbf16> -> tensor<3x4xf32>
  %heads = tensor.expand_shape %y [[0], [1, 2]] output_shape [3, 2, 2] : tensor<3x4xf32> into tensor<3x2x2xf32>
  %heads16 = arith.truncf %heads : tensor<3x2x2xf32> to tensor<3x2x2xbf16>
  %dx = moe.linear_input_grad %x, %w : tensor<3x4xbf16>, tensor<4x4xbf16> -> tensor<3x4xf32>
  %dx16 = arith.truncf %dx : tensor<3x4xf32> to tensor<3x4xbf16>
  %biased = moe.linear %x, %w bias %b : tensor<3x4xbf16>, tensor<4x4xbf16>, tensor<4xf32> -> tensor<3x4xf32>
  %biased16 = arith.truncf %biased : tensor<3x4xf32> to tensor<3x4xbf16>
  %f32 = moe.linear %x32, %w32 : tensor<3x4xf32>, tensor<4x4xf32> -> tensor<3x4xf32>
  %f3216 = arith.truncf %f32 : tensor<3x4xf32> to tensor<3x4xbf16>
  %r0 = arith.extf %heads16 : tensor<3x2x2xbf16> to tensor<3x2x2xf32>
  %r1 = arith.extf %dx16 : tensor<3x4xbf16> to tensor<3x4xf32>
  %r2 = arith.extf %biased16 : tensor<3x4xbf16> to tensor<3x4xf32>
  %r3 = arith.extf %f3216 : tensor<3x4xbf16> to tensor<3x4xf32>
  return %r0, %r1, %r2, %r3 : tensor<3x2x2xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>
}

// So does attention over bf16 operands (through the heads' merge before
// the output projection); over f32 operands it does not.
// RUN: moe-run %s --entry attended > %t.converted-attended
// RUN: moe-run %t.narrowed.mlir --entry attended > %t.narrowed-attended
// RUN: diff %t.converted-attended %t.narrowed-attended
// CHECK-LABEL: func.func @attended
// CHECK: %[[O:.*]], %{{.*}} = moe.attention %{{.*}} causal : tensor<1x3x2x2xbf16>, tensor<1x3x1x2xbf16> -> tensor<1x3x2x2xbf16>
// CHECK-NEXT: %[[MERGED:.*]] = tensor.collapse_shape %[[O]] {{.*}} : tensor<1x3x2x2xbf16> into tensor<1x3x4xbf16>
// CHECK-NEXT: %[[F32:.*]], %{{.*}} = moe.attention %{{.*}} causal : tensor<1x3x2x2xf32>, tensor<1x3x1x2xf32>{{$}}
// CHECK-NEXT: arith.truncf %[[F32]]
func.func @attended() -> (tensor<1x3x4xf32> {moe.output = "merged"}, tensor<1x3x2x2xf32> {moe.output = "f32"}) {
  %q32 = arith.constant dense<[[[[0.1, -0.2], [0.3, 0.4]], [[1.1, 1.2], [-1.3, 1.4]], [[2.1, -2.2], [2.3, 2.45]]]]> : tensor<1x3x2x2xf32>
  %k32 = arith.constant dense<[[[[0.5, 0.25]], [[1.3, -0.1]], [[-2.5, 0.3]]]]> : tensor<1x3x1x2xf32>
  %v32 = arith.constant dense<[[[[0.7, -0.6]], [[0.33, 1.9]], [[-1.1, 0.05]]]]> : tensor<1x3x1x2xf32>
  %q = arith.truncf %q32 : tensor<1x3x2x2xf32> to tensor<1x3x2x2xbf16>
  %k = arith.truncf %k32 : tensor<1x3x1x2xf32> to tensor<1x3x1x2xbf16>
  %v = arith.truncf %v32 : tensor<1x3x1x2xf32> to tensor<1x3x1x2xbf16>
  %o, %lse = moe.attention %q, %k, %v causal : tensor<1x3x2x2xbf16>, tensor<1x3x1x2xbf16>
  %merged = tensor.collapse_shape %o [[0], [1], [2, 3]] : tensor<1x3x2x2xf32> into tensor<1x3x4xf32>
  %merged16 = arith.truncf %merged : tensor<1x3x4xf32> to tensor<1x3x4xbf16>
  %f32, %lse32 = moe.attention %q32, %k32, %v32 causal : tensor<1x3x2x2xf32>, tensor<1x3x1x2xf32>
  %f3216 = arith.truncf %f32 : tensor<1x3x2x2xf32> to tensor<1x3x2x2xbf16>
  %r0 = arith.extf %merged16 : tensor<1x3x4xbf16> to tensor<1x3x4xf32>
  %r1 = arith.extf %f3216 : tensor<1x3x2x2xbf16> to tensor<1x3x2x2xf32>
  return %r0, %r1 : tensor<1x3x4xf32>, tensor<1x3x2x2xf32>
}
