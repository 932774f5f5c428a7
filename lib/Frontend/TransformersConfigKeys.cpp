//===- TransformersConfigKeys.cpp - a model's keys in a family's spelling -===//
//
// The config.json keys that moe-export and moe-upcycle write for a
// transformers family (TransformersModels.h): each family's class reads
// them, and its defaults or another family's keys must not change the
// model.
//
//===----------------------------------------------------------------------===//

#include "ConfigKeys.h"
#include "moe/Frontend/TransformersModels.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using mlir::moe::LatentAttention;
using mlir::moe::LayerRope;
using mlir::moe::QkNorm;
using mlir::moe::SlidingWindow;
using mlir::moe::TransformersModel;

void mlir::moe::writeAttentionKeys(nlohmann::json &config,
                                   const ModelConfig &model,
                                   const TransformersModel *family) {
  config["num_key_value_heads"] = model.numKvHeads;
  for (const char *key : kLatentAttentionKeys)
    config.erase(key);
  if (const std::optional<LatentAttention> &mla = model.latentAttention) {
    config["q_lora_rank"] = mla->queryRank ? nlohmann::json(*mla->queryRank)
                                           : nlohmann::json(nullptr);
    config["kv_lora_rank"] = mla->kvRank;
    config["qk_nope_head_dim"] = mla->nopeHeadDim;
    config["qk_rope_head_dim"] = mla->ropeHeadDim;
    config["v_head_dim"] = mla->valueHeadDim;
    // DeepSeek's classes set it so, whatever the file says; ours ignore it.
    if (family)
      config["head_dim"] = mla->ropeHeadDim;
    else
      config.erase("head_dim");
  } else {
    config["head_dim"] = model.headDim();
  }
  // Qwen2's class has its biases whatever a key says.
  const char *biasKey = family ? family->qkvBiasKey : "qkv_bias";
  if (biasKey) {
    config.erase("qkv_bias");
    config[biasKey] = model.qkvBias;
  }
  // A family's attention has its norms by model_type, or by a key.
  if (!family)
    config["moe_qk_norm"] = qkNormKeyValue(model.qkNorm);
  else if (family->qkNormKey)
    config[family->qkNormKey] = model.qkNorm == QkNorm::perHead;
  // DeepSeek-V3's class turns RoPE's pairs where the key is absent.
  if (family && family->readsRopeInterleave)
    config["rope_interleave"] = model.ropeInterleaved;
  // GLM-4-MoE's class rotates half of each head where the key is absent;
  // transformers reads the factor from the RoPE object first, and before
  // MiniMax-M2's rotary_dim, which is left out.
  if (family && family->partialRotaryFactor) {
    if (family->rotaryDimKey)
      config.erase(family->rotaryDimKey);
    config["partial_rotary_factor"] = model.partialRotaryFactor;
    for (const char *key : {"rope_scaling", "rope_parameters"})
      if (config.contains(key) && config[key].is_object() &&
          !config[key].empty())
        config[key]["partial_rotary_factor"] = model.partialRotaryFactor;
  }
  nlohmann::json window =
      model.slidingWindow ? nlohmann::json(*model.slidingWindow) : nullptr;
  // EXAONE 4 rotates every layer's queries and keys where the window is
  // null; a window that no layer applies leaves them all unrotated, and
  // stands for none in OLMo 3, which fails on null.
  if (family && window.is_null() &&
      (family->nullWindowFails ||
       (family->ropelessFullAttention && !model.noRopeLayers.empty())))
    window = model.maxPositions;
  config["sliding_window"] = window;
  SlidingWindow rule = family ? family->slidingWindow : SlidingWindow::applied;
  if (isSwitched(rule))
    config["use_sliding_window"] = !window.is_null();
  else
    config.erase("use_sliding_window");
  config.erase("max_window_layers");
  config.erase("sliding_window_pattern");
  config.erase("layer_types");
  if (picksLayers(rule)) {
    // Every layer's, by name: these config classes derive layer_types from
    // the other keys where the config lacks it (Qwen2-MoE's every other
    // layer).
    if (rule != SlidingWindow::patterned)
      config["max_window_layers"] = 0;
    config["layer_types"] = layerTypes(model);
  } else if (!family && !model.fullAttentionLayers.empty()) {
    // Our keys name the layers that slide where not all do.
    config["layer_types"] = layerTypes(model);
  }
  // And the layers that rotate nothing, which EXAONE 4's class derives,
  // and each layer's base: GraniteSWA's list both, 0 for no RoPE.
  if (!family && !model.noRopeLayers.empty())
    config["moe_nope_layers"] = model.noRopeLayers;
  else
    config.erase("moe_nope_layers");
  config.erase("moe_layer_rope_theta");
  config.erase("layer_rope_theta");
  if (family && family->layerRopeTheta) {
    std::vector<double> bases;
    for (int64_t layer = 0; layer < model.numLayers; ++layer)
      bases.push_back(model.rotates(layer) ? model.rope(layer).theta : 0.0);
    config["layer_rope_theta"] = bases;
  } else if (!family && !model.layerRopeTheta.empty()) {
    config["moe_layer_rope_theta"] = model.layerRopeTheta;
  }
  if (!family && model.attentionSinks)
    config["moe_attention_sinks"] = true;
  else
    config.erase("moe_attention_sinks");
}

