//===- RowMath.h - row math shared by the reference, CPU and CUDA ---------===//
//
// The double-precision row math that the reference interpreter, the f32 CPU
// kernels and the CUDA kernels need, written once: a stable log-sum-exp,
// Skywork-MoE's gating logit normalization with its exact backward, the
// gate's per-token forward and backward, and the router losses' formulas.
// The element type is the caller's (double in the reference, float in the
// CPU and CUDA kernels); the arithmetic is in double either way.
//
// Functions marked MOERT_HOST_DEVICE also compile for the device: plain
// loops over caller-provided scratch, no allocation, no exceptions, no
// <algorithm> (whose functions are host-only).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_ROWMATH_H
#define MOERT_ROWMATH_H

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <vector>

#include "moert/Error.h"
#include "moert/HostDevice.h"
#include "moert/KernelTypes.h"

namespace moert::rows {

/// log(sum(exp(row))) computed stably.
template <typename T>
MOERT_HOST_DEVICE double logSumExp(const T *row, int64_t size) {
  // The first maximum, as std::max_element (host-only) would find it.
  T first = row[0];
  for (int64_t i = 1; i < size; ++i)
    if (first < row[i])
      first = row[i];
  double maximum = first, sum = 0;
  for (int64_t i = 0; i < size; ++i)
    sum += std::exp(row[i] - maximum);
  return maximum + std::log(sum);
}

/// Skywork-MoE's gating logit normalization of one row of `size` logits:
/// out = lambda (z - mean) / (std + eps), with the mean and the population
/// std over the row. `centered` gets z - mean, which the backward reads;
/// returns the std. `out` may not alias `z`.
template <typename T>
MOERT_HOST_DEVICE double normalizeRow(const T *z, int64_t size, double lambda,
                                      double eps, double *centered,
                                      double *out) {
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
MOERT_HOST_DEVICE inline void normalizeRowGrad(const double *centered,
                                               double std, int64_t size,
                                               double lambda, double eps,
                                               double *grad) {
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

/// softmax in place, in double: one exp per element (the reference's
/// exp(z - logsumexp) takes two; they differ by an ulp of double).
MOERT_HOST_DEVICE inline void softmaxInPlace(double *z, int64_t size) {
  double maximum = z[0], sum = 0;
  for (int64_t i = 1; i < size; ++i)
    if (maximum < z[i])
      maximum = z[i];
  for (int64_t i = 0; i < size; ++i)
    sum += z[i] = std::exp(z[i] - maximum);
  for (int64_t i = 0; i < size; ++i)
    z[i] /= sum;
}

//===----------------------------------------------------------------------===//
// The gate of one token (moe.gate), on f32 logits
//===----------------------------------------------------------------------===//

/// A token's gate logits in double into z, normalized when configured;
/// returns the std (0 without normalization).
MOERT_HOST_DEVICE inline double gateLogits(const float *row, int64_t experts,
                                           const GateConfig &config, double *z,
                                           double *centered) {
  if (config.normalize)
    return normalizeRow(row, experts, config.lambda, config.eps, centered, z);
  for (int64_t e = 0; e < experts; ++e)
    z[e] = row[e];
  return 0;
}

/// A token's scores in place from its (normalized) logits: their softmax,
/// or the sigmoid of each.
MOERT_HOST_DEVICE inline void scoreInPlace(double *z, int64_t experts,
                                           GateScoring scoring) {
  if (scoring == GateScoring::Softmax) {
    softmaxInPlace(z, experts);
    return;
  }
  for (int64_t e = 0; e < experts; ++e)
    z[e] = 1.0 / (1.0 + std::exp(-z[e]));
}

/// What divides a sum of scores: the sum, or 1 where it is 0 (sigmoid
/// scores of logits below about -745 underflow), the scores being 0 then.
MOERT_HOST_DEVICE inline double scoreDivisor(double sum) {
  return sum > 0 ? sum : 1.0;
}

/// What a gate's `probs` divide its scores by: their sum for sigmoid
/// scores (a softmax's sum to 1 already).
MOERT_HOST_DEVICE inline double
scoreTotal(const double *scores, int64_t experts, GateScoring scoring) {
  if (scoring == GateScoring::Softmax)
    return 1.0;
  double total = 0;
  for (int64_t e = 0; e < experts; ++e)
    total += scores[e];
  return scoreDivisor(total);
}

/// Excludes (`taken`) the experts outside the `config.groupTopK` groups
/// whose `config.groupScoreTop` best keys sum highest (an f32 sum; ties to
/// the lower group): DeepSeek-V3's group-limited routing (V2's by the best
/// key alone). Scratch: groupKeys, `config.groups` doubles.
template <typename Key>
MOERT_HOST_DEVICE inline void
excludeOtherGroups(int64_t experts, const GateConfig &config, Key key,
                   double *groupKeys, char *taken) {
  int64_t size = experts / config.groups;
  for (int64_t g = 0; g < config.groups; ++g) {
    int64_t first = g * size, second = -1;
    for (int64_t e = g * size + 1; e < (g + 1) * size; ++e)
      if (key(e) > key(first)) {
        second = first;
        first = e;
      } else if (second < 0 || key(e) > key(second)) {
        second = e;
      }
    groupKeys[g] =
        config.groupScoreTop == 1 ? key(first) : key(first) + key(second);
  }
  for (int64_t e = 0; e < experts; ++e)
    taken[e] = 1;
  for (int64_t c = 0; c < config.groupTopK; ++c) {
    int64_t best = -1;
    for (int64_t g = 0; g < config.groups; ++g)
      if (taken[g * size] && (best < 0 || groupKeys[g] > groupKeys[best]))
        best = g;
    for (int64_t e = best * size; e < (best + 1) * size; ++e)
      taken[e] = 0;
  }
}

/// The gate of one token: `probs` [experts] = its scores as f32 (sigmoid
/// scores over their sum), `indices` [topK] its chosen experts, largest
/// score plus `bias` (nullable, [experts]) first (within the chosen groups,
/// where there are groups), and `weights` [topK] their scores, over their
/// sum when renormalizing.
/// Scratch: z and centered, `experts` doubles each; taken, `experts` flags.
MOERT_HOST_DEVICE inline void gateRow(const float *logits, const float *bias,
                                      int64_t experts, const GateConfig &config,
                                      double *z, double *centered, char *taken,
                                      float *probs, float *weights,
                                      int32_t *indices) {
  gateLogits(logits, experts, config, z, centered);
  scoreInPlace(z, experts, config.scoring);
  double total = scoreTotal(z, experts, config.scoring);
  for (int64_t e = 0; e < experts; ++e) {
    probs[e] = static_cast<float>(z[e] / total);
    taken[e] = 0;
  }
  // Select on the f32 scores (plus the bias, an f32 sum), so ties are ties
  // in f32; the strict comparison keeps the lower index, like the
  // reference's stable sort. topK <= experts, and with groups topK <=
  // groupTopK * experts / groups (the verifier's rules), so there is always
  // a best.
  auto key = [&](int64_t e) {
    float score = static_cast<float>(z[e]);
    return bias ? score + bias[e] : score;
  };
  // The normalization is done with `centered`: it holds the groups' keys.
  if (config.groups > 1)
    excludeOtherGroups(experts, config, key, centered, taken);
  double selected = 0;
  for (int64_t c = 0; c < config.topK; ++c) {
    int64_t best = -1;
    for (int64_t e = 0; e < experts; ++e)
      if (!taken[e] && (best < 0 || key(e) > key(best)))
        best = e;
    taken[best] = 1;
    indices[c] = static_cast<int32_t>(best);
    selected += static_cast<float>(z[best]);
  }
  double denominator = config.renormalize ? scoreDivisor(selected) : 1.0;
  for (int64_t c = 0; c < config.topK; ++c)
    weights[c] = static_cast<float>(static_cast<float>(z[indices[c]]) /
                                    denominator * config.scale);
}

/// The gate's backward for one token, following the forward's `chosen`
/// experts (valid indices: the caller checks them). The forward is
/// recomputed in double (the scores unrounded, as the reference does).
/// Scratch: centered, scores and dS, `experts` doubles each.
MOERT_HOST_DEVICE inline void
gateGradRow(const float *logits, const int32_t *chosen, int64_t experts,
            const GateConfig &config, const float *dProbs,
            const float *dWeights, double *centered, double *scores, double *dS,
            float *dLogits) {
  double std = gateLogits(logits, experts, config, scores, centered);
  scoreInPlace(scores, experts, config.scoring);

  // Probs path: probs = s / total, so ds_e = (dp_e - sum_j dp_j p_j) /
  // total (total is 1 for a softmax, whose p_j are the scores).
  double total = scoreTotal(scores, experts, config.scoring);
  double expectedProb = 0;
  if (config.scoring == GateScoring::Sigmoid)
    for (int64_t e = 0; e < experts; ++e)
      expectedProb += dProbs[e] * scores[e] / total;
  for (int64_t e = 0; e < experts; ++e)
    dS[e] = (dProbs[e] - expectedProb) / total;

  // Weights path: w_c = scale u_c, the unscaled weight getting du_c =
  // scale dw_c; with renormalize u_c = s_{i_c} / S, so ds_{i_c} +=
  // (du_c - sum_c' du_c' u_c') / S.
  int64_t topK = config.topK;
  double selected = 0, weighted = 0;
  for (int64_t c = 0; c < topK; ++c)
    selected += scores[chosen[c]];
  selected = scoreDivisor(selected);
  if (config.renormalize)
    for (int64_t c = 0; c < topK; ++c)
      weighted += config.scale * dWeights[c] * scores[chosen[c]] / selected;
  for (int64_t c = 0; c < topK; ++c) {
    double dU = config.scale * dWeights[c];
    dS[chosen[c]] += config.renormalize ? (dU - weighted) / selected : dU;
  }

  if (config.scoring == GateScoring::Softmax) {
    // dz~_e = p_e (dp_e - sum_j p_j dp_j).
    double expected = 0;
    for (int64_t e = 0; e < experts; ++e)
      expected += scores[e] * dS[e];
    for (int64_t e = 0; e < experts; ++e)
      dS[e] = scores[e] * (dS[e] - expected);
  } else {
    for (int64_t e = 0; e < experts; ++e)
      dS[e] *= scores[e] * (1.0 - scores[e]);
  }

  if (config.normalize)
    normalizeRowGrad(centered, std, experts, config.lambda, config.eps, dS);
  for (int64_t e = 0; e < experts; ++e)
    dLogits[e] = static_cast<float>(dS[e]);
}

//===----------------------------------------------------------------------===//
// Router losses and metrics
//===----------------------------------------------------------------------===//

/// moe.aux_loss's term of one expert, or with `derivative` its derivative
/// d loss / d P_e, from P_e = `meanProb` (the expert's mean probability over
/// the tokens) and f_e = assigned / assignments (the fraction of the
/// assignments that chose it). Skywork: (1/n - P_e)^2, derivative
/// -2 (1/n - P_e); Switch: n f_e P_e, derivative n f_e (f is constant).
MOERT_HOST_DEVICE inline double auxLossTerm(AuxLossKind kind, double meanProb,
                                            int64_t assigned,
                                            int64_t assignments,
                                            int64_t experts, bool derivative) {
  double n = static_cast<double>(experts);
  double gap = 1.0 / n - meanProb;
  double fraction =
      static_cast<double>(assigned) / static_cast<double>(assignments);
  if (kind == AuxLossKind::Skywork)
    return derivative ? -2.0 * gap : gap * gap;
  return derivative ? n * fraction : n * fraction * meanProb;
}

/// moe.pooled_aux_loss from each expert's choices `counts` c_j and sum of
/// probabilities `sums` S_j over `tokens` N pooled tokens:
/// n * sum_j (c_j / N) (S_j / N); 0 without tokens.
MOERT_HOST_DEVICE inline double pooledLoss(const double *counts,
                                           const double *sums, int64_t experts,
                                           double tokens) {
  if (tokens == 0)
    return 0;
  double total = 0;
  for (int64_t e = 0; e < experts; ++e)
    total += (counts[e] / tokens) * (sums[e] / tokens);
  return static_cast<double>(experts) * total;
}

/// d pooledLoss / d probs[., j] of any layer's token: n c_j / N^2.
MOERT_HOST_DEVICE inline double
pooledLossGradient(double count, int64_t experts, double tokens) {
  if (tokens == 0)
    return 0;
  return static_cast<double>(experts) * count / (tokens * tokens);
}

/// Skywork-MoE's adaptive coefficient after a step that dropped `dropped`
/// of `assignments` assignments: beta alpha + (1 - beta) min(xi d, alphaMax).
MOERT_HOST_DEVICE inline double
adaptiveCoefficient(float alpha, int64_t dropped, int64_t assignments,
                    double xi, double alphaMax, double beta) {
  double target =
      xi * static_cast<double>(dropped) / static_cast<double>(assignments);
  if (alphaMax < target) // std::min(target, alphaMax), host-only
    target = alphaMax;
  return beta * alpha + (1 - beta) * target;
}

/// DeepSeek-V3's bias step for one expert that `load` of `total`
/// assignments chose: bias + rate * sign(mean - load), the sign taken
/// exactly (total against experts * load).
MOERT_HOST_DEVICE inline float expertBiasStep(float bias, int64_t load,
                                              int64_t total, int64_t experts,
                                              double rate) {
  int64_t under = total - experts * load;
  return static_cast<float>(static_cast<double>(bias) +
                            rate * ((under > 0) - (under < 0)));
}

/// moe.z_loss's gradient on one row of logits, times dLoss: the derivative
/// of (1/T) lse^2 is 2 lse softmax(z)_e / T.
MOERT_HOST_DEVICE inline void zLossGradRow(const float *row, int64_t size,
                                           float dLoss, int64_t tokens,
                                           float *out) {
  double lse = logSumExp(row, size);
  for (int64_t e = 0; e < size; ++e)
    out[e] = static_cast<float>(static_cast<double>(dLoss) * 2.0 * lse *
                                std::exp(row[e] - lse) /
                                static_cast<double>(tokens));
}

/// moe.routing_metrics' ratios p(1)/p(2) and p(2)/p(3) of a token's three
/// largest probabilities into ratios[0, 1]. A denominator of at least the
/// smallest normal float keeps a token whose runners-up underflowed to zero
/// finite.
MOERT_HOST_DEVICE inline void topRatios(const float *probs, int64_t experts,
                                        double *ratios) {
  float top[3] = {-INFINITY, -INFINITY, -INFINITY}; // largest first
  for (int64_t e = 0; e < experts; ++e) {
    float p = probs[e];
    if (p > top[0]) {
      top[2] = top[1];
      top[1] = top[0];
      top[0] = p;
    } else if (p > top[1]) {
      top[2] = top[1];
      top[1] = p;
    } else if (p > top[2]) {
      top[2] = p;
    }
  }
  // max(top, FLT_MIN) as std::max (host-only) picks.
  const double floor = FLT_MIN;
  double second = top[1], third = top[2];
  ratios[0] = top[0] / (second < floor ? floor : second);
  ratios[1] = top[1] / (third < floor ? floor : third);
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
    return pooledLoss(counts.data(), sums.data(),
                      static_cast<int64_t>(counts.size()), tokens);
  }

  /// d loss / d probs[., j] of any layer's token: n c_j / N^2.
  double gradient(int64_t expert) const {
    return pooledLossGradient(counts[expert],
                              static_cast<int64_t>(counts.size()), tokens);
  }
};

//===----------------------------------------------------------------------===//
// Transformer and optimizer formulas (CPU and CUDA kernels)
//===----------------------------------------------------------------------===//

/// rms_norm's scale of a row of `size` elements: 1 / sqrt(mean(x^2) + eps),
/// from the row's sum of squares.
MOERT_HOST_DEVICE inline double inverseRms(double sumOfSquares, int64_t size,
                                           double eps) {
  return 1.0 / std::sqrt(sumOfSquares / size + eps);
}

/// moe.sigmoid_scale's factor of a row: sigmoid(logit).
MOERT_HOST_DEVICE inline double sigmoid(double logit) {
  return 1.0 / (1.0 + std::exp(-logit));
}

/// moe.sigmoid_scale's logit gradient, from the row's scale s = sigmoid(logit)
/// and the dot product of the result's gradient with the input: s (1 - s)
/// dot.
MOERT_HOST_DEVICE inline double sigmoidScaleLogitGrad(double s, double dot) {
  return s * (1.0 - s) * dot;
}

/// The row of a moe.concat operand with `operandHeads` heads that row
/// `row` of its [..., heads, width] result reads: the same row, or where
/// the operand has one head that every head reads, that head's.
MOERT_HOST_DEVICE inline int64_t concatOperandRow(int64_t row, int64_t heads,
                                                  int64_t operandHeads) {
  return operandHeads == heads ? row : row / heads;
}

/// The elements that RoPE's rotation pair i of a head turns: i and
/// i + half (Llama's rotate-half convention) or, `interleaved`, 2i and
/// 2i + 1 (ERNIE 4.5's).
MOERT_HOST_DEVICE inline void ropePair(int64_t i, int64_t half,
                                       bool interleaved, int64_t &first,
                                       int64_t &second) {
  first = interleaved ? 2 * i : i;
  second = interleaved ? 2 * i + 1 : i + half;
}

/// RoPE's frequency of rotation pair i (ropePair's elements):
/// theta^(-2 i / headDim) as `scaling` scales it (transformers'
/// modeling_rope_utils, formula by formula); position p turns the pair by
/// p times it.
MOERT_HOST_DEVICE inline double ropeFrequency(int64_t i, int64_t headDim,
                                              double theta,
                                              const RopeScaling &scaling) {
  double frequency = std::pow(theta, -2.0 * i / headDim);
  switch (scaling.kind) {
  case RopeKind::Default:
    return frequency;
  case RopeKind::Linear:
    return frequency / scaling.factor;
  case RopeKind::Llama3: {
    // Wavelengths shorter than the original context's share of
    // highFreqFactor keep their frequency, longer than lowFreqFactor's are
    // slowed by `factor`, and those between blend the two.
    double wavelength = 2 * M_PI / frequency;
    if (wavelength < scaling.originalPositions / scaling.highFreqFactor)
      return frequency;
    if (wavelength > scaling.originalPositions / scaling.lowFreqFactor)
      return frequency / scaling.factor;
    double smooth =
        (scaling.originalPositions / wavelength - scaling.lowFreqFactor) /
        (scaling.highFreqFactor - scaling.lowFreqFactor);
    return (1 - smooth) * frequency / scaling.factor + smooth * frequency;
  }
  case RopeKind::Yarn: {
    // The dimensions that turn betaFast to betaSlow times over the original
    // context ramp from the kept frequency to the divided one.
    auto correction = [&](double rotations) {
      return headDim *
             std::log(scaling.originalPositions / (rotations * 2 * M_PI)) /
             (2 * std::log(theta));
    };
    double low = correction(scaling.betaFast);
    double high = correction(scaling.betaSlow);
    if (scaling.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = low > 0 ? low : 0;
    high = high < headDim - 1 ? high : headDim - 1;
    if (low == high)
      high += 0.001;
    double ramp = (static_cast<double>(i) - low) / (high - low);
    ramp = ramp < 0 ? 0 : (ramp > 1 ? 1 : ramp);
    return frequency / scaling.factor * ramp + frequency * (1 - ramp);
  }
  }
  return frequency;
}

/// moe.lr_schedule: linear warmup to maxLr over warmupSteps (step s gets
/// maxLr (s + 1) / (warmupSteps + 1)), then a cosine or linear decay to
/// minLr at decaySteps and minLr after it, or maxLr from then on
/// (constant).
MOERT_HOST_DEVICE inline double learningRate(int64_t step, double maxLr,
                                             double minLr, int64_t warmupSteps,
                                             int64_t decaySteps,
                                             LrDecay decay) {
  if (step < warmupSteps)
    return maxLr * static_cast<double>(step + 1) /
           static_cast<double>(warmupSteps + 1);
  if (decay == LrDecay::Constant)
    return maxLr;
  if (step > decaySteps)
    return minLr;
  double ratio = static_cast<double>(step - warmupSteps) /
                 static_cast<double>(decaySteps - warmupSteps);
  double remaining = decay == LrDecay::Linear
                         ? 1.0 - ratio
                         : 0.5 * (1.0 + std::cos(M_PI * ratio));
  return minLr + remaining * (maxLr - minLr);
}

/// The scalars of one AdamW step, computed in double and rounded to f32
/// for the element loop: the gradient's clipping factor, the betas, the
/// decoupled weight decay factor 1 - lr wd, lr / (1 - beta1^t) and
/// sqrt(1 - beta2^t) (t = step + 1), and eps.
struct AdamWScalars {
  float scale, beta1, beta2, decay, stepSize, rootCorrection2, eps;
};

/// Clipping scales the gradient by maxGradNorm / (gradNorm + 1e-6) when that
/// is below 1 (maxGradNorm > 0 only).
MOERT_HOST_DEVICE inline AdamWScalars adamwScalars(const AdamWConfig &config,
                                                   float lr, float gradNorm,
                                                   int64_t step) {
  double clip = 1.0;
  if (config.maxGradNorm > 0) {
    double ratio = config.maxGradNorm / (gradNorm + 1e-6);
    clip = ratio < 1.0 ? ratio : 1.0; // std::min(1.0, ratio), host-only
  }
  double t = static_cast<double>(step) + 1.0;
  double correction1 = 1.0 - std::pow(config.beta1, t);
  double correction2 = 1.0 - std::pow(config.beta2, t);
  return {static_cast<float>(clip),
          static_cast<float>(config.beta1),
          static_cast<float>(config.beta2),
          static_cast<float>(1.0 - lr * config.weightDecay),
          static_cast<float>(lr / correction1),
          static_cast<float>(std::sqrt(correction2)),
          static_cast<float>(config.eps)};
}

} // namespace moert::rows

#endif // MOERT_ROWMATH_H
