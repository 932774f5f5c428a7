//===- RoutingKernels.cpp - f32 CPU routing kernels -----------------------===//
//
// Gate, gate normalization, dispatch, combine, the router losses and the
// routing metrics of CpuKernels.h (the expert FFN is in ExpertKernels.cpp).
// A token's row of E logits is processed in double as the reference kernels
// do, so routing decisions (top-k, ties) match them; the per-token math is
// moert/RowMath.h's, which the CUDA kernels share. Token-parallel loops
// write disjoint outputs; reductions over tokens sum fixed chunks in chunk
// order, so results do not depend on the thread count. Index checks run
// before any parallel loop: an exception must not escape an OpenMP region.
//
// Loops of a few microseconds' work and more run on the OpenMP team (a
// region costs about a microsecond on 2 cores, 4-5 where the workers had
// idled past the training driver's libgomp spin of ~15 us and slept); on
// the tiny model (768 tokens, 2 cores) the gate, dispatch, combine, z-loss
// and their gradients took 2.1 ms of a 25 ms step on one thread, 1.4 ms on
// two.
//
//===----------------------------------------------------------------------===//

#include "moert/CpuKernels.h"
#include "moert/Error.h"
#include "moert/RowMath.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

using namespace moert::cpu;

namespace {

/// Tokens per partial sum of a reduction over tokens: fixed, so the partial
/// sums and their order are the same whatever the thread count.
constexpr int64_t kChunk = 256;

/// Cost of a gate or logsumexp element (exps in double) in copied floats.
constexpr int64_t kExpCost = 32;
/// Cost of a normalized logit (three passes and a division in double).
constexpr int64_t kNormCost = 4;

/// Whether `work` (in copied floats) is worth the OpenMP team: from a few
/// microseconds on one core.
inline bool worthThreads(int64_t work) { return work >= (int64_t(1) << 15); }

/// Checks `index` lies in [0, bound), with the reference kernels' message.
int64_t checkedIndex(int64_t index, int64_t bound, const char *op,
                     const char *what) {
  if (index < 0 || index >= bound)
    moert::fail("{}: {} {} is outside [0, {})", op, what, index, bound);
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

using moert::rows::normalizeRow;
using moert::rows::normalizeRowGrad;

/// Whether each of the `count` assignments is kept when every expert over
/// `capacity` keeps its assignments of highest priority, ties going to the
/// earlier assignment. The indices must have been checked.
std::vector<char> keptByPriority(const int32_t *indices, const float *priority,
                                 int64_t count, int64_t experts,
                                 int64_t capacity) {
  // Bucket the assignments by expert, token-major within each bucket.
  std::vector<int64_t> begin(experts + 1, 0), order(count);
  for (int64_t i = 0; i < count; ++i)
    ++begin[indices[i] + 1];
  for (int64_t e = 0; e < experts; ++e)
    begin[e + 1] += begin[e];
  std::vector<int64_t> next(begin.begin(), begin.end() - 1);
  for (int64_t i = 0; i < count; ++i)
    order[next[indices[i]]++] = i;
  // A strict total order (no two assignments compare equal), so the kept set
  // does not depend on how nth_element partitions.
  auto ranksHigher = [&](int64_t a, int64_t b) {
    return priority[a] > priority[b] || (priority[a] == priority[b] && a < b);
  };
  std::vector<char> kept(count, 1);
  for (int64_t e = 0; e < experts; ++e) {
    auto first = order.begin() + begin[e], last = order.begin() + begin[e + 1];
    if (last - first <= capacity)
      continue;
    std::nth_element(first, first + capacity, last, ranksHigher);
    for (auto it = first + capacity; it != last; ++it)
      kept[*it] = 0;
  }
  return kept;
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
  for (int64_t e = 0; e < experts; ++e)
    terms[e] = moert::rows::auxLossTerm(kind, meanProb[e], assigned[e],
                                        tokens * topK, experts, !lossTerms);
  return terms;
}

} // namespace

//===----------------------------------------------------------------------===//
// gate
//===----------------------------------------------------------------------===//

void moert::cpu::gate(const float *logits, const float *bias, int64_t tokens,
                      int64_t experts, const GateConfig &config, float *probs,
                      float *weights, int32_t *indices) {
  int64_t topK = config.topK;
#pragma omp parallel if (worthThreads(tokens * experts * kExpCost))
  {
    std::vector<double> z(experts), centered(experts);
    std::vector<char> taken(experts);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tokens; ++t)
      moert::rows::gateRow(logits + t * experts, bias, experts, config,
                           z.data(), centered.data(), taken.data(),
                           probs + t * experts, weights + t * topK,
                           indices + t * topK);
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
    std::vector<double> centered(experts), probs(experts), dP(experts);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tokens; ++t)
      moert::rows::gateGradRow(logits + t * experts, indices + t * topK,
                               experts, config, dProbs + t * experts,
                               dWeights + t * topK, centered.data(),
                               probs.data(), dP.data(), dLogits + t * experts);
  }
}

