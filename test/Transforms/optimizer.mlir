// RUN: moe-opt %s --moe-autodiff --moe-optimizer="lr=0.01 min-lr=0.001 warmup-steps=10 decay-steps=100 weight-decay=0.1 max-grad-norm=0.5 no-decay=embed" | FileCheck %s
// RUN: not moe-opt %s --moe-autodiff --moe-optimizer --moe-optimizer 2>&1 | FileCheck %s --check-prefix=TWICE
// RUN: not moe-opt %s --moe-optimizer 2>&1 | FileCheck %s --check-prefix=NOSTEP
// RUN: moe-opt %s --moe-autodiff --moe-optimizer="weight-decay=0.1 no-decay=mbe" | FileCheck %s --check-prefix=SUBSTRING
// RUN: moe-opt %s --moe-autodiff --moe-optimizer="lr-decay=linear" | FileCheck %s --check-prefix=LINEAR
// RUN: moe-opt %s --moe-autodiff --moe-optimizer="lr-decay=constant" | moe-opt | FileCheck %s --check-prefix=CONSTANT
// RUN: not moe-opt %s --moe-autodiff --moe-optimizer="lr-decay=step" 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not moe-opt %s --moe-autodiff --moe-optimizer="decay-steps=0" 2>&1 | FileCheck %s --strict-whitespace --check-prefix=SCHEDULE
// RUN: not moe-opt %s --moe-autodiff --moe-optimizer="beta2=1" 2>&1 | FileCheck %s --check-prefix=BETA

// The optimizer state: a step counter and two moments per parameter, all
// zero-initialized training state (no moe.trainable).
// CHECK-DAG: ml_program.global private mutable @optimizer.step : tensor<i64> {moe.init = #moe.init<constant, 0.000000e+00>}
// CHECK-DAG: ml_program.global private mutable @embed.exp_avg : tensor<4x3xf32> {moe.init = #moe.init<constant, 0.000000e+00>}
// CHECK-DAG: ml_program.global private mutable @embed.exp_avg_sq : tensor<4x3xf32> {moe.init = #moe.init<constant, 0.000000e+00>}
// CHECK-DAG: ml_program.global private mutable @proj.exp_avg : tensor<4x3xf32>
// CHECK-DAG: ml_program.global private mutable @norm.exp_avg_sq : tensor<3xf32>

// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: -> (tensor<f32> {moe.output = "loss"}, tensor<f32> {moe.output = "grad_norm"}, tensor<f32> {moe.output = "lr"})
// CHECK: %[[STEP:.*]] = ml_program.global_load @optimizer.step : tensor<i64>
// CHECK: %[[LR:.*]] = moe.lr_schedule %[[STEP]] max_lr = 1.000000e-02 min_lr = 1.000000e-03 warmup_steps = 10 decay_steps = 100 : tensor<i64> -> tensor<f32>
// CHECK: %[[NORM:.*]] = moe.global_norm %{{.*}}, %{{.*}}, %{{.*}} : tensor<4x3xf32>, tensor<4x3xf32>, tensor<3xf32> -> tensor<f32>
// Embeddings are excluded by no-decay=embed; the 2-D projection decays; the
// 1-D norm weight does not.
// CHECK: moe.adamw %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[LR]], %[[NORM]], %[[STEP]] beta1 = {{.*}} weight_decay = 0.000000e+00 max_grad_norm = 5.000000e-01 : tensor<4x3xf32>
// CHECK: ml_program.global_store @embed = %new_param
// CHECK: ml_program.global_store @embed.exp_avg =
// CHECK: ml_program.global_store @embed.exp_avg_sq =
// CHECK: moe.adamw {{.*}} weight_decay = 1.000000e-01 max_grad_norm = 5.000000e-01 : tensor<4x3xf32>
// CHECK: ml_program.global_store @proj =
// CHECK: moe.adamw {{.*}} weight_decay = 0.000000e+00 max_grad_norm = 5.000000e-01 : tensor<3xf32>
// CHECK: ml_program.global_store @norm =
// CHECK: %[[ONE:.*]] = arith.constant dense<1> : tensor<i64>
// CHECK: %[[NEXT:.*]] = arith.addi %[[STEP]], %[[ONE]] : tensor<i64>
// CHECK: ml_program.global_store @optimizer.step = %[[NEXT]]

