//===- TransformerKernels.cpp - f32 CPU transformer kernels ---------------===//
//
// The transformer ops of CpuKernels.h but attention (AttentionKernels.cpp).
// Linear layers go to Gemm.h (oneDNN), called outside OpenMP regions.
// Everything else is OpenMP loops with vectorized inner loops: omp simd and
// a polynomial exp.
//
// Reproducibility: every output element and every reduction is computed by a
// single thread in a fixed order. Sums over rows are split by output column
// or row (bias and embedding gradients), or by blocks of input rows that the
// row count alone sizes, summed in block order (dWeight of rms_norm), so
// apart from inside the GEMM library results do not even depend on the
// thread count. They may differ in the last bits between CPUs
// with and without AVX2+FMA.
//===----------------------------------------------------------------------===//

#include "moert/CpuKernels.h"
#include "moert/Error.h"
#include "moert/RowMath.h"

#include "Gemm.h"
#include "Softmax.h"
#include "Vectorize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

//===----------------------------------------------------------------------===//
// Softmax rows (Softmax.h).
//===----------------------------------------------------------------------===//

using moert::cpu::detail::expInPlace;
using moert::cpu::detail::Floats;
using moert::cpu::detail::HalfFloats;
using moert::cpu::detail::Ints;
using moert::cpu::detail::kLanes;
using moert::cpu::detail::splitHalves;
using moert::cpu::detail::storeFloats;
using moert::cpu::detail::withRegisterWidth;

// On generic vectors: GCC left the `omp simd` max reduction scalar, one
// dependent maxss per value (2% of a bf16 step's cycles, in softmax rows).
// Two accumulators of half a block each, an AVX2 register: GCC selects in
// a vector wider than the target's registers lane by lane (Vectorize.h).
// Lanes skip NaNs as std::max(maximum, x) does; the order can change only
// the sign of a zero maximum, which no caller's exp tells apart.
MOERT_CLONES float moert::cpu::detail::rowMax(const float *x, int64_t n) {
  HalfFloats low = HalfFloats{} - HUGE_VALF, high = low;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    HalfFloats lowValues, highValues;
    std::memcpy(&lowValues, x + i, sizeof(lowValues));
    std::memcpy(&highValues, x + i + kLanes / 2, sizeof(highValues));
    low = lowValues > low ? lowValues : low;
    high = highValues > high ? highValues : high;
  }
  float maximum = -HUGE_VALF;
  for (int64_t lane = 0; lane < kLanes / 2; ++lane)
    maximum = std::max({maximum, low[lane], high[lane]});
  for (; i < n; ++i)
    maximum = std::max(maximum, x[i]);
  return maximum;
}

namespace {

/// Lane masks: kKeepFirst + kLanes - k keeps the first k lanes.
constexpr int32_t kKeepFirst[2 * kLanes] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                            -1, -1, -1, -1, -1, -1, -1, -1};

/// expAndSum; with kPaddedTail, the tail runs as a whole vector.
template <bool kPaddedTail, bool kOneRegister>
MOERT_INLINE float expAndSumOf(const float *x, int64_t n, float scale,
                               float shift, float *out) {
  // Per-lane sums, kept as halves (Vectorize.h's storeFloats says why).
  HalfFloats lowSums = {}, highSums = {};
  auto add = [&](const Floats &e) MOERT_LAMBDA_INLINE {
    HalfFloats low, high;
    splitHalves(e, low, high);
    lowSums += low;
    highSums += high;
  };
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    Floats e;
    std::memcpy(&e, x + i, sizeof e);
    e = e * scale - shift;
    expInPlace<kOneRegister>(e);
    storeFloats(out + i, e);
    add(e);
  }
  if (i < n && kPaddedTail) {
    Floats e;
    std::memcpy(&e, x + i, sizeof e);
    e = e * scale - shift;
    expInPlace<kOneRegister>(e);
    storeFloats(out + i, e);
    Ints keep;
    std::memcpy(&keep, kKeepFirst + kLanes - (n - i), sizeof keep);
    add((Floats)((Ints)e & keep)); // +0 in the lanes past n, as below
  } else if (i < n) { // the tail, padded; padding lanes are dropped
    Floats e = {};
    for (int64_t lane = 0; lane < n - i; ++lane)
      e[lane] = x[i + lane] * scale - shift;
    expInPlace<kOneRegister>(e);
    for (int64_t lane = 0; lane < kLanes; ++lane)
      if (lane < n - i)
        out[i + lane] = e[lane];
      else
        e[lane] = 0.0f;
    add(e);
  }
  float sum = 0;
  for (int64_t lane = 0; lane < kLanes / 2; ++lane)
    sum += lowSums[lane];
  for (int64_t lane = 0; lane < kLanes / 2; ++lane)
    sum += highSums[lane];
  return sum;
}

} // namespace

