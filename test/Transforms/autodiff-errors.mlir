// RUN: moe-opt %s -split-input-file --moe-autodiff -verify-diagnostics

// expected-error @+1 {{moe-autodiff: no function @forward}}
module {
  func.func @other() {
    return
  }
}

// -----

ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
// expected-error @+1 {{moe-autodiff: the first result must be a scalar loss, got 'tensor<4xf32>' (use cotangent-argument for a non-scalar output)}}
func.func @forward() -> tensor<4xf32> {
  %w = ml_program.global_load @w : tensor<4xf32>
  return %w : tensor<4xf32>
}

// -----

// expected-error @+1 {{moe-autodiff: the first result must be a float tensor to differentiate}}
func.func @forward() -> tensor<i64> {
  %c = arith.constant dense<1> : tensor<i64>
  return %c : tensor<i64>
}

// -----

ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
func.func @forward() -> tensor<f32> {
  %w = ml_program.global_load @w : tensor<4xf32>
  %c = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  // expected-error @+1 {{'arith.mulf' is on the path from a trainable global to the output but is not differentiable}}
  %m = arith.mulf %w, %c : tensor<4xf32>
  %e = tensor.expand_shape %m [[0, 1]] output_shape [1, 4] : tensor<4xf32> into tensor<1x4xf32>
  %ids = arith.constant dense<[0]> : tensor<1xi32>
  %l = moe.cross_entropy %e, %ids : tensor<1x4xf32>, tensor<1xi32> -> tensor<f32>
  return %l : tensor<f32>
}

// -----

func.func @forward() -> tensor<f32> {
  %c = arith.constant dense<1.0> : tensor<f32>
  return %c : tensor<f32>
}
// expected-error @+1 {{moe-autodiff: @train_step already exists}}
func.func @train_step() {
  return
}

// -----

// The projections moe.expert_ffn keeps for its backward are not
// differentiable: a loss that reads them is refused.
ml_program.global private mutable @w1 : tensor<1x2x2xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
func.func @forward(%x: tensor<1x3x2xf32>, %w2: tensor<1x2x2xf32>) -> tensor<f32> {
  %w1 = ml_program.global_load @w1 : tensor<1x2x2xf32>
  // expected-error @+1 {{'moe.expert_ffn' op 'projections' is kept for the backward, not differentiable; the output depends on it}}
  %y, %proj = moe.expert_ffn %x, %w1, %w1, %w2 : tensor<1x3x2xf32>, tensor<1x2x2xf32>, tensor<1x2x2xf32> -> tensor<1x2x3x2xf32>
  %flat = tensor.collapse_shape %proj [[0, 1, 2], [3]] : tensor<1x2x3x2xf32> into tensor<6x2xf32>
  %z = moe.z_loss %flat : tensor<6x2xf32> -> tensor<f32>
  return %z : tensor<f32>
}

// -----

// Nor is the log-sum-exp that moe.attention keeps for its backward.
ml_program.global private mutable @q : tensor<1x3x2x4xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
func.func @forward(%k: tensor<1x3x1x4xf32>) -> tensor<f32> {
  %q = ml_program.global_load @q : tensor<1x3x2x4xf32>
  // expected-error @+1 {{'moe.attention' op 'lse' is kept for the backward, not differentiable; the output depends on it}}
  %o, %lse = moe.attention %q, %k, %k causal : tensor<1x3x2x4xf32>, tensor<1x3x1x4xf32>
  %flat = tensor.collapse_shape %lse [[0, 1], [2]] : tensor<1x2x3xf32> into tensor<2x3xf32>
  %z = moe.z_loss %flat : tensor<2x3xf32> -> tensor<f32>
  return %z : tensor<f32>
}

// -----

// A forward updates no state: recomputed layers would read the update.
ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
ml_program.global private mutable @seen : tensor<4xf32> {moe.init = #moe.init<constant, 0.0>}
func.func @forward() -> tensor<f32> {
  %w = ml_program.global_load @w : tensor<4xf32>
  // expected-error @+1 {{moe-autodiff: @forward must be a forward, but 'ml_program.global_store' updates state (moe-autodiff runs before moe-optimizer and moe-adaptive-aux)}}
  ml_program.global_store @seen = %w : tensor<4xf32>
  %e = tensor.expand_shape %w [[0, 1]] output_shape [1, 4] : tensor<4xf32> into tensor<1x4xf32>
  %ids = arith.constant dense<[0]> : tensor<1xi32>
  %l = moe.cross_entropy %e, %ids : tensor<1x4xf32>, tensor<1xi32> -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// Nor does it hold a backward.
ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
func.func @forward() -> tensor<f32> {
  %w = ml_program.global_load @w : tensor<4xf32>
  %e = tensor.expand_shape %w [[0, 1]] output_shape [1, 4] : tensor<4xf32> into tensor<1x4xf32>
  %ids = arith.constant dense<[0]> : tensor<1xi32>
  %one = arith.constant dense<1.0> : tensor<f32>
  // expected-error @+1 {{moe-autodiff: @forward must be a forward, but 'moe.cross_entropy_grad' belongs to a backward or an optimizer step (moe-autodiff runs before moe-optimizer and moe-adaptive-aux)}}
  %g = moe.cross_entropy_grad %e, %ids, %one : tensor<1x4xf32>, tensor<1xi32>, tensor<f32>
  %l = moe.cross_entropy %g, %ids : tensor<1x4xf32>, tensor<1xi32> -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// expected-error @+1 {{moe-autodiff: the function is a declaration, with no body to differentiate}}
func.func private @forward() -> tensor<f32>

// -----

// A loss all-reduced by sum is differentiated rank by rank, each rank its
// part; one reduced by max is not a sum of parts, and its VJP is refused.
shard.grid @ranks(shape = 2)
ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
func.func @forward() -> tensor<f32> {
  %w = ml_program.global_load @w : tensor<4xf32>
  %e = tensor.expand_shape %w [[0, 1]] output_shape [1, 4] : tensor<4xf32> into tensor<1x4xf32>
  %ids = arith.constant dense<[0]> : tensor<1xi32>
  %l = moe.cross_entropy %e, %ids : tensor<1x4xf32>, tensor<1xi32> -> tensor<f32>
  // expected-error @+1 {{only a sum all-reduce is differentiable}}
  %max = shard.all_reduce %l on @ranks grid_axes = [0] reduction = max : tensor<f32> -> tensor<f32>
  return %max : tensor<f32>
}
