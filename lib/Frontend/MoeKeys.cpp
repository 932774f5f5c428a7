//===- MoeKeys.cpp - a config.json's mixture-of-experts keys --------------===//
//
// The keys of a MoE model's experts, router, losses and shared experts,
// as ours, Megatron-LM's, Skywork-MoE's and each transformers family's
// config classes spell and default them (the dense layers' in
// DenseLayerKeys.cpp).
//
//===----------------------------------------------------------------------===//

#include "ConfigKeys.h"
#include "moe/Frontend/TransformersModels.h"
#include "moe/MoeDialect.h"

#include "llvm/Support/FormatVariadic.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <string_view>
#include <vector>

using mlir::moe::GateScoring;
using mlir::moe::TransformersModel;
using mlir::moe::config::KeyReader;
using nlohmann::json;

namespace {

/// Whether `key` is absent, null or 1 (json compares 1.0 equal).
bool isOneOrAbsent(const KeyReader &keys, const char *key) {
  return !keys.has(key) || keys.object[key] == json(1);
}

/// DeepSeek-V3's group-limited routing: n_group groups of experts, each
/// token's choices from its topk_group best (moe.gate's groups and
/// group_top_k, whose rules the errors say by key). `transformers`: the
/// transformers family whose class reads the keys, or null (ours).
void readExpertGroups(KeyReader &keys, mlir::moe::ModelConfig &config,
                      const TransformersModel *transformers) {
  for (const char *key : {"n_group", "topk_group"})
    if (transformers && !transformers->expertGroups &&
        !isOneOrAbsent(keys, key))
      keys.fail(llvm::formatv("key '{0}' ({1}) is not supported: "
                              "transformers' {2} chooses among all experts",
                              key, keys.object[key].dump(), transformers->name)
                    .str());
  // A family without groups has refused any but 1, however spelled.
  if (transformers && !transformers->expertGroups)
    return;
  // DeepSeek-V2's topk_method, which our keys read too (DeepSeek-V3's
  // released configs say "noaux_tc", which its class ignores).
  std::string method = "noaux_tc";
  if (!transformers || transformers->topkMethod)
    method = keys.string("topk_method",
                         transformers ? transformers->topkMethod : method);
  // DeepSeek-V2's class fails on another than its two, and on null.
  bool v2Methods = transformers && transformers->topkMethod;
  if (v2Methods && keys.isNull("topk_method"))
    return keys.keyError("topk_method",
                         llvm::formatv("\"greedy\" or \"group_limited_greedy\" "
                                       "(transformers' {0} fails on null)",
                                       transformers->name)
                             .str());
  if (method != "greedy" && method != "group_limited_greedy" &&
      (v2Methods || method != "noaux_tc"))
    return keys.keyError(
        "topk_method",
        v2Methods ? llvm::formatv("\"greedy\" or \"group_limited_greedy\" "
                                  "(transformers' {0} fails on others)",
                                  transformers->name)
                        .str()
                  : std::string("\"greedy\", \"group_limited_greedy\" or "
                                "\"noaux_tc\""));
  if (method == "greedy") {
    for (const char *key : {"n_group", "topk_group"}) {
      if (isOneOrAbsent(keys, key))
        continue;
      std::string given =
          llvm::formatv("'{0}' ({1})", key, keys.object[key].dump());
      const char *why = "'topk_method' \"greedy\" chooses among all experts";
      if (transformers)
        config.warnings.push_back(
            llvm::formatv("transformers' {0} ignores {1}: {2}; so does this "
                          "import",
                          transformers->name, given, why));
      else
        keys.fail(
            llvm::formatv("key {0} is not supported: {1}", given, why).str());
    }
    return;
  }
  int64_t scoreTop = method == "group_limited_greedy" ? 1 : 2;
  for (const char *key : {"n_group", "topk_group"})
    if (transformers && keys.isNull(key))
      keys.keyError(key, llvm::formatv("a positive integer (transformers' {0} "
                                       "fails on null)",
                                       transformers->name)
                             .str());
  config.routerGroups =
      keys.positive("n_group", transformers ? transformers->routerGroups : 1);
  config.routerGroupTopK = keys.positive(
      "topk_group", transformers ? transformers->routerGroupTopK : 1);
  int64_t groups = config.routerGroups, chosen = config.routerGroupTopK;
  int64_t experts = config.numExperts;
  // One group scores as any rule would: the model's is the default.
  if (groups > 1)
    config.routerGroupScoreTop = scoreTop;
  // transformers' DeepSeek-V3 routers score a group by its two best experts
  // even where there is one group, and fail on a group of one.
  bool pairsScored =
      transformers && transformers->expertGroups && scoreTop == 2;
  if (!keys.error.empty() ||
      (groups == 1 && chosen == 1 && (!pairsScored || experts >= 2)))
    return;
  if (pairsScored && groups == 1 && experts < 2)
    keys.fail(llvm::formatv("transformers' {0} scores each group of experts "
                            "by its two best, so it needs 2 or more experts "
                            "(it fails on {1})",
                            transformers->name, experts)
                  .str());
  else if (experts % groups != 0 || experts / groups < scoreTop)
    keys.fail(llvm::formatv("key 'n_group' ({0}) must split the {1} experts "
                            "into groups of {2} or more",
                            groups, experts, scoreTop)
                  .str());
  else if (chosen > groups)
    keys.fail(llvm::formatv("key 'topk_group' ({0}) must be at most "
                            "'n_group' ({1})",
                            chosen, groups)
                  .str());
  else if (config.topK > chosen * (experts / groups))
    keys.fail(llvm::formatv("key 'num_experts_per_tok' ({0}) must be at most "
                            "the {1} experts of the 'topk_group' ({2}) chosen "
                            "groups",
                            config.topK, chosen * (experts / groups), chosen)
                  .str());
}

} // namespace

