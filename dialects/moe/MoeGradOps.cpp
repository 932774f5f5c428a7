//===- MoeGradOps.cpp - verifiers of the backward ops ---------------------===//
//
// Type equalities are ODS traits (AllTypesMatch); these check the shape
// relations that the traits cannot express.
//
//===----------------------------------------------------------------------===//

#include "AsmUtils.h"
#include "VerifierUtils.h"
#include "moe/MoeDialect.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::detail;

LogicalResult EmbeddingGradOp::verify() {
  return verifyEmbedding(*this, "d_table", getDTable(), getIds(), "d_result",
                         getDResult(), getPaddingId());
}

LogicalResult RmsNormGradOp::verify() {
  if (failed(
          expectShape(*this, "d_result", getDResult(), shapeOf(getInput()))) ||
      failed(expectElementTypeOrBf16(*this, "d_result", getDResult(), "input",
                                     getInput())))
    return failure();
  return verifyRmsNormOperands(*this, getInput(), getWeight(),
                               getEps().convertToDouble(), "d_result",
                               getDResult());
}

/// The input, the activation the backward keeps.
bool RmsNormGradOp::isWidenableOperand(unsigned operandIndex) {
  return operandIndex == getInputMutable().getOperandNumber();
}

LogicalResult LinearInputGradOp::verify() {
  if (failed(expectRank(*this, "weight", getWeight(), 2,
                        "[out_features, in_features]")))
    return failure();
  ArrayRef<int64_t> dResult = shapeOf(getDResult());
  int64_t outFeatures = shapeOf(getWeight())[0];
  if (dResult.empty())
    return emitOpError("'d_result' must have rank >= 1");
  if (dResult.back() != outFeatures)
    return emitOpError() << "'d_result' last dimension must be " << outFeatures
                         << " (out_features of 'weight'), got "
                         << dResult.back();
  if (failed(expectShape(*this, "d_input", getDInput(),
                         withLastDim(dResult, shapeOf(getWeight())[1]))))
    return failure();
  return verifyGemmElementTypes(
      *this, {{"d_result", getDResult()}, {"weight", getWeight()}}, {},
      {{"d_input", getDInput()}});
}

/// Over bf16 operands (the GEMM accumulates in f32).
bool LinearInputGradOp::isNarrowableResult(unsigned) {
  return getElementTypeOrSelf(getDResult()).isBF16();
}

LogicalResult LinearWeightGradOp::verify() {
  ArrayRef<int64_t> dResult = shapeOf(getDResult());
  ArrayRef<int64_t> input = shapeOf(getInput());
  if (dResult.empty())
    return emitOpError("'d_result' must have rank >= 1");
  if (input.empty())
    return emitOpError("'input' must have rank >= 1");
  if (dResult.drop_back() != input.drop_back())
    return emitOpError() << "'d_result' and 'input' must share their leading "
                            "dimensions, got "
                         << formatShape(dResult) << " and "
                         << formatShape(input);
  if (failed(expectShape(*this, "d_weight", getDWeight(),
                         {dResult.back(), input.back()})))
    return failure();
  return verifyGemmElementTypes(
      *this, {{"d_result", getDResult()}, {"input", getInput()}},
      {{"d_weight", getDWeight()}});
}

LogicalResult BiasGradOp::verify() {
  ArrayRef<int64_t> dResult = shapeOf(getDResult());
  if (dResult.empty())
    return emitOpError("'d_result' must have rank >= 1");
  if (failed(expectShape(*this, "d_bias", getDBias(), {dResult.back()})))
    return failure();
  return expectSameElementType(
      *this, {{"d_result", getDResult()}, {"d_bias", getDBias()}});
}

LogicalResult AttentionGradOp::verify() {
  if (failed(verifyAttentionOperands(*this, getQuery(), getKey())) ||
      failed(verifyAttentionWindow(*this, getCausal(), getWindow())))
    return failure();
  return verifyAttentionLse(*this, getQuery(), getLse());
}

LogicalResult AttentionSinksGradOp::verify() {
  if (failed(expectRank(*this, "output", getOutput(), 4,
                        "[batch, seq, heads, head_dim]")) ||
      failed(verifyAttentionSinks(*this, getOutput(), getSinks())))
    return failure();
  return verifyAttentionLse(*this, getOutput(), getLse());
}

LogicalResult ExpertFfnGradOp::verify() {
  return verifyExpertFfnOperands(*this, getInput(), getGateProj(),
                                 getDownProj(), getProjections());
}

LogicalResult SigmoidScaleGradOp::verify() {
  return verifySigmoidScaleOperands(*this, getInput(), getLogit());
}

