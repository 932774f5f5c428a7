//===- AccumulateGradients.cpp - an optimizer step over micro-batches -----===//
//
// Gradient accumulation, found from the complete step's structure: the
// gradients are the moe.adamw operands, the drop counts those of
// moe.adaptive_aux_coeff. Each gradient is added, scaled by 1/N, to its
// accumulator in place (a moe.fused_elementwise that takes the accumulator's
// storage) right where the backward produces it, so no micro-batch keeps a
// gradient buffer past that point.
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/Passes.h"
#include "moe/Transforms/TrainingSettings.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"

namespace mlir::moe {
#define GEN_PASS_DEF_ACCUMULATEGRADIENTS
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

constexpr StringLiteral kMicroStepName = "train_micro_step";

/// `body(x, y)` over every element of the tensors `inputs` (one or two).
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

struct AccumulateGradientsPass
    : moe::impl::AccumulateGradientsBase<AccumulateGradientsPass> {
  using AccumulateGradientsBase::AccumulateGradientsBase;

  void runOnOperation() override;

private:
  /// Declares a transient global `name` of `type` after `like`, zero at
  /// first, sharded like it.
  FlatSymbolRefAttr declareAccumulator(ml_program::GlobalOp like,
                                       StringRef name, RankedTensorType type);
  /// After `gradient` is computed: accumulator += gradient, and for the
  /// last micro-batch divided by micro-batches (a sum scaled once, not a
  /// sum of scaled terms, whose rounding cancellation would magnify).
  void accumulate(OpBuilder &b, Value gradient, FlatSymbolRefAttr accumulator,
                  bool last);
  /// Turns `micro` (a copy of the train step) into the micro-batch step.
  void makeMicroStep(func::FuncOp micro);

  /// The global whose value `value` is, if it is a global_load's result.
  ml_program::GlobalOp globalOf(Value value);

  ModuleOp module;
  /// Accumulator globals by the parameter or coefficient they serve.
  DenseMap<Operation *, FlatSymbolRefAttr> accumulators;
};

FlatSymbolRefAttr AccumulateGradientsPass::declareAccumulator(
    ml_program::GlobalOp like, StringRef name, RankedTensorType type) {
  OpBuilder b(like->getContext());
  b.setInsertionPointAfter(like);
  auto global = ml_program::GlobalOp::create(
      b, like.getLoc(), b.getStringAttr(name), TypeAttr::get(type),
      b.getUnitAttr(), /*value=*/nullptr, b.getStringAttr("private"));
  global->setAttr(
      kInitAttrName,
      InitAttr::get(b.getContext(), InitKind::constant, APFloat(0.0)));
  global->setAttr(kTransientAttrName, b.getUnitAttr());
  if (Attribute sharded = like->getAttr(kShardedAttrName))
    global->setAttr(kShardedAttrName, sharded);
  return FlatSymbolRefAttr::get(global.getSymNameAttr());
}

ml_program::GlobalOp AccumulateGradientsPass::globalOf(Value value) {
  auto load = value.getDefiningOp<ml_program::GlobalLoadOp>();
  return load ? module.lookupSymbol<ml_program::GlobalOp>(load.getGlobal())
              : ml_program::GlobalOp();
}

void AccumulateGradientsPass::accumulate(OpBuilder &b, Value gradient,
                                         FlatSymbolRefAttr accumulator,
                                         bool last) {
  Location loc = gradient.getLoc();
  auto type = cast<RankedTensorType>(gradient.getType());
  Value sum = ml_program::GlobalLoadOp::create(b, loc, type, accumulator);
  double scale = 1.0 / static_cast<double>(microBatches);
  Value next = fusedElementwise(
      b, loc, {sum, gradient}, [&](OpBuilder &b, Location loc, ValueRange x) {
        Value total = arith::AddFOp::create(b, loc, x[0], x[1]);
        if (!last)
          return total;
        Value factor = arith::ConstantOp::create(
            b, loc, b.getFloatAttr(type.getElementType(), scale));
        return arith::MulFOp::create(b, loc, total, factor).getResult();
      });
  ml_program::GlobalStoreOp::create(b, loc, accumulator, next);
}

/// Erases every op whose results are all unused, until none is left: what
/// only fed a state update the micro step no longer makes.
void eraseUnusedResults(func::FuncOp function) {
  bool erased = true;
  while (erased) {
    erased = false;
    for (Operation &op :
         llvm::make_early_inc_range(llvm::reverse(function.getBody().front())))
      if (op.getNumResults() > 0 && op.use_empty()) {
        op.erase();
        erased = true;
      }
  }
}

void AccumulateGradientsPass::makeMicroStep(func::FuncOp micro) {
  // Every state update belongs to the step: the micro step makes none.
  SmallVector<ml_program::GlobalStoreOp> stores(
      micro.getOps<ml_program::GlobalStoreOp>());
  OpBuilder b(micro.getContext());
  for (AdamWOp adamw : llvm::to_vector(micro.getOps<AdamWOp>())) {
    Value gradient = adamw.getGrad();
    b.setInsertionPointAfterValue(gradient);
    accumulate(b, gradient, accumulators.lookup(globalOf(adamw.getParam())),
               /*last=*/false);
  }
  for (auto coefficient : llvm::to_vector(micro.getOps<AdaptiveAuxCoeffOp>())) {
    b.setInsertionPoint(coefficient);
    FlatSymbolRefAttr dropped =
        accumulators.lookup(globalOf(coefficient.getAlpha()));
    Location loc = coefficient.getLoc();
    Type type = coefficient.getDropped().getType();
    Value sum = arith::AddIOp::create(
        b, loc, ml_program::GlobalLoadOp::create(b, loc, type, dropped),
        coefficient.getDropped());
    ml_program::GlobalStoreOp::create(b, loc, dropped, sum);
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
  eraseUnusedResults(micro);
}

void AccumulateGradientsPass::runOnOperation() {
  module = getOperation();
  if (microBatches < 1) {
    module.emitError() << "moe-accumulate-gradients: micro-batches must be at "
                          "least 1, got "
                       << static_cast<int64_t>(microBatches);
    return signalPassFailure();
  }
  if (microBatches == 1)
    return;
  auto function = module.lookupSymbol<func::FuncOp>(functionName);
  SmallVector<AdamWOp> updates;
  if (function)
    updates = llvm::to_vector(function.getOps<AdamWOp>());
  if (updates.empty()) {
    module.emitError() << "moe-accumulate-gradients: no moe.adamw in @"
                       << functionName << " (run moe-optimizer first)";
    return signalPassFailure();
  }
  if (Operation *existing = module.lookupSymbol(kMicroStepName)) {
    existing->emitError() << "moe-accumulate-gradients: @" << kMicroStepName
                          << " already exists (was the pass applied twice?)";
    return signalPassFailure();
  }
  recordTrainingSettings(*this, module);
  module->setAttr(kMicroBatchesAttrName,
                  IntegerAttr::get(IntegerType::get(&getContext(), 64),
                                   microBatches.getValue()));

  // The accumulators, beside what they serve.
  // Accumulators beside what they serve, each named by it.
  auto declare = [&](Operation *op, Value served, StringRef suffix,
                     Value like) {
    ml_program::GlobalOp global = globalOf(served);
    if (!global) {
      op->emitError("moe-accumulate-gradients: this update's state is not a "
                    "global's value");
      return false;
    }
    std::string name = (global.getSymName() + suffix).str();
    if (Operation *existing = module.lookupSymbol(name)) {
      existing->emitError()
          << "moe-accumulate-gradients: @" << name << " already exists";
      return false;
    }
    accumulators[global] = declareAccumulator(
        global, name, cast<RankedTensorType>(like.getType()));
    return true;
  };
  for (AdamWOp adamw : updates)
    if (!declare(adamw, adamw.getParam(), ".grad_accum", adamw.getGrad()))
      return signalPassFailure();
  auto coefficients = llvm::to_vector(function.getOps<AdaptiveAuxCoeffOp>());
  for (AdaptiveAuxCoeffOp coefficient : coefficients)
    if (!declare(coefficient, coefficient.getAlpha(), ".dropped_accum",
                 coefficient.getDropped()))
      return signalPassFailure();

  auto micro = cast<func::FuncOp>(function->clone());
  micro.setName(kMicroStepName);
  module.getBody()->getOperations().insert(Block::iterator(function), micro);
  makeMicroStep(micro);

  // The step: the last micro-batch's gradients join the sums, from which
  // the norm and the updates read; the drops of all micro-batches drive
  // the coefficients. Then every accumulator is zero for the next step.
  OpBuilder b(&getContext());
  auto ret = cast<func::ReturnOp>(function.getBody().front().getTerminator());
  for (AdamWOp adamw : updates) {
    Value gradient = adamw.getGrad();
    FlatSymbolRefAttr accumulator =
        accumulators.lookup(globalOf(adamw.getParam()));
    b.setInsertionPointAfterValue(gradient);
    accumulate(b, gradient, accumulator, /*last=*/true);
    Location loc = gradient.getLoc();
    Value sum = ml_program::GlobalLoadOp::create(b, loc, gradient.getType(),
                                                 accumulator);
    gradient.replaceUsesWithIf(sum, [&](OpOperand &use) {
      return isa<AdamWOp, GlobalNormOp>(use.getOwner());
    });
    b.setInsertionPoint(ret);
    Value zero = fusedElementwise(
        b, loc,
        {ml_program::GlobalLoadOp::create(b, loc, sum.getType(), accumulator)},
        [&](OpBuilder &b, Location loc, ValueRange) {
          return arith::ConstantOp::create(
                     b, loc, b.getZeroAttr(getElementTypeOrSelf(sum)))
              .getResult();
        });
    ml_program::GlobalStoreOp::create(b, loc, accumulator, zero);
  }
  for (AdaptiveAuxCoeffOp coefficient : coefficients) {
    FlatSymbolRefAttr dropped =
        accumulators.lookup(globalOf(coefficient.getAlpha()));
    Location loc = coefficient.getLoc();
    auto type = cast<RankedTensorType>(coefficient.getDropped().getType());
    b.setInsertionPoint(coefficient);
    Value sum = arith::AddIOp::create(
        b, loc, ml_program::GlobalLoadOp::create(b, loc, type, dropped),
        coefficient.getDropped());
    coefficient.getDroppedMutable().assign(sum);
    coefficient.setAssignments(coefficient.getAssignments() * microBatches);
    b.setInsertionPoint(ret);
    Value zero = arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(type, b.getZeroAttr(type.getElementType())));
    ml_program::GlobalStoreOp::create(b, loc, dropped, zero);
  }
}

} // namespace
