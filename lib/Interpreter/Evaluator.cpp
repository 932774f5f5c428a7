//===- Evaluator.cpp - evaluate moe-dialect IR naively --------------------===//

#include "moe/Interpreter/Evaluator.h"
#include "EvaluatorUtils.h"
#include "moe/Interpreter/GradKernels.h"
#include "moe/Interpreter/OptimizerKernels.h"
#include "moe/Interpreter/ReferenceKernels.h"
#include "moe/MoeDialect.h"
#include "moert/Error.h"
#include "moert/GridGroups.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <optional>

using namespace mlir;
using moe::ref::Tensor;
using namespace mlir::moe::evaluator;

FailureOr<moe::ref::DType> moe::dtypeOf(Type elementType) {
  if (elementType.isF32())
    return ref::DType::F32;
  if (elementType.isF64())
    return ref::DType::F64;
  if (elementType.isBF16())
    return ref::DType::BF16;
  if (elementType.isSignlessInteger(32))
    return ref::DType::I32;
  if (elementType.isSignlessInteger(64))
    return ref::DType::I64;
  return failure();
}

namespace {

std::optional<double> normLambdaOf(FloatAttr lambda) {
  if (lambda)
    return lambda.getValueAsDouble();
  return std::nullopt;
}

moert::LrDecay lrDecayOf(mlir::moe::LrDecay decay) {
  switch (decay) {
  case mlir::moe::LrDecay::cosine:
    return moert::LrDecay::Cosine;
  case mlir::moe::LrDecay::linear:
    return moert::LrDecay::Linear;
  case mlir::moe::LrDecay::constant:
    return moert::LrDecay::Constant;
  }
  llvm_unreachable("unknown learning-rate decay");
}

moe::ref::AuxLossKind auxLossKindOf(mlir::moe::AuxLossKind kind) {
  return kind == mlir::moe::AuxLossKind::skywork
             ? moe::ref::AuxLossKind::Skywork
             : moe::ref::AuxLossKind::Switch;
}

moe::ref::DType dtypeOfValue(Value value) {
  return *moe::dtypeOf(getElementTypeOrSelf(value.getType()));
}

/// Evaluates the ops of one function body.
class FunctionRun {
public:
  FunctionRun(llvm::StringMap<Tensor> &globals,
              moe::ref::Communicator *communicator)
      : globals(globals), communicator(communicator) {}

  FailureOr<std::vector<Tensor>> run(func::FuncOp func,
                                     const std::vector<Tensor> &arguments);

private:
  LogicalResult evaluate(Operation *op);
  const Tensor &get(Value value) { return values.at(value); }
  /// Kernels compute in double; the value gets its type's precision here,
  /// once (a kernel reading bf16 operands still returns an f32 result).
  void set(Value value, Tensor tensor) {
    tensor.dtype = dtypeOfValue(value);
    tensor.roundToDType();
    values[value] = std::move(tensor);
  }

  /// An expert weight as the expert's GEMMs read it: the value itself, or
  /// for f32 weights of bf16 GEMMs (moe-mixed-precision
  /// weight-copies=per-expert) a copy in `rounded`, rounded as
  /// arith.truncf rounds them.
  const Tensor &expertWeight(Value weight, Value input,
                             std::optional<Tensor> &rounded) {
    const Tensor &tensor = get(weight);
    if (tensor.dtype != moe::ref::DType::F32 ||
        get(input).dtype != moe::ref::DType::BF16)
      return tensor;
    rounded = tensor;
    rounded->dtype = moe::ref::DType::BF16;
    rounded->roundToDType();
    return *rounded;
  }

  std::vector<const Tensor *> tensorsOf(ValueRange range) {
    std::vector<const Tensor *> tensors;
    for (Value value : range)
      tensors.push_back(&get(value));
    return tensors;
  }

