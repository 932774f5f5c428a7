//===- ModelConfig.cpp - a model described by a config.json ---------------===//

#include "moe/Frontend/ModelConfig.h"
#include "ConfigKeys.h"
#include "moe/Frontend/TransformersModels.h"
#include "moe/MoeDialect.h"
#include "moert/Error.h"
#include "moert/Json.h"

#include "llvm/Support/FormatVariadic.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

using mlir::moe::TransformersModel;
using mlir::moe::config::KeyReader;
using mlir::moe::config::withinF32;
using nlohmann::json;

namespace {

/// `transformers`: the family of a transformers MoE model's own config
/// (model_type mixtral, qwen3_moe, olmoe or qwen2_moe, naming no
/// moe_aux_loss_kind), or null. Such a config imports as transformers
/// computes and trains that model, with its config class's defaults where
/// ours differ, and the keys that the model ignores are ignored here too
/// (with a warning where they would have changed the model).
void readMoeKeys(KeyReader &keys, mlir::moe::ModelConfig &config,
                 const TransformersModel *transformers) {
  config.numExperts =
      keys.positive(keys.either("num_local_experts", "num_experts"),
                    transformers ? transformers->experts : 0);
  config.topK = keys.positive("num_experts_per_tok",
                              transformers ? transformers->topK : 0);
  bool byIntermediateSize =
      transformers && transformers->expertsByIntermediateSize;
  if (byIntermediateSize && keys.has("moe_intermediate_size"))
    config.warnings.push_back(
        llvm::formatv("transformers' {0} sizes its experts by "
                      "'intermediate_size', so 'moe_intermediate_size' is "
                      "ignored, as there",
                      transformers->name)
            .str());
  config.expertIntermediateSize =
      byIntermediateSize
          ? config.intermediateSize
          : keys.positive("moe_intermediate_size",
                          transformers ? transformers->expertSize
                                       : config.intermediateSize);
  const char *lambdaKey = nullptr;
  if (keys.has("moe_gate_norm_lambda")) {
    if (keys.has("moe_use_logits_norm"))
      keys.fail("keys 'moe_gate_norm_lambda' and 'moe_use_logits_norm' "
                "(Skywork's) mean the same; give only one");
    lambdaKey = "moe_gate_norm_lambda";
  } else if (keys.boolean("moe_use_logits_norm", false)) {
    lambdaKey = "moe_gate_norm_std";
  }
  if (lambdaKey) {
    config.gateNormLambda = keys.number(lambdaKey, 1.0, true);
    // As moe.gate_norm's verifier says of the IR.
    double largest = mlir::moe::largestNormalizedLogit(*config.gateNormLambda,
                                                       config.numExperts);
    if (largest > std::numeric_limits<float>::max())
      keys.fail(llvm::formatv("key '{0}' ({1:e}) is too large for {2} experts: "
                              "the largest normalized logit, lambda * "
                              "sqrt(experts - 1), is {3:e}, beyond f32",
                              lambdaKey, *config.gateNormLambda,
                              config.numExperts, largest)
                    .str());
  }
  if (keys.has("moe_capacity_factor"))
    config.capacityFactor = keys.number("moe_capacity_factor", 1.0, true);
  std::string policy = keys.string("moe_drop_policy", "position");
  if (policy != "position" && policy != "probability")
    keys.fail("key 'moe_drop_policy' must be \"position\" or \"probability\", "
              "got \"" +
              policy + "\"");
  config.dropByProbability = policy == "probability";
  if (config.dropByProbability && !config.capacityFactor)
    keys.fail("key 'moe_drop_policy' is \"probability\" but there is no "
              "'moe_capacity_factor': a dropless layer drops nothing");
  config.renormalize = keys.boolean(
      "moe_renormalize", !transformers || transformers->alwaysRenormalizes);
  // Hugging Face's name for it (Qwen-MoE, DeepSeek), held to agree; Mixtral
  // renormalizes whatever it says.
  if (transformers && transformers->alwaysRenormalizes) {
    if (!keys.boolean("norm_topk_prob", true))
      config.warnings.push_back(
          llvm::formatv(
              "'norm_topk_prob' is false, but transformers' {0} divides the "
              "top-k gate values by their sum whatever it says, and so does "
              "this model ('moe_renormalize' false would not)",
              transformers->name)
              .str());
  } else if (keys.has("norm_topk_prob")) {
    bool normalized = keys.boolean("norm_topk_prob", config.renormalize);
    if (keys.has("moe_renormalize") && normalized != config.renormalize)
      keys.fail("keys 'moe_renormalize' and 'norm_topk_prob' disagree");
    config.renormalize = normalized;
  }
  // Megatron-LM's names (--moe-router-score-function,
  // --moe-router-enable-expert-bias), or DeepSeek's scoring_func.
  const char *scoringKey =
      keys.either("moe_router_score_function", "scoring_func");
  std::string scoring = keys.string(scoringKey, "softmax");
  std::optional<mlir::moe::GateScoring> gateScoring =
      mlir::moe::symbolizeGateScoring(scoring);
  if (!gateScoring)
    keys.fail("key '" + std::string(scoringKey) +
              "' must be \"softmax\" or \"sigmoid\", got \"" + scoring + "\"");
  config.scoring = gateScoring.value_or(mlir::moe::GateScoring::softmax);
  config.expertBias = keys.boolean("moe_router_enable_expert_bias", false);
  // transformers' families here route by a softmax without a bias.
  if (transformers && config.scoring != mlir::moe::GateScoring::softmax)
    keys.fail(llvm::formatv("key '{0}' (\"sigmoid\") is not supported: "
                            "transformers' {1} scores the experts with a "
                            "softmax",
                            scoringKey, transformers->name)
                  .str());
  if (transformers && config.expertBias)
    keys.fail(llvm::formatv("key 'moe_router_enable_expert_bias' (true) is "
                            "not supported: transformers' {0} chooses the "
                            "experts without a bias",
                            transformers->name)
                  .str());
  // DeepSeek's factor on the top-k weights, which transformers' families
  // here do not read.
  if (keys.has("routed_scaling_factor") &&
      keys.object["routed_scaling_factor"] != json(1) &&
      keys.object["routed_scaling_factor"] != json(1.0) && transformers)
    keys.fail(llvm::formatv("key 'routed_scaling_factor' ({0}) is not "
                            "supported: transformers' {1} does not scale the "
                            "gate values",
                            keys.object["routed_scaling_factor"].dump(),
                            transformers->name)
                  .str());
  config.routedScale = keys.number("routed_scaling_factor", 1.0, true);
  if (config.scoring == mlir::moe::GateScoring::sigmoid && config.topK == 1 &&
      config.renormalize)
    config.warnings.push_back(
        "with one expert a token, renormalized sigmoid weights are all 1, so "
        "the router learns nothing from the loss (Megatron-LM renormalizes "
        "sigmoid weights only for top-k > 1): set 'moe_renormalize' false "
        "to weigh each token's expert by its score");
  // A transformers config that names no kind trains as transformers trains
  // it: one Switch-style loss over all layers' tokens, and only when
  // output_router_logits is set (transformers adds no aux loss otherwise);
  // its coefficient defaults to the config class's.
  std::string kind = keys.string("moe_aux_loss_kind",
                                 transformers ? "transformers" : "skywork");
  if (kind == "switch")
    config.auxLossKind = mlir::moe::AuxLossKind::switch_;
  else if (kind == "transformers")
    config.pooledAuxLoss = true;
  else if (kind != "skywork")
    keys.fail("key 'moe_aux_loss_kind' must be \"skywork\", \"switch\" or "
              "\"transformers\", got \"" +
              kind + "\"");
  // The pooled loss's coefficient defaults to the config class's
  // router_aux_loss_coef (Mixtral's and Qwen3-MoE's without one).
  double pooledCoeff = transformers ? transformers->auxLossCoeff : 0.001;
  config.configuredAuxLossCoeff =
      keys.number(keys.either("moe_aux_loss_coeff", "router_aux_loss_coef"),
                  config.pooledAuxLoss ? pooledCoeff : 0.01, false);
  config.auxLossCoeff = config.configuredAuxLossCoeff;
  if (transformers && !keys.boolean("output_router_logits", false)) {
    config.auxLossCoeff = 0;
    config.warnings.push_back(
        "'output_router_logits' is not true, so, as in transformers, the "
        "loss has no load-balancing term (its aux loss is still reported); "
        "set it true, or name a 'moe_aux_loss_kind', to balance the experts");
  }
  if (transformers) {
    config.zLossCoeff = keys.number("moe_z_loss_coeff", 0.0, false);
    if (keys.number("router_z_loss_coef", 0.0, false) != 0)
      config.warnings.push_back(
          llvm::formatv("transformers' {0} has no router z-loss, so "
                        "'router_z_loss_coef' is ignored, as there; give "
                        "'moe_z_loss_coeff' (or name a 'moe_aux_loss_kind') "
                        "to train with one",
                        transformers->name)
              .str());
  } else {
    config.zLossCoeff = keys.number(
        keys.either("moe_z_loss_coeff", "router_z_loss_coef"), 0.0, false);
  }
  if (config.topK > config.numExperts && keys.error.empty())
    keys.fail(llvm::formatv("key 'num_experts_per_tok' ({0}) must be at most "
                            "the number of experts ({1})",
                            config.topK, config.numExperts)
                  .str());
}

/// The layers of a MoE model whose FFN is a dense MLP: those Qwen's
/// mlp_only_layers lists, those its decoder_sparse_step passes over (layer
/// l is a MoE layer where (l + 1) % step == 0) and DeepSeek's first
/// first_k_dense_replace. A transformers config reads only the keys its
/// class reads (Qwen-MoE's two); another's are refused unless they place
/// no dense layer.
void readDenseLayers(KeyReader &keys, mlir::moe::ModelConfig &config,
                     const TransformersModel *transformers) {
  int64_t layers = config.numLayers;
  // checkConsistency refuses more layers than a model may have, later; a
  // list of them must not take the memory first.
  if (layers > mlir::moe::kMaxLayers)
    return;
  std::vector<bool> dense(layers, false);
  const std::pair<const char *, json> neutral[] = {
      {"mlp_only_layers", json::array()},
      {"decoder_sparse_step", json(1)},
      {"first_k_dense_replace", json(0)}};
  for (const auto &[key, value] : neutral) {
    bool qwen = transformers && transformers->sparseLayerKeys;
    bool read = !transformers ||
                (qwen && std::string_view(key) != "first_k_dense_replace");
    if (keys.has(key) && !read && keys.object[key] != value)
      keys.fail(llvm::formatv("key '{0}' ({1}) is not supported: "
                              "transformers' {2} {3}",
                              key, keys.object[key].dump(), transformers->name,
                              qwen ? "places dense layers by "
                                     "'mlp_only_layers' and "
                                     "'decoder_sparse_step' only"
                                   : "builds every layer as a MoE layer")
                    .str());
  }
  if (keys.has("mlp_only_layers")) {
    const json &list = keys.object["mlp_only_layers"];
    std::string expected =
        llvm::formatv("a list of layer indices below 'num_hidden_layers' ({0})",
                      layers)
            .str();
    if (!list.is_array())
      keys.keyError("mlp_only_layers", expected);
    else
      for (const json &entry : list) {
        if (!entry.is_number_integer() || entry.get<double>() < 0 ||
            entry.get<double>() >= layers) {
          keys.keyError("mlp_only_layers", expected);
          break;
        }
        dense[entry.get<int64_t>()] = true;
      }
  }
  int64_t step = keys.positive("decoder_sparse_step", 1);
  int64_t first = 0;
  if (keys.has("first_k_dense_replace")) {
    const json &value = keys.object["first_k_dense_replace"];
    if (!value.is_number_integer() || value.get<double>() < 0 ||
        value.get<double>() > layers)
      keys.keyError("first_k_dense_replace",
                    llvm::formatv("an integer from 0 to 'num_hidden_layers' "
                                  "({0})",
                                  layers)
                        .str());
    else
      first = value.get<int64_t>();
  }
  for (int64_t layer = 0; layer < layers; ++layer)
    if (dense[layer] || (layer + 1) % step != 0 || layer < first)
      config.denseLayers.push_back(layer);
  if (static_cast<int64_t>(config.denseLayers.size()) == layers)
    keys.fail("keys 'mlp_only_layers', 'decoder_sparse_step' and "
              "'first_k_dense_replace' leave no MoE layer: a model with "
              "experts needs one");
}

/// Qwen2-MoE's shared expert, part of the model like its attention: a
/// qwen2_moe config has Qwen2MoeConfig's where the key is absent, whatever
/// aux kind it names. 0 or null is none, but in a qwen2_moe config, whose
/// class builds an empty expert with a gate for 0 and refuses null.
/// transformers' other MoE classes ignore the key (`transformers`).
void readSharedExpert(KeyReader &keys, mlir::moe::ModelConfig &config,
                      const TransformersModel *family,
                      const TransformersModel *transformers) {
  const char *key = "shared_expert_intermediate_size";
  int64_t familySize = family ? family->sharedExpertSize : 0;
  // DeepSeek's ungated shared experts, which no transformers family here
  // has (Qwen2-MoE's is gated, whatever aux kind its config names).
  if (keys.has("n_shared_experts") &&
      keys.object["n_shared_experts"] != json(0)) {
    const TransformersModel *refusing =
        transformers ? transformers : (familySize ? family : nullptr);
    if (refusing)
      keys.fail(llvm::formatv("key 'n_shared_experts' ({0}) is not supported "
                              "for model_type '{1}': transformers' {2} has "
                              "no ungated shared experts",
                              keys.object["n_shared_experts"].dump(),
                              refusing->modelType, refusing->name)
                    .str());
    else if (keys.has(key) && keys.object[key] != json(0))
      keys.fail("keys 'n_shared_experts' (ungated) and "
                "'shared_expert_intermediate_size' (gated) both give the MoE "
                "layers a shared expert: give one");
    int64_t count = keys.positive("n_shared_experts", 1);
    config.sharedExpertIntermediateSize = count * config.expertIntermediateSize;
    config.sharedExpertGated = false;
    // Sizes index with 32 bits.
    if (config.sharedExpertIntermediateSize > mlir::moe::kMaxDimension)
      keys.fail(llvm::formatv("key 'n_shared_experts' ({0}) times "
                              "'moe_intermediate_size' ({1}) makes the shared "
                              "experts wider than 2^31",
                              count, config.expertIntermediateSize)
                    .str());
    return;
  }
  if (!keys.object.contains(key)) {
    config.sharedExpertIntermediateSize = familySize;
    return;
  }
  const json &value = keys.object[key];
  bool none = value.is_null() || value == json(0);
  if (transformers && !familySize) {
    if (!none)
      config.warnings.push_back(
          llvm::formatv("transformers' {0} has no shared expert, so '{1}' is "
                        "ignored, as there",
                        transformers->name, key)
              .str());
  } else if (none && familySize) {
    keys.fail(llvm::formatv("key '{0}' ({1}) is not supported for model_type "
                            "'{2}': transformers' {3} refuses null and builds "
                            "an empty shared expert with a gate for 0 (leave "
                            "model_type out for a MoE without one)",
                            key, value.dump(), family->modelType, family->name)
                  .str());
  } else if (!none) {
    config.sharedExpertIntermediateSize =
        keys.positive(key, 1, "0 (none) or a positive integer below 2^31");
  }
}

/// Keys that would change what the model computes in ways it cannot: each
/// must be absent or say what the model does anyway, or the config is
/// refused rather than imported as a different model. `family` is the
/// transformers model whose config class reads the keys (its
/// sliding_window rule), or null.
void refuseUnsupported(KeyReader &keys, mlir::moe::ModelConfig &config,
                       const TransformersModel *family) {
  auto refuse = [&](const char *key, const std::string &why) {
    keys.fail(llvm::formatv("key '{0}' ({1}) is not supported: {2}", key,
                            keys.object[key].dump(), why)
                  .str());
  };
  // The architectures that these keys describe completely: transformers'
  // families and Skywork-MoE's release. Others build other models from
  // them: OLMo2 normalizes after attention and MLP, Gemma scales its norms
  // and embeddings otherwise.
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
    // Qwen2's attention has its biases whatever the key says.
    if (family && family->qkvBias && llvm::StringRef(key) == "attention_bias")
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
  if (keys.has("partial_rotary_factor") &&
      keys.object["partial_rotary_factor"] != json(1) &&
      keys.object["partial_rotary_factor"] != json(1.0))
    refuse("partial_rotary_factor", "RoPE rotates every dimension of a head");
  if (keys.has("num_shared_experts") &&
      keys.object["num_shared_experts"] != json(0))
    refuse("num_shared_experts",
           "shared experts are given by 'n_shared_experts' (ungated, "
           "DeepSeek's) or 'shared_expert_intermediate_size' (gated, "
           "Qwen2-MoE's)");
  if (!config.isMoe() && keys.has("n_shared_experts") &&
      keys.object["n_shared_experts"] != json(0))
    refuse("n_shared_experts", "a dense model has no experts");
  if (!config.isMoe() && keys.has("routed_scaling_factor") &&
      keys.object["routed_scaling_factor"] != json(1) &&
      keys.object["routed_scaling_factor"] != json(1.0))
    refuse("routed_scaling_factor", "a dense model has no experts");
  if (!config.isMoe() && keys.has("shared_expert_intermediate_size") &&
      keys.object["shared_expert_intermediate_size"] != json(0))
    refuse("shared_expert_intermediate_size", "a dense model has no experts");
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
      {"n_routed_experts", json(), "DeepSeek's MoE layers are not built"},
      {"moe_layer_freq", json(1),
       "dense layers are placed by 'first_k_dense_replace', "
       "'mlp_only_layers' or 'decoder_sparse_step'"},
      {"q_lora_rank", json(), "attention is not multi-head latent attention"},
      {"kv_lora_rank", json(), "attention is not multi-head latent attention"},
      {"n_group", json(1), "the router chooses among all experts"},
      {"topk_group", json(1), "the router chooses among all experts"},
      {"clip_qkv", json(), "queries, keys and values are not clipped"}};
  for (const ForeignKey &foreign : kForeignKeys)
    if (keys.has(foreign.key) && keys.object[foreign.key] != foreign.neutral)
      refuse(foreign.key, foreign.why);
  for (const char *key : {"attention_dropout", "router_jitter_noise"})
    if (keys.has(key) && keys.object[key] != json(0) &&
        keys.object[key] != json(0.0))
      refuse(key, "training has no dropout or router noise");
  // The window is checked against the sequence once --seq-len is known
  // (checkModelSizes). Each family applies it its own way; our keys alone
  // apply it unless use_sliding_window is false.
  using mlir::moe::SlidingWindow;
  // Mistral's and Qwen's config classes have a window where the key is
  // absent (not where it is null).
  bool defaulted =
      !keys.object.contains("sliding_window") && family && family->windowSize;
  json window = defaulted ? json(family->windowSize)
                          : keys.object.value("sliding_window", json());
  if (window.is_null())
    return;
  SlidingWindow rule = family ? family->slidingWindow : SlidingWindow::applied;
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
  if (family && rule == SlidingWindow::applied && switchedOff)
    config.warnings.push_back(
        llvm::formatv("transformers' {0} applies 'sliding_window' whatever "
                      "'use_sliding_window' says, and so does this import",
                      family->name)
            .str());
  if (mlir::moe::isSwitched(rule) && !keys.boolean("use_sliding_window", false))
    return;
  if (mlir::moe::picksLayers(rule)) {
    // The layers that slide: those layer_types names so, else Qwen2's and
    // Qwen3's from max_window_layers on, Qwen2-MoE's even ones below it.
    // The model's window is every layer's or none.
    int64_t sliding = 0;
    if (keys.has("layer_types") && keys.object["layer_types"].is_array()) {
      for (const json &type : keys.object["layer_types"])
        sliding += type == json("sliding_attention");
    } else {
      int64_t bound =
          static_cast<int64_t>(std::min(keys.number("max_window_layers", 28.0,
                                                    /*strictlyPositive=*/false),
                                        double(config.numLayers)));
      sliding = rule == SlidingWindow::switchedFrom ? config.numLayers - bound
                                                    : (bound + 1) / 2;
    }
    if (sliding == 0)
      return;
    if (sliding != config.numLayers)
      return keys.fail(llvm::formatv(
          "keys 'use_sliding_window', 'max_window_layers' and "
          "'layer_types' make {0} of the {1} layers attend within "
          "'sliding_window', which is not supported: the model's window is "
          "every layer's or none",
          sliding, config.numLayers));
  }
  if (!window.is_number_integer() || window.get<int64_t>() <= 0)
    return keys.keyError("sliding_window", "null or a positive integer");
  config.slidingWindow = window.get<int64_t>();
  if (defaulted)
    config.warnings.push_back(
        llvm::formatv("'sliding_window' is absent, so {0}'s default, {1}, "
                      "applies, as in transformers",
                      family->configClass, family->windowSize)
            .str());
}

