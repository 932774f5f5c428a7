// A global that the importer marks moe.config_constant (a fixed aux-loss
// coefficient) and that no function stores holds a value of the config:
// the ABI marks it, last in its descriptor, so that checkpoints leave it
// out and a resumed run takes its initializer's value. A stored one (an
// adaptive coefficient), an unmarked one (a frozen buffer in IR by hand),
// parameters and accumulators are training state.
// RUN: moe-translate --emit=cpp %s | FileCheck %s
// CHECK: const moe_global globals[] = {
// CHECK-NEXT: {{[{][{]}}"w", {{.*}}, 1, MOE_INIT_NORMAL, 0.02, 0, nullptr, 0, 0, 0, 0},
// CHECK-NEXT: {{[{][{]}}"layer.aux_loss_coeff", {{.*}}, 0, MOE_INIT_CONSTANT, 0.01, 0, nullptr, 0, 0, 0, 1},
// CHECK-NEXT: {{[{][{]}}"layer.adaptive_coeff", {{.*}}, 0, MOE_INIT_CONSTANT, 0.001, 0, nullptr, 0, 0, 0, 0},
// CHECK-NEXT: {{[{][{]}}"layer.sum", {{.*}}, 0, MOE_INIT_CONSTANT, 0.0, 0, nullptr, 1, 0, 0, 0},
// CHECK-NEXT: {{[{][{]}}"frozen", {{.*}}, 0, MOE_INIT_CONSTANT, 2.0, 0, nullptr, 0, 0, 0, 0},
// CHECK-NEXT: };
ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}
ml_program.global private mutable @layer.aux_loss_coeff : tensor<f32> {moe.config_constant, moe.init = #moe.init<constant, 0.01>}
ml_program.global private mutable @layer.adaptive_coeff : tensor<f32> {moe.config_constant, moe.init = #moe.init<constant, 0.001>}
ml_program.global private mutable @layer.sum : tensor<f32> {moe.init = #moe.init<constant, 0.0>, moe.transient}
ml_program.global private mutable @frozen : tensor<f32> {moe.init = #moe.init<constant, 2.0>}

func.func @step(%a: tensor<f32> {moe.input = "a"}) -> (tensor<f32> {moe.output = "r"}) {
  %c = ml_program.global_load @layer.aux_loss_coeff : tensor<f32>
  %d = ml_program.global_load @layer.adaptive_coeff : tensor<f32>
  %f = ml_program.global_load @frozen : tensor<f32>
  %s = moe.mul %a, %c : tensor<f32>
  %r = moe.mul %s, %f : tensor<f32>
  %n = moe.add %d, %a : tensor<f32>
  ml_program.global_store @layer.adaptive_coeff = %n : tensor<f32>
  return %r : tensor<f32>
}