MOERT_CLONES float moert::cpu::detail::expAndSum(const float *x, int64_t n,
                                                 float scale, float shift,
                                                 float *out) {
  return withRegisterWidth([&](auto oneRegister) MOERT_LAMBDA_INLINE {
    return expAndSumOf<false, decltype(oneRegister)::value>(x, n, scale, shift,
                                                            out);
  });
}

MOERT_CLONES float moert::cpu::detail::expAndSumPadded(const float *x,
                                                       int64_t n, float scale,
                                                       float shift,
                                                       float *out) {
  return withRegisterWidth([&](auto oneRegister) MOERT_LAMBDA_INLINE {
    return expAndSumOf<true, decltype(oneRegister)::value>(x, n, scale, shift,
                                                           out);
  });
}

namespace {

/// Loops over less work than this run on the calling thread: waking the team
/// costs more than it saves.
constexpr int64_t kGrain = 1 << 15;

using moert::cpu::detail::expAndSum;
using moert::cpu::detail::rowMax;

/// Ids and targets are checked before any output is written.
void checkIndices(const int32_t *ids, int64_t count, int64_t bound,
                  const char *what) {
  for (int64_t i = 0; i < count; ++i)
    if (ids[i] < 0 || ids[i] >= bound)
      moert::fail("{} {} is outside [0, {})", what, ids[i], bound);
}

/// out[c] = sum over r < rows of term(r, c), in row order, in double. An
/// orphaned `omp for` over blocks of columns: call it inside a parallel
/// region (or outside one, on one thread). Each column is summed by one
/// thread, so no partial sums depend on the thread count.
template <typename Term>
void sumOverRows(int64_t rows, int64_t cols, float *out, Term term) {
  constexpr int64_t kBlock = 16; // one cache line of each row
  int64_t blocks = (cols + kBlock - 1) / kBlock;
#pragma omp for schedule(static)
  for (int64_t block = 0; block < blocks; ++block) {
    int64_t begin = block * kBlock, size = std::min(kBlock, cols - begin);
    double sums[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < size; ++c)
        sums[c] += term(r, begin + c);
    for (int64_t c = 0; c < size; ++c)
      out[begin + c] = static_cast<float>(sums[c]);
  }
}

/// 1 / sqrt(mean(x^2) + eps), of an f32 row or a bf16 one widened.
template <typename Stored>
MOERT_INLINE double rmsScale(const Stored *x, int64_t n, double eps) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    double value = moert::toFloat(x[i]);
    sum += value * value;
  }
  return moert::rows::inverseRms(sum, n, eps);
}

/// One row of rms_norm, stored as T (bf16: rounded). The row functions are
/// target clones: their double reductions are the norms' cost, 2-wide in
/// baseline SSE.
template <typename T>
MOERT_INLINE void rmsNormRowOf(const float *x, const float *weight,
                               int64_t hidden, double eps, T *y) {
  float scale = static_cast<float>(rmsScale(x, hidden, eps));
#pragma omp simd
  for (int64_t i = 0; i < hidden; ++i)
    y[i] = moert::storedAs<T>(x[i] * scale * weight[i]);
}