/// moe_qk_norm: false, true (each head, Qwen3's) or "whole" (the whole
/// projections, OLMoE's); `family`'s attention decides where the config
/// leaves it out, and must agree where it does not.
void readQkNorm(KeyReader &keys, mlir::moe::ModelConfig &config,
                const TransformersModel *family) {
  using mlir::moe::QkNorm;
  QkNorm familyNorm = family ? family->qkNorm : QkNorm::none;
  config.qkNorm = familyNorm;
  if (keys.has("moe_qk_norm")) {
    const json &value = keys.object["moe_qk_norm"];
    std::optional<QkNorm> spelled;
    for (QkNorm norm : {QkNorm::none, QkNorm::perHead, QkNorm::whole})
      if (mlir::moe::qkNormKeyValue(norm) == value)
        spelled = norm;
    if (!spelled)
      return keys.keyError("moe_qk_norm", "true, \"whole\" or false");
    config.qkNorm = *spelled;
  }
  if (familyNorm != QkNorm::none && config.qkNorm != familyNorm)
    return keys.fail(llvm::formatv(
        "key 'moe_qk_norm' is {0}, but {1}'s attention normalizes {2} "
        "(model_type '{3}')",
        keys.object["moe_qk_norm"].dump(), family->name,
        familyNorm == QkNorm::perHead ? "each query and key head"
                                      : "its whole queries and keys",
        family->modelType));
  // OLMoE's q_norm is hidden_size wide.
  if (familyNorm == QkNorm::whole && keys.has("head_dim") &&
      keys.error.empty() &&
      config.headDim() * config.numHeads != config.hiddenSize)
    keys.fail(llvm::formatv("key 'head_dim' ({0}) is not supported: {1}'s "
                            "q_norm is 'hidden_size' ({2}) wide, so its {3} "
                            "heads are {4} wide",
                            config.headDim(), family->name, config.hiddenSize,
                            config.numHeads,
                            config.hiddenSize / config.numHeads));
}

