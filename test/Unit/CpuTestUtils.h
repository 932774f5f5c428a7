//===- CpuTestUtils.h - helpers of the CPU kernel tests ---------*- C++ -*-===//
//
// The CPU kernels are f32; they are compared with the reference kernels
// (double) on reference tensors holding exactly the same f32 values.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TEST_UNIT_CPUTESTUTILS_H
#define MOE_TEST_UNIT_CPUTESTUTILS_H

#include "TestUtils.h"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace moe::test {

using Floats = std::vector<float>;
using Ids = std::vector<int32_t>;

inline Floats randomFloats(int64_t count, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  Floats values(count);
  for (float &value : values)
    value = normal(rng);
  return values;
}

/// A reference tensor holding exactly the f32 (or i32) values.
template <typename T>
inline Tensor tensor(DType dtype, std::vector<int64_t> shape,
                     const std::vector<T> &values) {
  return Tensor{dtype, std::move(shape), {values.begin(), values.end()}};
}
inline Tensor f32(std::vector<int64_t> shape, const Floats &values) {
  return tensor(DType::F32, std::move(shape), values);
}
inline Tensor i32(std::vector<int64_t> shape, const Ids &values) {
  return tensor(DType::I32, std::move(shape), values);
}

/// Outputs start as NaN, so that an element a kernel leaves unwritten shows.
inline Floats output(int64_t count) { return Floats(count, NAN); }

/// f32 accuracy: within `relative` of the largest expected magnitude.
inline void expectClose(const Floats &actual,
                        const std::vector<double> &expected,
                        const std::string &what, double relative = 1e-5) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  double largest = 0;
  for (double value : expected)
    largest = std::max(largest, std::abs(value));
  double tolerance = relative * std::max(largest, 1e-30);
  int64_t bad = 0, worst = -1;
  double worstError = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    double error = std::abs(actual[i] - expected[i]);
    if (error <= tolerance)
      continue;
    ++bad;
    if (worst < 0 || !(error <= worstError)) {
      worst = static_cast<int64_t>(i);
      worstError = error;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": worst at " << worst << ": "
                    << (worst >= 0 ? actual[worst] : 0.0f) << " vs "
                    << (worst >= 0 ? expected[worst] : 0.0) << " (tolerance "
                    << tolerance << ")";
}
inline void expectClose(const Floats &actual, const Tensor &expected,
                        const std::string &what, double relative = 1e-5) {
  expectClose(actual, expected.data, what, relative);
}

inline void expectScalarClose(float actual, const Tensor &expected,
                              const std::string &what, double relative = 1e-6) {
  EXPECT_NEAR(actual, expected.data[0],
              relative * std::max(1e-30, std::abs(expected.data[0])))
      << what;
}

template <typename T>
inline void expectBitwiseEqual(const std::vector<T> &a, const std::vector<T> &b,
                               const std::string &what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(T)), 0)
      << what << " differs between two runs";
}

} // namespace moe::test

#endif // MOE_TEST_UNIT_CPUTESTUTILS_H
