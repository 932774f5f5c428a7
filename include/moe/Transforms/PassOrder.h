//===- PassOrder.h - which passes a pass must run before --------*- C++ -*-===//
//
// The train pipeline's passes rewrite what the passes before them made, so
// each must run before some others. A pass run too late would fail on ops
// it does not know, or silently undo another's work; these checks say so
// first, naming the order. A pass is known to have run by what it leaves:
// its record in moe.training, the distributed optimizer's state parts, the
// code generation's memory plan.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TRANSFORMS_PASSORDER_H
#define MOE_TRANSFORMS_PASSORDER_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::moe {

/// Fails, with an error naming `pass`, when any of `later` (passes that
/// record their settings in moe.training) has run on `module`.
LogicalResult requireRunsBefore(ModuleOp module, StringRef pass,
                                ArrayRef<StringRef> later);

/// Fails, with an error naming `pass`, when moe-distributed-optimizer has
/// split the optimizer state of `module` over the ranks: the passes that
/// rewrite a step's updates run before it (and it runs once).
LogicalResult requireOptimizerNotDistributed(ModuleOp module, StringRef pass);

/// The train step `functionName` of `module` that `pass` extends, as
/// moe-autodiff makes it, before code generation: null, with an error
/// naming `pass`, where it is missing or the memory already planned.
func::FuncOp trainStepToExtend(ModuleOp module, StringRef pass,
                               StringRef functionName);

/// Whether moe-plan-memory has planned a function of `module`.
bool hasMemoryPlan(ModuleOp module);

/// Fails, with an error naming `pass`, when code generation has planned the
/// memory of `module`: the passes that rewrite the model run on its ops as
/// the importer and the train pipeline make them.
LogicalResult requireBeforeCodegen(ModuleOp module, StringRef pass);

} // namespace mlir::moe

#endif // MOE_TRANSFORMS_PASSORDER_H
