//===- MoeVjp.cpp - vector-Jacobian products of the moe ops ---------------===//
//
// DifferentiableOpInterface for every differentiable op: each builds its
// backward from the ops of MoeGradOps.td. Non-differentiable operands (ids,
// targets, indices, slots) get a null gradient. The same interface is
// attached to the upstream reshapes a model uses.
//
//===----------------------------------------------------------------------===//

#include "moe/MoeDialect.h"

#include "mlir/IR/Matchers.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectRegistry.h"

using namespace mlir;
using namespace mlir::moe;

/// Checks that `grad`, the cotangent of `op`'s result `name` that the
/// backward reads as it is, is absent or zero (autodiff passes zeros for a
/// result nothing differentiable reads).
static LogicalResult expectKeptForBackward(Operation *op, Value grad,
                                           StringRef name) {
  if (grad && !matchPattern(grad, m_AnyZeroFloat()))
    return op->emitOpError()
           << "'" << name
           << "' is kept for the backward, not differentiable; the output "
              "depends on it";
  return success();
}

//===----------------------------------------------------------------------===//
// Transformer ops
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(
      EmbeddingGradOp::create(b, getLoc(), getTable().getType(), getIds(),
                              resultGrads[0], getPaddingIdAttr()));
  operandGrads.push_back(Value());
  return success();
}

LogicalResult RmsNormOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                  SmallVectorImpl<Value> &operandGrads) {
  auto grad = RmsNormGradOp::create(b, getLoc(), getInput().getType(),
                                    getWeight().getType(), getInput(),
                                    getWeight(), resultGrads[0], getEpsAttr());
  llvm::append_range(operandGrads, grad->getResults());
  return success();
}

/// Shared by moe.linear and moe.router, which compute the same affine map.
static void buildAffineVjp(OpBuilder &b, Location loc, Value input,
                           Value weight, Value bias, Value resultGrad,
                           SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(
      LinearInputGradOp::create(b, loc, input.getType(), resultGrad, weight));
  operandGrads.push_back(
      LinearWeightGradOp::create(b, loc, weight.getType(), resultGrad, input));
  if (bias)
    operandGrads.push_back(
        BiasGradOp::create(b, loc, bias.getType(), resultGrad));
}

LogicalResult LinearOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                 SmallVectorImpl<Value> &operandGrads) {
  buildAffineVjp(b, getLoc(), getInput(), getWeight(), getBias(),
                 resultGrads[0], operandGrads);
  return success();
}

LogicalResult RopeOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                               SmallVectorImpl<Value> &operandGrads) {
  // A rotation's transpose is the rotation by the opposite angle.
  operandGrads.push_back(
      RopeOp::create(b, getLoc(), getType(), resultGrads[0], getThetaAttr(),
                     getRotaryDimAttr(), getScalingAttr(), getInterleavedAttr(),
                     getInverse() ? UnitAttr() : b.getUnitAttr()));
  return success();
}

LogicalResult AttentionOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  if (failed(expectKeptForBackward(*this, resultGrads[1], "lse")))
    return failure();
  auto grad = AttentionGradOp::create(
      b, getLoc(), gemmResultType(getQuery().getType()),
      gemmResultType(getKey().getType()), gemmResultType(getValue().getType()),
      getQuery(), getKey(), getValue(), getResult(), getLse(), resultGrads[0],
      getCausalAttr(), getWindowAttr());
  llvm::append_range(operandGrads, grad->getResults());
  // The sinks change only the probabilities, which lse carries: the
  // gradients above need nothing else.
  if (Value sinks = getSinks())
    operandGrads.push_back(
        AttentionSinksGradOp::create(b, getLoc(), sinks.getType(), sinks,
                                     getLse(), getResult(), resultGrads[0]));
  return success();
}

LogicalResult SwigluOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                 SmallVectorImpl<Value> &operandGrads) {
  auto grad = SwigluGradOp::create(b, getLoc(), getType(), getType(), getGate(),
                                   getUp(), resultGrads[0]);
  llvm::append_range(operandGrads, grad->getResults());
  return success();
}

