//===- CpuRoutingTestUtils.h - MoE layers for the CPU tests -----*- C++ -*-===//
//
// Shapes of an MoE layer and the routing data that the CPU routing and
// expert kernel tests share.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TEST_UNIT_CPUROUTINGTESTUTILS_H
#define MOE_TEST_UNIT_CPUROUTINGTESTUTILS_H

#include "CpuTestUtils.h"
#include "moert/CpuKernels.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace moe::test {

/// A gate's configuration (eps 1e-6, the importer's).
inline moert::cpu::GateConfig gateConfig(int64_t topK, bool normalize,
                                         double lambda, bool renormalize) {
  return moert::cpu::GateConfig{topK, normalize, lambda, 1e-6, renormalize};
}

/// k distinct experts per token, as a gate picks them.
inline Ids randomChoices(int64_t tokens, int64_t experts, int64_t topK,
                         uint32_t seed) {
  std::mt19937 rng(seed);
  Ids order(experts), ids;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t e = 0; e < experts; ++e)
      order[e] = static_cast<int32_t>(e);
    std::shuffle(order.begin(), order.end(), rng);
    ids.insert(ids.end(), order.begin(), order.begin() + topK);
  }
  return ids;
}

template <typename T>
inline void expectExact(const std::vector<T> &actual, const Tensor &expected,
                        const std::string &what) {
  ASSERT_EQ(actual.size(), expected.data.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i)
    ASSERT_EQ(static_cast<double>(actual[i]), expected.data[i])
        << what << " at " << i;
}

/// The rows [e, r < counts[e]) of an [experts, capacity, hidden] buffer,
/// concatenated; and whether every other row still holds NaN.
template <typename T>
inline std::vector<double> filledRows(const std::vector<T> &buffer,
                                      const std::vector<int64_t> &counts,
                                      int64_t capacity, int64_t hidden) {
  std::vector<double> rows;
  for (size_t e = 0; e < counts.size(); ++e)
    rows.insert(rows.end(), buffer.begin() + e * capacity * hidden,
                buffer.begin() + (e * capacity + counts[e]) * hidden);
  return rows;
}
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

struct Shape {
  int64_t tokens, hidden, experts, topK, ffn;
  std::string name() const {
    return std::to_string(tokens) + "x" + std::to_string(hidden) + " e" +
           std::to_string(experts) + " k" + std::to_string(topK) + " f" +
           std::to_string(ffn);
  }
};

// Includes one expert, sizes off the 16-lane blocks and the benchmark's.
inline const Shape kShapes[] = {{1, 1, 1, 1, 1},      {5, 3, 4, 2, 7},
                                {37, 17, 6, 3, 23},   {64, 32, 8, 2, 40},
                                {100, 20, 16, 4, 33}, {768, 128, 8, 2, 352},
                                {50, 9, 5, 5, 17}};

} // namespace moe::test

#endif // MOE_TEST_UNIT_CPUROUTINGTESTUTILS_H