  /// A cross-entropy's counted positions and divisor.
  moe::ref::LossTargets lossTargets(std::optional<int64_t> ignoreIndex,
                                    Value divisor) {
    moe::ref::LossTargets counted{ignoreIndex, std::nullopt};
    if (divisor)
      counted.divisor = get(divisor).data[0];
    return counted;
  }

  Tensor evaluateFused(mlir::moe::FusedElementwiseOp op);
  /// Evaluates a collective of the shard dialect.
  LogicalResult evaluateCollective(Operation *op);

  llvm::StringMap<Tensor> &globals;
  moe::ref::Communicator *communicator;
  llvm::DenseMap<Value, Tensor> values;
};

LogicalResult FunctionRun::evaluateCollective(Operation *op) {
  auto gridName = op->getAttrOfType<FlatSymbolRefAttr>("grid");
  auto grid = SymbolTable::lookupNearestSymbolFrom<shard::GridOp>(op, gridName);
  if (!grid)
    return op->emitError() << "no shard.grid named " << gridName;
  std::vector<int64_t> shape = grid.getShape().vec();
  if (!communicator)
    return missingGroupError(op, "'" + op->getName().getStringRef() + "'",
                             shape);
  if (ShapedType::getNumElements(shape) != communicator->size())
    return op->emitError() << "moe-run runs grids of the group's "
                           << communicator->size() << " ranks, but @"
                           << grid.getSymName() << " has shape "
                           << moert::formatShape(shape);
  auto axes = op->getAttrOfType<DenseI16ArrayAttr>("grid_axes");
  if (!axes)
    return op->emitError("a collective needs its grid_axes");
  std::vector<int64_t> groupAxes(axes.asArrayRef().begin(),
                                 axes.asArrayRef().end());
  std::optional<moe::ref::SubgroupCommunicator> group;
  try {
    group.emplace(*communicator, moert::gridGroupMembers(shape, groupAxes,
                                                         communicator->rank()));
  } catch (const moert::Error &error) {
    return op->emitError() << error.what();
  }
  auto reduction =
      [&](shard::ReductionKind kind) -> FailureOr<moe::ref::Reduction> {
    switch (kind) {
    case shard::ReductionKind::Sum:
      return moe::ref::Reduction::Sum;
    case shard::ReductionKind::Max:
      return moe::ref::Reduction::Max;
    case shard::ReductionKind::Min:
      return moe::ref::Reduction::Min;
    default:
      return op->emitError("moe-run reduces with sum, max or min only");
    }
  };
  auto axis = [](const APInt &value) { return value.getSExtValue(); };
  moe::ref::Communicator &comm = *group;
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](shard::AllGatherOp o) {
        set(o, moe::ref::allGather(comm, get(o.getInput()),
                                   axis(o.getGatherAxis())));
        return success();
      })
      .Case([&](shard::AllReduceOp o) -> LogicalResult {
        FailureOr<moe::ref::Reduction> kind = reduction(o.getReduction());
        if (failed(kind))
          return failure();
        set(o, moe::ref::allReduce(comm, get(o.getInput()), *kind,
                                   dtypeOfValue(o.getResult())));
        return success();
      })
      .Case([&](shard::ReduceScatterOp o) -> LogicalResult {
        if (o.getReduction() != shard::ReductionKind::Sum)
          return o.emitError("moe-run reduce-scatters with sum only");
        set(o, moe::ref::reduceScatter(comm, get(o.getInput()),
                                       axis(o.getScatterAxis()),
                                       dtypeOfValue(o.getResult())));
        return success();
      })
      .Case([&](shard::AllToAllOp o) {
        set(o,
            moe::ref::allToAll(comm, get(o.getInput()), axis(o.getSplitAxis()),
                               axis(o.getConcatAxis())));
        return success();
      })
      .Case([&](shard::AllSliceOp o) {
        set(o, moe::ref::allSlice(comm, get(o.getInput()),
                                  axis(o.getSliceAxis())));
        return success();
      })
      .Default([&](Operation *other) {
        return other->emitError()
               << "moe-run cannot evaluate '" << other->getName() << "'";
      });
}