LogicalResult SigmoidScaleOp::buildVjp(OpBuilder &b,
                                       ArrayRef<Value> resultGrads,
                                       SmallVectorImpl<Value> &operandGrads) {
  auto grad =
      SigmoidScaleGradOp::create(b, getLoc(), getType(), getLogit().getType(),
                                 getInput(), getLogit(), resultGrads[0]);
  llvm::append_range(operandGrads, grad->getResults());
  return success();
}

LogicalResult AddOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                              SmallVectorImpl<Value> &operandGrads) {
  operandGrads.append({resultGrads[0], resultGrads[0]});
  return success();
}

LogicalResult MulOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                              SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(
      MulOp::create(b, getLoc(), getType(), resultGrads[0], getRhs()));
  operandGrads.push_back(
      MulOp::create(b, getLoc(), getType(), resultGrads[0], getLhs()));
  return success();
}

LogicalResult ScaleOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(
      ScaleOp::create(b, getLoc(), getType(), resultGrads[0], getFactorAttr()));
  return success();
}

LogicalResult SliceOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(PadOp::create(b, getLoc(), getInput().getType(),
                                       resultGrads[0], getOffsetAttr()));
  return success();
}

LogicalResult PadOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                              SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(SliceOp::create(b, getLoc(), getInput().getType(),
                                         resultGrads[0], getOffsetAttr()));
  return success();
}

LogicalResult ConcatOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                 SmallVectorImpl<Value> &operandGrads) {
  auto grad = ConcatGradOp::create(b, getLoc(), getLhs().getType(),
                                   getRhs().getType(), resultGrads[0]);
  llvm::append_range(operandGrads, grad->getResults());
  return success();
}

LogicalResult CrossEntropyOp::buildVjp(OpBuilder &b,
                                       ArrayRef<Value> resultGrads,
                                       SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(CrossEntropyGradOp::create(
      b, getLoc(), getLogits().getType(), getLogits(), getTargets(),
      resultGrads[0], getDivisor(), getIgnoreIndexAttr()));
  // The targets and their count get none.
  operandGrads.push_back(Value());
  if (getDivisor())
    operandGrads.push_back(Value());
  return success();
}

//===----------------------------------------------------------------------===//
// Routing and experts
//===----------------------------------------------------------------------===//

LogicalResult RouterOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                 SmallVectorImpl<Value> &operandGrads) {
  buildAffineVjp(b, getLoc(), getTokens(), getWeight(), getBias(),
                 resultGrads[0], operandGrads);
  return success();
}

LogicalResult GateOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                               SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(GateGradOp::create(
      b, getLoc(), getLogits().getType(), getLogits(), getIndices(),
      resultGrads[0], resultGrads[1], getScoringAttr(), getNormLambdaAttr(),
      getNormEpsAttr(), getRenormalizeAttr(), getScaleAttr()));
  // The bias only chooses experts: piecewise constant, no gradient.
  if (getBias())
    operandGrads.push_back(Value());
  return success();
}

LogicalResult GateNormOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                   SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(GateNormGradOp::create(
      b, getLoc(), getLogits().getType(), getLogits(), resultGrads[0],
      getNormLambdaAttr(), getNormEpsAttr()));
  return success();
}

/// The gradient of tokens placed at `slots` (moe.dispatch, moe.place): a
/// gather of their rows. Which assignments are kept is piecewise constant
/// in the indices and the priority: no other operand gets a gradient.
static LogicalResult placedTokensVjp(OpBuilder &b, Operation *op, Value tokens,
                                     Value dBuffer, Value indices, Value slots,
                                     SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(DispatchGradOp::create(
      b, op->getLoc(), tokens.getType(), dBuffer, indices, slots));
  operandGrads.append(op->getNumOperands() - 1, Value());
  return success();
}

LogicalResult DispatchOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                   SmallVectorImpl<Value> &operandGrads) {
  return placedTokensVjp(b, *this, getTokens(), resultGrads[0], getIndices(),
                         getSlots(), operandGrads);
}

LogicalResult PlaceOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                SmallVectorImpl<Value> &operandGrads) {
  return placedTokensVjp(b, *this, getTokens(), resultGrads[0], getIndices(),
                         getSlots(), operandGrads);
}

