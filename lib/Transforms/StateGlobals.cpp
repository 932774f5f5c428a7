//===- StateGlobals.cpp - training state that passes add ------------------===//

#include "moe/Transforms/StateGlobals.h"
#include "moe/MoeDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;

ml_program::GlobalOp moe::declareStateGlobal(OpBuilder &b, Location loc,
                                             StringRef name,
                                             RankedTensorType type,
                                             double value,
                                             ml_program::GlobalOp like) {
  auto global = ml_program::GlobalOp::create(
      b, loc, b.getStringAttr(name), TypeAttr::get(type), b.getUnitAttr(),
      /*value=*/nullptr, b.getStringAttr("private"));
  global->setAttr(
      kInitAttrName,
      InitAttr::get(b.getContext(), InitKind::constant, APFloat(value)));
  if (like && like->hasAttr(kShardedAttrName))
    global->setAttr(kShardedAttrName, like->getAttr(kShardedAttrName));
  return global;
}

Value moe::gatherNorms(OpBuilder &b, Location loc, FlatSymbolRefAttr grid,
                       ArrayRef<int16_t> axes, int64_t ranks, Value norm) {
  Type element = cast<RankedTensorType>(norm.getType()).getElementType();
  Value mine =
      tensor::ExpandShapeOp::create(b, loc, RankedTensorType::get({1}, element),
                                    norm, ArrayRef<ReassociationIndices>{});
  return shard::AllGatherOp::create(b, loc,
                                    RankedTensorType::get({ranks}, element),
                                    grid.getValue(), axes, mine, APInt(64, 0));
}

FailureOr<SmallVector<moe::AdamWOp>>
moe::optimizerUpdates(ModuleOp module, StringRef function, StringRef pass) {
  SmallVector<AdamWOp> updates;
  if (auto step = module.lookupSymbol<func::FuncOp>(function))
    updates = llvm::to_vector(step.getOps<AdamWOp>());
  if (updates.empty())
    return module.emitError() << pass << ": no moe.adamw in @" << function
                              << " (run moe-optimizer first)";
  return updates;
}
