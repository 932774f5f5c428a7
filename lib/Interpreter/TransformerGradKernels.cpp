//===- TransformerGradKernels.cpp - VJPs of the transformer ops -----------===//
//
// Naive vector-Jacobian products of the kernels in TransformerKernels.cpp.
// Each loop mirrors its forward so that the chain rule can be read off it;
// rope has none here: rope(dResult, theta, /*inverse=*/true) is its VJP.
//
//===----------------------------------------------------------------------===//

#include "KernelUtils.h"
#include "moe/Interpreter/GradKernels.h"

#include <cmath>
#include <vector>

using namespace mlir::moe::ref;

using mlir::moe::ref::detail::checkedIndex;
using mlir::moe::ref::detail::gemmOperand;
using mlir::moe::ref::detail::logSumExp;

Tensor mlir::moe::ref::embeddingGrad(const Tensor &ids, const Tensor &dResult,
                                     int64_t vocab,
                                     std::optional<int64_t> paddingId) {
  int64_t hidden = dResult.dim(-1);
  Tensor dTable = Tensor::zeros(dResult.dtype, {vocab, hidden});
  // A repeated id gathered one row several times: its gradients add up.
  for (int64_t i = 0; i < ids.numel(); ++i) {
    int64_t id = checkedIndex(ids.data[i], vocab, "moe.embedding: token id");
    if (id == paddingId)
      continue;
    for (int64_t d = 0; d < hidden; ++d)
      dTable.data[id * hidden + d] += dResult.data[i * hidden + d];
  }
  return dTable;
}

RmsNormGrads mlir::moe::ref::rmsNormGrad(const Tensor &input,
                                         const Tensor &weight, double eps,
                                         const Tensor &dResult) {
  int64_t hidden = input.dim(-1), rows = input.rowCount();
  RmsNormGrads grads{Tensor::zeros(input.dtype, input.shape),
                     Tensor::zeros(weight.dtype, {hidden})};
  for (int64_t r = 0; r < rows; ++r) {
    const double *x = &input.data[r * hidden];
    const double *dy = &dResult.data[r * hidden];
    double meanSquare = 0;
    for (int64_t i = 0; i < hidden; ++i)
      meanSquare += x[i] * x[i];
    double scale = 1.0 / std::sqrt(meanSquare / hidden + eps);
    // y_i = x_i s w_i with s = (mean(x^2) + eps)^(-1/2), and
    // ds/dx_j = -s^3 x_j / hidden, so with g_i = dy_i w_i:
    // dx_j = s g_j - s^3 x_j / hidden * sum_i g_i x_i.
    double dot = 0;
    for (int64_t i = 0; i < hidden; ++i) {
      dot += dy[i] * weight.data[i] * x[i];
      grads.dWeight.data[i] += dy[i] * x[i] * scale;
    }
    double *dx = &grads.dInput.data[r * hidden];
    for (int64_t j = 0; j < hidden; ++j)
      dx[j] = scale * dy[j] * weight.data[j] -
              scale * scale * scale * x[j] / hidden * dot;
  }
  return grads;
}

Tensor mlir::moe::ref::linearInputGrad(const Tensor &dResult,
                                       const Tensor &weight) {
  int64_t out = weight.dim(0), in = weight.dim(1), rows = dResult.rowCount();
  Tensor dInput =
      Tensor::zeros(dResult.dtype, detail::withLastDim(dResult, in));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < in; ++i) {
      double sum = 0;
      for (int64_t o = 0; o < out; ++o)
        sum += dResult.data[r * out + o] * weight.data[o * in + i];
      dInput.data[r * in + i] = sum;
    }
  return dInput;
}

Tensor mlir::moe::ref::linearWeightGrad(const Tensor &dResult,
                                        const Tensor &input) {
  int64_t out = dResult.dim(-1), in = input.dim(-1), rows = input.rowCount();
  Tensor dWeight = Tensor::zeros(dResult.dtype, {out, in});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i)
        dWeight.data[o * in + i] +=
            dResult.data[r * out + o] * input.data[r * in + i];
  return dWeight;
}

