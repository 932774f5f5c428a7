// RUN: moe-opt %s -split-input-file -verify-diagnostics | FileCheck %s

// The capacity of moe.dispatch: ceil(capacity_factor * T * k / E), with the
// product first rounded to the nearest integer when it is one up to
// floating-point error, or T when dropless. Each case is accepted with the
// right capacity and rejected with a neighbouring one.

// 1.1 * 100 = 110.00000000000001 in doubles: the product is rounded
// first, so the capacity is 110, not 111.
// CHECK-LABEL: func.func @cf_1_1_t100(
// CHECK: %{{.*}}, %{{.*}}, %{{.*}} = moe.dispatch %{{.*}}, %{{.*}} capacity_factor = 1.100000e+00 : tensor<100x8xf32>, tensor<100x1xi32> -> tensor<1x110x8xf32>, tensor<100x1xi32>, tensor<i64>
func.func @cf_1_1_t100(%x: tensor<100x8xf32>, %i: tensor<100x1xi32>) -> tensor<1x110x8xf32> {
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.1 : tensor<100x8xf32>, tensor<100x1xi32> -> tensor<1x110x8xf32>, tensor<100x1xi32>, tensor<i64>
  return %b : tensor<1x110x8xf32>
}

// -----

func.func @cf_1_1_t100_rejected(%x: tensor<100x8xf32>, %i: tensor<100x1xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have shape [1, 110, 8], got [1, 111, 8]}}
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.1 : tensor<100x8xf32>, tensor<100x1xi32> -> tensor<1x111x8xf32>, tensor<100x1xi32>, tensor<i64>
  return
}

// -----

// 1.1 * 100 * 2 / 4 = 55.00000000000001: capacity 55, not 56.
// CHECK-LABEL: func.func @cf_1_1_t100_k2_e4(
// CHECK: %{{.*}}, %{{.*}}, %{{.*}} = moe.dispatch %{{.*}}, %{{.*}} capacity_factor = 1.100000e+00 : tensor<100x8xf32>, tensor<100x2xi32> -> tensor<4x55x8xf32>, tensor<100x2xi32>, tensor<i64>
func.func @cf_1_1_t100_k2_e4(%x: tensor<100x8xf32>, %i: tensor<100x2xi32>) -> tensor<4x55x8xf32> {
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.1 : tensor<100x8xf32>, tensor<100x2xi32> -> tensor<4x55x8xf32>, tensor<100x2xi32>, tensor<i64>
  return %b : tensor<4x55x8xf32>
}

// -----

func.func @cf_1_1_t100_k2_e4_rejected(%x: tensor<100x8xf32>, %i: tensor<100x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have shape [4, 55, 8], got [4, 56, 8]}}
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.1 : tensor<100x8xf32>, tensor<100x2xi32> -> tensor<4x56x8xf32>, tensor<100x2xi32>, tensor<i64>
  return
}

// -----

// 1.15 * 100 = 114.99999999999999: capacity 115 (neither truncated nor
// floored to 114).
// CHECK-LABEL: func.func @cf_1_15_t100(
// CHECK: %{{.*}}, %{{.*}}, %{{.*}} = moe.dispatch %{{.*}}, %{{.*}} capacity_factor = 1.150000e+00 : tensor<100x8xf32>, tensor<100x1xi32> -> tensor<1x115x8xf32>, tensor<100x1xi32>, tensor<i64>
func.func @cf_1_15_t100(%x: tensor<100x8xf32>, %i: tensor<100x1xi32>) -> tensor<1x115x8xf32> {
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.15 : tensor<100x8xf32>, tensor<100x1xi32> -> tensor<1x115x8xf32>, tensor<100x1xi32>, tensor<i64>
  return %b : tensor<1x115x8xf32>
}

// -----

func.func @cf_1_15_t100_rejected(%x: tensor<100x8xf32>, %i: tensor<100x1xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have shape [1, 115, 8], got [1, 114, 8]}}
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.15 : tensor<100x8xf32>, tensor<100x1xi32> -> tensor<1x114x8xf32>, tensor<100x1xi32>, tensor<i64>
  return
}

// -----

// The Skywork-MoE example: 1.25 * 512 * 2 / 8 = 160 exactly.
// CHECK-LABEL: func.func @cf_1_25_t512(
// CHECK: %{{.*}}, %{{.*}}, %{{.*}} = moe.dispatch %{{.*}}, %{{.*}} capacity_factor = 1.250000e+00 : tensor<512x8xf32>, tensor<512x2xi32> -> tensor<8x160x8xf32>, tensor<512x2xi32>, tensor<i64>
func.func @cf_1_25_t512(%x: tensor<512x8xf32>, %i: tensor<512x2xi32>) -> tensor<8x160x8xf32> {
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.25 : tensor<512x8xf32>, tensor<512x2xi32> -> tensor<8x160x8xf32>, tensor<512x2xi32>, tensor<i64>
  return %b : tensor<8x160x8xf32>
}

