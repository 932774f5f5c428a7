//===- CpuPairedBf16GemmTest.cpp - attention's bf16 products --------------===//
//
// The paired bf16 GEMM of the attention kernels, on AVX-512 vectors and on
// AMX tiles, against the same products summed in double: both sum exact
// f32 products in f32, in different orders, so each element is within the
// rounding of its sum. Shapes cover whole tiles and every kind of edge
// (rows, columns and pairs past multiples of 16), padded leading
// dimensions, and accumulating into C.
//
//===----------------------------------------------------------------------===//

#include "PairedBf16Gemm.h"
#include "Vectorize.h"

#include "Bf16TestUtils.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace moe::test;
using moert::cpu::detail::PairedGemm;

namespace {

struct PairedShape {
  int64_t m, n, pairs;
};

constexpr PairedShape kShapes[] = {
    {16, 16, 16}, {16, 64, 32},  {32, 256, 32}, {16, 64, 8},
    {48, 64, 8},  {17, 64, 37},  {40, 130, 21}, {1, 16, 1},
    {15, 15, 16}, {16, 20, 3},   {64, 96, 48},  {33, 48, 128},
    {5, 200, 16}, {256, 64, 72}, {32, 8, 16},   {20, 9, 17},
};

using Kernel = void (*)(const PairedGemm &);

/// Runs `kernel` on `shape` (into C already holding values when
/// `accumulate`) and checks every element against the double sum.
void expectMatchesDoubleSum(Kernel kernel, PairedShape shape, bool accumulate) {
  auto [m, n, pairs] = shape;
  // Leading dimensions past the extents, and a whole tile of rows past the
  // last: A and B hold NaNs there, which a kernel reading them would sum,
  // and C's values there must stay (the tiles' loads and stores are
  // inline assembly, which AddressSanitizer does not see).
  int64_t lda = 2 * pairs + 6, ldb = 2 * n + 10, ldc = n + 3, past = 16;
  Halves a = narrowed(randomFloats((m + past) * lda, 11));
  Halves b = narrowed(randomFloats((pairs + past) * ldb, 12));
  for (int64_t i = 0; i < m + past; ++i)
    for (int64_t k = 0; k < lda; ++k)
      if (i >= m || k >= 2 * pairs)
        a[i * lda + k] = moert::toBf16(NAN);
  for (int64_t p = 0; p < pairs + past; ++p)
    for (int64_t j = 0; j < ldb; ++j)
      if (p >= pairs || j >= 2 * n)
        b[p * ldb + j] = moert::toBf16(NAN);
  Floats start = randomFloats((m + past) * ldc, 13), c = start;
  kernel(
      {m, n, pairs, a.data(), lda, b.data(), ldb, c.data(), ldc, accumulate});
  std::string name = std::to_string(m) + "x" + std::to_string(n) + "x" +
                     std::to_string(pairs) +
                     (accumulate ? " accumulating" : "");
  for (int64_t i = 0; i < m + past; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      float got = c[i * ldc + j];
      if (i >= m || j >= n) {
        ASSERT_EQ(bitsOf(got), bitsOf(start[i * ldc + j]))
            << name << ": wrote past C at " << i << ", " << j;
        continue;
      }
      double sum = accumulate ? start[i * ldc + j] : 0.0;
      double magnitude = std::abs(sum);
      for (int64_t k = 0; k < 2 * pairs; ++k) {
        double term = static_cast<double>(moert::toFloat(a[i * lda + k])) *
                      moert::toFloat(b[k / 2 * ldb + 2 * j + k % 2]);
        sum += term;
        magnitude += std::abs(term);
      }
      // Each of the 2 * pairs + 1 additions rounds once in f32.
      double bound = (2 * pairs + 1) * std::ldexp(magnitude, -24);
      ASSERT_NEAR(got, sum, bound) << name << " at " << i << ", " << j;
    }
  }
}

void expectMatchesEverywhere(Kernel kernel) {
  for (PairedShape shape : kShapes)
    for (bool accumulate : {false, true})
      expectMatchesDoubleSum(kernel, shape, accumulate);
}

} // namespace

TEST(CpuPairedBf16GemmTest, VectorsMatchTheDoubleSum) {
  if (!moert::cpu::detail::hasAvx512Bf16())
    GTEST_SKIP() << "this CPU has no AVX-512 BF16";
  expectMatchesEverywhere(moert::cpu::detail::pairedGemmOnVectors);
}

TEST(CpuPairedBf16GemmTest, TilesMatchTheDoubleSum) {
  if (!moert::cpu::detail::hasAmxBf16())
    GTEST_SKIP() << "this CPU has no AMX with bf16 (or the OS refuses it)";
  expectMatchesEverywhere(moert::cpu::detail::pairedGemmOnTiles);
}
