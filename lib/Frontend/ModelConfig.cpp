//===- ModelConfig.cpp - a model described by a config.json ---------------===//

#include "moe/Frontend/ModelConfig.h"
#include "ConfigKeys.h"
#include "moe/Frontend/TransformersModels.h"
#include "moe/MoeDialect.h"
#include "moert/Error.h"
#include "moert/Json.h"

#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/FormatVariadic.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

using mlir::moe::TransformersModel;
using mlir::moe::config::KeyReader;
using nlohmann::json;

namespace {

constexpr const char *kErnieLayerKeys =
    "dense layers are placed by 'first_k_dense_replace', 'mlp_only_layers' "
    "or 'decoder_sparse_step' (moe_layer_start_index, moe_layer_end_index "
    "and moe_layer_interval place the MoE layers of a model_type "
    "ernie4_5_moe config)";

/// ERNIE 4.5 MoE's moe_norm_min default, the largest read.
constexpr double kLargestNormMin = 1e-12;

/// Whether `family`'s config class reads `key`, which other configs do not.
bool familyReads(const TransformersModel *family, std::string_view key) {
  if (!family)
    return false;
  if (key == family->expertsKey ||
      (family->ungatedSharedExperts && family->sharedExpertsKey &&
       key == family->sharedExpertsKey) ||
      (family->topKKey && key == family->topKKey) ||
      (family->scaleKey && key == family->scaleKey))
    return true;
  return family->firstMoeLayer &&
         (key == "moe_layer_start_index" || key == "moe_layer_end_index" ||
          key == "moe_layer_interval");
}

/// Keys that would change what the model computes in ways it cannot: each
/// must be absent or say what the model does anyway, or the config is
/// refused rather than imported as a different model. `family` is the
/// transformers model whose config class reads the keys, or null.
void refuseUnsupported(KeyReader &keys, mlir::moe::ModelConfig &config,
                       const TransformersModel *family) {
  auto refuse = [&](const char *key, const std::string &why) {
    keys.fail(llvm::formatv("key '{0}' ({1}) is not supported: {2}", key,
                            keys.object[key].dump(), why)
                  .str());
  };
  // The architectures that these keys describe completely: transformers'
  // families and Skywork-MoE's release. Others build other models from
  // them: Gemma scales its norms and embeddings otherwise.
  if (!family && keys.has("model_type") &&
      keys.object["model_type"] != json("skywork_moe"))
    refuse("model_type",
           "the importer builds " + mlir::moe::transformersModelNames() +
               " and Skywork-MoE models, whose configs these keys describe "
               "completely (leave model_type out for a model that our keys "
               "alone describe)");
  for (const char *key : {"hidden_act", "hidden_activation"})
    if (keys.has(key) && keys.object[key] != "silu" &&
        keys.object[key] != "swish")
      refuse(key, "the MLPs and experts compute SwiGLU (silu)");
  for (const char *key : {"attention_bias", "mlp_bias"}) {
    if (!keys.has(key) || keys.object[key] == json(false))
      continue;
    bool attentionBias = llvm::StringRef(key) == "attention_bias";
    // GLM-4-MoE's gives its q, k and v projections biases (read with
    // qkv_bias's).
    if (family && family->qkvBiasKey && attentionBias &&
        llvm::StringRef(family->qkvBiasKey) == key)
      continue;
    // Qwen2's attention has its biases whatever the key says.
    if (family && family->qkvBias && attentionBias)
      config.warnings.push_back(
          llvm::formatv("transformers' {0} ignores 'attention_bias' ({1}), "
                        "and so does this import",
                        family->name,
                        family->qkvBiasKey
                            ? "'qkv_bias' gives its q, k and v projections "
                              "biases"
                            : "its q, k and v projections have biases, its o "
                              "projection none")
              .str());
    else
      refuse(key, "projections have no bias");
  }
  if (keys.has("num_shared_experts") &&
      keys.object["num_shared_experts"] != json(0) &&
      !familyReads(family, "num_shared_experts"))
    refuse("num_shared_experts",
           "shared experts are given by 'n_shared_experts' (ungated, "
           "DeepSeek's; 'num_shared_experts' in a model_type hy_v3, "
           "sarvam_moe, param2moe or exaone_moe config) or "
           "'shared_expert_intermediate_size' (gated, Qwen2-MoE's)");
  for (const char *key : {"n_shared_experts", "moe_num_shared_experts"})
    if (!config.isMoe() && keys.has(key) && keys.object[key] != json(0))
      refuse(key, "a dense model has no experts");
  for (const char *key : {"routed_scaling_factor", "n_group", "topk_group"})
    if (!config.isMoe() && keys.has(key) && keys.object[key] != json(1))
      refuse(key, "a dense model has no experts");
  for (const char *key :
       {"shared_expert_intermediate_size", "shared_intermediate_size"})
    if (!config.isMoe() && keys.has(key) && keys.object[key] != json(0))
      refuse(key, "a dense model has no experts");
  if (family && !family->sharedWidthKey &&
      keys.has("shared_intermediate_size") &&
      keys.object["shared_intermediate_size"] != json(0))
    refuse("shared_intermediate_size",
           llvm::formatv(
               "transformers' {0} {1} ('shared_intermediate_size' gives "
               "their width in a model_type granitemoeshared or "
               "granitemoe_swa config)",
               family->name,
               !family->ungatedSharedExperts ? "has no ungated shared experts"
               : family->sharedExpertsKey
                   ? llvm::formatv("counts its ungated shared experts by "
                                   "'{0}'",
                                   family->sharedExpertsKey)
                         .str()
                   : "has one ungated shared MLP, as wide as its experts")
               .str());
  // Other families' keys for what the model does not build, which a config
  // without model_type would otherwise pass over (a DeepSeek config, whose
  // experts are n_routed_experts, would import as a dense model). Each is
  // refused unless null or the value that builds nothing.
  struct ForeignKey {
    const char *key;
    json neutral;
    const char *why;
  };
  static const ForeignKey kForeignKeys[] = {
      {"n_routed_experts", json(),
       "the experts are counted by 'num_local_experts' ('n_routed_experts' "
       "in a model_type dots1, glm4_moe, solar_open, deepseek_v2, "
       "deepseek_v3, glm4_moe_lite, sarvam_moe or param2moe config)"},
      {"moe_num_experts", json(),
       "the experts are counted by 'num_local_experts' ('moe_num_experts' "
       "in a model_type ernie4_5_moe config)"},
      {"moe_k", json(),
       "the experts of a token are 'num_experts_per_tok' ('moe_k' in a "
       "model_type ernie4_5_moe config)"},
      {"moe_topk", json(),
       "the experts of a token are 'num_experts_per_tok' ('moe_topk' in a "
       "model_type hunyuan_v1_moe config)"},
      {"moe_num_shared_experts", json(0),
       "ungated shared experts are counted by 'n_shared_experts' "
       "('moe_num_shared_experts' in a model_type ernie4_5_moe config)"},
      {"router_scaling_factor", json(1),
       "the top-k weights are scaled by 'routed_scaling_factor' "
       "('router_scaling_factor' in a model_type hy_v3 config)"},
      {"moe_layer_start_index", json(0), kErnieLayerKeys},
      {"moe_layer_end_index", json(-1), kErnieLayerKeys},
      {"moe_layer_interval", json(1), kErnieLayerKeys},
      {"moe_layer_freq", json(1),
       "dense layers are placed by 'first_k_dense_replace', "
       "'mlp_only_layers' or 'decoder_sparse_step'"},
      {"clip_qkv", json(), "queries, keys and values are not clipped"},
      {"use_bias", json(false), "projections have no bias"},
      {"use_qkv_bias", json(false),
       "q, k and v biases are given by 'qkv_bias' ('attention_bias' in a "
       "model_type glm4_moe or solar_open config, 'use_qkv_bias' in a "
       "model_type sarvam_moe or param2moe config)"}};
  for (const ForeignKey &foreign : kForeignKeys)
    if (keys.has(foreign.key) && keys.object[foreign.key] != foreign.neutral &&
        !familyReads(family, foreign.key))
      refuse(foreign.key, foreign.why);
  // EXAONE 4's, which the other families' classes ignore, as they do.
  if (!family && keys.has("sliding_window_pattern"))
    refuse("sliding_window_pattern",
           "the layers that slide are named by 'layer_types' "
           "('sliding_window_pattern' picks them in a model_type exaone4 or "
           "exaone_moe config)");
  // GraniteSWA's, which the other families' classes ignore, as they do.
  if (!family && keys.has("layer_rope_theta"))
    refuse("layer_rope_theta",
           "each layer's RoPE base is 'moe_layer_rope_theta' (positive) and "
           "the layers without RoPE 'moe_nope_layers' ('layer_rope_theta' "
           "gives both, 0 for none, in a model_type granite_swa or "
           "granitemoe_swa config)");
  // HY V3's kind of each layer, a list without a neutral value.
  if (keys.has("mlp_layer_types") && !(family && family->mlpLayerTypes))
    refuse("mlp_layer_types",
           "dense layers are placed by 'mlp_only_layers', "
           "'decoder_sparse_step' or 'first_k_dense_replace' "
           "('mlp_layer_types' in a model_type hy_v3, glm4_moe_lite, "
           "minicpm5_moe or exaone_moe config)");
  // ERNIE 4.5 MoE divides the top-k scores by their sum, or by
  // moe_norm_min where the sum is smaller; the model always by the sum.
  if (keys.has("moe_norm_min") &&
      (!keys.object["moe_norm_min"].is_number() ||
       keys.object["moe_norm_min"].get<double>() > kLargestNormMin))
    refuse("moe_norm_min",
           "the top-k weights are divided by their sum however small, as "
           "ERNIE 4.5 MoE's are below its default, 1e-12 (a number up to it "
           "is read so)");
  for (const char *key : {"attention_dropout", "router_jitter_noise"})
    if (keys.has(key) && keys.object[key] != json(0) &&
        keys.object[key] != json(0.0))
      refuse(key, "training has no dropout or router noise");
}

/// moe_qk_norm: false, true (each head, Qwen3's), "whole" (the whole
/// projections, OLMoE's) or "after_rope" (each head after RoPE, HunYuan MoE
/// V1's); `family`'s attention decides where the config
/// leaves it out, and must agree where it does not.
void readQkNorm(KeyReader &keys, mlir::moe::ModelConfig &config,
                const TransformersModel *family) {
  using mlir::moe::QkNorm;
  QkNorm familyNorm = family ? family->qkNorm : QkNorm::none;
  // Its key says, the family's own norm by default (Sarvam-MoE's); the
  // classes fail on null.
  if (family && family->qkNormKey && keys.isNull(family->qkNormKey))
    keys.keyError(family->qkNormKey,
                  llvm::formatv("true or false (transformers' {0} fails on "
                                "null)",
                                family->name)
                      .str());
  if (family && family->qkNormKey)
    familyNorm = keys.boolean(family->qkNormKey, familyNorm == QkNorm::perHead)
                     ? QkNorm::perHead
                     : QkNorm::none;
  config.qkNorm = familyNorm;
  if (keys.has("moe_qk_norm")) {
    const json &value = keys.object["moe_qk_norm"];
    std::optional<QkNorm> spelled;
    for (QkNorm norm :
         {QkNorm::none, QkNorm::perHead, QkNorm::whole, QkNorm::perHeadRotated})
      if (mlir::moe::qkNormKeyValue(norm) == value)
        spelled = norm;
    if (!spelled)
      return keys.keyError("moe_qk_norm",
                           "true, \"whole\", \"after_rope\" or false");
    config.qkNorm = *spelled;
  }
  // Our key may add norms to a family without them, but not to one whose
  // own key says none (GLM-4-MoE's use_qk_norm false).
  bool keyed = family && family->qkNormKey;
  if ((familyNorm != QkNorm::none || keyed) && config.qkNorm != familyNorm)
    return keys.fail(llvm::formatv(
        "key 'moe_qk_norm' is {0}, but {1}'s attention {2} ({3})",
        keys.object["moe_qk_norm"].dump(), family->name,
        familyNorm == QkNorm::perHead ? "normalizes each query and key head"
        : familyNorm == QkNorm::whole ? "normalizes its whole queries and keys"
        : familyNorm == QkNorm::perHeadRotated
            ? "normalizes each query and key head after RoPE"
            : "normalizes no query or key",
        keyed ? llvm::formatv("key '{0}' is {1}{2}", family->qkNormKey,
                              familyNorm == QkNorm::perHead,
                              keys.has(family->qkNormKey) ? "" : " by default")
                    .str()
              : llvm::formatv("model_type '{0}'", family->modelType).str()));
  // OLMoE's q_norm is hidden_size wide.
  if (family && family->wholeNormHiddenSize && keys.has("head_dim") &&
      keys.error.empty() &&
      config.headDim() * config.numHeads != config.hiddenSize)
    keys.fail(llvm::formatv("key 'head_dim' ({0}) is not supported: {1}'s "
                            "q_norm is 'hidden_size' ({2}) wide, so its {3} "
                            "heads are {4} wide",
                            config.headDim(), family->name, config.hiddenSize,
                            config.numHeads,
                            config.hiddenSize / config.numHeads));
}

/// muP's multipliers, as Granite's classes read them (the attention's 1 by
/// default) and our keys (the attention's 1 / sqrt(head_dim) by default).
/// The other families' classes ignore them, as this import does, with a
/// warning.
void readMultipliers(KeyReader &keys, mlir::moe::ModelConfig &config,
                     const TransformersModel *family) {
  using mlir::moe::kMultiplierKeys;
  if (family && !family->muP) {
    for (const char *key : kMultiplierKeys)
      if (keys.has(key) && keys.object[key] != json(1))
        config.warnings.push_back(
            llvm::formatv("transformers' {0} ignores '{1}' ({2}), and so "
                          "does this import",
                          family->name, key, keys.object[key].dump())
                .str());
    return;
  }
  // Granite's classes multiply by null and fail.
  for (const char *key : kMultiplierKeys)
    if (family && keys.isNull(key))
      keys.keyError(key, llvm::formatv("a positive number (transformers' {0} "
                                       "fails on null)",
                                       family->name)
                             .str());
  config.embeddingMultiplier =
      keys.number("embedding_multiplier", 1, /*strictlyPositive=*/true);
  if (family || keys.has("attention_multiplier"))
    config.attentionMultiplier =
        keys.number("attention_multiplier", 1, /*strictlyPositive=*/true);
  // One spelling of the scale moe.attention applies anyway (a Granite
  // export of our keys writes it), so that the two compare equal.
  // (The heads' width needs their count, which must have been read.)
  if (config.attentionMultiplier && keys.error.empty() &&
      *config.attentionMultiplier == config.defaultSoftmaxScale())
    config.attentionMultiplier.reset();
  config.residualMultiplier =
      keys.number("residual_multiplier", 1, /*strictlyPositive=*/true);
  config.logitsScaling =
      keys.number("logits_scaling", 1, /*strictlyPositive=*/true);
}

void checkConsistency(KeyReader &keys, const mlir::moe::ModelConfig &config) {
  if (!keys.error.empty())
    return;
  // A latent attention's heads are sized by its own keys, checked there.
  bool ownHeads = !config.latentAttention;
  if (ownHeads && !config.headDimension &&
      config.hiddenSize % config.numHeads != 0)
    keys.fail(llvm::formatv("'num_attention_heads' ({0}) must divide "
                            "'hidden_size' ({1}), or 'head_dim' be given",
                            config.numHeads, config.hiddenSize)
                  .str());
  else if (ownHeads && config.headDim() % 2 != 0)
    keys.fail(llvm::formatv("head dimension {0} must be even for RoPE",
                            config.headDimension
                                ? "'head_dim' (" +
                                      std::to_string(config.headDim()) + ")"
                                : "hidden_size / num_attention_heads = " +
                                      std::to_string(config.headDim()))
                  .str());
  else if (config.partialRotaryFactor != 1 &&
           (config.rotaryDim() % 2 != 0 || config.rotaryDim() < 2))
    keys.fail(llvm::formatv("'partial_rotary_factor' ({0}) rotates {1} of "
                            "the {2} dimensions of each head (int(head_dim * "
                            "factor)): RoPE needs an even number, 2 or more",
                            json(config.partialRotaryFactor).dump(),
                            config.rotaryDim(), config.headDim())
                  .str());
  else if (config.numHeads % config.numKvHeads != 0)
    keys.fail(llvm::formatv("'num_key_value_heads' ({0}) must divide "
                            "'num_attention_heads' ({1})",
                            config.numKvHeads, config.numHeads)
                  .str());
  else if (config.numLayers > mlir::moe::kMaxLayers)
    keys.fail(llvm::formatv("'num_hidden_layers' ({0}) exceeds the {1} layers "
                            "a model may have",
                            config.numLayers, mlir::moe::kMaxLayers)
                  .str());
  else if (config.seqLen > config.maxPositions)
    keys.fail(llvm::formatv("'moe_seq_len' ({0}) exceeds "
                            "'max_position_embeddings' ({1})",
                            config.seqLen, config.maxPositions)
                  .str());
}

} // namespace

