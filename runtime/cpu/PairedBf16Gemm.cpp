//===- PairedBf16Gemm.cpp - small GEMMs on bf16 dot products --------------===//
//
// Register tiles of up to 8 rows x 32 columns (16 of AVX-512's 32 zmm
// accumulators); columns past a multiple of 16 are masked lanes, so any n
// runs whole vectors. Each element of C sums over the pairs in order.
//
//===----------------------------------------------------------------------===//

#include "PairedBf16Gemm.h"

#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#define MOERT_BF16_DOT __attribute__((target("avx512f,avx512bw,avx512bf16")))
#else
#define MOERT_BF16_DOT
#endif

using moert::bf16;
using moert::cpu::detail::PairedGemm;

#if defined(__x86_64__)

namespace {

/// Rows [i, i + R) and CV vectors of columns from j; the last vector's
/// lanes are `lastMask`.
template <int R, int CV>
MOERT_BF16_DOT __attribute__((always_inline)) inline void
pairedTile(const PairedGemm &g, int64_t i, int64_t j, __mmask16 lastMask) {
  __mmask16 masks[CV];
  for (int v = 0; v < CV; ++v)
    masks[v] = v == CV - 1 ? lastMask : __mmask16(0xffff);
  __m512 acc[R][CV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < CV; ++v)
      acc[r][v] = g.accumulate
                      ? _mm512_maskz_loadu_ps(masks[v], g.c + (i + r) * g.ldc +
                                                            j + 16 * v)
                      : _mm512_setzero_ps();
  for (int64_t p = 0; p < g.pairs; ++p) {
    __m512i b[CV];
    for (int v = 0; v < CV; ++v)
      b[v] = _mm512_maskz_loadu_epi32(masks[v],
                                      g.b + p * g.ldb + 2 * (j + 16 * v));
    for (int r = 0; r < R; ++r) {
      int32_t pair;
      std::memcpy(&pair, g.a + (i + r) * g.lda + 2 * p, sizeof(pair));
      __m512i a = _mm512_set1_epi32(pair);
      for (int v = 0; v < CV; ++v)
        acc[r][v] = _mm512_dpbf16_ps(acc[r][v], (__m512bh)a, (__m512bh)b[v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < CV; ++v)
      _mm512_mask_storeu_ps(g.c + (i + r) * g.ldc + j + 16 * v, masks[v],
                            acc[r][v]);
}

template <int R>
MOERT_BF16_DOT __attribute__((always_inline)) inline void
pairedRows(const PairedGemm &g, int64_t i) {
  int64_t j = 0;
  for (; j + 32 <= g.n; j += 32)
    pairedTile<R, 2>(g, i, j, 0xffff);
  int64_t left = g.n - j;
  if (left > 16)
    pairedTile<R, 2>(g, i, j, __mmask16((1u << (left - 16)) - 1));
  else if (left > 0)
    pairedTile<R, 1>(g, i, j, __mmask16((1u << left) - 1));
}

MOERT_BF16_DOT void pairedGemmAvx512(const PairedGemm &g) {
  int64_t i = 0;
  for (; i + 8 <= g.m; i += 8)
    pairedRows<8>(g, i);
  if (i + 4 <= g.m) {
    pairedRows<4>(g, i);
    i += 4;
  }
  for (; i < g.m; ++i)
    pairedRows<1>(g, i);
}

} // namespace

void moert::cpu::detail::pairedGemmOnVectors(const PairedGemm &g) {
  pairedGemmAvx512(g);
}

#else

void moert::cpu::detail::pairedGemmOnVectors(const PairedGemm &) {
  __builtin_trap(); // callers check hasAvx512Bf16()
}

#endif

void moert::cpu::detail::pairedGemm(const PairedGemm &g) {
  if (hasAmxBf16())
    pairedGemmOnTiles(g);
  else
    pairedGemmOnVectors(g);
}

namespace {

/// A pair of bf16 as the 32 bits the dot product reads: `low` first.
typedef uint32_t PairBits __attribute__((may_alias, aligned(2)));
typedef uint16_t HalfBits __attribute__((may_alias, aligned(2)));

__attribute__((always_inline)) inline uint32_t pairBits(uint16_t low,
                                                        uint16_t high) {
  return uint32_t(low) | uint32_t(high) << 16;
}

/// Row r of x as bits, or null past its rows (which pack as zeros).
const HalfBits *rowBits(const bf16 *x, int64_t ldx, int64_t rows, int64_t r) {
  return r < rows ? reinterpret_cast<const HalfBits *>(x + r * ldx) : nullptr;
}

} // namespace

// The packs run only beside pairedGemm, so they may use its registers.
MOERT_BF16_DOT void moert::cpu::detail::pairColumns(const bf16 *x, int64_t ldx,
                                                    int64_t rows, int64_t cols,
                                                    int64_t outRows,
                                                    bf16 *out) {
  auto *to = reinterpret_cast<PairBits *>(out);
  for (int64_t r = 0; r < rows; ++r) {
    const auto *from = reinterpret_cast<const PairBits *>(x + r * ldx);
    for (int64_t p = 0; p < cols / 2; ++p)
      to[p * outRows + r] = from[p];
  }
  for (int64_t p = 0; p < cols / 2; ++p)
    std::memset(to + p * outRows + rows, 0,
                (outRows - rows) * sizeof(PairBits));
}

MOERT_BF16_DOT void moert::cpu::detail::pairRows(const bf16 *x, int64_t ldx,
                                                 int64_t rows, int64_t cols,
                                                 int64_t pairs, bf16 *out) {
  auto *to = reinterpret_cast<PairBits *>(out);
  for (int64_t q = 0; q < pairs; ++q) {
    const HalfBits *low = rowBits(x, ldx, rows, 2 * q),
                   *high = rowBits(x, ldx, rows, 2 * q + 1);
    for (int64_t c = 0; c < cols; ++c)
      to[q * cols + c] = pairBits(low ? low[c] : 0, high ? high[c] : 0);
  }
}

MOERT_BF16_DOT void
moert::cpu::detail::pairRowsTransposed(const bf16 *x, int64_t ldx, int64_t rows,
                                       int64_t cols, int64_t pairs, bf16 *out) {
  auto *to = reinterpret_cast<PairBits *>(out);
  for (int64_t q = 0; q < pairs; ++q) {
    const HalfBits *low = rowBits(x, ldx, rows, 2 * q),
                   *high = rowBits(x, ldx, rows, 2 * q + 1);
    for (int64_t c = 0; c < cols; ++c)
      to[c * pairs + q] = pairBits(low ? low[c] : 0, high ? high[c] : 0);
  }
}