void checkConsistency(KeyReader &keys, const mlir::moe::ModelConfig &config) {
  if (!keys.error.empty())
    return;
  if (!config.headDimension && config.hiddenSize % config.numHeads != 0)
    keys.fail(llvm::formatv("'num_attention_heads' ({0}) must divide "
                            "'hidden_size' ({1}), or 'head_dim' be given",
                            config.numHeads, config.hiddenSize)
                  .str());
  else if (config.headDim() % 2 != 0)
    keys.fail(llvm::formatv("head dimension {0} must be even for RoPE",
                            config.headDimension
                                ? "'head_dim' (" +
                                      std::to_string(config.headDim()) + ")"
                                : "hidden_size / num_attention_heads = " +
                                      std::to_string(config.headDim()))
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
  // The config class's defaults fill the attention's keys left out.
  int64_t kvHeads =
      defaults && defaults->kvHeads ? defaults->kvHeads : config.numHeads;
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
  else if (defaults)
    config.headDimension = defaults->headDim;
  readQkNorm(keys, config, family);
  // Qwen2's q, k and v projections have biases (no key of its config says
  // so); ours and Qwen2-MoE's say it with qkv_bias.
  bool familyBias = family && family->qkvBias;
  config.qkvBias = keys.boolean("qkv_bias", familyBias);
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
  mlir::moe::config::readRope(keys, config);
  config.rmsNormEps = keys.number("rms_norm_eps", config.rmsNormEps, true);
  config.initStd = keys.number("initializer_range", config.initStd, false);
  config.tieWordEmbeddings = keys.boolean("tie_word_embeddings", false);
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
  }
  if (keys.has("num_local_experts") || keys.has("num_experts") || transformers)
    readMoeKeys(keys, config, transformers);
  if (config.isMoe()) {
    readDenseLayers(keys, config, transformers);
    readSharedExpert(keys, config, family, transformers);
  }
  config.batchSize = keys.positive("moe_batch_size", 1);
  config.seqLen = keys.positive("moe_seq_len", config.maxPositions);
  checkConsistency(keys, config);
  if (keys.error.empty())
    refuseUnsupported(keys, config, family);
  if (!keys.error.empty())
    return llvm::createStringError(keys.error);
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
  if (complete || config.numHeads * config.headDim() != config.hiddenSize)
    keys["head_dim"] = config.headDim();
  if (complete || config.qkNorm != mlir::moe::QkNorm::none)
    keys["moe_qk_norm"] = mlir::moe::qkNormKeyValue(config.qkNorm);
  if (complete || config.qkvBias)
    keys["qkv_bias"] = config.qkvBias;
  keys["max_position_embeddings"] = config.maxPositions;
  keys["rope_theta"] = config.ropeTheta;
  if (complete || config.ropeScaling)
    keys["rope_scaling"] =
        mlir::moe::config::ropeScalingKeyValue(config.ropeScaling);
  keys["rms_norm_eps"] = config.rmsNormEps;
  keys["tie_word_embeddings"] = config.tieWordEmbeddings;
  if (complete || config.padTokenId)
    keys["pad_token_id"] = optional(config.padTokenId);
  // Not the sliding window: the importer takes one only where it covers the
  // whole sequence, so it changes nothing the model computes.
  keys["num_local_experts"] = config.numExperts;
  if (config.isMoe()) {
    keys["num_experts_per_tok"] = config.topK;
    keys["moe_intermediate_size"] = config.expertIntermediateSize;
    if (complete || !config.denseLayers.empty())
      keys["mlp_only_layers"] = config.denseLayers;
    // A shared expert in the key that builds it: Qwen2-MoE's gated one by
    // its width, DeepSeek's ungated ones by their count.
    if (!config.sharedExpertGated)
      keys["n_shared_experts"] =
          config.sharedExpertIntermediateSize / config.expertIntermediateSize;
    else if (complete || config.sharedExpertIntermediateSize)
      keys["shared_expert_intermediate_size"] =
          config.sharedExpertIntermediateSize;
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
  return norm == QkNorm::whole ? json("whole") : json(norm == QkNorm::perHead);
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
