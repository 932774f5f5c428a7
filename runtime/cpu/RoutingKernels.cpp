//===- RoutingKernels.cpp - f32 CPU routing and expert kernels ------------===//
//
// Gate, dispatch, expert FFN, combine and the router losses of CpuKernels.h.
// A token's row of E logits is processed in double as the reference kernels
// do, so routing decisions (top-k, ties) match them. Expert GEMMs go to
// OpenBLAS on each expert's filled rows, never inside an OpenMP region (the
// pthread OpenBLAS must not nest in one). Token-parallel loops write disjoint
// outputs; reductions over tokens sum fixed chunks in chunk order, so results
// do not depend on the thread count. Index checks run before any parallel
// loop: an exception must not escape an OpenMP region.
//
// Small loops stay on the calling thread: after a region the OpenMP workers
// spin-wait and take the cores that the pthread OpenBLAS's next GEMMs need.
// On the benchmark's MoE layer (768 tokens, 2 cores), token-parallel routing
// made forward + backward ~8x slower.
//
//===----------------------------------------------------------------------===//

#include "moert/CpuKernels.h"
#include "moert/Error.h"

#include "Gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

using namespace moert::cpu;

namespace {

/// Tokens per partial sum of a reduction over tokens: fixed, so the partial
/// sums and their order are the same whatever the thread count.
constexpr int64_t kChunk = 256;

/// Cost of a gate or logsumexp element (exps in double) in copied floats.
constexpr int64_t kExpCost = 32;

/// Whether `work` (in copied floats) is worth the OpenMP team: from about a
/// millisecond on one core.
inline bool worthThreads(int64_t work) { return work >= (int64_t(1) << 22); }

/// Checks `index` lies in [0, bound), with the reference kernels' message.
int64_t checkedIndex(int64_t index, int64_t bound, const char *op,
                     const char *what) {
  if (index < 0 || index >= bound)
    moert::fail(op, ": ", what, " ", index, " is outside [0, ", bound, ")");
  return index;
}

/// Checks the kept assignments (slot >= 0; all without `slots`) of a
/// dispatch, as the reference's forEachKeptAssignment: dropped ones are not
/// looked at.
void checkAssignments(const int32_t *indices, const int32_t *slots,
                      int64_t count, int64_t experts, int64_t capacity,
                      const char *op) {
  for (int64_t i = 0; i < count; ++i) {
    if (slots && slots[i] < 0)
      continue;
    checkedIndex(indices[i], experts, op, "expert index");
    if (slots)
      checkedIndex(slots[i], capacity, op, "slot");
  }
}

/// The buffer row of kept assignment `i`, or -1 when it was dropped.
inline int64_t rowOf(const int32_t *indices, const int32_t *slots, int64_t i,
                     int64_t capacity) {
  return slots[i] < 0 ? -1 : indices[i] * capacity + slots[i];
}

/// log(sum(exp(row))) computed stably in double, as in the reference.
double logSumExp(const float *row, int64_t size) {
  double maximum = *std::max_element(row, row + size), sum = 0;
  for (int64_t i = 0; i < size; ++i)
    sum += std::exp(row[i] - maximum);
  return maximum + std::log(sum);
}

/// The gate's logits in double into z, normalized when configured as the
/// reference does: lambda (z - mean) / (std + eps), with the population std,
/// which is returned; `centered` gets z - mean.
double normalizeLogits(const float *row, int64_t experts,
                       const GateConfig &config, double *z, double *centered) {
  double mean = 0, variance = 0;
  if (config.normalize) {
    for (int64_t e = 0; e < experts; ++e)
      mean += row[e];
    mean /= experts;
    for (int64_t e = 0; e < experts; ++e)
      variance += (row[e] - mean) * (row[e] - mean);
  }
  double std = std::sqrt(variance / experts);
  for (int64_t e = 0; e < experts; ++e) {
    centered[e] = row[e] - mean;
    z[e] = config.normalize ? config.lambda * centered[e] / (std + config.eps)
                            : static_cast<double>(row[e]);
  }
  return std;
}

/// softmax in place, in double: one exp per element (the reference's
/// exp(z - logsumexp) takes two; they differ by an ulp of double).
void softmaxInPlace(double *z, int64_t size) {
  double maximum = *std::max_element(z, z + size), sum = 0;
  for (int64_t i = 0; i < size; ++i)
    sum += z[i] = std::exp(z[i] - maximum);
  for (int64_t i = 0; i < size; ++i)
    z[i] /= sum;
}

/// sums[j] = sum over tokens of the row fn(t, row) adds to, j < width:
/// fixed chunks of tokens, combined in chunk order. `cost` is a token's work.
template <typename Fn>
std::vector<double> sumOverTokens(int64_t tokens, int64_t width, int64_t cost,
                                  Fn fn) {
  int64_t chunks = (tokens + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks * width, 0.0), sums(width, 0.0);
#pragma omp parallel for schedule(static) if (worthThreads(tokens * cost))
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    for (int64_t t = chunk * kChunk; t < std::min(tokens, (chunk + 1) * kChunk);
         ++t)
      fn(t, &partial[chunk * width]);
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    for (int64_t j = 0; j < width; ++j)
      sums[j] += partial[chunk * width + j];
  return sums;
}

/// Validates `counts` and returns each expert's first row in a scratch
/// buffer that packs the experts' filled rows: offsets[experts] is the total.
std::vector<int64_t> packedOffsets(const int64_t *counts, int64_t experts,
                                   int64_t capacity, const char *op) {
  std::vector<int64_t> offsets(experts + 1, 0);
  for (int64_t e = 0; e < experts; ++e) {
    if (counts[e] < 0 || counts[e] > capacity)
      moert::fail(op, ": count ", counts[e], " of expert ", e,
                  " is outside [0, ", capacity, "]");
    offsets[e + 1] = offsets[e] + counts[e];
  }
  return offsets;
}

/// Per-thread scratch that grows and is kept: the expert kernels run every
/// step with the same shapes, so this avoids allocating and page-faulting
/// megabytes per call.
float *scratch(size_t size) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < size)
    buffer.resize(size);
  return buffer.data();
}

