// RUN: moe-opt %s -split-input-file -verify-diagnostics

// moe.fused_elementwise: its body computes one scalar of the result's
// element type per element, from one scalar per input, with the ops the
// emitters generate.

func.func @input_type(%a: tensor<4xf32>, %b: tensor<2xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'moe.fused_elementwise' op input #1 must have the result type 'tensor<4xf32>', got 'tensor<2xf32>'}}
  %r = moe.fused_elementwise %a, %b : tensor<4xf32>, tensor<2xf32> -> tensor<4xf32> {
  ^bb0(%x: f32, %y: f32):
    moe.yield %x : f32
  }
  return %r : tensor<4xf32>
}

// -----

func.func @arguments(%a: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'moe.fused_elementwise' op body must take one scalar per input (1), got 2}}
  %r = moe.fused_elementwise %a : tensor<4xf32> -> tensor<4xf32> {
  ^bb0(%x: f32, %y: f32):
    moe.yield %x : f32
  }
  return %r : tensor<4xf32>
}

// -----

func.func @argument_type(%a: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'moe.fused_elementwise' op body argument #0 must be 'f32', got 'f64'}}
  %r = moe.fused_elementwise %a : tensor<4xf32> -> tensor<4xf32> {
  ^bb0(%x: f64):
    %y = arith.truncf %x : f64 to f32
    moe.yield %y : f32
  }
  return %r : tensor<4xf32>
}

// -----

func.func @op(%a: tensor<4xf32>) -> tensor<4xf32> {
  %r = moe.fused_elementwise %a : tensor<4xf32> -> tensor<4xf32> {
  ^bb0(%x: f32):
    // expected-error @+1 {{'math.tanh' op is not allowed in a moe.fused_elementwise body (allowed: arith.addf, subf, mulf, divf, negf, constant, math.exp)}}
    %y = math.tanh %x : f32
    moe.yield %y : f32
  }
  return %r : tensor<4xf32>
}

// -----

// An integer constant, even unused, is no scalar of the result.
func.func @integer_constant(%a: tensor<4xf32>) -> tensor<4xf32> {
  %r = moe.fused_elementwise %a : tensor<4xf32> -> tensor<4xf32> {
  ^bb0(%x: f32):
    // expected-error @+1 {{'arith.constant' op in a moe.fused_elementwise body must give 'f32', got 'i32'}}
    %c = arith.constant 3 : i32
    %y = arith.addf %x, %x : f32
    moe.yield %y : f32
  }
  return %r : tensor<4xf32>
}

// -----

func.func @tensor_constant(%a: tensor<4xf32>) -> tensor<4xf32> {
  %r = moe.fused_elementwise %a : tensor<4xf32> -> tensor<4xf32> {
  ^bb0(%x: f32):
    // expected-error @+1 {{'arith.constant' op in a moe.fused_elementwise body must give 'f32', got 'tensor<2xf32>'}}
    %c = arith.constant dense<1.0> : tensor<2xf32>
    moe.yield %x : f32
  }
  return %r : tensor<4xf32>
}

// -----

func.func @other_float(%a: tensor<4xf32>) -> tensor<4xf32> {
  %r = moe.fused_elementwise %a : tensor<4xf32> -> tensor<4xf32> {
  ^bb0(%x: f32):
    // expected-error @+1 {{'arith.constant' op in a moe.fused_elementwise body must give 'f32', got 'f64'}}
    %c = arith.constant 2.0 : f64
    moe.yield %x : f32
  }
  return %r : tensor<4xf32>
}
