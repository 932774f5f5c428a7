//===- MoeOps.cpp - moe dialect op verifiers and custom syntax ------------===//
//
// Every verifier names the offending operand or result and the value it
// expected, so that a malformed model points at its own mistake.
//
//===----------------------------------------------------------------------===//

#include "AsmUtils.h"
#include "VerifierUtils.h"
#include "moe/MoeDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

//===----------------------------------------------------------------------===//
// Verifier helpers
//===----------------------------------------------------------------------===//

using namespace mlir::moe::detail;

namespace {

/// Shared by moe.linear and moe.router: input [..., in] x weight [out, in]
/// (+ bias [out]) -> [..., out]. A `narrowable` result may be bf16 over bf16
/// operands when there is no bias: the kernels preload the bias into the
/// result, which the GEMM then adds to.
LogicalResult verifyAffine(Operation *op, StringRef inputName, Value input,
                           Value weight, Value bias, Value result,
                           StringRef resultName, StringRef weightLayout,
                           bool narrowable) {
  if (failed(expectRank(op, "weight", weight, 2, weightLayout)))
    return failure();
  ArrayRef<int64_t> inputShape = shapeOf(input);
  if (inputShape.empty())
    return op->emitOpError() << "'" << inputName << "' must have rank >= 1";
  int64_t outFeatures = shapeOf(weight)[0], inFeatures = shapeOf(weight)[1];
  if (inputShape.back() != inFeatures)
    return op->emitOpError()
           << "'" << inputName << "' last dimension must be " << inFeatures
           << " (in_features of 'weight'), got " << inputShape.back();
  if (narrowable && bias && getElementTypeOrSelf(input).isBF16() &&
      getElementTypeOrSelf(result).isBF16())
    return op->emitOpError()
           << "'" << resultName
           << "' may be bf16 only without a bias (its kernels add the GEMM "
              "to the bias preloaded into the result)";
  SmallVector<std::pair<StringRef, Value>> accumulated, narrowed;
  (narrowable && !bias ? narrowed : accumulated)
      .push_back({resultName, result});
  if (bias) {
    if (failed(expectShape(op, "bias", bias, {outFeatures})))
      return failure();
    accumulated.push_back({"bias", bias});
  }
  if (failed(expectShape(op, resultName, result,
                         withLastDim(inputShape, outFeatures))))
    return failure();
  return verifyGemmElementTypes(op, {{inputName, input}, {"weight", weight}},
                                accumulated, narrowed);
}

} // namespace

//===----------------------------------------------------------------------===//
// Transformer ops
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  return verifyEmbedding(*this, "table", getTable(), getIds(), "result",
                         getResult(), getPaddingId());
}

LogicalResult RmsNormOp::verify() {
  if (failed(verifyNarrowableResult(*this, "input", getInput(), "result",
                                    getResult())))
    return failure();
  return verifyRmsNormOperands(*this, getInput(), getWeight(),
                               getEps().convertToDouble(), "input", getInput());
}

bool RmsNormOp::isNarrowableResult(unsigned) { return computesInF32(*this); }

LogicalResult LinearOp::verify() {
  return verifyAffine(*this, "input", getInput(), getWeight(), getBias(),
                      getResult(), "result", "[out_features, in_features]",
                      /*narrowable=*/true);
}

/// Over bf16 operands (the GEMM accumulates in f32), without a bias.
bool LinearOp::isNarrowableResult(unsigned) {
  return !getBias() && getElementTypeOrSelf(getInput()).isBF16();
}

LogicalResult RopeOp::verify() {
  if (failed(expectRank(*this, "input", getInput(), 4,
                        "[batch, seq, heads, head_dim]")) ||
      failed(verifyNarrowableResult(*this, "input", getInput(), "result",
                                    getResult())))
    return failure();
  int64_t headDim = shapeOf(getInput())[3];
  if (headDim % 2 != 0)
    return emitOpError() << "'input' head_dim must be even, got " << headDim;
  if (std::optional<uint64_t> rotary = getRotaryDim();
      rotary && (*rotary % 2 != 0 || static_cast<int64_t>(*rotary) > headDim))
    return emitOpError() << "attribute 'rotary_dim' must be even and at most "
                            "the head_dim ("
                         << headDim << "), got " << *rotary;
  return expectPositive(*this, "theta", getTheta().convertToDouble());
}

int64_t RopeOp::getRotatedDims() {
  std::optional<uint64_t> rotary = getRotaryDim();
  return rotary ? static_cast<int64_t>(*rotary) : shapeOf(getInput())[3];
}

