// RUN: moe-opt %s -split-input-file -verify-diagnostics

// Verifier errors of the optimizer ops (MoeOptimizerOps.cpp).

// moe.lr_schedule: max_lr must not be negative.
func.func @lr_schedule_max_lr(%step: tensor<i64>) {
  // expected-error @+1 {{'moe.lr_schedule' op attribute 'max_lr' must be a non-negative finite number, got -1.000000e+00}}
  %lr = moe.lr_schedule %step max_lr = -1.0 min_lr = 0.0 warmup_steps = 10 decay_steps = 100 : tensor<i64> -> tensor<f32>
  return
}

// -----

// moe.lr_schedule: max_lr must be finite (0x7FF0000000000000 is +inf).
func.func @lr_schedule_max_lr_inf(%step: tensor<i64>) {
  // expected-error @+1 {{'moe.lr_schedule' op attribute 'max_lr' must be a non-negative finite number, got INF}}
  %lr = moe.lr_schedule %step max_lr = 0x7FF0000000000000 min_lr = 0.0 warmup_steps = 10 decay_steps = 100 : tensor<i64> -> tensor<f32>
  return
}

// -----

// moe.lr_schedule: min_lr must not be negative.
func.func @lr_schedule_min_lr(%step: tensor<i64>) {
  // expected-error @+1 {{'moe.lr_schedule' op attribute 'min_lr' must be a non-negative finite number, got -1.000000e-04}}
  %lr = moe.lr_schedule %step max_lr = 1.0e-03 min_lr = -1.0e-04 warmup_steps = 10 decay_steps = 100 : tensor<i64> -> tensor<f32>
  return
}

// -----

// moe.lr_schedule: the schedule decays from max_lr down to min_lr.
func.func @lr_schedule_min_above_max(%step: tensor<i64>) {
  // expected-error @+1 {{'moe.lr_schedule' op attribute 'min_lr' (1.000000e-02) must not exceed 'max_lr' (1.000000e-03)}}
  %lr = moe.lr_schedule %step max_lr = 1.0e-03 min_lr = 1.0e-02 warmup_steps = 10 decay_steps = 100 : tensor<i64> -> tensor<f32>
  return
}

// -----

// moe.lr_schedule: the decay ends after the warmup (equal is rejected).
func.func @lr_schedule_decay(%step: tensor<i64>) {
  // expected-error @+1 {{'moe.lr_schedule' op attribute 'decay_steps' (100) must exceed 'warmup_steps' (100)}}
  %lr = moe.lr_schedule %step max_lr = 1.0e-03 min_lr = 1.0e-04 warmup_steps = 100 decay_steps = 100 : tensor<i64> -> tensor<f32>
  return
}

// -----

// moe.lr_schedule (ODS): the step is an i64 scalar.
func.func @lr_schedule_step_i32(%step: tensor<i32>) {
  // expected-error @+1 {{'moe.lr_schedule' op operand #0 must be 0D tensor of 64-bit signless integer values, but got 'tensor<i32>'}}
  %lr = moe.lr_schedule %step max_lr = 1.0e-03 min_lr = 1.0e-04 warmup_steps = 10 decay_steps = 100 : tensor<i32> -> tensor<f32>
  return
}

// -----

// moe.global_norm: the norm of nothing is not meant (generic form).
func.func @global_norm_empty() {
  // expected-error @+1 {{'moe.global_norm' op needs at least one tensor}}
  %n = "moe.global_norm"() : () -> tensor<f32>
  return
}

// -----

// moe.global_norm: every tensor has the element type of the norm.
func.func @global_norm_element_type(%a: tensor<2x3xf32>, %b: tensor<4xf64>) {
  // expected-error @+1 {{'moe.global_norm' op 'tensors' #1 must have element type 'f32' (that of 'norm'), got 'f64'}}
  %n = moe.global_norm %a, %b : tensor<2x3xf32>, tensor<4xf64> -> tensor<f32>
  return
}

// -----

