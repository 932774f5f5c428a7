//===- Upcycle.cpp - moe-upcycle: a dense model becomes a MoE model -------===//
//
// Rebuilds an imported dense model as the MoE model of the same config with
// experts, through the importer (one definition of the MoE block), and
// records on every new global where its initial value comes from in the
// dense model's checkpoint (moert/Upcycle.h).
//
//===----------------------------------------------------------------------===//

#include "moe/Frontend/ModelBuilder.h"
#include "moe/Frontend/ModelConfig.h"
#include "moe/Frontend/TransformersModels.h"
#include "moe/Transforms/Passes.h"

#include "moert/Upcycle.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/Regex.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <optional>

namespace mlir::moe {
#define GEN_PASS_DEF_UPCYCLE
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

class UpcyclePass : public moe::impl::UpcycleBase<UpcyclePass> {
public:
  using UpcycleBase::UpcycleBase;

  void runOnOperation() override;

private:
  /// The MoE config: the dense one with experts.
  FailureOr<std::string> moeConfig(StringRef denseText,
                                   const ModelConfig &dense);
  /// The rule of the MoE model's trainable global `global`.
  FailureOr<moert::UpcycleRule>
  ruleFor(ml_program::GlobalOp global,
          const llvm::StringMap<Type> &denseGlobals);
};

FailureOr<std::string> UpcyclePass::moeConfig(StringRef denseText,
                                              const ModelConfig &dense) {
  ModuleOp module = getOperation();
  if (experts < 1 || topK < 1 || topK > experts || granularity < 1)
    return mlir::emitError(module.getLoc())
           << "moe-upcycle: need experts >= 1, 1 <= top-k <= experts and "
              "granularity >= 1, got experts="
           << experts.getValue() << " top-k=" << topK.getValue()
           << " granularity=" << granularity.getValue();
  int64_t routedExperts, chosenExperts;
  if (llvm::MulOverflow(experts.getValue(), granularity.getValue(),
                        routedExperts) ||
      llvm::MulOverflow(topK.getValue(), granularity.getValue(), chosenExperts))
    return mlir::emitError(module.getLoc())
           << "moe-upcycle: experts=" << experts.getValue()
           << " and top-k=" << topK.getValue()
           << " times granularity=" << granularity.getValue()
           << " overflow a 64-bit count";
  if (dense.intermediateSize % granularity != 0)
    return mlir::emitError(module.getLoc())
           << "moe-upcycle: granularity " << granularity.getValue()
           << " does not divide the FFN's intermediate_size "
           << dense.intermediateSize;
  for (double value : {noiseStd.getValue(), capacityFactor.getValue(),
                       auxLossCoeff.getValue(), zLossCoeff.getValue()})
    if (!(value >= 0) || !std::isfinite(value))
      return mlir::emitError(module.getLoc(),
                             "moe-upcycle: noise-std, capacity-factor, "
                             "aux-loss-coeff and z-loss-coeff must be finite "
                             "and >= 0");
  std::optional<GateScoring> gateScoring = symbolizeGateScoring(scoring);
  if (!gateScoring)
    return mlir::emitError(module.getLoc())
           << "moe-upcycle: scoring must be softmax or sigmoid, got '"
           << scoring.getValue() << "'";
  if (sharedExpert && ungatedSharedExpert)
    return mlir::emitError(module.getLoc(),
                           "moe-upcycle: shared-expert (gated) and "
                           "ungated-shared-expert: give one");
  nlohmann::json config = nlohmann::json::parse(denseText.str());
  // The MoE that transformers computes (a Mixtral, a Qwen3-MoE for Qwen3's
  // normalized query and key heads, a Dots1 for DeepSeek-style layers on
  // them, a GLM-4-MoE for those layers otherwise, a MiniMax-M2 for sigmoid
  // scores and a bias alone on whole-projection norms, an ERNIE 4.5 MoE for
  // softmax scores and a bias on RoPE's pairs, a HY V3 for DeepSeek-style
  // layers of one expert on Qwen3's, an EXAONE-MoE for them beside layers
  // without RoPE), as moe-export calls it, or
  // none (our keys alone describe it), its keys spelled as its class reads
  // them; the kind named below keeps the import from taking transformers'
  // defaults.
  ModelConfig upcycled = dense;
  upcycled.numExperts = routedExperts;
  if (sharedExpert) {
    upcycled.sharedExpertIntermediateSize = dense.intermediateSize;
    config["shared_expert_intermediate_size"] = dense.intermediateSize;
  }
  upcycled.topK = chosenExperts;
  upcycled.expertIntermediateSize = dense.intermediateSize / granularity;
  // G shared experts of F / G: the dense FFN's width.
  if (ungatedSharedExpert) {
    upcycled.sharedExpertIntermediateSize = dense.intermediateSize;
    upcycled.sharedExpertGated = false;
  }
  upcycled.scoring = *gateScoring;
  upcycled.expertBias = expertBias;
  if (upcycled.scoring != GateScoring::softmax)
    config["moe_router_score_function"] = scoring.getValue();
  if (expertBias)
    config["moe_router_enable_expert_bias"] = true;
  const TransformersModel *family = nullptr;
  if (llvm::Expected<const TransformersModel &> model =
          transformersModelOf(upcycled)) {
    family = &*model;
    config["model_type"] = model->modelType;
    config["architectures"] = {model->architecture};
  } else {
    llvm::consumeError(model.takeError());
    config.erase("model_type");
    config.erase("architectures");
  }
  // The dense model's attention as it read it (Llama's window is none,
  // whatever its config said): the new model_type's defaults (Qwen3's
  // head_dim and key-value heads apply to qwen3 only) must not change it.
  writeAttentionKeys(config, dense, family);
  // Nor its family's other defaults (ERNIE 4.5's RoPE base, pairs, epsilon,
  // tied embeddings and padding token).
  writeClassDefaultedKeys(config, dense, family);
  writeMultiplierKeys(config, dense, family);
  writeExpertCountKeys(config, upcycled, family);
  // Every layer's FFN becomes experts, which the family's keys must say
  // (GLM-4-MoE's and ERNIE 4.5 MoE's classes make the first layer dense by
  // default).
  writeLayerPlacementKeys(config, upcycled, family);
  config["moe_intermediate_size"] = upcycled.expertIntermediateSize;
  config.erase("moe_capacity_factor");
  if (capacityFactor > 0)
    config["moe_capacity_factor"] = capacityFactor.getValue();
  config.erase("router_aux_loss_coef");
  config["moe_aux_loss_coeff"] = auxLossCoeff.getValue();
  config.erase("router_z_loss_coef");
  config["moe_z_loss_coeff"] = zLossCoeff.getValue();
  // Named, so that a dense config's model_type cannot pick a kind that
  // ignores the coefficient.
  if (!config.contains("moe_aux_loss_kind"))
    config["moe_aux_loss_kind"] = "skywork";
  return config.dump(2);
}

FailureOr<moert::UpcycleRule>
UpcyclePass::ruleFor(ml_program::GlobalOp global,
                     const llvm::StringMap<Type> &denseGlobals) {
  std::string name = global.getSymName().str();
  static const llvm::Regex expertWeight(
      "^(model\\.layers\\.[0-9]+)\\.block_sparse_moe\\.experts\\.(w[123])$");
  static const llvm::Regex router(
      "^model\\.layers\\.[0-9]+\\.block_sparse_moe\\.gate\\.weight$");
  static const llvm::Regex sharedExpertWeight(
      "^(model\\.layers\\.[0-9]+\\.mlp)\\.shared_expert\\.([a-z_]+\\.weight)$");
  static const llvm::Regex sharedExpertGate(
      "^model\\.layers\\.[0-9]+\\.mlp\\.shared_expert_gate\\.weight$");
  static const llvm::Regex ungatedSharedExpertWeight(
      "^(model\\.layers\\.[0-9]+\\.mlp)\\.shared_experts\\.([a-z_]+)\\."
      "weight$");
  SmallVector<StringRef> match;
  moert::UpcycleRule rule;
  if (expertWeight.match(name, &match)) {
    rule.kind = moert::UpcycleRule::Kind::Experts;
    StringRef projection = match[2] == "w1"   ? "gate_proj"
                           : match[2] == "w3" ? "up_proj"
                                              : "down_proj";
    rule.source = (match[1] + ".mlp." + projection + ".weight").str();
    rule.copies = experts;
    rule.parts = granularity;
    // w2 is [hidden, ffn]: its FFN axis is 1, and its parts are scaled so
    // that the k * G experts' renormalized weights sum to the dense FFN, or
    // to half of it beside a shared expert.
    bool down = match[2] == "w2";
    rule.axis = down ? 1 : 0;
    bool shared = sharedExpert || ungatedSharedExpert;
    rule.scale = down ? granularity / (shared ? 2.0 : 1.0) : 1.0;
    rule.noiseStd = noiseStd;
  } else if (router.match(name)) {
    rule.kind = moert::UpcycleRule::Kind::Router;
    rule.copies = experts;
    rule.parts = granularity;
    return rule;
  } else if (sharedExpertWeight.match(name, &match)) {
    rule.source = (match[1] + "." + match[2]).str();
  } else if (ungatedSharedExpertWeight.match(name, &match)) {
    // Ungated, the copy's output halves at its down_proj.
    rule.source = (match[1] + "." + match[2] + ".weight").str();
    rule.scale = match[2] == "down_proj" ? 0.5 : 1.0;
  } else if (sharedExpertGate.match(name)) {
    rule.kind = moert::UpcycleRule::Kind::Zeros;
    return rule;
  } else {
    auto dense = denseGlobals.find(name);
    if (dense == denseGlobals.end() || dense->second != global.getType())
      return global.emitError()
             << "moe-upcycle: the dense model has no global '" << name
             << "' of type " << global.getType();
    rule.source = name;
  }
  if (!denseGlobals.contains(rule.source))
    return global.emitError()
           << "moe-upcycle: the dense model has no '" << rule.source
           << "' to build '" << name << "' from";
  return rule;
}

void UpcyclePass::runOnOperation() {
  ModuleOp module = getOperation();
  auto text = module->getAttrOfType<StringAttr>(kConfigAttrName);
  if (!text) {
    mlir::emitError(module.getLoc())
        << "moe-upcycle: the module records no model config ('"
        << kConfigAttrName << "'); upcycle a model that moe-import wrote";
    return signalPassFailure();
  }
  llvm::Expected<ModelConfig> dense =
      parseModelConfig(text.getValue(), kConfigAttrName);
  if (!dense) {
    mlir::emitError(module.getLoc())
        << "moe-upcycle: " << llvm::toString(dense.takeError());
    return signalPassFailure();
  }
  if (dense->isMoe()) {
    mlir::emitError(module.getLoc())
        << "moe-upcycle: the model already has " << dense->numExperts
        << " experts per layer";
    return signalPassFailure();
  }
  // The module is replaced by the imported MoE model: what other passes
  // recorded on it (training settings, a target) would be lost with their
  // work.
  bool rewritten = llvm::any_of(module->getAttrs(), [](NamedAttribute attr) {
    return attr.getName() != kConfigAttrName;
  });
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward || rewritten || module.lookupSymbol("train_step") ||
      !module.getOps<shard::GridOp>().empty() ||
      forward.getNumArguments() < 1 || forward.getNumResults() < 1) {
    mlir::emitError(module.getLoc(),
                    "moe-upcycle: runs on a model as moe-import writes it "
                    "(with @forward), before any other pass (the train "
                    "pipeline, moe-expert-parallel, moe-mixed-precision, "
                    "code generation)");
    return signalPassFailure();
  }
  // The same batch, sequence and dtype as the dense module.
  auto ids = dyn_cast<RankedTensorType>(forward.getArgumentTypes()[0]);
  auto loss = dyn_cast<RankedTensorType>(forward.getResultTypes()[0]);
  if (!ids || ids.getRank() != 2 || !ids.hasStaticShape() ||
      !ids.getElementType().isSignlessInteger(32) || !loss ||
      loss.getRank() != 0 ||
      !(loss.getElementType().isF32() || loss.getElementType().isF64())) {
    mlir::emitError(forward.getLoc())
        << "moe-upcycle: @forward must take the token ids first (a static "
           "tensor<BATCHxSEQxi32>) and return the f32 or f64 loss first (a "
           "scalar tensor), as moe-import writes it; it is "
        << forward.getFunctionType();
    return signalPassFailure();
  }
  if (!isFiniteIn(noiseStd, loss)) {
    mlir::emitError(module.getLoc())
        << "moe-upcycle: noise-std " << noiseStd.getValue()
        << " is beyond the range of the model's " << loss.getElementType();
    return signalPassFailure();
  }
  FailureOr<std::string> config = moeConfig(text.getValue(), *dense);
  if (failed(config))
    return signalPassFailure();

