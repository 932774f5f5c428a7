//===- FuseRouter.cpp - fold gating logit normalization into the gate -----===//
//
// The expanded form (moe.gate_norm, then moe.gate) reads and writes the
// [tokens, experts] logits once more than needed, forward and backward; the
// fused gate normalizes each row in registers right before its softmax.
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/PassOrder.h"
#include "moe/Transforms/Passes.h"
#include "moe/Transforms/Patterns.h"

#include "mlir/Transforms/WalkPatternRewriteDriver.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "moe-fuse-router"

namespace mlir::moe {
#define GEN_PASS_DEF_FUSEROUTER
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

bool moe::canFoldGateNormIntoGate(GateNormOp norm, GateOp gate) {
  return gate.getLogits() == norm.getResult() && !gate.getNormLambdaAttr();
}

namespace {

struct FoldGateNormIntoGate : OpRewritePattern<GateOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(GateOp gate,
                                PatternRewriter &rewriter) const override {
    auto norm = gate.getLogits().getDefiningOp<GateNormOp>();
    if (!norm)
      return rewriter.notifyMatchFailure(gate, "logits are not normalized");
    if (!canFoldGateNormIntoGate(norm, gate)) {
      LLVM_DEBUG(llvm::dbgs() << "not folding " << norm
                              << ": the gate already normalizes\n");
      return rewriter.notifyMatchFailure(gate, "gate already normalizes");
    }
    LLVM_DEBUG(llvm::dbgs() << "folding " << norm << " into " << gate << "\n");
    rewriter.modifyOpInPlace(gate, [&] {
      gate.setNormLambdaAttr(norm.getNormLambdaAttr());
      gate.setNormEpsAttr(norm.getNormEpsAttr());
      gate.getLogitsMutable().assign(norm.getLogits());
    });
    if (norm->use_empty())
      rewriter.eraseOp(norm);
    return success();
  }
};

struct FuseRouterPass : moe::impl::FuseRouterBase<FuseRouterPass> {
  void runOnOperation() override {
    if (failed(requireBeforeCodegen(getOperation(), getArgument())))
      return signalPassFailure();
    RewritePatternSet patterns(&getContext());
    populateFuseRouterPatterns(patterns);
    walkAndApplyPatterns(getOperation(), std::move(patterns));
  }
};

} // namespace

void moe::populateFuseRouterPatterns(RewritePatternSet &patterns) {
  patterns.add<FoldGateNormIntoGate>(patterns.getContext());
}

// Unity builds compile the next file of the batch after this one.
#undef DEBUG_TYPE
