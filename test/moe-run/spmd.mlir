// SPMD programs: moe-run --ranks P runs a function as P ranks, one thread
// each, with the shard collectives between them.
//
// @spmd sends every rank's hidden states through each collective and back
// (all-to-all both ways, all-gather then reduce-scatter, which sums P
// copies) and computes the loss of the whole batch on every rank; each rank
// returns its part, half of it, and all-reduces the parts to the loss. It
// must equal @single on the same global batch.
// RUN: moe-run %s --entry single --seed 1 --data %S/../Inputs/english.txt | grep '^loss ' > %t.single
// RUN: moe-run %s --entry spmd --ranks 2 --seed 1 --data %S/../Inputs/english.txt | grep '^loss ' > %t.spmd
// RUN: diff %t.single %t.spmd
// RUN: FileCheck %s --check-prefix=LOSS < %t.spmd
// LOSS: loss F64[] = {{[0-9]+\.[0-9]+$}}

// The collectives' differentiation rules, against finite differences of the
// sum of the ranks' parts.
// RUN: moe-run %s --entry spmd --ranks 2 --seed 1 --data %S/../Inputs/english.txt --grad-check --grad-samples 16 | FileCheck %s --check-prefix=GRAD
// GRAD: grad-check table: relative error
// GRAD: grad-check w: relative error
// GRAD: grad-check passed: 2 tensors

// The backward of each collective is its transpose.
// RUN: moe-opt %s --moe-autodiff=function=spmd | FileCheck %s --check-prefix=VJP
// VJP-LABEL: func.func @train_step
// VJP: shard.reduce_scatter %{{.*}} on @ranks grid_axes = [0] {{.*}}scatter_axis = 0 : tensor<2x4x8xf64> -> tensor<1x4x8xf64>
// VJP: shard.all_gather %{{.*}} on @ranks grid_axes = [0] gather_axis = 0 : tensor<1x4x8xf64> -> tensor<2x4x8xf64>
// VJP: shard.reduce_scatter %{{.*}} on @ranks grid_axes = [0] {{.*}}scatter_axis = 0 : tensor<2x4x8xf64> -> tensor<1x4x8xf64>
// VJP: shard.all_to_all %{{.*}} on @ranks grid_axes = [0] split_axis = 2 concat_axis = 1 : tensor<1x4x8xf64> -> tensor<1x8x4xf64>
// VJP: shard.all_to_all %{{.*}} on @ranks grid_axes = [0] split_axis = 1 concat_axis = 2 : tensor<1x8x4xf64> -> tensor<1x4x8xf64>
// VJP: moe.embedding_grad

// Each reduction of shard.all_reduce: rank 0 holds [1, 5], rank 1 [3, -2].
// RUN: moe-run %s --entry reductions --ranks 2 | FileCheck %s --check-prefix=REDUCE
// REDUCE: max F64[2] = 3 5
// REDUCE-NEXT: min F64[2] = 1 -2
// REDUCE-NEXT: sum F64[2] = 4 3

// Collectives need a group of the grid's size (checked before any rank
// starts), and a rank that fails stops the others instead of leaving them
// waiting.
// RUN: not moe-run %s --entry spmd --data %S/../Inputs/english.txt 2>&1 | FileCheck %s --check-prefix=ALONE
// ALONE: error: 'shard.all_to_all' needs the 2 ranks of its SPMD group (moe-run --ranks 2)
// RUN: not moe-run %s --entry spmd --ranks 4 --data %S/../Inputs/english.txt 2>&1 | FileCheck %s --check-prefix=SIZE
// SIZE: error: option --ranks 4: the model's shard grid @ranks has shape [2]
// RUN: not moe-run %s --entry rank_fails --ranks 2 2>&1 | FileCheck %s --check-prefix=FAILS
// FAILS: error: {{.*}} 200 is outside [0, 128)

shard.grid @ranks(shape = 2)

