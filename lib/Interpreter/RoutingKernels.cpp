//===- RoutingKernels.cpp - reference routing, expert and aux-loss ops ----===//
//
// The Skywork-MoE semantics of DESIGN.md section 2, spelled out loop by loop.
//
//===----------------------------------------------------------------------===//

#include "KernelUtils.h"
#include "moe/Interpreter/ReferenceKernels.h"

#include <numeric>

using namespace mlir::moe::ref;
using mlir::moe::ref::detail::checkedIndex;
using mlir::moe::ref::detail::forEachKeptAssignment;
using mlir::moe::ref::detail::logSumExp;

GateResult mlir::moe::ref::gate(const Tensor &logits, int64_t topK,
                                std::optional<double> normLambda,
                                double normEps, bool renormalize) {
  int64_t tokens = logits.dim(0), experts = logits.dim(1);
  GateResult result{Tensor::zeros(logits.dtype, {tokens, experts}),
                    Tensor::zeros(logits.dtype, {tokens, topK}),
                    Tensor::zeros(DType::I32, {tokens, topK})};
  std::vector<double> z(experts);
  std::vector<int64_t> order(experts);
  for (int64_t t = 0; t < tokens; ++t) {
    const double *row = &logits.data[t * experts];
    z.assign(row, row + experts);
    if (normLambda) {
      double mean = std::accumulate(z.begin(), z.end(), 0.0) / experts;
      double variance = 0;
      for (double value : z)
        variance += (value - mean) * (value - mean);
      double std = std::sqrt(variance / experts); // population std
      for (double &value : z)
        value = *normLambda * (value - mean) / (std + normEps);
    }
    double normalizer = logSumExp(z.data(), experts);
    double *probs = &result.probs.data[t * experts];
    for (int64_t e = 0; e < experts; ++e)
      probs[e] = std::exp(z[e] - normalizer);
    // Select on the probabilities as stored, so that ties are ties in the
    // tensor's own precision; stable sorting favours the lower index.
    Tensor stored{logits.dtype, {experts}, {probs, probs + experts}};
    stored.roundToDType();
    std::copy(stored.data.begin(), stored.data.end(), probs);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return probs[a] > probs[b]; });
    double selected = 0;
    for (int64_t c = 0; c < topK; ++c)
      selected += probs[order[c]];
    for (int64_t c = 0; c < topK; ++c) {
      result.indices.data[t * topK + c] = static_cast<double>(order[c]);
      result.weights.data[t * topK + c] =
          probs[order[c]] / (renormalize ? selected : 1.0);
    }
  }
  return result;
}

DispatchResult mlir::moe::ref::dispatch(const Tensor &tokens,
                                        const Tensor &indices,
                                        int64_t numExperts, int64_t capacity) {
  int64_t numTokens = tokens.dim(0), hidden = tokens.dim(1);
  int64_t topK = indices.dim(1);
  DispatchResult result{
      Tensor::zeros(tokens.dtype, {numExperts, capacity, hidden}),
      Tensor::zeros(DType::I32, {numTokens, topK}),
      Tensor::scalar(DType::I64, 0)};
  std::vector<int64_t> filled(numExperts, 0);
  // Token-major order: all of token t's choices queue before token t+1's.
  for (int64_t t = 0; t < numTokens; ++t)
    for (int64_t c = 0; c < topK; ++c) {
      int64_t expert = checkedIndex(indices.data[t * topK + c], numExperts,
                                    "moe.dispatch: expert index");
      if (filled[expert] == capacity) {
        result.slots.data[t * topK + c] = -1;
        result.dropped.data[0] += 1;
        continue;
      }
      int64_t slot = filled[expert]++;
      result.slots.data[t * topK + c] = static_cast<double>(slot);
      std::copy_n(&tokens.data[t * hidden], hidden,
                  &result.buffer.data[(expert * capacity + slot) * hidden]);
    }
  return result;
}

