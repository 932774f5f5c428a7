// RUN: moe-opt %s -split-input-file -verify-diagnostics --moe-distributed-optimizer

// moe-distributed-optimizer refuses steps that are not what moe-autodiff
// and moe-optimizer make, naming the update.

shard.grid @ranks(shape = 2)
ml_program.global private mutable @w(dense<1.0> : tensor<4xf32>) : tensor<4xf32> {moe.trainable}
ml_program.global private mutable @w.exp_avg(dense<0.0> : tensor<4xf32>) : tensor<4xf32>
ml_program.global private mutable @w.exp_avg_sq(dense<0.0> : tensor<4xf32>) : tensor<4xf32>
func.func @train_step(%g: tensor<4xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>) attributes {moe.spmd_grid = @ranks} {
  %p = ml_program.global_load @w : tensor<4xf32>
  %m = ml_program.global_load @w.exp_avg : tensor<4xf32>
  %v = ml_program.global_load @w.exp_avg_sq : tensor<4xf32>
  // expected-error @+1 {{moe-distributed-optimizer: the gradient of @w is not the sum over its copies that moe-autodiff makes}}
  %0:3 = moe.adamw %p, %g, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 1.0 : tensor<4xf32>, tensor<f32>, tensor<i64>
  return
}

// -----

// A maximum over the copies is no sum.
shard.grid @ranks(shape = 2)
ml_program.global private mutable @w(dense<1.0> : tensor<4xf32>) : tensor<4xf32> {moe.trainable}
ml_program.global private mutable @w.exp_avg(dense<0.0> : tensor<4xf32>) : tensor<4xf32>
ml_program.global private mutable @w.exp_avg_sq(dense<0.0> : tensor<4xf32>) : tensor<4xf32>
func.func @train_step(%g: tensor<4xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>) attributes {moe.spmd_grid = @ranks} {
  %p = ml_program.global_load @w : tensor<4xf32>
  %m = ml_program.global_load @w.exp_avg : tensor<4xf32>
  %v = ml_program.global_load @w.exp_avg_sq : tensor<4xf32>
  %max = shard.all_reduce %g on @ranks grid_axes = [0] reduction = max : tensor<4xf32> -> tensor<4xf32>
  // expected-error @+1 {{moe-distributed-optimizer: the gradient of @w is not the sum over its copies that moe-autodiff makes}}
  %0:3 = moe.adamw %p, %max, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 1.0 : tensor<4xf32>, tensor<f32>, tensor<i64>
  return
}

// -----

shard.grid @ranks(shape = 2)
ml_program.global private mutable @w(dense<1.0> : tensor<4xf32>) : tensor<4xf32> {moe.trainable}
ml_program.global private mutable @w.exp_avg_sq(dense<0.0> : tensor<4xf32>) : tensor<4xf32>
func.func @train_step(%g: tensor<4xf32>, %m: tensor<4xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>) attributes {moe.spmd_grid = @ranks} {
  %p = ml_program.global_load @w : tensor<4xf32>
  %v = ml_program.global_load @w.exp_avg_sq : tensor<4xf32>
  %sum = shard.all_reduce %g on @ranks grid_axes = [0] : tensor<4xf32> -> tensor<4xf32>
  // expected-error @+1 {{moe-distributed-optimizer: a moment of @w is not a global of its type without a value}}
  %0:3 = moe.adamw %p, %sum, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 1.0 : tensor<4xf32>, tensor<f32>, tensor<i64>
  return
}

// -----

