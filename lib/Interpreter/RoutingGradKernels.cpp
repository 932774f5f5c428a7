//===- RoutingGradKernels.cpp - VJPs of the routing and aux-loss ops ------===//
//
// Naive vector-Jacobian products of the kernels in RoutingKernels.cpp. The
// routing decisions (top-k indices, slots) come from the forward and are
// never recomputed: the gradient follows the forward's choices, and a
// dropped assignment (slot -1) gets nothing through the expert path.
//
//===----------------------------------------------------------------------===//

#include "KernelUtils.h"
#include "moe/Interpreter/GradKernels.h"

#include <cmath>
#include <vector>

using namespace mlir::moe::ref;

using mlir::moe::ref::detail::checkedIndex;
using mlir::moe::ref::detail::forEachKeptAssignment;
using mlir::moe::ref::detail::logSumExp;
using mlir::moe::ref::detail::normalizeRow;
using mlir::moe::ref::detail::normalizeRowGrad;

Tensor mlir::moe::ref::gateGrad(const Tensor &logits, const Tensor &indices,
                                std::optional<double> normLambda,
                                double normEps, bool renormalize,
                                const Tensor &dProbs, const Tensor &dWeights,
                                moert::GateScoring scoring, double scale) {
  int64_t tokens = logits.dim(0), experts = logits.dim(1);
  int64_t topK = indices.dim(1);
  bool sigmoid = scoring == moert::GateScoring::Sigmoid;
  Tensor dLogits = Tensor::zeros(logits.dtype, {tokens, experts});
  std::vector<double> centered(experts), scores(experts), dS(experts);
  std::vector<int64_t> chosen(topK);
  std::vector<double> dU(topK);
  for (int64_t t = 0; t < tokens; ++t) {
    // Forward, as in gate().
    const double *z = &logits.data[t * experts];
    double std = 0;
    if (normLambda)
      std = normalizeRow(z, experts, *normLambda, normEps, centered.data(),
                         scores.data());
    else
      scores.assign(z, z + experts);
    double normalizer = sigmoid ? 0.0 : logSumExp(scores.data(), experts);
    for (int64_t e = 0; e < experts; ++e)
      scores[e] = sigmoid ? 1.0 / (1.0 + std::exp(-scores[e]))
                          : std::exp(scores[e] - normalizer);

    // d scores from the probs output: sigmoid probs are s / total, so
    // ds_e = (dp_e - sum_j dp_j p_j) / total; softmax probs are the scores.
    const double *dP = &dProbs.data[t * experts];
    double total = 0, expected = 0;
    for (int64_t e = 0; e < experts; ++e)
      total += scores[e];
    if (total == 0) // every score underflowed
      total = 1;
    for (int64_t e = 0; e < experts; ++e)
      expected += dP[e] * scores[e] / total;
    for (int64_t e = 0; e < experts; ++e)
      dS[e] = sigmoid ? (dP[e] - expected) / total : dP[e];

    // Plus the weights' path: w_c = scale u_c, so du_c = scale dw_c. With
    // renormalize, u_c = s_{i_c} / S where S sums the k selected scores, so
    // ds_{i_c} += (du_c - sum_c' du_c' u_c') / S.
    for (int64_t c = 0; c < topK; ++c)
      dU[c] = scale * dWeights.data[t * topK + c];
    double selected = 0;
    for (int64_t c = 0; c < topK; ++c) {
      chosen[c] = checkedIndex(indices.data[t * topK + c], experts,
                               "moe.gate: expert index");
      selected += scores[chosen[c]];
    }
    if (selected == 0) // the chosen scores underflowed
      selected = 1;
    double weighted = 0; // sum_c du_c u_c
    if (renormalize)
      for (int64_t c = 0; c < topK; ++c)
        weighted += dU[c] * scores[chosen[c]] / selected;
    for (int64_t c = 0; c < topK; ++c)
      dS[chosen[c]] += renormalize ? (dU[c] - weighted) / selected : dU[c];

    // Softmax backward: dz~_e = p_e (dp_e - sum_j p_j dp_j); sigmoid's:
    // dz~_e = s_e (1 - s_e) ds_e.
    double *dz = &dLogits.data[t * experts];
    double softmaxExpected = 0;
    for (int64_t e = 0; e < experts; ++e)
      softmaxExpected += scores[e] * dS[e];
    for (int64_t e = 0; e < experts; ++e)
      dz[e] = sigmoid ? scores[e] * (1.0 - scores[e]) * dS[e]
                      : scores[e] * (dS[e] - softmaxExpected);
    if (normLambda)
      normalizeRowGrad(centered.data(), std, experts, *normLambda, normEps, dz);
  }
  return dLogits;
}