using detail::gemm;

// The SwiGLU between the expert GEMMs is exp-bound: libm's scalar expf does
// not vectorize without -ffast-math, so it is written on GCC's generic
// vectors, which each target clone lowers to its widest registers (4 SSE, 2
// AVX2 or 1 AVX-512 per 16 lanes).
typedef float Floats __attribute__((vector_size(64)));
typedef int32_t Ints __attribute__((vector_size(64)));
constexpr int64_t kLanes = sizeof(Floats) / sizeof(float);

#if defined(__x86_64__) && !defined(__clang__)
#define MOERT_CLONES                                                           \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MOERT_CLONES
#endif

// Helpers of the clones must be inlined into each to get its registers.
#define MOERT_INLINE __attribute__((always_inline)) inline
#define MOERT_LAMBDA_INLINE __attribute__((always_inline))

/// x <- exp(x): Cephes' expf polynomial (within 2 ulp), with x clamped to
/// [-87, 88] so that 2^n stays a normal float; NaN stays NaN.
MOERT_INLINE void expInPlace(Floats &x) {
  Floats low = Floats{} - 87.0f, high = Floats{} + 88.0f;
  x = x < low ? low : x;
  x = x > high ? high : x;
  // Adding 1.5 * 2^23 rounds to an integer n, which lands in the low bits.
  const float magic = 12582912.0f;
  Floats t = x * 1.44269504088896341f + magic, n = t - magic;
  Floats r = x - n * 0.693359375f - n * -2.12194440e-4f;
  Floats p = Floats{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  Ints scale = ((Ints)t - (0x4B400000 - 127)) << 23; // 2^n
  x = p * (Floats)scale;
}

/// Loads/stores n <= kLanes floats (a full block when n is the constant).
MOERT_INLINE void load(Floats &v, const float *p, int64_t n) {
  v = Floats{};
  std::memcpy(&v, p, n * sizeof(float));
}
MOERT_INLINE void store(float *p, const Floats &v, int64_t n) {
  std::memcpy(p, &v, n * sizeof(float));
}

/// Calls block(i, n) on [i, i + n) for full blocks of kLanes, then the tail.
template <typename Block>
MOERT_INLINE void forEachBlock(int64_t count, Block block) {
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes)
    block(i, kLanes);
  if (i < count)
    block(i, count - i);
}