// A merge and a split with the same counts move the same rows in opposite
// directions and zero the rest: each is the other's transpose.
LogicalResult MergeRunsOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(SplitRunsOp::create(b, getLoc(), getRuns().getType(),
                                             resultGrads[0], getCounts()));
  operandGrads.push_back(Value());
  return success();
}

LogicalResult SplitRunsOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(MergeRunsOp::create(b, getLoc(), getQueue().getType(),
                                             resultGrads[0], getCounts()));
  operandGrads.push_back(Value());
  return success();
}

LogicalResult ExpertFfnOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    SmallVectorImpl<Value> &operandGrads) {
  if (failed(expectKeptForBackward(*this, resultGrads[1], "projections")))
    return failure();
  auto grad = ExpertFfnGradOp::create(
      b, getLoc(), getInput().getType(), getGateProj().getType(),
      getUpProj().getType(), getDownProj().getType(), getInput(), getGateProj(),
      getUpProj(), getDownProj(), getProjections(), resultGrads[0]);
  llvm::append_range(operandGrads, grad->getResults());
  return success();
}

LogicalResult CombineOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                  SmallVectorImpl<Value> &operandGrads) {
  auto grad = CombineGradOp::create(b, getLoc(), getExpertOutput().getType(),
                                    getWeights().getType(), getExpertOutput(),
                                    getWeights(), getIndices(), getSlots(),
                                    resultGrads[0]);
  llvm::append_range(operandGrads, grad->getResults());
  operandGrads.append(2, Value()); // indices, slots
  return success();
}

LogicalResult AuxLossOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                  SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(
      AuxLossGradOp::create(b, getLoc(), getProbs().getType(), getKindAttr(),
                            getProbs(), getIndices(), resultGrads[0]));
  operandGrads.push_back(Value());
  return success();
}

LogicalResult PooledAuxLossOp::buildVjp(OpBuilder &b,
                                        ArrayRef<Value> resultGrads,
                                        SmallVectorImpl<Value> &operandGrads) {
  auto grad = PooledAuxLossGradOp::create(b, getLoc(), getProbs().getTypes(),
                                          getIndices(), resultGrads[0]);
  llvm::append_range(operandGrads, grad->getResults());
  operandGrads.append(getIndices().size(), Value());
  return success();
}

LogicalResult ZLossOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(ZLossGradOp::create(b, getLoc(), getLogits().getType(),
                                             getLogits(), resultGrads[0]));
  return success();
}

//===----------------------------------------------------------------------===//
// Upstream reshapes: the gradient is the inverse reshape.
//===----------------------------------------------------------------------===//

namespace {

struct ExpandShapeVjp
    : DifferentiableOpInterface::ExternalModel<ExpandShapeVjp,
                                               tensor::ExpandShapeOp> {
  LogicalResult buildVjp(Operation *op, OpBuilder &b,
                         ArrayRef<Value> resultGrads,
                         SmallVectorImpl<Value> &operandGrads) const {
    auto expand = cast<tensor::ExpandShapeOp>(op);
    operandGrads.push_back(tensor::CollapseShapeOp::create(
        b, op->getLoc(), expand.getSrcType(), resultGrads[0],
        expand.getReassociationIndices()));
    return success();
  }
};

struct CollapseShapeVjp
    : DifferentiableOpInterface::ExternalModel<CollapseShapeVjp,
                                               tensor::CollapseShapeOp> {
  LogicalResult buildVjp(Operation *op, OpBuilder &b,
                         ArrayRef<Value> resultGrads,
                         SmallVectorImpl<Value> &operandGrads) const {
    auto collapse = cast<tensor::CollapseShapeOp>(op);
    operandGrads.push_back(tensor::ExpandShapeOp::create(
        b, op->getLoc(), collapse.getSrcType(), resultGrads[0],
        collapse.getReassociationIndices()));
    return success();
  }
};

} // namespace

void mlir::moe::registerDifferentiableExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *context, tensor::TensorDialect *) {
    tensor::ExpandShapeOp::attachInterface<ExpandShapeVjp>(*context);
    tensor::CollapseShapeOp::attachInterface<CollapseShapeVjp>(*context);
  });
}
