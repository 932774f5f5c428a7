//===- TransformersMismatches.cpp - why no transformers family fits -------===//
//
// The messages of transformersModelOf that name, family by family, what
// keeps a model from the families that come closest.
//
//===----------------------------------------------------------------------===//

#include "TransformersMismatches.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <string>
#include <vector>

using mlir::moe::GateScoring;
using mlir::moe::ModelConfig;
using mlir::moe::QkNorm;

namespace {

/// Shared experts that the families counting them cannot build.
std::string sharedWidthMismatch(const ModelConfig &config) {
  return llvm::formatv("has shared experts {0} wide, which is no multiple of "
                       "the experts' {1}",
                       config.sharedExpertIntermediateSize,
                       config.expertIntermediateSize);
}

} // namespace

std::string mlir::moe::detail::biasedRoutingMismatch(const ModelConfig &config,
                                                     bool ungatedShared,
                                                     bool denseFirst) {
  bool partialRotary = config.partialRotaryFactor != 1;
  bool gatedShared =
      config.sharedExpertIntermediateSize && config.sharedExpertGated;
  std::vector<std::string> fromDeepSeek, fromHunyuan, fromMiniMax, fromErnie;
  for (auto *differences : {&fromDeepSeek, &fromHunyuan, &fromMiniMax}) {
    if (config.scoring != GateScoring::sigmoid)
      differences->push_back("scores its experts with a softmax");
    if (config.ropeInterleaved)
      differences->push_back("turns RoPE's pairs (2i, 2i + 1)");
  }
  for (auto *differences :
       {&fromDeepSeek, &fromHunyuan, &fromMiniMax, &fromErnie})
    if (!config.expertBias)
      differences->push_back("chooses its experts without a bias");
  for (auto *differences : {&fromDeepSeek, &fromHunyuan})
    if (!ungatedShared)
      differences->push_back("has no ungated shared experts");
  if (config.ungatedSharedExpertsRemainder())
    for (auto *differences : {&fromDeepSeek, &fromHunyuan, &fromErnie})
      differences->push_back(sharedWidthMismatch(config));
  if (config.qkNorm == QkNorm::whole)
    fromDeepSeek.push_back("normalizes its whole queries and keys");
  if (!denseFirst)
    fromDeepSeek.push_back("has a dense layer after a MoE layer");
  if (config.routerGroups != 1 && config.routerGroupScoreTop != 2)
    fromDeepSeek.push_back("scores each group of experts by its best");
  // Dots1 applies a window, to each query and key head normalized, no
  // bias, whole heads rotated.
  if (config.slidingWindow &&
      (config.qkNorm != QkNorm::perHead || config.qkvBias || partialRotary))
    fromDeepSeek.push_back(
        "attends within a sliding window, which only Dots1 applies, whose "
        "attention normalizes each query and key head, has no q, k and v "
        "biases and rotates whole heads");
  if (config.qkNorm != QkNorm::perHead)
    fromHunyuan.push_back("does not normalize each query and key head");
  if (partialRotary)
    fromHunyuan.push_back("rotates part of each head");
  if (config.sharedExpertIntermediateSize)
    fromMiniMax.push_back("has shared experts");
  if (config.qkNorm != QkNorm::whole)
    fromMiniMax.push_back("does not normalize its whole queries and keys");
  if (!config.denseLayers.empty())
    fromMiniMax.push_back("has dense layers");
  if (config.routedScale != 1)
    for (auto *differences : {&fromMiniMax, &fromErnie})
      differences->push_back(
          "scales the top-k weights (routed_scaling_factor)");
  for (auto *differences : {&fromHunyuan, &fromMiniMax, &fromErnie}) {
    if (config.qkvBias)
      differences->push_back("has q, k and v biases");
    if (config.routerGroups != 1)
      differences->push_back("routes within groups of experts");
    if (config.slidingWindow)
      differences->push_back("attends within a sliding window");
  }
  if (config.scoring != GateScoring::softmax)
    fromErnie.push_back("scores its experts with sigmoids");
  if (gatedShared)
    fromErnie.push_back("has a gated shared expert");
  if (config.qkNorm != QkNorm::none)
    fromErnie.push_back("normalizes queries and keys");
  if (partialRotary)
    fromErnie.push_back("rotates part of each head");
  if (!config.ropeInterleaved)
    fromErnie.push_back("turns RoPE's halves (i, i + half), not pairs "
                        "(2i, 2i + 1)");
  if (!mlir::moe::moeLayerRangeOf(config))
    fromErnie.push_back(
        "has MoE layers that are not evenly spaced, each at an index one "
        "below a multiple of their spacing (moe_layer_start_index, "
        "moe_layer_end_index, moe_layer_interval)");
  return llvm::formatv(
      "of the transformers families that moe-export writes, only Dots1 and "
      "GLM-4-MoE (DeepSeek-V3's MoE layers: sigmoid scores chosen with a "
      "bias, routed_scaling_factor, groups of experts, ungated shared "
      "experts), HY V3 (those layers without groups, on normalized query "
      "and key heads), MiniMax-M2 (sigmoid scores chosen with a bias) and "
      "ERNIE 4.5 MoE (softmax scores chosen with a bias, ungated shared "
      "experts, RoPE turning pairs (2i, 2i + 1)) route so{0}; this model, "
      "unlike Dots1 and GLM-4-MoE, {1}; unlike HY V3, {2}; unlike "
      "MiniMax-M2, {3}; and unlike ERNIE 4.5 MoE, {4}",
      partialRotary
          ? ", and only GLM-4-MoE and MiniMax-M2 rotate part of each head"
          : "",
      llvm::join(fromDeepSeek, ", "), llvm::join(fromHunyuan, ", "),
      llvm::join(fromMiniMax, ", "), llvm::join(fromErnie, ", "));
}

