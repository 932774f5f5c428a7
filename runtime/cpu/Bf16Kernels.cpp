//===- Bf16Kernels.cpp - f32 <-> bf16 conversions -------------------------===//
//
// Rounding is moert::toBf16's (to nearest even, NaN kept), written on
// generic vectors so that each target clone converts a register at a time;
// the unit tests check the two agree bit for bit.
//
//===----------------------------------------------------------------------===//

#include "moert/CpuKernels.h"

#include "Vectorize.h"

#include <omp.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>

using moert::bf16;
using moert::cpu::detail::Floats;
using moert::cpu::detail::kLanes;

namespace {

using moert::cpu::detail::Halves;

/// Enough elements per thread to pay for waking the team.
constexpr int64_t kGrain = 1 << 16;

MOERT_CLONES void narrowBlock(const float *x, int64_t count, bf16 *y) {
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    Floats values;
    std::memcpy(&values, x + i, sizeof(values));
    Halves halves;
    moert::cpu::detail::toBf16(values, halves);
    std::memcpy(y + i, &halves, sizeof(halves));
  }
  for (; i < count; ++i)
    y[i] = moert::toBf16(x[i]);
}

#if defined(__x86_64__)
/// toBf16 of x[0, 16) into y on AVX-512 BF16's conversion, which rounds to
/// nearest even and quiets NaNs as toBf16 does but reads subnormals as
/// zero: a vector with one takes toBf16, so the bits stay the reference's.
__attribute__((target("avx512f,avx512bf16"), always_inline)) inline void
narrowVector(const float *x, bf16 *y) {
  const __m512i exponent = _mm512_set1_epi32(0x7f800000);
  const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
  __m512 values = _mm512_loadu_ps(x);
  __m512i bits = _mm512_castps_si512(values);
  if (_mm512_testn_epi32_mask(bits, exponent) &
      _mm512_test_epi32_mask(bits, magnitude)) {
    for (int64_t j = 0; j < kLanes; ++j)
      y[j] = moert::toBf16(x[j]);
    return;
  }
  __m256bh halves = _mm512_cvtneps_pbh(values);
  std::memcpy(y, &halves, sizeof(halves));
}

/// narrowBlock on narrowVector: five instructions a register instead of a
/// dozen, twice narrowBlock's throughput from L1/L2 on a Xeon with AMX.
/// From memory (the experts' weights, rounded this way twice a step) one
/// stream per thread stalls on its loads, so the whole vectors are read as
/// four streams, quarters of the block (on 2 threads, each rounding its
/// own 2.9 MB matrices of a 1.1 GB pool: 17-18 GB/s against 12-14).
__attribute__((target("avx512f,avx512bf16"))) void
narrowBlockAvx512Bf16(const float *x, int64_t count, bf16 *y) {
  constexpr int kStreams = 4;
  int64_t quarter = count / kStreams / kLanes * kLanes;
  for (int64_t i = 0; i < quarter; i += kLanes)
    for (int stream = 0; stream < kStreams; ++stream)
      narrowVector(x + stream * quarter + i, y + stream * quarter + i);
  int64_t i = kStreams * quarter;
  for (; i + kLanes <= count; i += kLanes)
    narrowVector(x + i, y + i);
  for (; i < count; ++i)
    y[i] = moert::toBf16(x[i]);
}
#endif

MOERT_CLONES void widenBlock(const bf16 *x, int64_t count, float *y) {
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    Halves halves;
    std::memcpy(&halves, x + i, sizeof(halves));
    Floats values;
    moert::cpu::detail::fromBf16(halves, values);
    moert::cpu::detail::storeFloats(y + i, values);
  }
  for (; i < count; ++i)
    y[i] = moert::toFloat(x[i]);
}

/// Splits [0, count) into kLanes-aligned pieces over the threads, unless
/// called inside a parallel region (an expert's GEMM) or for a small count.
template <typename From, typename To, typename Block>
void convertInParallel(const From *x, int64_t count, To *y, Block block) {
  if (count < kGrain || omp_in_parallel()) {
    block(x, count, y);
    return;
  }
#pragma omp parallel
  {
    int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
    int64_t piece =
        ((count + threads - 1) / threads + kLanes - 1) / kLanes * kLanes;
    int64_t begin = std::min(count, thread * piece);
    int64_t end = std::min(count, begin + piece);
    block(x + begin, end - begin, y + begin);
  }
}

} // namespace

bool moert::cpu::detail::hasAvx512Bf16() {
#if defined(__x86_64__)
  static const bool available = __builtin_cpu_supports("avx512f") &&
                                __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512bf16");
  return available;
#else
  return false;
#endif
}

void moert::cpu::convert(const float *x, int64_t count, bf16 *y) {
#if defined(__x86_64__)
  if (detail::hasAvx512Bf16())
    return convertInParallel(x, count, y, narrowBlockAvx512Bf16);
#endif
  convertInParallel(x, count, y, narrowBlock);
}

void moert::cpu::convert(const bf16 *x, int64_t count, float *y) {
  convertInParallel(x, count, y, widenBlock);
}
