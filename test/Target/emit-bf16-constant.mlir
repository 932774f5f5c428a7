// A bf16 constant has no C++ literal in bf16's storage type: both targets
// refuse it by name instead of writing code that does not compile.
// RUN: not moe-translate --emit=cpp %s 2>&1 | FileCheck %s
// RUN: moe-opt %s --moe-attach-target=target=cuda | not moe-translate --emit=cuda 2>&1 | FileCheck %s
// CHECK: error: code generation supports f32 and integer constants, not bf16 ones: make it f32 and round it with arith.truncf
func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
  %c = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xbf16>
  %e = arith.extf %c : tensor<4xbf16> to tensor<4xf32>
  %r = moe.add %e, %a : tensor<4xf32>
  return %r : tensor<4xf32>
}
