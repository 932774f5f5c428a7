//===- StateGlobals.cpp - training state that passes add ------------------===//

#include "moe/Transforms/StateGlobals.h"
#include "moe/MoeDialect.h"

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
