//===- DistributedOptimizer.cpp - Adam state split over parameter copies --===//
//
// Megatron-LM's distributed optimizer (ZeRO stage 1) on a complete SPMD
// train step: the R ranks that hold copies of a parameter each keep and
// update 1/R of its Adam moments. A copy's gradient is reduce-scattered
// instead of all-reduced, each rank updates its part of the parameter, and
// an all-gather makes every copy whole again (together what a ring
// all-reduce carries).
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/PassOrder.h"
#include "moe/Transforms/Passes.h"
#include "moe/Transforms/StateGlobals.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/RegionUtils.h"

namespace mlir::moe {
#define GEN_PASS_DEF_DISTRIBUTEDOPTIMIZER
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// `value` as a 1-D tensor (a view), or `value` when it is one already.
Value flatten(OpBuilder &b, Location loc, Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  if (type.getRank() == 1)
    return value;
  ReassociationIndices all =
      llvm::to_vector(llvm::seq<int64_t>(0, type.getRank()));
  return tensor::CollapseShapeOp::create(
      b, loc,
      RankedTensorType::get({type.getNumElements()}, type.getElementType()),
      value, ArrayRef<ReassociationIndices>{all});
}

/// The flat `value` shaped as `type` again.
Value unflatten(OpBuilder &b, Location loc, Value value,
                RankedTensorType type) {
  if (type.getRank() == 1)
    return value;
  ReassociationIndices all =
      llvm::to_vector(llvm::seq<int64_t>(0, type.getRank()));
  return tensor::ExpandShapeOp::create(b, loc, type, value,
                                       ArrayRef<ReassociationIndices>{all});
}

struct DistributedOptimizerPass
    : moe::impl::DistributedOptimizerBase<DistributedOptimizerPass> {
  using DistributedOptimizerBase::DistributedOptimizerBase;

  void runOnOperation() override;

private:
  /// Splits `update`'s state over the copies of its parameter; false after
  /// an error. Leaves an update whose parameter has one copy as it is.
  bool distribute(AdamWOp update);
  /// The global norm of the gradients that the updates now read, each
  /// element of which one rank holds: the ranks' norms gathered.
  Value gradientNorm(OpBuilder &b, Location loc, ArrayRef<AdamWOp> updates);

  ModuleOp module;
  FlatSymbolRefAttr gridName;
  SmallVector<int64_t> gridShape;
};

bool DistributedOptimizerPass::distribute(AdamWOp update) {
  auto load = update.getParam().getDefiningOp<ml_program::GlobalLoadOp>();
  auto parameter =
      load ? module.lookupSymbol<ml_program::GlobalOp>(load.getGlobal())
           : ml_program::GlobalOp();
  if (!parameter) {
    update.emitError("moe-distributed-optimizer: this update's parameter is "
                     "not a global's value");
    return false;
  }
  SmallVector<int16_t> axes =
      parameterCopyAxes(gridShape, parameter->hasAttr(kShardedAttrName));
  int64_t copies = 1;
  for (int16_t axis : axes)
    copies *= gridShape[axis];
  if (copies == 1)
    return true;
  auto type = cast<RankedTensorType>(parameter.getType());
  int64_t elements = type.getNumElements();
  auto sum = update.getGrad().getDefiningOp<shard::AllReduceOp>();
  if (!sum || sum.getGridAxes() != ArrayRef<int16_t>(axes) ||
      sum.getReduction() != shard::ReductionKind::Sum) {
    update.emitError() << "moe-distributed-optimizer: the gradient of @"
                       << parameter.getSymName()
                       << " is not the sum over its copies that moe-autodiff "
                          "makes";
    return false;
  }

  Location loc = update.getLoc();
  // Megatron-LM's padding: equal parts of the flat tensor extended with
  // zeros, whose gradients are zero, and which the update leaves zero.
  int64_t partElements = llvm::divideCeilSigned(elements, copies);
  auto paddedType =
      RankedTensorType::get({partElements * copies}, type.getElementType());
  auto partType = RankedTensorType::get({partElements}, type.getElementType());
  auto padded = [&](OpBuilder &b, Value value) {
    Value flat = flatten(b, loc, value);
    return partElements * copies == elements
               ? flat
               : padWithZerosAfter(b, loc, flat, partElements * copies);
  };
  // The part of the gradient where its sum was: the whole is dead sooner.
  OpBuilder atSum(sum);
  Value gradPart = shard::ReduceScatterOp::create(
      atSum, loc, partType, gridName.getValue(), axes,
      padded(atSum, sum.getInput()), shard::ReductionKind::Sum, APInt(64, 0));
  OpBuilder b(update);
  Value paramPart =
      shard::AllSliceOp::create(b, loc, partType, gridName.getValue(), axes,
                                padded(b, update.getParam()), APInt(64, 0));
  // The moments become parts: their globals, loads and stores change type.
  for (Value moment : {update.getExpAvg(), update.getExpAvgSq()}) {
    auto momentLoad = moment.getDefiningOp<ml_program::GlobalLoadOp>();
    auto global =
        momentLoad
            ? module.lookupSymbol<ml_program::GlobalOp>(momentLoad.getGlobal())
            : ml_program::GlobalOp();
    // A global's value, unlike an initializer, would not fit its part.
    if (!global || global.getType() != type || global.getValueAttr()) {
      update.emitError() << "moe-distributed-optimizer: a moment of @"
                         << parameter.getSymName()
                         << " is not a global of its type without a value";
      return false;
    }
    global.setType(partType);
    global->setAttr(kOptimizerPartAttrName,
                    FlatSymbolRefAttr::get(parameter.getSymNameAttr()));
    momentLoad.getResult().setType(partType);
  }
  update.getParamMutable().assign(paramPart);
  update.getGradMutable().assign(gradPart);
  for (Value result : update->getResults())
    result.setType(partType);
  b.setInsertionPointAfter(update);
  Value gathered =
      shard::AllGatherOp::create(b, loc, paddedType, gridName.getValue(), axes,
                                 update.getNewParam(), APInt(64, 0));
  Value whole = partElements * copies == elements
                    ? gathered
                    : leadingRun(b, loc, gathered, elements);
  update.getNewParam().replaceAllUsesExcept(unflatten(b, loc, whole, type),
                                            gathered.getDefiningOp());
  return true;
}

Value DistributedOptimizerPass::gradientNorm(OpBuilder &b, Location loc,
                                             ArrayRef<AdamWOp> updates) {
  SmallVector<Value> grads;
  for (AdamWOp update : updates)
    grads.push_back(update.getGrad());
  AdamWOp first = updates.front();
  auto scalarType = cast<RankedTensorType>(first.getGradNorm().getType());
  Value mine = GlobalNormOp::create(b, loc, scalarType, grads);
  Value norms = gatherNorms(b, loc, gridName, batchGridAxes(gridShape),
                            ShapedType::getNumElements(gridShape), mine);
  return GlobalNormOp::create(b, loc, scalarType, ValueRange{norms});
}

void DistributedOptimizerPass::runOnOperation() {
  if (failed(requireBeforeCodegen(getOperation(), getArgument())))
    return signalPassFailure();
  module = getOperation();
  if (failed(requireOptimizerNotDistributed(module, getArgument())))
    return signalPassFailure();
  FailureOr<SmallVector<AdamWOp>> found =
      optimizerUpdates(module, functionName, getArgument());
  if (failed(found))
    return signalPassFailure();
  SmallVector<AdamWOp> updates = std::move(*found);
  auto step = module.lookupSymbol<func::FuncOp>(functionName);
  gridName = step->getAttrOfType<FlatSymbolRefAttr>(kSpmdGridAttrName);
  auto grid = gridName
                  ? dyn_cast_if_present<shard::GridOp>(
                        SymbolTable::lookupNearestSymbolFrom(step, gridName))
                  : shard::GridOp();
  if (!grid) {
    step.emitError() << "moe-distributed-optimizer: @" << functionName
                     << " is no SPMD program of a shard.grid (run "
                        "moe-expert-parallel first)";
    return signalPassFailure();
  }
  gridShape = llvm::to_vector(grid.getShape());

  Value oldNorm = updates.front().getGradNorm();
  for (AdamWOp update : updates)
    if (update.getGradNorm() != oldNorm) {
      update.emitError("moe-distributed-optimizer: the updates of a step "
                       "must share one gradient norm");
      return signalPassFailure();
    }
  for (AdamWOp update : updates)
    if (!distribute(update))
      return signalPassFailure();
  // Each rank now holds its part of every gradient, so the norm is the
  // norm of the ranks' norms, made where the old one was.
  OpBuilder atNorm(updates.front());
  if (Operation *norm = oldNorm.getDefiningOp())
    atNorm.setInsertionPoint(norm);
  oldNorm.replaceAllUsesWith(gradientNorm(atNorm, oldNorm.getLoc(), updates));
  IRRewriter rewriter(&getContext());
  (void)runRegionDCE(rewriter, step.getBody());
}

} // namespace
