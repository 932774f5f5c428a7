// RUN: moe-opt %s --moe-expert-parallel=ranks=2 --moe-autodiff --moe-optimizer --moe-accumulate-gradients="micro-batches=2" | FileCheck %s

// A replicated parameter's gradient of an SPMD program is summed over the
// ranks once a step, not once a micro-batch: the micro step adds the rank's
// own gradient to its sum, and the step sums the accumulated mean over the
// ranks once. The sum over the ranks that each micro-batch's backward made
// is gone from both (it would move every gradient over the network twice a
// step).

ml_program.global private mutable @w : tensor<8x8xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}

func.func @forward(%x: tensor<4x8xf32>, %t: tensor<4xi32>) -> (tensor<f32> {moe.output = "loss"}) {
  %w = ml_program.global_load @w : tensor<8x8xf32>
  %y = moe.linear %x, %w : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %loss = moe.cross_entropy %y, %t : tensor<4x8xf32>, tensor<4xi32> -> tensor<f32>
  return %loss : tensor<f32>
}

// CHECK-LABEL: func.func @train_micro_step(
// CHECK-NOT: shard.all_reduce {{.*}} : tensor<8x8xf32>
// CHECK: return

// CHECK-LABEL: func.func @train_step(
// CHECK-NOT: shard.all_reduce {{.*}} : tensor<8x8xf32>
// CHECK: ml_program.global_store @w.grad_accum
// CHECK-NEXT: %[[MEAN:.*]] = ml_program.global_load @w.grad_accum : tensor<8x8xf32>
// CHECK-NEXT: %[[SUM:.*]] = shard.all_reduce %[[MEAN]] on @ranks {{.*}} : tensor<8x8xf32> -> tensor<8x8xf32>
// CHECK-NOT: shard.all_reduce {{.*}} : tensor<8x8xf32>
// CHECK: moe.adamw %{{.*}}, %[[SUM]],
// CHECK-NOT: shard.all_reduce {{.*}} : tensor<8x8xf32>
// CHECK: return
