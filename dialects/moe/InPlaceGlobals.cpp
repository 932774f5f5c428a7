//===- InPlaceGlobals.cpp - which globals an op may update in place -------===//
//
// Shared by the memory planner, which marks such ops moe.in_place, and the
// dialect's verifier, which checks every marked op still has that shape.
//
//===----------------------------------------------------------------------===//

#include "moe/MoeDialect.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"

using namespace mlir;

SmallVector<StringRef> mlir::moe::inPlaceGlobals(Operation *op) {
  auto inPlace = dyn_cast<InPlaceOpInterface>(op);
  if (!inPlace)
    return {};
  SmallVector<StringRef> globals;
  for (OpResult result : op->getResults()) {
    if (!result.hasOneUse())
      return {};
    // The verifier asks before the op's own checks have run: an op may
    // lack the operand its interface names.
    unsigned operand = inPlace.getInPlaceOperandIndex(result.getResultNumber());
    if (operand >= op->getNumOperands())
      return {};
    auto store = dyn_cast<ml_program::GlobalStoreOp>(*result.user_begin());
    auto load =
        op->getOperand(operand).getDefiningOp<ml_program::GlobalLoadOp>();
    if (!store || !load || load.getGlobal() != store.getGlobal())
      return {};
    globals.push_back(store.getGlobal().getLeafReference());
  }
  return globals;
}