LogicalResult AttentionOp::verify() {
  if (failed(verifyAttentionOperands(*this, getQuery(), getKey())) ||
      failed(verifyAttentionWindow(*this, getCausal(), getWindow())) ||
      failed(verifyAttentionSinks(*this, getQuery(), getSinks())) ||
      failed(expectShape(*this, "result", getResult(), shapeOf(getQuery()))) ||
      failed(verifyAttentionLse(*this, getQuery(), getLse())))
    return failure();
  return verifyGemmElementTypes(*this, {{"query", getQuery()}}, {},
                                {{"result", getResult()}});
}

/// The result over bf16 operands (the GEMMs accumulate in f32); the
/// log-sum-exp stays f32.
bool AttentionOp::isNarrowableResult(unsigned index) {
  return index == 0 && getElementTypeOrSelf(getQuery()).isBF16();
}

LogicalResult SigmoidScaleOp::verify() {
  return verifySigmoidScaleOperands(*this, getInput(), getLogit());
}

LogicalResult ScaleOp::verify() {
  if (!getFactor().isFinite())
    return emitOpError() << "factor must be finite, got "
                         << getFactor().convertToDouble();
  return success();
}

LogicalResult SliceOp::verify() {
  return verifyLastDimWindow(*this, "input", getInput(), "result", getResult(),
                             getOffset());
}

LogicalResult PadOp::verify() {
  return verifyLastDimWindow(*this, "result", getResult(), "input", getInput(),
                             getOffset());
}

LogicalResult ConcatOp::verify() {
  return verifyConcatOperands(*this, "lhs", getLhs(), "rhs", getRhs(), "result",
                              getResult());
}

LogicalResult CrossEntropyOp::verify() {
  return verifyCrossEntropyOperands(*this, getLogits(), getTargets(), "result",
                                    getResult(), getDivisor(),
                                    getIgnoreIndex());
}

//===----------------------------------------------------------------------===//
// Routing and experts
//===----------------------------------------------------------------------===//

LogicalResult RouterOp::verify() {
  if (failed(expectRank(*this, "tokens", getTokens(), 2, "[tokens, hidden]")))
    return failure();
  return verifyAffine(*this, "tokens", getTokens(), getWeight(), getBias(),
                      getLogits(), "logits", "[experts, hidden]",
                      /*narrowable=*/false);
}

/// DeepSeek's groups: they split the experts evenly, each scored by its
/// `scoreTop` best (V3's two, V2's one), and the chosen ones hold the top-k.
static LogicalResult verifyExpertGroups(Operation *op, int64_t experts,
                                        int64_t topK, int64_t groups,
                                        int64_t groupTopK, int64_t scoreTop) {
  if (scoreTop > 2)
    return op->emitOpError()
           << "attribute 'group_score_top' must be 1 or 2, got " << scoreTop;
  if (groups == 1 && groupTopK == 1)
    return success();
  if (experts % groups != 0 || experts / groups < scoreTop)
    return op->emitOpError()
           << "attribute 'groups' (" << groups << ") must split the " << experts
           << " experts into groups of " << scoreTop
           << " or more (group_score_top)";
  if (groupTopK > groups)
    return op->emitOpError() << "attribute 'group_top_k' (" << groupTopK
                             << ") must be at most 'groups' (" << groups << ")";
  if (topK > groupTopK * (experts / groups))
    return op->emitOpError()
           << "attribute 'top_k' (" << topK << ") must be at most the "
           << groupTopK * (experts / groups) << " experts of the " << groupTopK
           << " chosen groups";
  return success();
}

LogicalResult GateOp::verify() {
  if (failed(expectRank(*this, "logits", getLogits(), 2, "[tokens, experts]")))
    return failure();
  int64_t tokens = shapeOf(getLogits())[0], experts = shapeOf(getLogits())[1];
  int64_t topK = getTopK();
  if (topK > experts)
    return emitOpError() << "attribute 'top_k' must be at most the number of "
                            "experts ("
                         << experts << "), got " << topK;
  if (failed(verifyGateNormalization(*this, getNormLambdaAttr(),
                                     getNormEps().convertToDouble(),
                                     getLogits())) ||
      failed(expectPositive(*this, "scale", getScale().convertToDouble())) ||
      failed(verifyExpertGroups(*this, experts, topK, getGroups(),
                                getGroupTopK(), getGroupScoreTop())))
    return failure();
  if (failed(expectShape(*this, "probs", getProbs(), {tokens, experts})) ||
      failed(expectShape(*this, "weights", getWeights(), {tokens, topK})) ||
      failed(expectShape(*this, "indices", getIndices(), {tokens, topK})))
    return failure();
  if (getBias() &&
      (failed(expectShape(*this, "bias", getBias(), {experts})) ||
       failed(expectSameElementType(
           *this, {{"logits", getLogits()}, {"bias", getBias()}}))))
    return failure();
  return expectSameElementType(*this, {{"logits", getLogits()},
                                       {"probs", getProbs()},
                                       {"weights", getWeights()}});
}

