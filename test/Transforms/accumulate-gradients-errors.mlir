// RUN: moe-opt %s -split-input-file --moe-accumulate-gradients=micro-batches=2 -verify-diagnostics

// An accumulator's name is taken.
ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
// expected-error @+1 {{moe-accumulate-gradients: @w.grad_accum already exists}}
ml_program.global private mutable @w.grad_accum : tensor<4xf32> {moe.init = #moe.init<constant, 0.0>}
ml_program.global private mutable @m : tensor<4xf32> {moe.init = #moe.init<constant, 0.0>}
ml_program.global private mutable @v : tensor<4xf32> {moe.init = #moe.init<constant, 0.0>}
func.func @train_step(%g: tensor<4xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>) {
  %w = ml_program.global_load @w : tensor<4xf32>
  %m = ml_program.global_load @m : tensor<4xf32>
  %v = ml_program.global_load @v : tensor<4xf32>
  %p, %m1, %v1 = moe.adamw %w, %g, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 1.0 : tensor<4xf32>, tensor<f32>, tensor<i64>
  ml_program.global_store @w = %p : tensor<4xf32>
  ml_program.global_store @m = %m1 : tensor<4xf32>
  ml_program.global_store @v = %v1 : tensor<4xf32>
  return
}

// -----

// A parameter that is not a global's value has no accumulator to serve.
ml_program.global private mutable @m : tensor<4xf32> {moe.init = #moe.init<constant, 0.0>}
ml_program.global private mutable @v : tensor<4xf32> {moe.init = #moe.init<constant, 0.0>}
func.func @train_step(%w: tensor<4xf32>, %g: tensor<4xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>) {
  %m = ml_program.global_load @m : tensor<4xf32>
  %v = ml_program.global_load @v : tensor<4xf32>
  // expected-error @+1 {{moe-accumulate-gradients: this update's state is not a global's value}}
  %p, %m1, %v1 = moe.adamw %w, %g, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 1.0 : tensor<4xf32>, tensor<f32>, tensor<i64>
  ml_program.global_store @m = %m1 : tensor<4xf32>
  ml_program.global_store @v = %v1 : tensor<4xf32>
  return
}

// -----

// A gradient passed in is not one that a micro-batch computes.
ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
ml_program.global private mutable @m : tensor<4xf32> {moe.init = #moe.init<constant, 0.0>}
ml_program.global private mutable @v : tensor<4xf32> {moe.init = #moe.init<constant, 0.0>}
func.func @train_step(%g: tensor<4xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>) {
  %w = ml_program.global_load @w : tensor<4xf32>
  %m = ml_program.global_load @m : tensor<4xf32>
  %v = ml_program.global_load @v : tensor<4xf32>
  // expected-error @+1 {{moe-accumulate-gradients: this update's gradient is an argument of the step, not computed from its micro-batch (as moe-autodiff computes it)}}
  %p, %m1, %v1 = moe.adamw %w, %g, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 1.0 : tensor<4xf32>, tensor<f32>, tensor<i64>
  ml_program.global_store @w = %p : tensor<4xf32>
  ml_program.global_store @m = %m1 : tensor<4xf32>
  ml_program.global_store @v = %v1 : tensor<4xf32>
  return
}