// Target clones cannot be templates: one clone per result type.
MOERT_CLONES void rmsNormRow(const float *x, const float *weight,
                             int64_t hidden, double eps, float *y) {
  rmsNormRowOf(x, weight, hidden, eps, y);
}
MOERT_CLONES void rmsNormRow(const float *x, const float *weight,
                             int64_t hidden, double eps, moert::bf16 *y) {
  rmsNormRowOf(x, weight, hidden, eps, y);
}

/// rms_norm's input gradient of `rows` rows, and partial[j] = the sum of
/// their dWeight terms dy_j x_j s in row order. With g = dy w and the row's
/// scale s: dx_j = s g_j - s^3 x_j / hidden * sum_i g_i x_i, in double: the
/// two terms cancel when g is nearly parallel to x (always, at hidden 1).
/// A row's x and g wait in double in `widened` (2 * hidden) between its
/// sums and dx: widening them twice took a third of the kernel's time. A
/// bf16 x (the stored activation) is widened as it is read.
template <typename Stored>
MOERT_INLINE void rmsNormGradRowsOf(const Stored *x, const float *weight,
                                    const float *dy, int64_t rows,
                                    int64_t hidden, double eps, float *dx,
                                    double *widened, double *partial) {
  double *xs = widened, *gs = widened + hidden;
  std::fill(partial, partial + hidden, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const Stored *xRow = x + r * hidden;
    const float *dyRow = dy + r * hidden;
    double sumOfSquares = 0, dot = 0;
#pragma omp simd reduction(+ : sumOfSquares, dot)
    for (int64_t j = 0; j < hidden; ++j) {
      double xj = moert::toFloat(xRow[j]), gj = dyRow[j] * weight[j];
      xs[j] = xj;
      gs[j] = gj;
      sumOfSquares += xj * xj;
      dot += gj * xj;
    }
    double s = moert::rows::inverseRms(sumOfSquares, hidden, eps);
    double coefficient = s * s * s * dot / hidden;
    float scale = static_cast<float>(s);
    float *dxRow = dx + r * hidden;
#pragma omp simd
    for (int64_t j = 0; j < hidden; ++j) {
      dxRow[j] = static_cast<float>(s * gs[j] - coefficient * xs[j]);
      partial[j] += dyRow[j] * static_cast<float>(xs[j]) * scale;
    }
  }
}

// Target clones cannot be templates: one clone per stored type.
MOERT_CLONES void rmsNormGradRows(const float *x, const float *weight,
                                  const float *dy, int64_t rows, int64_t hidden,
                                  double eps, float *dx, double *widened,
                                  double *partial) {
  rmsNormGradRowsOf(x, weight, dy, rows, hidden, eps, dx, widened, partial);
}
MOERT_CLONES void rmsNormGradRows(const moert::bf16 *x, const float *weight,
                                  const float *dy, int64_t rows, int64_t hidden,
                                  double eps, float *dx, double *widened,
                                  double *partial) {
  rmsNormGradRowsOf(x, weight, dy, rows, hidden, eps, dx, widened, partial);
}

/// Rows per partial sum of rms_norm's weight gradient: 64 (blocks of 16
/// rows measured 15-30% slower at 768 rows), fewer where that would leave
/// under 8 blocks for the threads, at least 16; from the row count alone,
/// so that the sums and their order do not depend on the thread count.
int64_t normGradBlockRows(int64_t rows) {
  return std::clamp<int64_t>(rows / 8, 16, 64);
}

void fillZero(float *x, int64_t count) { std::fill(x, x + count, 0.0f); }

} // namespace

//===----------------------------------------------------------------------===//
// Embedding.
//===----------------------------------------------------------------------===//

