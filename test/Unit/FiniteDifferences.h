//===- FiniteDifferences.h - VJPs against central differences ---*- C++ -*-===//
//
// The check of the reference kernels' VJPs (TransformerGradKernelsTest.cpp,
// RoutingGradKernelsTest.cpp): for a random cotangent r and objective L(x) =
// sum(r * f(x)), each element of the gradient and its projection on random
// directions d must match (L(x + h d) - L(x - h d)) / 2h with h = 1e-6 to a
// relative error below 1e-6. All in f64, on small random shapes from fixed
// seeds.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TEST_UNIT_FINITEDIFFERENCES_H
#define MOE_TEST_UNIT_FINITEDIFFERENCES_H

#include "moe/Interpreter/Tensor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace moe::test::gradients {

using mlir::moe::ref::DType;
using mlir::moe::ref::Tensor;

constexpr double kStep = 1e-6;
constexpr double kRelTol = 1e-6;

/// Deterministic values from a fixed seed, independent of the standard
/// library's distributions.
struct Random {
  explicit Random(uint64_t seed) : engine(seed) {}
  double uniform(double lo = -1, double hi = 1) {
    return lo + (hi - lo) * static_cast<double>(engine() >> 11) * 0x1p-53;
  }
  /// A value in [lo, hi], both included.
  int64_t integer(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(engine() % (hi - lo + 1));
  }
  Tensor tensor(std::vector<int64_t> shape, double lo = -1, double hi = 1) {
    Tensor result = Tensor::zeros(DType::F64, std::move(shape));
    for (double &value : result.data)
      value = uniform(lo, hi);
    return result;
  }
  Tensor ids(std::vector<int64_t> shape, int64_t bound) {
    Tensor result = Tensor::zeros(DType::I32, std::move(shape));
    for (double &value : result.data)
      value = static_cast<double>(integer(0, bound - 1));
    return result;
  }
  /// [tokens, k] expert choices, distinct within a token like top-k's.
  Tensor choices(int64_t tokens, int64_t k, int64_t experts) {
    Tensor result = Tensor::zeros(DType::I32, {tokens, k});
    std::vector<int64_t> order(experts);
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t e = 0; e < experts; ++e)
        order[e] = e;
      for (int64_t e = experts - 1; e > 0; --e) // Fisher-Yates
        std::swap(order[e], order[integer(0, e)]);
      for (int64_t c = 0; c < k; ++c)
        result.data[t * k + c] = static_cast<double>(order[c]);
    }
    return result;
  }
  std::mt19937_64 engine;
};

inline double dot(const Tensor &a, const Tensor &b) {
  EXPECT_EQ(a.shape, b.shape);
  double sum = 0;
  for (int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i)
    sum += a.data[i] * b.data[i];
  return sum;
}

using Objective = std::function<double(const Tensor &)>;

/// Checks `grad` = dL/dx at `x` against central differences of `objective`:
/// element by element (error relative to the larger of the element and the
/// gradient's largest magnitude) and along random directions (error
/// relative to sum |grad * d|, the projection's scale before cancellation).
inline void expectGradient(const std::string &what, const Tensor &grad,
                           const Tensor &x, const Objective &objective,
                           Random &random, double step = kStep) {
  SCOPED_TRACE(what);
  ASSERT_EQ(grad.shape, x.shape);
  EXPECT_EQ(grad.dtype, x.dtype);
  auto central = [&](const Tensor &direction) {
    Tensor forward = x, backward = x;
    for (int64_t i = 0; i < x.numel(); ++i) {
      forward.data[i] += step * direction.data[i];
      backward.data[i] -= step * direction.data[i];
    }
    return (objective(forward) - objective(backward)) / (2 * step);
  };
  double largest = 0;
  for (double value : grad.data)
    largest = std::max(largest, std::abs(value));
  for (int64_t i = 0; i < x.numel(); ++i) {
    Tensor unit = Tensor::zeros(x.dtype, x.shape);
    unit.data[i] = 1;
    double numeric = central(unit);
    double scale = std::max({std::abs(grad.data[i]), largest, 1e-300});
    EXPECT_LT(std::abs(numeric - grad.data[i]) / scale, kRelTol)
        << "element " << i << ": analytic " << grad.data[i] << ", numeric "
        << numeric;
  }
  for (int trial = 0; trial < 3; ++trial) {
    Tensor direction = random.tensor(x.shape);
    double analytic = 0, scale = 1e-300;
    for (int64_t i = 0; i < x.numel(); ++i) {
      analytic += grad.data[i] * direction.data[i];
      scale += std::abs(grad.data[i] * direction.data[i]);
    }
    double numeric = central(direction);
    EXPECT_LT(std::abs(numeric - analytic) / scale, kRelTol)
        << "direction " << trial << ": analytic " << analytic << ", numeric "
        << numeric;
  }
}

inline const uint64_t kSeeds[] = {1, 2, 3, 4, 5};

} // namespace moe::test::gradients

#endif // MOE_TEST_UNIT_FINITEDIFFERENCES_H