std::pair<const char *, const char *>
mlir::moe::config::expertsKeys(const TransformersModel *family) {
  if (family)
    return {family->expertsKey, family->otherExpertsKey};
  return {"num_local_experts", "num_experts"};
}

void mlir::moe::config::readMoeKeys(KeyReader &keys, ModelConfig &config,
                                    const TransformersModel *family,
                                    const TransformersModel *transformers) {
  auto [expertsKey, otherExpertsKey] = expertsKeys(family);
  config.numExperts = keys.positive(
      otherExpertsKey ? keys.either(expertsKey, otherExpertsKey) : expertsKey,
      transformers ? transformers->experts : 0);
  // Qwen2-MoE's and EXAONE-MoE's classes have no attribute_map for it: a
  // count there says another model than theirs.
  const char *localKey = "num_local_experts";
  if (family && !otherExpertsKey && keys.has(localKey) &&
      keys.object[localKey] != json(config.numExperts))
    keys.fail(llvm::formatv("key '{0}' ({1}) is not supported in a "
                            "model_type '{2}' config: transformers' {3} "
                            "counts its experts by '{4}' ({5}) and ignores "
                            "it",
                            localKey, keys.object[localKey].dump(),
                            family->modelType, family->name, expertsKey,
                            config.numExperts)
                  .str());
  // The config classes fail on a null count (ERNIE 4.5 MoE's on one of
  // the other spellings too, which its attribute_map passes on).
  if (transformers)
    for (const char *key : {transformers->topKKey, "num_experts_per_tok",
                            expertsKey, otherExpertsKey})
      if (key && keys.isNull(key))
        keys.keyError(key,
                      llvm::formatv("a positive integer (transformers' {0} "
                                    "fails on null)",
                                    transformers->name)
                          .str());
  // ERNIE 4.5 MoE's class reads num_experts_per_tok as its moe_k.
  const char *topKKey =
      family && family->topKKey
          ? keys.either(family->topKKey, "num_experts_per_tok")
          : "num_experts_per_tok";
  // HunYuan MoE V1's class takes each layer's top-k from a list (by the
  // layer's index: entries past the layers unread), which must give every
  // layer one top-k.
  if (family && family->perLayerTopK && keys.has(topKKey) &&
      keys.object[topKKey].is_array()) {
    const json &list = keys.object[topKKey];
    size_t layers = static_cast<size_t>(config.numLayers);
    if (list.empty() || list.size() < layers ||
        std::any_of(list.begin(), list.begin() + layers,
                    [&](const json &each) { return each != list[0]; }))
      return keys.fail(llvm::formatv(
          "key '{0}' ({1}) must be a top-k, or the same one for each of the "
          "{2} layers: every MoE layer here routes to as many experts",
          topKKey, list.dump(), config.numLayers));
    json first = {{topKKey, list[0]}};
    KeyReader layerTopK(first, keys.fileName);
    config.topK = layerTopK.positive(topKKey);
    keys.report(layerTopK);
  } else {
    config.topK = keys.positive(topKKey, transformers ? transformers->topK : 0);
  }
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
      "moe_renormalize", !transformers || transformers->alwaysRenormalizes ||
                             transformers->normTopKProb);
  // Hugging Face's name for it (Qwen-MoE, DeepSeek), held to agree; Mixtral
  // renormalizes whatever it says, DeepSeek-V2 never (it reads no key).
  if (transformers && transformers->neverRenormalizes) {
    if (config.renormalize)
      keys.fail(llvm::formatv("key 'moe_renormalize' is not supported: "
                              "transformers' {0} never divides the top-k "
                              "weights by their sum",
                              transformers->name)
                    .str());
    else if (keys.boolean("norm_topk_prob", false))
      config.warnings.push_back(
          llvm::formatv("transformers' {0} ignores 'norm_topk_prob' (true): "
                        "it never divides the top-k weights by their sum, "
                        "and neither does this import",
                        transformers->name)
              .str());
  } else if (transformers && transformers->alwaysRenormalizes) {
    if (!config.renormalize)
      config.warnings.push_back(
          llvm::formatv("'moe_renormalize' is false, but transformers' {0} "
                        "divides the top-k gate values by their sum: this "
                        "model computes otherwise",
                        transformers->name)
              .str());
    else if (!keys.boolean("norm_topk_prob", true))
      config.warnings.push_back(
          llvm::formatv(
              "'norm_topk_prob' is false, but transformers' {0} divides the "
              "top-k gate values by their sum whatever it says, and so does "
              "this model ('moe_renormalize' false would not)",
              transformers->name)
              .str());
  } else if (transformers && keys.isNull("norm_topk_prob")) {
    // The classes test it for truth: null divides nothing.
    if (keys.has("moe_renormalize") && config.renormalize)
      keys.fail("keys 'moe_renormalize' and 'norm_topk_prob' disagree");
    config.renormalize = false;
  } else if (keys.has("norm_topk_prob")) {
    bool normalized = keys.boolean("norm_topk_prob", config.renormalize);
    if (keys.has("moe_renormalize") && normalized != config.renormalize)
      keys.fail("keys 'moe_renormalize' and 'norm_topk_prob' disagree");
    config.renormalize = normalized;
  }
  // Megatron-LM's names (--moe-router-score-function,
  // --moe-router-enable-expert-bias), or DeepSeek's scoring_func. The
  // family's router (Dots1's sigmoid and bias) decides where the keys leave
  // them out; a transformers config's must agree where they do not.
  const TransformersModel *familyRouter =
      family && family->moe ? family : nullptr;
  const char *scoringKey =
      keys.either("moe_router_score_function", "scoring_func");
  GateScoring familyScoring =
      familyRouter ? familyRouter->scoring : GateScoring::softmax;
  std::string scoring = keys.string(
      scoringKey, mlir::moe::stringifyGateScoring(familyScoring).str());
  std::optional<GateScoring> gateScoring =
      mlir::moe::symbolizeGateScoring(scoring);
  // transformers' classes do not read scoring_func (DeepSeek's configs may
  // name their top-k method there, "noaux_tc").
  if (!gateScoring && transformers &&
      std::string_view(scoringKey) == "scoring_func") {
    config.warnings.push_back(
        llvm::formatv("transformers' {0} does not read 'scoring_func' "
                      "(\"{1}\"), so it is ignored, as there: its router "
                      "scores the experts with a {2}",
                      transformers->name, scoring,
                      mlir::moe::stringifyGateScoring(familyScoring))
            .str());
    gateScoring = familyScoring;
  }
  if (!gateScoring)
    keys.fail("key '" + std::string(scoringKey) +
              "' must be \"softmax\" or \"sigmoid\", got \"" + scoring + "\"");
  config.scoring = gateScoring.value_or(familyScoring);
  if (transformers && config.scoring != familyScoring)
    keys.fail(llvm::formatv("key '{0}' (\"{1}\") is not supported: "
                            "transformers' {2} scores the experts with a {3}",
                            scoringKey, scoring, transformers->name,
                            mlir::moe::stringifyGateScoring(familyScoring))
                  .str());
  bool familyBias = familyRouter && familyRouter->expertBias;
  config.expertBias = keys.boolean("moe_router_enable_expert_bias", familyBias);
  if (transformers && config.expertBias != familyBias)
    keys.fail(llvm::formatv("key 'moe_router_enable_expert_bias' ({0}) is "
                            "not supported: transformers' {1} chooses the "
                            "experts {2}",
                            config.expertBias, transformers->name,
                            familyBias ? "with its e_score_correction_bias"
                                       : "without a bias")
                  .str());
  // DeepSeek's factor on the top-k weights, which the softmax families do
  // not read, and HY V3 reads as router_scaling_factor.
  const char *scaleKey =
      family && family->scaleKey ? family->scaleKey : "routed_scaling_factor";
  // (HY V3's spelling is read in our configs that name its model_type too.)
  const TransformersModel *scaleReader =
      family && family->scaleKey ? family : transformers;
  if (!isOneOrAbsent(keys, "routed_scaling_factor") && scaleReader &&
      (!scaleReader->scalesWeights || scaleReader->scaleKey))
    keys.fail(llvm::formatv("key 'routed_scaling_factor' ({0}) is not "
                            "supported: transformers' {1} {2}",
                            keys.object["routed_scaling_factor"].dump(),
                            scaleReader->name,
                            scaleReader->scaleKey
                                ? llvm::formatv("scales the gate values by "
                                                "'{0}'",
                                                scaleReader->scaleKey)
                                      .str()
                                : std::string("does not scale the gate values"))
                  .str());
  if (scaleReader && scaleReader->scaleKey &&
      keys.isNull(scaleReader->scaleKey))
    keys.keyError(scaleReader->scaleKey, "a positive number");
  config.routedScale = keys.number(
      scaleKey, transformers ? transformers->routedScale : 1.0, true);
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
  if (transformers && !transformers->auxLoss) {
    // Dots1 balances its experts by the bias alone.
    config.auxLossCoeff = 0;
    if (keys.boolean("output_router_logits", false))
      config.warnings.push_back(
          llvm::formatv("transformers' {0} adds no load-balancing loss, so "
                        "'output_router_logits' is ignored, as there; name a "
                        "'moe_aux_loss_kind' to train with one",
                        transformers->name)
              .str());
  } else if (transformers && keys.boolean("output_router_logits", false) &&
             transformers->expertBias && config.auxLossCoeff != 0) {
    // load_balancing_loss_func reads a softmax of the router logits.
    keys.fail(llvm::formatv(
                  "key 'output_router_logits' (true) is not supported: "
                  "transformers' {0} computes its load-balancing loss from a "
                  "softmax of the router logits and their top-k without the "
                  "bias, not from the {1} and the experts it routes by; set "
                  "it false, or name a 'moe_aux_loss_kind' (the config is "
                  "then ours: our defaults fill the keys it leaves out)",
                  transformers->name,
                  transformers->scoring == GateScoring::sigmoid
                      ? "sigmoid scores"
                      : "scores")
                  .str());
  } else if (transformers && !keys.boolean("output_router_logits", false)) {
    config.auxLossCoeff = 0;
    config.warnings.push_back(
        std::string("'output_router_logits' is not true, so, as in "
                    "transformers, the loss has no load-balancing term (its "
                    "aux loss is still reported); ") +
        (transformers->expertBias
             ? "name a 'moe_aux_loss_kind' to add one (the binaries balance "
               "the experts by the routers' biases too)"
             : "set it true, or name a 'moe_aux_loss_kind', to balance the "
               "experts"));
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
    keys.fail(llvm::formatv("key '{0}' ({1}) must be at most the number of "
                            "experts ({2})",
                            topKKey, config.topK, config.numExperts)
                  .str());
  readExpertGroups(keys, config, transformers);
}