/// gate <- silu(gate) up.
MOERT_CLONES void swigluInPlace(float *gate, const float *up, int64_t count) {
  forEachBlock(count, [&](int64_t i, int64_t n) MOERT_LAMBDA_INLINE {
    Floats g, u, e;
    load(g, gate + i, n);
    load(u, up + i, n);
    e = -g;
    expInPlace(e);
    store(gate + i, g / (1.0f + e) * u, n);
  });
}

/// Given a = silu(g) u and da, with s = sigmoid(g): g <- dg = da u s (1 + g
/// (1 - s)), u <- du = da silu(g), da <- a.
MOERT_CLONES void swigluGradInPlace(float *gate, float *up, float *dAct,
                                    int64_t count) {
  forEachBlock(count, [&](int64_t i, int64_t n) MOERT_LAMBDA_INLINE {
    Floats g, u, da, s;
    load(g, gate + i, n);
    load(u, up + i, n);
    load(da, dAct + i, n);
    s = -g;
    expInPlace(s);
    s = 1.0f / (1.0f + s);
    Floats silu = g * s;
    store(gate + i, da * u * s * (1.0f + g * (1.0f - s)), n);
    store(up + i, da * silu, n);
    store(dAct + i, silu * u, n);
  });
}

/// g = x Wg^T and u = x Wu^T of each expert's filled rows, packed by
/// `offsets` into [total, ffn] scratch.
void projections(const float *x, const float *gateProj, const float *upProj,
                 const int64_t *counts, const std::vector<int64_t> &offsets,
                 int64_t capacity, int64_t hidden, int64_t ffn, float *gateAct,
                 float *upAct) {
  for (size_t e = 0; e + 1 < offsets.size(); ++e) {
    if (counts[e] == 0)
      continue; // an empty expert costs nothing
    const float *xe = x + e * capacity * hidden;
    gemm(false, true, counts[e], ffn, hidden, xe, hidden,
         gateProj + e * ffn * hidden, hidden, 0.0f, gateAct + offsets[e] * ffn,
         ffn);
    gemm(false, true, counts[e], ffn, hidden, xe, hidden,
         upProj + e * ffn * hidden, hidden, 0.0f, upAct + offsets[e] * ffn,
         ffn);
  }
}

/// dL/dP_e of the auxiliary loss: skywork's sum_e (1/n - P_e)^2 gives
/// -2 (1/n - P_e), switch's n sum_e f_e P_e gives n f_e (f constant). With
/// `lossTerms`, the loss's terms instead.
std::vector<double> auxTerms(AuxLossKind kind, const float *probs,
                             const int32_t *indices, int64_t tokens,
                             int64_t experts, int64_t topK, bool lossTerms) {
  checkAssignments(indices, nullptr, tokens * topK, experts, 0, "moe.aux_loss");
  std::vector<int64_t> assigned(experts, 0);
  for (int64_t i = 0; i < tokens * topK; ++i)
    ++assigned[indices[i]];
  std::vector<double> meanProb =
      sumOverTokens(tokens, experts, experts, [&](int64_t t, double *sum) {
        for (int64_t e = 0; e < experts; ++e)
          sum[e] += probs[t * experts + e];
      });
  for (double &value : meanProb)
    value /= static_cast<double>(tokens);
  std::vector<double> terms(experts);
  double n = static_cast<double>(experts);
  for (int64_t e = 0; e < experts; ++e) {
    double gap = 1.0 / n - meanProb[e];
    double fraction =
        static_cast<double>(assigned[e]) / static_cast<double>(tokens * topK);
    if (kind == AuxLossKind::Skywork)
      terms[e] = lossTerms ? gap * gap : -2.0 * gap;
    else
      terms[e] = lossTerms ? n * fraction * meanProb[e] : n * fraction;
  }
  return terms;
}

} // namespace

