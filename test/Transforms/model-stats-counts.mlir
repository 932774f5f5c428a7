// RUN: moe-opt --moe-model-stats --split-input-file %s -o /dev/null | FileCheck %s

// Counts of a million or more carry their millions, of a billion or more
// their billions, each from its threshold itself on: 1000 * 1000 is
// 1.00M, 999 * 1001 = 999999 is plain, 1000^3 is 1.00B.
// CHECK-LABEL: moe-model-stats
// CHECK:         parameters: 1000000 (1.00M){{$}}
// CHECK-NEXT:    expert parameters: 0{{$}}
// CHECK-NEXT:    active parameters per token: 1000000 (1.00M){{$}}
ml_program.global private mutable @a : tensor<1000x1000xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}

// -----

// CHECK-LABEL: moe-model-stats
// CHECK:         parameters: 999999{{$}}
ml_program.global private mutable @a : tensor<999x1001xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}

// -----

// CHECK-LABEL: moe-model-stats
// CHECK:         parameters: 1000000000 (1.00B){{$}}
ml_program.global private mutable @a : tensor<1000x1000x1000xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}

// -----

// An expert_ffn whose tokens no dispatch routes has no top_k to count by:
// it is no MoE layer, and its 3 * 24 weights count as dense ones.
// CHECK-LABEL: moe-model-stats
// CHECK-NEXT:    moe layers: 0, experts: 0, top_k: 0
// CHECK-NEXT:    parameters: 72
// CHECK-NEXT:    expert parameters: 0
// CHECK-NEXT:    active parameters per token: 72
ml_program.global private mutable @w1 : tensor<4x3x2xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}
ml_program.global private mutable @w3 : tensor<4x3x2xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}
ml_program.global private mutable @w2 : tensor<4x2x3xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}

func.func @forward(%buf: tensor<4x1x2xf32>) -> tensor<4x1x2xf32> {
  %w1 = ml_program.global_load @w1 : tensor<4x3x2xf32>
  %w3 = ml_program.global_load @w3 : tensor<4x3x2xf32>
  %w2 = ml_program.global_load @w2 : tensor<4x2x3xf32>
  %y, %y_proj = moe.expert_ffn %buf, %w1, %w3, %w2 : tensor<4x1x2xf32>, tensor<4x3x2xf32>, tensor<4x2x3xf32> -> tensor<4x2x1x3xf32>
  return %y : tensor<4x1x2xf32>
}
