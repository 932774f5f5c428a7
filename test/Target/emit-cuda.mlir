// RUN: moe-opt %s --moe-attach-target=target=cuda --moe-fuse-elementwise --moe-plan-memory=report=false | moe-translate --emit=cuda --model-name demo | FileCheck %s
// RUN: moe-opt %s --moe-plan-memory=report=false | not moe-translate --emit=cuda 2>&1 | FileCheck %s --check-prefix=CPU-PLAN
// RUN: moe-opt %s --moe-attach-target=target=cuda --moe-plan-memory=report=false | moe-translate --emit=cuda --profile | FileCheck %s --check-prefix=PROFILE
// With --profile each kernel call is timed by CUDA events (CudaTarget.h).
// PROFILE: #include "moert/CudaTarget.h"
// PROFILE: #include <cmath>
// PROFILE-NOT: #include
// PROFILE: moe_profile_site [[SITES:profile_sites[0-9]+]][] = {
// PROFILE: moert::cuda::ProfileScope profile([[SITES]][0]);

// The CUDA target shares the C++ target's kernel calls and buffer layout;
// what differs is the shell: device kernels and the CUDA runtime, one graph
// per function call keyed by its buffers, device copies of constants and
// row counts, 0-d inputs as device pointers, 0-d results through a
// trailing pointer, fused loops as generated __global__ kernels, and
// 256-byte alignment.
// CHECK: #include "moert/CudaKernels.h"
// CHECK: #include "moert/CudaTarget.h"
// The fused loop is a grid-stride kernel with the C++ target's body.
// CHECK: __global__ void [[FUSED:fused_v[0-9]+]](const float *__restrict__ in0, const float *__restrict__ in1, const float *__restrict__ in2, float *__restrict__ out) {
// CHECK-NEXT: for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < 6; i += int64_t(gridDim.x) * blockDim.x) {
// CHECK: std::exp(
// CHECK: out[i] = e{{[0-9]+}};
// CHECK-LABEL: void function_chain(void *state_, void *arena_, const void *const *inputs, void *const *outputs) {
// CHECK-NEXT: static moert::cuda::FunctionGraph graph;
// CHECK-NEXT: graph.run({state_, arena_, inputs[0], inputs[1], outputs[0]}, [&] {
// CHECK: float *[[A:v[0-9]+]] = const_cast<float *>(static_cast<const float *>(inputs[0]));
// CHECK: float *[[B:v[0-9]+]] = const_cast<float *>(static_cast<const float *>(inputs[1]));
// CHECK: static float *const [[C:constant[0-9]+]]_device = moert::cuda::uploadConstant([[C]], 6);
// CHECK: [[FUSED]]<<<1, 256, 0, moert::cuda::stream()>>>([[A]], [[B]], [[C]]_device, {{v[0-9]+}});
// CHECK-NEXT: moert::cuda::checkLaunch("[[FUSED]]");
// CHECK: moert::cuda::copy(outputs[0], {{v[0-9]+}}, 24);
// CHECK: });
// CHECK-NEXT: }
func.func @chain(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %c = arith.constant dense<[[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]> : tensor<2x3xf32>
  %s = moe.swiglu %a, %b : tensor<2x3xf32>
  %m = moe.mul %s, %a : tensor<2x3xf32>
  %r = moe.add %m, %c : tensor<2x3xf32>
  return %r : tensor<2x3xf32>
}

// The experts' grouped GEMMs read the row counts that dispatch writes, in
// a device array made once; a buffer from elsewhere has full counts.
// CHECK-LABEL: void function_experts(
// CHECK: static int64_t *const [[COUNTS:counts[0-9]+]] = moert::cuda::deviceRowCounts(4, -1);
// CHECK-NEXT: dispatch({{v[0-9]+}}, {{v[0-9]+}}, nullptr, 6, 3, 2, 4, 3, [[BUF:v[0-9]+]], {{v[0-9]+}}, [[COUNTS]], {{v[0-9]+}});
// CHECK: expertFfn([[BUF]], {{v[0-9]+}}, {{v[0-9]+}}, {{v[0-9]+}}, [[COUNTS]], 4, 3, 3, 5, {{v[0-9]+}}, {{v[0-9]+}});
// CHECK: static int64_t *const [[FULL:full_counts[0-9]+]] = moert::cuda::deviceRowCounts(4, 3);
// CHECK-NEXT: expertFfn({{v[0-9]+}}, {{v[0-9]+}}, {{v[0-9]+}}, {{v[0-9]+}}, [[FULL]], 4, 3, 3, 5, {{v[0-9]+}}, {{v[0-9]+}});
func.func @experts(%x: tensor<6x3xf32>, %i: tensor<6x2xi32>, %wg: tensor<4x5x3xf32>, %wu: tensor<4x5x3xf32>, %wd: tensor<4x3x5xf32>, %other: tensor<4x3x3xf32>) -> (tensor<4x3x3xf32>, tensor<4x3x3xf32>) {
  %buf, %slots, %dropped = moe.dispatch %x, %i capacity_factor = 1.0 : tensor<6x3xf32>, tensor<6x2xi32> -> tensor<4x3x3xf32>, tensor<6x2xi32>, tensor<i64>
  %y, %proj = moe.expert_ffn %buf, %wg, %wu, %wd : tensor<4x3x3xf32>, tensor<4x5x3xf32>, tensor<4x3x5xf32> -> tensor<4x2x3x5xf32>
  %y2, %proj2 = moe.expert_ffn %other, %wg, %wu, %wd : tensor<4x3x3xf32>, tensor<4x5x3xf32>, tensor<4x3x5xf32> -> tensor<4x2x3x5xf32>
  return %y, %y2 : tensor<4x3x3xf32>, tensor<4x3x3xf32>
}

// 0-d inputs are device pointers; a 0-d result is the last argument; a
// divisor is a device pointer or a constant alike.
// CHECK-LABEL: void function_losses(
// CHECK: crossEntropy([[LOGITS:v[0-9]+]], [[T:v[0-9]+]], 6, 5, CountedTargets{false, 0}, 6.0, [[LOSS:v[0-9]+]]);
// CHECK: countTargets([[T]], 6, CountedTargets{true, -100}, [[N:v[0-9]+]]);
// CHECK: crossEntropy([[LOGITS]], [[T]], 6, 5, CountedTargets{true, -100}, [[N]], {{v[0-9]+}});
// CHECK: crossEntropyGrad([[LOGITS]], [[T]], 6, 5, CountedTargets{false, 0}, 6.0, [[LOSS]], {{v[0-9]+}});
// CHECK: const moe_model model = {MOE_ABI_VERSION, "demo", "", "", "", 256, 1, 1, 1, 0, 0, globals, 3, functions, &moe_cuda_target};
func.func @losses(%logits: tensor<6x5xf32>, %t: tensor<6xi32>) -> (tensor<f32>, tensor<f32>, tensor<6x5xf32>) {
  %loss = moe.cross_entropy %logits, %t : tensor<6x5xf32>, tensor<6xi32> -> tensor<f32>
  %n = moe.count_targets %t {ignore_index = -100 : i64} : tensor<6xi32> -> tensor<f32>
  %masked = moe.cross_entropy %logits, %t divisor %n {ignore_index = -100 : i64} : tensor<6x5xf32>, tensor<6xi32>, tensor<f32> -> tensor<f32>
  %g = moe.cross_entropy_grad %logits, %t, %loss : tensor<6x5xf32>, tensor<6xi32>, tensor<f32>
  return %loss, %masked, %g : tensor<f32>, tensor<f32>, tensor<6x5xf32>
}

// A module planned for the CPU is not emitted as CUDA.
// CPU-PLAN: error: the module is for target 'cpu', not 'cuda'