//===----------------------------------------------------------------------===//
// gate
//===----------------------------------------------------------------------===//

void moert::cpu::gate(const float *logits, int64_t tokens, int64_t experts,
                      const GateConfig &config, float *probs, float *weights,
                      int32_t *indices) {
  int64_t topK = config.topK;
#pragma omp parallel if (worthThreads(tokens * experts * kExpCost))
  {
    std::vector<double> z(experts), centered(experts);
    std::vector<char> taken(experts);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      normalizeLogits(logits + t * experts, experts, config, z.data(),
                      centered.data());
      softmaxInPlace(z.data(), experts);
      float *p = probs + t * experts;
      for (int64_t e = 0; e < experts; ++e)
        p[e] = static_cast<float>(z[e]);
      // Select on the f32 probabilities, so ties are ties in f32; the strict
      // comparison keeps the lower index, like the reference's stable sort.
      std::fill(taken.begin(), taken.end(), 0);
      int32_t *chosen = indices + t * topK;
      double selected = 0;
      for (int64_t c = 0; c < topK; ++c) {
        int64_t best = -1;
        for (int64_t e = 0; e < experts; ++e)
          if (!taken[e] && (best < 0 || p[e] > p[best]))
            best = e;
        taken[best] = 1;
        chosen[c] = static_cast<int32_t>(best);
        selected += p[best];
      }
      double denominator = config.renormalize ? selected : 1.0;
      for (int64_t c = 0; c < topK; ++c)
        weights[t * topK + c] = static_cast<float>(p[chosen[c]] / denominator);
    }
  }
}

void moert::cpu::gateGrad(const float *logits, const int32_t *indices,
                          int64_t tokens, int64_t experts,
                          const GateConfig &config, const float *dProbs,
                          const float *dWeights, float *dLogits) {
  int64_t topK = config.topK;
  checkAssignments(indices, nullptr, tokens * topK, experts, 0, "moe.gate");
#pragma omp parallel if (worthThreads(tokens * experts * kExpCost))
  {
    std::vector<double> centered(experts), probs(experts), dP(experts),
        dz(experts);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      // Recompute the forward in double: z~ = a (z - mean) with a = lambda /
      // (std + eps), p = softmax(z~) (unrounded, as the reference).
      double std = normalizeLogits(logits + t * experts, experts, config,
                                   probs.data(), centered.data());
      double factor = config.lambda / (std + config.eps);
      softmaxInPlace(probs.data(), experts);

      // Weights path: with renormalize w_c = p_{i_c} / S, so dp_{i_c} +=
      // (dw_c - sum_c' dw_c' w_c') / S.
      const int32_t *chosen = indices + t * topK;
      const float *dW = dWeights + t * topK;
      std::copy(dProbs + t * experts, dProbs + (t + 1) * experts, dP.begin());
      double selected = 0, weighted = 0;
      for (int64_t c = 0; c < topK; ++c)
        selected += probs[chosen[c]];
      if (config.renormalize)
        for (int64_t c = 0; c < topK; ++c)
          weighted += dW[c] * probs[chosen[c]] / selected;
      for (int64_t c = 0; c < topK; ++c)
        dP[chosen[c]] +=
            config.renormalize ? (dW[c] - weighted) / selected : dW[c];

      // Softmax backward: dz~_e = p_e (dp_e - sum_j p_j dp_j).
      double expected = 0;
      for (int64_t e = 0; e < experts; ++e)
        expected += probs[e] * dP[e];
      for (int64_t e = 0; e < experts; ++e)
        dz[e] = probs[e] * (dP[e] - expected);

      // Normalization backward through mean and population std; at std = 0
      // every centered value is 0 and the std term vanishes.
      if (config.normalize) {
        double meanG = 0, dotGY = 0;
        for (int64_t e = 0; e < experts; ++e) {
          meanG += dz[e] / experts;
          dotGY += dz[e] * centered[e];
        }
        double dStd =
            -config.lambda / ((std + config.eps) * (std + config.eps)) * dotGY;
        for (int64_t e = 0; e < experts; ++e) {
          double viaStd = std > 0 ? dStd * centered[e] / (experts * std) : 0.0;
          dz[e] = factor * (dz[e] - meanG) + viaStd;
        }
      }
      for (int64_t e = 0; e < experts; ++e)
        dLogits[t * experts + e] = static_cast<float>(dz[e]);
    }
  }
}