llvm::Expected<mlir::moe::ModelConfig>
mlir::moe::parseModelConfig(llvm::StringRef jsonText,
                            llvm::StringRef fileName) {
  json object;
  try {
    object = moert::parseJsonOrFail(
        std::string_view(jsonText.data(), jsonText.size()),
        std::string_view(fileName.data(), fileName.size()));
  } catch (const moert::Error &error) {
    return llvm::createStringError(error.what());
  }
  if (!object.is_object())
    return llvm::createStringError(fileName + ": not a JSON object");

  KeyReader keys(object, fileName);
  ModelConfig config;
  config.vocabSize = keys.positive("vocab_size");
  config.hiddenSize = keys.positive("hidden_size");
  std::string modelType = keys.string("model_type", "");
  const TransformersModel *family = transformersModelNamed(modelType);
  auto renamed = renameKeyAliases(object, family, fileName);
  if (!renamed)
    return renamed.takeError();
  // A MoE config that names its aux loss's kind is ours (moe-export's), not
  // transformers' own: its keys describe it without the family's defaults.
  const TransformersModel *transformers =
      family && family->moe && !keys.has("moe_aux_loss_kind") ? family
                                                              : nullptr;
  // Where the keys leave the attention, RoPE, the epsilon or the padding
  // token out, the config class of a dense family, or of a transformers MoE
  // config, says.
  const TransformersModel *defaults =
      family && !family->moe ? family : transformers;
  config.intermediateSize = keys.positive(
      "intermediate_size", transformers ? transformers->denseSize : 0);
  config.numLayers = keys.positive("num_hidden_layers");
  config.numHeads = keys.positive("num_attention_heads");
  // The config class's defaults fill the attention's keys left out; a null
  // one is computed, as the classes that take null compute it (the heads'
  // count, hidden_size over it; the others refuse null).
  int64_t kvHeads =
      defaults && defaults->kvHeads && !keys.isNull("num_key_value_heads")
          ? defaults->kvHeads
          : config.numHeads;
  config.numKvHeads = keys.positive("num_key_value_heads", kvHeads);
  if (defaults && defaults->kvHeads && !keys.has("num_key_value_heads") &&
      config.numHeads % kvHeads != 0)
    keys.fail(llvm::formatv("key 'num_key_value_heads' is missing, and "
                            "{0}'s default ({1}) does not divide "
                            "'num_attention_heads' ({2}): give it",
                            defaults->configClass, kvHeads, config.numHeads)
                  .str());
  if (keys.has("head_dim"))
    config.headDimension = keys.positive("head_dim");
  else if (family && family->requiresHeadDim)
    keys.fail(llvm::formatv("key 'head_dim' is required for model_type "
                            "'{0}': transformers' {1} fails without it",
                            family->modelType, family->name)
                  .str());
  else if (defaults && !keys.isNull("head_dim"))
    config.headDimension = defaults->headDim;
  readQkNorm(keys, config, family);
  // Qwen2's q, k and v projections have biases (no key of its config says
  // so); ours and Qwen2-MoE's say it with qkv_bias, GLM-4-MoE's with
  // attention_bias.
  bool familyBias = family && family->qkvBias;
  config.qkvBias = keys.boolean("qkv_bias", familyBias);
  if (family && family->qkvBiasKey &&
      llvm::StringRef(family->qkvBiasKey) != "qkv_bias") {
    bool biased = keys.boolean(family->qkvBiasKey, familyBias);
    if (keys.has("qkv_bias") && biased != config.qkvBias)
      keys.fail(llvm::formatv("keys 'qkv_bias' and '{0}' disagree ({1}'s "
                              "q, k and v biases are '{0}')",
                              family->qkvBiasKey, family->name)
                    .str());
    config.qkvBias = biased;
  }
  if (familyBias && !family->qkvBiasKey && !config.qkvBias)
    keys.fail(llvm::formatv("key 'qkv_bias' is false, but {0}'s q, k and v "
                            "projections have biases (model_type '{1}')",
                            family->name, family->modelType)
                  .str());
  config.maxPositions = keys.positive("max_position_embeddings");
  if (defaults && defaults->ropeTheta)
    config.ropeTheta = defaults->ropeTheta;
  if (defaults && defaults->rmsNormEps)
    config.rmsNormEps = defaults->rmsNormEps;
  mlir::moe::config::readRope(keys, config, family);
  mlir::moe::config::readLatentAttention(keys, config, family,
                                         /*classDefaults=*/defaults != nullptr);
  config.rmsNormEps = keys.number("rms_norm_eps", config.rmsNormEps, true);
  config.initStd = keys.number("initializer_range", config.initStd, false);
  config.tieWordEmbeddings =
      keys.boolean("tie_word_embeddings", defaults && defaults->tiedEmbeddings);
  // As nn.Embedding's padding_idx: a negative id counts from the end; an
  // explicit null is no padding token, whatever the family's default.
  if (keys.has("pad_token_id")) {
    const json &pad = keys.object["pad_token_id"];
    double vocab = static_cast<double>(config.vocabSize);
    if (!pad.is_number_integer() || pad.get<double>() < -vocab ||
        pad.get<double>() >= vocab)
      keys.keyError("pad_token_id",
                    llvm::formatv("null or a token id in [-{0}, {0}) "
                                  "('vocab_size')",
                                  config.vocabSize)
                        .str());
    else
      config.padTokenId =
          (pad.get<int64_t>() + config.vocabSize) % config.vocabSize;
  } else if (defaults && !object.contains("pad_token_id")) {
    config.padTokenId = defaults->padTokenId;
    // nn.Embedding refuses it (FlexOlmo's 100277 in a small vocabulary).
    if (config.padTokenId && *config.padTokenId >= config.vocabSize)
      keys.fail(llvm::formatv("key 'pad_token_id' is missing, and {0}'s "
                              "default ({1}) is outside the vocabulary [0, "
                              "{2}) ('vocab_size'): give it",
                              defaults->configClass, *config.padTokenId,
                              config.vocabSize)
                    .str());
  }
  readMultipliers(keys, config, family);
  bool familyPostNorms = family && family->postNorms;
  config.postNorms =
      keys.familyFlag("moe_post_norms", family, familyPostNorms,
                      familyPostNorms ? "normalizes each sublayer's output"
                                      : "normalizes each sublayer's input");
  bool familyGate = family && family->gatedAttention;
  config.gatedAttention =
      keys.familyFlag("use_gated_attention", family, familyGate,
                      familyGate ? "gates its attention's output"
                                 : "does not gate its attention's output");
  if (config.gatedAttention && config.qkNorm == mlir::moe::QkNorm::whole)
    keys.fail("key 'use_gated_attention' is not supported with 'moe_qk_norm' "
              "\"whole\": the query projection holds each head's gate too");
  if (config.gatedAttention && config.latentAttention)
    keys.fail("key 'use_gated_attention' is not supported with multi-head "
              "latent attention ('kv_lora_rank'): no transformers model gates "
              "it");
  bool familySinks = family && family->attentionSinks;
  config.attentionSinks =
      keys.familyFlag("moe_attention_sinks", family, familySinks,
                      familySinks ? "counts a sink in each head's softmax"
                                  : "has no attention sinks");
  if (config.attentionSinks && config.latentAttention)
    keys.fail("key 'moe_attention_sinks' is not supported with multi-head "
              "latent attention ('kv_lora_rank'): no transformers model has "
              "sinks there");
  auto [expertsKey, otherExpertsKey] = config::expertsKeys(family);
  if (keys.has(expertsKey) || (otherExpertsKey && keys.has(otherExpertsKey)) ||
      transformers)
    config::readMoeKeys(keys, config, family, transformers);
  if (config.isMoe()) {
    config::readDenseLayers(keys, config, family, transformers);
    config::readSharedExpert(keys, config, family, transformers);
  }
  config.batchSize = keys.positive("moe_batch_size", 1);
  config.seqLen = keys.positive("moe_seq_len", config.maxPositions);
  checkConsistency(keys, config);
  if (keys.error.empty())
    refuseUnsupported(keys, config, family);
  if (keys.error.empty())
    config::readAttentionLayers(keys, config, family);
  if (!keys.error.empty()) {
    // Messages name keys as the class reads them.
    for (const auto &[key, spelling] : *renamed)
      if (keys.error.find("'" + key + "'") != std::string::npos)
        keys.error +=
            llvm::formatv(" ('{0}' is the file's '{1}')", key, spelling).str();
    return llvm::createStringError(keys.error);
  }
  return config;
}

