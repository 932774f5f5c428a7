//===- TransformersModels.cpp - transformers' model families -------------===//

#include "moe/Frontend/TransformersModels.h"
#include "TransformersFamilies.h"
#include "TransformersMismatches.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace {

using mlir::moe::GateScoring;
using mlir::moe::QkNorm;
using mlir::moe::SlidingWindow;
using mlir::moe::TransformersModel;
using mlir::moe::detail::biasedRoutingMismatch;
using mlir::moe::detail::families;
using mlir::moe::detail::latentAttentionMismatch;
using mlir::moe::detail::softmaxSharedMismatch;

} // namespace

std::optional<mlir::moe::MoeLayerRange>
mlir::moe::moeLayerRangeOf(const ModelConfig &config) {
  std::vector<int64_t> moeLayers;
  for (int64_t layer = 0; layer < config.numLayers; ++layer)
    if (!llvm::is_contained(config.denseLayers, layer))
      moeLayers.push_back(layer);
  if (moeLayers.empty())
    return std::nullopt;
  int64_t interval = moeLayers.size() == 1 ? 1 : moeLayers[1] - moeLayers[0];
  for (size_t i = 1; i < moeLayers.size(); ++i)
    if (moeLayers[i] - moeLayers[i - 1] != interval)
      return std::nullopt;
  if ((moeLayers.front() + 1) % interval != 0)
    return std::nullopt;
  return MoeLayerRange{moeLayers.front(), moeLayers.back(), interval};
}

llvm::Expected<std::vector<std::pair<std::string, std::string>>>
mlir::moe::renameKeyAliases(nlohmann::json &config,
                            const TransformersModel *family,
                            llvm::StringRef fileName) {
  std::vector<std::pair<std::string, std::string>> renamed;
  if (!family)
    return renamed;
  for (auto [spelling, key] : family->keyAliases) {
    if (!config.contains(spelling))
      continue;
    // Both agreeing say one thing twice; disagreeing, which one the class
    // takes depends on the key.
    if (config.contains(key) && config[key] != config[spelling])
      return llvm::createStringError(
          llvm::formatv("{0}: keys '{1}' ({3}) and '{2}' ({4}) mean the same "
                        "({5}'s attribute_map) and disagree",
                        fileName, key, spelling, config[key].dump(),
                        config[spelling].dump(), family->configClass)
              .str());
    config[key] = std::move(config[spelling]);
    config.erase(spelling);
    renamed.emplace_back(key, spelling);
  }
  return renamed;
}

const TransformersModel *
mlir::moe::transformersModelNamed(llvm::StringRef modelType) {
  for (const TransformersModel &model : families())
    if (modelType == model.modelType)
      return &model;
  return nullptr;
}