/// Runs the body once per element, in double; the result is rounded once.
Tensor FunctionRun::evaluateFused(mlir::moe::FusedElementwiseOp op) {
  Block &body = op.getBody().front();
  Tensor result = get(op.getInputs().front());
  llvm::DenseMap<Value, double> scalars;
  for (int64_t i = 0; i < result.numel(); ++i) {
    for (auto [input, argument] :
         llvm::zip(op.getInputs(), body.getArguments()))
      scalars[argument] = get(input).data[i];
    for (Operation &inner : body) {
      auto in = [&](unsigned index) {
        return scalars.lookup(inner.getOperand(index));
      };
      double value =
          llvm::TypeSwitch<Operation *, double>(&inner)
              .Case([&](arith::AddFOp) { return in(0) + in(1); })
              .Case([&](arith::SubFOp) { return in(0) - in(1); })
              .Case([&](arith::MulFOp) { return in(0) * in(1); })
              .Case([&](arith::DivFOp) { return in(0) / in(1); })
              .Case([&](arith::NegFOp) { return -in(0); })
              .Case([&](math::ExpOp) { return std::exp(in(0)); })
              .Case([&](arith::ConstantOp c) {
                return cast<FloatAttr>(c.getValue()).getValueAsDouble();
              })
              .Case([&](mlir::moe::YieldOp) { return in(0); })
              .Default([](Operation *) -> double {
                llvm_unreachable("FusedElementwiseOp::verify allows no other "
                                 "body op");
              });
      if (isa<mlir::moe::YieldOp>(inner))
        result.data[i] = value;
      else
        scalars[inner.getResult(0)] = value;
    }
  }
  return result;
}

FailureOr<std::vector<Tensor>>
FunctionRun::run(func::FuncOp func, const std::vector<Tensor> &arguments) {
  if (func.getNumArguments() != arguments.size())
    return func.emitError() << "expects " << func.getNumArguments()
                            << " arguments, got " << arguments.size();
  for (auto [index, argument] : llvm::enumerate(func.getArguments())) {
    auto type = cast<RankedTensorType>(argument.getType());
    const Tensor &given = arguments[index];
    if (ArrayRef<int64_t>(given.shape) != type.getShape() ||
        given.dtype != *moe::dtypeOf(type.getElementType()))
      return func.emitError() << "argument #" << index << " must be " << type
                              << ", got " << moert::dtypeName(given.dtype)
                              << " " << moert::formatShape(given.shape);
    set(argument, given);
  }
  for (Operation &op : func.getBody().front()) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      std::vector<Tensor> results;
      for (Value operand : ret.getOperands())
        results.push_back(get(operand));
      return results;
    }
    if (failed(evaluate(&op)))
      return failure();
  }
  return func.emitError("function body has no func.return");
}