Tensor mlir::moe::ref::gateNormGrad(const Tensor &logits, double normLambda,
                                    double normEps, const Tensor &dResult) {
  int64_t tokens = logits.dim(0), experts = logits.dim(1);
  Tensor dLogits{logits.dtype, logits.shape, dResult.data};
  std::vector<double> centered(experts), normalized(experts);
  for (int64_t t = 0; t < tokens; ++t) {
    double std = normalizeRow(&logits.data[t * experts], experts, normLambda,
                              normEps, centered.data(), normalized.data());
    normalizeRowGrad(centered.data(), std, experts, normLambda, normEps,
                     &dLogits.data[t * experts]);
  }
  return dLogits;
}

Tensor mlir::moe::ref::dispatchGrad(const Tensor &dBuffer,
                                    const Tensor &indices,
                                    const Tensor &slots) {
  int64_t experts = dBuffer.dim(0), capacity = dBuffer.dim(1);
  int64_t hidden = dBuffer.dim(2);
  int64_t numTokens = indices.dim(0), topK = indices.dim(1);
  Tensor dTokens = Tensor::zeros(dBuffer.dtype, {numTokens, hidden});
  // A dropped assignment never reached the buffer: no gradient.
  forEachKeptAssignment(indices, slots, experts, capacity, "moe.dispatch",
                        [&](int64_t assignment, int64_t row) {
                          int64_t token = assignment / topK;
                          for (int64_t d = 0; d < hidden; ++d)
                            dTokens.data[token * hidden + d] +=
                                dBuffer.data[row * hidden + d];
                        });
  return dTokens;
}

ExpertFfnGrads mlir::moe::ref::expertFfnGrad(const Tensor &input,
                                             const Tensor &gateProj,
                                             const Tensor &upProj,
                                             const Tensor &downProj,
                                             const Tensor &dResult) {
  int64_t experts = input.dim(0), capacity = input.dim(1);
  int64_t hidden = input.dim(2), ffn = gateProj.dim(1);
  ExpertFfnGrads grads{Tensor::zeros(input.dtype, input.shape),
                       Tensor::zeros(gateProj.dtype, gateProj.shape),
                       Tensor::zeros(upProj.dtype, upProj.shape),
                       Tensor::zeros(downProj.dtype, downProj.shape)};
  std::vector<double> gateAct(ffn), upAct(ffn);
  for (int64_t e = 0; e < experts; ++e) {
    const double *wGate = &gateProj.data[e * ffn * hidden];
    const double *wUp = &upProj.data[e * ffn * hidden];
    const double *wDown = &downProj.data[e * hidden * ffn];
    double *dGate = &grads.dGateProj.data[e * ffn * hidden];
    double *dUp = &grads.dUpProj.data[e * ffn * hidden];
    double *dDown = &grads.dDownProj.data[e * hidden * ffn];
    for (int64_t r = 0; r < capacity; ++r) {
      const double *x = &input.data[(e * capacity + r) * hidden];
      const double *dy = &dResult.data[(e * capacity + r) * hidden];
      double *dx = &grads.dInput.data[(e * capacity + r) * hidden];
      // Recompute the row's projections g = Wg x and u = Wu x, as the
      // forward keeps them: in the operands' precision.
      for (int64_t f = 0; f < ffn; ++f) {
        gateAct[f] = upAct[f] = 0;
        for (int64_t d = 0; d < hidden; ++d) {
          gateAct[f] += x[d] * wGate[f * hidden + d];
          upAct[f] += x[d] * wUp[f * hidden + d];
        }
        gateAct[f] = rounded(gateAct[f], input.dtype);
        upAct[f] = rounded(upAct[f], input.dtype);
      }
      for (int64_t f = 0; f < ffn; ++f) {
        double g = gateAct[f], u = upAct[f];
        double sigmoid = moert::rows::sigmoid(g), silu = g * sigmoid;
        // y = Wd a with a_f = silu(g_f) u_f: dWd = dy a^T, da = Wd^T dy.
        // a, dg and du are GEMM operands, in the operands' precision.
        double act = rounded(silu * u, input.dtype);
        double dAct = 0;
        for (int64_t d = 0; d < hidden; ++d) {
          dDown[d * ffn + f] += dy[d] * act;
          dAct += dy[d] * wDown[d * ffn + f];
        }
        double dG = rounded(dAct * u * sigmoid * (1.0 + g * (1.0 - sigmoid)),
                            input.dtype);
        double dU = rounded(dAct * silu, input.dtype);
        for (int64_t d = 0; d < hidden; ++d) {
          dGate[f * hidden + d] += dG * x[d];
          dUp[f * hidden + d] += dU * x[d];
          dx[d] += dG * wGate[f * hidden + d] + dU * wUp[f * hidden + d];
        }
      }
    }
  }
  return grads;
}

