//===- FuseRouter.cpp - fold gating logit normalization into the gate -----===//
//
// The expanded form (moe.gate_norm, then moe.gate) reads and writes the
// [tokens, experts] logits once more than needed, forward and backward; the
// fused gate normalizes each row in registers right before its softmax.
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/Passes.h"

namespace mlir::moe {
#define GEN_PASS_DEF_FUSEROUTER
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

struct FuseRouterPass : moe::impl::FuseRouterBase<FuseRouterPass> {
  void runOnOperation() override {
    getOperation().walk([](GateOp gate) {
      auto norm = gate.getLogits().getDefiningOp<GateNormOp>();
      if (!norm || gate.getNormLambdaAttr())
        return;
      gate.setNormLambdaAttr(norm.getNormLambdaAttr());
      gate.setNormEpsAttr(norm.getNormEpsAttr());
      gate.getLogitsMutable().assign(norm.getLogits());
      if (norm->use_empty())
        norm.erase();
    });
  }
};

} // namespace
