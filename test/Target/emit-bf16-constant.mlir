// A bf16 constant is written by its bits (bf16's storage type takes no
// number), on both targets, and the code compiles.
// RUN: rm -rf %t && mkdir -p %t
// RUN: moe-translate --emit=cpp %s -o %t/model.cpp
// RUN: FileCheck %s < %t/model.cpp
// RUN: c++ -std=c++17 -fsyntax-only -I%moe_src/runtime/include %t/model.cpp
// RUN: %if cuda-toolkit %{ moe-opt %s --moe-attach-target=target=cuda | moe-translate --emit=cuda -o %t/model.cu %}
// RUN: %if cuda-toolkit %{ FileCheck %s --check-prefixes=CHECK,CUDA < %t/model.cu %}
// RUN: %if cuda-toolkit %{ %nvcc -std=c++17 -ptx -arch=compute_80 -I%moe_src/runtime/include %t/model.cu -o %t/model.ptx %}
// CHECK-DAG: moert::bf16 [[LIST:constant[0-9]+]][4] = {moert::bf16{0x3f80}, moert::bf16{0x4000}, moert::bf16{0x4040}, moert::bf16{0xc080}};
// CHECK-DAG: moert::bf16 [[SPLAT:constant[0-9]+]][4] = {};
// CHECK-DAG: std::fill_n([[SPLAT]], 4, moert::bf16(moert::bf16{0x3fc0}))
// CHECK-DAG: moert::bf16 [[ZERO:constant[0-9]+]][4] = {};
// CUDA-DAG: moert::cuda::uploadConstant([[LIST]], 4)
func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
  %c = arith.constant dense<[1.0, 2.0, 3.0, -4.0]> : tensor<4xbf16>
  %s = arith.constant dense<1.5> : tensor<4xbf16>
  %z = arith.constant dense<0.0> : tensor<4xbf16>
  %e = arith.extf %c : tensor<4xbf16> to tensor<4xf32>
  %f = arith.extf %s : tensor<4xbf16> to tensor<4xf32>
  %g = arith.extf %z : tensor<4xbf16> to tensor<4xf32>
  %r = moe.add %e, %a : tensor<4xf32>
  %t = moe.add %r, %f : tensor<4xf32>
  %u = moe.add %t, %g : tensor<4xf32>
  return %u : tensor<4xf32>
}