// moe.adamw: beta1 is in [0, 1) (1 is rejected).
func.func @adamw_beta1(%p: tensor<6x8xf32>, %g: tensor<6x8xf32>, %m: tensor<6x8xf32>, %v: tensor<6x8xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>) {
  // expected-error @+1 {{'moe.adamw' op attribute 'beta1' must be in [0, 1), got 1.000000e+00}}
  %p1, %m1, %v1 = moe.adamw %p, %g, %m, %v, %lr, %norm, %step beta1 = 1.0 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.1 max_grad_norm = 1.0 : tensor<6x8xf32>, tensor<f32>, tensor<i64>
  return
}

// -----

// moe.adamw: beta2 is in [0, 1).
func.func @adamw_beta2(%p: tensor<6x8xf32>, %g: tensor<6x8xf32>, %m: tensor<6x8xf32>, %v: tensor<6x8xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>) {
  // expected-error @+1 {{'moe.adamw' op attribute 'beta2' must be in [0, 1), got -1.000000e-01}}
  %p1, %m1, %v1 = moe.adamw %p, %g, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = -0.1 eps = 1.0e-08 weight_decay = 0.1 max_grad_norm = 1.0 : tensor<6x8xf32>, tensor<f32>, tensor<i64>
  return
}

// -----

// moe.adamw: eps must be positive.
func.func @adamw_eps(%p: tensor<6x8xf32>, %g: tensor<6x8xf32>, %m: tensor<6x8xf32>, %v: tensor<6x8xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>) {
  // expected-error @+1 {{'moe.adamw' op attribute 'eps' must be a positive finite number, got 0.000000e+00}}
  %p1, %m1, %v1 = moe.adamw %p, %g, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = 0.95 eps = 0.0 weight_decay = 0.1 max_grad_norm = 1.0 : tensor<6x8xf32>, tensor<f32>, tensor<i64>
  return
}

// -----

// moe.adamw: weight_decay must not be negative.
func.func @adamw_weight_decay(%p: tensor<6x8xf32>, %g: tensor<6x8xf32>, %m: tensor<6x8xf32>, %v: tensor<6x8xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>) {
  // expected-error @+1 {{'moe.adamw' op attribute 'weight_decay' must be a non-negative finite number, got -1.000000e-01}}
  %p1, %m1, %v1 = moe.adamw %p, %g, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = -0.1 max_grad_norm = 1.0 : tensor<6x8xf32>, tensor<f32>, tensor<i64>
  return
}

// -----

// moe.adamw: max_grad_norm must not be negative (0 disables clipping).
func.func @adamw_max_grad_norm(%p: tensor<6x8xf32>, %g: tensor<6x8xf32>, %m: tensor<6x8xf32>, %v: tensor<6x8xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>) {
  // expected-error @+1 {{'moe.adamw' op attribute 'max_grad_norm' must be a non-negative finite number, got -1.000000e+00}}
  %p1, %m1, %v1 = moe.adamw %p, %g, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.1 max_grad_norm = -1.0 : tensor<6x8xf32>, tensor<f32>, tensor<i64>
  return
}

// -----

// moe.adamw: lr (and grad_norm) have the element type of the parameter.
func.func @adamw_lr_element_type(%p: tensor<6x8xf32>, %g: tensor<6x8xf32>, %m: tensor<6x8xf32>, %v: tensor<6x8xf32>, %lr: tensor<f64>, %norm: tensor<f64>, %step: tensor<i64>) {
  // expected-error @+1 {{'moe.adamw' op 'lr' must have element type 'f32' (that of 'param'), got 'f64'}}
  %p1, %m1, %v1 = moe.adamw %p, %g, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.1 max_grad_norm = 1.0 : tensor<6x8xf32>, tensor<f64>, tensor<i64>
  return
}

// -----

// moe.adamw (ODS): the parameter, its gradient, its moments and their updates have one type (generic form).
func.func @adamw_exp_avg_type(%p: tensor<6x8xf32>, %g: tensor<6x8xf32>, %m: tensor<6x8xf64>, %v: tensor<6x8xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i64>) {
  // expected-error @+1 {{'moe.adamw' op failed to verify that all of {param, grad, exp_avg, exp_avg_sq, new_param, new_exp_avg, new_exp_avg_sq} have same type}}
  %r:3 = "moe.adamw"(%p, %g, %m, %v, %lr, %norm, %step) <{beta1 = 9.0e-01 : f64, beta2 = 9.5e-01 : f64, eps = 1.0e-08 : f64, max_grad_norm = 1.0 : f64, weight_decay = 1.0e-01 : f64}> : (tensor<6x8xf32>, tensor<6x8xf32>, tensor<6x8xf64>, tensor<6x8xf32>, tensor<f32>, tensor<f32>, tensor<i64>) -> (tensor<6x8xf32>, tensor<6x8xf32>, tensor<6x8xf32>)
  return
}