Tensor mlir::moe::ref::biasGrad(const Tensor &dResult) {
  int64_t out = dResult.dim(-1), rows = dResult.rowCount();
  Tensor dBias = Tensor::zeros(dResult.dtype, {out});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o)
      dBias.data[o] += dResult.data[r * out + o];
  return dBias;
}

AttentionGrads
mlir::moe::ref::attentionGrad(const Tensor &query, const Tensor &key,
                              const Tensor &value, const Tensor &output,
                              const Tensor &lse, moert::AttentionMask mask,
                              const Tensor &dResult) {
  int64_t batch = query.dim(0), seq = query.dim(1), heads = query.dim(2);
  int64_t headDim = query.dim(3), kvHeads = key.dim(2);
  int64_t group = heads / kvHeads;
  double scale = 1.0 / std::sqrt(static_cast<double>(headDim));
  auto at = [&](int64_t b, int64_t s, int64_t h, int64_t numHeads) {
    return ((b * seq + s) * numHeads + h) * headDim;
  };
  AttentionGrads grads{Tensor::zeros(query.dtype, query.shape),
                       Tensor::zeros(key.dtype, key.shape),
                       Tensor::zeros(value.dtype, value.shape)};
  std::vector<double> probs(seq), dProbs(seq);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < seq; ++i) {
        // Recompute this query row's probabilities from the forward's
        // log-sum-exp rather than store [seq, seq].
        int64_t first = mask.firstKey(i), end = mask.endKey(i, seq);
        int64_t kvHead = h / group; // grouped query heads share K and V
        const double *q = &query.data[at(b, i, h, heads)];
        const double *dOut = &dResult.data[at(b, i, h, heads)];
        double normalizer = lse.data[(b * heads + h) * seq + i];
        for (int64_t j = first; j < end; ++j) {
          const double *k = &key.data[at(b, j, kvHead, kvHeads)];
          double dot = 0;
          for (int64_t d = 0; d < headDim; ++d)
            dot += q[d] * k[d];
          probs[j] = std::exp(dot * scale - normalizer);
        }
        // sum_j p_j dp_j = dOut . sum_j p_j v_j = dOut . out.
        const double *out = &output.data[at(b, i, h, heads)];
        double expected = 0;
        for (int64_t d = 0; d < headDim; ++d)
          expected += dOut[d] * out[d];
        // out = sum_j p_j v_j: dv_j += p_j dOut, dp_j = dOut . v_j.
        for (int64_t j = first; j < end; ++j) {
          const double *v = &value.data[at(b, j, kvHead, kvHeads)];
          double *dv = &grads.dValue.data[at(b, j, kvHead, kvHeads)];
          double probability = gemmOperand(probs[j], query.dtype);
          double dot = 0;
          for (int64_t d = 0; d < headDim; ++d) {
            dot += dOut[d] * v[d];
            dv[d] += probability * dOut[d];
          }
          dProbs[j] = dot;
        }
        // Softmax backward, then the scaled dot product s_j = scale q . k_j.
        double *dq = &grads.dQuery.data[at(b, i, h, heads)];
        for (int64_t j = first; j < end; ++j) {
          double dScore = gemmOperand(probs[j] * (dProbs[j] - expected) * scale,
                                      query.dtype);
          const double *k = &key.data[at(b, j, kvHead, kvHeads)];
          double *dk = &grads.dKey.data[at(b, j, kvHead, kvHeads)];
          for (int64_t d = 0; d < headDim; ++d) {
            dq[d] += dScore * k[d];
            dk[d] += dScore * q[d];
          }
        }
      }
  return grads;
}

Tensor mlir::moe::ref::attentionSinksGrad(const Tensor &sinks,
                                          const Tensor &lse,
                                          const Tensor &output,
                                          const Tensor &dResult) {
  int64_t batch = output.dim(0), seq = output.dim(1), heads = output.dim(2);
  int64_t headDim = output.dim(3);
  Tensor dSinks = Tensor::zeros(sinks.dtype, sinks.shape);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < seq; ++i)
      for (int64_t h = 0; h < heads; ++h) {
        int64_t row = ((b * seq + i) * heads + h) * headDim;
        double expected = 0;
        for (int64_t d = 0; d < headDim; ++d)
          expected += dResult.data[row + d] * output.data[row + d];
        double probability =
            std::exp(sinks.data[h] - lse.data[(b * heads + h) * seq + i]);
        dSinks.data[h] -= probability * expected;
      }
  return dSinks;
}

