//===- AttentionLayerKeys.cpp - which layers slide and which rotate -------===//
//
// The keys that give the attention's sliding window, the layers it applies
// to and the layers that apply no RoPE, as ours and each transformers
// family's config class spell, default and derive them (Mistral's applied
// window, Qwen's switched one, Dots1's and EXAONE 4's layers).
//
//===----------------------------------------------------------------------===//

#include "ConfigKeys.h"
#include "moe/Frontend/TransformersModels.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

using mlir::moe::SlidingWindow;
using mlir::moe::TransformersModel;
using mlir::moe::config::KeyReader;
using nlohmann::json;

namespace {

/// Each family applies the window its own way; our keys alone apply it
/// unless use_sliding_window is false.
void readSlidingWindow(KeyReader &keys, mlir::moe::ModelConfig &config,
                       const TransformersModel *family) {
  // Mistral's and Qwen's config classes have a window where the key is
  // absent (not where it is null).
  bool defaulted =
      !keys.object.contains("sliding_window") && family && family->windowSize;
  json window = defaulted ? json(family->windowSize)
                          : keys.object.value("sliding_window", json());
  SlidingWindow rule = family ? family->slidingWindow : SlidingWindow::applied;
  // Our keys name the layers that slide as Qwen's do, with layer_types.
  bool listed =
      keys.has("layer_types") && keys.object["layer_types"].is_array();
  if (window.is_null()) {
    if (family && family->nullWindowFails)
      return keys.keyError(
          "sliding_window",
          llvm::formatv("a positive integer (transformers' {0} fails on "
                        "null)",
                        family->name)
              .str());
    // (i + 1) % 0 in its __post_init__; its mask and cache need a window
    // for a sliding layer.
    if (rule == SlidingWindow::patterned && !listed)
      keys.fail(llvm::formatv("key 'layer_types' is missing, which "
                              "transformers' {0} requires where "
                              "'sliding_window' is null",
                              family->name)
                    .str());
    else if (rule == SlidingWindow::patterned &&
             llvm::any_of(keys.object["layer_types"], [](const json &type) {
               return type == json("sliding_attention");
             }))
      keys.fail(llvm::formatv("key 'layer_types' names a layer's attention "
                              "\"sliding_attention\", but 'sliding_window' "
                              "is null, on which transformers' {0} fails",
                              family->name)
                    .str());
    return;
  }
  bool switchedOff = keys.has("use_sliding_window") &&
                     keys.object["use_sliding_window"] == json(false);
  if (rule == SlidingWindow::ignored) {
    config.warnings.push_back(
        llvm::formatv("transformers' {0} does not apply 'sliding_window' (its "
                      "attention is causal only), so it is ignored, as there",
                      family->name)
            .str());
    return;
  }
  if (!family && switchedOff)
    return;
  if (mlir::moe::isSwitched(rule) && !keys.boolean("use_sliding_window", false))
    return;
  // Where no layer slides, only whether it is null counts (to EXAONE's
  // layers without RoPE).
  if (!window.is_number_integer())
    return keys.keyError("sliding_window", "null or a positive integer");
  if (mlir::moe::picksLayers(rule) || (!family && listed)) {
    // The layers that slide: those layer_types names so, else Qwen2's,
    // Qwen3's and Dots1's from max_window_layers on, Qwen2-MoE's even ones
    // below it, EXAONE 4's and OLMo 3's but every windowPattern-th; the
    // others attend to the whole sequence.
    std::vector<bool> sliding(config.numLayers);
    if (listed) {
      const json &types = keys.object["layer_types"];
      if (types.size() != static_cast<size_t>(config.numLayers))
        return keys.fail(llvm::formatv(
            "key 'layer_types' lists {0} layer{1}, but the model has {2} "
            "('num_hidden_layers')",
            types.size(), types.size() == 1 ? "" : "s", config.numLayers));
      for (int64_t layer = 0; layer < config.numLayers; ++layer) {
        // The attentions these families' models build.
        if (types[layer] != json("sliding_attention") &&
            types[layer] != json("full_attention"))
          return keys.fail(llvm::formatv(
              "key 'layer_types' names layer {0}'s attention {1}, which is "
              "not supported: a layer's attention is \"sliding_attention\" "
              "or \"full_attention\"",
              layer, types[layer].dump()));
        sliding[layer] = types[layer] == json("sliding_attention");
      }
    } else if (rule == SlidingWindow::patterned) {
      // Its __post_init__ slides layer i where (i + 1) % pattern != 0
      // (GraniteSWA's where i % 4 != 0; a fixed pattern, OLMo 3's 4, is
      // valid: the key errs only where given).
      const char *key = family->windowPatternKey;
      const json &pattern =
          key ? keys.object.value(key, json(family->windowPattern))
              : json(family->windowPattern);
      if (!pattern.is_number_integer() || pattern.get<int64_t>() == 0)
        return keys.keyError(
            key, llvm::formatv("a non-zero integer where 'layer_types' is "
                               "absent (transformers' {0} fails on others)",
                               family->name)
                     .str());
      int64_t every = std::abs(pattern.get<int64_t>());
      int64_t shift = family->fullAttentionFirst ? 0 : 1;
      for (int64_t layer = 0; layer < config.numLayers; ++layer)
        sliding[layer] = (layer + shift) % every != 0;
    } else {
      // Their config classes compare it with layer indices (and fail on
      // null).
      const json &given =
          keys.object.value("max_window_layers", json(family->maxWindowLayers));
      if (!given.is_number_integer() || given.get<int64_t>() < 0)
        return keys.keyError("max_window_layers", "a non-negative integer");
      int64_t bound = std::min(given.get<int64_t>(), config.numLayers);
      for (int64_t layer = 0; layer < config.numLayers; ++layer)
        sliding[layer] = rule == SlidingWindow::switchedAlternating
                             ? layer % 2 == 0 && layer < bound
                             : layer >= bound;
    }
    // EXAONE 4 rotates the sliding layers' queries and keys only.
    if (family && family->ropelessFullAttention)
      for (int64_t layer = 0; layer < config.numLayers; ++layer)
        if (!sliding[layer])
          config.noRopeLayers.push_back(layer);
    if (llvm::none_of(sliding, [](bool slides) { return slides; }))
      return;
    for (int64_t layer = 0; layer < config.numLayers; ++layer)
      if (!sliding[layer])
        config.fullAttentionLayers.push_back(layer);
  }
  // The window applies (to the layers picked, for the rules that pick).
  if (family && !mlir::moe::isSwitched(rule) && switchedOff)
    config.warnings.push_back(
        llvm::formatv("transformers' {0} applies 'sliding_window' whatever "
                      "'use_sliding_window' says, and so does this import",
                      family->name)
            .str());
  if (window.get<int64_t>() <= 0)
    return keys.keyError("sliding_window", "null or a positive integer");
  config.slidingWindow = window.get<int64_t>();
  if (defaulted)
    config.warnings.push_back(
        llvm::formatv("'sliding_window' is absent, so {0}'s default, {1}, "
                      "applies, as in transformers",
                      family->configClass, family->windowSize)
            .str());
}

/// moe_nope_layers: the layers whose attention applies no RoPE, ascending.
std::vector<int64_t> readNopeLayers(KeyReader &keys, int64_t layers) {
  std::vector<int64_t> nope;
  if (!keys.has("moe_nope_layers"))
    return nope;
  const json &list = keys.object["moe_nope_layers"];
  std::string expected =
      llvm::formatv("a list of layer indices below 'num_hidden_layers' ({0}), "
                    "ascending",
                    layers)
          .str();
  if (!list.is_array()) {
    keys.keyError("moe_nope_layers", expected);
    return nope;
  }
  for (const json &entry : list) {
    if (!entry.is_number_integer() || entry.get<double>() < 0 ||
        entry.get<double>() >= layers ||
        (!nope.empty() && entry.get<int64_t>() <= nope.back())) {
      keys.keyError("moe_nope_layers", expected);
      return {};
    }
    nope.push_back(entry.get<int64_t>());
  }
  return nope;
}

std::string layerList(const std::vector<int64_t> &layers) {
  return json(layers).dump();
}

/// `bases` with rope_theta in the layers without RoPE (`nope`), whose base
/// nothing reads; empty where every layer's is rope_theta.
std::vector<double> withoutUnreadBases(std::vector<double> bases,
                                       const std::vector<int64_t> &nope,
                                       double ropeTheta) {
  if (bases.empty())
    return bases;
  for (int64_t layer : nope)
    bases[layer] = ropeTheta;
  if (llvm::all_of(bases, [&](double base) { return base == ropeTheta; }))
    bases.clear();
  return bases;
}

/// Each layer's RoPE base, from `key`: GraniteSWA's layer_rope_theta (0: no
/// RoPE, added to `nope`) or our moe_layer_rope_theta (positive); empty
/// where the key is absent or null.
std::vector<double> readLayerBases(KeyReader &keys, const char *key,
                                   const mlir::moe::ModelConfig &config,
                                   std::vector<int64_t> *nope) {
  if (!keys.has(key))
    return {};
  const json &list = keys.object[key];
  std::string expected =
      llvm::formatv("a list of {0} RoPE bases, one a layer "
                    "('num_hidden_layers'), each {1}",
                    config.numLayers,
                    nope ? "0 (no RoPE) or positive" : "positive")
          .str();
  if (!list.is_array() || list.size() != static_cast<size_t>(config.numLayers))
    return keys.keyError(key, expected), std::vector<double>();
  std::vector<double> bases;
  for (const json &entry : list) {
    bool zero = entry.is_number() && entry.get<double>() == 0;
    if (!entry.is_number() || (zero && !nope) || entry.get<double>() < 0 ||
        (!zero && !mlir::moe::config::withinF32(entry.get<double>(), true)))
      return keys.keyError(key, expected), std::vector<double>();
    if (zero)
      nope->push_back(bases.size());
    bases.push_back(zero ? config.ropeTheta : entry.get<double>());
  }
  return bases;
}

/// GraniteSWA's layer_rope_theta, or our moe_layer_rope_theta, into
/// config.layerRopeTheta and, for GraniteSWA's zeros, config.noRopeLayers.
void readLayerRopeTheta(KeyReader &keys, mlir::moe::ModelConfig &config,
                        const TransformersModel *family) {
  const char *ours = "moe_layer_rope_theta";
  bool familyKey = family && family->layerRopeTheta;
  if (familyKey)
    config.layerRopeTheta = withoutUnreadBases(
        readLayerBases(keys, "layer_rope_theta", config, &config.noRopeLayers),
        config.noRopeLayers, config.ropeTheta);
  std::vector<double> given = readLayerBases(keys, ours, config, nullptr);
  if (!keys.error.empty() || !keys.has(ours))
    return;
  if (family && !familyKey)
    return keys.fail(llvm::formatv("key '{0}' is not supported: transformers' "
                                   "{1} rotates every layer by 'rope_theta'",
                                   ours, family->name));
  if (familyKey &&
      withoutUnreadBases(given, config.noRopeLayers, config.ropeTheta) !=
          config.layerRopeTheta)
    return keys.fail(llvm::formatv(
        "key '{0}' ({1}) disagrees with 'layer_rope_theta' ({2}), by which "
        "transformers' {3} rotates each layer",
        ours, keys.object[ours].dump(),
        keys.object.value("layer_rope_theta", json()).dump(), family->name));
  if (!familyKey)
    config.layerRopeTheta = given;
}

} // namespace

