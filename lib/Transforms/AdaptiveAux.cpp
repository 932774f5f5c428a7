//===- AdaptiveAux.cpp - Skywork-MoE adaptive aux-loss coefficients -------===//
//
// Each layer's coefficient is found from the IR's structure rather than from
// names: the non-trainable global that multiplies a moe.aux_loss, whose
// gate's indices feed the layer's moe.dispatch, or its moe.route in an
// expert-parallel program (whose drop count drives the update).
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/PassOrder.h"
#include "moe/Transforms/Passes.h"
#include "moe/Transforms/TrainingSettings.h"

#include <cmath>

namespace mlir::moe {
#define GEN_PASS_DEF_ADAPTIVEAUX
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

struct LayerCoefficient {
  ml_program::GlobalLoadOp alpha;
  Value dropped;
  int64_t assignments;
};

/// The coefficient load that scales `aux` in a moe.mul, if any.
ml_program::GlobalLoadOp coefficientOf(AuxLossOp aux,
                                       SymbolTableCollection &symbols) {
  for (Operation *user : aux->getUsers()) {
    auto mul = dyn_cast<MulOp>(user);
    if (!mul)
      continue;
    Value other = mul.getLhs() == aux.getResult() ? mul.getRhs() : mul.getLhs();
    auto load = other.getDefiningOp<ml_program::GlobalLoadOp>();
    if (!load)
      continue;
    ml_program::GlobalOp global = load.getGlobalOp(symbols);
    if (global && !global->hasAttr(kTrainableAttrName))
      return load;
  }
  return {};
}

struct AdaptiveAuxPass : moe::impl::AdaptiveAuxBase<AdaptiveAuxPass> {
  using AdaptiveAuxBase::AdaptiveAuxBase;

  void runOnOperation() override;

private:
  FailureOr<SmallVector<LayerCoefficient>> findLayers(func::FuncOp function);
};

FailureOr<SmallVector<LayerCoefficient>>
AdaptiveAuxPass::findLayers(func::FuncOp function) {
  SymbolTableCollection symbols;
  SmallVector<LayerCoefficient> layers;
  DenseSet<Operation *> seenGlobals;
  WalkResult result = function.walk([&](AuxLossOp aux) {
    ml_program::GlobalLoadOp alpha = coefficientOf(aux, symbols);
    if (!alpha) {
      // A backward recomputation of the layer leaves unscaled copies; only
      // a loss that is scaled needs a coefficient.
      if (aux->use_empty())
        return WalkResult::advance();
      aux.emitError() << "moe-adaptive-aux: this aux loss is not scaled by a "
                         "non-trainable coefficient global";
      return WalkResult::interrupt();
    }
    Value dropped;
    for (Operation *user : aux.getIndices().getUsers()) {
      if (auto dispatch = dyn_cast<DispatchOp>(user))
        dropped = dispatch.getDropped();
      if (auto route = dyn_cast<RouteOp>(user))
        dropped = route.getDropped();
    }
    if (!dropped) {
      aux.emitError() << "moe-adaptive-aux: no moe.dispatch or moe.route uses "
                         "the routing of this aux loss, so its drop rate is "
                         "unknown";
      return WalkResult::interrupt();
    }
    if (!seenGlobals.insert(alpha.getGlobalOp(symbols)).second) {
      alpha.emitError() << "moe-adaptive-aux: coefficient @"
                        << alpha.getGlobal().getLeafReference()
                        << " scales more than one aux loss";
      return WalkResult::interrupt();
    }
    ArrayRef<int64_t> shape =
        cast<RankedTensorType>(aux.getIndices().getType()).getShape();
    layers.push_back({alpha, dropped, shape[0] * shape[1]});
    return WalkResult::advance();
  });
  if (result.wasInterrupted())
    return failure();
  return layers;
}

void AdaptiveAuxPass::runOnOperation() {
  ModuleOp module = getOperation();
  func::FuncOp function =
      trainStepToExtend(module, getArgument(), functionName);
  if (!function)
    return signalPassFailure();
  if (!(xi >= 0) || !std::isfinite(xi) || !(alphaMax >= 0) ||
      !std::isfinite(alphaMax) || !(beta >= 0 && beta <= 1) ||
      !std::isfinite(initialAlpha)) {
    module.emitError() << "moe-adaptive-aux: need finite xi >= 0 and "
                          "alpha-max >= 0, 0 <= beta <= 1 and a finite "
                          "initial-alpha (negative: the model's), got xi="
                       << xi << " alpha-max=" << alphaMax << " beta=" << beta
                       << " initial-alpha=" << initialAlpha;
    return signalPassFailure();
  }
  // Both rewrite the step's coefficient updates as this pass made them.
  if (failed(requireRunsBefore(module, getArgument(),
                               {"moe-accumulate-gradients"})))
    return signalPassFailure();
  if (failed(requireOptimizerNotDistributed(module, getArgument())))
    return signalPassFailure();
  if (!function.getOps<AdaptiveAuxCoeffOp>().empty()) {
    function.emitError() << "moe-adaptive-aux: @" << functionName
                         << " already updates its coefficients (was the pass "
                            "applied twice?)";
    return signalPassFailure();
  }
  FailureOr<SmallVector<LayerCoefficient>> layers = findLayers(function);
  if (failed(layers))
    return signalPassFailure();
  if (layers->empty()) {
    bool pooled = !function.getOps<PooledAuxLossOp>().empty();
    function.emitError(
        pooled ? "moe-adaptive-aux: the aux loss is pooled over all "
                 "layers (moe.pooled_aux_loss, kind "
                 "\"transformers\"); adaptive coefficients need "
                 "one aux loss per layer"
               : "moe-adaptive-aux: the function has no aux loss to "
                 "adapt (no MoE layer, or aux losses switched off)");
    return signalPassFailure();
  }
  // The layers' coefficients are of one type.
  Type alphaType = layers->front().alpha.getType();
  if (initialAlpha >= 0 && !isFiniteIn(initialAlpha, alphaType)) {
    module.emitError() << "moe-adaptive-aux: initial-alpha " << initialAlpha
                       << " is beyond the range of the coefficient's "
                       << alphaType;
    return signalPassFailure();
  }
  recordTrainingSettings(*this, getOperation());

  SymbolTableCollection symbols;
  OpBuilder b(function.getBody().front().getTerminator());
  for (LayerCoefficient &layer : *layers) {
    ml_program::GlobalOp global = layer.alpha.getGlobalOp(symbols);
    // The step now moves it: training state, no longer the config's.
    global->removeAttr(kConfigConstantAttrName);
    if (initialAlpha >= 0)
      global->setAttr(kInitAttrName,
                      InitAttr::get(b.getContext(), InitKind::constant,
                                    APFloat(initialAlpha.getValue())));
    // The step's loss used alpha_i; alpha_{i+1} comes from this step's drops.
    Value next = AdaptiveAuxCoeffOp::create(
        b, layer.alpha.getLoc(), layer.alpha.getType(), layer.alpha,
        layer.dropped, b.getF64FloatAttr(xi), b.getF64FloatAttr(alphaMax),
        b.getF64FloatAttr(beta), b.getI64IntegerAttr(layer.assignments));
    ml_program::GlobalStoreOp::create(b, layer.alpha.getLoc(),
                                      layer.alpha.getGlobalAttr(), next);
  }
}

} // namespace
