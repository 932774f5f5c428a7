//===- RowMath.h - row functions shared by the reference and the CPU ------===//
//
// The double-precision row math that the reference interpreter and the f32
// CPU kernels both need, written once: a stable log-sum-exp and Skywork-MoE's
// gating logit normalization with its exact backward. The element type is
// the caller's (double in the reference, float in the CPU kernels); the
// arithmetic is in double either way.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_ROWMATH_H
#define MOERT_ROWMATH_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "moert/Error.h"

namespace moert::rows {

/// log(sum(exp(row))) computed stably.
template <typename T> double logSumExp(const T *row, int64_t size) {
  double maximum = *std::max_element(row, row + size);
  double sum = 0;
  for (int64_t i = 0; i < size; ++i)
    sum += std::exp(row[i] - maximum);
  return maximum + std::log(sum);
}

/// Skywork-MoE's gating logit normalization of one row of `size` logits:
/// out = lambda (z - mean) / (std + eps), with the mean and the population
/// std over the row. `centered` gets z - mean, which the backward reads;
/// returns the std. `out` may not alias `z`.
template <typename T>
double normalizeRow(const T *z, int64_t size, double lambda, double eps,
                    double *centered, double *out) {
  double mean = 0, variance = 0;
  for (int64_t i = 0; i < size; ++i)
    mean += z[i];
  mean /= size;
  for (int64_t i = 0; i < size; ++i) {
    centered[i] = z[i] - mean;
    variance += centered[i] * centered[i];
  }
  double std = std::sqrt(variance / size);
  for (int64_t i = 0; i < size; ++i)
    out[i] = lambda * centered[i] / (std + eps);
  return std;
}

/// The vector-Jacobian product of normalizeRow, through the mean and the std
/// exactly: `grad` holds d out on entry and d z on return. With y = z - mean,
/// g = d out and a = lambda / (std + eps):
///   dz_j = a (g_j - mean(g)) - lambda / (std + eps)^2 (sum_e g_e y_e) y_j /
///   (n std),
/// the last factor being dstd/dz_j (the mean's part sums to zero). At std = 0
/// every y_e is 0, so only the centring path remains.
inline void normalizeRowGrad(const double *centered, double std, int64_t size,
                             double lambda, double eps, double *grad) {
  double meanG = 0, dotGY = 0;
  for (int64_t i = 0; i < size; ++i) {
    meanG += grad[i] / size;
    dotGY += grad[i] * centered[i];
  }
  double factor = lambda / (std + eps);
  double dStd = -lambda / ((std + eps) * (std + eps)) * dotGY;
  for (int64_t i = 0; i < size; ++i) {
    double viaStd = std > 0 ? dStd * centered[i] / (size * std) : 0.0;
    grad[i] = factor * (grad[i] - meanG) + viaStd;
  }
}

/// transformers' load balance over every MoE layer's tokens pooled
/// (moe.pooled_aux_loss): per expert, its choices `counts` and the sum of
/// its probabilities `sums` over all layers, and the pooled `tokens` N.
struct PooledLoad {
  explicit PooledLoad(int64_t experts) : counts(experts), sums(experts) {}
  std::vector<double> counts, sums;
  double tokens = 0;

  /// Adds one layer's [tokens, experts] `probs` (when given) and
  /// [tokens, topK] `indices`.
  template <typename T, typename Index>
  void addLayer(const T *probs, const Index *indices, int64_t layerTokens,
                int64_t topK) {
    int64_t experts = static_cast<int64_t>(counts.size());
    for (int64_t i = 0; i < layerTokens * topK; ++i) {
      auto expert = static_cast<int64_t>(indices[i]);
      if (expert < 0 || expert >= experts)
        moert::fail("moe.pooled_aux_loss: expert index {} is outside [0, {})",
                    expert, experts);
      counts[expert] += 1;
    }
    if (probs)
      for (int64_t t = 0; t < layerTokens; ++t)
        for (int64_t e = 0; e < experts; ++e)
          sums[e] += probs[t * experts + e];
    tokens += static_cast<double>(layerTokens);
  }

  /// n * sum_j (c_j / N) (S_j / N); 0 without tokens.
  double loss() const {
    if (tokens == 0)
      return 0;
    double total = 0;
    for (size_t e = 0; e < counts.size(); ++e)
      total += (counts[e] / tokens) * (sums[e] / tokens);
    return static_cast<double>(counts.size()) * total;
  }

  /// d loss / d probs[., j] of any layer's token: n c_j / N^2.
  double gradient(int64_t expert) const {
    if (tokens == 0)
      return 0;
    return static_cast<double>(counts.size()) * counts[expert] /
           (tokens * tokens);
  }
};

} // namespace moert::rows

#endif // MOERT_ROWMATH_H
