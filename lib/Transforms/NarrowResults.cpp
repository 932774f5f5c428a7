//===- NarrowResults.cpp - bf16 conversions folded into their producers ---===//
//
// Each `arith.truncf` that mixed precision places after an op costs a pass
// over memory (read 4 bytes, write 2) on top of the op's f32 write; on a GPU,
// where the step's GEMMs are fast, those passes are a large share of the
// step. An op whose kernels store bf16 (NarrowableResultOpInterface) takes
// the conversion over when the conversion is its result's only reader and
// the op computes that result in f32 (a GEMM over bf16 operands does).
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/PassOrder.h"
#include "moe/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace mlir::moe {
#define GEN_PASS_DEF_NARROWRESULTS
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// The op result that `truncate` narrows, seen through reshapes (views,
/// such as the collapse of a gradient's heads before its GEMMs), each the
/// only reader of what it views; `views` gets them, outermost first. Null
/// unless the conversion can fold into the result's op.
OpResult foldableResult(arith::TruncFOp truncate,
                        SmallVectorImpl<Operation *> &views) {
  if (!getElementTypeOrSelf(truncate.getIn()).isF32() ||
      !getElementTypeOrSelf(truncate.getOut()).isBF16())
    return nullptr;
  Value value = truncate.getIn();
  while (auto view = value.getDefiningOp<ViewLikeOpInterface>()) {
    if (!value.hasOneUse() || view->getNumResults() != 1)
      return nullptr;
    views.push_back(view);
    value = view.getViewSource();
  }
  auto result = dyn_cast<OpResult>(value);
  if (!result || !result.hasOneUse())
    return nullptr;
  auto producer = dyn_cast<NarrowableResultOpInterface>(result.getOwner());
  if (!producer || !producer.isNarrowableResult(result.getResultNumber()))
    return nullptr;
  return result;
}

/// `value` retyped to bf16 elements.
void narrowType(Value value) {
  value.setType(cast<ShapedType>(value.getType())
                    .clone(BFloat16Type::get(value.getContext())));
}

struct NarrowResultsPass : moe::impl::NarrowResultsBase<NarrowResultsPass> {
  void runOnOperation() override {
    // A plan's offsets and lifetimes are of the values as planned.
    if (failed(requireBeforeCodegen(getOperation(), getArgument())))
      return signalPassFailure();
    SmallVector<arith::TruncFOp> truncates;
    getOperation().walk(
        [&](arith::TruncFOp truncate) { truncates.push_back(truncate); });
    for (arith::TruncFOp truncate : truncates) {
      SmallVector<Operation *> views;
      OpResult result = foldableResult(truncate, views);
      if (!result)
        continue;
      narrowType(result);
      for (Operation *view : llvm::reverse(views))
        narrowType(view->getResult(0));
      truncate.getOut().replaceAllUsesWith(truncate.getIn());
      truncate.erase();
    }
  }
};

} // namespace
