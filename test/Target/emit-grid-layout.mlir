// Code generation runs the layouts of moe-expert-parallel, [ranks] and
// [replicas, expert ranks], whose groups the runtime rebuilds from the
// model's ranks and expert ranks; another grid is refused, not miscompiled.
// RUN: not moe-translate --emit=cpp %s 2>&1 | FileCheck %s
// CHECK: error: code generation supports one grid of a static shape [ranks] or [replicas, expert ranks] (moe-expert-parallel's layouts)

shard.grid @ranks(shape = 1x2)

func.func @forward(%x: tensor<2xf32> {moe.input = "x"}) -> (tensor<2xf32> {moe.output = "y"}) attributes {moe.spmd_grid = @ranks} {
  return %x : tensor<2xf32>
}
