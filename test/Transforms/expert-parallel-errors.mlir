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