void mlir::moe::writeExpertCountKeys(nlohmann::json &config,
                                     const ModelConfig &model,
                                     const TransformersModel *family) {
  for (const char *key :
       {"num_local_experts", "num_experts", "n_routed_experts",
        "moe_num_experts", "num_experts_per_tok", "moe_k", "n_shared_experts",
        "moe_num_shared_experts", "num_shared_experts",
        "shared_intermediate_size"})
    config.erase(key);
  config[family ? family->expertsKey : "num_local_experts"] = model.numExperts;
  config[family && family->topKKey ? family->topKKey : "num_experts_per_tok"] =
      model.topK;
  // Where the class has them by default (ERNIE 4.5 MoE's two), a count of
  // 0 says that the model has none.
  if (family && family->sharedWidthKey) {
    config[family->sharedWidthKey] =
        model.sharedExpertGated ? 0 : model.sharedExpertIntermediateSize;
    return;
  }
  int64_t ungated = model.ungatedSharedExperts();
  if (family ? family->ungatedSharedExperts && family->sharedExpertsKey
             : ungated != 0)
    config[family ? family->sharedExpertsKey : "n_shared_experts"] = ungated;
}

void mlir::moe::writeLayerPlacementKeys(nlohmann::json &config,
                                        const ModelConfig &model,
                                        const TransformersModel *family) {
  for (const char *key :
       {"mlp_only_layers", "decoder_sparse_step", "first_k_dense_replace",
        "moe_layer_start_index", "moe_layer_end_index", "moe_layer_interval",
        "mlp_layer_types"})
    config.erase(key);
  // Our keys, and Qwen's, list them (by name, whatever placed them).
  if (!family || family->sparseLayerKeys) {
    if (family || !model.denseLayers.empty())
      config["mlp_only_layers"] = model.denseLayers;
    if (family)
      config["decoder_sparse_step"] = 1;
    return;
  }
  // transformersModelOf has checked that these keys place them: DeepSeek's
  // first ones (a class may have one by default), HY V3's list of each
  // layer's kind, ERNIE 4.5 MoE's range.
  if (family->firstDenseLayers)
    config["first_k_dense_replace"] = model.denseLayers.size();
  if (family->mlpLayerTypes) {
    std::vector<std::string> types;
    for (int64_t layer = 0; layer < model.numLayers; ++layer)
      types.push_back(model.isMoeLayer(layer) ? "sparse" : "dense");
    config["mlp_layer_types"] = types;
  }
  if (family->firstMoeLayer) {
    MoeLayerRange range = *moeLayerRangeOf(model);
    config["moe_layer_start_index"] = range.start;
    config["moe_layer_end_index"] = range.end;
    config["moe_layer_interval"] = range.interval;
  }
}

