//===- OptimizerKernels.cpp - f32 CPU optimizer kernels -------------------===//

#include "moert/CpuKernels.h"
#include "moert/RowMath.h"

#include "Vectorize.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

float moert::cpu::lrSchedule(int64_t step, double maxLr, double minLr,
                             int64_t warmupSteps, int64_t decaySteps,
                             LrDecay decay) {
  return static_cast<float>(moert::rows::learningRate(
      step, maxLr, minLr, warmupSteps, decaySteps, decay));
}

void moert::cpu::addInt64(const int64_t *a, const int64_t *b, int64_t count,
                          int64_t *y) {
  for (int64_t i = 0; i < count; ++i)
    y[i] = a[i] + b[i];
}

namespace {

/// [begin, end) of `count` items for thread `thread` of `threads`.
std::pair<int64_t, int64_t> threadRange(int64_t count, int threads,
                                        int thread) {
  return {count * thread / threads, count * (thread + 1) / threads};
}

typedef float Floats4 __attribute__((vector_size(16)));
typedef double Doubles4 __attribute__((vector_size(32)));

/// x[i]^2 in double, added to 8 lanes as two 4-wide halves: one 8-wide
/// double vector does not fit an AVX2 register, and the compiler kept it
/// in memory, a store-to-load chain that ran at a tenth of the memory
/// bandwidth.
MOERT_INLINE void addSquares(const float *x, Doubles4 &low, Doubles4 &high) {
  Floats4 lowBlock, highBlock;
  std::memcpy(&lowBlock, x, sizeof(lowBlock));
  std::memcpy(&highBlock, x + 4, sizeof(highBlock));
  Doubles4 lowWide = __builtin_convertvector(lowBlock, Doubles4);
  Doubles4 highWide = __builtin_convertvector(highBlock, Doubles4);
  low += lowWide * lowWide;
  high += highWide * highWide;
}

/// The sum in double of x[i]^2 over [begin, end), in a fixed order that
/// vectorizes: four equal quarters of whole blocks of 8, read as four
/// streams, each into its own 8 lanes (one stream per thread reached half
/// the memory bandwidth that AdamW's several streams do); then the blocks
/// left after them into the last quarter's lanes, and the tail one by one.
MOERT_CLONES double sumOfSquares(const float *x, int64_t begin, int64_t end) {
  int64_t quarter = (end - begin) / 4 / 8 * 8;
  const float *q0 = x + begin, *q1 = q0 + quarter, *q2 = q1 + quarter,
              *q3 = q2 + quarter;
  Doubles4 low0 = {}, high0 = {}, low1 = {}, high1 = {}, low2 = {}, high2 = {},
           low3 = {}, high3 = {};
  for (int64_t i = 0; i < quarter; i += 8) {
    addSquares(q0 + i, low0, high0);
    addSquares(q1 + i, low1, high1);
    addSquares(q2 + i, low2, high2);
    addSquares(q3 + i, low3, high3);
  }
  int64_t i = begin + 4 * quarter;
  for (; i + 8 <= end; i += 8)
    addSquares(x + i, low3, high3);
  double sum = 0;
  for (const Doubles4 &lanes :
       {low0, high0, low1, high1, low2, high2, low3, high3})
    for (int lane = 0; lane < 4; ++lane)
      sum += lanes[lane];
  for (; i < end; ++i)
    sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

using moert::rows::AdamWScalars;

MOERT_CLONES void adamwRange(const AdamWScalars &s, const float *param,
                             const float *grad, const float *expAvg,
                             const float *expAvgSq, int64_t begin, int64_t end,
                             float *newParam, float *newExpAvg,
                             float *newExpAvgSq) {
  // In place the outputs are the inputs, element for element: no
  // dependence crosses iterations, which the compiler cannot prove.
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    float g = s.scale * grad[i];
    float m = s.beta1 * expAvg[i] + (1.0f - s.beta1) * g;
    float v = s.beta2 * expAvgSq[i] + (1.0f - s.beta2) * g * g;
    newParam[i] = param[i] * s.decay -
                  s.stepSize * m / (std::sqrt(v) / s.rootCorrection2 + s.eps);
    newExpAvg[i] = m;
    newExpAvgSq[i] = v;
  }
}

} // namespace

float moert::cpu::globalNorm(const float *const *tensors, const int64_t *sizes,
                             int64_t count) {
  // Per-thread partial sums in double, combined in thread and tensor order:
  // the result depends on the thread count only.
  int threads = omp_get_max_threads();
  std::vector<double> partial(static_cast<size_t>(threads) * count, 0.0);
#pragma omp parallel num_threads(threads)
  {
    int thread = omp_get_thread_num();
    for (int64_t t = 0; t < count; ++t) {
      auto [begin, end] = threadRange(sizes[t], threads, thread);
      partial[t * threads + thread] = sumOfSquares(tensors[t], begin, end);
    }
  }
  double total = 0;
  for (double sum : partial)
    total += sum;
  return static_cast<float>(std::sqrt(total));
}

void moert::cpu::adamw(const float *param, const float *grad,
                       const float *expAvg, const float *expAvgSq,
                       int64_t count, float lr, float gradNorm, int64_t step,
                       const AdamWConfig &config, float *newParam,
                       float *newExpAvg, float *newExpAvgSq) {
  // Scalars in double, the element loop in float so that it vectorizes:
  // the update streams every parameter and both moments.
  AdamWScalars scalars = moert::rows::adamwScalars(config, lr, gradNorm, step);
#pragma omp parallel
  {
    auto [begin, end] =
        threadRange(count, omp_get_num_threads(), omp_get_thread_num());
    adamwRange(scalars, param, grad, expAvg, expAvgSq, begin, end, newParam,
               newExpAvg, newExpAvgSq);
  }
}