//===----------------------------------------------------------------------===//
// dispatch
//===----------------------------------------------------------------------===//

void moert::cpu::dispatch(const float *tokens, const int32_t *indices,
                          int64_t numTokens, int64_t hidden, int64_t topK,
                          int64_t experts, int64_t capacity, float *buffer,
                          int32_t *slots, int64_t *counts, int64_t *dropped) {
  // The queues are token-major, hence sequential; this pass is O(T k) and
  // leaves only the row copies, which are disjoint, to run in parallel.
  std::fill(counts, counts + experts, 0);
  int64_t drops = 0;
  for (int64_t i = 0; i < numTokens * topK; ++i) {
    int64_t expert =
        checkedIndex(indices[i], experts, "moe.dispatch", "expert index");
    if (counts[expert] == capacity) {
      slots[i] = -1;
      ++drops;
    } else {
      slots[i] = static_cast<int32_t>(counts[expert]++);
    }
  }
  *dropped = drops;
  int64_t work = numTokens * topK * hidden;
#pragma omp parallel for schedule(static) if (worthThreads(work))
  for (int64_t t = 0; t < numTokens; ++t)
    for (int64_t c = 0; c < topK; ++c) {
      int64_t row = rowOf(indices, slots, t * topK + c, capacity);
      if (row >= 0)
        std::memcpy(buffer + row * hidden, tokens + t * hidden,
                    hidden * sizeof(float));
    }
}

void moert::cpu::dispatchGrad(const float *dBuffer, const int32_t *indices,
                              const int32_t *slots, int64_t numTokens,
                              int64_t hidden, int64_t topK, int64_t experts,
                              int64_t capacity, float *dTokens) {
  checkAssignments(indices, slots, numTokens * topK, experts, capacity,
                   "moe.dispatch");
  // A gather per token: race-free, summed in choice order.
  int64_t work = numTokens * topK * hidden;
#pragma omp parallel for schedule(static) if (worthThreads(work))
  for (int64_t t = 0; t < numTokens; ++t) {
    float *out = dTokens + t * hidden;
    std::fill(out, out + hidden, 0.0f);
    for (int64_t c = 0; c < topK; ++c) {
      int64_t row = rowOf(indices, slots, t * topK + c, capacity);
      if (row < 0)
        continue;
      const float *in = dBuffer + row * hidden;
      for (int64_t d = 0; d < hidden; ++d)
        out[d] += in[d];
    }
  }
}

//===----------------------------------------------------------------------===//
// expert FFN
//===----------------------------------------------------------------------===//

void moert::cpu::expertFfn(const float *x, const float *gateProj,
                           const float *upProj, const float *downProj,
                           const int64_t *counts, int64_t experts,
                           int64_t capacity, int64_t hidden, int64_t ffn,
                           float *y) {
  std::vector<int64_t> offsets =
      packedOffsets(counts, experts, capacity, "moe.expert_ffn");
  int64_t total = offsets[experts];
  float *gateAct = scratch(2 * total * ffn), *upAct = gateAct + total * ffn;
  projections(x, gateProj, upProj, counts, offsets, capacity, hidden, ffn,
              gateAct, upAct);
  // a = silu(g) u, in place of g, on the calling thread: it is ~1/(6 hidden)
  // of the GEMMs' work, and an OpenMP team would then spin on the cores that
  // the next GEMMs need.
  swigluInPlace(gateAct, upAct, total * ffn);
  // y = a Wd^T, straight into the expert's rows.
  for (int64_t e = 0; e < experts; ++e)
    if (counts[e] > 0)
      gemm(false, true, counts[e], hidden, ffn, gateAct + offsets[e] * ffn, ffn,
           downProj + e * hidden * ffn, ffn, 0.0f, y + e * capacity * hidden,
           hidden);
}