namespace {

/// OLMo 3's rope_parameters: each layer type's object, YaRN's truncate
/// beside them (its class reads it there, for both).
nlohmann::json ropeParametersByLayerType(const mlir::moe::ModelConfig &model) {
  LayerRope full = model.fullRope();
  nlohmann::json types;
  bool truncate = true;
  for (auto [type, rope] :
       {std::pair<const char *, LayerRope>{"full_attention", full},
        {"sliding_attention", model.slidingRope.value_or(full)}}) {
    types[type] = mlir::moe::config::layerRopeKeyValue(rope);
    types[type].erase("truncate");
    truncate = truncate && rope.yarnTruncate().value_or(true);
  }
  if (!truncate)
    types["truncate"] = false;
  return types;
}

} // namespace

void mlir::moe::writeClassDefaultedKeys(nlohmann::json &config,
                                        const ModelConfig &model,
                                        const TransformersModel *family) {
  config["rope_theta"] = model.ropeTheta;
  config.erase("moe_sliding_rope");
  if (!family && model.slidingRope)
    config["moe_sliding_rope"] = config::layerRopeKeyValue(*model.slidingRope);
  nlohmann::json source = config.value("rope_parameters", nlohmann::json());
  bool sourceByType =
      source.is_object() && (source.contains("full_attention") ||
                             source.contains("sliding_attention"));
  if (family && family->ropeByLayerType) {
    config.erase("rope_scaling");
    config["rope_parameters"] = ropeParametersByLayerType(model);
  } else if (sourceByType) {
    // OLMo 3's objects as another class's one.
    config.erase("rope_scaling");
    config["rope_parameters"] = config::layerRopeKeyValue(model.fullRope());
  } else {
    for (const char *key : {"rope_scaling", "rope_parameters"})
      if (config.contains(key) && config[key].is_object() &&
          !config[key].empty()) {
        // HunYuan's NTK-alpha scaling ("dynamic" with an alpha) is in the
        // base already.
        nlohmann::json &rope = config[key];
        if (rope.value("rope_type", rope.value("type", nlohmann::json())) ==
                "dynamic" &&
            rope.contains("alpha") && !rope["alpha"].is_null())
          rope = {{"rope_type", "default"}};
        config[key]["rope_theta"] = model.ropeTheta;
      }
  }
  if (model.ropeInterleaved)
    config["rope_interleave"] = true;
  // MiniCPM5-MoE's gate and OLMo 2's placement, which a config without its
  // model_type must say.
  if (model.gatedAttention)
    config["use_gated_attention"] = true;
  if (model.postNorms)
    config["moe_post_norms"] = true;
  config["rms_norm_eps"] = model.rmsNormEps;
  config["tie_word_embeddings"] = model.tieWordEmbeddings;
  // Written either way: OLMoE's config class pads with token 1 without it.
  config["pad_token_id"] = model.padTokenId ? nlohmann::json(*model.padTokenId)
                                            : nlohmann::json(nullptr);
}

void mlir::moe::writeMultiplierKeys(nlohmann::json &config,
                                    const ModelConfig &model,
                                    const TransformersModel *family) {
  for (const char *key : kMultiplierKeys)
    config.erase(key);
  // transformersModelOf has checked that a family without them may compute
  // the model.
  if (family ? !family->muP : !model.hasMultipliers())
    return;
  config["embedding_multiplier"] = model.embeddingMultiplier;
  // Granite's softmax scale is 1 by default, ours 1 / sqrt(head_dim).
  if (family || model.attentionMultiplier)
    config["attention_multiplier"] =
        model.attentionMultiplier.value_or(model.defaultSoftmaxScale());
  config["residual_multiplier"] = model.residualMultiplier;
  config["logits_scaling"] = model.logitsScaling;
}
