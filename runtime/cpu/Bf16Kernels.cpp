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

void moert::cpu::convert(const float *x, int64_t count, bf16 *y) {
  convertInParallel(x, count, y, narrowBlock);
}

void moert::cpu::convert(const bf16 *x, int64_t count, float *y) {
  convertInParallel(x, count, y, widenBlock);
}