ml_program.global private mutable @table : tensor<128x8xf64> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
ml_program.global private mutable @w : tensor<128x8xf64> {moe.init = #moe.init<normal, 0.5>, moe.trainable}

func.func @single(%ids: tensor<2x4xi32> {moe.input = "input_ids"}, %labels: tensor<2x4xi32> {moe.input = "labels"}) -> (tensor<f64> {moe.output = "loss"}) {
  %table = ml_program.global_load @table : tensor<128x8xf64>
  %w = ml_program.global_load @w : tensor<128x8xf64>
  %h = moe.embedding %table[%ids] : tensor<128x8xf64>, tensor<2x4xi32> -> tensor<2x4x8xf64>
  %logits = moe.linear %h, %w : tensor<2x4x8xf64>, tensor<128x8xf64> -> tensor<2x4x128xf64>
  %loss = moe.cross_entropy %logits, %labels : tensor<2x4x128xf64>, tensor<2x4xi32> -> tensor<f64>
  return %loss : tensor<f64>
}

func.func @spmd(%ids: tensor<1x4xi32> {moe.input = "input_ids"}, %labels: tensor<1x4xi32> {moe.input = "labels"}) -> (tensor<f64> {moe.output = "part"}, tensor<f64> {moe.output = "loss"}) {
  %table = ml_program.global_load @table : tensor<128x8xf64>
  %w = ml_program.global_load @w : tensor<128x8xf64>
  %h = moe.embedding %table[%ids] : tensor<128x8xf64>, tensor<1x4xi32> -> tensor<1x4x8xf64>
  %there = shard.all_to_all %h on @ranks grid_axes = [0] split_axis = 2 concat_axis = 1 : tensor<1x4x8xf64> -> tensor<1x8x4xf64>
  %back = shard.all_to_all %there on @ranks grid_axes = [0] split_axis = 1 concat_axis = 2 : tensor<1x8x4xf64> -> tensor<1x4x8xf64>
  %copies = shard.all_gather %back on @ranks grid_axes = [0] gather_axis = 0 : tensor<1x4x8xf64> -> tensor<2x4x8xf64>
  %twice = shard.reduce_scatter %copies on @ranks grid_axes = [0] scatter_axis = 0 : tensor<2x4x8xf64> -> tensor<1x4x8xf64>
  %half = arith.constant dense<0.5> : tensor<1x4x8xf64>
  %mine = moe.mul %twice, %half : tensor<1x4x8xf64>
  %all = shard.all_gather %mine on @ranks grid_axes = [0] gather_axis = 0 : tensor<1x4x8xf64> -> tensor<2x4x8xf64>
  %all_labels = shard.all_gather %labels on @ranks grid_axes = [0] gather_axis = 0 : tensor<1x4xi32> -> tensor<2x4xi32>
  %logits = moe.linear %all, %w : tensor<2x4x8xf64>, tensor<128x8xf64> -> tensor<2x4x128xf64>
  %loss = moe.cross_entropy %logits, %all_labels : tensor<2x4x128xf64>, tensor<2x4xi32> -> tensor<f64>
  %share = arith.constant dense<0.5> : tensor<f64>
  %part = moe.mul %loss, %share : tensor<f64>
  %total = shard.all_reduce %part on @ranks grid_axes = [0] : tensor<f64> -> tensor<f64>
  return %part, %total : tensor<f64>, tensor<f64>
}

// Rank 1's token is out of range.
func.func @rank_fails() -> tensor<f64> {
  %table = ml_program.global_load @table : tensor<128x8xf64>
  %ids = arith.constant dense<[[3], [200]]> : tensor<2x1xi32>
  %mine = shard.all_slice %ids on @ranks grid_axes = [0] slice_axis = 0 : tensor<2x1xi32> -> tensor<1x1xi32>
  %h = moe.embedding %table[%mine] : tensor<128x8xf64>, tensor<1x1xi32> -> tensor<1x1x8xf64>
  %all = shard.all_gather %h on @ranks grid_axes = [0] gather_axis = 0 : tensor<1x1x8xf64> -> tensor<2x1x8xf64>
  %sum = shard.all_reduce %all on @ranks grid_axes = [0] : tensor<2x1x8xf64> -> tensor<2x1x8xf64>
  %zero = arith.constant dense<0.0> : tensor<f64>
  return %zero : tensor<f64>
}

func.func @reductions() -> (tensor<2xf64> {moe.output = "max"}, tensor<2xf64> {moe.output = "min"}, tensor<2xf64> {moe.output = "sum"}) {
  %values = arith.constant dense<[[1.0, 5.0], [3.0, -2.0]]> : tensor<2x2xf64>
  %part = shard.all_slice %values on @ranks grid_axes = [0] slice_axis = 0 : tensor<2x2xf64> -> tensor<1x2xf64>
  %mine = tensor.collapse_shape %part [[0, 1]] : tensor<1x2xf64> into tensor<2xf64>
  %max = shard.all_reduce %mine on @ranks grid_axes = [0] reduction = max : tensor<2xf64> -> tensor<2xf64>
  %min = shard.all_reduce %mine on @ranks grid_axes = [0] reduction = min : tensor<2xf64> -> tensor<2xf64>
  %sum = shard.all_reduce %mine on @ranks grid_axes = [0] : tensor<2xf64> -> tensor<2xf64>
  return %max, %min, %sum : tensor<2xf64>, tensor<2xf64>, tensor<2xf64>
}
