//===- OptimizerKernelsTest.cpp - the reference optimizer ops -------------===//
//
// Expected values were computed independently (Python, written out in the
// comments) from the formulas of MoeOptimizerOps.td, PyTorch's AdamW and
// nanoGPT's learning-rate schedule.
//
//===----------------------------------------------------------------------===//

#include "moe/Interpreter/OptimizerKernels.h"
#include "TestUtils.h"

#include <gtest/gtest.h>

using namespace mlir::moe::ref;
using namespace moe::test;

namespace {

Tensor scalar(DType dtype, double value) {
  return Tensor::scalar(dtype, value);
}

} // namespace

// One step at t = 5 (step 4) with clipping active: the global norm 3 is
// above max_grad_norm 1, so g = grad / (3 + 1e-6). Per element:
//   m = 0.9 m0 + 0.1 g;  v = 0.999 v0 + 0.001 g^2;  p = p0 (1 - 0.01 * 0.1)
//   p' = p - 0.01 * (m / (1 - 0.9^5)) / (sqrt(v / (1 - 0.999^5)) + 1e-8)
// param [1, -2], grad [0.5, 0.1], m0 [0.1, 0], v0 [0.01, 0].
TEST(AdamWTest, OneStepWithClippingAndDecayMatchesHandComputation) {
  AdamWConfig config{0.9, 0.999, 1e-8, 0.1, 1.0};
  AdamWResult result =
      adamw(f64({2}, {1.0, -2.0}), f64({2}, {0.5, 0.1}), f64({2}, {0.1, 0.0}),
            f64({2}, {0.01, 0.0}), scalar(DType::F64, 0.01),
            scalar(DType::F64, 3.0), scalar(DType::I64, 4), config);
  expectTensor(result.param, DType::F64, {2},
               {0.9971616457738302, -2.0034548888441153});
  expectTensor(result.expAvg, DType::F64, {2},
               {0.10666666111111298, 0.0033333322222225915});
  expectTensor(result.expAvgSq, DType::F64, {2},
               {0.010017777759259269, 1.1111103703707416e-06});
}

// At t = 1 with m0 = v0 = 0 and no clipping or decay, bias correction makes
// the update lr * g / (|g| + eps): a step of exactly lr against the sign.
TEST(AdamWTest, FirstStepMovesByLearningRate) {
  AdamWConfig config{0.9, 0.95, 1e-18, 0.0, 0.0};
  AdamWResult result =
      adamw(f64({3}, {0.0, 1.0, -1.0}), f64({3}, {2.0, -0.5, 1e-3}),
            f64({3}, {0, 0, 0}), f64({3}, {0, 0, 0}), scalar(DType::F64, 0.1),
            scalar(DType::F64, 100.0), scalar(DType::I64, 0), config);
  expectTensor(result.param, DType::F64, {3}, {-0.1, 1.1, -1.1});
}

// Below the threshold the clipping factor is 1: the gradient is unchanged.
TEST(AdamWTest, NormBelowThresholdDoesNotClip) {
  AdamWConfig config{0.5, 0.5, 1e-8, 0.0, 10.0};
  AdamWResult result =
      adamw(f64({1}, {0.0}), f64({1}, {2.0}), f64({1}, {0.0}), f64({1}, {0.0}),
            scalar(DType::F64, 1.0), scalar(DType::F64, 2.0),
            scalar(DType::I64, 0), config);
  // m = 0.5 * 2 = 1, v = 0.5 * 4 = 2.
  expectTensor(result.expAvg, DType::F64, {1}, {1.0});
  expectTensor(result.expAvgSq, DType::F64, {1}, {2.0});
}

// nanoGPT: max 1e-3, min 1e-4, warmup 100, decay 2000.
//   step 0: 1e-3 * 1/101;  step 99: 1e-3 * 100/101;  step 100: 1e-3;
//   step 1050 (halfway): 1e-4 + 0.5 * 9e-4 = 5.5e-4;  2000, 2001: 1e-4.
TEST(LrScheduleTest, WarmupThenCosineToMinimum) {
  LrSchedule schedule{1e-3, 1e-4, 100, 2000, moert::LrDecay::Cosine};
  EXPECT_NEAR(schedule.at(0), 9.900990099009901e-06, 1e-18);
  EXPECT_NEAR(schedule.at(99), 0.0009900990099009901, 1e-18);
  EXPECT_NEAR(schedule.at(100), 0.001, 1e-18);
  EXPECT_NEAR(schedule.at(1050), 0.00055, 1e-15);
  EXPECT_NEAR(schedule.at(2000), 0.0001, 1e-18);
  EXPECT_NEAR(schedule.at(2001), 0.0001, 1e-18);
  Tensor lr = lrSchedule(scalar(DType::I64, 100), schedule, DType::F32);
  EXPECT_EQ(lr.dtype, DType::F32);
  EXPECT_EQ(lr.data[0], 0.001);
}

// The same warmup, then a straight line to 1e-4 (halfway: 5.5e-4 too,
// a quarter of the way: 1e-4 + 0.75 * 9e-4), or the peak from then on.
TEST(LrScheduleTest, LinearAndConstantDecay) {
  LrSchedule linear{1e-3, 1e-4, 100, 2000, moert::LrDecay::Linear};
  EXPECT_NEAR(linear.at(99), 0.0009900990099009901, 1e-18);
  EXPECT_NEAR(linear.at(100), 0.001, 1e-18);
  EXPECT_NEAR(linear.at(575), 0.000775, 1e-15);
  EXPECT_NEAR(linear.at(1050), 0.00055, 1e-15);
  EXPECT_NEAR(linear.at(2000), 0.0001, 1e-18);
  EXPECT_NEAR(linear.at(5000), 0.0001, 1e-18);
  LrSchedule constant{1e-3, 1e-4, 100, 2000, moert::LrDecay::Constant};
  EXPECT_NEAR(constant.at(0), 9.900990099009901e-06, 1e-18);
  EXPECT_EQ(constant.at(100), 0.001);
  EXPECT_EQ(constant.at(5000), 0.001);
}

// sqrt(3^2 + 4^2 + 12^2) = 13.
TEST(GlobalNormTest, NormOfAllTensorsTogether) {
  Tensor a = f64({2}, {3.0, 4.0});
  Tensor b = f64({1, 1}, {12.0});
  Tensor norm = globalNorm({&a, &b}, DType::F64);
  expectTensor(norm, DType::F64, {}, {13.0});
}
