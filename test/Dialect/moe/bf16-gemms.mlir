// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// The GEMM ops take bf16 operands (moe-mixed-precision) and then return
// f32; the expert FFN keeps its projections in bf16. The expert FFN and its
// gradient infer their f32 results from the bf16 operands, so their custom
// form is the one of f32. A linear layer without a bias and its input
// gradient, and attention, may also round their f32 results to bf16
// (moe-narrow-results); attention prints such a result after an arrow.
// With bf16 tokens the expert FFN may read f32 weights, which its GEMMs
// read rounded (moe-mixed-precision weight-copies=per-expert).

// CHECK-LABEL: func.func @bf16_gemms
// CHECK: moe.linear %{{.*}}, %{{.*}} bias %{{.*}} : tensor<4x8xbf16>, tensor<2x8xbf16>, tensor<2xf32> -> tensor<4x2xf32>
// CHECK: moe.linear_input_grad %{{.*}}, %{{.*}} : tensor<4x2xbf16>, tensor<2x8xbf16> -> tensor<4x8xf32>
// CHECK: moe.linear_weight_grad %{{.*}}, %{{.*}} : tensor<4x2xbf16>, tensor<4x8xbf16> -> tensor<2x8xf32>
// CHECK: moe.linear %{{.*}}, %{{.*}} : tensor<4x8xbf16>, tensor<2x8xbf16> -> tensor<4x2xbf16>
// CHECK: moe.linear_input_grad %{{.*}}, %{{.*}} : tensor<4x2xbf16>, tensor<2x8xbf16> -> tensor<4x8xbf16>
// CHECK: moe.attention %{{.*}} causal : tensor<1x4x2x8xbf16>, tensor<1x4x1x8xbf16>{{$}}
// CHECK: moe.attention %{{.*}} causal : tensor<1x4x2x8xbf16>, tensor<1x4x1x8xbf16> -> tensor<1x4x2x8xbf16>
// CHECK: %[[Y:.*]], %[[P:.*]] = moe.expert_ffn %{{.*}} : tensor<2x3x8xbf16>, tensor<2x5x8xbf16>, tensor<2x8x5xbf16> -> tensor<2x2x3x5xbf16>
// CHECK: moe.expert_ffn_grad %{{.*}}, %[[P]], %{{.*}} : tensor<2x3x8xbf16>, tensor<2x5x8xbf16>, tensor<2x8x5xbf16>, tensor<2x2x3x5xbf16>
// CHECK: %[[Y32:.*]], %[[P32:.*]] = moe.expert_ffn %{{.*}} : tensor<2x3x8xbf16>, tensor<2x5x8xf32>, tensor<2x8x5xf32> -> tensor<2x2x3x5xbf16>
// CHECK: moe.expert_ffn_grad %{{.*}}, %[[P32]], %{{.*}} : tensor<2x3x8xbf16>, tensor<2x5x8xf32>, tensor<2x8x5xf32>, tensor<2x2x3x5xbf16>
// CHECK: return %[[Y]], {{.*}} : tensor<2x3x8xf32>, tensor<2x3x8xf32>, tensor<2x5x8xf32>, tensor<2x5x8xf32>, tensor<2x8x5xf32>
func.func @bf16_gemms(%x: tensor<4x8xbf16>, %w: tensor<2x8xbf16>, %b: tensor<2xf32>, %dy: tensor<4x2xbf16>,
                      %buf: tensor<2x3x8xbf16>, %w1: tensor<2x5x8xbf16>, %w3: tensor<2x5x8xbf16>, %w2: tensor<2x8x5xbf16>,
                      %dbuf: tensor<2x3x8xbf16>, %q: tensor<1x4x2x8xbf16>, %k: tensor<1x4x1x8xbf16>,
                      %v1: tensor<2x5x8xf32>, %v3: tensor<2x5x8xf32>, %v2: tensor<2x8x5xf32>)
    -> (tensor<2x3x8xf32>, tensor<2x3x8xf32>, tensor<2x5x8xf32>, tensor<2x5x8xf32>, tensor<2x8x5xf32>) {
  %y = moe.linear %x, %w bias %b : tensor<4x8xbf16>, tensor<2x8xbf16>, tensor<2xf32> -> tensor<4x2xf32>
  %dx = moe.linear_input_grad %dy, %w : tensor<4x2xbf16>, tensor<2x8xbf16> -> tensor<4x8xf32>
  %dw = moe.linear_weight_grad %dy, %x : tensor<4x2xbf16>, tensor<4x8xbf16> -> tensor<2x8xf32>
  %yb = moe.linear %x, %w : tensor<4x8xbf16>, tensor<2x8xbf16> -> tensor<4x2xbf16>
  %dxb = moe.linear_input_grad %dy, %w : tensor<4x2xbf16>, tensor<2x8xbf16> -> tensor<4x8xbf16>
  %o, %lse = moe.attention %q, %k, %k causal : tensor<1x4x2x8xbf16>, tensor<1x4x1x8xbf16>
  %ob, %lseb = moe.attention %q, %k, %k causal : tensor<1x4x2x8xbf16>, tensor<1x4x1x8xbf16> -> tensor<1x4x2x8xbf16>
  %out, %proj = moe.expert_ffn %buf, %w1, %w3, %w2 : tensor<2x3x8xbf16>, tensor<2x5x8xbf16>, tensor<2x8x5xbf16> -> tensor<2x2x3x5xbf16>
  %din, %dw1, %dw3, %dw2 = moe.expert_ffn_grad %buf, %w1, %w3, %w2, %proj, %dbuf : tensor<2x3x8xbf16>, tensor<2x5x8xbf16>, tensor<2x8x5xbf16>, tensor<2x2x3x5xbf16>
  %out32, %proj32 = moe.expert_ffn %buf, %v1, %v3, %v2 : tensor<2x3x8xbf16>, tensor<2x5x8xf32>, tensor<2x8x5xf32> -> tensor<2x2x3x5xbf16>
  %din32, %dv1, %dv3, %dv2 = moe.expert_ffn_grad %buf, %v1, %v3, %v2, %proj32, %dbuf : tensor<2x3x8xbf16>, tensor<2x5x8xf32>, tensor<2x8x5xf32>, tensor<2x2x3x5xbf16>
  return %out, %din, %dw1, %dw3, %dw2 : tensor<2x3x8xf32>, tensor<2x3x8xf32>, tensor<2x5x8xf32>, tensor<2x5x8xf32>, tensor<2x8x5xf32>
}
