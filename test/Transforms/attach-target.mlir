// The target's facts are one attribute that the planner and the emitter
// both read: a larger alignment moves arena and state offsets alike.
// RUN: moe-opt %s --moe-attach-target | FileCheck %s --check-prefix=DEFAULT
// RUN: moe-opt %s --moe-plan-memory=report=false | FileCheck %s --check-prefix=DEFAULT
// RUN: moe-opt %s --moe-attach-target=alignment=256 --moe-plan-memory=report=false | FileCheck %s --check-prefix=PLAN
// RUN: moe-opt %s --moe-attach-target=alignment=256 --moe-plan-memory=report=false | moe-translate --emit=cpp | FileCheck %s --check-prefix=CPP
// RUN: not moe-opt %s --moe-attach-target=target=tpu 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not moe-opt %s --moe-attach-target=alignment=48 2>&1 | FileCheck %s --check-prefix=ALIGN
// RUN: moe-opt %s --moe-attach-target=target=cuda | FileCheck %s --check-prefix=CUDA
// RUN: not moe-opt %s --moe-attach-target="target=cuda alignment=64" 2>&1 | FileCheck %s --check-prefix=CUDA-ALIGN
// RUN: moe-opt %s --moe-plan-memory=report=false --moe-attach-target | FileCheck %s --check-prefix=DEFAULT
// RUN: not moe-opt %s --moe-plan-memory=report=false --moe-attach-target=target=cuda 2>&1 | FileCheck %s --check-prefix=PLANNED

// DEFAULT: module attributes {moe.target = #moe.target<"cpu", alignment = 64>}

// Two live [4, 4] f32 values of 64 bytes each, 256 bytes apart.
// PLAN: module attributes {moe.target = #moe.target<"cpu", alignment = 256>}
// PLAN: moe.add {{.*}}{moe.arena_offsets = array<i64: 0>}
// PLAN: moe.mul {{.*}}{moe.arena_offsets = array<i64: 256>}

// The second global starts at 256 in the state region.
// CPP: {{[{][{]}}"b", 0, 2, shape{{[0-9]+}}}, 256, 64, 1, MOE_INIT_NORMAL, 0.02, 0, nullptr, 0, 0, 0, 0},
// CPP: const moe_model model = {MOE_ABI_VERSION, "model", "", "", "", 256, 1, 1, 1, 512, 2, globals, 1, functions, &moe_cpu_target};

// UNKNOWN: error: moe-attach-target: unknown target 'tpu' (known: cpu, cuda)
// ALIGN: error: moe-attach-target: target 'cpu' needs an alignment that is a power of two and at least 64, got 48
// The CUDA target's buffers are 256-byte aligned, as cudaMalloc's.
// CUDA: module attributes {moe.target = #moe.target<"cuda", alignment = 256>}
// CUDA-ALIGN: error: moe-attach-target: target 'cuda' needs an alignment that is a power of two and at least 256, got 64
// A plan is for its target: the same target again keeps it, another is
// refused.
// PLANNED: error: moe-attach-target: the module is planned for #moe.target<"cpu", alignment = 64>: plan the IR from before moe-plan-memory for #moe.target<"cuda", alignment = 256> instead

ml_program.global private mutable @a : tensor<4x4xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}
ml_program.global private mutable @b : tensor<4x4xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}

func.func @step(%x: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %a = ml_program.global_load @a : tensor<4x4xf32>
  %b = ml_program.global_load @b : tensor<4x4xf32>
  %s = moe.add %x, %a : tensor<4x4xf32>
  %p = moe.mul %s, %b : tensor<4x4xf32>
  %r = moe.add %p, %s : tensor<4x4xf32>
  return %r : tensor<4x4xf32>
}
