//===- Optimizer.cpp - AdamW training step from a gradient function -------===//
//
// Completes a train step: the Adam moments and the step counter become
// globals (training state, checkpointed like the weights), and the step
// updates every parameter in place through ml_program.global_store.
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/BuiltIrErrors.h"
#include "moe/Transforms/PassOrder.h"
#include "moe/Transforms/Passes.h"
#include "moe/Transforms/StateGlobals.h"
#include "moe/Transforms/TrainingSettings.h"
#include "moert/StateNames.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"

namespace mlir::moe {
#define GEN_PASS_DEF_OPTIMIZER
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

struct OptimizerPass : moe::impl::OptimizerBase<OptimizerPass> {
  using OptimizerBase::OptimizerBase;

  void runOnOperation() override;

private:
  /// The global gradient norm. In an SPMD program each rank holds the
  /// replicated parameters' gradients whole and its part of the sharded
  /// ones': the norms of the parts of the ranks that share the experts are
  /// gathered and count with the replicated gradients once. Null after an
  /// error.
  Value gradientNorm(OpBuilder &b, Location loc, func::FuncOp function,
                     ArrayRef<std::pair<ml_program::GlobalOp, Value>> grads,
                     RankedTensorType scalarType);
  bool decays(ml_program::GlobalOp global) const;
  /// Fails, naming the options, where they made `op` invalid.
  LogicalResult checkBuiltFromOptions(Operation *op);
};

Value OptimizerPass::gradientNorm(
    OpBuilder &b, Location loc, func::FuncOp function,
    ArrayRef<std::pair<ml_program::GlobalOp, Value>> grads,
    RankedTensorType scalarType) {
  auto grid = function->getAttrOfType<FlatSymbolRefAttr>(kSpmdGridAttrName);
  shard::GridOp ranks;
  if (grid) {
    ranks = dyn_cast_if_present<shard::GridOp>(
        SymbolTable::lookupNearestSymbolFrom(function, grid));
    if (!ranks) {
      function.emitError() << "moe-optimizer: no shard.grid " << grid;
      return Value();
    }
  }
  // Where one rank holds every expert, its sharded gradients are whole.
  int16_t axis = ranks ? expertGridAxis(ranks.getShape()) : 0;
  bool split = ranks && ranks.getShape()[axis] > 1;
  SmallVector<Value> whole, parts;
  for (auto [global, grad] : grads)
    (split && global->hasAttr(kShardedAttrName) ? parts : whole)
        .push_back(grad);
  if (!parts.empty()) {
    Value norm = GlobalNormOp::create(b, loc, scalarType, parts);
    // The ranks that share the experts hold every part once (their
    // replicas hold the same sums).
    whole.push_back(
        gatherNorms(b, loc, grid, {axis}, ranks.getShape()[axis], norm));
  }
  return GlobalNormOp::create(b, loc, scalarType, whole);
}

LogicalResult OptimizerPass::checkBuiltFromOptions(Operation *op) {
  std::optional<BuiltIrError> error = firstVerifierError(op);
  if (!error)
    return success();
  return getOperation().emitError()
         << "moe-optimizer: the options make an invalid step ("
         << error->message << "); they were: " << passOptionsText(*this);
}

bool OptimizerPass::decays(ml_program::GlobalOp global) const {
  if (cast<RankedTensorType>(global.getType()).getRank() < 2)
    return false;
  return llvm::none_of(noDecay, [&](const std::string &pattern) {
    return global.getSymName().contains(pattern);
  });
}

void OptimizerPass::runOnOperation() {
  ModuleOp module = getOperation();
  func::FuncOp function =
      trainStepToExtend(module, getArgument(), functionName);
  if (!function)
    return signalPassFailure();
  if (Operation *existing =
          module.lookupSymbol(StringRef(moert::kOptimizerStepGlobal))) {
    existing->emitError() << "moe-optimizer: @"
                          << StringRef(moert::kOptimizerStepGlobal)
                          << " already exists (was the optimizer applied "
                             "twice?)";
    return signalPassFailure();
  }
  auto ret = cast<func::ReturnOp>(function.getBody().front().getTerminator());

  // Pair each `<global>.grad` result with its parameter.
  llvm::StringMap<unsigned> resultByName;
  for (unsigned i = 1; i < ret.getNumOperands(); ++i)
    if (auto name =
            function.getResultAttrOfType<StringAttr>(i, kOutputAttrName))
      resultByName.try_emplace(name.getValue(), i);
  SmallVector<std::pair<ml_program::GlobalOp, Value>> parameters;
  DenseSet<unsigned> gradientResults;
  for (auto global : module.getOps<ml_program::GlobalOp>()) {
    if (!global->hasAttr(kTrainableAttrName))
      continue;
    auto result = resultByName.find(gradientOutputName(global.getSymName()));
    if (result == resultByName.end())
      continue;
    parameters.push_back({global, ret.getOperand(result->second)});
    gradientResults.insert(result->second);
  }
  if (parameters.empty()) {
    function.emitError("moe-optimizer: the function returns no gradient of a "
                       "trainable global");
    return signalPassFailure();
  }
  // One learning rate, norm and step for all: one element type.
  ml_program::GlobalOp first = parameters.front().first;
  for (auto [global, gradient] : parameters)
    if (getElementTypeOrSelf(global.getType()) !=
        getElementTypeOrSelf(first.getType())) {
      global.emitError() << "moe-optimizer: trainable globals of two element "
                            "types: @"
                         << global.getSymName() << " is " << global.getType()
                         << ", @" << first.getSymName() << " "
                         << first.getType();
      return signalPassFailure();
    }

  OpBuilder b(ret);
  Location loc = function.getLoc();
  // The state, zero at first, goes before the first function.
  Operation *firstFunction = *module.getOps<func::FuncOp>().begin();
  OpBuilder stateBuilder(firstFunction);
  auto declareState = [&](StringRef name, RankedTensorType type,
                          ml_program::GlobalOp like) {
    return FlatSymbolRefAttr::get(declareStateGlobal(stateBuilder,
                                                     firstFunction->getLoc(),
                                                     name, type, 0.0, like)
                                      .getSymNameAttr());
  };
  auto stepType = RankedTensorType::get({}, b.getI64Type());
  FlatSymbolRefAttr stepRef =
      declareState(moert::kOptimizerStepGlobal, stepType, nullptr);
  Value step = ml_program::GlobalLoadOp::create(b, loc, stepType, stepRef);
  Type elementType = cast<RankedTensorType>(parameters.front().second.getType())
                         .getElementType();
  auto scalarType = RankedTensorType::get({}, elementType);
  std::optional<LrDecay> decay = symbolizeLrDecay(lrDecay);
  if (!decay) {
    module.emitError() << "moe-optimizer: unknown lr-decay '" << lrDecay
                       << "' (known: cosine, linear, constant)";
    return signalPassFailure();
  }
  Value lr = LrScheduleOp::create(
      b, loc, scalarType, step, LrDecayAttr::get(b.getContext(), *decay),
      b.getF64FloatAttr(maxLr), b.getF64FloatAttr(minLr),
      b.getI64IntegerAttr(warmupSteps), b.getI64IntegerAttr(decaySteps));
  if (failed(checkBuiltFromOptions(lr.getDefiningOp())))
    return signalPassFailure();
  Value gradNorm = gradientNorm(b, loc, function, parameters, scalarType);
  if (!gradNorm)
    return signalPassFailure();
  recordTrainingSettings(*this, module);

  for (auto [global, grad] : parameters) {
    auto type = cast<RankedTensorType>(global.getType());
    StringRef name = global.getSymName();
    FlatSymbolRefAttr paramRef =
        FlatSymbolRefAttr::get(global.getSymNameAttr());
    FlatSymbolRefAttr avgRef = declareState(
        (name + StringRef(moert::kFirstMomentSuffix)).str(), type, global);
    FlatSymbolRefAttr avgSqRef = declareState(
        (name + StringRef(moert::kSecondMomentSuffix)).str(), type, global);
    auto load = [&](FlatSymbolRefAttr ref) -> Value {
      return ml_program::GlobalLoadOp::create(b, loc, type, ref);
    };
    // In this order whatever the compiler's order of arguments.
    Value param = load(paramRef), avg = load(avgRef), avgSq = load(avgSqRef);
    auto update =
        AdamWOp::create(b, loc, type, type, type, param, grad, avg, avgSq, lr,
                        gradNorm, step, b.getF64FloatAttr(beta1),
                        b.getF64FloatAttr(beta2), b.getF64FloatAttr(epsilon),
                        b.getF64FloatAttr(decays(global) ? weightDecay : 0.0),
                        b.getF64FloatAttr(maxGradNorm));
    if (failed(checkBuiltFromOptions(update)))
      return signalPassFailure();
    ml_program::GlobalStoreOp::create(b, loc, paramRef, update.getNewParam());
    ml_program::GlobalStoreOp::create(b, loc, avgRef, update.getNewExpAvg());
    ml_program::GlobalStoreOp::create(b, loc, avgSqRef,
                                      update.getNewExpAvgSq());
  }
  Value one = arith::ConstantOp::create(
      b, loc, stepType,
      DenseElementsAttr::get(stepType, b.getI64IntegerAttr(1)));
  Value nextStep = arith::AddIOp::create(b, loc, step, one);
  ml_program::GlobalStoreOp::create(b, loc, stepRef, nextStep);

  // The loss, then the step's own figures, then the other results (metrics)
  // as they were.
  SmallVector<Value> results = {ret.getOperand(0), gradNorm, lr};
  StringAttr lossName =
      function.getResultAttrOfType<StringAttr>(0, kOutputAttrName);
  SmallVector<std::string> names = {lossName ? lossName.str() : "loss",
                                    std::string(moert::kGradNormOutput),
                                    std::string(moert::kLearningRateOutput)};
  for (unsigned i = 1; i < ret.getNumOperands(); ++i) {
    if (gradientResults.contains(i))
      continue;
    results.push_back(ret.getOperand(i));
    auto name = function.getResultAttrOfType<StringAttr>(i, kOutputAttrName);
    names.push_back(name ? name.str() : "result" + std::to_string(i));
  }
  func::ReturnOp::create(b, ret.getLoc(), results);
  ret.erase();
  function.setType(FunctionType::get(function.getContext(),
                                     function.getArgumentTypes(),
                                     ValueRange(results).getTypes()));
  setOutputNames(function, names);
}

} // namespace