// -----

func.func @cf_1_25_t512_rejected(%x: tensor<512x8xf32>, %i: tensor<512x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have shape [8, 160, 8], got [8, 161, 8]}}
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.25 : tensor<512x8xf32>, tensor<512x2xi32> -> tensor<8x161x8xf32>, tensor<512x2xi32>, tensor<i64>
  return
}

// -----

// A genuine fraction rounds up: 1.25 * 10 * 1 / 4 = 3.125 -> 4.
// CHECK-LABEL: func.func @cf_1_25_ceil(
// CHECK: %{{.*}}, %{{.*}}, %{{.*}} = moe.dispatch %{{.*}}, %{{.*}} capacity_factor = 1.250000e+00 : tensor<10x8xf32>, tensor<10x1xi32> -> tensor<4x4x8xf32>, tensor<10x1xi32>, tensor<i64>
func.func @cf_1_25_ceil(%x: tensor<10x8xf32>, %i: tensor<10x1xi32>) -> tensor<4x4x8xf32> {
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.25 : tensor<10x8xf32>, tensor<10x1xi32> -> tensor<4x4x8xf32>, tensor<10x1xi32>, tensor<i64>
  return %b : tensor<4x4x8xf32>
}

// -----

func.func @cf_1_25_ceil_rejected(%x: tensor<10x8xf32>, %i: tensor<10x1xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have shape [4, 4, 8], got [4, 3, 8]}}
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.25 : tensor<10x8xf32>, tensor<10x1xi32> -> tensor<4x3x8xf32>, tensor<10x1xi32>, tensor<i64>
  return
}

// -----

// 1.0 * 10 * 2 / 8 = 2.5 -> 3 (ceil, not round-half-even).
// CHECK-LABEL: func.func @cf_1_0_half(
// CHECK: %{{.*}}, %{{.*}}, %{{.*}} = moe.dispatch %{{.*}}, %{{.*}} capacity_factor = 1.000000e+00 : tensor<10x8xf32>, tensor<10x2xi32> -> tensor<8x3x8xf32>, tensor<10x2xi32>, tensor<i64>
func.func @cf_1_0_half(%x: tensor<10x8xf32>, %i: tensor<10x2xi32>) -> tensor<8x3x8xf32> {
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.0 : tensor<10x8xf32>, tensor<10x2xi32> -> tensor<8x3x8xf32>, tensor<10x2xi32>, tensor<i64>
  return %b : tensor<8x3x8xf32>
}

// -----

func.func @cf_1_0_half_rejected(%x: tensor<10x8xf32>, %i: tensor<10x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have shape [8, 3, 8], got [8, 2, 8]}}
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.0 : tensor<10x8xf32>, tensor<10x2xi32> -> tensor<8x2x8xf32>, tensor<10x2xi32>, tensor<i64>
  return
}

// -----

// A small product still gets one row: 0.01 * 10 * 1 / 8 = 0.0125 -> 1.
// CHECK-LABEL: func.func @cf_small(
// CHECK: %{{.*}}, %{{.*}}, %{{.*}} = moe.dispatch %{{.*}}, %{{.*}} capacity_factor = 1.000000e-02 : tensor<10x8xf32>, tensor<10x1xi32> -> tensor<8x1x8xf32>, tensor<10x1xi32>, tensor<i64>
func.func @cf_small(%x: tensor<10x8xf32>, %i: tensor<10x1xi32>) -> tensor<8x1x8xf32> {
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 0.01 : tensor<10x8xf32>, tensor<10x1xi32> -> tensor<8x1x8xf32>, tensor<10x1xi32>, tensor<i64>
  return %b : tensor<8x1x8xf32>
}

// -----

func.func @cf_small_rejected(%x: tensor<10x8xf32>, %i: tensor<10x1xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have shape [8, 1, 8], got [8, 0, 8]}}
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 0.01 : tensor<10x8xf32>, tensor<10x1xi32> -> tensor<8x0x8xf32>, tensor<10x1xi32>, tensor<i64>
  return
}

// -----

