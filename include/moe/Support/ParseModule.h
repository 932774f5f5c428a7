//===- ParseModule.h - parsing and verifying a tool's module ----*- C++ -*-===//
//
// MLIR 22's shard and tensor reshape verifiers crash on some malformed ops
// instead of rejecting them; the tools reject those ops before MLIR's
// verifiers meet them.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_SUPPORT_PARSEMODULE_H
#define MOE_SUPPORT_PARSEMODULE_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/SourceMgr.h"

namespace mlir::moe {

/// Emits an error on each op that MLIR 22's verifiers would crash on or
/// read out of bounds for: a grid with a dimension of 0 (all_slice's check
/// divides by it), an all_slice, all_to_all, reduce_scatter or scatter
/// whose tensor axis lies outside its operand's rank, and a
/// tensor.expand_shape or collapse_shape with an empty reassociation group.
/// Fails if there is one.
LogicalResult rejectVerifierCrashes(Operation *root);

/// Parses the main file of `sourceMgr` as a module and verifies it, after
/// rejectVerifierCrashes. Null, with diagnostics emitted, on failure.
OwningOpRef<ModuleOp> parseAndVerifyModule(llvm::SourceMgr &sourceMgr,
                                           MLIRContext *context);

} // namespace mlir::moe

#endif // MOE_SUPPORT_PARSEMODULE_H
