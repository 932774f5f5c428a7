// RUN: moe-opt %s --moe-cost-model -o /dev/null | FileCheck %s

// The bandwidth-bound ops' estimates, by hand: x, dy and dx are 2 x 3 x 8 =
// 48 f32 (192 bytes), w and dw 8 f32 (32 bytes). moe.rms_norm counts 4 flops
// per result element (192) and moves x, w and y (416 bytes); moe.rms_norm_grad
// 8 per input element (384) and moves x, w, dy, dx and dw (640 bytes). With
// no layer, the forward goes to the embedding's slot and the backward to the
// head's.
// CHECK: cost of @train_step: 0 layers, 1 rank(s)
// CHECK: embed forward: gemm 0 flops, attention 0 flops, other 192 flops, memory 416 bytes
// CHECK: head backward: gemm 0 flops, attention 0 flops, other 384 flops, memory 640 bytes

func.func @train_step(%x: tensor<2x3x8xf32>, %w: tensor<8xf32>, %dy: tensor<2x3x8xf32>) -> (tensor<2x3x8xf32>, tensor<2x3x8xf32>, tensor<8xf32>) {
  %y = moe.rms_norm %x, %w eps = 1.0e-05 : tensor<2x3x8xf32>, tensor<8xf32>
  %dx, %dw = moe.rms_norm_grad %x, %w, %dy eps = 1.0e-05 : tensor<2x3x8xf32>, tensor<8xf32>
  return %y, %dx, %dw : tensor<2x3x8xf32>, tensor<2x3x8xf32>, tensor<8xf32>
}