// 2.0 * 16 * 2 / 4 = 16.
// CHECK-LABEL: func.func @cf_2_0(
// CHECK: %{{.*}}, %{{.*}}, %{{.*}} = moe.dispatch %{{.*}}, %{{.*}} capacity_factor = 2.000000e+00 : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x16x8xf32>, tensor<16x2xi32>, tensor<i64>
func.func @cf_2_0(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) -> tensor<4x16x8xf32> {
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 2.0 : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x16x8xf32>, tensor<16x2xi32>, tensor<i64>
  return %b : tensor<4x16x8xf32>
}

// -----

func.func @cf_2_0_rejected(%x: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have shape [4, 16, 8], got [4, 17, 8]}}
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 2.0 : tensor<16x8xf32>, tensor<16x2xi32> -> tensor<4x17x8xf32>, tensor<16x2xi32>, tensor<i64>
  return
}

// -----

// dropless: the capacity is T = 512 whatever k and E are (not the
// 1.25 capacity 160).
// CHECK-LABEL: func.func @dropless(
// CHECK: %{{.*}}, %{{.*}}, %{{.*}} = moe.dispatch %{{.*}}, %{{.*}} dropless : tensor<512x8xf32>, tensor<512x2xi32> -> tensor<8x512x8xf32>, tensor<512x2xi32>, tensor<i64>
func.func @dropless(%x: tensor<512x8xf32>, %i: tensor<512x2xi32>) -> tensor<8x512x8xf32> {
  %b, %s, %d = moe.dispatch %x, %i dropless : tensor<512x8xf32>, tensor<512x2xi32> -> tensor<8x512x8xf32>, tensor<512x2xi32>, tensor<i64>
  return %b : tensor<8x512x8xf32>
}

// -----

func.func @dropless_rejected(%x: tensor<512x8xf32>, %i: tensor<512x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have shape [8, 512, 8], got [8, 160, 8]}}
  %b, %s, %d = moe.dispatch %x, %i dropless : tensor<512x8xf32>, tensor<512x2xi32> -> tensor<8x160x8xf32>, tensor<512x2xi32>, tensor<i64>
  return
}

// -----

// ceil(1e-10 * 1 * 1 / 1) = 1: a tiny product is not snapped down to 0.
func.func @capacity_tiny_product(%x: tensor<1x8xf32>, %i: tensor<1x1xi32>) -> tensor<1x1x8xf32> {
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.0e-10 : tensor<1x8xf32>, tensor<1x1xi32> -> tensor<1x1x8xf32>, tensor<1x1xi32>, tensor<i64>
  return %b : tensor<1x1x8xf32>
}

// -----

// A buffer of capacity 0 is rejected for a positive capacity_factor.
func.func @capacity_tiny_product_zero(%x: tensor<1x8xf32>, %i: tensor<1x1xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have shape [1, 1, 8], got [1, 0, 8]}}
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.0e-10 : tensor<1x8xf32>, tensor<1x1xi32> -> tensor<1x0x8xf32>, tensor<1x1xi32>, tensor<i64>
  return
}

// -----

// 1.0000000005 * 1000 = 1000.0000005 is 5e-7 above 1000, far more than
// rounding error: the capacity is ceil = 1001.
func.func @capacity_floored(%x: tensor<1000x8xf32>, %i: tensor<1000x1xi32>) -> tensor<1x1001x8xf32> {
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.0000000005 : tensor<1000x8xf32>, tensor<1000x1xi32> -> tensor<1x1001x8xf32>, tensor<1000x1xi32>, tensor<i64>
  return %b : tensor<1x1001x8xf32>
}

// -----

// The floored capacity 1000 is rejected.
func.func @capacity_floored_rejected(%x: tensor<1000x8xf32>, %i: tensor<1000x1xi32>) {
  // expected-error @+1 {{'moe.dispatch' op 'buffer' must have shape [1, 1001, 8], got [1, 1000, 8]}}
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.0000000005 : tensor<1000x8xf32>, tensor<1000x1xi32> -> tensor<1x1000x8xf32>, tensor<1000x1xi32>, tensor<i64>
  return
}

// -----

// A large product rounds up, not to the nearest integer:
// 1.25 * 4000000001 = 5000000001.25 -> capacity 5000000002.
func.func @capacity_large_product(%x: tensor<4000000001x8xf32>, %i: tensor<4000000001x1xi32>) -> tensor<1x5000000002x8xf32> {
  %b, %s, %d = moe.dispatch %x, %i capacity_factor = 1.25 : tensor<4000000001x8xf32>, tensor<4000000001x1xi32> -> tensor<1x5000000002x8xf32>, tensor<4000000001x1xi32>, tensor<i64>
  return %b : tensor<1x5000000002x8xf32>
}