// A value would not fit the part; an initializer does.
shard.grid @ranks(shape = 2)
ml_program.global private mutable @w(dense<1.0> : tensor<4xf32>) : tensor<4xf32> {moe.trainable}
ml_program.global private mutable @w.exp_avg(dense<0.0> : tensor<4xf32>) : tensor<4xf32>
ml_program.global private mutable @w.exp_avg_sq(dense<0.0> : tensor<4xf32>) : tensor<4xf32>
func.func @train_step(%g: tensor<4xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>) attributes {moe.spmd_grid = @ranks} {
  %p = ml_program.global_load @w : tensor<4xf32>
  %m = ml_program.global_load @w.exp_avg : tensor<4xf32>
  %v = ml_program.global_load @w.exp_avg_sq : tensor<4xf32>
  %sum = shard.all_reduce %g on @ranks grid_axes = [0] : tensor<4xf32> -> tensor<4xf32>
  // expected-error @+1 {{moe-distributed-optimizer: a moment of @w is not a global of its type without a value}}
  %0:3 = moe.adamw %p, %sum, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 1.0 : tensor<4xf32>, tensor<f32>, tensor<i64>
  return
}

// -----

shard.grid @ranks(shape = 2)
func.func @train_step(%p: tensor<4xf32>, %g: tensor<4xf32>, %m: tensor<4xf32>, %v: tensor<4xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>) attributes {moe.spmd_grid = @ranks} {
  // expected-error @+1 {{moe-distributed-optimizer: this update's parameter is not a global's value}}
  %0:3 = moe.adamw %p, %g, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 1.0 : tensor<4xf32>, tensor<f32>, tensor<i64>
  return
}

// -----

// Each rank's part of every gradient makes one norm, which every update
// must clip by.
shard.grid @ranks(shape = 2)
ml_program.global private mutable @w(dense<1.0> : tensor<4xf32>) : tensor<4xf32> {moe.trainable}
ml_program.global private mutable @w.exp_avg(dense<0.0> : tensor<4xf32>) : tensor<4xf32>
ml_program.global private mutable @w.exp_avg_sq(dense<0.0> : tensor<4xf32>) : tensor<4xf32>
func.func @train_step(%g: tensor<4xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %other: tensor<f32>, %step: tensor<i64>) attributes {moe.spmd_grid = @ranks} {
  %p = ml_program.global_load @w : tensor<4xf32>
  %m = ml_program.global_load @w.exp_avg : tensor<4xf32>
  %v = ml_program.global_load @w.exp_avg_sq : tensor<4xf32>
  %sum = shard.all_reduce %g on @ranks grid_axes = [0] : tensor<4xf32> -> tensor<4xf32>
  %0:3 = moe.adamw %p, %sum, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 1.0 : tensor<4xf32>, tensor<f32>, tensor<i64>
  // expected-error @+1 {{moe-distributed-optimizer: the updates of a step must share one gradient norm}}
  %1:3 = moe.adamw %p, %sum, %m, %v, %lr, %other, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 1.0 : tensor<4xf32>, tensor<f32>, tensor<i64>
  return
}

// -----

// A replicated parameter has a copy on every rank of a 2 x 2 grid: its
// gradient's sum over one axis only is not the sum over its copies, which
// a reduce-scatter over both axes would make of it.
shard.grid @ranks(shape = 2x2)
ml_program.global private mutable @w(dense<1.0> : tensor<4xf32>) : tensor<4xf32> {moe.trainable}
ml_program.global private mutable @w.exp_avg : tensor<4xf32> {moe.init = #moe.init<constant, 0.0>}
ml_program.global private mutable @w.exp_avg_sq : tensor<4xf32> {moe.init = #moe.init<constant, 0.0>}
func.func @train_step(%g: tensor<4xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>) attributes {moe.spmd_grid = @ranks} {
  %p = ml_program.global_load @w : tensor<4xf32>
  %m = ml_program.global_load @w.exp_avg : tensor<4xf32>
  %v = ml_program.global_load @w.exp_avg_sq : tensor<4xf32>
  %sum = shard.all_reduce %g on @ranks grid_axes = [1] : tensor<4xf32> -> tensor<4xf32>
  // expected-error @+1 {{moe-distributed-optimizer: the gradient of @w is not the sum over its copies that moe-autodiff makes}}
  %0:3 = moe.adamw %p, %sum, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 1.0 : tensor<4xf32>, tensor<f32>, tensor<i64>
  return
}
