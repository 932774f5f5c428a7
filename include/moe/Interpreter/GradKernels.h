//===- GradKernels.h - naive vector-Jacobian products -----------*- C++ -*-===//
//
// The backward of every differentiable moe op: given the forward inputs and
// the gradient of the op's output(s), the gradient of each differentiable
// input. Like the forward kernels (ReferenceKernels.h) they are written for
// clarity, compute in double and return un-rounded tensors of the primary
// input's dtype. Routing decisions (top-k indices, slots) are inputs, never
// recomputed, so a gradient always follows the forward's choices: dropped
// assignments (slot -1) get no gradient through the expert path.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_INTERPRETER_GRADKERNELS_H
#define MOE_INTERPRETER_GRADKERNELS_H

#include "moe/Interpreter/ReferenceKernels.h"

namespace mlir::moe::ref {

/// d table [vocab, hidden]: rows of dResult scatter-added at their ids, but
/// for `paddingId`'s, which stays 0.
Tensor embeddingGrad(const Tensor &ids, const Tensor &dResult, int64_t vocab,
                     std::optional<int64_t> paddingId = std::nullopt);

struct RmsNormGrads {
  Tensor dInput;  // shape of input
  Tensor dWeight; // [hidden]
};
RmsNormGrads rmsNormGrad(const Tensor &input, const Tensor &weight, double eps,
                         const Tensor &dResult);

/// d input [..., in] = dResult [..., out] x weight [out, in].
Tensor linearInputGrad(const Tensor &dResult, const Tensor &weight);
/// d weight [out, in] = sum over rows of dResult[r, out] * input[r, in].
Tensor linearWeightGrad(const Tensor &dResult, const Tensor &input);
/// d bias [out] = sum over rows of dResult[r, out].
Tensor biasGrad(const Tensor &dResult);

struct AttentionGrads {
  Tensor dQuery, dKey, dValue;
};
/// From the forward's `output` and log-sum-exp `lse` (moe.attention's).
AttentionGrads attentionGrad(const Tensor &query, const Tensor &key,
                             const Tensor &value, const Tensor &output,
                             const Tensor &lse, moert::AttentionMask mask,
                             const Tensor &dResult);

/// d sinks [heads] of moe.attention, from its `output` and `lse`.
Tensor attentionSinksGrad(const Tensor &sinks, const Tensor &lse,
                          const Tensor &output, const Tensor &dResult);

struct SwigluGrads {
  Tensor dGate, dUp;
};
SwigluGrads swigluGrad(const Tensor &gate, const Tensor &up,
                       const Tensor &dResult);

struct SigmoidScaleGrads {
  Tensor dInput, dLogit;
};
SigmoidScaleGrads sigmoidScaleGrad(const Tensor &input, const Tensor &logit,
                                   const Tensor &dResult);

struct ConcatGrads {
  Tensor dLhs, dRhs;
};
/// moe.concat_grad: the parts of `dResult` for operands of these shapes.
ConcatGrads concatGrad(const Tensor &dResult,
                       const std::vector<int64_t> &lhsShape,
                       const std::vector<int64_t> &rhsShape);

/// d logits of the cross-entropy, scaled by the scalar dLoss.
Tensor crossEntropyGrad(const Tensor &logits, const Tensor &targets,
                        const Tensor &dLoss, const LossTargets &counted = {});

/// d logits [T, E] of the gate, given the gradients of its probs [T, E] and
/// weights [T, k] outputs and the forward's top-k `indices` [T, k]: through
/// the renormalization (when set), the sigmoid scores' sum, the softmax or
/// the sigmoid, and the logit normalization (mean and population std over
/// the expert axis, when normLambda is set).
Tensor gateGrad(const Tensor &logits, const Tensor &indices,
                std::optional<double> normLambda, double normEps,
                bool renormalize, const Tensor &dProbs, const Tensor &dWeights,
                moert::GateScoring scoring = moert::GateScoring::Softmax,
                double scale = 1);

/// d logits [T, E] of moe.gate_norm: through the mean and the population std
/// of each row exactly.
Tensor gateNormGrad(const Tensor &logits, double normLambda, double normEps,
                    const Tensor &dResult);

/// d tokens [numTokens, hidden]: for each kept assignment (slot != -1), the
/// buffer row's gradient added to its token.
Tensor dispatchGrad(const Tensor &dBuffer, const Tensor &indices,
                    const Tensor &slots);

struct ExpertFfnGrads {
  Tensor dInput, dGateProj, dUpProj, dDownProj;
};
ExpertFfnGrads expertFfnGrad(const Tensor &input, const Tensor &gateProj,
                             const Tensor &upProj, const Tensor &downProj,
                             const Tensor &dResult);

struct CombineGrads {
  Tensor dExpertOutput; // [E, capacity, hidden]
  Tensor dWeights;      // [T, k]; zero where dropped
};
CombineGrads combineGrad(const Tensor &expertOutput, const Tensor &weights,
                         const Tensor &indices, const Tensor &slots,
                         const Tensor &dResult);

/// d probs [T, n] of the auxiliary loss, scaled by the scalar dLoss. For
/// `switch` the assignment fractions f_j are constants (they come from the
/// indices).
Tensor auxLossGrad(AuxLossKind kind, const Tensor &probs, const Tensor &indices,
                   const Tensor &dLoss);

/// d probs of every layer of moe.pooled_aux_loss, shaped [T_l, experts],
/// scaled by the scalar dLoss (the counts are constants).
std::vector<Tensor>
pooledAuxLossGrad(const std::vector<const Tensor *> &indices, int64_t experts,
                  const Tensor &dLoss);

/// d logits [T, n] of the z-loss, scaled by the scalar dLoss.
Tensor zLossGrad(const Tensor &logits, const Tensor &dLoss);

} // namespace mlir::moe::ref

#endif // MOE_INTERPRETER_GRADKERNELS_H
