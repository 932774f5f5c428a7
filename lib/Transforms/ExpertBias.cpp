//===- ExpertBias.cpp - DeepSeek-V3's auxiliary-loss-free balancing -------===//
//
// Each layer's bias is found from the IR's structure: the non-trainable
// global that a moe.gate takes as its bias, where that gate's indices feed
// the layer's moe.dispatch, or its moe.route in an expert-parallel program
// (the gate of the whole batch, so that every rank moves the bias alike).
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/PassOrder.h"
#include "moe/Transforms/Passes.h"
#include "moe/Transforms/TrainingSettings.h"

#include "llvm/ADT/MapVector.h"

#include <cmath>

namespace mlir::moe {
#define GEN_PASS_DEF_EXPERTBIAS
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// The load of a state global that `value` is, or null.
ml_program::GlobalLoadOp stateLoad(Value value,
                                   SymbolTableCollection &symbols) {
  auto load = value ? value.getDefiningOp<ml_program::GlobalLoadOp>()
                    : ml_program::GlobalLoadOp();
  if (!load)
    return {};
  ml_program::GlobalOp global = load.getGlobalOp(symbols);
  return global && !global->hasAttr(kTrainableAttrName)
             ? load
             : ml_program::GlobalLoadOp();
}

/// Whether the layer's capacity decisions read `gate`'s indices.
bool routesTheLayer(GateOp gate) {
  return llvm::any_of(gate.getIndices().getUsers(), [](Operation *user) {
    return isa<DispatchOp, RouteOp>(user);
  });
}

struct ExpertBiasPass : moe::impl::ExpertBiasBase<ExpertBiasPass> {
  using ExpertBiasBase::ExpertBiasBase;

  void runOnOperation() override;
};

void ExpertBiasPass::runOnOperation() {
  ModuleOp module = getOperation();
  func::FuncOp function =
      trainStepToExtend(module, getArgument(), functionName);
  if (!function)
    return signalPassFailure();
  if (!(rate >= 0) || !std::isfinite(rate)) {
    module.emitError() << "moe-expert-bias: need a finite rate >= 0, got "
                       << rate;
    return signalPassFailure();
  }
  // Both rewrite the step's state updates as this pass made them.
  if (failed(requireRunsBefore(module, getArgument(),
                               {"moe-accumulate-gradients"})) ||
      failed(requireOptimizerNotDistributed(module, getArgument())))
    return signalPassFailure();
  if (!function.getOps<ExpertBiasUpdateOp>().empty()) {
    function.emitError() << "moe-expert-bias: @" << functionName
                         << " already updates its expert biases (was the "
                            "pass applied twice?)";
    return signalPassFailure();
  }

  // A backward recomputation repeats a layer's gate: its first routing
  // gate, in program order, moves the bias. (An SPMD program's rank-local
  // gate chooses with the bias too, but routes nothing.)
  SymbolTableCollection symbols;
  SmallVector<std::pair<ml_program::GlobalLoadOp, GateOp>> layers;
  DenseSet<Operation *> routed;
  llvm::MapVector<Operation *, GateOp> biased;
  bool failedGate = false;
  function.walk([&](GateOp gate) {
    ml_program::GlobalLoadOp bias = stateLoad(gate.getBias(), symbols);
    if (gate.getBias() && !bias) {
      gate.emitError("moe-expert-bias: this gate's bias is not the value of "
                     "a non-trainable global");
      failedGate = true;
    }
    if (!bias)
      return;
    Operation *global = bias.getGlobalOp(symbols);
    biased.insert({global, gate});
    if (routesTheLayer(gate) && routed.insert(global).second)
      layers.push_back({bias, gate});
  });
  for (auto [global, gate] : biased)
    if (!routed.contains(global)) {
      gate.emitError("moe-expert-bias: no moe.dispatch or moe.route reads "
                     "this gate's choices, so its bias's load is unknown");
      failedGate = true;
    }
  if (failedGate)
    return signalPassFailure();
  if (layers.empty())
    return;
  recordTrainingSettings(*this, module);

  OpBuilder b(function.getBody().front().getTerminator());
  for (auto [bias, gate] : layers) {
    // The step moves it: training state, not the config's.
    bias.getGlobalOp(symbols)->removeAttr(kConfigConstantAttrName);
    auto biasType = cast<RankedTensorType>(bias.getType());
    Location loc = bias.getLoc();
    // The step's loads move the bias that chose them.
    Value load = ExpertLoadOp::create(
        b, loc, RankedTensorType::get(biasType.getShape(), b.getI64Type()),
        gate.getIndices());
    Value next = ExpertBiasUpdateOp::create(b, loc, biasType, bias, load,
                                            b.getF64FloatAttr(rate));
    ml_program::GlobalStoreOp::create(b, loc, bias.getGlobalAttr(), next);
  }
}

} // namespace
