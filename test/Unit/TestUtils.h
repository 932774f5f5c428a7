//===- TestUtils.h - helpers shared by the unit tests -----------*- C++ -*-===//

#ifndef MOE_TEST_UNIT_TESTUTILS_H
#define MOE_TEST_UNIT_TESTUTILS_H

#include "ErrorTestUtils.h"
#include "moe/Interpreter/Tensor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace moe::test {

using mlir::moe::ref::DType;
using mlir::moe::ref::Tensor;

inline Tensor f64(std::vector<int64_t> shape, std::vector<double> data) {
  return Tensor{DType::F64, std::move(shape), std::move(data)};
}

inline Tensor i32(std::vector<int64_t> shape, std::vector<double> data) {
  return Tensor{DType::I32, std::move(shape), std::move(data)};
}

/// Kernels compute in double: allow 1e-12 relative (absolute below 1).
inline double tolerance(double expected) {
  return 1e-12 * std::max(1.0, std::abs(expected));
}

inline void expectTensor(const Tensor &actual, DType dtype,
                         const std::vector<int64_t> &shape,
                         const std::vector<double> &expected) {
  EXPECT_EQ(actual.dtype, dtype);
  EXPECT_EQ(actual.shape, shape);
  ASSERT_EQ(actual.data.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(actual.data[i], expected[i], tolerance(expected[i]))
        << "at element " << i;
}

} // namespace moe::test

#endif // MOE_TEST_UNIT_TESTUTILS_H
