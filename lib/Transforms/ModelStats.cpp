//===- ModelStats.cpp - report parameter counts of a model ----------------===//
//
// Total and active parameters are the first sanity check of an imported model
// (Skywork-MoE: 146B total, 22B active), so the count comes from the IR itself:
// trainable globals, and for expert weights the fraction top_k / experts that
// one token uses.
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/Passes.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MODELSTATS
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

int64_t numElements(ml_program::GlobalOp global) {
  auto type = dyn_cast<ShapedType>(global.getType());
  return type && type.hasStaticShape() ? type.getNumElements() : 0;
}

/// 146356167168 -> "146356167168 (146.36B)", 4658304 -> "4658304 (4.66M)".
std::string formatCount(int64_t count) {
  double value = static_cast<double>(count);
  std::string text = std::to_string(count);
  if (value >= 1e9)
    return text + llvm::formatv(" ({0:F2}B)", value / 1e9).str();
  if (value >= 1e6)
    return text + llvm::formatv(" ({0:F2}M)", value / 1e6).str();
  return text;
}

struct ModelStatsPass : moe::impl::ModelStatsBase<ModelStatsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    // One rank's program holds its parts of the globals, and its experts
    // read tokens that an all-to-all brought, not a dispatch.
    auto grids = module.getOps<shard::GridOp>();
    if (!grids.empty()) {
      (*grids.begin()).emitError()
          << "moe-model-stats counts a whole model: run it "
             "before moe-expert-parallel, not on one rank's "
             "SPMD program";
      return signalPassFailure();
    }
    SymbolTableCollection symbols;

    int64_t parameters = 0, stateGlobals = 0, stateElements = 0;
    module.walk([&](ml_program::GlobalOp global) {
      if (global->hasAttr(kTrainableAttrName)) {
        parameters += numElements(global);
      } else {
        ++stateGlobals;
        stateElements += numElements(global);
      }
    });

    // Each expert_ffn's weights are used by top_k of its experts per token.
    // A train step repeats the forward ops, so weights are counted by global,
    // not by op.
    llvm::StringMap<double> activeFraction;
    llvm::StringSet<> layerWeights;
    int64_t experts = 0, topK = 0;
    module.walk([&](ExpertFfnOp ffn) {
      // Through mixed precision's bf16 copies of queues and weights.
      auto dispatch =
          beforeBf16Copy(ffn.getInput()).getDefiningOp<DispatchOp>();
      if (!dispatch)
        return;
      experts = cast<ShapedType>(ffn.getInput().getType()).getDimSize(0);
      topK = cast<ShapedType>(dispatch.getIndices().getType()).getDimSize(1);
      for (Value weight :
           {ffn.getGateProj(), ffn.getUpProj(), ffn.getDownProj()}) {
        auto load =
            beforeBf16Copy(weight).getDefiningOp<ml_program::GlobalLoadOp>();
        if (!load)
          continue;
        StringRef name = load.getGlobal().getLeafReference();
        activeFraction[name] = double(topK) / double(experts);
        if (weight == ffn.getGateProj())
          layerWeights.insert(name);
      }
    });
    int64_t moeLayers = layerWeights.size();
    int64_t expertParameters = 0;
    double inactiveParameters = 0;
    for (const auto &entry : activeFraction) {
      auto global = symbols.lookupNearestSymbolFrom<ml_program::GlobalOp>(
          module, StringAttr::get(module.getContext(), entry.getKey()));
      int64_t count = global ? numElements(global) : 0;
      expertParameters += count;
      inactiveParameters += count * (1.0 - entry.getValue());
    }
    int64_t active = parameters - static_cast<int64_t>(inactiveParameters);

    llvm::raw_ostream &os = llvm::outs();
    os << "moe-model-stats\n";
    os << "  moe layers: " << moeLayers << ", experts: " << experts
       << ", top_k: " << topK << "\n";
    os << "  parameters: " << formatCount(parameters) << "\n";
    os << "  expert parameters: " << formatCount(expertParameters) << "\n";
    os << "  active parameters per token: " << formatCount(active) << "\n";
    os << "  state globals: " << stateGlobals << " (" << stateElements
       << " elements)\n";
    markAllAnalysesPreserved();
  }
};

} // namespace