void moert::cpu::embedding(const float *table, int64_t vocab, int64_t hidden,
                           const int32_t *ids, int64_t count, float *out) {
  checkIndices(ids, count, vocab, "moe.embedding: token id");
#pragma omp parallel for schedule(static) if (count * hidden >= kGrain)
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(out + i * hidden, table + ids[i] * hidden,
                hidden * sizeof(float));
}

void moert::cpu::embeddingGrad(const int32_t *ids, int64_t count,
                               const float *dOut, int64_t vocab, int64_t hidden,
                               int64_t paddingId, float *dTable) {
  checkIndices(ids, count, vocab, "moe.embedding: token id");
  // Bucket the positions by id (a stable counting sort), then each table
  // row sums its positions in order: no scatter races, and the result does
  // not depend on the thread count.
  std::vector<int64_t> begin(vocab + 1, 0), positions(count);
  for (int64_t i = 0; i < count; ++i)
    ++begin[ids[i] + 1];
  for (int64_t v = 0; v < vocab; ++v)
    begin[v + 1] += begin[v];
  std::vector<int64_t> next(begin.begin(), begin.end() - 1);
  for (int64_t i = 0; i < count; ++i)
    positions[next[ids[i]]++] = i;
#pragma omp parallel for schedule(static) if ((vocab + count) * hidden >=      \
                                              kGrain)
  for (int64_t v = 0; v < vocab; ++v) {
    float *row = dTable + v * hidden;
    fillZero(row, hidden);
    if (v == paddingId)
      continue;
    for (int64_t p = begin[v]; p < begin[v + 1]; ++p) {
      const float *source = dOut + positions[p] * hidden;
#pragma omp simd
      for (int64_t d = 0; d < hidden; ++d)
        row[d] += source[d];
    }
  }
}

//===----------------------------------------------------------------------===//
// RMS norm.
//===----------------------------------------------------------------------===//

template <typename T>
void moert::cpu::rmsNorm(const float *x, const float *weight, int64_t rows,
                         int64_t hidden, double eps, T *y) {
#pragma omp parallel for schedule(static) if (rows * hidden >= kGrain)
  for (int64_t r = 0; r < rows; ++r)
    rmsNormRow(x + r * hidden, weight, hidden, eps, y + r * hidden);
}
template void moert::cpu::rmsNorm(const float *, const float *, int64_t,
                                  int64_t, double, float *);
template void moert::cpu::rmsNorm(const float *, const float *, int64_t,
                                  int64_t, double, bf16 *);

template <typename Stored>
void moert::cpu::rmsNormGrad(const Stored *x, const float *weight,
                             const float *dy, int64_t rows, int64_t hidden,
                             double eps, float *dx, float *dWeight) {
  // dWeight_j = sum over rows of dy_j x_j s: each block of rows sums its
  // terms, and the blocks' sums add in block order.
  int64_t blockRows = normGradBlockRows(rows);
  int64_t blocks = (rows + blockRows - 1) / blockRows;
  std::vector<double> partial(blocks * hidden);
#pragma omp parallel if (rows * hidden >= kGrain)
  {
    std::vector<double> widened(2 * hidden);
#pragma omp for schedule(static)
    for (int64_t block = 0; block < blocks; ++block) {
      int64_t begin = block * blockRows;
      rmsNormGradRows(x + begin * hidden, weight, dy + begin * hidden,
                      std::min(blockRows, rows - begin), hidden, eps,
                      dx + begin * hidden, widened.data(),
                      partial.data() + block * hidden);
    }
#pragma omp for schedule(static)
    for (int64_t j = 0; j < hidden; ++j) {
      double sum = 0;
      for (int64_t block = 0; block < blocks; ++block)
        sum += partial[block * hidden + j];
      dWeight[j] = static_cast<float>(sum);
    }
  }
}
template void moert::cpu::rmsNormGrad(const float *, const float *,
                                      const float *, int64_t, int64_t, double,
                                      float *, float *);
template void moert::cpu::rmsNormGrad(const bf16 *, const float *,
                                      const float *, int64_t, int64_t, double,
                                      float *, float *);