LogicalResult GateNormOp::verify() {
  if (failed(expectRank(*this, "logits", getLogits(), 2, "[tokens, experts]")))
    return failure();
  return verifyGateNormalization(*this, getNormLambdaAttr(),
                                 getNormEps().convertToDouble(), getLogits());
}

LogicalResult DispatchOp::verify() {
  if (failed(verifyPlacedTokens(*this, getTokens(), getIndices(), getSlots(),
                                getBuffer())) ||
      failed(expectElementTypeOrBf16(*this, "tokens", getTokens(), "buffer",
                                     getBuffer())))
    return failure();
  int64_t tokens = shapeOf(getTokens())[0], topK = shapeOf(getIndices())[1];
  ArrayRef<int64_t> buffer = shapeOf(getBuffer());
  FailureOr<int64_t> capacity = verifyCapacity(
      *this, getCapacityFactorAttr(), getPriority(), tokens, topK, buffer[0]);
  if (failed(capacity))
    return failure();
  return expectShape(*this, "buffer", getBuffer(),
                     {buffer[0], *capacity, buffer[2]});
}

int64_t RouteOp::getCapacity() {
  int64_t tokens = shapeOf(getIndices())[0], topK = shapeOf(getIndices())[1];
  if (FloatAttr factor = getCapacityFactorAttr())
    return expertCapacity(factor.getValueAsDouble(), tokens, topK,
                          getExpertsAttr().getInt());
  return tokens;
}

LogicalResult RouteOp::verify() {
  if (failed(expectRank(*this, "indices", getIndices(), 2, "[tokens, top_k]")))
    return failure();
  int64_t tokens = shapeOf(getIndices())[0], topK = shapeOf(getIndices())[1];
  int64_t experts = getExpertsAttr().getInt();
  if (failed(expectChosenExperts(*this, topK)))
    return failure();
  if (experts < topK)
    return emitOpError() << "attribute 'experts' must be at least top_k = "
                         << topK << ", got " << experts;
  if (failed(verifyCapacity(*this, getCapacityFactorAttr(), getPriority(),
                            tokens, topK, experts)))
    return failure();
  int64_t ranks = getRanks();
  if (ranks < 1 || tokens % ranks != 0)
    return emitOpError() << "attribute 'ranks' must be positive and divide the "
                         << tokens << " tokens, got " << ranks;
  if (failed(expectShape(*this, "slots", getSlots(), {tokens, topK})))
    return failure();
  return expectShape(*this, "counts", getCounts(), {ranks, experts});
}

namespace {

/// moe.merge_runs and moe.split_runs: runs [ranks * experts, run_capacity,
/// hidden], queue [experts, capacity, hidden], counts [ranks, experts].
LogicalResult verifyRuns(Operation *op, Value runs, Value queue, Value counts) {
  if (failed(expectRank(op, "runs", runs, 3,
                        "[ranks * experts, run_capacity, hidden]")) ||
      failed(
          expectRank(op, "queue", queue, 3, "[experts, capacity, hidden]")) ||
      failed(expectRank(op, "counts", counts, 2, "[ranks, experts]")))
    return failure();
  int64_t ranks = shapeOf(counts)[0], experts = shapeOf(counts)[1];
  ArrayRef<int64_t> queueShape = shapeOf(queue), runsShape = shapeOf(runs);
  if (failed(expectShape(op, "queue", queue,
                         {experts, queueShape[1], queueShape[2]})) ||
      failed(expectShape(op, "runs", runs,
                         {ranks * experts, runsShape[1], queueShape[2]})))
    return failure();
  return expectSameElementType(op, {{"runs", runs}, {"queue", queue}});
}

} // namespace

LogicalResult MergeRunsOp::verify() {
  return verifyRuns(*this, getRuns(), getQueue(), getCounts());
}

LogicalResult SplitRunsOp::verify() {
  return verifyRuns(*this, getRuns(), getQueue(), getCounts());
}

LogicalResult PlaceOp::verify() {
  if (failed(verifyPlacedTokens(*this, getTokens(), getIndices(), getSlots(),
                                getBuffer())))
    return failure();
  return expectSameElementType(
      *this, {{"tokens", getTokens()}, {"buffer", getBuffer()}});
}

LogicalResult ExpertFfnOp::verify() {
  return verifyExpertFfnOperands(*this, getInput(), getGateProj(),
                                 getDownProj(), getProjections());
}

LogicalResult CombineOp::verify() {
  if (failed(verifyCombineOperands(*this, getExpertOutput(), getWeights(),
                                   getIndices(), "result", getResult())) ||
      failed(expectSameElementType(*this, {{"expert_output", getExpertOutput()},
                                           {"weights", getWeights()},
                                           {"result", getResult()}})))
    return failure();
  return expectShape(*this, "slots", getSlots(), shapeOf(getWeights()));
}