// -----

// moe.adamw (ODS): grad_norm has the type of lr (generic form).
func.func @adamw_grad_norm_type(%p: tensor<6x8xf32>, %g: tensor<6x8xf32>, %m: tensor<6x8xf32>, %v: tensor<6x8xf32>, %lr: tensor<f32>, %norm: tensor<f64>, %step: tensor<i64>) {
  // expected-error @+1 {{'moe.adamw' op failed to verify that all of {lr, grad_norm} have same type}}
  %r:3 = "moe.adamw"(%p, %g, %m, %v, %lr, %norm, %step) <{beta1 = 9.0e-01 : f64, beta2 = 9.5e-01 : f64, eps = 1.0e-08 : f64, max_grad_norm = 1.0 : f64, weight_decay = 1.0e-01 : f64}> : (tensor<6x8xf32>, tensor<6x8xf32>, tensor<6x8xf32>, tensor<6x8xf32>, tensor<f32>, tensor<f64>, tensor<i64>) -> (tensor<6x8xf32>, tensor<6x8xf32>, tensor<6x8xf32>)
  return
}

// -----

// moe.adamw (ODS): the step is an i64 scalar.
func.func @adamw_step_i32(%p: tensor<6x8xf32>, %g: tensor<6x8xf32>, %m: tensor<6x8xf32>, %v: tensor<6x8xf32>, %lr: tensor<f32>, %norm: tensor<f32>, %step: tensor<i32>) {
  // expected-error @+1 {{'moe.adamw' op operand #6 must be 0D tensor of 64-bit signless integer values, but got 'tensor<i32>'}}
  %p1, %m1, %v1 = moe.adamw %p, %g, %m, %v, %lr, %norm, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.1 max_grad_norm = 1.0 : tensor<6x8xf32>, tensor<f32>, tensor<i32>
  return
}

// -----

// moe.lr_schedule: the step attributes are signed; a negative warmup_steps
// is reported as such.
func.func @lr_schedule_negative_warmup(%step: tensor<i64>) {
  // expected-error @+1 {{'moe.lr_schedule' op attribute 'warmup_steps' must be >= 0, got -1}}
  %lr = moe.lr_schedule %step max_lr = 1.0e-03 min_lr = 1.0e-04 warmup_steps = -1 decay_steps = 100 : tensor<i64> -> tensor<f32>
  return
}

// -----

// moe.lr_schedule: a negative decay_steps does not exceed warmup_steps.
func.func @lr_schedule_negative_decay(%step: tensor<i64>) {
  // expected-error @+1 {{'moe.lr_schedule' op attribute 'decay_steps' (-5) must exceed 'warmup_steps' (10)}}
  %lr = moe.lr_schedule %step max_lr = 1.0e-03 min_lr = 1.0e-04 warmup_steps = 10 decay_steps = -5 : tensor<i64> -> tensor<f32>
  return
}

// -----

// moe.lr_schedule: negative warmup_steps and decay_steps.
func.func @lr_schedule_negative_warmup_and_decay(%step: tensor<i64>) {
  // expected-error @+1 {{'moe.lr_schedule' op attribute 'warmup_steps' must be >= 0, got -5}}
  %lr = moe.lr_schedule %step max_lr = 1.0e-03 min_lr = 1.0e-04 warmup_steps = -5 decay_steps = -1 : tensor<i64> -> tensor<f32>
  return
}

// -----

// moe.global_norm: the message names the tensor at fault.
func.func @global_norm_which_tensor(%a: tensor<2x3xf32>, %b: tensor<4xf32>, %c: tensor<5xf64>) {
  // expected-error @+1 {{'moe.global_norm' op 'tensors' #2 must have element type 'f32' (that of 'norm'), got 'f64'}}
  %n = moe.global_norm %a, %b, %c : tensor<2x3xf32>, tensor<4xf32>, tensor<5xf64> -> tensor<f32>
  return
}
