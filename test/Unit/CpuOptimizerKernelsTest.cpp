//===- CpuOptimizerKernelsTest.cpp - f32 CPU optimizer kernels ------------===//
//
// lrSchedule, globalNorm and adamw of moert::cpu against the reference
// optimizer kernels.
//
//===----------------------------------------------------------------------===//

#include "CpuTestUtils.h"
#include "moe/Interpreter/OptimizerKernels.h"
#include "moert/CpuKernels.h"

#include <gtest/gtest.h>

using namespace moe::test;
namespace cpu = moert::cpu;
namespace ref = mlir::moe::ref;

TEST(CpuOptimizerKernelsTest, LrScheduleMatchesReference) {
  for (moert::LrDecay decay : {moert::LrDecay::Cosine, moert::LrDecay::Linear,
                               moert::LrDecay::Constant}) {
    ref::LrSchedule schedule{3e-4, 3e-5, 10, 100, decay};
    for (int64_t step : {0, 1, 5, 9, 10, 11, 50, 99, 100, 101, 1000}) {
      float lr =
          cpu::lrSchedule(step, schedule.maxLr, schedule.minLr,
                          schedule.warmupSteps, schedule.decaySteps, decay);
      EXPECT_NEAR(lr, schedule.at(step), 1e-7 * schedule.at(step))
          << "step " << step << ", decay " << static_cast<int>(decay);
    }
  }
  // No warmup.
  ref::LrSchedule flat{1e-3, 1e-3, 0, 5, moert::LrDecay::Cosine};
  EXPECT_NEAR(cpu::lrSchedule(2, 1e-3, 1e-3, 0, 5, moert::LrDecay::Cosine),
              flat.at(2), 1e-10);
}

TEST(CpuOptimizerKernelsTest, GlobalNormMatchesReference) {
  // Sizes around and well past a parallel split, and an empty tensor.
  std::vector<Floats> tensors;
  std::vector<Tensor> refs;
  uint32_t seed = 0;
  for (int64_t size : {1, 0, 17, 1000, 100003, 262144}) {
    ++seed;
    tensors.push_back(randomFloats(size, seed, 0.1f * seed));
    refs.push_back(f32({size}, tensors.back()));
  }
  std::vector<const float *> pointers;
  std::vector<int64_t> sizes;
  std::vector<const Tensor *> refPointers;
  for (size_t i = 0; i < tensors.size(); ++i) {
    pointers.push_back(tensors[i].data());
    sizes.push_back(static_cast<int64_t>(tensors[i].size()));
    refPointers.push_back(&refs[i]);
  }
  float norm = cpu::globalNorm(pointers.data(), sizes.data(),
                               static_cast<int64_t>(pointers.size()));
  expectScalarClose(norm, ref::globalNorm(refPointers, DType::F32),
                    "globalNorm");
  EXPECT_EQ(norm, cpu::globalNorm(pointers.data(), sizes.data(),
                                  static_cast<int64_t>(pointers.size())));
  EXPECT_EQ(cpu::globalNorm(pointers.data(), sizes.data(), 0), 0.0f);
}

TEST(CpuOptimizerKernelsTest, AdamWMatchesReferenceAndMayAlias) {
  for (AdamWCase &c : adamwCases()) {
    std::string name = c.name();
    auto [newParam, newAvg, newAvgSq] = c.cpuUpdate();
    cpu::AdamWConfig config = c.config();
    ref::AdamWResult expected =
        ref::adamw(f32({c.count}, c.param), f32({c.count}, c.grad),
                   f32({c.count}, c.expAvg), f32({c.count}, c.expAvgSq),
                   Tensor::scalar(DType::F32, c.lr),
                   Tensor::scalar(DType::F32, c.gradNorm),
                   Tensor::scalar(DType::I64, static_cast<double>(c.step)),
                   ref::AdamWConfig{config.beta1, config.beta2, config.eps,
                                    config.weightDecay, config.maxGradNorm});
    expectClose(newParam, expected.param, "adamw param " + name, 1e-6);
    expectClose(newAvg, expected.expAvg, "adamw expAvg " + name, 1e-6);
    expectClose(newAvgSq, expected.expAvgSq, "adamw expAvgSq " + name, 1e-6);
    // In place: the outputs alias the inputs.
    cpu::adamw(c.param.data(), c.grad.data(), c.expAvg.data(),
               c.expAvgSq.data(), c.count, c.lr, c.gradNorm, c.step, config,
               c.param.data(), c.expAvg.data(), c.expAvgSq.data());
    expectBitwiseEqual(c.param, newParam, "in-place adamw param " + name);
    expectBitwiseEqual(c.expAvg, newAvg, "in-place adamw expAvg " + name);
    expectBitwiseEqual(c.expAvgSq, newAvgSq, "in-place adamw expAvgSq " + name);
  }
}

// Clipping scales the gradient by max_grad_norm / (norm + 1e-6), as
// PyTorch's clip_grad_norm_ does: the 1e-6 is invisible at the norms of
// adamwCases (a relative 1e-6 of theirs), so this checks it where it
// decides the factor. By hand, with norm = max_grad_norm = 1e-6 the factor
// is 1e-6 / 2e-6 = 0.5 (without the 1e-6 it would be min(1, 1) = 1); from
// zero moments at step 0 with beta1 0.9, beta2 0.95 and g = 1e-6:
//   m = 0.1 * 0.5 * 1e-6 = 5e-8,  v = 0.05 * (0.5 * 1e-6)^2 = 1.25e-14.
TEST(CpuOptimizerKernelsTest, AdamWClipsByMaxNormOverNormPlusOneMillionth) {
  Floats param = {1.0f}, grad = {1e-6f}, expAvg = {0.0f}, expAvgSq = {0.0f};
  Floats newParam(1), newAvg(1), newAvgSq(1);
  moert::AdamWConfig config{0.9, 0.95, 1e-8, 0.0, 1e-6};
  cpu::adamw(param.data(), grad.data(), expAvg.data(), expAvgSq.data(), 1,
             1e-3f, 1e-6f, 0, config, newParam.data(), newAvg.data(),
             newAvgSq.data());
  EXPECT_NEAR(newAvg[0], 5e-8, 1e-6 * 5e-8);
  EXPECT_NEAR(newAvgSq[0], 1.25e-14, 1e-6 * 1.25e-14);
}