Tensor mlir::moe::ref::expertFfn(const Tensor &input, const Tensor &gateProj,
                                 const Tensor &upProj, const Tensor &downProj) {
  int64_t experts = input.dim(0), capacity = input.dim(1);
  int64_t hidden = input.dim(2), ffn = gateProj.dim(1);
  Tensor result = Tensor::zeros(input.dtype, input.shape);
  std::vector<double> activation(ffn);
  for (int64_t e = 0; e < experts; ++e) {
    const double *wGate = &gateProj.data[e * ffn * hidden];
    const double *wUp = &upProj.data[e * ffn * hidden];
    const double *wDown = &downProj.data[e * hidden * ffn];
    for (int64_t r = 0; r < capacity; ++r) {
      const double *x = &input.data[(e * capacity + r) * hidden];
      for (int64_t f = 0; f < ffn; ++f) {
        double g = 0, u = 0;
        for (int64_t d = 0; d < hidden; ++d) {
          g += x[d] * wGate[f * hidden + d];
          u += x[d] * wUp[f * hidden + d];
        }
        activation[f] = g / (1.0 + std::exp(-g)) * u;
      }
      double *y = &result.data[(e * capacity + r) * hidden];
      for (int64_t d = 0; d < hidden; ++d) {
        double sum = 0;
        for (int64_t f = 0; f < ffn; ++f)
          sum += activation[f] * wDown[d * ffn + f];
        y[d] = sum;
      }
    }
  }
  return result;
}

Tensor mlir::moe::ref::combine(const Tensor &expertOutput,
                               const Tensor &weights, const Tensor &indices,
                               const Tensor &slots) {
  int64_t experts = expertOutput.dim(0), capacity = expertOutput.dim(1);
  int64_t hidden = expertOutput.dim(2);
  int64_t tokens = weights.dim(0), topK = weights.dim(1);
  Tensor result = Tensor::zeros(expertOutput.dtype, {tokens, hidden});
  // Dropped assignments add nothing: the residual path carries the token.
  forEachKeptAssignment(indices, slots, experts, capacity, "moe.combine",
                        [&](int64_t assignment, int64_t row) {
                          int64_t token = assignment / topK;
                          double weight = weights.data[assignment];
                          for (int64_t d = 0; d < hidden; ++d)
                            result.data[token * hidden + d] +=
                                weight * expertOutput.data[row * hidden + d];
                        });
  return result;
}

Tensor mlir::moe::ref::auxLoss(AuxLossKind kind, const Tensor &probs,
                               const Tensor &indices) {
  int64_t experts = probs.dim(1);
  auto [meanProb, assignedFraction] =
      mlir::moe::ref::detail::routerStatistics(probs, indices);
  double loss = 0;
  for (int64_t e = 0; e < experts; ++e) {
    if (kind == AuxLossKind::Skywork) {
      double gap = 1.0 / experts - meanProb[e];
      loss += gap * gap;
    } else {
      loss += experts * assignedFraction[e] * meanProb[e];
    }
  }
  return Tensor::scalar(probs.dtype, loss);
}

Tensor mlir::moe::ref::zLoss(const Tensor &logits) {
  int64_t tokens = logits.dim(0), experts = logits.dim(1);
  double total = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    double lse = logSumExp(&logits.data[t * experts], experts);
    total += lse * lse;
  }
  return Tensor::scalar(logits.dtype, total / static_cast<double>(tokens));
}

Tensor mlir::moe::ref::adaptiveAuxCoeff(const Tensor &alpha,
                                        const Tensor &dropped, double xi,
                                        double alphaMax, double beta,
                                        int64_t assignments) {
  double dropRate = dropped.data[0] / static_cast<double>(assignments);
  double target = std::min(xi * dropRate, alphaMax);
  return Tensor::scalar(alpha.dtype,
                        beta * alpha.data[0] + (1.0 - beta) * target);
}