namespace {

/// Every key of `config` that shapes its model or training step, in one
/// spelling and order, with the value the model reads (null: unset). The
/// keys that came after checkpoints recorded canonical configs are left out
/// where the model has their defaults, unless `complete`, so that those
/// checkpoints' configs stay the same.
nlohmann::ordered_json canonicalKeys(const mlir::moe::ModelConfig &config,
                                     bool complete = false) {
  auto optional = [](const auto &value) {
    return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json();
  };
  nlohmann::ordered_json keys = {{"vocab_size", config.vocabSize},
                                 {"hidden_size", config.hiddenSize}};
  // A MoE model's MLPs are its experts (moe_intermediate_size), but for its
  // dense layers'.
  if (!config.isMoe() || !config.denseLayers.empty())
    keys["intermediate_size"] = config.intermediateSize;
  keys["num_hidden_layers"] = config.numLayers;
  keys["num_attention_heads"] = config.numHeads;
  keys["num_key_value_heads"] = config.numKvHeads;
  if (config.latentAttention) {
    const mlir::moe::LatentAttention &mla = *config.latentAttention;
    keys["q_lora_rank"] = optional(mla.queryRank);
    keys["kv_lora_rank"] = mla.kvRank;
    keys["qk_nope_head_dim"] = mla.nopeHeadDim;
    keys["qk_rope_head_dim"] = mla.ropeHeadDim;
    keys["v_head_dim"] = mla.valueHeadDim;
  } else {
    if (complete || config.numHeads * config.headDim() != config.hiddenSize)
      keys["head_dim"] = config.headDim();
    // So that a latent attention differs from this one.
    if (complete)
      for (const char *key : mlir::moe::kLatentAttentionKeys)
        keys[key] = nullptr;
  }
  if (complete || config.qkNorm != mlir::moe::QkNorm::none)
    keys["moe_qk_norm"] = mlir::moe::qkNormKeyValue(config.qkNorm);
  if (complete || config.qkvBias)
    keys["qkv_bias"] = config.qkvBias;
  keys["max_position_embeddings"] = config.maxPositions;
  keys["rope_theta"] = config.ropeTheta;
  if (complete || config.ropeScaling)
    keys["rope_scaling"] =
        mlir::moe::config::ropeScalingKeyValue(config.ropeScaling);
  if (config.slidingRope)
    keys["moe_sliding_rope"] =
        mlir::moe::config::layerRopeKeyValue(*config.slidingRope);
  else if (complete)
    keys["moe_sliding_rope"] = nullptr;
  // Only a latent attention's softmax reads it.
  if (config.latentAttention && config.ropeMscaleAllDim)
    keys["rope_scaling"]["mscale_all_dim"] = config.ropeMscaleAllDim;
  if (complete || config.partialRotaryFactor != 1)
    keys["partial_rotary_factor"] = config.partialRotaryFactor;
  if (complete || config.ropeInterleaved)
    keys["rope_interleave"] = config.ropeInterleaved;
  keys["rms_norm_eps"] = config.rmsNormEps;
  keys["tie_word_embeddings"] = config.tieWordEmbeddings;
  if (complete || config.padTokenId)
    keys["pad_token_id"] = optional(config.padTokenId);
  if (complete || config.postNorms)
    keys["moe_post_norms"] = config.postNorms;
  if (complete || config.gatedAttention)
    keys["use_gated_attention"] = config.gatedAttention;
  if (complete || config.hasMultipliers()) {
    keys["embedding_multiplier"] = config.embeddingMultiplier;
    keys["attention_multiplier"] = optional(config.attentionMultiplier);
    keys["residual_multiplier"] = config.residualMultiplier;
    keys["logits_scaling"] = config.logitsScaling;
  }
  // A sliding window where it is shorter than the sequence, the only place
  // where it changes what the model computes (and the only place where
  // the importer took one before it applied them), and the layers that
  // attend to the whole sequence beside it as layer_types says them.
  // A sliding layer's own RoPE applies whatever the window's length.
  std::optional<int64_t> window =
      config.slidingRope ? config.slidingWindow : config.effectiveWindow();
  if (complete || window)
    keys["sliding_window"] = optional(window);
  if (window && !config.fullAttentionLayers.empty())
    keys["layer_types"] = layerTypes(config);
  else if (complete)
    keys["layer_types"] = nullptr;
  if (complete || !config.noRopeLayers.empty())
    keys["moe_nope_layers"] = config.noRopeLayers;
  if (complete || !config.layerRopeTheta.empty())
    keys["moe_layer_rope_theta"] = config.layerRopeTheta;
  if (complete || config.attentionSinks)
    keys["moe_attention_sinks"] = config.attentionSinks;
  keys["num_local_experts"] = config.numExperts;
  if (config.isMoe()) {
    keys["num_experts_per_tok"] = config.topK;
    keys["moe_intermediate_size"] = config.expertIntermediateSize;
    if (complete || !config.denseLayers.empty())
      keys["mlp_only_layers"] = config.denseLayers;
    // A shared expert in the key that builds it: Qwen2-MoE's gated one by
    // its width, DeepSeek's ungated ones by their count, and by their width
    // where no count gives it (Granite MoE Shared's). Complete, both widths,
    // so that any two models' shared experts differ in a key.
    int64_t width = config.sharedExpertIntermediateSize;
    bool gated = config.sharedExpertGated;
    if (complete) {
      keys["shared_expert_intermediate_size"] = gated ? width : 0;
      keys["shared_intermediate_size"] = gated ? 0 : width;
    } else if (config.ungatedSharedExpertsRemainder()) {
      keys["shared_intermediate_size"] = width;
    } else if (!gated) {
      keys["n_shared_experts"] = config.ungatedSharedExperts();
    } else if (width) {
      keys["shared_expert_intermediate_size"] = width;
    }
    keys["moe_gate_norm_lambda"] = optional(config.gateNormLambda);
    keys["moe_capacity_factor"] = optional(config.capacityFactor);
    keys["moe_drop_policy"] =
        config.dropByProbability ? "probability" : "position";
    keys["moe_renormalize"] = config.renormalize;
    if (complete || config.scoring != mlir::moe::GateScoring::softmax)
      keys["moe_router_score_function"] =
          mlir::moe::stringifyGateScoring(config.scoring).str();
    if (complete || config.expertBias)
      keys["moe_router_enable_expert_bias"] = config.expertBias;
    if (complete || config.routedScale != 1)
      keys["routed_scaling_factor"] = config.routedScale;
    if (complete || config.routerGroups != 1 || config.routerGroupTopK != 1) {
      keys["n_group"] = config.routerGroups;
      keys["topk_group"] = config.routerGroupTopK;
    }
    // DeepSeek-V2's group scores, by the best expert.
    if (complete || config.routerGroupScoreTop != 2)
      keys["topk_method"] =
          config.routerGroupScoreTop == 1 ? "group_limited_greedy" : "noaux_tc";
    keys["moe_aux_loss_kind"] =
        config.pooledAuxLoss
            ? std::string("transformers")
            : mlir::moe::stringifyAuxLossKind(config.auxLossKind).str();
    keys["moe_aux_loss_coeff"] = config.auxLossCoeff;
    keys["moe_z_loss_coeff"] = config.zLossCoeff;
  }
  keys["moe_batch_size"] = config.batchSize;
  keys["moe_seq_len"] = config.seqLen;
  keys["initializer_range"] = config.initStd;
  return keys;
}

/// The keys of canonicalKeys that are not the model's.
constexpr llvm::StringLiteral kNotModelKeys[] = {
    "moe_batch_size", "moe_seq_len", "initializer_range"};

} // namespace

