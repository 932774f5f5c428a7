//===- Bf16TestUtils.h - helpers of the bf16 kernel tests -------*- C++ -*-===//
//
// What the mixed-precision kernel tests of both targets share: bf16 inputs
// and the comparison of results that went through bf16 roundings. Neither
// the reference interpreter nor CUDA.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TEST_UNIT_BF16TESTUTILS_H
#define MOE_TEST_UNIT_BF16TESTUTILS_H

#include "moert/Bf16.h"

#include "KernelTestUtils.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace moe::test {

using Halves = std::vector<moert::bf16>;

inline uint32_t bitsOf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

inline float fromBits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

/// About a million floats spread over every bit pattern (every sign,
/// exponent and rounding case, subnormals and NaNs), then the special
/// values: infinities, a quiet NaN, the largest finite value, ties and
/// negative zero.
inline Floats bitPatternSpread() {
  Floats values;
  for (uint64_t bits = 0; bits < (uint64_t(1) << 32); bits += 4093)
    values.push_back(fromBits(static_cast<uint32_t>(bits)));
  for (uint32_t special : {0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f7fffffu,
                           0x3f808000u, 0x3f818000u, 0x80000000u})
    values.push_back(fromBits(special));
  return values;
}

/// GEMM operands of type T (f32 or bf16) from `values`, rounded.
template <typename T> std::vector<T> operandsOf(const Floats &values) {
  std::vector<T> result;
  for (float value : values)
    result.push_back(moert::storedAs<T>(value));
  return result;
}

/// The values rounded to bf16, for a kernel, and back as floats (for the
/// reference, or a comparison).
inline Halves narrowed(const Floats &values) {
  return operandsOf<moert::bf16>(values);
}
inline Floats widened(const Halves &values) {
  Floats result;
  for (moert::bf16 value : values)
    result.push_back(moert::toFloat(value));
  return result;
}

/// Outputs whose bf16 GEMM operands (the expert activations and gradients)
/// two kernels rounded at the same points agree to f32 rounding; a tie
/// decided differently moves a value by one bf16 ulp of one term. So
/// nearly all values agree to 1e-5 and all to 1e-3 of the largest, where
/// rounding at other points leaves almost none within 1e-5 (measured on the
/// CPU against the reference: 0.4% for unrounded activations, against
/// 99.3%).
/// `nearlyAll` is the fraction that must agree to 1e-5.
template <typename Expected>
void expectBf16Close(const Floats &actual,
                     const std::vector<Expected> &expected,
                     const std::string &what, double nearlyAll = 0.95) {
  expectClose(actual, expected, what, 1e-3);
  int64_t exact = 0;
  for (size_t i = 0; i < actual.size() && i < expected.size(); ++i)
    exact += std::abs(actual[i] - expected[i]) <=
             1e-5 * std::abs(expected[i]) + 1e-6;
  EXPECT_GE(exact, nearlyAll * actual.size())
      << what << ": " << exact << " of " << actual.size()
      << " values agree to 1e-5";
}

/// bf16 values rounded from f32 sums of `summed` products that two kernels
/// summed in different orders: a sum near the midpoint of two bf16 values
/// may round either way, so each may be one bf16 ulp (2^-7 relative at most)
/// off, and nearly all are the same bits. A sum that cancels to far below
/// its terms keeps their f32 rounding, about summed * 2^-24 of the largest
/// value, which can be more than its own bf16 ulp.
inline void expectBf16RoundedAlike(const Floats &actual, const Floats &expected,
                                   int64_t summed, const std::string &what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  float largest = 0;
  for (float value : expected)
    largest = std::max(largest, std::abs(value));
  float cancellation = std::ldexp(static_cast<float>(summed) * largest, -24);
  int64_t same = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    same += bitsOf(actual[i]) == bitsOf(expected[i]);
    ASSERT_LE(std::abs(actual[i] - expected[i]),
              std::max(std::ldexp(std::abs(expected[i]), -7), cancellation))
        << what << " at " << i;
  }
  EXPECT_GE(same, 0.99 * actual.size())
      << what << ": " << same << " of " << actual.size() << " are the same";
}

} // namespace moe::test

#endif // MOE_TEST_UNIT_BF16TESTUTILS_H
