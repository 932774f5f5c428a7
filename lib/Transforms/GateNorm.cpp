//===- GateNorm.cpp - set the gating logit normalization of every gate ----===//
//
// A pass option rather than only a config key, so that one imported model
// can be compiled with and without normalization (the paper's ablation).
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/Passes.h"

namespace mlir::moe {
#define GEN_PASS_DEF_GATENORM
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

struct GateNormPass : moe::impl::GateNormBase<GateNormPass> {
  using GateNormBase::GateNormBase;

  void runOnOperation() override {
    if (!(lambda >= 0) || !(epsilon > 0)) {
      getOperation().emitError()
          << "moe-gate-norm: lambda must be >= 0 and eps > 0, got lambda="
          << lambda << " eps=" << epsilon;
      return signalPassFailure();
    }
    getOperation().walk([&](GateOp gate) {
      Value logits = gate.getLogits();
      if (auto norm = logits.getDefiningOp<GateNormOp>()) {
        logits = norm.getLogits();
        gate.getLogitsMutable().assign(logits);
        if (norm->use_empty())
          norm.erase();
      }
      gate.removeNormLambdaAttr();
      if (lambda == 0)
        return;
      OpBuilder b(gate);
      Value normalized = GateNormOp::create(b, gate.getLoc(), logits.getType(),
                                            logits, b.getF64FloatAttr(lambda),
                                            b.getF64FloatAttr(epsilon));
      gate.getLogitsMutable().assign(normalized);
    });
  }
};

} // namespace
