//===- KernelCalls.cpp - each moe op as its kernel call -------------------===//
//
// The kernel of every op that one computes, with its arguments in the order
// of the kernels' headers: operand and result buffers, then the sizes of
// their static shapes and the op's attributes. A kernel that produces a 0-d
// result returns it. The shard collectives are kernels too (over the
// target's process group), for sum reductions and splits along axis 0.
//
//===----------------------------------------------------------------------===//

#include "KernelCall.h"

#include "moe/MoeDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <cstdio>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::target;
using llvm::formatv;

ArrayRef<int64_t> target::shapeOf(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}

int64_t target::numElements(Value value) {
  return cast<RankedTensorType>(value.getType()).getNumElements();
}

std::string target::literal(double value) {
  if (std::isnan(value))
    return "NAN";
  if (std::isinf(value))
    return value > 0 ? "INFINITY" : "-INFINITY";
  // %.17g round-trips a double; a float literal needs no suffix because
  // every use converts explicitly. An integral value gets ".0" so that it
  // stays a double (std::min(double, 1) would not compile).
  char text[32];
  std::snprintf(text, sizeof(text), "%.17g", value);
  std::string result = text;
  if (result.find_first_of(".e") == std::string::npos)
    result += ".0";
  return result;
}

KernelArg target::buffer(Value value) {
  return {KernelArg::Kind::Buffer, value, "", {}};
}
KernelArg target::scalar(Value value) {
  return {KernelArg::Kind::Scalar, value, "", {}};
}
KernelArg target::expression(std::string text) {
  return {KernelArg::Kind::Literal, Value(), std::move(text), {}};
}
KernelArg target::size(int64_t value) {
  return expression(std::to_string(value));
}
KernelArg target::real(double value) { return expression(literal(value)); }
KernelArg target::real(const APFloat &value) {
  return real(value.convertToDouble());
}
KernelArg target::flag(bool value) {
  return expression(value ? "true" : "false");
}
KernelArg target::rowCounts(Value expertBuffer) {
  return {KernelArg::Kind::RowCounts, expertBuffer, "", {}};
}
KernelArg target::newRowCounts(Value expertBuffer) {
  return {KernelArg::Kind::NewRowCounts, expertBuffer, "", {}};
}
KernelArg target::bufferList(ValueRange values) {
  return {KernelArg::Kind::BufferList, Value(), "", llvm::to_vector(values)};
}
KernelArg target::outputBufferList(ValueRange values) {
  return {KernelArg::Kind::OutputBufferList, Value(), "",
          llvm::to_vector(values)};
}
KernelArg target::sizeList(ValueRange values) {
  return {KernelArg::Kind::SizeList, Value(), "", llvm::to_vector(values)};
}

