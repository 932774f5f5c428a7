// RUN: moe-opt %s --moe-plan-memory=report=false | moe-translate --emit=cpp | FileCheck %s

// A cross-entropy's own ignore_index reaches its kernel calls: the target
// count, the loss and its gradient each skip label 7 here, not -100
// (transformers' convention, which every imported model uses and which a
// kernel call that assumed it would print the same for those).

// CHECK-LABEL: void function_ignore_seven(
// CHECK: countTargets({{v[0-9]+}}, 6, CountedTargets{true, 7})
// CHECK: crossEntropy({{v[0-9]+}}, {{v[0-9]+}}, 6, 5, CountedTargets{true, 7}, *{{v[0-9]+}})
// CHECK: crossEntropyGrad({{v[0-9]+}}, {{v[0-9]+}}, 6, 5, CountedTargets{true, 7}, *{{v[0-9]+}},
func.func @ignore_seven(%logits: tensor<6x5xf32>, %labels: tensor<6xi32>, %dl: tensor<f32>) -> (tensor<f32>, tensor<6x5xf32>) {
  %n = moe.count_targets %labels {ignore_index = 7 : i64} : tensor<6xi32> -> tensor<f32>
  %loss = moe.cross_entropy %logits, %labels divisor %n {ignore_index = 7 : i64} : tensor<6x5xf32>, tensor<6xi32>, tensor<f32> -> tensor<f32>
  %dz = moe.cross_entropy_grad %logits, %labels, %dl divisor %n {ignore_index = 7 : i64} : tensor<6x5xf32>, tensor<6xi32>, tensor<f32>, tensor<f32>
  return %loss, %dz : tensor<f32>, tensor<6x5xf32>
}
