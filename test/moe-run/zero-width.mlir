// Zero-width features (a [rows, 0] input or gradient) are valid tensors:
// the reference interpreter and the kernel-call emitter count the rows
// without dividing by the width (which crashed both with SIGFPE), and
// moe.sigmoid_scale of no rows its width without dividing by the rows.
// RUN: %python %S/../Inputs/make-safetensors.py %t.inputs x:F32:2x0: w:F32:3x0: b:F32:3:1,2,3 dy:F32:2x3:1,2,3,4,5,6 v:F32:2x0: g:F32:0: e:F32:0x8: r:F32:0x1:
// RUN: moe-run %s --entry zero_width --inputs %t.inputs | FileCheck %s
// RUN: moe-opt %s --moe-attach-target --moe-plan-memory -o %t.planned.mlir
// RUN: moe-translate --emit=cpp %t.planned.mlir | FileCheck %s --check-prefix=CALLS

// CHECK: result0 F32[2, 3] = 1 2 3 1 2 3
// CHECK: result1 F32[2, 0] =
// CHECK: result2 F32[3, 0] =
// CHECK: result3 F32[2, 0] =
// CHECK: result4 F32[0, 8] =
// CHECK: result5 F32[0, 8] =
// CALLS: {{^}} linear(v{{[0-9]+}}, v{{[0-9]+}}, v{{[0-9]+}}, 2, 0, 3,
// CALLS: {{^}} linearInputGrad(v{{[0-9]+}}, v{{[0-9]+}}, 2, 0, 3,
// CALLS: {{^}} linearWeightGrad(v{{[0-9]+}}, v{{[0-9]+}}, 2, 0, 3,
// CALLS: {{^}} rmsNorm(v{{[0-9]+}}, v{{[0-9]+}}, 2, 0,
// CALLS: {{^}} sigmoidScale(v{{[0-9]+}}, v{{[0-9]+}}, 0, 8,
// CALLS: {{^}} sigmoidScale(v{{[0-9]+}}, v{{[0-9]+}}, 0, 1,
func.func @zero_width(%x: tensor<2x0xf32> {moe.input = "x"},
                      %w: tensor<3x0xf32> {moe.input = "w"},
                      %b: tensor<3xf32> {moe.input = "b"},
                      %dy: tensor<2x3xf32> {moe.input = "dy"},
                      %v: tensor<2x0xf32> {moe.input = "v"},
                      %g: tensor<0xf32> {moe.input = "g"},
                      %e: tensor<0x8xf32> {moe.input = "e"},
                      %r: tensor<0x1xf32> {moe.input = "r"})
    -> (tensor<2x3xf32>, tensor<2x0xf32>, tensor<3x0xf32>, tensor<2x0xf32>,
        tensor<0x8xf32>, tensor<0x8xf32>) {
  %y = moe.linear %x, %w bias %b : tensor<2x0xf32>, tensor<3x0xf32>, tensor<3xf32> -> tensor<2x3xf32>
  %dx = moe.linear_input_grad %dy, %w : tensor<2x3xf32>, tensor<3x0xf32> -> tensor<2x0xf32>
  %dw = moe.linear_weight_grad %dy, %x : tensor<2x3xf32>, tensor<2x0xf32> -> tensor<3x0xf32>
  %n = moe.rms_norm %v, %g eps = 1.0e-05 : tensor<2x0xf32>, tensor<0xf32>
  %rows = moe.sigmoid_scale %e, %r : tensor<0x8xf32>, tensor<0x1xf32>
  %elements = moe.sigmoid_scale %e, %e : tensor<0x8xf32>, tensor<0x8xf32>
  return %y, %dx, %dw, %n, %rows, %elements : tensor<2x3xf32>, tensor<2x0xf32>, tensor<3x0xf32>, tensor<2x0xf32>, tensor<0x8xf32>, tensor<0x8xf32>
}
