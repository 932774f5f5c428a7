//===- StateGlobals.cpp - training state that passes add ------------------===//

#include "moe/Transforms/StateGlobals.h"
#include "moe/MoeDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

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