//===----------------------------------------------------------------------===//
// Linear layers: oneDNN.
//===----------------------------------------------------------------------===//

namespace {

template <typename T>
void linearWeightGradOf(const T *dy, const T *x, int64_t rows, int64_t in,
                        int64_t out, float *dWeight) {
  moert::cpu::detail::gemm(true, false, out, in, rows, dy, out, x, in, 0.0f,
                           dWeight, in);
}

} // namespace

template <typename Operand, typename Result>
void moert::cpu::linear(const Operand *x, const Operand *weight,
                        const float *bias, int64_t rows, int64_t in,
                        int64_t out, Result *y) {
  if constexpr (std::is_same_v<Result, float>) {
    // The bias is preloaded into y, on this thread (an OpenMP team spinning
    // right before the call slows oneDNN's threads); the GEMM adds x W^T.
    for (int64_t r = 0; bias && r < rows; ++r)
      std::memcpy(y + r * out, bias, out * sizeof(float));
    detail::gemm(false, true, rows, out, in, x, in, weight, in,
                 bias ? 1.0f : 0.0f, y, out);
  } else {
    if (bias)
      moert::fail("moert::cpu::linear: a bf16 result takes no bias");
    detail::gemm(false, true, rows, out, in, x, in, weight, in, y);
  }
}
template void moert::cpu::linear(const float *, const float *, const float *,
                                 int64_t, int64_t, int64_t, float *);
template void moert::cpu::linear(const bf16 *, const bf16 *, const float *,
                                 int64_t, int64_t, int64_t, float *);
template void moert::cpu::linear(const bf16 *, const bf16 *, const float *,
                                 int64_t, int64_t, int64_t, bf16 *);

template <typename Operand, typename Result>
void moert::cpu::linearInputGrad(const Operand *dy, const Operand *weight,
                                 int64_t rows, int64_t in, int64_t out,
                                 Result *dx) {
  if constexpr (std::is_same_v<Result, float>)
    detail::gemm(false, false, rows, in, out, dy, out, weight, in, 0.0f, dx,
                 in);
  else
    detail::gemm(false, false, rows, in, out, dy, out, weight, in, dx);
}
template void moert::cpu::linearInputGrad(const float *, const float *, int64_t,
                                          int64_t, int64_t, float *);
template void moert::cpu::linearInputGrad(const bf16 *, const bf16 *, int64_t,
                                          int64_t, int64_t, float *);
template void moert::cpu::linearInputGrad(const bf16 *, const bf16 *, int64_t,
                                          int64_t, int64_t, bf16 *);

void moert::cpu::linearWeightGrad(const float *dy, const float *x, int64_t rows,
                                  int64_t in, int64_t out, float *dWeight) {
  linearWeightGradOf(dy, x, rows, in, out, dWeight);
}
void moert::cpu::linearWeightGrad(const bf16 *dy, const bf16 *x, int64_t rows,
                                  int64_t in, int64_t out, float *dWeight) {
  linearWeightGradOf(dy, x, rows, in, out, dWeight);
}

void moert::cpu::biasGrad(const float *dy, int64_t rows, int64_t out,
                          float *dBias) {
#pragma omp parallel if (rows * out >= kGrain)
  sumOverRows(rows, out, dBias,
              [&](int64_t r, int64_t o) { return dy[r * out + o]; });
}

//===----------------------------------------------------------------------===//
// RoPE.
//===----------------------------------------------------------------------===//

