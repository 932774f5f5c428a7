// RUN: moe-opt %s --moe-plan-memory=report=false | moe-translate --emit=cpp | FileCheck %s

// A gate's own norm_eps reaches its kernel calls: the fused gate's and its
// gradient's GateConfig, and the expanded normalization's gradient, each
// carry 1e-5 here, not the attribute's default 1e-6 (emit-cpp-routing.mlir
// uses the default for these three, where a kernel call that dropped the
// attribute would print the same).

// CHECK-LABEL: void function_gate_eps(
// CHECK: gate({{v[0-9]+}}, nullptr, 6, 4, GateConfig{2, true, 2.5, 1.0000000000000001e-05, true},
// CHECK: gateGrad({{v[0-9]+}}, {{v[0-9]+}}, 6, 4, GateConfig{2, true, 2.5, 1.0000000000000001e-05, true},
// CHECK: gateNormGrad({{v[0-9]+}}, {{v[0-9]+}}, 6, 4, 2.5, 1.0000000000000001e-05,
func.func @gate_eps(%z: tensor<6x4xf32>, %dp: tensor<6x4xf32>, %dw: tensor<6x2xf32>) -> (tensor<6x4xf32>, tensor<6x2xf32>, tensor<6x2xi32>, tensor<6x4xf32>, tensor<6x4xf32>) {
  %p, %w, %i = moe.gate %z top_k = 2 norm_lambda = 2.5 norm_eps = 1.0e-05 renormalize : tensor<6x4xf32> -> tensor<6x4xf32>, tensor<6x2xf32>, tensor<6x2xi32>
  %dz = moe.gate_grad %z, %i, %dp, %dw norm_lambda = 2.5 norm_eps = 1.0e-05 renormalize : tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>
  %dzn = moe.gate_norm_grad %z, %dp norm_lambda = 2.5 norm_eps = 1.0e-05 : tensor<6x4xf32>
  return %p, %w, %i, %dz, %dzn : tensor<6x4xf32>, tensor<6x2xf32>, tensor<6x2xi32>, tensor<6x4xf32>, tensor<6x4xf32>
}
