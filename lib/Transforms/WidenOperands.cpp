//===- WidenOperands.cpp - bf16 conversions folded into their readers -----===//
//
// Mixed precision keeps some activations for the backward as bf16 and widens
// each right before the op that reads it (`arith.extf`): a pass over memory
// that reads 2 bytes and writes 4, then the op reads the 4 again. An op whose
// kernels read bf16 (WidenableOperandOpInterface) takes the conversion over.
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/PassOrder.h"
#include "moe/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/TypeUtilities.h"

namespace mlir::moe {
#define GEN_PASS_DEF_WIDENOPERANDS
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Whether `use` of a bf16 -> f32 conversion's result can read the
/// conversion's bf16 input instead.
bool canWiden(OpOperand &use) {
  auto reader = dyn_cast<WidenableOperandOpInterface>(use.getOwner());
  return reader && reader.isWidenableOperand(use.getOperandNumber());
}

struct WidenOperandsPass : moe::impl::WidenOperandsBase<WidenOperandsPass> {
  void runOnOperation() override {
    // A plan's offsets and lifetimes are of the values as planned.
    if (failed(requireBeforeCodegen(getOperation(), getArgument())))
      return signalPassFailure();
    SmallVector<arith::ExtFOp> extensions;
    getOperation().walk([&](arith::ExtFOp extend) {
      if (getElementTypeOrSelf(extend.getIn()).isBF16() &&
          getElementTypeOrSelf(extend.getOut()).isF32())
        extensions.push_back(extend);
    });
    for (arith::ExtFOp extend : extensions) {
      extend.getOut().replaceUsesWithIf(extend.getIn(), canWiden);
      if (extend.use_empty())
        extend.erase();
    }
  }
};

} // namespace
