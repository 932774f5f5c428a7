//===- CpuTestUtils.h - helpers of the CPU kernel tests ---------*- C++ -*-===//
//
// The CPU kernels are f32; they are compared with the reference kernels
// (double) on reference tensors holding exactly the same f32 values. The
// helpers the CUDA kernel tests share: KernelTestUtils.h.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TEST_UNIT_CPUTESTUTILS_H
#define MOE_TEST_UNIT_CPUTESTUTILS_H

#include "KernelTestUtils.h"
#include "TestUtils.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace moe::test {

/// f() run with OpenMP teams of `threads`, the count restored after. Fails
/// the test where OpenMP gives other teams (OMP_THREAD_LIMIT, OMP_DYNAMIC),
/// which would leave a comparison of thread counts comparing nothing.
template <typename F> auto onThreads(int threads, F f) {
  int before = omp_get_max_threads();
  omp_set_num_threads(threads);
  int team = 0;
#pragma omp parallel
  {
#pragma omp single
    team = omp_get_num_threads();
  }
  EXPECT_EQ(team, threads) << "OpenMP gives teams of " << team;
  auto result = f();
  omp_set_num_threads(before);
  return result;
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

/// expectClose (KernelTestUtils.h) against a reference tensor.
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

} // namespace moe::test

#endif // MOE_TEST_UNIT_CPUTESTUTILS_H