CombineGrads mlir::moe::ref::combineGrad(const Tensor &expertOutput,
                                         const Tensor &weights,
                                         const Tensor &indices,
                                         const Tensor &slots,
                                         const Tensor &dResult) {
  int64_t experts = expertOutput.dim(0), capacity = expertOutput.dim(1);
  int64_t hidden = expertOutput.dim(2);
  int64_t topK = weights.dim(1);
  CombineGrads grads{Tensor::zeros(expertOutput.dtype, expertOutput.shape),
                     Tensor::zeros(weights.dtype, weights.shape)};
  // A dropped assignment added nothing, so it gets no gradient either way.
  forEachKeptAssignment(indices, slots, experts, capacity, "moe.combine",
                        [&](int64_t assignment, int64_t row) {
                          int64_t token = assignment / topK;
                          double weight = weights.data[assignment], dWeight = 0;
                          for (int64_t d = 0; d < hidden; ++d) {
                            double dOut = dResult.data[token * hidden + d];
                            grads.dExpertOutput.data[row * hidden + d] +=
                                weight * dOut;
                            dWeight +=
                                dOut * expertOutput.data[row * hidden + d];
                          }
                          grads.dWeights.data[assignment] = dWeight;
                        });
  return grads;
}

Tensor mlir::moe::ref::auxLossGrad(AuxLossKind kind, const Tensor &probs,
                                   const Tensor &indices, const Tensor &dLoss) {
  int64_t tokens = probs.dim(0), experts = probs.dim(1);
  auto [meanProb, assignedFraction] =
      mlir::moe::ref::detail::routerStatistics(probs, indices);
  // Every token's prob enters only through P_j = mean_t p_tj, so dL/dp_tj =
  // dL/dP_j / T: skywork's sum_j (1/n - P_j)^2 gives -2 (1/n - P_j); switch's
  // n sum_j f_j P_j gives n f_j, the fractions f_j being constants.
  std::vector<double> dMeanProb(experts);
  for (int64_t e = 0; e < experts; ++e)
    dMeanProb[e] = kind == AuxLossKind::Skywork
                       ? -2.0 * (1.0 / experts - meanProb[e])
                       : experts * assignedFraction[e];
  Tensor dProbs = Tensor::zeros(probs.dtype, probs.shape);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t e = 0; e < experts; ++e)
      dProbs.data[t * experts + e] = dLoss.data[0] * dMeanProb[e] / tokens;
  return dProbs;
}

std::vector<Tensor>
mlir::moe::ref::pooledAuxLossGrad(const std::vector<const Tensor *> &indices,
                                  int64_t experts, const Tensor &dLoss) {
  moert::rows::PooledLoad load(experts);
  for (const Tensor *layer : indices)
    load.addLayer<double>(nullptr, layer->data.data(), layer->dim(0),
                          layer->dim(1));
  std::vector<Tensor> dProbs;
  for (const Tensor *layer : indices) {
    int64_t tokens = layer->dim(0);
    Tensor grad = Tensor::zeros(dLoss.dtype, {tokens, experts});
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t e = 0; e < experts; ++e)
        grad.data[t * experts + e] = dLoss.data[0] * load.gradient(e);
    dProbs.push_back(std::move(grad));
  }
  return dProbs;
}

Tensor mlir::moe::ref::zLossGrad(const Tensor &logits, const Tensor &dLoss) {
  int64_t tokens = logits.dim(0), experts = logits.dim(1);
  Tensor dLogits = Tensor::zeros(logits.dtype, logits.shape);
  // d/dz_tj (1/T) lse_t^2 = 2 lse_t softmax(z_t)_j / T.
  for (int64_t t = 0; t < tokens; ++t) {
    const double *row = &logits.data[t * experts];
    double lse = logSumExp(row, experts);
    for (int64_t e = 0; e < experts; ++e)
      dLogits.data[t * experts + e] = dLoss.data[0] * 2.0 * lse *
                                      std::exp(row[e] - lse) /
                                      static_cast<double>(tokens);
  }
  return dLogits;
}