namespace {

/// One position's heads rotated: y = x rotated by (cos, sin) per pair of
/// lanes (i, i + half), or (2i, 2i + 1) where `interleaved`, of the first
/// 2 * half, the others copied, stored as
/// T (bf16: rounded). Target clones, so that the bf16 rounding vectorizes
/// beyond baseline SSE.
template <typename T>
MOERT_INLINE void ropePositionOf(const float *x, const float *cos,
                                 const float *sin, int64_t heads,
                                 int64_t headDim, int64_t half,
                                 bool interleaved, T *y) {
  for (int64_t h = 0; h < heads; ++h) {
    const float *xh = x + h * headDim;
    T *yh = y + h * headDim;
#pragma omp simd
    for (int64_t i = 0; i < half; ++i) {
      int64_t first, second;
      moert::rows::ropePair(i, half, interleaved, first, second);
      float x1 = xh[first], x2 = xh[second];
      yh[first] = moert::storedAs<T>(x1 * cos[i] - x2 * sin[i]);
      yh[second] = moert::storedAs<T>(x2 * cos[i] + x1 * sin[i]);
    }
    for (int64_t i = 2 * half; i < headDim; ++i)
      yh[i] = moert::storedAs<T>(xh[i]);
  }
}

MOERT_CLONES void ropePosition(const float *x, const float *cos,
                               const float *sin, int64_t heads, int64_t headDim,
                               int64_t half, bool interleaved, float *y) {
  ropePositionOf(x, cos, sin, heads, headDim, half, interleaved, y);
}
MOERT_CLONES void ropePosition(const float *x, const float *cos,
                               const float *sin, int64_t heads, int64_t headDim,
                               int64_t half, bool interleaved, moert::bf16 *y) {
  ropePositionOf(x, cos, sin, heads, headDim, half, interleaved, y);
}

} // namespace

template <typename T>
void moert::cpu::rope(const float *x, int64_t batch, int64_t seq, int64_t heads,
                      int64_t headDim, int64_t rotaryDim, double theta,
                      RopeScaling scaling, bool inverse, bool interleaved,
                      T *y) {
  // rotary_dim is even (the verifier checks it). cos and sin of s * f_i for
  // every position, stepped by angle addition in double (error ~seq * 1e-16)
  // instead of seq * rotary_dim / 2 libm calls.
  int64_t half = rotaryDim / 2;
  std::vector<float> cosines(seq * half), sines(seq * half);
  for (int64_t i = 0; i < half; ++i) {
    double frequency = moert::rows::ropeFrequency(i, rotaryDim, theta, scaling);
    double stepCos = std::cos(frequency);
    double stepSin = inverse ? -std::sin(frequency) : std::sin(frequency);
    double c = 1, s = 0;
    for (int64_t position = 0; position < seq; ++position) {
      cosines[position * half + i] =
          static_cast<float>(c * scaling.attentionFactor);
      sines[position * half + i] =
          static_cast<float>(s * scaling.attentionFactor);
      double nextC = c * stepCos - s * stepSin;
      s = s * stepCos + c * stepSin;
      c = nextC;
    }
  }
  int64_t positions = batch * seq;
#pragma omp parallel for schedule(static) if (positions * heads * headDim >=   \
                                              kGrain)
  for (int64_t p = 0; p < positions; ++p)
    ropePosition(x + p * heads * headDim, cosines.data() + (p % seq) * half,
                 sines.data() + (p % seq) * half, heads, headDim, half,
                 interleaved, y + p * heads * headDim);
}

template void moert::cpu::rope(const float *, int64_t, int64_t, int64_t,
                               int64_t, int64_t, double, RopeScaling, bool,
                               bool, float *);
template void moert::cpu::rope(const float *, int64_t, int64_t, int64_t,
                               int64_t, int64_t, double, RopeScaling, bool,
                               bool, bf16 *);

//===----------------------------------------------------------------------===//
// Elementwise.
//===----------------------------------------------------------------------===//