namespace {

/// The elements of `input` that each element of moe.sigmoid_scale's
/// `logit` gates: a row's, or (a logit an element) its own.
int64_t gatedWidth(Value input, Value logit) {
  return shapeOf(logit) == shapeOf(input) ? 1 : shapeOf(input).back();
}

/// An optional operand's buffer, or a null pointer without one.
KernelArg optionalBuffer(Value value) {
  return value ? buffer(value) : expression("nullptr");
}

int64_t dim(Value value, int64_t axis) {
  ArrayRef<int64_t> shape = shapeOf(value);
  return shape[axis < 0 ? axis + shape.size() : axis];
}

/// The heads of a [..., heads, width] value as moe.concat reads it: its
/// second-to-last dimension, or 1 for a vector.
int64_t headsOf(Value value) {
  return shapeOf(value).size() >= 2 ? dim(value, -2) : 1;
}

/// `GateConfig{...}`; the scoring, the scale and the expert groups are
/// spelled only where one of them, or one after them, is not the default
/// (softmax, 1, 1 and 1).
KernelArg gateConfig(int64_t topK, GateScoring scoring, FloatAttr lambda,
                     APFloat eps, bool renormalize, APFloat scale,
                     int64_t groups = 1, int64_t groupTopK = 1,
                     int64_t groupScoreTop = 2) {
  double factor = scale.convertToDouble();
  bool grouped = groups != 1 || groupTopK != 1;
  std::string tail;
  if (scoring != GateScoring::softmax || factor != 1 || grouped)
    tail = scoring == GateScoring::sigmoid ? ", GateScoring::Sigmoid"
                                           : ", GateScoring::Softmax";
  if (factor != 1 || grouped)
    tail += ", " + literal(factor);
  if (grouped)
    tail += formatv(", {0}, {1}", groups, groupTopK).str();
  if (grouped && groupScoreTop != 2)
    tail += formatv(", {0}", groupScoreTop).str();
  return expression(formatv("GateConfig{{{0}, {1}, {2}, {3}, {4}{5}}", topK,
                            lambda ? "true" : "false",
                            literal(lambda ? lambda.getValueAsDouble() : 0.0),
                            literal(eps.convertToDouble()),
                            renormalize ? "true" : "false", tail)
                        .str());
}

/// A cross-entropy's counted targets (`CountedTargets{...}`).
KernelArg countedTargets(std::optional<int64_t> ignoreIndex) {
  return expression(formatv("CountedTargets{{{0}, {1}}",
                            ignoreIndex ? "true" : "false",
                            ignoreIndex.value_or(0))
                        .str());
}

/// The keys attention's queries see (`AttentionMask{causal}`, or
/// `AttentionMask{causal, window}` with a window).
KernelArg attentionMaskArg(moert::AttentionMask mask) {
  std::string window = mask.window ? formatv(", {0}", mask.window).str() : "";
  return expression(
      formatv("AttentionMask{{{0}{1}}", mask.causal ? "true" : "false", window)
          .str());
}

KernelArg lrDecay(LrDecay decay) {
  switch (decay) {
  case LrDecay::cosine:
    return expression("LrDecay::Cosine");
  case LrDecay::linear:
    return expression("LrDecay::Linear");
  case LrDecay::constant:
    return expression("LrDecay::Constant");
  }
  llvm_unreachable("unknown learning-rate decay");
}

/// RoPE's scaling (`RopeScaling{...}`; `RopeScaling{}` without one).
KernelArg ropeScaling(RopeScalingAttr attr) {
  if (!attr)
    return expression("RopeScaling{}");
  moert::RopeScaling scaling = ropeScalingOf(attr);
  const char *kind = scaling.kind == moert::RopeKind::Linear   ? "Linear"
                     : scaling.kind == moert::RopeKind::Llama3 ? "Llama3"
                                                               : "Yarn";
  return expression(
      formatv("RopeScaling{{RopeKind::{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, "
              "{8}}",
              kind, literal(scaling.factor), literal(scaling.lowFreqFactor),
              literal(scaling.highFreqFactor),
              literal(scaling.originalPositions), literal(scaling.betaFast),
              literal(scaling.betaSlow), scaling.truncate ? "true" : "false",
              literal(scaling.attentionFactor))
          .str());
}

/// The grid axes of a collective (`GridAxes{mask}`); the runtime orders a
/// group's ranks by increasing axes, so other orders are not supported.
FailureOr<KernelArg> gridAxes(ArrayRef<int16_t> axes) {
  int32_t mask = 0;
  int16_t previous = -1;
  for (int16_t axis : axes) {
    if (axis <= previous || axis >= 31)
      return failure();
    mask |= int32_t(1) << axis;
    previous = axis;
  }
  if (mask == 0)
    return failure();
  return expression(formatv("GridAxes{{{0}}", mask).str());
}

/// The element types a runtime collective is overloaded for: f32 for
/// activations and gradients, and for some also the integers of routing
/// (i64 counts, i32 slots).
enum class CollectiveElements { F32, F32OrI64, F32OrIndices };

bool collectiveTakes(CollectiveElements accepted, Value value) {
  Type element = getElementTypeOrSelf(value);
  switch (accepted) {
  case CollectiveElements::F32:
    return element.isF32();
  case CollectiveElements::F32OrI64:
    return element.isF32() || element.isSignlessInteger(64);
  case CollectiveElements::F32OrIndices:
    return element.isF32() || element.isSignlessInteger(64) ||
           element.isSignlessInteger(32);
  }
  llvm_unreachable("unknown collective element types");
}

KernelArg auxKind(AuxLossKind kind) {
  return expression(kind == AuxLossKind::skywork ? "AuxLossKind::Skywork"
                                                 : "AuxLossKind::Switch");
}

KernelCall call(StringRef kernel, SmallVector<KernelArg> args,
                Value scalarResult = Value()) {
  return {kernel.str(), std::move(args), scalarResult};
}

/// linear and router: y[rows, out] = x[rows, in] weight[out, in]^T (+ bias).
KernelCall linearCall(Operation *op) {
  Value input = op->getOperand(0), weight = op->getOperand(1);
  int64_t inFeatures = dim(weight, 1), outFeatures = dim(weight, 0);
  return call(
      "linear",
      {buffer(input), buffer(weight),
       optionalBuffer(op->getNumOperands() > 2 ? op->getOperand(2) : Value()),
       size(rowsOf(input)), size(inFeatures), size(outFeatures),
       buffer(op->getResult(0))});
}

} // namespace