std::string
mlir::moe::detail::softmaxSharedMismatch(const ModelConfig &config) {
  std::vector<std::string> fromGranite, fromHunyuan, fromBoth;
  if (config.qkNorm != QkNorm::none)
    fromGranite.push_back("normalizes queries and keys");
  if (config.qkNorm != QkNorm::perHeadRotated)
    fromHunyuan.push_back("does not normalize each query and key head after "
                          "RoPE");
  if (config.hasMultipliers())
    fromHunyuan.push_back("has muP's multipliers");
  if (config.sharedExpertIntermediateSize != config.expertIntermediateSize)
    fromHunyuan.push_back(llvm::formatv(
        "has shared experts {0} wide, not one as wide as its "
        "experts ({1})",
        config.sharedExpertIntermediateSize, config.expertIntermediateSize));
  if (config.qkvBias)
    fromBoth.push_back("has q, k and v biases");
  if (config.partialRotaryFactor != 1)
    fromBoth.push_back("rotates part of each head");
  if (config.ropeInterleaved)
    fromBoth.push_back("turns RoPE's pairs (2i, 2i + 1)");
  if (!config.denseLayers.empty())
    fromBoth.push_back("has dense layers");
  if (config.slidingWindow)
    fromBoth.push_back("attends within a sliding window");
  auto listed = [&](std::vector<std::string> differences) {
    llvm::append_range(differences, fromBoth);
    return llvm::join(differences, ", ");
  };
  return llvm::formatv(
      "of the transformers families that moe-export writes, only Granite MoE "
      "Shared (Granite MoE's layers beside an ungated shared MLP of any "
      "width, with or without muP's multipliers; Granite MoE SWA too, with "
      "attention sinks) and HunYuan MoE V1 (those "
      "layers beside one as wide as the experts, each query and key head "
      "normalized after RoPE) have ungated shared experts beside softmax "
      "scores chosen without a bias; this model, unlike Granite MoE Shared, "
      "{0}; unlike HunYuan MoE V1, {1}",
      listed(fromGranite), listed(fromHunyuan));
}

std::string mlir::moe::detail::latentAttentionMismatch(
    const ModelConfig &config, bool ungatedShared, bool denseFirst) {
  // What keeps it from DeepSeek-V3's and GLM-4-MoE-Lite's routing, and
  // from DeepSeek-V2's; then what keeps it from all three.
  std::vector<std::string> fromV3, fromV2, fromAll;
  bool groups = config.routerGroups != 1;
  if (!config.isMoe())
    fromAll.push_back("is dense");
  if (config.isMoe()) {
    if (config.scoring != GateScoring::sigmoid)
      fromV3.push_back("scores its experts with a softmax");
    if (!config.expertBias)
      fromV3.push_back("chooses its experts without a bias");
    if (groups && config.routerGroupScoreTop != 2)
      fromV3.push_back("scores each group of experts by its best");
    if (config.scoring != GateScoring::softmax)
      fromV2.push_back("scores its experts with sigmoids");
    if (config.expertBias)
      fromV2.push_back("chooses its experts with a bias");
    if (config.renormalize)
      fromV2.push_back("divides the top-k weights by their sum");
    if (groups && config.routerGroupScoreTop != 1)
      fromV2.push_back("scores each group of experts by its two best");
    if (!denseFirst)
      fromV2.push_back("has a dense layer after a MoE layer");
    if (!ungatedShared)
      fromAll.push_back("has no ungated shared experts");
    if (config.ungatedSharedExpertsRemainder())
      fromAll.push_back(sharedWidthMismatch(config));
  }
  if (config.hasMultipliers())
    fromAll.push_back("has muP's multipliers");
  if (config.postNorms)
    fromAll.push_back("normalizes each sublayer's output");
  if (config.slidingWindow)
    fromAll.push_back("attends within a sliding window");
  auto listed = [&](std::vector<std::string> differences) {
    llvm::append_range(differences, fromAll);
    return llvm::join(differences, ", ");
  };
  return llvm::formatv(
      "this model's attention is multi-head latent attention "
      "(kv_lora_rank), which of the transformers families that moe-export "
      "writes only DeepSeek-V3 and GLM-4-MoE-Lite (MoE layers that route "
      "by sigmoid scores chosen with a bias, their dense layers first or "
      "anywhere) and DeepSeek-V2 (softmax scores never renormalized, "
      "groups scored by their best expert, dense layers first) have, all "
      "beside ungated shared experts; this model, unlike DeepSeek-V3 and "
      "GLM-4-MoE-Lite, {0}; unlike DeepSeek-V2, {1}",
      listed(fromV3), listed(fromV2));
}