  ImportOptions options;
  options.elementType = loss.getElementType();
  options.batchSize = ids.getDimSize(0);
  options.seqLen = ids.getDimSize(1);
  llvm::Expected<OwningOpRef<ModuleOp>> upcycled =
      importModelConfig(getContext(), *config, "the upcycled config", options);
  if (!upcycled) {
    mlir::emitError(module.getLoc())
        << "moe-upcycle: " << llvm::toString(upcycled.takeError());
    return signalPassFailure();
  }

  llvm::StringMap<Type> denseGlobals;
  for (auto global : module.getOps<ml_program::GlobalOp>())
    denseGlobals[global.getSymName()] = global.getType();
  Builder b(&getContext());
  for (auto global : (**upcycled).getOps<ml_program::GlobalOp>()) {
    if (!global->hasAttr(kTrainableAttrName))
      continue;
    FailureOr<moert::UpcycleRule> rule = ruleFor(global, denseGlobals);
    if (failed(rule))
      return signalPassFailure();
    global->setAttr(kUpcycleAttrName,
                    b.getStringAttr(moert::formatUpcycleRule(*rule)));
  }
  module.getBodyRegion().takeBody((**upcycled).getBodyRegion());
  module->setAttr(kConfigAttrName, (**upcycled)->getAttr(kConfigAttrName));
}

} // namespace