SwigluGrads mlir::moe::ref::swigluGrad(const Tensor &gate, const Tensor &up,
                                       const Tensor &dResult) {
  SwigluGrads grads{Tensor::zeros(gate.dtype, gate.shape),
                    Tensor::zeros(up.dtype, up.shape)};
  for (int64_t i = 0; i < gate.numel(); ++i) {
    double g = gate.data[i], sigmoid = moert::rows::sigmoid(g);
    // silu(g) = g sigmoid(g), silu'(g) = sigmoid(g) (1 + g (1 - sigmoid(g))).
    grads.dUp.data[i] = dResult.data[i] * g * sigmoid;
    grads.dGate.data[i] =
        dResult.data[i] * up.data[i] * sigmoid * (1.0 + g * (1.0 - sigmoid));
  }
  return grads;
}

SigmoidScaleGrads mlir::moe::ref::sigmoidScaleGrad(const Tensor &input,
                                                   const Tensor &logit,
                                                   const Tensor &dResult) {
  int64_t hidden = logit.shape == input.shape ? 1 : input.dim(-1);
  SigmoidScaleGrads grads{Tensor::zeros(input.dtype, input.shape),
                          Tensor::zeros(logit.dtype, logit.shape)};
  for (int64_t r = 0; r < logit.numel(); ++r) {
    double sigmoid = moert::rows::sigmoid(logit.data[r]), dot = 0;
    for (int64_t h = 0, i = r * hidden; h < hidden; ++h, ++i) {
      grads.dInput.data[i] = dResult.data[i] * sigmoid;
      dot += dResult.data[i] * input.data[i];
    }
    grads.dLogit.data[r] = moert::rows::sigmoidScaleLogitGrad(sigmoid, dot);
  }
  return grads;
}

ConcatGrads mlir::moe::ref::concatGrad(const Tensor &dResult,
                                       const std::vector<int64_t> &lhsShape,
                                       const std::vector<int64_t> &rhsShape) {
  ConcatGrads grads{Tensor::zeros(dResult.dtype, lhsShape),
                    Tensor::zeros(dResult.dtype, rhsShape)};
  int64_t width = dResult.dim(-1), rows = dResult.rowCount();
  int64_t heads = detail::headsOf(dResult.shape);
  for (int64_t r = 0; r < rows; ++r) {
    const double *row = &dResult.data[r * width];
    // A part that every head read gathers every head's gradient.
    for (Tensor *part : {&grads.dLhs, &grads.dRhs}) {
      int64_t partWidth = part->dim(-1);
      int64_t target =
          moert::rows::concatOperandRow(r, heads, detail::headsOf(part->shape));
      for (int64_t j = 0; j < partWidth; ++j)
        part->data[target * partWidth + j] += row[j];
      row += partWidth;
    }
  }
  return grads;
}

Tensor mlir::moe::ref::crossEntropyGrad(const Tensor &logits,
                                        const Tensor &targets,
                                        const Tensor &dLoss,
                                        const LossTargets &counted) {
  int64_t vocab = logits.dim(-1), rows = targets.numel();
  Tensor dLogits = Tensor::zeros(logits.dtype, logits.shape);
  // The loss divides the counted rows' sum: each one's softmax - onehot is
  // scaled by dLoss / divisor.
  double divisor = counted.divisor.value_or(static_cast<double>(rows));
  double rowScale = divisor == 0 ? 0.0 : dLoss.data[0] / divisor;
  for (int64_t r = 0; r < rows; ++r) {
    if (counted.ignoreIndex && targets.data[r] == *counted.ignoreIndex)
      continue;
    const double *row = &logits.data[r * vocab];
    int64_t target =
        checkedIndex(targets.data[r], vocab, "moe.cross_entropy: target");
    double normalizer = logSumExp(row, vocab);
    for (int64_t v = 0; v < vocab; ++v)
      dLogits.data[r * vocab + v] =
          rowScale * (std::exp(row[v] - normalizer) - (v == target ? 1 : 0));
  }
  return dLogits;
}
