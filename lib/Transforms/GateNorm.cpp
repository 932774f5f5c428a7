//===- GateNorm.cpp - set the gating logit normalization of every gate ----===//
//
// A pass option rather than only a config key, so that one imported model
// can be compiled with and without normalization (the paper's ablation).
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/PassOrder.h"
#include "moe/Transforms/Passes.h"
#include "moe/Transforms/Patterns.h"

#include "mlir/Transforms/WalkPatternRewriteDriver.h"
#include "llvm/Support/Debug.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

#define DEBUG_TYPE "moe-gate-norm"

namespace mlir::moe {
#define GEN_PASS_DEF_GATENORM
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

struct SetGateNormalization : OpRewritePattern<GateOp> {
  SetGateNormalization(MLIRContext *context, double lambda, double eps)
      : OpRewritePattern(context), lambda(lambda), eps(eps) {}

  /// Whether `gate` already normalizes as asked.
  bool isNormalizedAsAsked(GateOp gate) const {
    if (gate.getNormLambdaAttr())
      return false;
    auto norm = gate.getLogits().getDefiningOp<GateNormOp>();
    if (lambda == 0)
      return !norm;
    return norm && norm.getNormLambda().convertToDouble() == lambda &&
           norm.getNormEps().convertToDouble() == eps;
  }

  LogicalResult matchAndRewrite(GateOp gate,
                                PatternRewriter &rewriter) const override {
    if (isNormalizedAsAsked(gate))
      return rewriter.notifyMatchFailure(gate, "already normalized as asked");
    LLVM_DEBUG(llvm::dbgs()
               << "setting lambda=" << lambda << " on " << gate << "\n");
    Value logits = gate.getLogits();
    auto oldNorm = logits.getDefiningOp<GateNormOp>();
    if (oldNorm)
      logits = oldNorm.getLogits();
    if (lambda != 0) {
      rewriter.setInsertionPoint(gate);
      auto norm = GateNormOp::create(rewriter, gate.getLoc(), logits.getType(),
                                     logits, rewriter.getF64FloatAttr(lambda),
                                     rewriter.getF64FloatAttr(eps));
      copyOrigin(gate, norm);
      logits = norm.getResult();
    }
    rewriter.modifyOpInPlace(gate, [&] {
      gate.removeNormLambdaAttr();
      gate.getLogitsMutable().assign(logits);
    });
    if (oldNorm && oldNorm->use_empty())
      rewriter.eraseOp(oldNorm);
    return success();
  }

  double lambda, eps;
};

struct GateNormPass : moe::impl::GateNormBase<GateNormPass> {
  using GateNormBase::GateNormBase;

  void runOnOperation() override {
    if (failed(requireBeforeCodegen(getOperation(), getArgument())))
      return signalPassFailure();
    // Within f32's range, as a config's moe_gate_norm_lambda: the kernels
    // compute in f32.
    constexpr double kLargest = std::numeric_limits<float>::max();
    if (!(lambda >= 0) || !(lambda <= kLargest) || !(epsilon > 0) ||
        !(epsilon <= kLargest)) {
      getOperation().emitError()
          << "moe-gate-norm: lambda must be >= 0 and eps > 0, both finite in "
             "f32, got lambda="
          << lambda << " eps=" << epsilon;
      return signalPassFailure();
    }
    // As moe-adaptive-aux: an option that would do nothing is a mistake.
    if (!getOperation()
             ->walk([](GateOp) { return WalkResult::interrupt(); })
             .wasInterrupted()) {
      getOperation().emitError(
          "moe-gate-norm: the model has no MoE layer (no moe.gate) to "
          "normalize");
      return signalPassFailure();
    }
    if (lambda != 0) {
      WalkResult tooLarge = getOperation()->walk([&](GateOp gate) {
        int64_t experts =
            cast<ShapedType>(gate.getLogits().getType()).getShape()[1];
        double logit = largestNormalizedLogit(lambda, experts);
        if (logit <= kLargest)
          return WalkResult::advance();
        gate.emitError() << "moe-gate-norm: lambda=" << lambda
                         << " is too large for this gate's " << experts
                         << " experts: the largest normalized logit, lambda "
                            "* sqrt(experts - 1), is "
                         << logit << ", beyond f32";
        return WalkResult::interrupt();
      });
      if (tooLarge.wasInterrupted())
        return signalPassFailure();
    }
    // Autodiff wrote the backward of the gates' normalization as it was.
    if (failed(
            requireRunsBefore(getOperation(), getArgument(), {"moe-autodiff"})))
      return signalPassFailure();
    RewritePatternSet patterns(&getContext());
    populateGateNormPatterns(patterns, lambda, epsilon);
    walkAndApplyPatterns(getOperation(), std::move(patterns));
    recordInConfig();
  }

  /// The config the model records (its checkpoints' and moe-export's
  /// config.json) says how it routes now: a model trained with normalization
  /// must not be resumed or exported as one without.
  void recordInConfig() {
    auto text = getOperation()->getAttrOfType<StringAttr>(kConfigAttrName);
    if (!text)
      return;
    // The dialect verified it is a JSON object of bounded depth.
    nlohmann::json config = nlohmann::json::parse(text.getValue().str());
    config.erase("moe_use_logits_norm");
    config.erase("moe_gate_norm_std");
    // Without the key, a config says "no normalization".
    config.erase("moe_gate_norm_lambda");
    if (lambda != 0)
      config["moe_gate_norm_lambda"] = lambda.getValue();
    getOperation()->setAttr(kConfigAttrName,
                            StringAttr::get(&getContext(), config.dump(2)));
  }
};

} // namespace

void moe::populateGateNormPatterns(RewritePatternSet &patterns, double lambda,
                                   double eps) {
  patterns.add<SetGateNormalization>(patterns.getContext(), lambda, eps);
}

// Unity builds compile the next file of the batch after this one.
#undef DEBUG_TYPE