LogicalResult CrossEntropyGradOp::verify() {
  if (failed(verifyNarrowableResult(*this, "logits", getLogits(), "d_logits",
                                    getDLogits())))
    return failure();
  return verifyCrossEntropyOperands(*this, getLogits(), getTargets(), "d_loss",
                                    getDLoss(), getDivisor(), getIgnoreIndex());
}

bool CrossEntropyGradOp::isNarrowableResult(unsigned) {
  return computesInF32(*this);
}

LogicalResult GateNormGradOp::verify() {
  if (failed(expectRank(*this, "logits", getLogits(), 2, "[tokens, experts]")))
    return failure();
  return verifyGateNormalization(*this, getNormLambdaAttr(),
                                 getNormEps().convertToDouble(), getLogits());
}

LogicalResult GateGradOp::verify() {
  if (failed(
          expectRank(*this, "logits", getLogits(), 2, "[tokens, experts]")) ||
      failed(expectRank(*this, "indices", getIndices(), 2, "[tokens, top_k]")))
    return failure();
  int64_t tokens = shapeOf(getLogits())[0], experts = shapeOf(getLogits())[1];
  int64_t topK = shapeOf(getIndices())[1];
  if (failed(expectShape(*this, "indices", getIndices(), {tokens, topK})) ||
      failed(expectShape(*this, "d_weights", getDWeights(), {tokens, topK})) ||
      failed(expectTopKAtMostExperts(*this, "indices", topK, experts)))
    return failure();
  if (failed(verifyGateNormalization(*this, getNormLambdaAttr(),
                                     getNormEps().convertToDouble(),
                                     getLogits())) ||
      failed(expectPositive(*this, "scale", getScale().convertToDouble())))
    return failure();
  return expectSameElementType(
      *this, {{"logits", getLogits()}, {"d_weights", getDWeights()}});
}

LogicalResult DispatchGradOp::verify() {
  if (failed(expectRank(*this, "d_buffer", getDBuffer(), 3,
                        "[experts, capacity, hidden]")) ||
      failed(expectRank(*this, "indices", getIndices(), 2, "[tokens, top_k]")))
    return failure();
  int64_t tokens = shapeOf(getIndices())[0], topK = shapeOf(getIndices())[1];
  int64_t experts = shapeOf(getDBuffer())[0];
  if (experts < topK)
    return emitOpError() << "'d_buffer' must have at least top_k = " << topK
                         << " experts, got " << experts;
  if (failed(expectShape(*this, "d_tokens", getDTokens(),
                         {tokens, shapeOf(getDBuffer())[2]})))
    return failure();
  return expectSameElementType(
      *this, {{"d_buffer", getDBuffer()}, {"d_tokens", getDTokens()}});
}

LogicalResult CombineGradOp::verify() {
  if (failed(verifyCombineOperands(*this, getExpertOutput(), getWeights(),
                                   getIndices(), "d_result", getDResult())) ||
      failed(expectShape(*this, "d_expert_output", getDExpertOutput(),
                         shapeOf(getExpertOutput()))) ||
      failed(expectElementTypeOrBf16(*this, "d_result", getDResult(),
                                     "expert_output", getExpertOutput())) ||
      failed(expectSameElementType(
          *this, {{"d_result", getDResult()}, {"weights", getWeights()}})))
    return failure();
  return expectElementTypeOrBf16(*this, "d_result", getDResult(),
                                 "d_expert_output", getDExpertOutput());
}

/// The expert outputs' gradient, not the weights'.
bool CombineGradOp::isNarrowableResult(unsigned resultIndex) {
  return resultIndex == 0 && computesInF32(*this);
}

/// The expert outputs, the activation the backward keeps.
bool CombineGradOp::isWidenableOperand(unsigned operandIndex) {
  return operandIndex == getExpertOutputMutable().getOperandNumber();
}

LogicalResult AuxLossGradOp::verify() {
  return verifyAuxLossOperands(*this, getProbs(), getIndices(), "d_loss",
                               getDLoss());
}

LogicalResult PooledAuxLossGradOp::verify() {
  return verifyPooledAuxLossOperands(*this, getDProbs(), "d_probs",
                                     getIndices(), "d_loss", getDLoss());
}

LogicalResult ZLossGradOp::verify() {
  return verifyZLossOperands(*this, getLogits(), "d_loss", getDLoss());
}

LogicalResult ConcatGradOp::verify() {
  return verifyConcatOperands(*this, "d_lhs", getDLhs(), "d_rhs", getDRhs(),
                              "d_result", getDResult());
}
