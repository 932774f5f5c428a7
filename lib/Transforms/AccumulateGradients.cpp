//===- AccumulateGradients.cpp - an optimizer step over micro-batches -----===//
//
// Gradient accumulation, found from the complete step's structure: the
// gradients are the moe.adamw operands, the drop counts and loads those of
// moe.adaptive_aux_coeff and moe.expert_bias_update. Each gradient is added to
// its accumulator in place (a moe.fused_elementwise that takes the
// accumulator's storage) right where the backward produces it, so no
// micro-batch keeps a gradient buffer past that point; the last one scales the
// sum once. A replicated gradient of an SPMD program is summed over the ranks
// once a step, not once a micro-batch: its accumulator holds this rank's part.
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/PassOrder.h"
#include "moe/Transforms/Passes.h"
#include "moe/Transforms/StateGlobals.h"
#include "moe/Transforms/TrainingSettings.h"
#include "moert/StateNames.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/RegionUtils.h"

#include <cstdint>

namespace mlir::moe {
#define GEN_PASS_DEF_ACCUMULATEGRADIENTS
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// `body` over every element of the tensors `inputs`, which share a type.
Value fusedElementwise(
    OpBuilder &b, Location loc, ValueRange inputs,
    function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  auto type = cast<RankedTensorType>(inputs.front().getType());
  auto fused = FusedElementwiseOp::create(b, loc, type, inputs);
  OpBuilder::InsertionGuard guard(b);
  Block *block = b.createBlock(&fused.getBody());
  for (Value input : inputs)
    block->addArgument(type.getElementType(), input.getLoc());
  YieldOp::create(b, loc, body(b, loc, block->getArguments()));
  return fused.getResult();
}

/// A state update driven by counts of the step's routing, which the step
/// makes from the counts of all its micro-batches: an adaptive aux-loss
/// coefficient's drops, an expert bias's loads.
struct CountedUpdate {
  Operation *op;
  OpOperand *counts;
  Value state;
  std::string_view suffix;
};

SmallVector<CountedUpdate> countedUpdates(func::FuncOp step) {
  SmallVector<CountedUpdate> updates;
  for (Operation &op : step.getBody().front()) {
    if (auto coefficient = dyn_cast<AdaptiveAuxCoeffOp>(op))
      updates.push_back({&op, &coefficient.getDroppedMutable(),
                         coefficient.getAlpha(), moert::kDropSumSuffix});
    if (auto bias = dyn_cast<ExpertBiasUpdateOp>(op))
      updates.push_back(
          {&op, &bias.getLoadMutable(), bias.getBias(), moert::kLoadSumSuffix});
  }
  return updates;
}

/// The rank's own part of `gradient`: the operand of the sum over the ranks
/// that autodiff gives a replicated parameter's gradient, else `gradient`.
Value localPart(Value gradient) {
  if (auto sum = gradient.getDefiningOp<shard::AllReduceOp>())
    return sum.getInput();
  return gradient;
}

struct AccumulateGradientsPass
    : moe::impl::AccumulateGradientsBase<AccumulateGradientsPass> {
  using AccumulateGradientsBase::AccumulateGradientsBase;

  void runOnOperation() override;

private:
  /// The accumulator of the parameter or coefficient whose value `served`
  /// is (a global_load's result), or null.
  FlatSymbolRefAttr accumulatorOf(Value served);
  /// Declares the accumulator of the global that `served` loads, named with
  /// `suffix`, of `type`: transient, zero at first, beside that global.
  LogicalResult declareAccumulator(Operation *user, Value served,
                                   std::string_view suffix, Type type);
  /// After `part` is computed: its accumulator += part, and on the last
  /// micro-batch the sum is divided by micro-batches (a sum scaled once:
  /// scaling each term would round it, which cancellation then magnifies).
  /// Returns the sum's accumulator.
  FlatSymbolRefAttr accumulate(OpBuilder &b, AdamWOp update, bool last);
  /// Before `update`: its counts over the micro-batches so far, this one
  /// included.
  Value sumCounts(OpBuilder &b, const CountedUpdate &update);
  /// Turns `micro` (a copy of the train step) into the micro-batch step.
  void makeMicroStep(func::FuncOp micro);
  /// Makes the train step update from the sums and zero them.
  void updateFromSums(func::FuncOp step);

  ModuleOp module;
  /// Accumulator globals by the parameter or coefficient they serve.
  DenseMap<Operation *, FlatSymbolRefAttr> accumulators;
};

FlatSymbolRefAttr AccumulateGradientsPass::accumulatorOf(Value served) {
  auto load = served.getDefiningOp<ml_program::GlobalLoadOp>();
  if (!load)
    return {};
  return accumulators.lookup(
      module.lookupSymbol<ml_program::GlobalOp>(load.getGlobal()));
}

LogicalResult AccumulateGradientsPass::declareAccumulator(
    Operation *user, Value served, std::string_view suffix, Type type) {
  auto load = served.getDefiningOp<ml_program::GlobalLoadOp>();
  auto global =
      load ? module.lookupSymbol<ml_program::GlobalOp>(load.getGlobal())
           : ml_program::GlobalOp();
  if (!global)
    return user->emitError("moe-accumulate-gradients: this update's state is "
                           "not a global's value");
  std::string name = (global.getSymName() + StringRef(suffix)).str();
  if (Operation *existing = module.lookupSymbol(name))
    return existing->emitError()
           << "moe-accumulate-gradients: @" << name << " already exists";
  OpBuilder b(global->getContext());
  b.setInsertionPointAfter(global);
  ml_program::GlobalOp accumulator = declareStateGlobal(
      b, global.getLoc(), name, cast<RankedTensorType>(type), 0.0, global);
  accumulator->setAttr(kTransientAttrName, b.getUnitAttr());
  accumulators[global] = FlatSymbolRefAttr::get(accumulator.getSymNameAttr());
  return success();
}

FlatSymbolRefAttr
AccumulateGradientsPass::accumulate(OpBuilder &b, AdamWOp update, bool last) {
  Value part = localPart(update.getGrad());
  FlatSymbolRefAttr accumulator = accumulatorOf(update.getParam());
  b.setInsertionPointAfterValue(part);
  Location loc = part.getLoc();
  auto type = cast<RankedTensorType>(part.getType());
  Value sum = ml_program::GlobalLoadOp::create(b, loc, type, accumulator);
  double scale = 1.0 / static_cast<double>(microBatches);
  Value next = fusedElementwise(
      b, loc, {sum, part}, [&](OpBuilder &b, Location loc, ValueRange x) {
        Value total = arith::AddFOp::create(b, loc, x[0], x[1]);
        if (!last)
          return total;
        Value factor = arith::ConstantOp::create(
            b, loc, b.getFloatAttr(type.getElementType(), scale));
        return arith::MulFOp::create(b, loc, total, factor).getResult();
      });
  ml_program::GlobalStoreOp::create(b, loc, accumulator, next);
  return accumulator;
}

Value AccumulateGradientsPass::sumCounts(OpBuilder &b,
                                         const CountedUpdate &update) {
  b.setInsertionPoint(update.op);
  Location loc = update.op->getLoc();
  Value counts = update.counts->get();
  Value before = ml_program::GlobalLoadOp::create(b, loc, counts.getType(),
                                                  accumulatorOf(update.state));
  return arith::AddIOp::create(b, loc, before, counts);
}

void AccumulateGradientsPass::makeMicroStep(func::FuncOp micro) {
  // Every state update belongs to the step: the micro step makes none.
  SmallVector<ml_program::GlobalStoreOp> stores(
      micro.getOps<ml_program::GlobalStoreOp>());
  OpBuilder b(micro.getContext());
  for (AdamWOp update : llvm::to_vector(micro.getOps<AdamWOp>()))
    accumulate(b, update, /*last=*/false);
  for (const CountedUpdate &update : countedUpdates(micro)) {
    Value sum = sumCounts(b, update);
    ml_program::GlobalStoreOp::create(b, update.op->getLoc(),
                                      accumulatorOf(update.state), sum);
  }
  for (ml_program::GlobalStoreOp store : stores)
    store.erase();

  // The loss and the metrics, without the optimizer's own figures.
  auto ret = cast<func::ReturnOp>(micro.getBody().front().getTerminator());
  SmallVector<Value> results;
  SmallVector<DictionaryAttr> resultAttrs;
  for (auto [index, value] : llvm::enumerate(ret.getOperands())) {
    if (isa_and_present<GlobalNormOp, LrScheduleOp>(value.getDefiningOp()))
      continue;
    results.push_back(value);
    resultAttrs.push_back(micro.getResultAttrDict(index));
  }
  b.setInsertionPoint(ret);
  func::ReturnOp::create(b, ret.getLoc(), results);
  ret.erase();
  micro.setType(FunctionType::get(micro.getContext(), micro.getArgumentTypes(),
                                  ValueRange(results).getTypes()));
  micro.setAllResultAttrs(resultAttrs);
  // What only fed the updates (the optimizer, the sums over the ranks).
  IRRewriter rewriter(micro.getContext());
  (void)runRegionDCE(rewriter, micro.getBody());
}

void AccumulateGradientsPass::updateFromSums(func::FuncOp step) {
  OpBuilder b(step.getContext());
  auto ret = cast<func::ReturnOp>(step.getBody().front().getTerminator());
  for (AdamWOp update : llvm::to_vector(step.getOps<AdamWOp>())) {
    Value gradient = update.getGrad();
    Type sumType = localPart(gradient).getType();
    FlatSymbolRefAttr accumulator = accumulate(b, update, /*last=*/true);
    Value sum = ml_program::GlobalLoadOp::create(b, gradient.getLoc(), sumType,
                                                 accumulator);
    if (auto overRanks = gradient.getDefiningOp<shard::AllReduceOp>()) {
      auto once = cast<shard::AllReduceOp>(b.clone(*overRanks));
      once.getInputMutable().assign(sum);
      sum = once.getResult();
    }
    gradient.replaceUsesWithIf(sum, [&](OpOperand &use) {
      return isa<AdamWOp, GlobalNormOp>(use.getOwner());
    });
    if (Operation *overRanks = gradient.getDefiningOp();
        isa<shard::AllReduceOp>(overRanks) && overRanks->use_empty())
      overRanks->erase();
    // Zeroed by a fill in place: a zero constant would be as large as the
    // parameter.
    b.setInsertionPoint(ret);
    Value last = ml_program::GlobalLoadOp::create(b, step.getLoc(), sumType,
                                                  accumulator);
    Value zero = fusedElementwise(
        b, step.getLoc(), {last}, [&](OpBuilder &b, Location loc, ValueRange) {
          return arith::ConstantOp::create(
                     b, loc, b.getZeroAttr(getElementTypeOrSelf(last)))
              .getResult();
        });
    ml_program::GlobalStoreOp::create(b, step.getLoc(), accumulator, zero);
  }
  for (const CountedUpdate &update : countedUpdates(step)) {
    update.counts->set(sumCounts(b, update));
    if (auto coefficient = dyn_cast<AdaptiveAuxCoeffOp>(update.op))
      coefficient.setAssignments(coefficient.getAssignments() * microBatches);
    b.setInsertionPoint(ret);
    auto type = cast<RankedTensorType>(update.counts->get().getType());
    Value zero = arith::ConstantOp::create(
        b, step.getLoc(),
        DenseElementsAttr::get(type, b.getZeroAttr(type.getElementType())));
    ml_program::GlobalStoreOp::create(b, step.getLoc(),
                                      accumulatorOf(update.state), zero);
  }
}

void AccumulateGradientsPass::runOnOperation() {
  if (failed(requireBeforeCodegen(getOperation(), getArgument())))
    return signalPassFailure();
  // A pass instance may run again, on another module.
  module = getOperation();
  accumulators.clear();
  // The model ABI counts them in an int32_t.
  if (microBatches < 1 || microBatches > INT32_MAX) {
    module.emitError() << "moe-accumulate-gradients: micro-batches must be at "
                          "least 1 and below 2^31, got "
                       << static_cast<int64_t>(microBatches);
    return signalPassFailure();
  }
  if (microBatches == 1)
    return;
  if (failed(requireOptimizerNotDistributed(module, getArgument())))
    return signalPassFailure();
  FailureOr<SmallVector<AdamWOp>> updates =
      optimizerUpdates(module, functionName, getArgument());
  if (failed(updates))
    return signalPassFailure();
  auto step = module.lookupSymbol<func::FuncOp>(functionName);
  StringRef microStepName(moert::kMicroStepFunction);
  if (Operation *existing = module.lookupSymbol(microStepName)) {
    existing->emitError() << "moe-accumulate-gradients: @" << microStepName
                          << " already exists (was the pass applied twice?)";
    return signalPassFailure();
  }
  for (AdamWOp update : *updates) {
    if (failed(declareAccumulator(update, update.getParam(),
                                  moert::kGradientSumSuffix,
                                  localPart(update.getGrad()).getType())))
      return signalPassFailure();
    // Each micro-batch's gradient is summed where the step computes it.
    if (isa<BlockArgument>(localPart(update.getGrad()))) {
      update.emitError("moe-accumulate-gradients: this update's gradient is "
                       "an argument of the step, not computed from its "
                       "micro-batch (as moe-autodiff computes it)");
      return signalPassFailure();
    }
  }
  for (const CountedUpdate &update : countedUpdates(step))
    if (failed(declareAccumulator(update.op, update.state, update.suffix,
                                  update.counts->get().getType())))
      return signalPassFailure();
  recordTrainingSettings(*this, module);
  module->setAttr(kMicroBatchesAttrName,
                  IntegerAttr::get(IntegerType::get(&getContext(), 64),
                                   microBatches.getValue()));

  auto micro = cast<func::FuncOp>(step->clone());
  micro.setName(microStepName);
  module.getBody()->getOperations().insert(Block::iterator(step), micro);
  makeMicroStep(micro);
  updateFromSums(step);
}

} // namespace