nlohmann::json mlir::moe::qkNormKeyValue(QkNorm norm) {
  switch (norm) {
  case QkNorm::none:
    return false;
  case QkNorm::perHead:
    return true;
  case QkNorm::whole:
    return "whole";
  case QkNorm::perHeadRotated:
    return "after_rope";
  }
  llvm_unreachable("every QkNorm is spelled");
}

std::vector<std::string> mlir::moe::layerTypes(const ModelConfig &config) {
  std::vector<std::string> types;
  for (int64_t layer = 0; layer < config.numLayers; ++layer)
    types.push_back(config.slides(layer) ? "sliding_attention"
                                         : "full_attention");
  return types;
}

std::string mlir::moe::canonicalConfig(const ModelConfig &config) {
  return canonicalKeys(config).dump();
}

std::string mlir::moe::canonicalConfigOf(llvm::StringRef text) {
  if (text.empty())
    return "";
  llvm::Expected<ModelConfig> config = parseModelConfig(text, "moe.config");
  if (!config) {
    llvm::consumeError(config.takeError());
    return "";
  }
  return canonicalConfig(*config);
}

std::vector<mlir::moe::ConfigDifference>
mlir::moe::modelDifferences(const ModelConfig &from, const ModelConfig &to) {
  nlohmann::ordered_json fromKeys = canonicalKeys(from, /*complete=*/true),
                         toKeys = canonicalKeys(to, /*complete=*/true);
  // As JSON writes them, a string without quotes, unset as "none" (for the
  // capacity: "dropless").
  auto text = [](const std::string &key, const nlohmann::ordered_json &value) {
    if (value.is_null())
      return std::string(key == "moe_capacity_factor" ? "dropless" : "none");
    return value.is_string() ? value.get<std::string>() : value.dump();
  };
  std::vector<ConfigDifference> differences;
  // Keys that only one describes (a dense model's against a MoE's) follow
  // from num_local_experts, which both do.
  for (const auto &[key, value] : fromKeys.items())
    if (!llvm::is_contained(kNotModelKeys, key) && toKeys.contains(key) &&
        toKeys[key] != value)
      differences.push_back({key, text(key, value), text(key, toKeys[key])});
  return differences;
}