/// Calls fn(begin, size, sigmoid) on blocks of elements, in parallel, where
/// sigmoid[i] = 1 / (1 + exp(-gate[begin + i])).
template <typename Fn>
static void sigmoidBlocks(const float *gate, int64_t count, Fn fn) {
  constexpr int64_t kBlock = 1024;
  int64_t blocks = (count + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (count >= kGrain)
  for (int64_t block = 0; block < blocks; ++block) {
    int64_t begin = block * kBlock, size = std::min(kBlock, count - begin);
    float sigmoid[kBlock];
    expAndSum(gate + begin, size, -1.0f, 0.0f, sigmoid);
#pragma omp simd
    for (int64_t i = 0; i < size; ++i)
      sigmoid[i] = 1.0f / (1.0f + sigmoid[i]);
    fn(begin, size, sigmoid);
  }
}

void moert::cpu::swiglu(const float *gate, const float *up, int64_t count,
                        float *y) {
  sigmoidBlocks(gate, count,
                [&](int64_t begin, int64_t size, const float *sigmoid) {
#pragma omp simd
                  for (int64_t i = 0; i < size; ++i)
                    y[begin + i] = gate[begin + i] * sigmoid[i] * up[begin + i];
                });
}

void moert::cpu::swigluGrad(const float *gate, const float *up, const float *dy,
                            int64_t count, float *dGate, float *dUp) {
  // silu(g) = g sigmoid(g), silu'(g) = sigmoid(g) (1 + g (1 - sigmoid(g))).
  sigmoidBlocks(
      gate, count, [&](int64_t begin, int64_t size, const float *sigmoid) {
#pragma omp simd
        for (int64_t i = 0; i < size; ++i) {
          float g = gate[begin + i], s = sigmoid[i], d = dy[begin + i];
          dUp[begin + i] = d * g * s;
          dGate[begin + i] = d * up[begin + i] * s * (1.0f + g * (1.0f - s));
        }
      });
}

void moert::cpu::sigmoidScale(const float *x, const float *logit, int64_t rows,
                              int64_t hidden, float *y) {
#pragma omp parallel for schedule(static) if (rows * hidden >= kGrain)
  for (int64_t r = 0; r < rows; ++r) {
    float scale = static_cast<float>(moert::rows::sigmoid(logit[r]));
#pragma omp simd
    for (int64_t h = 0; h < hidden; ++h)
      y[r * hidden + h] = x[r * hidden + h] * scale;
  }
}

void moert::cpu::sigmoidScaleGrad(const float *x, const float *logit,
                                  const float *dy, int64_t rows, int64_t hidden,
                                  float *dx, float *dLogit) {
#pragma omp parallel for schedule(static) if (rows * hidden >= kGrain)
  for (int64_t r = 0; r < rows; ++r) {
    double s = moert::rows::sigmoid(logit[r]);
    float scale = static_cast<float>(s);
    double dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t h = 0; h < hidden; ++h) {
      dx[r * hidden + h] = dy[r * hidden + h] * scale;
      dot += static_cast<double>(dy[r * hidden + h]) * x[r * hidden + h];
    }
    dLogit[r] = static_cast<float>(moert::rows::sigmoidScaleLogitGrad(s, dot));
  }
}

void moert::cpu::add(const float *a, const float *b, int64_t count, float *y) {
#pragma omp parallel for simd schedule(static) if (count >= kGrain)
  for (int64_t i = 0; i < count; ++i)
    y[i] = a[i] + b[i];
}

void moert::cpu::mul(const float *a, const float *b, int64_t count, float *y) {
#pragma omp parallel for simd schedule(static) if (count >= kGrain)
  for (int64_t i = 0; i < count; ++i)
    y[i] = a[i] * b[i];
}

void moert::cpu::scale(const float *x, double factor, int64_t count, float *y) {
  float f = static_cast<float>(factor);
#pragma omp parallel for simd schedule(static) if (count >= kGrain)
  for (int64_t i = 0; i < count; ++i)
    y[i] = x[i] * f;
}

//===----------------------------------------------------------------------===//
// Cross-entropy.
//===----------------------------------------------------------------------===//