llvm::Expected<const TransformersModel &>
mlir::moe::transformersModelOf(const ModelConfig &config) {
  bool gatedShared =
      config.sharedExpertIntermediateSize && config.sharedExpertGated;
  bool ungatedShared =
      config.sharedExpertIntermediateSize && !config.sharedExpertGated;
  // Dense layers that first_k_dense_replace places: the first ones.
  bool denseFirst = config.denseLayers.empty() ||
                    config.denseLayers.back() + 1 ==
                        static_cast<int64_t>(config.denseLayers.size());
  // EXAONE 4 rotates nothing in the layers that attend to the whole
  // sequence beside its window, or in any layer where none slides (a
  // window is written then), or rotates every layer without a window
  // (which EXAONE-MoE's class refuses).
  auto ropelessFits = [&](const TransformersModel &model) {
    if (config.slidingWindow)
      return config.noRopeLayers == config.fullAttentionLayers;
    return static_cast<int64_t>(config.noRopeLayers.size()) ==
               config.numLayers ||
           (config.noRopeLayers.empty() && !model.nullWindowFails);
  };
  // OLMo 3's layer types share YaRN's truncate (rope_parameters' one).
  std::optional<bool> fullTruncate = config.fullRope().yarnTruncate(),
                      slidingTruncate = config.slidingRope
                                            ? config.slidingRope->yarnTruncate()
                                            : std::nullopt;
  bool yarnTruncatesAgree =
      !fullTruncate || !slidingTruncate || *fullTruncate == *slidingTruncate;
  // A window is kept: Llama's is Mistral's model then.
  auto fits = [&](const TransformersModel &model, bool withDenseLayers) {
    bool ungatedFamily = model.ungatedSharedExperts || model.sharedWidthKey;
    // HunYuan MoE V1's shared MLP, which no key counts.
    bool fixedShared = model.ungatedSharedExperts && !model.sharedExpertsKey;
    return model.moe == config.isMoe() &&
           model.gatedAttention == config.gatedAttention &&
           model.latentAttention.has_value() ==
               config.latentAttention.has_value() &&
           (model.muP || !config.hasMultipliers()) &&
           model.postNorms == config.postNorms &&
           (model.readsRopeInterleave ||
            model.interleavedRope == config.ropeInterleaved) &&
           (model.qkNorm == config.qkNorm ||
            (model.qkNormKey && (config.qkNorm == QkNorm::none ||
                                 config.qkNorm == QkNorm::perHead))) &&
           (model.qkvBiasKey || model.qkvBias == config.qkvBias) &&
           (model.partialRotaryFactor || config.partialRotaryFactor == 1) &&
           (model.sharedExpertSize > 0) == gatedShared &&
           (fixedShared
                ? ungatedShared && !config.ungatedSharedExpertsRemainder() &&
                      config.ungatedSharedExperts() == model.sharedExperts
                : (ungatedFamily == ungatedShared ||
                   (ungatedFamily && !model.zeroSharedExperts &&
                    !ungatedShared)) &&
                      // The families that count shared experts build them
                      // whole.
                      (!ungatedShared || model.sharedWidthKey ||
                       !config.ungatedSharedExpertsRemainder())) &&
           (!config.isMoe() ||
            (model.scoring == config.scoring &&
             model.expertBias == config.expertBias &&
             (model.scalesWeights || config.routedScale == 1) &&
             (model.expertGroups || config.routerGroups == 1) &&
             (config.routerGroups == 1 ||
              model.groupScoreTop == config.routerGroupScoreTop) &&
             (!model.neverRenormalizes || !config.renormalize) &&
             // DeepSeek-V3's router scores a group by its two best experts.
             (!model.expertGroups || config.numExperts / config.routerGroups >=
                                         model.groupScoreTop))) &&
           (!withDenseLayers || model.sparseLayerKeys || model.mlpLayerTypes ||
            (model.firstDenseLayers && denseFirst) ||
            (model.firstMoeLayer && moeLayerRangeOf(config))) &&
           (!config.slidingWindow ||
            model.slidingWindow != SlidingWindow::ignored) &&
           (config.fullAttentionLayers.empty() ||
            picksLayers(model.slidingWindow)) &&
           (model.ropelessFullAttention
                ? ropelessFits(model)
                : model.layerRopeTheta || config.noRopeLayers.empty()) &&
           (model.layerRopeTheta || config.layerRopeTheta.empty()) &&
           model.attentionSinks == config.attentionSinks &&
           (model.ropeByLayerType ? yarnTruncatesAgree : !config.slidingRope) &&
           // OLMoE's norms are as wide as the hidden state's heads.
           (!model.wholeNormHiddenSize ||
            config.headDim() * config.numHeads == config.hiddenSize);
  };
  bool denseLayers = !config.denseLayers.empty();
  for (const TransformersModel &model : families())
    if (fits(model, denseLayers))
      return model;
  if (config.attentionSinks || !config.layerRopeTheta.empty())
    return llvm::createStringError(
        "this model has attention sinks (moe_attention_sinks) or RoPE bases "
        "of each layer's own (moe_layer_rope_theta), which of the "
        "transformers families that moe-export writes only Granite SWA "
        "(Llama's model) and Granite MoE SWA (Mixtral's MoE layers beside "
        "an ungated shared MLP, or none) have, together, with muP's "
        "multipliers, sliding all but every fourth layer from the first or "
        "as layer_types says, any layer without RoPE, without biases, norms "
        "after each sublayer, query and key norms, latent or gated "
        "attention; this model differs from them");
  if (config.slidingRope)
    return llvm::createStringError(
        "this model rotates its sliding layers by a RoPE of their own "
        "(moe_sliding_rope), which of the transformers families that "
        "moe-export writes only OLMo 3 does (rope_parameters by layer "
        "type): a dense model that normalizes each sublayer's output and "
        "whole queries and keys, sliding all but every fourth layer or as "
        "layer_types says, with one YaRN truncate for both layer types, "
        "without biases, muP's multipliers, latent or gated attention or "
        "layers without RoPE; this model differs from it");
  if (!config.noRopeLayers.empty())
    return llvm::createStringError(llvm::formatv(
        "this model applies no RoPE in layers {0} (moe_nope_layers), which "
        "of the transformers families that moe-export writes only EXAONE 4 "
        "(a dense model, norms after each sublayer) and EXAONE-MoE "
        "(DeepSeek-V3's MoE layers: sigmoid scores chosen with a bias, "
        "ungated shared experts) do, in the layers that attend to the whole "
        "sequence beside a sliding window (or in every layer), each query "
        "and key head normalized, rotating whole heads' halves, without "
        "biases, muP's multipliers, latent or gated attention; this model "
        "differs from them",
        nlohmann::json(config.noRopeLayers).dump()));
  if (!config.fullAttentionLayers.empty())
    return llvm::createStringError(
        "this model attends within its sliding window in some layers only "
        "(layer_types), which of the transformers families that moe-export "
        "writes only Qwen2 and Qwen3 (dense), Qwen2-MoE (a shared expert "
        "beside softmax scores without a bias) and Dots1 (sigmoid scores "
        "chosen with a bias, its dense layers first) do, with neither muP's "
        "multipliers, norms after each sublayer, latent or gated attention "
        "(EXAONE 4 and EXAONE-MoE do, where the other layers apply no RoPE, "
        "and Granite SWA and Granite MoE SWA, with attention sinks); this "
        "model differs from them");
  if (config.latentAttention)
    return llvm::createStringError(
        latentAttentionMismatch(config, ungatedShared, denseFirst));
  if (config.gatedAttention)
    return llvm::createStringError(
        "this model gates its attention's output (use_gated_attention), "
        "which of the transformers families that moe-export writes only "
        "MiniCPM5-MoE does: DeepSeek-V3's MoE layers (sigmoid scores chosen "
        "with a bias, beside ungated shared experts), its dense layers "
        "placed anywhere, on an attention without query and key norms, q, "
        "k and v biases or a window, rotating whole heads' halves, without "
        "muP's multipliers or norms after each sublayer; this model differs "
        "from it");
  if (config.qkNorm == QkNorm::perHeadRotated)
    return llvm::createStringError(
        "this model normalizes each query and key head after RoPE "
        "(moe_qk_norm \"after_rope\"), which of the transformers families "
        "that moe-export writes only HunYuan MoE V1 (Mixtral's routing: "
        "softmax scores without a bias, renormalized, beside one ungated "
        "shared MLP as wide as the experts, every layer a MoE layer) and "
        "HunYuan Dense V1 do, rotating whole heads' halves, without q, k and "
        "v biases, a window, muP's multipliers or norms after each sublayer; "
        "this model differs from them");
  if (config.postNorms)
    return llvm::createStringError(
        "this model normalizes each sublayer's output (moe_post_norms), "
        "which of the transformers families that moe-export writes only OLMo "
        "2 (a dense model) and FlexOlmo (OLMoE's MoE layers: softmax scores "
        "without a bias, no shared experts, every layer a MoE layer) do, "
        "normalizing whole queries and keys, without a window (OLMo 3, "
        "dense, with one), and EXAONE 4 (a dense model), normalizing each "
        "query and key head; all rotating whole heads' halves, without "
        "biases or muP's multipliers; this model differs from them");
  if (config.hasMultipliers())
    return llvm::createStringError(
        "this model has muP's multipliers (embedding_multiplier, "
        "attention_multiplier, residual_multiplier, logits_scaling), which "
        "of the transformers families that moe-export writes only Granite "
        "(Llama's model), Granite MoE (Mixtral's) and Granite MoE Shared "
        "(with an ungated shared MLP) read, and Granite SWA and Granite MoE "
        "SWA with attention sinks; with them, no transformers model computes "
        "it");
  if (config.ropeInterleaved && !config.isMoe())
    return llvm::createStringError(
        "this model's RoPE turns pairs (2i, 2i + 1) (rope_interleave), which "
        "of the dense transformers families that moe-export writes only "
        "ERNIE 4.5 does, without q, k and v biases, query and key norms or "
        "a window, rotating whole heads");
  if (ungatedShared && config.scoring == GateScoring::softmax &&
      !config.expertBias && config.routedScale == 1 && config.routerGroups == 1)
    return llvm::createStringError(softmaxSharedMismatch(config));
  // Scores chosen with a bias: each thing that keeps this model from the
  // families that route so is named.
  bool partialRotary = config.partialRotaryFactor != 1;
  if (config.scoring != GateScoring::softmax || config.expertBias ||
      config.routedScale != 1 || config.routerGroups != 1 || ungatedShared ||
      (partialRotary && config.isMoe()) || config.ropeInterleaved)
    return llvm::createStringError(
        biasedRoutingMismatch(config, ungatedShared, denseFirst));
  if (partialRotary)
    return llvm::createStringError(llvm::formatv(
        "this model rotates part of each head (partial_rotary_factor {0}), "
        "which of the transformers families that moe-export writes only "
        "GLM-4-MoE and MiniMax-M2 do, MoEs",
        nlohmann::json(config.partialRotaryFactor).dump()));
  // Only the dense layers, where a family would fit without them.
  if (denseLayers && llvm::any_of(families(), [&](const auto &model) {
        return fits(model, false);
      }))
    return llvm::createStringError(
        "this model has dense layers among its MoE layers, which only "
        "transformers' Qwen3-MoE (its query and key heads normalized) and "
        "Qwen2-MoE (a shared expert) place anywhere (mlp_only_layers), and "
        "Dots1 and GLM-4-MoE first (first_k_dense_replace); routing with a "
        "bias, HY V3 anywhere (mlp_layer_types) and ERNIE 4.5 MoE evenly "
        "spaced");
  // Qwen2-MoE's fits every other model with a shared expert, and Qwen2's
  // every other dense one with the biases.
  if (config.sharedExpertIntermediateSize)
    return llvm::createStringError(
        "transformers' Qwen2-MoE, whose MoE layers have a shared expert, "
        "does not normalize queries and keys");
  if (config.qkvBias)
    return llvm::createStringError(
        "no transformers model has q, k and v biases with normalized queries "
        "and keys, or with routed experts alone (Qwen2-MoE's has a shared "
        "expert too)");
  if (!config.isMoe())
    return llvm::createStringError(
        "no transformers model normalizes a dense model's whole queries and "
        "keys with its norms before each sublayer (OLMo 2's follow each "
        "sublayer, moe_post_norms; OLMoE's and MiniMax-M2's are MoEs)");
  if (config.slidingWindow)
    return llvm::createStringError(llvm::formatv(
        "transformers' OLMoE has no sliding window, and this model attends "
        "within {0} positions",
        *config.slidingWindow));
  return llvm::createStringError(llvm::formatv(
      "transformers' OLMoE normalizes queries of hidden_size ({0}), but "
      "this model's {1} heads of {2} are {3} wide",
      config.hiddenSize, config.numHeads, config.headDim(),
      config.numHeads * config.headDim()));
}

std::string mlir::moe::transformersModelNames() {
  std::string names;
  for (const TransformersModel &model : families())
    names += (names.empty() ? "" : ", ") + std::string(model.name);
  return names;
}
