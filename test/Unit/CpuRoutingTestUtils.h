//===- CpuRoutingTestUtils.h - MoE layers for the CPU tests -----*- C++ -*-===//
//
// The routing data checks that the CPU routing and expert kernel tests
// share; the MoE layers' shapes, their random choices and filledRows are
// the CUDA tests' too (KernelTestUtils.h).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TEST_UNIT_CPUROUTINGTESTUTILS_H
#define MOE_TEST_UNIT_CPUROUTINGTESTUTILS_H

#include "CpuTestUtils.h"

#include <cmath>
#include <string>
#include <vector>

namespace moe::test {

template <typename T>
inline void expectExact(const std::vector<T> &actual, const Tensor &expected,
                        const std::string &what) {
  ASSERT_EQ(actual.size(), expected.data.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i)
    ASSERT_EQ(static_cast<double>(actual[i]), expected.data[i])
        << what << " at " << i;
}

/// Whether every row of an [experts, capacity, hidden] buffer past
/// counts[e] still holds NaN (filledRows, KernelTestUtils.h, has the others).
inline bool restUntouched(const Floats &buffer,
                          const std::vector<int64_t> &counts, int64_t capacity,
                          int64_t hidden) {
  for (size_t e = 0; e < counts.size(); ++e)
    for (int64_t i = (e * capacity + counts[e]) * hidden;
         i < static_cast<int64_t>((e + 1) * capacity * hidden); ++i)
      if (!std::isnan(buffer[i]))
        return false;
  return true;
}

/// counts[e] = kept assignments of expert e.
inline std::vector<int64_t> countsOf(const Ids &indices, const Ids &slots,
                                     int64_t experts) {
  std::vector<int64_t> counts(experts, 0);
  for (size_t i = 0; i < indices.size(); ++i)
    if (slots[i] >= 0)
      ++counts[indices[i]];
  return counts;
}

} // namespace moe::test

#endif // MOE_TEST_UNIT_CPUROUTINGTESTUTILS_H