void mlir::moe::config::readAttentionLayers(KeyReader &keys,
                                            ModelConfig &config,
                                            const TransformersModel *family) {
  std::vector<int64_t> nope = readNopeLayers(keys, config.numLayers);
  readSlidingWindow(keys, config, family);
  readLayerRopeTheta(keys, config, family);
  if (!keys.error.empty())
    return;
  bool derived =
      family && (family->ropelessFullAttention || family->layerRopeTheta);
  if (derived && keys.has("moe_nope_layers") && nope != config.noRopeLayers)
    return keys.fail(llvm::formatv(
        "key 'moe_nope_layers' ({0}) disagrees with the layers that "
        "transformers' {1} applies no RoPE in ({2}): {3}",
        layerList(nope), family->name, layerList(config.noRopeLayers),
        family->layerRopeTheta
            ? "those whose 'layer_rope_theta' is 0"
            : "those that attend to the whole sequence where "
              "'sliding_window' is not null"));
  if (!derived && family && !nope.empty())
    return keys.fail(llvm::formatv("key 'moe_nope_layers' ({0}) is not "
                                   "supported: transformers' {1} rotates "
                                   "every layer's queries and keys",
                                   layerList(nope), family->name));
  if (!derived)
    config.noRopeLayers = nope;
  config.layerRopeTheta = withoutUnreadBases(
      config.layerRopeTheta, config.noRopeLayers, config.ropeTheta);
  if (!config.noRopeLayers.empty() && config.latentAttention)
    keys.fail("key 'moe_nope_layers' is not supported with multi-head "
              "latent attention ('kv_lora_rank'), which rotates a part of "
              "each head of its own in every layer");
  if (!config.layerRopeTheta.empty() && config.latentAttention)
    keys.fail("key 'moe_layer_rope_theta' is not supported with multi-head "
              "latent attention ('kv_lora_rank'), whose YaRN scale is every "
              "layer's");
  // Without a sliding layer, every layer rotates by the others' RoPE.
  if (!config.slidingWindow)
    config.slidingRope.reset();
  if (!config.layerRopeTheta.empty() && config.slidingRope)
    keys.fail("keys 'moe_layer_rope_theta' and 'moe_sliding_rope' are not "
              "supported together: give each layer's base in one of them");
  if (config.slidingRope && config.latentAttention)
    keys.fail("key 'moe_sliding_rope' is not supported with multi-head "
              "latent attention ('kv_lora_rank'), whose YaRN scale is every "
              "layer's");
}