FailureOr<KernelCall> target::describeKernelCall(Operation *op) {
  auto in = [&](unsigned i) { return buffer(op->getOperand(i)); };
  auto res = [&](unsigned i) { return buffer(op->getResult(i)); };
  return llvm::TypeSwitch<Operation *, FailureOr<KernelCall>>(op)
      .Case([&](EmbeddingOp o) {
        return call("embedding", {in(0), size(dim(o.getTable(), 0)),
                                  size(dim(o.getTable(), 1)), in(1),
                                  size(numElements(o.getIds())), res(0)});
      })
      .Case([&](EmbeddingGradOp o) {
        return call("embeddingGrad",
                    {in(0), size(numElements(o.getIds())), in(1),
                     size(dim(o.getDTable(), 0)), size(dim(o.getDTable(), 1)),
                     size(o.getPaddingId().value_or(-1)), res(0)});
      })
      .Case([&](RmsNormOp o) {
        int64_t hidden = dim(o.getInput(), -1);
        return call("rmsNorm", {in(0), in(1), size(rowsOf(o.getInput())),
                                size(hidden), real(o.getEps()), res(0)});
      })
      .Case([&](RmsNormGradOp o) {
        int64_t hidden = dim(o.getInput(), -1);
        return call("rmsNormGrad",
                    {in(0), in(1), in(2), size(rowsOf(o.getInput())),
                     size(hidden), real(o.getEps()), res(0), res(1)});
      })
      .Case<LinearOp, RouterOp>([&](Operation *) { return linearCall(op); })
      .Case([&](LinearInputGradOp o) {
        int64_t inFeatures = dim(o.getWeight(), 1),
                outFeatures = dim(o.getWeight(), 0);
        return call("linearInputGrad",
                    {in(0), in(1), size(rowsOf(o.getDResult())),
                     size(inFeatures), size(outFeatures), res(0)});
      })
      .Case([&](LinearWeightGradOp o) {
        int64_t inFeatures = dim(o.getDWeight(), 1),
                outFeatures = dim(o.getDWeight(), 0);
        return call("linearWeightGrad",
                    {in(0), in(1), size(rowsOf(o.getInput())), size(inFeatures),
                     size(outFeatures), res(0)});
      })
      .Case([&](BiasGradOp o) {
        int64_t outFeatures = dim(o.getDBias(), 0);
        return call("biasGrad", {in(0), size(rowsOf(o.getDResult())),
                                 size(outFeatures), res(0)});
      })
      .Case([&](RopeOp o) {
        Value x = o.getInput();
        return call("rope",
                    {in(0), size(dim(x, 0)), size(dim(x, 1)), size(dim(x, 2)),
                     size(dim(x, 3)), size(o.getRotatedDims()),
                     real(o.getTheta()), ropeScaling(o.getScalingAttr()),
                     flag(o.getInverse()), flag(o.getInterleaved()), res(0)});
      })
      .Case([&](AttentionOp o) {
        Value q = o.getQuery();
        return call("attention",
                    {in(0), in(1), in(2), optionalBuffer(o.getSinks()),
                     size(dim(q, 0)), size(dim(q, 1)), size(dim(q, 2)),
                     size(dim(o.getKey(), 2)), size(dim(q, 3)),
                     attentionMaskArg(attentionMask(o)), res(0), res(1)});
      })
      .Case([&](AttentionGradOp o) {
        Value q = o.getQuery();
        return call("attentionGrad",
                    {in(0), in(1), in(2), in(3), in(4), in(5), size(dim(q, 0)),
                     size(dim(q, 1)), size(dim(q, 2)), size(dim(o.getKey(), 2)),
                     size(dim(q, 3)), attentionMaskArg(attentionMask(o)),
                     res(0), res(1), res(2)});
      })
      .Case([&](AttentionSinksGradOp o) {
        Value out = o.getOutput();
        return call("attentionSinksGrad",
                    {in(0), in(1), in(2), in(3), size(dim(out, 0)),
                     size(dim(out, 1)), size(dim(out, 2)), size(dim(out, 3)),
                     res(0)});
      })
      .Case([&](SwigluOp o) {
        return call("swiglu",
                    {in(0), in(1), size(numElements(o.getGate())), res(0)});
      })
      .Case([&](SwigluGradOp o) {
        return call("swigluGrad",
                    {in(0), in(1), in(2), size(numElements(o.getGate())),
                     res(0), res(1)});
      })
      .Case([&](SigmoidScaleOp o) {
        return call("sigmoidScale",
                    {in(0), in(1), size(numElements(o.getLogit())),
                     size(gatedWidth(o.getInput(), o.getLogit())), res(0)});
      })
      .Case([&](SigmoidScaleGradOp o) {
        return call("sigmoidScaleGrad",
                    {in(0), in(1), in(2), size(numElements(o.getLogit())),
                     size(gatedWidth(o.getInput(), o.getLogit())), res(0),
                     res(1)});
      })
      .Case<AddOp, MulOp>([&](auto o) {
        return call(isa<AddOp>(op) ? "add" : "mul",
                    {in(0), in(1), size(numElements(o.getLhs())), res(0)});
      })
      .Case([&](SliceOp o) {
        return call("slice", {in(0), size(rowsOf(o.getInput())),
                              size(dim(o.getInput(), -1)), size(o.getOffset()),
                              size(dim(o, -1)), res(0)});
      })
      .Case([&](PadOp o) {
        return call("pad", {in(0), size(rowsOf(o.getInput())),
                            size(dim(o.getInput(), -1)), size(o.getOffset()),
                            size(dim(o, -1)), res(0)});
      })
      .Case([&](ConcatOp o) {
        return call("concat",
                    {in(0), in(1), size(rowsOf(o)), size(headsOf(o)),
                     size(headsOf(o.getLhs())), size(dim(o.getLhs(), -1)),
                     size(headsOf(o.getRhs())), size(dim(o.getRhs(), -1)),
                     res(0)});
      })
      .Case([&](ConcatGradOp o) {
        Value dResult = o.getDResult();
        return call("concatGrad",
                    {in(0), size(rowsOf(dResult)), size(headsOf(dResult)),
                     size(headsOf(o.getDLhs())), size(dim(o.getDLhs(), -1)),
                     size(headsOf(o.getDRhs())), size(dim(o.getDRhs(), -1)),
                     res(0), res(1)});
      })
      .Case([&](ScaleOp o) {
        return call("scale", {in(0), real(o.getFactor()),
                              size(numElements(o.getInput())), res(0)});
      })
      .Case<CrossEntropyOp, CrossEntropyGradOp>([&](auto o) {
        int64_t vocab = dim(o.getLogits(), -1);
        int64_t rows = rowsOf(o.getLogits());
        // Without a divisor the loss is the mean over all rows.
        SmallVector<KernelArg> args = {in(0),
                                       in(1),
                                       size(rows),
                                       size(vocab),
                                       countedTargets(o.getIgnoreIndex()),
                                       o.getDivisor()
                                           ? scalar(o.getDivisor())
                                           : real(static_cast<double>(rows))};
        if constexpr (std::is_same_v<decltype(o), CrossEntropyOp>) {
          return call("crossEntropy", args, o.getResult());
        } else {
          args.append({scalar(o.getDLoss()), res(0)});
          return call("crossEntropyGrad", args);
        }
      })
      .Case([&](CountTargetsOp o) {
        return call("countTargets",
                    {in(0), size(numElements(o.getTargets())),
                     countedTargets(o.getIgnoreIndex())},
                    o.getResult());
      })
      .Case([&](GateOp o) {
        Value logits = o.getLogits();
        return call(
            "gate",
            {in(0), optionalBuffer(o.getBias()), size(dim(logits, 0)),
             size(dim(logits, 1)),
             gateConfig(o.getTopK(), o.getScoring(), o.getNormLambdaAttr(),
                        o.getNormEps(), o.getRenormalize(), o.getScale(),
                        o.getGroups(), o.getGroupTopK(), o.getGroupScoreTop()),
             res(0), res(1), res(2)});
      })
      .Case([&](GateGradOp o) {
        Value logits = o.getLogits();
        return call("gateGrad",
                    {in(0), in(1), size(dim(logits, 0)), size(dim(logits, 1)),
                     gateConfig(dim(o.getIndices(), 1), o.getScoring(),
                                o.getNormLambdaAttr(), o.getNormEps(),
                                o.getRenormalize(), o.getScale()),
                     in(2), in(3), res(0)});
      })
      .Case([&](GateNormOp o) {
        Value logits = o.getLogits();
        return call("gateNorm",
                    {in(0), size(dim(logits, 0)), size(dim(logits, 1)),
                     real(o.getNormLambda()), real(o.getNormEps()), res(0)});
      })
      .Case([&](GateNormGradOp o) {
        Value logits = o.getLogits();
        return call("gateNormGrad",
                    {in(0), in(1), size(dim(logits, 0)), size(dim(logits, 1)),
                     real(o.getNormLambda()), real(o.getNormEps()), res(0)});
      })
      .Case([&](DispatchOp o) {
        Value buffer = o.getBuffer();
        return call("dispatch",
                    {in(0), in(1), optionalBuffer(o.getPriority()),
                     size(dim(o.getTokens(), 0)), size(dim(o.getTokens(), 1)),
                     size(dim(o.getIndices(), 1)), size(dim(buffer, 0)),
                     size(dim(buffer, 1)), res(0), res(1), newRowCounts(buffer),
                     res(2)});
      })
      .Case([&](RouteOp o) {
        Value indices = o.getIndices();
        return call("route", {buffer(indices), optionalBuffer(o.getPriority()),
                              size(dim(indices, 0)), size(dim(indices, 1)),
                              size(o.getExperts()), size(o.getCapacity()),
                              size(o.getRanks()), res(0), res(1), res(2)});
      })
      .Case([&](MergeRunsOp o) {
        Value runs = o.getRuns(), queue = o.getQueue();
        return call("mergeRuns", {in(0), in(1), size(dim(o.getCounts(), 0)),
                                  size(dim(queue, 0)), size(dim(runs, 1)),
                                  size(dim(queue, 1)), size(dim(queue, 2)),
                                  res(0), newRowCounts(queue)});
      })
      .Case([&](SplitRunsOp o) {
        Value runs = o.getRuns(), queue = o.getQueue();
        return call("splitRuns",
                    {in(0), in(1), size(dim(o.getCounts(), 0)),
                     size(dim(queue, 0)), size(dim(queue, 1)),
                     size(dim(runs, 1)), size(dim(queue, 2)), res(0)});
      })
      .Case([&](PlaceOp o) {
        Value buffer = o.getBuffer();
        return call("place",
                    {in(0), in(1), in(2), size(dim(o.getTokens(), 0)),
                     size(dim(o.getTokens(), 1)), size(dim(o.getIndices(), 1)),
                     size(dim(buffer, 0)), size(dim(buffer, 1)), res(0)});
      })
      .Case([&](shard::AllGatherOp o) -> FailureOr<KernelCall> {
        FailureOr<KernelArg> axes = gridAxes(o.getGridAxes());
        if (failed(axes) || o.getGatherAxis() != 0 ||
            !collectiveTakes(CollectiveElements::F32OrIndices, o.getInput()))
          return failure();
        return call("allGather",
                    {*axes, in(0), size(numElements(o.getInput())), res(0)});
      })
      .Case([&](shard::AllReduceOp o) -> FailureOr<KernelCall> {
        FailureOr<KernelArg> axes = gridAxes(o.getGridAxes());
        if (failed(axes) || o.getReduction() != shard::ReductionKind::Sum ||
            !collectiveTakes(CollectiveElements::F32OrI64, o.getInput()))
          return failure();
        return call("allReduceSum",
                    {*axes, in(0), size(numElements(o.getInput())), res(0)});
      })
      .Case([&](shard::ReduceScatterOp o) -> FailureOr<KernelCall> {
        FailureOr<KernelArg> axes = gridAxes(o.getGridAxes());
        if (failed(axes) || o.getScatterAxis() != 0 ||
            o.getReduction() != shard::ReductionKind::Sum ||
            !collectiveTakes(CollectiveElements::F32, o.getInput()))
          return failure();
        return call("reduceScatterSum",
                    {*axes, in(0), size(numElements(o.getResult())), res(0)});
      })
      .Case([&](shard::AllToAllOp o) -> FailureOr<KernelCall> {
        // Blocks along axis 0 in both directions: contiguous blocks. The
        // last two axes are the segments whose zero rows stay home.
        ArrayRef<int64_t> shape = shapeOf(o.getInput());
        FailureOr<KernelArg> axes = gridAxes(o.getGridAxes());
        if (failed(axes) || o.getSplitAxis() != 0 || o.getConcatAxis() != 0 ||
            shape.size() < 2 ||
            !collectiveTakes(CollectiveElements::F32, o.getInput()))
          return failure();
        return call("allToAll",
                    {*axes, in(0), size(numElements(o.getResult())),
                     size(shape.size() > 2 ? dim(o.getInput(), -2) : 1),
                     size(dim(o.getInput(), -1)), res(0)});
      })
      .Case([&](shard::AllSliceOp o) -> FailureOr<KernelCall> {
        // `outer` groups of one block per rank along the sliced axis.
        int64_t axis = o.getSliceAxis().getSExtValue();
        ArrayRef<int64_t> shape = shapeOf(o.getResult());
        FailureOr<KernelArg> axes = gridAxes(o.getGridAxes());
        if (failed(axes) ||
            !collectiveTakes(CollectiveElements::F32OrIndices, o.getInput()))
          return failure();
        return call("allSlice",
                    {*axes, in(0),
                     size(ShapedType::getNumElements(shape.take_front(axis))),
                     size(ShapedType::getNumElements(shape.drop_front(axis))),
                     res(0)});
      })
      .Case([&](DispatchGradOp o) {
        Value buffer = o.getDBuffer();
        return call("dispatchGrad",
                    {in(0), in(1), in(2), size(dim(o.getIndices(), 0)),
                     size(dim(buffer, 2)), size(dim(o.getIndices(), 1)),
                     size(dim(buffer, 0)), size(dim(buffer, 1)), res(0)});
      })
      .Case([&](ExpertFfnOp o) {
        Value x = o.getInput();
        return call("expertFfn",
                    {in(0), in(1), in(2), in(3), rowCounts(x), size(dim(x, 0)),
                     size(dim(x, 1)), size(dim(x, 2)),
                     size(dim(o.getGateProj(), 1)), res(0), res(1)});
      })
      .Case([&](ExpertFfnGradOp o) {
        Value x = o.getInput();
        return call("expertFfnGrad",
                    {in(0), in(1), in(2), in(3), in(4), in(5), rowCounts(x),
                     size(dim(x, 0)), size(dim(x, 1)), size(dim(x, 2)),
                     size(dim(o.getGateProj(), 1)), res(0), res(1), res(2),
                     res(3)});
      })
      .Case([&](CombineOp o) {
        Value buffer = o.getExpertOutput();
        return call("combine",
                    {in(0), in(1), in(2), in(3), size(dim(o.getWeights(), 0)),
                     size(dim(o.getWeights(), 1)), size(dim(buffer, 0)),
                     size(dim(buffer, 1)), size(dim(buffer, 2)), res(0)});
      })
      .Case([&](CombineGradOp o) {
        Value buffer = o.getExpertOutput();
        return call("combineGrad",
                    {in(0), in(1), in(2), in(3), in(4),
                     size(dim(o.getWeights(), 0)), size(dim(o.getWeights(), 1)),
                     size(dim(buffer, 0)), size(dim(buffer, 1)),
                     size(dim(buffer, 2)), res(0), res(1)});
      })
      .Case([&](AuxLossOp o) {
        return call("auxLoss",
                    {auxKind(o.getKind()), in(0), in(1),
                     size(dim(o.getProbs(), 0)), size(dim(o.getProbs(), 1)),
                     size(dim(o.getIndices(), 1))},
                    o.getResult());
      })
      .Case([&](AuxLossGradOp o) {
        return call("auxLossGrad",
                    {auxKind(o.getKind()), in(0), in(1),
                     size(dim(o.getProbs(), 0)), size(dim(o.getProbs(), 1)),
                     size(dim(o.getIndices(), 1)), scalar(o.getDLoss()),
                     res(0)});
      })
      .Case([&](ZLossOp o) {
        return call(
            "zLoss",
            {in(0), size(dim(o.getLogits(), 0)), size(dim(o.getLogits(), 1))},
            o.getResult());
      })
      .Case([&](ZLossGradOp o) {
        return call("zLossGrad", {in(0), size(dim(o.getLogits(), 0)),
                                  size(dim(o.getLogits(), 1)),
                                  scalar(o.getDLoss()), res(0)});
      })
      .Case([&](RoutingMetricsOp o) {
        Value probs = o.getProbs();
        return call("routingMetrics",
                    {in(0), in(1), in(2), size(dim(probs, 0)),
                     size(dim(probs, 1)), size(dim(o.getIndices(), 1)), res(0),
                     res(1), res(2), res(3)});
      })
      .Case([&](ExpertSimilarityOp o) {
        Value gateProj = o.getGateProj();
        return call("expertSimilarity",
                    {in(0), in(1), in(2), size(dim(gateProj, 0)),
                     size(dim(gateProj, 1)), size(dim(gateProj, 2))},
                    o.getResult());
      })
      .Case([&](AdaptiveAuxCoeffOp o) {
        return call("adaptiveAuxCoeff",
                    {scalar(o.getAlpha()), scalar(o.getDropped()),
                     size(o.getAssignments()), real(o.getXi()),
                     real(o.getAlphaMax()), real(o.getBeta())},
                    o.getResult());
      })
      .Case([&](ExpertLoadOp o) {
        return call("expertLoad", {in(0), size(numElements(o.getIndices())),
                                   size(dim(o.getResult(), 0)), res(0)});
      })
      .Case([&](ExpertBiasUpdateOp o) {
        return call("expertBiasUpdate",
                    {in(0), in(1), size(dim(o.getBias(), 0)), real(o.getRate()),
                     res(0)});
      })
      .Case([&](LrScheduleOp o) {
        return call("lrSchedule",
                    {scalar(o.getStep()), real(o.getMaxLr()),
                     real(o.getMinLr()), size(o.getWarmupStepsAttr().getInt()),
                     size(o.getDecayStepsAttr().getInt()),
                     lrDecay(o.getDecay())},
                    o.getResult());
      })
      .Case([&](PooledAuxLossOp o) {
        return call("pooledAuxLoss",
                    {bufferList(o.getProbs()), bufferList(o.getIndices()),
                     sizeList(o.getIndices()), size(o.getProbs().size()),
                     size(dim(o.getProbs()[0], 1)),
                     size(dim(o.getIndices()[0], 1))},
                    o.getResult());
      })
      .Case([&](PooledAuxLossGradOp o) {
        return call("pooledAuxLossGrad",
                    {bufferList(o.getIndices()), sizeList(o.getIndices()),
                     size(o.getIndices().size()),
                     size(dim(o.getDProbs()[0], 1)),
                     size(dim(o.getIndices()[0], 1)), scalar(o.getDLoss()),
                     outputBufferList(o.getDProbs())});
      })
      .Case([&](GlobalNormOp o) {
        return call("globalNorm",
                    {bufferList(o.getTensors()), sizeList(o.getTensors()),
                     size(o.getTensors().size())},
                    o.getResult());
      })
      .Case([&](AdamWOp o) {
        return call(
            "adamw",
            {in(0), in(1), in(2), in(3), size(numElements(o.getParam())),
             scalar(o.getLr()), scalar(o.getGradNorm()), scalar(o.getStep()),
             expression(formatv("AdamWConfig{{{0}, {1}, {2}, {3}, {4}}",
                                literal(o.getBeta1().convertToDouble()),
                                literal(o.getBeta2().convertToDouble()),
                                literal(o.getEps().convertToDouble()),
                                literal(o.getWeightDecay().convertToDouble()),
                                literal(o.getMaxGradNorm().convertToDouble()))
                            .str()),
             res(0), res(1), res(2)});
      })
      .Case([&](arith::AddIOp o) -> FailureOr<KernelCall> {
        if (!getElementTypeOrSelf(o.getType()).isSignlessInteger(64))
          return failure();
        return call("addInt64",
                    {in(0), in(1), size(numElements(o.getLhs())), res(0)});
      })
      .Case<arith::TruncFOp, arith::ExtFOp>([&](Operation *) {
        // One name; the buffers' types pick f32 -> bf16 or bf16 -> f32.
        return call("convert",
                    {in(0), size(numElements(op->getOperand(0))), res(0)});
      })
      .Default([&](Operation *) { return failure(); });
}