void moert::cpu::expertFfnGrad(const float *x, const float *gateProj,
                               const float *upProj, const float *downProj,
                               const float *dy, const int64_t *counts,
                               int64_t experts, int64_t capacity,
                               int64_t hidden, int64_t ffn, float *dx,
                               float *dGateProj, float *dUpProj,
                               float *dDownProj) {
  std::vector<int64_t> offsets =
      packedOffsets(counts, experts, capacity, "moe.expert_ffn");
  int64_t total = offsets[experts];
  float *gateAct = scratch(3 * total * ffn), *upAct = gateAct + total * ffn;
  float *dAct = upAct + total * ffn;
  // Recompute g and u; da = dy Wd.
  projections(x, gateProj, upProj, counts, offsets, capacity, hidden, ffn,
              gateAct, upAct);
  for (int64_t e = 0; e < experts; ++e)
    if (counts[e] > 0)
      gemm(false, false, counts[e], ffn, hidden, dy + e * capacity * hidden,
           hidden, downProj + e * hidden * ffn, ffn, 0.0f,
           dAct + offsets[e] * ffn, ffn);
  // In place: g <- dg, u <- du, da <- a = silu(g) u.
  swigluGradInPlace(gateAct, upAct, dAct, total * ffn);
  // dWd = dy^T a, dWg = dg^T x, dWu = du^T x, dx = dg Wg + du Wu.
  for (int64_t e = 0; e < experts; ++e) {
    int64_t rows = counts[e];
    float *dGate = dGateProj + e * ffn * hidden,
          *dUp = dUpProj + e * ffn * hidden;
    float *dDown = dDownProj + e * hidden * ffn;
    if (rows == 0) {
      // The weight gradients are complete: an idle expert's are zero.
      std::fill(dGate, dGate + ffn * hidden, 0.0f);
      std::fill(dUp, dUp + ffn * hidden, 0.0f);
      std::fill(dDown, dDown + hidden * ffn, 0.0f);
      continue;
    }
    const float *xe = x + e * capacity * hidden,
                *dye = dy + e * capacity * hidden;
    const float *dg = gateAct + offsets[e] * ffn,
                *du = upAct + offsets[e] * ffn;
    float *dxe = dx + e * capacity * hidden;
    gemm(true, false, hidden, ffn, rows, dye, hidden, dAct + offsets[e] * ffn,
         ffn, 0.0f, dDown, ffn);
    gemm(true, false, ffn, hidden, rows, dg, ffn, xe, hidden, 0.0f, dGate,
         hidden);
    gemm(true, false, ffn, hidden, rows, du, ffn, xe, hidden, 0.0f, dUp,
         hidden);
    gemm(false, false, rows, hidden, ffn, dg, ffn, gateProj + e * ffn * hidden,
         hidden, 0.0f, dxe, hidden);
    gemm(false, false, rows, hidden, ffn, du, ffn, upProj + e * ffn * hidden,
         hidden, 1.0f, dxe, hidden);
  }
}

//===----------------------------------------------------------------------===//
// combine
//===----------------------------------------------------------------------===//

void moert::cpu::combine(const float *expertOutput, const float *weights,
                         const int32_t *indices, const int32_t *slots,
                         int64_t tokens, int64_t topK, int64_t experts,
                         int64_t capacity, int64_t hidden, float *y) {
  checkAssignments(indices, slots, tokens * topK, experts, capacity,
                   "moe.combine");
  // A gather per token; dropped assignments add nothing (the residual path
  // carries the token).
  int64_t work = tokens * topK * hidden;
#pragma omp parallel for schedule(static) if (worthThreads(work))
  for (int64_t t = 0; t < tokens; ++t) {
    float *out = y + t * hidden;
    std::fill(out, out + hidden, 0.0f);
    for (int64_t c = 0; c < topK; ++c) {
      int64_t row = rowOf(indices, slots, t * topK + c, capacity);
      if (row < 0)
        continue;
      float weight = weights[t * topK + c];
      const float *in = expertOutput + row * hidden;
      for (int64_t d = 0; d < hidden; ++d)
        out[d] += weight * in[d];
    }
  }
}

