// RUN: moe-opt %s --moe-plan-memory=report=false | moe-translate --emit=cpp --model-name demo | FileCheck %s
// RUN: moe-translate --emit=cpp %s | FileCheck %s --check-prefix=AUTOPLAN
// RUN: not moe-translate --emit=wasm %s 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: moe-translate --emit=cpp --profile %s | FileCheck %s --check-prefix=PROFILE

// The state region holds the globals in order, 64-byte aligned; functions
// call the CPU kernels on state, arena and input pointers.
// CHECK: #include "moert/CpuKernels.h"
// CHECK: #include "moert/ModelAbi.h"
// Compiled against another runtime's headers, the code says so first.
// CHECK: static_assert(MOE_ABI_VERSION == [[ABI:[0-9]+]], "generated for model ABI [[ABI]], not this runtime's: compile it with this runtime's moe-compile");
// CHECK: const int64_t [[IDS_SHAPE:shape[0-9]+]][] = {2, 3};
// CHECK-LABEL: void function_loss_fn(
// CHECK: int32_t *[[IDS:v[0-9]+]] = const_cast<int32_t *>(static_cast<const int32_t *>(inputs[0]));
// CHECK: float *[[TABLE:v[0-9]+]] = reinterpret_cast<float *>(state + 0);
// CHECK: float *[[H:v[0-9]+]] = reinterpret_cast<float *>(arena + 0);
// CHECK: embedding([[TABLE]], 5, 4, [[IDS]], 6, [[H]]);
// CHECK: float *[[NORM:v[0-9]+]] = reinterpret_cast<float *>(state + 128);
// CHECK: float *[[N:v[0-9]+]] = reinterpret_cast<float *>(arena + 128);
// CHECK: rmsNorm([[H]], [[NORM]], 6, 4, 1.0000000000000001e-05, [[N]]);
// The reshape is the same pointer.
// CHECK-NOT: reinterpret_cast
// CHECK: float *[[LOGITS:v[0-9]+]] = reinterpret_cast<float *>(arena + 0);
// CHECK: linear([[N]], [[TABLE]], nullptr, 6, 4, 5, [[LOGITS]]);
// CHECK: float *[[LOSS:v[0-9]+]] = reinterpret_cast<float *>(arena + 128);
// CHECK: *[[LOSS]] = crossEntropy([[LOGITS]], {{v[0-9]+}}, 6, 5, CountedTargets{false, 0}, 6.0);
// CHECK: std::memcpy(outputs[0], [[LOSS]], 4);
// CHECK: const moe_global globals[] = {
// CHECK-NEXT: {{[{][{]}}"embed", 0, 2, shape{{[0-9]+}}}, 0, 80, 1, MOE_INIT_NORMAL, 0.02, 0, nullptr, 0, 0, 0, 0},
// CHECK-NEXT: {{[{][{]}}"norm", 0, 1, shape{{[0-9]+}}}, 128, 16, 1, MOE_INIT_CONSTANT, 1.0, 0, "copy norm", 0, 0, 0, 0},
// The function's model FLOPs a call: the head's 6 x 4 x 5 product.
// CHECK: {"loss_fn", 2, inputs{{[0-9]+}}, 1, outputs{{[0-9]+}}, 256, 240.0, function_loss_fn, 0, nullptr},
// CHECK: const moe_model model = {MOE_ABI_VERSION, "demo", "", "", "", 64, 1, 1, 1, 192, 2, globals, 1, functions, &moe_cpu_target};
// CHECK: extern "C" const moe_model *moe_get_model(void) { return &model; }