void moert::cpu::gateNorm(const float *logits, int64_t tokens, int64_t experts,
                          double lambda, double eps, float *y) {
#pragma omp parallel if (worthThreads(tokens * experts * kNormCost))
  {
    std::vector<double> z(experts), centered(experts);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      normalizeRow(logits + t * experts, experts, lambda, eps, centered.data(),
                   z.data());
      std::copy(z.begin(), z.end(), y + t * experts);
    }
  }
}

void moert::cpu::gateNormGrad(const float *logits, const float *dy,
                              int64_t tokens, int64_t experts, double lambda,
                              double eps, float *dLogits) {
#pragma omp parallel if (worthThreads(tokens * experts * kNormCost))
  {
    std::vector<double> z(experts), centered(experts), grad(experts);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      double std = normalizeRow(logits + t * experts, experts, lambda, eps,
                                centered.data(), z.data());
      std::copy(dy + t * experts, dy + (t + 1) * experts, grad.begin());
      normalizeRowGrad(centered.data(), std, experts, lambda, eps, grad.data());
      std::copy(grad.begin(), grad.end(), dLogits + t * experts);
    }
  }
}

//===----------------------------------------------------------------------===//
// dispatch
//===----------------------------------------------------------------------===//

namespace {

/// Decides every assignment's row (slots, -1 when dropped) in token-major
/// order, counting each expert's rows; returns the drops.
int64_t routeAssignments(const int32_t *indices, const float *priority,
                         int64_t assignments, int64_t experts, int64_t capacity,
                         int32_t *slots, int64_t *counts, const char *what) {
  checkAssignments(indices, nullptr, assignments, experts, 0, what);
  std::vector<char> kept;
  if (priority)
    kept = keptByPriority(indices, priority, assignments, experts, capacity);
  // The queues are token-major, hence sequential: O(T k).
  std::fill(counts, counts + experts, 0);
  int64_t drops = 0;
  for (int64_t i = 0; i < assignments; ++i) {
    int64_t expert = indices[i];
    if (priority ? !kept[i] : counts[expert] == capacity) {
      slots[i] = -1;
      ++drops;
    } else {
      slots[i] = static_cast<int32_t>(counts[expert]++);
    }
  }
  return drops;
}

/// Copies each kept token into its row; the rows are disjoint.
template <typename T>
void placeRows(const float *tokens, const int32_t *indices,
               const int32_t *slots, int64_t numTokens, int64_t hidden,
               int64_t topK, int64_t capacity, T *buffer) {
  int64_t work = numTokens * topK * hidden;
#pragma omp parallel for schedule(static) if (worthThreads(work))
  for (int64_t t = 0; t < numTokens; ++t)
    for (int64_t c = 0; c < topK; ++c) {
      int64_t row = rowOf(indices, slots, t * topK + c, capacity);
      if (row < 0)
        continue;
      const float *from = tokens + t * hidden;
      T *to = buffer + row * hidden;
      if constexpr (std::is_same_v<T, float>)
        std::memcpy(to, from, hidden * sizeof(float));
      else
        moert::cpu::convert(from, hidden, to);
    }
}

} // namespace

template <typename T>
void moert::cpu::dispatch(const float *tokens, const int32_t *indices,
                          const float *priority, int64_t numTokens,
                          int64_t hidden, int64_t topK, int64_t experts,
                          int64_t capacity, T *buffer, int32_t *slots,
                          int64_t *counts, int64_t *dropped) {
  *dropped = routeAssignments(indices, priority, numTokens * topK, experts,
                              capacity, slots, counts, "moe.dispatch");
  placeRows(tokens, indices, slots, numTokens, hidden, topK, capacity, buffer);
  int64_t work = experts * capacity * hidden;
#pragma omp parallel for schedule(static) if (worthThreads(work))
  for (int64_t e = 0; e < experts; ++e)
    std::fill(buffer + (e * capacity + counts[e]) * hidden,
              buffer + (e + 1) * capacity * hidden, moert::storedAs<T>(0.0f));
}
template void moert::cpu::dispatch(const float *, const int32_t *,
                                   const float *, int64_t, int64_t, int64_t,
                                   int64_t, int64_t, float *, int32_t *,
                                   int64_t *, int64_t *);
template void moert::cpu::dispatch(const float *, const int32_t *,
                                   const float *, int64_t, int64_t, int64_t,
                                   int64_t, int64_t, bf16 *, int32_t *,
                                   int64_t *, int64_t *);

