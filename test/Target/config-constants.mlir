// A global that is neither trainable nor transient and that no function
// stores holds a value of the config (a fixed aux-loss coefficient): the
// ABI marks it, last in its descriptor, so that a resumed run takes its
// initializer's value over a checkpoint's. A stored one (moe-adaptive-aux's
// coefficient, an optimizer's step) is training state, and so are
// parameters and accumulators.
// RUN: moe-translate --emit=cpp %s | FileCheck %s
// CHECK: const moe_global globals[] = {
// CHECK-NEXT: {{[{][{]}}"w", {{.*}}, 1, MOE_INIT_NORMAL, 0.02, 0, nullptr, 0, 0, 0, 0},
// CHECK-NEXT: {{[{][{]}}"layer.aux_loss_coeff", {{.*}}, 0, MOE_INIT_CONSTANT, 0.01, 0, nullptr, 0, 0, 0, 1},
// CHECK-NEXT: {{[{][{]}}"layer.adaptive_coeff", {{.*}}, 0, MOE_INIT_CONSTANT, 0.001, 0, nullptr, 0, 0, 0, 0},
// CHECK-NEXT: {{[{][{]}}"layer.sum", {{.*}}, 0, MOE_INIT_CONSTANT, 0.0, 0, nullptr, 1, 0, 0, 0},
// CHECK-NEXT: };
ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}
ml_program.global private mutable @layer.aux_loss_coeff : tensor<f32> {moe.init = #moe.init<constant, 0.01>}
ml_program.global private mutable @layer.adaptive_coeff : tensor<f32> {moe.init = #moe.init<constant, 0.001>}
ml_program.global private mutable @layer.sum : tensor<f32> {moe.init = #moe.init<constant, 0.0>, moe.transient}

func.func @step(%a: tensor<f32> {moe.input = "a"}) -> (tensor<f32> {moe.output = "r"}) {
  %c = ml_program.global_load @layer.aux_loss_coeff : tensor<f32>
  %d = ml_program.global_load @layer.adaptive_coeff : tensor<f32>
  %r = moe.mul %a, %c : tensor<f32>
  %n = moe.add %d, %a : tensor<f32>
  ml_program.global_store @layer.adaptive_coeff = %n : tensor<f32>
  return %r : tensor<f32>
}