// AUTOPLAN: {"loss_fn", 2, inputs{{[0-9]+}}, 1, outputs{{[0-9]+}}, 256, 240.0, function_loss_fn, 0, nullptr},
// --profile times each kernel call and copy in a site of its function,
// priced by the cost model: the linear's 2 * 6 * 5 * 4 flops and the bytes
// of its operands and result.
// PROFILE: #include "moert/Profile.h"
// PROFILE: moe_profile_site [[SITES:profile_sites[0-9]+]][] = {
// PROFILE-NEXT: {"embedding", "{{.*}}emit-cpp.mlir:[[#@LINE+24]]", {{.*}}, 0, 0},
// PROFILE-NEXT: {"rmsNorm", "{{.*}}emit-cpp.mlir:[[#@LINE+25]]", {{.*}}, 0, 0},
// PROFILE-NEXT: {"linear", "{{.*}}emit-cpp.mlir:[[#@LINE+26]]", 240.0, 296.0, 0, 0},
// PROFILE-NEXT: {"crossEntropy", "{{.*}}emit-cpp.mlir:[[#@LINE+26]]", {{.*}}, 0, 0},
// PROFILE-NEXT: {"copy", "{{.*}}emit-cpp.mlir:[[#@LINE+26]]", 0.0, 8.0, 0, 0}};
// PROFILE-LABEL: void function_loss_fn(
// PROFILE: float *{{v[0-9]+}} = reinterpret_cast<float *>(arena + 0);
// PROFILE-NEXT: {
// PROFILE-NEXT: moert::ProfileScope profile([[SITES]][0]);
// PROFILE-NEXT: embedding(
// PROFILE-NEXT: }
// PROFILE: moert::ProfileScope profile([[SITES]][2]);
// PROFILE-NEXT: linear(
// PROFILE: moert::ProfileScope profile([[SITES]][4]);
// PROFILE-NEXT: std::memcpy(outputs[0]
// PROFILE: {"loss_fn", 2, inputs{{[0-9]+}}, 1, outputs{{[0-9]+}}, 256, 240.0, function_loss_fn, 5, [[SITES]]},

// TARGET: moe-translate: error: for the --emit option: unknown output format 'wasm' (registered: cpp, cuda)

ml_program.global private mutable @embed : tensor<5x4xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}
ml_program.global private mutable @norm : tensor<4xf32> {moe.init = #moe.init<constant, 1.0>, moe.trainable, moe.upcycle = "copy norm"}

func.func @loss_fn(%ids: tensor<2x3xi32> {moe.input = "input_ids"}, %labels: tensor<6xi32> {moe.input = "labels"}) -> (tensor<f32> {moe.output = "loss"}) {
  %table = ml_program.global_load @embed : tensor<5x4xf32>
  %h = moe.embedding %table[%ids] : tensor<5x4xf32>, tensor<2x3xi32> -> tensor<2x3x4xf32>
  %norm = ml_program.global_load @norm : tensor<4xf32>
  %n = moe.rms_norm %h, %norm eps = 1.0e-05 : tensor<2x3x4xf32>, tensor<4xf32>
  %flat = tensor.collapse_shape %n [[0, 1], [2]] : tensor<2x3x4xf32> into tensor<6x4xf32>
  %logits = moe.linear %flat, %table : tensor<6x4xf32>, tensor<5x4xf32> -> tensor<6x5xf32>
  %loss = moe.cross_entropy %logits, %labels : tensor<6x5xf32>, tensor<6xi32> -> tensor<f32>
  return %loss : tensor<f32>
}

// A hand-edited plan whose offsets leave the arena, or break the buffers'
// alignment, is refused, not emitted as out-of-bounds or misaligned
// accesses.
// RUN: moe-opt %s --moe-plan-memory=report=false | sed 's/moe.arena_offsets = array<i64: 128>/moe.arena_offsets = array<i64: 999999999999>/' | not moe-translate --emit=cpp 2>&1 | FileCheck %s --check-prefix=FAR
// FAR: error: result #0 (96 bytes) at arena offset 999999999999 lies outside the arena of 256 bytes
// RUN: moe-opt %s --moe-plan-memory=report=false | sed 's/moe.arena_offsets = array<i64: 128>/moe.arena_offsets = array<i64: -64>/' | not moe-translate --emit=cpp 2>&1 | FileCheck %s --check-prefix=NEGATIVE
// NEGATIVE: error: result #0 (96 bytes) at arena offset -64 lies outside the arena of 256 bytes
// RUN: moe-opt %s --moe-plan-memory=report=false | sed 's/moe.arena_offsets = array<i64: 128>/moe.arena_offsets = array<i64: 3>/' | not moe-translate --emit=cpp 2>&1 | FileCheck %s --check-prefix=MISALIGNED
// MISALIGNED: error: result #0 at arena offset 3 is not aligned to the target's 64 bytes
