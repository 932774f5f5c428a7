// RUN: moe-opt %s --moe-plan-memory | FileCheck %s
// RUN: moe-opt %s --moe-plan-memory -o /dev/null | FileCheck %s --check-prefix=REPORT
// RUN: echo 'func.func private @f(%%x: tensor<4xf32>) -> tensor<4xf32>' | not moe-opt --moe-plan-memory 2>&1 | FileCheck %s --check-prefix=DECLARATION

// DECLARATION: error: moe-plan-memory: the function is a declaration, with no body to plan

// Four [4, 16] f32 values of 256 bytes each. %a and %b are live together;
// %c reuses %a's block once %a is dead; the reshape aliases %c; %d reuses
// %b's block. The arena peaks at two blocks.
// REPORT: moe-plan-memory @step: arena 512 bytes (peak activations 512, peak gradients 0), parameters 256 bytes, training state 516 bytes

ml_program.global private mutable @w : tensor<4x16xf32> {moe.init = #moe.init<normal, 0.02>, moe.trainable}
ml_program.global private mutable @m : tensor<4x16xf32> {moe.init = #moe.init<constant, 0.0>}

// CHECK-LABEL: func.func @step
// CHECK-SAME: attributes {moe.arena_bytes = 512 : i64}
func.func @step(%x: tensor<4x16xf32>) -> tensor<64xf32> {
  // CHECK: ml_program.global_load @w {{.*}}{moe.arena_offsets = array<i64: -1>}
  %w = ml_program.global_load @w : tensor<4x16xf32>
  // CHECK: moe.add {{.*}}{moe.arena_offsets = array<i64: 0>}
  %a = moe.add %x, %w : tensor<4x16xf32>
  // CHECK: moe.mul {{.*}}{moe.arena_offsets = array<i64: 256>}
  %b = moe.mul %a, %x : tensor<4x16xf32>
  // CHECK: moe.add {{.*}}{moe.arena_offsets = array<i64: 0>}
  %c = moe.add %b, %b : tensor<4x16xf32>
  // CHECK: tensor.collapse_shape {{.*}}{moe.arena_offsets = array<i64: -1>}
  %flat = tensor.collapse_shape %c [[0, 1]] : tensor<4x16xf32> into tensor<64xf32>
  // CHECK: moe.swiglu {{.*}}{moe.arena_offsets = array<i64: 256>}
  %d = moe.swiglu %flat, %flat : tensor<64xf32>
  return %d : tensor<64xf32>
}

// An AdamW update stored back to the globals it read writes them in place.
// CHECK-LABEL: func.func @update
func.func @update(%g: tensor<4x16xf32>) {
  %w = ml_program.global_load @w : tensor<4x16xf32>
  %m = ml_program.global_load @m : tensor<4x16xf32>
  %lr = arith.constant dense<0.1> : tensor<f32>
  %step = arith.constant dense<0> : tensor<i64>
  // CHECK: moe.adamw {{.*}}{moe.arena_offsets = array<i64: -1, -1, -1>, moe.in_place}
  %p, %m1, %v1 = moe.adamw %w, %g, %m, %m, %lr, %lr, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 0.0 : tensor<4x16xf32>, tensor<f32>, tensor<i64>
  ml_program.global_store @w = %p : tensor<4x16xf32>
  ml_program.global_store @m = %m1 : tensor<4x16xf32>
  ml_program.global_store @m = %v1 : tensor<4x16xf32>
  return
}

// A value read after the update keeps its own buffer: no in-place write.
// CHECK-LABEL: func.func @update_then_read
func.func @update_then_read(%g: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %w = ml_program.global_load @w : tensor<4x16xf32>
  %lr = arith.constant dense<0.1> : tensor<f32>
  %step = arith.constant dense<0> : tensor<i64>
  // CHECK: moe.adamw {{.*}}{moe.arena_offsets = array<i64: {{[0-9]+}}, {{[0-9]+}}, {{[0-9]+}}>}
  %p, %m1, %v1 = moe.adamw %w, %g, %g, %g, %lr, %lr, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 0.0 : tensor<4x16xf32>, tensor<f32>, tensor<i64>
  ml_program.global_store @w = %p : tensor<4x16xf32>
  ml_program.global_store @m = %m1 : tensor<4x16xf32>
  ml_program.global_store @m = %v1 : tensor<4x16xf32>
  %again = moe.add %w, %g : tensor<4x16xf32>
  return %again : tensor<4x16xf32>
}

// Every global written in place must be dead afterwards, the moments' too:
// here the moment is read after the update.
// CHECK-LABEL: func.func @moment_read_later
func.func @moment_read_later(%g: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %w = ml_program.global_load @w : tensor<4x16xf32>
  %m = ml_program.global_load @m : tensor<4x16xf32>
  %lr = arith.constant dense<0.1> : tensor<f32>
  %step = arith.constant dense<0> : tensor<i64>
  // CHECK: moe.adamw {{.*}}{moe.arena_offsets = array<i64: {{[0-9]+}}, {{[0-9]+}}, {{[0-9]+}}>}
  %p, %m1, %v1 = moe.adamw %w, %g, %m, %m, %lr, %lr, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 0.0 : tensor<4x16xf32>, tensor<f32>, tensor<i64>
  ml_program.global_store @w = %p : tensor<4x16xf32>
  ml_program.global_store @m = %m1 : tensor<4x16xf32>
  ml_program.global_store @m = %v1 : tensor<4x16xf32>
  %again = moe.add %m, %g : tensor<4x16xf32>
  return %again : tensor<4x16xf32>
}

// A result goes in place only into the global its tied operand (the
// InPlaceOpInterface's) was loaded from: stored elsewhere, it gets a buffer.
ml_program.global private mutable @u : tensor<4x16xf32> {moe.init = #moe.init<constant, 0.0>}
// CHECK-LABEL: func.func @stored_elsewhere
func.func @stored_elsewhere(%g: tensor<4x16xf32>) {
  %w = ml_program.global_load @w : tensor<4x16xf32>
  %m = ml_program.global_load @m : tensor<4x16xf32>
  %lr = arith.constant dense<0.1> : tensor<f32>
  %step = arith.constant dense<0> : tensor<i64>
  // CHECK: moe.adamw {{.*}}{moe.arena_offsets = array<i64: {{[0-9]+}}, {{[0-9]+}}, {{[0-9]+}}>}
  %p, %m1, %v1 = moe.adamw %w, %g, %m, %m, %lr, %lr, %step beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.0 max_grad_norm = 0.0 : tensor<4x16xf32>, tensor<f32>, tensor<i64>
  ml_program.global_store @u = %p : tensor<4x16xf32>
  ml_program.global_store @m = %m1 : tensor<4x16xf32>
  ml_program.global_store @m = %v1 : tensor<4x16xf32>
  return
}

// A load still read after a store to its global (here returned, as a train
// step reports the coefficient it used) gets its own arena copy; a load dead
// before the store points into the state.
ml_program.global private mutable @alpha : tensor<f32> {moe.init = #moe.init<constant, 0.01>}

// CHECK-LABEL: func.func @report_then_update
func.func @report_then_update(%next: tensor<f32>) -> tensor<f32> {
  // CHECK: ml_program.global_load @alpha {{.*}}{moe.arena_offsets = array<i64: 0>}
  %alpha = ml_program.global_load @alpha : tensor<f32>
  // CHECK: ml_program.global_load @m {{.*}}{moe.arena_offsets = array<i64: -1>}
  %m = ml_program.global_load @m : tensor<4x16xf32>
  %m2 = moe.add %m, %m : tensor<4x16xf32>
  ml_program.global_store @m = %m2 : tensor<4x16xf32>
  ml_program.global_store @alpha = %next : tensor<f32>
  return %alpha : tensor<f32>
}

// Blocks of [4, 16] f32 values (256 bytes) again. A view of a view aliases
// the first view's source: %a stays live while %back is read, so %b cannot
// take %a's block, and %c, read with both, needs a third.
// CHECK-LABEL: func.func @view_of_view
// CHECK-SAME: attributes {moe.arena_bytes = 768 : i64}
func.func @view_of_view(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
  // CHECK: moe.add {{.*}}{moe.arena_offsets = array<i64: 0>}
  %a = moe.add %x, %x : tensor<4x16xf32>
  %flat = tensor.collapse_shape %a [[0, 1]] : tensor<4x16xf32> into tensor<64xf32>
  %back = tensor.expand_shape %flat [[0, 1]] output_shape [4, 16] : tensor<64xf32> into tensor<4x16xf32>
  // CHECK: moe.mul {{.*}}{moe.arena_offsets = array<i64: 256>}
  %b = moe.mul %x, %x : tensor<4x16xf32>
  // CHECK: moe.add {{.*}}{moe.arena_offsets = array<i64: 512>}
  %c = moe.add %back, %b : tensor<4x16xf32>
  return %c : tensor<4x16xf32>
}

// Freed neighbours merge: once %c is computed, %a's block [0, 256) and
// %b's [256, 512) are one free block, where the 512 bytes of %d fit; the
// arena does not grow past %c's [512, 768).
// CHECK-LABEL: func.func @freed_neighbours_merge
// CHECK-SAME: attributes {moe.arena_bytes = 768 : i64}
func.func @freed_neighbours_merge(%x: tensor<4x16xf32>, %y: tensor<8x16xf32>) -> (tensor<4x16xf32>, tensor<8x16xf32>) {
  // CHECK: moe.add {{.*}}{moe.arena_offsets = array<i64: 0>}
  %a = moe.add %x, %x : tensor<4x16xf32>
  // CHECK: moe.mul {{.*}}{moe.arena_offsets = array<i64: 256>}
  %b = moe.mul %x, %x : tensor<4x16xf32>
  // CHECK: moe.mul {{.*}}{moe.arena_offsets = array<i64: 512>}
  %c = moe.mul %a, %b : tensor<4x16xf32>
  // CHECK: moe.add {{.*}}{moe.arena_offsets = array<i64: 0>}
  %d = moe.add %y, %y : tensor<8x16xf32>
  return %c, %d : tensor<4x16xf32>, tensor<8x16xf32>
}

// A result nobody reads is released right after its op (not at the start
// of the function, which has passed): %b takes its block.
// CHECK-LABEL: func.func @unread_result
// CHECK-SAME: attributes {moe.arena_bytes = 256 : i64}
func.func @unread_result(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %w = ml_program.global_load @w : tensor<4x16xf32>
  // CHECK: moe.add {{.*}}{moe.arena_offsets = array<i64: 0>}
  %unread = moe.add %x, %w : tensor<4x16xf32>
  // CHECK: moe.mul {{.*}}{moe.arena_offsets = array<i64: 0>}
  %b = moe.mul %x, %x : tensor<4x16xf32>
  return %b : tensor<4x16xf32>
}