void mlir::moe::config::readSharedExpert(
    KeyReader &keys, ModelConfig &config, const TransformersModel *family,
    const TransformersModel *transformers) {
  const char *key = "shared_expert_intermediate_size";
  // Granite MoE Shared's shared MLP, and ours where no count of experts
  // gives its width: ungated, as wide as the key says (0: none).
  const char *widthKey = family && family->sharedWidthKey
                             ? family->sharedWidthKey
                             : "shared_intermediate_size";
  if ((family && family->sharedWidthKey) ||
      (!family && keys.object.contains(widthKey))) {
    for (const char *other : {"n_shared_experts", key})
      if (keys.has(other) && keys.object[other] != json(0))
        return keys.fail(llvm::formatv(
            "key '{0}' ({1}) is not supported {2}: the shared MLP is as wide "
            "as '{3}' says",
            other, keys.object[other].dump(),
            family
                ? llvm::formatv("for model_type '{0}'", family->modelType).str()
                : std::string("beside it"),
            widthKey));
    const char *expected = "0 (none) or a positive integer below 2^31";
    if (keys.isNull(widthKey))
      keys.keyError(widthKey, expected);
    else if (keys.has(widthKey) && keys.object[widthKey] != json(0)) {
      config.sharedExpertIntermediateSize =
          keys.positive(widthKey, 1, expected);
      config.sharedExpertGated = false;
    }
    return;
  }
  // HunYuan MoE V1's shared MLP, as wide as its experts, which no key
  // counts.
  if (family && family->ungatedSharedExperts && !family->sharedExpertsKey) {
    for (const char *other : {"n_shared_experts", key, widthKey})
      if (keys.has(other) && keys.object[other] != json(0))
        return keys.fail(llvm::formatv(
            "key '{0}' ({1}) is not supported for model_type '{2}': "
            "transformers' {3} has {4} ungated shared MLP, as wide as its "
            "experts",
            other, keys.object[other].dump(), family->modelType, family->name,
            family->sharedExperts));
    config.sharedExpertIntermediateSize =
        family->sharedExperts * config.expertIntermediateSize;
    config.sharedExpertGated = false;
    return;
  }
  int64_t familySize = family ? family->sharedExpertSize : 0;
  bool ungatedFamily = family && family->ungatedSharedExperts;
  const char *countKey = family ? family->sharedExpertsKey : "n_shared_experts";
  // ERNIE 4.5 MoE's and HY V3's classes count them by their own keys.
  if (std::string_view(countKey) != "n_shared_experts" &&
      keys.has("n_shared_experts") &&
      keys.object["n_shared_experts"] != json(0))
    return keys.fail(llvm::formatv(
        "key 'n_shared_experts' ({0}) is not supported for model_type "
        "'{1}': transformers' {2} counts its shared experts by '{3}'",
        keys.object["n_shared_experts"].dump(), family->modelType, family->name,
        countKey));
  // GLM-4-MoE's class has one where the key is absent, ERNIE 4.5 MoE's
  // two.
  int64_t familyCount = ungatedFamily && !keys.object.contains(countKey)
                            ? family->sharedExperts
                            : 0;
  // ERNIE 4.5 MoE's class builds none for 0 (or fewer).
  bool noneByCount = ungatedFamily && !family->zeroSharedExperts &&
                     keys.object.contains(countKey) &&
                     keys.object[countKey].is_number_integer() &&
                     keys.object[countKey].get<double>() <= 0;
  bool ungated =
      !noneByCount &&
      (familyCount || (keys.has(countKey) && keys.object[countKey] != json(0)));
  // Dots1's, GLM-4-MoE's and HY V3's classes build them n_shared_experts
  // times moe_intermediate_size wide, for 0 something else than none, and
  // fail on null (Dots1's without the key); ERNIE 4.5 MoE's fails on null.
  if (ungatedFamily && !ungated && !noneByCount)
    return keys.fail(llvm::formatv(
        "key '{0}' must be {5} for model_type '{1}', got {2}: "
        "transformers' {3} builds its shared experts '{0}' times "
        "'moe_intermediate_size' wide{4}{6}",
        countKey, family->modelType,
        keys.object.contains(countKey) ? keys.object[countKey].dump() : "none",
        family->name,
        family->sharedExperts ? "" : " (and fails without the key)",
        family->zeroSharedExperts ? "a positive integer" : "an integer",
        family->zeroSharedExperts && keys.object.contains(countKey) &&
                keys.object[countKey] == json(0)
            ? llvm::formatv(", and for 0 {0}", family->zeroSharedExperts).str()
            : std::string()));
  // DeepSeek's ungated shared experts, which Dots1 has and the other
  // transformers families here have not (Qwen2-MoE's is gated, whatever
  // aux kind its config names).
  if (ungated) {
    const TransformersModel *refusing = ungatedFamily ? nullptr
                                        : transformers
                                            ? transformers
                                            : (familySize ? family : nullptr);
    bool gatedToo = keys.has(key) && keys.object[key] != json(0);
    if (refusing)
      keys.fail(llvm::formatv("key '{0}' ({1}) is not supported for "
                              "model_type '{2}': transformers' {3} has no "
                              "ungated shared experts",
                              countKey, keys.object[countKey].dump(),
                              refusing->modelType, refusing->name)
                    .str());
    else if (gatedToo && transformers)
      config.warnings.push_back(
          llvm::formatv("transformers' {0} has no gated shared expert, so "
                        "'{1}' is ignored, as there",
                        transformers->name, key)
              .str());
    else if (gatedToo)
      keys.fail(llvm::formatv("keys '{0}' (ungated) and "
                              "'shared_expert_intermediate_size' (gated) both "
                              "give the MoE layers a shared expert: give one",
                              countKey)
                    .str());
    int64_t count = keys.positive(countKey, familyCount);
    config.sharedExpertIntermediateSize = count * config.expertIntermediateSize;
    config.sharedExpertGated = false;
    // Sizes index with 32 bits.
    if (config.sharedExpertIntermediateSize > mlir::moe::kMaxDimension)
      keys.fail(llvm::formatv("key '{0}' ({1}) times "
                              "'moe_intermediate_size' ({2}) makes the shared "
                              "experts wider than 2^31",
                              countKey, count, config.expertIntermediateSize)
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