LogicalResult FunctionRun::evaluate(Operation *op) {
  for (Type type : op->getResultTypes())
    if (failed(staticTensorType(op, type)))
      return failure();
  try {
    return llvm::TypeSwitch<Operation *, LogicalResult>(op)
        .Case([&](moe::EmbeddingOp o) {
          set(o, moe::ref::embedding(get(o.getTable()), get(o.getIds())));
          return success();
        })
        .Case([&](moe::RmsNormOp o) {
          set(o, moe::ref::rmsNorm(get(o.getInput()), get(o.getWeight()),
                                   o.getEps().convertToDouble()));
          return success();
        })
        .Case([&](moe::LinearOp o) {
          set(o, moe::ref::linear(get(o.getInput()), get(o.getWeight()),
                                  o.getBias() ? &get(o.getBias()) : nullptr));
          return success();
        })
        .Case([&](moe::RouterOp o) {
          set(o, moe::ref::linear(get(o.getTokens()), get(o.getWeight()),
                                  o.getBias() ? &get(o.getBias()) : nullptr));
          return success();
        })
        .Case([&](moe::RopeOp o) {
          set(o, moe::ref::rope(get(o.getInput()),
                                o.getTheta().convertToDouble(), o.getInverse(),
                                moe::ropeScalingOf(o.getScalingAttr()),
                                o.getRotatedDims(), o.getInterleaved()));
          return success();
        })
        .Case([&](moe::AttentionOp o) {
          moe::ref::AttentionResult r = moe::ref::attention(
              get(o.getQuery()), get(o.getKey()), get(o.getValue()),
              attentionMask(o), o.getSinks() ? &get(o.getSinks()) : nullptr);
          set(o.getResult(), std::move(r.result));
          set(o.getLse(), std::move(r.lse));
          return success();
        })
        .Case([&](moe::SwigluOp o) {
          set(o, moe::ref::swiglu(get(o.getGate()), get(o.getUp())));
          return success();
        })
        .Case([&](moe::SigmoidScaleOp o) {
          set(o, moe::ref::sigmoidScale(get(o.getInput()), get(o.getLogit())));
          return success();
        })
        .Case([&](moe::AddOp o) {
          set(o, moe::ref::add(get(o.getLhs()), get(o.getRhs())));
          return success();
        })
        .Case([&](moe::MulOp o) {
          set(o, moe::ref::mul(get(o.getLhs()), get(o.getRhs())));
          return success();
        })
        .Case([&](moe::ScaleOp o) {
          set(o, moe::ref::scale(get(o.getInput()),
                                 o.getFactor().convertToDouble()));
          return success();
        })
        .Case([&](moe::SliceOp o) {
          set(o, moe::ref::slice(get(o.getInput()), o.getOffset(),
                                 o.getType().getShape().back()));
          return success();
        })
        .Case([&](moe::PadOp o) {
          set(o, moe::ref::pad(get(o.getInput()), o.getOffset(),
                               o.getType().getShape().back()));
          return success();
        })
        .Case([&](moe::ConcatOp o) {
          set(o,
              moe::ref::concat(get(o.getLhs()), get(o.getRhs()),
                               shapeOf(cast<RankedTensorType>(o.getType()))));
          return success();
        })
        .Case([&](moe::CrossEntropyOp o) {
          set(o, moe::ref::crossEntropy(
                     get(o.getLogits()), get(o.getTargets()),
                     lossTargets(o.getIgnoreIndex(), o.getDivisor())));
          return success();
        })
        .Case([&](moe::CountTargetsOp o) {
          set(o, moe::ref::countTargets(get(o.getTargets()), o.getIgnoreIndex(),
                                        dtypeOfValue(o.getResult())));
          return success();
        })
        .Case([&](moe::GateOp o) {
          moe::ref::GateResult r = moe::ref::gate(
              get(o.getLogits()), o.getTopK(),
              normLambdaOf(o.getNormLambdaAttr()),
              o.getNormEps().convertToDouble(), o.getRenormalize(),
              moe::runtimeGateScoring(o.getScoring()),
              o.getBias() ? &get(o.getBias()) : nullptr,
              o.getScale().convertToDouble(), o.getGroups(), o.getGroupTopK(),
              o.getGroupScoreTop());
          set(o.getProbs(), std::move(r.probs));
          set(o.getWeights(), std::move(r.weights));
          set(o.getIndices(), std::move(r.indices));
          return success();
        })
        .Case([&](moe::GateNormOp o) {
          set(o, moe::ref::gateNorm(get(o.getLogits()),
                                    o.getNormLambda().convertToDouble(),
                                    o.getNormEps().convertToDouble()));
          return success();
        })
        .Case([&](moe::DispatchOp o) {
          auto buffer = cast<RankedTensorType>(o.getBuffer().getType());
          moe::ref::DispatchResult r = moe::ref::dispatch(
              get(o.getTokens()), get(o.getIndices()), buffer.getDimSize(0),
              buffer.getDimSize(1),
              o.getPriority() ? &get(o.getPriority()) : nullptr);
          set(o.getBuffer(), std::move(r.buffer));
          set(o.getSlots(), std::move(r.slots));
          set(o.getDropped(), std::move(r.dropped));
          return success();
        })
        .Case([&](moe::RouteOp o) {
          moe::ref::RouteResult r = moe::ref::route(
              get(o.getIndices()), o.getExperts(), o.getCapacity(),
              o.getPriority() ? &get(o.getPriority()) : nullptr, o.getRanks());
          set(o.getSlots(), std::move(r.slots));
          set(o.getCounts(), std::move(r.counts));
          set(o.getDropped(), std::move(r.dropped));
          return success();
        })
        .Case([&](moe::MergeRunsOp o) {
          set(o,
              moe::ref::mergeRuns(get(o.getRuns()), get(o.getCounts()),
                                  cast<RankedTensorType>(o.getQueue().getType())
                                      .getDimSize(1)));
          return success();
        })
        .Case([&](moe::SplitRunsOp o) {
          set(o,
              moe::ref::splitRuns(
                  get(o.getQueue()), get(o.getCounts()),
                  cast<RankedTensorType>(o.getRuns().getType()).getDimSize(1)));
          return success();
        })
        .Case([&](moe::PlaceOp o) {
          auto buffer = cast<RankedTensorType>(o.getBuffer().getType());
          set(o, moe::ref::place(get(o.getTokens()), get(o.getIndices()),
                                 get(o.getSlots()), buffer.getDimSize(0),
                                 buffer.getDimSize(1)));
          return success();
        })
        .Case([&](moe::ExpertFfnOp o) {
          Value x = o.getInput();
          std::optional<Tensor> gateCopy, upCopy, downCopy;
          const Tensor &gate = expertWeight(o.getGateProj(), x, gateCopy);
          const Tensor &up = expertWeight(o.getUpProj(), x, upCopy);
          // Both results before either is set: `gate` and `up` may refer
          // into the values, which a set can move.
          Tensor result = moe::ref::expertFfn(
              get(x), gate, up, expertWeight(o.getDownProj(), x, downCopy));
          Tensor projections = moe::ref::expertProjections(get(x), gate, up);
          set(o.getResult(), std::move(result));
          set(o.getProjections(), std::move(projections));
          return success();
        })
        .Case([&](moe::CombineOp o) {
          set(o,
              moe::ref::combine(get(o.getExpertOutput()), get(o.getWeights()),
                                get(o.getIndices()), get(o.getSlots())));
          return success();
        })
        .Case([&](moe::PooledAuxLossOp o) {
          set(o, moe::ref::pooledAuxLoss(tensorsOf(o.getProbs()),
                                         tensorsOf(o.getIndices())));
          return success();
        })
        .Case([&](moe::AuxLossOp o) {
          set(o, moe::ref::auxLoss(auxLossKindOf(o.getKind()),
                                   get(o.getProbs()), get(o.getIndices())));
          return success();
        })
        .Case([&](moe::ZLossOp o) {
          set(o, moe::ref::zLoss(get(o.getLogits())));
          return success();
        })
        .Case([&](moe::AdaptiveAuxCoeffOp o) {
          set(o, moe::ref::adaptiveAuxCoeff(
                     get(o.getAlpha()), get(o.getDropped()),
                     o.getXi().convertToDouble(),
                     o.getAlphaMax().convertToDouble(),
                     o.getBeta().convertToDouble(), o.getAssignments()));
          return success();
        })
        .Case([&](moe::ExpertLoadOp o) {
          set(o, moe::ref::expertLoad(get(o.getIndices()),
                                      o.getType().getDimSize(0)));
          return success();
        })
        .Case([&](moe::ExpertBiasUpdateOp o) {
          set(o, moe::ref::expertBiasUpdate(get(o.getBias()), get(o.getLoad()),
                                            o.getRate().convertToDouble()));
          return success();
        })
        .Case([&](moe::RoutingMetricsOp o) {
          moe::ref::RoutingMetrics r = moe::ref::routingMetrics(
              get(o.getProbs()), get(o.getIndices()), get(o.getSlots()),
              dtypeOfValue(o.getDropRate()));
          set(o.getDropRate(), std::move(r.dropRate));
          set(o.getMax1Max2(), std::move(r.max1Max2));
          set(o.getMax2Max3(), std::move(r.max2Max3));
          set(o.getLoad(), std::move(r.load));
          return success();
        })
        .Case([&](moe::ExpertSimilarityOp o) {
          set(o, moe::ref::expertSimilarity(
                     get(o.getGateProj()), get(o.getUpProj()),
                     get(o.getDownProj()), dtypeOfValue(o.getResult())));
          return success();
        })
        .Case([&](moe::EmbeddingGradOp o) {
          set(o, moe::ref::embeddingGrad(get(o.getIds()), get(o.getDResult()),
                                         o.getDTable().getType().getDimSize(0),
                                         o.getPaddingId()));
          return success();
        })
        .Case([&](moe::RmsNormGradOp o) {
          moe::ref::RmsNormGrads r = moe::ref::rmsNormGrad(
              get(o.getInput()), get(o.getWeight()),
              o.getEps().convertToDouble(), get(o.getDResult()));
          set(o.getDInput(), std::move(r.dInput));
          set(o.getDWeight(), std::move(r.dWeight));
          return success();
        })
        .Case([&](moe::LinearInputGradOp o) {
          set(o, moe::ref::linearInputGrad(get(o.getDResult()),
                                           get(o.getWeight())));
          return success();
        })
        .Case([&](moe::LinearWeightGradOp o) {
          set(o, moe::ref::linearWeightGrad(get(o.getDResult()),
                                            get(o.getInput())));
          return success();
        })
        .Case([&](moe::BiasGradOp o) {
          set(o, moe::ref::biasGrad(get(o.getDResult())));
          return success();
        })
        .Case([&](moe::AttentionGradOp o) {
          moe::ref::AttentionGrads r = moe::ref::attentionGrad(
              get(o.getQuery()), get(o.getKey()), get(o.getValue()),
              get(o.getOutput()), get(o.getLse()), attentionMask(o),
              get(o.getDResult()));
          set(o.getDQuery(), std::move(r.dQuery));
          set(o.getDKey(), std::move(r.dKey));
          set(o.getDValue(), std::move(r.dValue));
          return success();
        })
        .Case([&](moe::AttentionSinksGradOp o) {
          set(o, moe::ref::attentionSinksGrad(
                     get(o.getSinks()), get(o.getLse()), get(o.getOutput()),
                     get(o.getDResult())));
          return success();
        })
        .Case([&](moe::SwigluGradOp o) {
          moe::ref::SwigluGrads r = moe::ref::swigluGrad(
              get(o.getGate()), get(o.getUp()), get(o.getDResult()));
          set(o.getDGate(), std::move(r.dGate));
          set(o.getDUp(), std::move(r.dUp));
          return success();
        })
        .Case([&](moe::SigmoidScaleGradOp o) {
          moe::ref::SigmoidScaleGrads r = moe::ref::sigmoidScaleGrad(
              get(o.getInput()), get(o.getLogit()), get(o.getDResult()));
          set(o.getDInput(), std::move(r.dInput));
          set(o.getDLogit(), std::move(r.dLogit));
          return success();
        })
        .Case([&](moe::ConcatGradOp o) {
          moe::ref::ConcatGrads r = moe::ref::concatGrad(
              get(o.getDResult()),
              shapeOf(cast<RankedTensorType>(o.getDLhs().getType())),
              shapeOf(cast<RankedTensorType>(o.getDRhs().getType())));
          set(o.getDLhs(), std::move(r.dLhs));
          set(o.getDRhs(), std::move(r.dRhs));
          return success();
        })
        .Case([&](moe::CrossEntropyGradOp o) {
          set(o, moe::ref::crossEntropyGrad(
                     get(o.getLogits()), get(o.getTargets()), get(o.getDLoss()),
                     lossTargets(o.getIgnoreIndex(), o.getDivisor())));
          return success();
        })
        .Case([&](moe::GateGradOp o) {
          set(o, moe::ref::gateGrad(get(o.getLogits()), get(o.getIndices()),
                                    normLambdaOf(o.getNormLambdaAttr()),
                                    o.getNormEps().convertToDouble(),
                                    o.getRenormalize(), get(o.getDProbs()),
                                    get(o.getDWeights()),
                                    moe::runtimeGateScoring(o.getScoring()),
                                    o.getScale().convertToDouble()));
          return success();
        })
        .Case([&](moe::GateNormGradOp o) {
          set(o, moe::ref::gateNormGrad(
                     get(o.getLogits()), o.getNormLambda().convertToDouble(),
                     o.getNormEps().convertToDouble(), get(o.getDResult())));
          return success();
        })
        .Case([&](moe::DispatchGradOp o) {
          set(o,
              moe::ref::dispatchGrad(get(o.getDBuffer()), get(o.getIndices()),
                                     get(o.getSlots())));
          return success();
        })
        .Case([&](moe::ExpertFfnGradOp o) {
          Value x = o.getInput();
          std::optional<Tensor> gateCopy, upCopy, downCopy;
          moe::ref::ExpertFfnGrads r = moe::ref::expertFfnGrad(
              get(x), expertWeight(o.getGateProj(), x, gateCopy),
              expertWeight(o.getUpProj(), x, upCopy),
              expertWeight(o.getDownProj(), x, downCopy), get(o.getDResult()));
          set(o.getDInput(), std::move(r.dInput));
          set(o.getDGateProj(), std::move(r.dGateProj));
          set(o.getDUpProj(), std::move(r.dUpProj));
          set(o.getDDownProj(), std::move(r.dDownProj));
          return success();
        })
        .Case([&](moe::CombineGradOp o) {
          moe::ref::CombineGrads r = moe::ref::combineGrad(
              get(o.getExpertOutput()), get(o.getWeights()),
              get(o.getIndices()), get(o.getSlots()), get(o.getDResult()));
          set(o.getDExpertOutput(), std::move(r.dExpertOutput));
          set(o.getDWeights(), std::move(r.dWeights));
          return success();
        })
        .Case([&](moe::PooledAuxLossGradOp o) {
          std::vector<Tensor> grads = moe::ref::pooledAuxLossGrad(
              tensorsOf(o.getIndices()),
              cast<RankedTensorType>(o.getDProbs()[0].getType()).getDimSize(1),
              get(o.getDLoss()));
          for (auto [result, grad] : llvm::zip(o.getDProbs(), grads))
            set(result, std::move(grad));
          return success();
        })
        .Case([&](moe::AuxLossGradOp o) {
          set(o, moe::ref::auxLossGrad(auxLossKindOf(o.getKind()),
                                       get(o.getProbs()), get(o.getIndices()),
                                       get(o.getDLoss())));
          return success();
        })
        .Case([&](moe::ZLossGradOp o) {
          set(o, moe::ref::zLossGrad(get(o.getLogits()), get(o.getDLoss())));
          return success();
        })
        .Case([&](moe::LrScheduleOp o) {
          moe::ref::LrSchedule schedule{
              o.getMaxLr().convertToDouble(), o.getMinLr().convertToDouble(),
              o.getWarmupStepsAttr().getInt(), o.getDecayStepsAttr().getInt(),
              lrDecayOf(o.getDecay())};
          set(o, moe::ref::lrSchedule(get(o.getStep()), schedule,
                                      dtypeOfValue(o.getLr())));
          return success();
        })
        .Case([&](moe::GlobalNormOp o) {
          set(o, moe::ref::globalNorm(tensorsOf(o.getTensors()),
                                      dtypeOfValue(o.getNorm())));
          return success();
        })
        .Case([&](moe::AdamWOp o) {
          moe::ref::AdamWConfig config{o.getBeta1().convertToDouble(),
                                       o.getBeta2().convertToDouble(),
                                       o.getEps().convertToDouble(),
                                       o.getWeightDecay().convertToDouble(),
                                       o.getMaxGradNorm().convertToDouble()};
          moe::ref::AdamWResult r = moe::ref::adamw(
              get(o.getParam()), get(o.getGrad()), get(o.getExpAvg()),
              get(o.getExpAvgSq()), get(o.getLr()), get(o.getGradNorm()),
              get(o.getStep()), config);
          set(o.getNewParam(), std::move(r.param));
          set(o.getNewExpAvg(), std::move(r.expAvg));
          set(o.getNewExpAvgSq(), std::move(r.expAvgSq));
          return success();
        })
        .Case([&](moe::FusedElementwiseOp o) -> LogicalResult {
          set(o, evaluateFused(o));
          return success();
        })
        .Case([&](arith::AddIOp o) {
          set(o, moe::ref::add(get(o.getLhs()), get(o.getRhs())));
          return success();
        })
        .Case<arith::TruncFOp, arith::ExtFOp>([&](Operation *o) {
          if (failed(moe::checkPrecisionConversion(o)))
            return failure();
          // set() rounds to the result's type.
          set(o->getResult(0), get(o->getOperand(0)));
          return success();
        })
        .Case([&](arith::ConstantOp o) -> LogicalResult {
          auto dense = dyn_cast<DenseElementsAttr>(o.getValue());
          if (!dense)
            return o.emitError("moe-run evaluates dense tensor constants only");
          set(o, tensorFromAttr(cast<RankedTensorType>(o.getType()), dense));
          return success();
        })
        .Case<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(
            [&](auto o) -> LogicalResult {
              // Row-major reshapes keep the data as it is.
              Tensor result = get(o.getSrc());
              result.shape = shapeOf(o.getResultType());
              set(o, std::move(result));
              return success();
            })
        .Case([&](tensor::ExtractSliceOp o) -> LogicalResult {
          if (failed(moe::checkLeadingRun(o)))
            return failure();
          Tensor result = get(o.getSource());
          result.shape = shapeOf(o.getType());
          result.data.resize(o.getType().getNumElements());
          set(o, std::move(result));
          return success();
        })
        .Case([&](tensor::PadOp o) -> LogicalResult {
          if (failed(moe::checkZerosAfter(o)))
            return failure();
          Tensor result = get(o.getSource());
          result.shape = shapeOf(o.getResultType());
          result.data.resize(o.getResultType().getNumElements(), 0.0);
          set(o, std::move(result));
          return success();
        })
        .Case([&](ml_program::GlobalLoadOp o) -> LogicalResult {
          auto it = globals.find(o.getGlobal().getLeafReference());
          if (it == globals.end())
            return o.emitError()
                   << "global " << o.getGlobal() << " has no value";
          set(o, it->second);
          return success();
        })
        .Case([&](ml_program::GlobalStoreOp o) -> LogicalResult {
          Tensor value = get(o.getValue());
          globals[o.getGlobal().getLeafReference()] = std::move(value);
          return success();
        })
        .Case<shard::AllGatherOp, shard::AllReduceOp, shard::ReduceScatterOp,
              shard::AllToAllOp, shard::AllSliceOp>([&](Operation *collective) {
          return evaluateCollective(collective);
        })
        .Default([&](Operation *other) {
          return other->emitError()
                 << "moe-run cannot evaluate '" << other->getName() << "'";
        });
  } catch (const moert::Error &error) {
    return op->emitError() << error.what();
  }
}

} // namespace

FailureOr<std::vector<Tensor>>
moe::Evaluator::run(func::FuncOp func, const std::vector<Tensor> &arguments) {
  return FunctionRun(globals, communicator).run(func, arguments);
}