void moert::cpu::route(const int32_t *indices, const float *priority,
                       int64_t numTokens, int64_t topK, int64_t experts,
                       int64_t capacity, int64_t ranks, int32_t *slots,
                       int64_t *counts, int64_t *dropped) {
  std::vector<int64_t> filled(experts);
  int64_t assignments = numTokens * topK;
  *dropped = routeAssignments(indices, priority, assignments, experts, capacity,
                              slots, filled.data(), "moe.route");
  // Rows count from the start of each part's run: the parts' runs follow
  // each other in token order.
  std::fill(counts, counts + ranks * experts, 0);
  int64_t partSize = assignments / ranks;
  for (int64_t i = 0; i < assignments; ++i)
    if (slots[i] >= 0)
      slots[i] =
          static_cast<int32_t>(counts[i / partSize * experts + indices[i]]++);
}

void moert::cpu::place(const float *tokens, const int32_t *indices,
                       const int32_t *slots, int64_t numTokens, int64_t hidden,
                       int64_t topK, int64_t experts, int64_t capacity,
                       float *buffer) {
  checkAssignments(indices, slots, numTokens * topK, experts, capacity,
                   "moe.place");
  std::fill(buffer, buffer + experts * capacity * hidden, 0.0f);
  placeRows(tokens, indices, slots, numTokens, hidden, topK, capacity, buffer);
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

template <typename Stored, typename Gradient>
void moert::cpu::combineGrad(const Stored *expertOutput, const float *weights,
                             const int32_t *indices, const int32_t *slots,
                             const float *dy, int64_t tokens, int64_t topK,
                             int64_t experts, int64_t capacity, int64_t hidden,
                             Gradient *dExpertOutput, float *dWeights) {
  checkAssignments(indices, slots, tokens * topK, experts, capacity,
                   "moe.combine");
  int64_t rows = experts * capacity;
#pragma omp parallel if (worthThreads((rows + tokens * topK) * hidden))
  {
    // Rows no kept assignment reads get no gradient: zeros, which an
    // expert-parallel program sums over the ranks.
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      Gradient *dRow = dExpertOutput + row * hidden;
      std::fill(dRow, dRow + hidden, moert::storedAs<Gradient>(0.0f));
    }
    // Each kept (expert, slot) row belongs to exactly one assignment, so the
    // per-token loop writes disjoint rows (after the barrier above).
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      const float *dOut = dy + t * hidden;
      for (int64_t c = 0; c < topK; ++c) {
        int64_t i = t * topK + c, row = rowOf(indices, slots, i, capacity);
        if (row < 0) {
          dWeights[i] = 0.0f;
          continue;
        }
        float weight = weights[i];
        const Stored *out = expertOutput + row * hidden;
        Gradient *dRow = dExpertOutput + row * hidden;
        double dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t d = 0; d < hidden; ++d) {
          dRow[d] = moert::storedAs<Gradient>(weight * dOut[d]);
          dot += static_cast<double>(dOut[d]) * moert::toFloat(out[d]);
        }
        dWeights[i] = static_cast<float>(dot);
      }
    }
  }
}

#define MOERT_INSTANTIATE_COMBINE_GRAD(Stored, Gradient)                       \
  template void moert::cpu::combineGrad(                                       \
      const Stored *, const float *, const int32_t *, const int32_t *,         \
      const float *, int64_t, int64_t, int64_t, int64_t, int64_t, Gradient *,  \
      float *);
MOERT_INSTANTIATE_COMBINE_GRAD(float, float)
MOERT_INSTANTIATE_COMBINE_GRAD(float, moert::bf16)
MOERT_INSTANTIATE_COMBINE_GRAD(moert::bf16, float)
MOERT_INSTANTIATE_COMBINE_GRAD(moert::bf16, moert::bf16)
#undef MOERT_INSTANTIATE_COMBINE_GRAD

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

float moert::cpu::pooledAuxLoss(const float *const *probs,
                                const int32_t *const *indices,
                                const int64_t *assignments, int64_t layers,
                                int64_t experts, int64_t topK) {
  moert::rows::PooledLoad load(experts);
  for (int64_t layer = 0; layer < layers; ++layer)
    load.addLayer(probs[layer], indices[layer], assignments[layer] / topK,
                  topK);
  return static_cast<float>(load.loss());
}

void moert::cpu::pooledAuxLossGrad(const int32_t *const *indices,
                                   const int64_t *assignments, int64_t layers,
                                   int64_t experts, int64_t topK, float dLoss,
                                   float *const *dProbs) {
  moert::rows::PooledLoad load(experts);
  for (int64_t layer = 0; layer < layers; ++layer)
    load.addLayer<float>(nullptr, indices[layer], assignments[layer] / topK,
                         topK);
  std::vector<float> row(experts);
  for (int64_t e = 0; e < experts; ++e)
    row[e] = static_cast<float>(static_cast<double>(dLoss) * load.gradient(e));
  for (int64_t layer = 0; layer < layers; ++layer)
    for (int64_t t = 0; t < assignments[layer] / topK; ++t)
      std::copy(row.begin(), row.end(), dProbs[layer] + t * experts);
}

