// RUN: moe-opt %s --moe-plan-memory=report=false | moe-translate --emit=cpp | FileCheck %s

// The CPU kernel calls of the gate normalization and its gradient, of a
// dispatch by priority and of the routing metrics: attributes become
// literals, a dispatch without priority passes nullptr, the load is an
// int64_t buffer and the similarity a scalar assigned through its pointer.

// CHECK-LABEL: void function_routing(
// CHECK: float *[[Z:v[0-9]+]] = const_cast<float *>(static_cast<const float *>(inputs[0]));
// CHECK: float *[[X:v[0-9]+]] = const_cast<float *>(static_cast<const float *>(inputs[1]));
// CHECK: float *[[ZN:v[0-9]+]] = reinterpret_cast<float *>(arena + {{[0-9]+}});
// CHECK: gateNorm([[Z]], 6, 4, 2.5, 1.0000000000000001e-05, [[ZN]]);
// CHECK: float *[[P:v[0-9]+]] = reinterpret_cast<float *>(arena + {{[0-9]+}});
// CHECK: float *[[W:v[0-9]+]] = reinterpret_cast<float *>(arena + {{[0-9]+}});
// CHECK: int32_t *[[I:v[0-9]+]] = reinterpret_cast<int32_t *>(arena + {{[0-9]+}});
// CHECK: gate([[ZN]], nullptr, 6, 4, GateConfig{2, false, 0.0, 9.9999999999999995e-07, true}, [[P]], [[W]], [[I]]);
// CHECK: float *[[BUF:v[0-9]+]] = reinterpret_cast<float *>(arena + {{[0-9]+}});
// CHECK: int32_t *[[SLOTS:v[0-9]+]] = reinterpret_cast<int32_t *>(arena + {{[0-9]+}});
// CHECK: int64_t *[[DROPPED:v[0-9]+]] = reinterpret_cast<int64_t *>(arena + {{[0-9]+}});
// CHECK: int64_t [[COUNTS:counts[0-9]+]][4];
// CHECK: dispatch([[X]], [[I]], [[W]], 6, 3, 2, 4, 3, [[BUF]], [[SLOTS]], [[COUNTS]], [[DROPPED]]);
// CHECK: dispatch([[X]], [[I]], nullptr, 6, 3, 2, 4, 3, {{v[0-9]+}}, {{v[0-9]+}}, {{counts[0-9]+}}, {{v[0-9]+}});
// CHECK: float *[[RATE:v[0-9]+]] = reinterpret_cast<float *>(arena + {{[0-9]+}});
// CHECK: float *[[R12:v[0-9]+]] = reinterpret_cast<float *>(arena + {{[0-9]+}});
// CHECK: float *[[R23:v[0-9]+]] = reinterpret_cast<float *>(arena + {{[0-9]+}});
// CHECK: int64_t *[[LOAD:v[0-9]+]] = reinterpret_cast<int64_t *>(arena + {{[0-9]+}});
// CHECK: routingMetrics([[P]], [[I]], [[SLOTS]], 6, 4, 2, [[RATE]], [[R12]], [[R23]], [[LOAD]]);
// CHECK: float *[[DZ:v[0-9]+]] = reinterpret_cast<float *>(arena + {{[0-9]+}});
// CHECK: gateNormGrad([[Z]], [[P]], 6, 4, 2.5, 9.9999999999999995e-07, [[DZ]]);
// CHECK: float *[[SIM:v[0-9]+]] = reinterpret_cast<float *>(arena + {{[0-9]+}});
// CHECK: *[[SIM]] = expertSimilarity([[BUF]], {{v[0-9]+}}, [[BUF]], 4, 3, 3);
// CHECK: std::memcpy(outputs[4], [[LOAD]], 32);
func.func @routing(%z: tensor<6x4xf32>, %x: tensor<6x3xf32>) -> (tensor<4x3x3xf32>, tensor<4x3x3xf32>, tensor<f32>, tensor<f32>, tensor<4xi64>, tensor<f32>) {
  %zn = moe.gate_norm %z norm_lambda = 2.5 norm_eps = 1.0e-05 : tensor<6x4xf32>
  %p, %w, %i = moe.gate %zn top_k = 2 renormalize : tensor<6x4xf32> -> tensor<6x4xf32>, tensor<6x2xf32>, tensor<6x2xi32>
  %buf, %slots, %dropped = moe.dispatch %x, %i priority %w capacity_factor = 1.0 : tensor<6x3xf32>, tensor<6x2xi32>, tensor<6x2xf32> -> tensor<4x3x3xf32>, tensor<6x2xi32>, tensor<i64>
  %buf2, %slots2, %dropped2 = moe.dispatch %x, %i capacity_factor = 1.0 : tensor<6x3xf32>, tensor<6x2xi32> -> tensor<4x3x3xf32>, tensor<6x2xi32>, tensor<i64>
  %rate, %r12, %r23, %load = moe.routing_metrics %p, %i, %slots : tensor<6x4xf32>, tensor<6x2xi32> -> tensor<f32>, tensor<4xi64>
  %g = moe.gate_norm_grad %z, %p norm_lambda = 2.5 : tensor<6x4xf32>
  %s = moe.expert_similarity %buf, %buf2, %buf : tensor<4x3x3xf32>, tensor<4x3x3xf32> -> tensor<f32>
  return %buf, %buf2, %rate, %r12, %load, %s : tensor<4x3x3xf32>, tensor<4x3x3xf32>, tensor<f32>, tensor<f32>, tensor<4xi64>, tensor<f32>
}

