// Names become C++ identifiers and string literals that compile, on both
// targets: symbols that differ only in characters an identifier cannot
// hold ("a.b", "a-b", and "a_b_8", the name the emitter gives "a-b"), a
// control character (a carriage return) in a global's name and the
// config, and an i64 constant of -2^63, which has no literal.
// RUN: rm -rf %t && mkdir -p %t
// RUN: moe-translate --emit=cpp %s -o %t/model.cpp
// RUN: FileCheck %s < %t/model.cpp
// RUN: c++ -std=c++17 -fsyntax-only -Werror -I%moe_src/runtime/include %t/model.cpp
// RUN: %if cuda-toolkit %{ moe-opt %s --moe-attach-target=target=cuda | moe-translate --emit=cuda -o %t/model.cu %}
// RUN: %if cuda-toolkit %{ %nvcc -std=c++17 -ptx -arch=compute_80 -I%moe_src/runtime/include %t/model.cu -o %t/model.ptx %}
// CHECK-DAG: "{\015}"
// CHECK-DAG: "no\015rm"
// CHECK-DAG: INT64_MIN
// CHECK-DAG: {"a-b", {{.*}}, function_a_b_8, 0, nullptr},
// CHECK-DAG: {"a_b_8", {{.*}}, function_a_b_8_{{[0-9]+}}, 0, nullptr},
module attributes {moe.config = "{\0D}"} {
ml_program.global private mutable @"no\0Drm" : tensor<4xf32> {moe.init = #moe.init<constant, 1.0>, moe.trainable}

func.func @"a.b"(%a: tensor<4xf32> {moe.input = "a"}) -> (tensor<4xf32> {moe.output = "r"}) {
  %w = ml_program.global_load @"no\0Drm" : tensor<4xf32>
  %r = moe.add %a, %w : tensor<4xf32>
  return %r : tensor<4xf32>
}
func.func @"a-b"(%a: tensor<4xf32> {moe.input = "a"}) -> (tensor<4xf32> {moe.output = "r"}) {
  return %a : tensor<4xf32>
}
func.func @a_b_8(%a: tensor<2xi64> {moe.input = "a"}) -> (tensor<2xi64> {moe.output = "r"}) {
  %c = arith.constant dense<[-9223372036854775808, 1]> : tensor<2xi64>
  %r = arith.addi %a, %c : tensor<2xi64>
  return %r : tensor<2xi64>
}
}
