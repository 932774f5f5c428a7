// RUN: moe-opt --moe-model-stats %s -o /dev/null | FileCheck %s
// RUN: moe-opt --moe-model-stats %s | FileCheck %s --check-prefix=UNCHANGED
// A gradient function repeats the forward ops; the counts stay the same.
// RUN: moe-opt --moe-autodiff=cotangent-argument=true --moe-model-stats %s -o /dev/null | FileCheck %s
// One rank's SPMD program holds its parts of the model: refused.
// RUN: moe-import %moe_src/examples/tiny-moe/config.json --batch-size 2 --seq-len 8 | not moe-opt --moe-expert-parallel=ranks=2 --moe-model-stats -o /dev/null 2>&1 | FileCheck %s --check-prefix=SPMD
// SPMD: error: moe-model-stats counts a whole model: run it before moe-expert-parallel, not on one rank's SPMD program

// Trainable: 8 (embedding) + 3 * 24 (experts) = 80; experts 72, of which a
// token uses top_k / experts = 1/4: active = 80 - 72 * 3/4 = 26. The
// coefficient is state, not a parameter.
// CHECK:      moe-model-stats
// CHECK-NEXT:   moe layers: 1, experts: 4, top_k: 1
// CHECK-NEXT:   parameters: 80
// CHECK-NEXT:   expert parameters: 72
// CHECK-NEXT:   active parameters per token: 26
// CHECK-NEXT:   state globals: 1 (1 elements)

// UNCHANGED: ml_program.global private mutable @emb
// UNCHANGED: moe.expert_ffn

ml_program.global private mutable @emb : tensor<4x2xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}
ml_program.global private mutable @w1 : tensor<4x3x2xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}
ml_program.global private mutable @w3 : tensor<4x3x2xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}
ml_program.global private mutable @w2 : tensor<4x2x3xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}
ml_program.global private mutable @alpha : tensor<f32> {moe.init = #moe.init<constant, 0.01>}

func.func @forward(%x: tensor<2x2xf32>, %i: tensor<2x1xi32>) -> tensor<4x1x2xf32> {
  %w1 = ml_program.global_load @w1 : tensor<4x3x2xf32>
  %w3 = ml_program.global_load @w3 : tensor<4x3x2xf32>
  %w2 = ml_program.global_load @w2 : tensor<4x2x3xf32>
  %buf, %slots, %dropped = moe.dispatch %x, %i capacity_factor = 1.0 : tensor<2x2xf32>, tensor<2x1xi32> -> tensor<4x1x2xf32>, tensor<2x1xi32>, tensor<i64>
  %y, %y_proj = moe.expert_ffn %buf, %w1, %w3, %w2 : tensor<4x1x2xf32>, tensor<4x3x2xf32>, tensor<4x2x3xf32> -> tensor<4x2x1x3xf32>
  return %y : tensor<4x1x2xf32>
}
