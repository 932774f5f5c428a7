// RUN: moe-opt %s -split-input-file --moe-expert-parallel=ranks=2 -verify-diagnostics | FileCheck %s

// Every function's arguments are the batch, split over the ranks.

func.func @forward(%x: tensor<4x8xf32>, %t: tensor<4xi32>) -> (tensor<f32> {moe.output = "loss"}) {
  %loss = moe.cross_entropy %x, %t : tensor<4x8xf32>, tensor<4xi32> -> tensor<f32>
  return %loss : tensor<f32>
}
// expected-error @+1 {{moe-expert-parallel: argument #0 of type 'f32' does not split over 2 ranks along its batch axis}}
func.func @scale(%s: f32) -> f32 {
  return %s : f32
}

// -----

func.func @forward(%x: tensor<4x8xf32>, %t: tensor<4xi32>) -> (tensor<f32> {moe.output = "loss"}) {
  %loss = moe.cross_entropy %x, %t : tensor<4x8xf32>, tensor<4xi32> -> tensor<f32>
  return %loss : tensor<f32>
}
// expected-error @+1 {{moe-expert-parallel: argument #0 of type 'tensor<?x8xf32>' does not split over 2 ranks along its batch axis}}
func.func @rows(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  return %x : tensor<?x8xf32>
}

// -----

func.func @forward(%x: tensor<4x8xf32>, %t: tensor<4xi32>) -> (tensor<f32> {moe.output = "loss"}) {
  %loss = moe.cross_entropy %x, %t : tensor<4x8xf32>, tensor<4xi32> -> tensor<f32>
  return %loss : tensor<f32>
}
// expected-error @+1 {{moe-expert-parallel: the function is a declaration, with no body to partition}}
func.func private @external(tensor<4x8xf32>) -> tensor<4x8xf32>

// -----

// A value of the batch's shape that no argument gives is not split: an op
// that meets it and a split value is named, with why.
func.func @forward(%x: tensor<4x8xf32>) -> (tensor<f32> {moe.output = "loss"}) {
  %t = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  // expected-error @+1 {{moe-expert-parallel: splitting the batch over 2 ranks leaves this op invalid ('moe.cross_entropy' op 'targets' must have shape [2], got [4]): the pass splits @forward's arguments and what is computed from them, not a value of the batch's shape that a constant or a global gives}}
  %loss = moe.cross_entropy %x, %t : tensor<4x8xf32>, tensor<4xi32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

func.func @forward(%x: tensor<4x8xf32>, %t: tensor<4xi32>) -> (tensor<f32> {moe.output = "loss"}) {
  %c = arith.constant dense<1.0> : tensor<4x8xf32>
  // expected-error @+1 {{moe-expert-parallel: splitting the batch over 2 ranks leaves this op invalid ('moe.add' op failed to verify that all of {lhs, rhs, result} have same type)}}
  %y = moe.add %x, %c : tensor<4x8xf32>
  %loss = moe.cross_entropy %y, %t : tensor<4x8xf32>, tensor<4xi32> -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// What no argument feeds stays whole: a function of constants alone.
// CHECK-LABEL: func.func @forward(
// CHECK-SAME: tensor<2x8xf32>
// CHECK-LABEL: func.func @ones(
// CHECK: moe.add {{.*}} : tensor<4x4xf32>
func.func @forward(%x: tensor<4x8xf32>, %t: tensor<4xi32>) -> (tensor<f32> {moe.output = "loss"}) {
  %loss = moe.cross_entropy %x, %t : tensor<4x8xf32>, tensor<4xi32> -> tensor<f32>
  return %loss : tensor<f32>
}
func.func @ones() -> tensor<4x4xf32> {
  %c = arith.constant dense<1.0> : tensor<4x4xf32>
  %a = moe.add %c, %c : tensor<4x4xf32>
  return %a : tensor<4x4xf32>
}

// -----

// Dropping by priority decides on the whole batch's gate weights, which
// the pass gives the route in place of the dispatch's priority: a priority
// that is not the gate's weights is refused, not replaced.
ml_program.global private mutable @w_router : tensor<4x8xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
ml_program.global private mutable @w1 : tensor<4x6x8xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
ml_program.global private mutable @w3 : tensor<4x6x8xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
ml_program.global private mutable @w2 : tensor<4x8x6xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
func.func @forward(%x: tensor<16x8xf32>, %t: tensor<16xi32>) -> (tensor<f32> {moe.output = "loss"}) {
  %wr = ml_program.global_load @w_router : tensor<4x8xf32>
  %z = moe.router %x, %wr : tensor<16x8xf32>, tensor<4x8xf32> -> tensor<16x4xf32>
  %p, %w, %i = moe.gate %z top_k = 2 : tensor<16x4xf32> -> tensor<16x4xf32>, tensor<16x2xf32>, tensor<16x2xi32>
  %priority = moe.mul %w, %w : tensor<16x2xf32>
  // expected-error @+1 {{moe-expert-parallel: a dispatch's priority must be its gate's weights}}
  %buf, %slots, %dropped = moe.dispatch %x, %i priority %priority capacity_factor = 1.0 : tensor<16x8xf32>, tensor<16x2xi32>, tensor<16x2xf32> -> tensor<4x8x8xf32>, tensor<16x2xi32>, tensor<i64>
  %w1 = ml_program.global_load @w1 : tensor<4x6x8xf32>
  %w3 = ml_program.global_load @w3 : tensor<4x6x8xf32>
  %w2 = ml_program.global_load @w2 : tensor<4x8x6xf32>
  %y, %y_proj = moe.expert_ffn %buf, %w1, %w3, %w2 : tensor<4x8x8xf32>, tensor<4x6x8xf32>, tensor<4x8x6xf32> -> tensor<4x2x8x6xf32>
  %out = moe.combine %y, %w, %i, %slots : tensor<4x8x8xf32>, tensor<16x2xf32>, tensor<16x2xi32>, tensor<16x2xi32> -> tensor<16x8xf32>
  %loss = moe.cross_entropy %out, %t : tensor<16x8xf32>, tensor<16xi32> -> tensor<f32>
  return %loss : tensor<f32>
}