LogicalResult RoutingMetricsOp::verify() {
  if (failed(expectRank(*this, "probs", getProbs(), 2, "[tokens, experts]")) ||
      failed(expectRank(*this, "indices", getIndices(), 2, "[tokens, top_k]")))
    return failure();
  int64_t tokens = shapeOf(getProbs())[0], experts = shapeOf(getProbs())[1];
  int64_t topK = shapeOf(getIndices())[1];
  if (experts < 3)
    return emitOpError() << "'probs' must have at least 3 experts for the "
                            "Max2/Max3 ratio, got "
                         << experts;
  if (failed(expectShape(*this, "indices", getIndices(), {tokens, topK})) ||
      failed(expectTopKAtMostExperts(*this, "indices", topK, experts)))
    return failure();
  return expectShape(*this, "load", getLoad(), {experts});
}

LogicalResult ExpertSimilarityOp::verify() {
  if (failed(expectRank(*this, "gate_proj", getGateProj(), 3,
                        "[experts, ffn, hidden]")))
    return failure();
  ArrayRef<int64_t> shape = shapeOf(getGateProj());
  if (shape[0] < 2)
    return emitOpError() << "needs at least 2 experts, got " << shape[0];
  if (failed(expectShape(*this, "down_proj", getDownProj(),
                         {shape[0], shape[2], shape[1]})))
    return failure();
  return expectSameElementType(
      *this, {{"gate_proj", getGateProj()}, {"down_proj", getDownProj()}});
}

//===----------------------------------------------------------------------===//
// Auxiliary losses and their coefficients
//===----------------------------------------------------------------------===//

LogicalResult AuxLossOp::verify() {
  return verifyAuxLossOperands(*this, getProbs(), getIndices(), "result",
                               getResult());
}

LogicalResult PooledAuxLossOp::verify() {
  return verifyPooledAuxLossOperands(*this, getProbs(), "probs", getIndices(),
                                     "result", getResult());
}

LogicalResult ZLossOp::verify() {
  return verifyZLossOperands(*this, getLogits(), "result", getResult());
}

LogicalResult AdaptiveAuxCoeffOp::verify() {
  double xi = getXi().convertToDouble();
  double alphaMax = getAlphaMax().convertToDouble();
  double beta = getBeta().convertToDouble();
  if (failed(expectNonNegative(*this, "xi", xi)) ||
      failed(expectNonNegative(*this, "alpha_max", alphaMax)))
    return failure();
  if (!(beta >= 0 && beta <= 1))
    return emitOpError() << "attribute 'beta' must be in [0, 1], got " << beta;
  return success();
}

LogicalResult ExpertLoadOp::verify() {
  if (failed(expectRank(*this, "indices", getIndices(), 2, "[tokens, top_k]")))
    return failure();
  return expectTopKAtMostExperts(*this, "indices", shapeOf(getIndices())[1],
                                 shapeOf(getResult())[0]);
}

LogicalResult ExpertBiasUpdateOp::verify() {
  if (failed(expectRank(*this, "bias", getBias(), 1, "[experts]")) ||
      failed(expectShape(*this, "load", getLoad(), shapeOf(getBias()))))
    return failure();
  return expectNonNegative(*this, "rate", getRate().convertToDouble());
}

bool RopeOp::isNarrowableResult(unsigned) { return computesInF32(*this); }

/// The buffer, not the slots or the count.
bool DispatchOp::isNarrowableResult(unsigned resultIndex) {
  return resultIndex == 0 && computesInF32(*this);
}

//===----------------------------------------------------------------------===//
// Custom syntax
//===----------------------------------------------------------------------===//

/// `capacity_factor = <float>` or `dropless`.
static ParseResult parseCapacity(OpAsmParser &parser, FloatAttr &factor) {
  if (succeeded(parser.parseOptionalKeyword("dropless")))
    return success();
  double value;
  if (parser.parseOptionalKeyword("capacity_factor"))
    return parser.emitError(parser.getCurrentLocation(),
                            "expected 'capacity_factor = <float>' or "
                            "'dropless'");
  if (parser.parseEqual() || parser.parseFloat(value))
    return failure();
  factor = parser.getBuilder().getF64FloatAttr(value);
  return success();
}

static void printCapacity(OpAsmPrinter &printer, Operation *,
                          FloatAttr factor) {
  if (!factor) {
    printer << "dropless";
    return;
  }
  printer << "capacity_factor = ";
  printer.printFloat(factor.getValue());
}

#define GET_OP_CLASSES
#include "moe/MoeOps.cpp.inc"