void moert::cpu::expertLoad(const int32_t *indices, int64_t assignments,
                            int64_t experts, int64_t *load) {
  checkAssignments(indices, nullptr, assignments, experts, 0,
                   "moe.expert_load");
  std::fill(load, load + experts, 0);
  for (int64_t i = 0; i < assignments; ++i)
    ++load[indices[i]];
}

void moert::cpu::expertBiasUpdate(const float *bias, const int64_t *load,
                                  int64_t experts, double rate, float *result) {
  int64_t total = std::accumulate(load, load + experts, int64_t{0});
  for (int64_t e = 0; e < experts; ++e)
    result[e] =
        moert::rows::expertBiasStep(bias[e], load[e], total, experts, rate);
}

float moert::cpu::adaptiveAuxCoeff(float alpha, int64_t dropped,
                                   int64_t assignments, double xi,
                                   double alphaMax, double beta) {
  return static_cast<float>(moert::rows::adaptiveCoefficient(
      alpha, dropped, assignments, xi, alphaMax, beta));
}

float moert::cpu::zLoss(const float *logits, int64_t tokens, int64_t experts) {
  std::vector<double> total =
      sumOverTokens(tokens, 1, experts * kExpCost, [&](int64_t t, double *sum) {
        double lse = moert::rows::logSumExp(logits + t * experts, experts);
        *sum += lse * lse;
      });
  return static_cast<float>(total[0] / static_cast<double>(tokens));
}

void moert::cpu::zLossGrad(const float *logits, int64_t tokens, int64_t experts,
                           float dLoss, float *dLogits) {
  // d/dz_te (1/T) lse_t^2 = 2 lse_t softmax(z_t)_e / T.
  int64_t work = tokens * experts * kExpCost;
#pragma omp parallel for schedule(static) if (worthThreads(work))
  for (int64_t t = 0; t < tokens; ++t)
    moert::rows::zLossGradRow(logits + t * experts, experts, dLoss, tokens,
                              dLogits + t * experts);
}

//===----------------------------------------------------------------------===//
// Routing metrics
//===----------------------------------------------------------------------===//

void moert::cpu::routingMetrics(const float *probs, const int32_t *indices,
                                const int32_t *slots, int64_t tokens,
                                int64_t experts, int64_t topK, float *dropRate,
                                float *max1Max2, float *max2Max3,
                                int64_t *load) {
  std::fill(load, load + experts, 0);
  int64_t drops = 0;
  for (int64_t i = 0; i < tokens * topK; ++i) {
    if (slots[i] < 0)
      ++drops;
    else
      ++load[checkedIndex(indices[i], experts, "moe.routing_metrics",
                          "expert index")];
  }
  *dropRate = static_cast<float>(static_cast<double>(drops) /
                                 static_cast<double>(tokens * topK));
  std::vector<double> ratios =
      sumOverTokens(tokens, 2, experts, [&](int64_t t, double *sum) {
        double token[2];
        moert::rows::topRatios(probs + t * experts, experts, token);
        sum[0] += token[0];
        sum[1] += token[1];
      });
  *max1Max2 = static_cast<float>(ratios[0] / static_cast<double>(tokens));
  *max2Max3 = static_cast<float>(ratios[1] / static_cast<double>(tokens));
}

float moert::cpu::expertSimilarity(const float *gateProj, const float *upProj,
                                   const float *downProj, int64_t experts,
                                   int64_t ffn, int64_t hidden) {
  // The Gram matrix of the experts' parameter vectors, each of gate, up and
  // down contributing a contiguous [ffn * hidden] slice per expert. Every
  // entry is one thread's fixed-order sum, whatever the schedule.
  int64_t size = ffn * hidden;
  std::vector<double> gram(experts * experts);
  auto dot = [size](const float *a, const float *b) {
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < size; ++i)
      sum += static_cast<double>(a[i]) * b[i];
    return sum;
  };
  int64_t work = experts * (experts + 1) / 2 * 3 * size;
#pragma omp parallel for schedule(dynamic) if (worthThreads(work))
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t f = e; f < experts; ++f) {
      int64_t a = e * size, b = f * size;
      gram[e * experts + f] = dot(gateProj + a, gateProj + b) +
                              dot(upProj + a, upProj + b) +
                              dot(downProj + a, downProj + b);
    }
  double total = 0;
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t f = e + 1; f < experts; ++f) {
      double norms =
          std::sqrt(gram[e * experts + e]) * std::sqrt(gram[f * experts + f]);
      if (norms > 0) // a zero vector has similarity 0
        total += gram[e * experts + f] / norms;
    }
  return static_cast<float>(total /
                            static_cast<double>(experts * (experts - 1) / 2));
}
