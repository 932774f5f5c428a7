// RUN: moe-opt %s --moe-fuse-elementwise | FileCheck %s
// RUN: moe-opt %s --moe-fuse-elementwise=fuse-swiglu=false | FileCheck %s --check-prefix=NO-SWIGLU
// RUN: moe-opt %s --moe-fuse-elementwise | moe-translate --emit=cpp | FileCheck %s --check-prefix=CPP
// RUN: moe-run %s --entry chain > %t.unfused
// RUN: moe-opt %s --moe-fuse-elementwise -o %t.fused.mlir
// RUN: moe-run %t.fused.mlir --entry chain > %t.fused
// The fused loop rounds once instead of after every op: equal to f32 rounding,
// all 6 values (a NaN or a missing value fails).
// RUN: %python -c "import sys; a, b = [[float(x) for x in open(f).read().split('=')[1].split()] for f in sys.argv[1:]]; sys.exit(not (len(a) == len(b) == 6 and all(abs(x - y) <= 1e-6 * max(abs(x), 1) for x, y in zip(a, b))))" %t.unfused %t.fused

// swiglu -> mul -> add: one loop; %a is read twice but passed once.
// CHECK-LABEL: func.func @chain
// CHECK-NOT: moe.swiglu
// CHECK: %[[F:.*]] = moe.fused_elementwise %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xf32> {
// CHECK-NEXT: ^bb0(%[[G:.*]]: f32, %[[U:.*]]: f32, %[[R:.*]]: f32):
// CHECK-NEXT: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT: %[[NEG:.*]] = arith.negf %[[G]] : f32
// CHECK-NEXT: %[[EXP:.*]] = math.exp %[[NEG]] : f32
// CHECK-NEXT: %[[DEN:.*]] = arith.addf %[[ONE]], %[[EXP]] : f32
// CHECK-NEXT: %[[SIG:.*]] = arith.divf %[[G]], %[[DEN]] : f32
// CHECK-NEXT: %[[SW:.*]] = arith.mulf %[[SIG]], %[[U]] : f32
// CHECK-NEXT: %[[M:.*]] = arith.mulf %[[SW]], %[[G]] : f32
// CHECK-NEXT: %[[S:.*]] = arith.addf %[[M]], %[[R]] : f32
// CHECK-NEXT: moe.yield %[[S]] : f32
// CHECK: return %[[F]]

// CPP: #pragma omp parallel for simd schedule(static)
// CPP-NEXT: for (int64_t i = 0; i < 6; ++i) {
// CPP: std::exp(
// CPP: [i] = e{{[0-9]+}};

func.func @chain() -> tensor<2x3xf32> {
  %a = arith.constant dense<[[1.0, -2.0, 0.5], [3.0, 0.0, -1.5]]> : tensor<2x3xf32>
  %b = arith.constant dense<[[0.5, 1.0, 2.0], [-1.0, 4.0, 0.25]]> : tensor<2x3xf32>
  %c = arith.constant dense<[[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]> : tensor<2x3xf32>
  %s = moe.swiglu %a, %b : tensor<2x3xf32>
  %m = moe.mul %s, %a : tensor<2x3xf32>
  %r = moe.add %m, %c : tensor<2x3xf32>
  return %r : tensor<2x3xf32>
}

// A value with two uses ends its chain: %s stays a kernel of its own.
// CHECK-LABEL: func.func @shared
// CHECK: moe.swiglu
// CHECK-NOT: moe.fused_elementwise
// CHECK: return
func.func @shared(%a: tensor<4xf32>, %b: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %s = moe.swiglu %a, %b : tensor<4xf32>
  %m = moe.mul %s, %a : tensor<4xf32>
  return %s, %m : tensor<4xf32>, tensor<4xf32>
}

// The control function of fuse-swiglu=false keeps the SwiGLU a kernel of its
// own; the rest of the chain still fuses.
// NO-SWIGLU-LABEL: func.func @chain
// NO-SWIGLU: %[[S:.*]] = moe.swiglu
// NO-SWIGLU-NEXT: moe.fused_elementwise %[[S]], %{{.*}}, %{{.*}} : tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xf32> {
// NO-SWIGLU-NEXT: ^bb0(%{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32):
// NO-SWIGLU-NEXT: arith.mulf
// NO-SWIGLU-NEXT: arith.addf
// NO-SWIGLU-NEXT: moe.yield

// A fused loop belongs to the layer of the chain's last op.
// CHECK-LABEL: func.func @layered
// CHECK: moe.fused_elementwise %arg0, %arg1 {moe.layer = 2 : i64} : tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
func.func @layered(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %m = moe.mul %a, %b {moe.layer = 2 : i64} : tensor<4xf32>
  %r = moe.add %m, %a {moe.layer = 2 : i64} : tensor<4xf32>
  return %r : tensor<4xf32>
}

// A single elementwise op is no chain: nothing to fuse.
// CHECK-LABEL: func.func @single
// CHECK-NEXT: moe.add
// CHECK-NOT: moe.fused_elementwise
func.func @single(%a: tensor<4xf32>) -> tensor<4xf32> {
  %r = moe.add %a, %a : tensor<4xf32>
  return %r : tensor<4xf32>
}