void moert::cpu::combineGrad(const float *expertOutput, const float *weights,
                             const int32_t *indices, const int32_t *slots,
                             const float *dy, int64_t tokens, int64_t topK,
                             int64_t experts, int64_t capacity, int64_t hidden,
                             float *dExpertOutput, float *dWeights) {
  checkAssignments(indices, slots, tokens * topK, experts, capacity,
                   "moe.combine");
  // Each kept (expert, slot) row belongs to exactly one assignment, so the
  // per-token loop writes disjoint rows.
  int64_t work = tokens * topK * hidden;
#pragma omp parallel for schedule(static) if (worthThreads(work))
  for (int64_t t = 0; t < tokens; ++t) {
    const float *dOut = dy + t * hidden;
    for (int64_t c = 0; c < topK; ++c) {
      int64_t i = t * topK + c, row = rowOf(indices, slots, i, capacity);
      if (row < 0) {
        dWeights[i] = 0.0f;
        continue;
      }
      float weight = weights[i];
      const float *out = expertOutput + row * hidden;
      float *dRow = dExpertOutput + row * hidden;
      double dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t d = 0; d < hidden; ++d) {
        dRow[d] = weight * dOut[d];
        dot += static_cast<double>(dOut[d]) * out[d];
      }
      dWeights[i] = static_cast<float>(dot);
    }
  }
}

//===----------------------------------------------------------------------===//
// Auxiliary losses
//===----------------------------------------------------------------------===//

float moert::cpu::auxLoss(AuxLossKind kind, const float *probs,
                          const int32_t *indices, int64_t tokens,
                          int64_t experts, int64_t topK) {
  double loss = 0;
  for (double term :
       auxTerms(kind, probs, indices, tokens, experts, topK, true))
    loss += term;
  return static_cast<float>(loss);
}

void moert::cpu::auxLossGrad(AuxLossKind kind, const float *probs,
                             const int32_t *indices, int64_t tokens,
                             int64_t experts, int64_t topK, float dLoss,
                             float *dProbs) {
  // Every prob enters only through P_e = mean_t p_te: dL/dp_te = dL/dP_e / T.
  std::vector<double> dMean =
      auxTerms(kind, probs, indices, tokens, experts, topK, false);
#pragma omp parallel for schedule(static) if (worthThreads(tokens * experts))
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t e = 0; e < experts; ++e)
      dProbs[t * experts + e] = static_cast<float>(
          static_cast<double>(dLoss) * dMean[e] / static_cast<double>(tokens));
}

float moert::cpu::zLoss(const float *logits, int64_t tokens, int64_t experts) {
  std::vector<double> total =
      sumOverTokens(tokens, 1, experts * kExpCost, [&](int64_t t, double *sum) {
        double lse = logSumExp(logits + t * experts, experts);
        *sum += lse * lse;
      });
  return static_cast<float>(total[0] / static_cast<double>(tokens));
}

void moert::cpu::zLossGrad(const float *logits, int64_t tokens, int64_t experts,
                           float dLoss, float *dLogits) {
  // d/dz_te (1/T) lse_t^2 = 2 lse_t softmax(z_t)_e / T.
  int64_t work = tokens * experts * kExpCost;
#pragma omp parallel for schedule(static) if (worthThreads(work))
  for (int64_t t = 0; t < tokens; ++t) {
    const float *row = logits + t * experts;
    double lse = logSumExp(row, experts);
    for (int64_t e = 0; e < experts; ++e)
      dLogits[t * experts + e] = static_cast<float>(
          static_cast<double>(dLoss) * 2.0 * lse * std::exp(row[e] - lse) /
          static_cast<double>(tokens));
  }
}