namespace {
bool isCounted(const moert::cpu::CountedTargets &counted, int32_t target) {
  return !counted.ignores || target != counted.ignoreIndex;
}

/// Counted targets are checked before any output is written.
void checkTargets(const int32_t *targets, int64_t rows, int64_t vocab,
                  const moert::cpu::CountedTargets &counted) {
  for (int64_t r = 0; r < rows; ++r)
    if (isCounted(counted, targets[r]) &&
        (targets[r] < 0 || targets[r] >= vocab))
      moert::fail("moe.cross_entropy: target {} is outside [0, {})", targets[r],
                  vocab);
}
} // namespace

float moert::cpu::crossEntropy(const float *logits, const int32_t *targets,
                               int64_t rows, int64_t vocab,
                               const CountedTargets &counted, double divisor) {
  checkTargets(targets, rows, vocab, counted);
  // Per-row losses, summed in row order afterwards: thread-count independent.
  std::vector<double> losses(rows);
#pragma omp parallel if (rows * vocab >= kGrain)
  {
    std::vector<float> exps(vocab);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      if (!isCounted(counted, targets[r]))
        continue;
      const float *row = logits + r * vocab;
      float maximum = rowMax(row, vocab);
      float sum = expAndSum(row, vocab, 1.0f, maximum, exps.data());
      losses[r] =
          maximum + std::log(static_cast<double>(sum)) - row[targets[r]];
    }
  }
  double total = 0;
  for (double loss : losses)
    total += loss;
  return divisor == 0 ? 0.0f : static_cast<float>(total / divisor);
}

namespace {

/// A counted row's softmax - onehot, scaled by rowScale.
void crossEntropyGradRow(const float *row, int32_t target, int64_t vocab,
                         double rowScale, float *dRow) {
  float maximum = rowMax(row, vocab);
  float sum = expAndSum(row, vocab, 1.0f, maximum, dRow);
  float factor = static_cast<float>(rowScale / sum);
#pragma omp simd
  for (int64_t v = 0; v < vocab; ++v)
    dRow[v] *= factor;
  dRow[target] -= static_cast<float>(rowScale);
}

} // namespace

template <typename T>
void moert::cpu::crossEntropyGrad(const float *logits, const int32_t *targets,
                                  int64_t rows, int64_t vocab,
                                  const CountedTargets &counted, double divisor,
                                  float dLoss, T *dLogits) {
  checkTargets(targets, rows, vocab, counted);
  // The loss divides the counted rows' sum: each one's softmax - onehot is
  // scaled by dLoss / divisor.
  double rowScale = divisor == 0 ? 0.0 : static_cast<double>(dLoss) / divisor;
#pragma omp parallel if (rows * vocab >= kGrain)
  {
    // A bf16 row is computed in f32, then rounded as it is stored.
    std::vector<float> f32Row(std::is_same_v<T, float> ? 0 : vocab);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      T *dRow = dLogits + r * vocab;
      if (!isCounted(counted, targets[r])) {
        std::fill(dRow, dRow + vocab, moert::storedAs<T>(0.0f));
        continue;
      }
      if constexpr (std::is_same_v<T, float>) {
        crossEntropyGradRow(logits + r * vocab, targets[r], vocab, rowScale,
                            dRow);
      } else {
        crossEntropyGradRow(logits + r * vocab, targets[r], vocab, rowScale,
                            f32Row.data());
        convert(f32Row.data(), vocab, dRow);
      }
    }
  }
}
template void moert::cpu::crossEntropyGrad(const float *, const int32_t *,
                                           int64_t, int64_t,
                                           const CountedTargets &, double,
                                           float, float *);
template void moert::cpu::crossEntropyGrad(const float *, const int32_t *,
                                           int64_t, int64_t,
                                           const CountedTargets &, double,
                                           float, bf16 *);

float moert::cpu::countTargets(const int32_t *targets, int64_t count,
                               const CountedTargets &counted) {
  int64_t total = 0;
  for (int64_t i = 0; i < count; ++i)
    total += isCounted(counted, targets[i]);
  return static_cast<float>(total);
}
