// RUN: moe-opt %s --split-input-file --moe-autodiff --moe-expert-bias -verify-diagnostics | FileCheck %s

// moe-expert-bias on models it leaves as they are or refuses.

// A gate without a bias: the pass leaves the step as it is.
ml_program.global private mutable @w_router : tensor<4x8xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}

func.func @forward(%x: tensor<16x8xf32>, %targets: tensor<16xi32>) -> tensor<f32> {
  %w = ml_program.global_load @w_router : tensor<4x8xf32>
  %z = moe.router %x, %w : tensor<16x8xf32>, tensor<4x8xf32> -> tensor<16x4xf32>
  %p, %wts, %i = moe.gate %z top_k = 2 scoring = sigmoid : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  %buf, %slots, %dropped = moe.dispatch %x, %i capacity_factor = 1.0 : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x8x8xf32>, tensor<16x2xi32>, tensor<i64>
  %y = moe.combine %buf, %wts, %i, %slots : tensor<4x8x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x2xi32> -> tensor<16x8xf32>
  %ce = moe.cross_entropy %y, %targets : tensor<16x8xf32>, tensor<16xi32> -> tensor<f32>
  return %ce : tensor<f32>
}

// CHECK-LABEL: func.func @train_step(
// CHECK-NOT: moe.expert_load
// CHECK: return

// -----

// A gate with a bias whose choices nothing routes: its load is unknown.
ml_program.global private mutable @w_router : tensor<4x8xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
ml_program.global private mutable @layer.gate.e_score_correction_bias : tensor<4xf32> {moe.init = #moe.init<constant, 0.0>}

func.func @forward(%x: tensor<16x8xf32>, %targets: tensor<16xi32>) -> tensor<f32> {
  %w = ml_program.global_load @w_router : tensor<4x8xf32>
  %z = moe.router %x, %w : tensor<16x8xf32>, tensor<4x8xf32> -> tensor<16x4xf32>
  %b = ml_program.global_load @layer.gate.e_score_correction_bias : tensor<4xf32>
  // expected-error @+1 {{moe-expert-bias: no moe.dispatch or moe.route reads this gate's choices, so its bias's load is unknown}}
  %p, %wts, %i = moe.gate %z bias %b top_k = 2 : tensor<16x4xf32>, tensor<4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  %ce = moe.cross_entropy %p, %targets : tensor<16x4xf32>, tensor<16xi32> -> tensor<f32>
  return %ce : tensor<f32>
}

// -----

// A bias the step cannot move (an argument) is an error, not a fixed bias.
ml_program.global private mutable @w_router : tensor<4x8xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}

func.func @forward(%x: tensor<16x8xf32>, %targets: tensor<16xi32>, %b: tensor<4xf32>) -> tensor<f32> {
  %w = ml_program.global_load @w_router : tensor<4x8xf32>
  %z = moe.router %x, %w : tensor<16x8xf32>, tensor<4x8xf32> -> tensor<16x4xf32>
  // expected-error @+1 {{moe-expert-bias: this gate's bias is not the value of a non-trainable global}}
  %p, %wts, %i = moe.gate %z bias %b top_k = 2 : tensor<16x4xf32>, tensor<4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  %buf, %slots, %dropped = moe.dispatch %x, %i capacity_factor = 1.0 : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x8x8xf32>, tensor<16x2xi32>, tensor<i64>
  %y = moe.combine %buf, %wts, %i, %slots : tensor<4x8x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x2xi32> -> tensor<16x8xf32>
  %ce = moe.cross_entropy %y, %targets : tensor<16x8xf32>, tensor<16xi32> -> tensor<f32>
  return %ce : tensor<f32>
}
