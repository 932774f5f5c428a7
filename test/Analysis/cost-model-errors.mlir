// RUN: not moe-opt %s --moe-cost-model -split-input-file 2>&1 | FileCheck %s

// Every op needs a formula, so that a new op cannot be silently free.
// CHECK: error: the cost model has no formula for 'arith.mulf'
func.func @train_step(%a: f32) -> f32 {
  %0 = arith.mulf %a, %a : f32
  return %0 : f32
}

// -----

// CHECK: error: moe-cost-model: no function @train_step
func.func @forward() {
  return
}