// A no-decay pattern matches anywhere in a name, not only at its start
// (Hugging Face's model.embed_tokens.weight holds "embed" in its middle):
// "mbe" exempts @embed, and only @embed.
// SUBSTRING-LABEL: func.func @train_step(
// SUBSTRING: moe.adamw {{.*}} weight_decay = 0.000000e+00 {{.*}}: tensor<4x3xf32>
// SUBSTRING-NEXT: ml_program.global_store @embed =
// SUBSTRING: moe.adamw {{.*}} weight_decay = 1.000000e-01 {{.*}}: tensor<4x3xf32>
// SUBSTRING-NEXT: ml_program.global_store @proj =
// CHECK: return %{{.*}}, %[[NORM]], %[[LR]] : tensor<f32>, tensor<f32>, tensor<f32>

// TWICE: error: moe-optimizer: @optimizer.step already exists (was the optimizer applied twice?)
// NOSTEP: error: moe-optimizer: no function @train_step (run moe-autodiff first)

ml_program.global private mutable @embed : tensor<4x3xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}
ml_program.global private mutable @proj : tensor<4x3xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}
ml_program.global private mutable @norm : tensor<3xf32> {moe.init = #moe.init<constant, 1.0>, moe.trainable}

func.func @forward(%ids: tensor<2xi32>, %labels: tensor<2xi32>) -> (tensor<f32> {moe.output = "loss"}) {
  %table = ml_program.global_load @embed : tensor<4x3xf32>
  %h = moe.embedding %table[%ids] : tensor<4x3xf32>, tensor<2xi32> -> tensor<2x3xf32>
  %norm = ml_program.global_load @norm : tensor<3xf32>
  %n = moe.rms_norm %h, %norm eps = 1.0e-05 : tensor<2x3xf32>, tensor<3xf32>
  %proj = ml_program.global_load @proj : tensor<4x3xf32>
  %logits = moe.linear %n, %proj : tensor<2x3xf32>, tensor<4x3xf32> -> tensor<2x4xf32>
  %loss = moe.cross_entropy %logits, %labels : tensor<2x4xf32>, tensor<2xi32> -> tensor<f32>
  return %loss : tensor<f32>
}

// The decay after warmup is the schedule's attribute (cosine, the default,
// is not printed); it survives a round trip through the printer.
// LINEAR: moe.lr_schedule %{{.*}} decay = linear max_lr = 1.000000e-03
// CONSTANT: moe.lr_schedule %{{.*}} decay = constant max_lr = 1.000000e-03
// UNKNOWN: error: moe-optimizer: unknown lr-decay 'step' (known: cosine, linear, constant)
// Options the step's ops refuse are named as options.
// Every option once, one space apart (the empty no-decay list prints none).
// SCHEDULE: error: moe-optimizer: the options make an invalid step ('moe.lr_schedule' op attribute 'decay_steps' (0) must exceed 'warmup_steps' (100)); they were: beta1=9.000000e-01 beta2=9.500000e-01 decay-steps=0 eps=1.000000e-08 function=train_step lr=1.000000e-03 lr-decay=cosine max-grad-norm=1.000000e+00 min-lr=1.000000e-04 warmup-steps=100 weight-decay=1.000000e-01{{$}}
// BETA: error: moe-optimizer: the options make an invalid step ('moe.adamw' op attribute 'beta2' must be in [0, 1), got 1.000000e+00); they were: beta1=9.000000e-01 beta2=1.000000e+00