// The adaptive coefficient update is inline arithmetic; an integral
// attribute stays a double literal, so std::min compares two doubles.
// CHECK-LABEL: void function_adaptive(
// CHECK: *{{v[0-9]+}} = adaptiveAuxCoeff(*{{v[0-9]+}}, *{{v[0-9]+}}, 32, 1.0, 1.0, 0.5);
func.func @adaptive(%alpha: tensor<f32>, %dropped: tensor<i64>) -> tensor<f32> {
  %next = moe.adaptive_aux_coeff %alpha, %dropped xi = 1.0 alpha_max = 1.0 beta = 0.5 assignments = 32 : tensor<f32>, tensor<i64>
  return %next : tensor<f32>
}

// DeepSeek-V3's routing: the sigmoid scoring is spelled in the GateConfig
// (the gate's and its gradient's, with a scale beside it where not 1), the
// bias passed by pointer; the step's
// load and the bias update take buffers, the rate a literal.
// CHECK-LABEL: void function_expert_bias(
// CHECK: float *[[Z:v[0-9]+]] = const_cast<float *>(static_cast<const float *>(inputs[0]));
// CHECK: float *[[B:v[0-9]+]] = const_cast<float *>(static_cast<const float *>(inputs[1]));
// CHECK: gate([[Z]], [[B]], 6, 4, GateConfig{2, false, 0.0, 9.9999999999999995e-07, true, GateScoring::Sigmoid, 2.5}, {{v[0-9]+}}, {{v[0-9]+}}, [[I:v[0-9]+]]);
// CHECK: gateGrad([[Z]], [[I]], 6, 4, GateConfig{2, false, 0.0, 9.9999999999999995e-07, true, GateScoring::Sigmoid, 2.5},
// A softmax gate with a scale spells its scoring to reach the scale.
// CHECK: gateGrad([[Z]], [[I]], 6, 4, GateConfig{2, false, 0.0, 9.9999999999999995e-07, false, GateScoring::Softmax, 0.5},
// CHECK: int64_t *[[LOAD:v[0-9]+]] = reinterpret_cast<int64_t *>(arena + {{[0-9]+}});
// CHECK: expertLoad([[I]], 12, 4, [[LOAD]]);
// CHECK: expertBiasUpdate([[B]], [[LOAD]], 4, 0.001, {{v[0-9]+}});
func.func @expert_bias(%z: tensor<6x4xf32>, %b: tensor<4xf32>, %dp: tensor<6x4xf32>, %dw: tensor<6x2xf32>) -> (tensor<6x4xf32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<4xf32>) {
  %p, %w, %i = moe.gate %z bias %b top_k = 2 scoring = sigmoid renormalize scale = 2.5 : tensor<6x4xf32>, tensor<4xf32> -> tensor<6x4xf32>, tensor<6x2xf32>, tensor<6x2xi32>
  %dz = moe.gate_grad %z, %i, %dp, %dw scoring = sigmoid renormalize scale = 2.5 : tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>
  %dz2 = moe.gate_grad %z, %i, %dp, %dw scale = 0.5 : tensor<6x4xf32>, tensor<6x2xi32>, tensor<6x2xf32>
  %load = moe.expert_load %i : tensor<6x2xi32> -> tensor<4xi64>
  %b1 = moe.expert_bias_update %b, %load rate = 1.0e-03 : tensor<4xf32>, tensor<4xi64>
  return %p, %w, %dz, %dz2, %b1 : tensor<6x4xf32>, tensor<6x2xf32>, tensor<6x4xf32>, tensor<6x4xf32>, tensor<4xf32>
}

// DeepSeek-V3's groups follow the scoring and the scale in the GateConfig,
// which spells both (the defaults) to reach them.
// CHECK-LABEL: void function_expert_groups(
// CHECK: gate({{v[0-9]+}}, nullptr, 6, 4, GateConfig{2, false, 0.0, 9.9999999999999995e-07, false, GateScoring::Softmax, 1.0, 2, 1}, {{v[0-9]+}}, {{v[0-9]+}}, {{v[0-9]+}});
func.func @expert_groups(%z: tensor<6x4xf32>) -> (tensor<6x4xf32>, tensor<6x2xf32>, tensor<6x2xi32>) {
  %p, %w, %i = moe.gate %z top_k = 2 groups = 2 : tensor<6x4xf32> -> tensor<6x4xf32>, tensor<6x2xf32>, tensor<6x2xi32>
  return %p, %w, %i : tensor<6x4xf32>, tensor<6x2xf32>, tensor<6x2xi32>
}
