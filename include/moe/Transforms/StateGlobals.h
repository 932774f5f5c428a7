//===- StateGlobals.h - training state that passes add ----------*- C++ -*-===//
//
// The optimizer's moments and step count and the gradient accumulators are
// globals beside the weights, declared the same way: mutable, private,
// with a constant initializer, and split over the ranks like the parameter
// they serve. The passes that rewrite a complete step find its updates of
// that state here too.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TRANSFORMS_STATEGLOBALS_H
#define MOE_TRANSFORMS_STATEGLOBALS_H

#include "moe/MoeDialect.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/Builders.h"

namespace mlir::moe {

/// Declares global `name` of `type` at `b`'s insertion point, initialized
/// to the constant `value` and sharded like `like` (a parameter, or null).
ml_program::GlobalOp declareStateGlobal(OpBuilder &b, Location loc,
                                        StringRef name, RankedTensorType type,
                                        double value,
                                        ml_program::GlobalOp like);

/// The moe.adamw updates of train step `function`, for the passes that
/// rewrite a complete step; failure, with an error naming `pass`, when
/// there are none.
FailureOr<SmallVector<AdamWOp>>
optimizerUpdates(ModuleOp module, StringRef function, StringRef pass);

/// The scalar `norm` of every rank of a group over `axes` of `grid` (`ranks`
/// of them), as a vector in group order, for a global norm of norms.
Value gatherNorms(OpBuilder &b, Location loc, FlatSymbolRefAttr grid,
                  ArrayRef<int16_t> axes, int64_t ranks, Value norm);

} // namespace mlir::moe

#endif // MOE_TRANSFORMS_STATEGLOBALS_H
