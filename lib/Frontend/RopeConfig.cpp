//===- RopeConfig.cpp - RoPE's keys of a config.json ----------------------===//
//
// RoPE's base and scaling as transformers' config classes read them:
// transformers 4 writes `rope_theta` and `rope_scaling`, transformers 5 one
// `rope_parameters` object with both; the scaling's keys by rope_type as
// modeling_rope_utils reads them (dynamic, linear, llama3, yarn), each kind's
// defaults and derived values resolved here, so that the IR carries the
// numbers the kernels use.
//
//===----------------------------------------------------------------------===//

#include "ConfigKeys.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"

#include <cmath>
#include <vector>

using mlir::moe::ModelConfig;
using mlir::moe::config::KeyReader;
using moert::RopeKind;
using moert::RopeScaling;
using nlohmann::json;

/// The paper's Eq. 21.
double mlir::moe::yarnMscale(double scale, double mscale) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

namespace {

/// Refuses a key of `rope` that its kind does not read: another kind's,
/// which transformers would refuse or compute with. transformers 5 copies
/// `partial_rotary_factor` there too (readRope reads it).
void refuseUnread(KeyReader &rope, const std::string &type,
                  std::vector<std::string> read) {
  read.insert(read.begin(), "rope_theta");
  for (const auto &item : rope.object.items()) {
    if (!llvm::is_contained(read, item.key()) && item.key() != "rope_type" &&
        item.key() != "type" && item.key() != "partial_rotary_factor" &&
        !item.value().is_null())
      return rope.fail(llvm::formatv("key '{0}{1}' is not supported: "
                                     "rope_type '{2}' reads only {3}",
                                     rope.prefix, item.key(), type,
                                     llvm::join(read, ", "))
                           .str());
  }
}

/// Refuses `high` at or below `low`, naming both keys with the values the
/// model reads (a default where a key is absent, which keyError cannot show).
void requireAbove(KeyReader &rope, const char *highKey, double high,
                  const char *lowKey, double low) {
  if (high <= low)
    rope.fail(llvm::formatv("key '{0}{1}' ({2}) must be above '{0}{3}' ({4})",
                            rope.prefix, highKey, json(high).dump(), lowKey,
                            json(low).dump())
                  .str());
}

/// The scaling that `rope` (rope_scaling or rope_parameters) describes, or
/// none for the default RoPE.
std::optional<RopeScaling>
readScaling(KeyReader &rope, KeyReader &top, ModelConfig &config,
            const mlir::moe::TransformersModel *family) {
  // transformers 5 writes `type` beside `rope_type`; `rope_type` wins.
  std::string type = rope.string("rope_type", rope.string("type", "default"));
  RopeScaling scaling;
  // transformers takes a model-level original_max_position_embeddings
  // first (Phi-3's), then the scaling's, then max_position_embeddings.
  auto originalPositions = [&] {
    KeyReader &from = top.has("original_max_position_embeddings") ? top : rope;
    return static_cast<double>(
        from.positive("original_max_position_embeddings", config.maxPositions));
  };
  auto factor = [&](double fallback) {
    double value = rope.number("factor", fallback, true);
    if (rope.has("factor") && value < 1)
      rope.keyError("factor", "a number >= 1");
    return value;
  };
  if (type == "default") {
    refuseUnread(rope, type, {});
    return std::nullopt;
  }
  // HunYuan's NTK-alpha: a fixed alpha stretches the base once, whatever
  // the sequence; its class reads no other key of the scaling.
  if (type == "dynamic" && family && family->ntkAlpha && rope.has("alpha")) {
    double alpha = rope.number("alpha", 1.0, true);
    double dims = static_cast<double>(config.headDim());
    if (dims <= 2)
      rope.fail(llvm::formatv("key '{0}alpha' needs heads wider than 2 "
                              "(head_dim is {1}): NTK-alpha raises it to "
                              "head_dim / (head_dim - 2)",
                              rope.prefix, config.headDim())
                    .str());
    else
      config.ropeTheta *= std::pow(alpha, dims / (dims - 2));
    std::vector<std::string> ignored;
    for (const auto &item : rope.object.items())
      if (!llvm::is_contained({"alpha", "rope_theta", "rope_type", "type",
                               "partial_rotary_factor"},
                              item.key()))
        ignored.push_back("'" + rope.prefix + item.key() + "'");
    if (!ignored.empty())
      config.warnings.push_back(
          llvm::formatv("transformers' {0} scales RoPE by '{1}alpha' alone "
                        "and ignores {2}, and so does this import",
                        family->name, rope.prefix, llvm::join(ignored, ", "))
              .str());
    return std::nullopt;
  }
  // Dynamic NTK scaling changes RoPE's base only past
  // max_position_embeddings, which no trained sequence reaches
  // (checkConsistency): within it, the default frequencies.
  if (type == "dynamic") {
    rope.require("factor");
    factor(1.0);
    refuseUnread(rope, type, {"factor"});
    return std::nullopt;
  }
  if (type == "linear") {
    scaling.kind = RopeKind::Linear;
    rope.require("factor");
    scaling.factor = factor(1.0);
    refuseUnread(rope, type, {"factor"});
    return scaling;
  }
  if (type == "llama3") {
    scaling.kind = RopeKind::Llama3;
    for (const char *key : {"factor", "low_freq_factor", "high_freq_factor"})
      rope.require(key);
    scaling.factor = factor(1.0);
    scaling.lowFreqFactor = rope.number("low_freq_factor", 1.0, true);
    scaling.highFreqFactor = rope.number("high_freq_factor", 4.0, true);
    requireAbove(rope, "high_freq_factor", scaling.highFreqFactor,
                 "low_freq_factor", scaling.lowFreqFactor);
    scaling.originalPositions = originalPositions();
    refuseUnread(rope, type,
                 {"factor", "low_freq_factor", "high_freq_factor",
                  "original_max_position_embeddings"});
    return scaling;
  }
  if (type == "yarn") {
    scaling.kind = RopeKind::Yarn;
    // transformers derives a null factor from the contexts, and refuses a
    // missing one.
    if (!rope.object.contains("factor"))
      rope.require("factor");
    scaling.originalPositions = originalPositions();
    scaling.factor = factor(config.maxPositions / scaling.originalPositions);
    if (!rope.has("factor") && scaling.factor < 1)
      rope.fail(llvm::formatv("key '{0}factor' is null, and "
                              "max_position_embeddings / "
                              "original_max_position_embeddings ({1}) is "
                              "below 1",
                              rope.prefix, json(scaling.factor).dump())
                    .str());
    // transformers reads 0 as unset for these.
    double betaFast = rope.number("beta_fast", 0.0, false);
    double betaSlow = rope.number("beta_slow", 0.0, false);
    scaling.betaFast = betaFast ? betaFast : 32.0;
    scaling.betaSlow = betaSlow ? betaSlow : 1.0;
    requireAbove(rope, "beta_fast", scaling.betaFast, "beta_slow",
                 scaling.betaSlow);
    scaling.truncate = rope.boolean("truncate", true);
    double mscale = rope.number("mscale", 0.0, false);
    double mscaleAllDim = rope.number("mscale_all_dim", 0.0, false);
    config.ropeMscaleAllDim = mscaleAllDim;
    scaling.attentionFactor =
        rope.has("attention_factor")
            ? rope.number("attention_factor", 1.0, true)
        : mscale && mscaleAllDim
            ? mlir::moe::yarnMscale(scaling.factor, mscale) /
                  mlir::moe::yarnMscale(scaling.factor, mscaleAllDim)
            : mlir::moe::yarnMscale(scaling.factor, 1.0);
    refuseUnread(rope, type,
                 {"factor", "original_max_position_embeddings", "beta_fast",
                  "beta_slow", "truncate", "mscale", "mscale_all_dim",
                  "attention_factor"});
    return scaling;
  }
  rope.fail(llvm::formatv("key '{0}rope_type' ('{1}') is not supported: "
                          "RoPE scales as default, dynamic, linear, llama3 "
                          "or yarn",
                          rope.prefix, type)
                .str());
  return std::nullopt;
}

} // namespace

nlohmann::ordered_json mlir::moe::config::ropeScalingKeyValue(
    const std::optional<RopeScaling> &scaling) {
  if (!scaling)
    return nullptr;
  nlohmann::ordered_json value = {
      {"rope_type",
       stringifyRopeKind(static_cast<mlir::moe::RopeKind>(scaling->kind))
           .str()},
      {"factor", scaling->factor}};
  if (scaling->kind == moert::RopeKind::Llama3) {
    value["low_freq_factor"] = scaling->lowFreqFactor;
    value["high_freq_factor"] = scaling->highFreqFactor;
  }
  if (scaling->kind != moert::RopeKind::Linear)
    value["original_max_position_embeddings"] =
        static_cast<int64_t>(scaling->originalPositions);
  if (scaling->kind == moert::RopeKind::Yarn) {
    value["beta_fast"] = scaling->betaFast;
    value["beta_slow"] = scaling->betaSlow;
    value["truncate"] = scaling->truncate;
    value["attention_factor"] = scaling->attentionFactor;
  }
  return value;
}

namespace {

/// `partial_rotary_factor` at the top level and in `rope` (null: none), the
/// two agreeing. Our keys, GLM-4-MoE's and MiniMax-M2's read it (`family`'s
/// default where both leave it out, or MiniMax-M2's rotary_dim over the
/// head's width); the other transformers families here rotate whole heads,
/// refusing another factor.
void readPartialRotary(KeyReader &keys, KeyReader *rope, ModelConfig &config,
                       const mlir::moe::TransformersModel *family) {
  const char *key = "partial_rotary_factor";
  std::optional<double> familyFactor =
      family ? family->partialRotaryFactor : std::nullopt;
  auto factorIn = [&](KeyReader &reader) -> std::optional<double> {
    // GLM-4-MoE's class takes a null factor for none (whole heads) at the
    // top level and fails on one in rope_parameters: refused, not guessed.
    if (familyFactor && reader.isNull(key))
      reader.keyError(key, "a number (transformers' " +
                               std::string(family->name) +
                               " reads null as 1 or fails)");
    if (!reader.has(key))
      return std::nullopt;
    return reader.number(key, 1.0, true);
  };
  std::optional<double> top = factorIn(keys);
  std::optional<double> nested = rope ? factorIn(*rope) : std::nullopt;
  if (top && nested && *top != *nested)
    return keys.fail(llvm::formatv("key '{0}{1}' ({2}) disagrees with '{1}' "
                                   "({3})",
                                   rope->prefix, key, json(*nested).dump(),
                                   json(*top).dump())
                         .str());
  double factor = nested ? *nested : top.value_or(familyFactor.value_or(1.0));
  const char *dimsKey = family ? family->rotaryDimKey : nullptr;
  // headDim() divides by the heads' count, which must have been read.
  if (dimsKey && keys.has(dimsKey) && keys.error.empty()) {
    int64_t dims = keys.positive(dimsKey);
    double given = static_cast<double>(dims) / config.headDim();
    if (dims > config.headDim() || dims % 2 != 0)
      return keys.fail(llvm::formatv("key '{0}' ({1}) must be even and at "
                                     "most the {2} dimensions of a head",
                                     dimsKey, dims, config.headDim())
                           .str());
    if ((top || nested) && given != factor)
      return keys.fail(
          llvm::formatv("key '{0}' ({1}) disagrees with '{2}{3}' ({4}), "
                        "which rotates {5} of the {6} dimensions of a head",
                        dimsKey, dims, nested ? rope->prefix : std::string(),
                        key, json(factor).dump(),
                        static_cast<int64_t>(config.headDim() * factor),
                        config.headDim())
              .str());
    factor = given;
  }
  if (factor == 1)
    return;
  std::string spelled =
      (nested ? rope->prefix : std::string()) + std::string(key);
  if (family && !familyFactor)
    return keys.fail(llvm::formatv("key '{0}' ({1}) is not supported: "
                                   "transformers' {2} rotates every "
                                   "dimension of a head",
                                   spelled, json(factor).dump(), family->name)
                         .str());
  if (factor > 1)
    return keys.fail(llvm::formatv("key '{0}' must be at most 1, got {1}",
                                   spelled, json(factor).dump())
                         .str());
  config.partialRotaryFactor = factor;
}

/// Whether config.json gives RoPE object `key` (transformers 4's
/// rope_scaling, 5's rope_parameters), not empty.
bool ropeObjectGiven(KeyReader &keys, const char *key) {
  return keys.has(key) &&
         !(keys.object[key].is_object() && keys.object[key].empty());
}

/// Refuses a config that gives both RoPE objects: transformers 4 writes
/// rope_scaling, 5 rope_parameters, and transformers reads rope_scaling
/// alone (OLMo 3's as its full layers').
bool refusedBothRopeObjects(KeyReader &keys) {
  if (!ropeObjectGiven(keys, "rope_scaling") ||
      !ropeObjectGiven(keys, "rope_parameters"))
    return false;
  keys.fail("keys 'rope_parameters' and 'rope_scaling' both describe RoPE "
            "(transformers reads 'rope_scaling' alone); give one");
  return true;
}

/// The sliding layers' RoPE `sliding`, where it differs from the others'
/// (the same is none).
void setSlidingRope(ModelConfig &config, const mlir::moe::LayerRope &sliding) {
  if (!sliding.sameAs(config.fullRope()))
    config.slidingRope = sliding;
}

/// OLMo 3's RoPE by layer type: rope_parameters {"full_attention": ...,
/// "sliding_attention": ...}, each a flat one. Its class's
/// convert_rope_params_to_dict gives a legacy rope_scaling (and its
/// rope_theta, else the top-level one, which it pops for them) to the
/// full-attention layers only, the sliding ones its own base (already
/// `config.ropeTheta`) where their object lacks one. As nested objects,
/// each takes YaRN's original_max_position_embeddings from itself (not
/// config.json's top level) and truncate from rope_parameters itself (its
/// own is ignored).
void readRopeByLayerType(KeyReader &keys, ModelConfig &config,
                         const TransformersModel *family) {
  double classTheta = config.ropeTheta;
  // Its full layers fail on a null base.
  if (keys.isNull("rope_theta"))
    return keys.keyError(
        "rope_theta",
        llvm::formatv("a number (transformers' {0} fails on null)",
                      family->name)
            .str());
  mlir::moe::LayerRope full{keys.number("rope_theta", classTheta, true),
                            std::nullopt},
      sliding{classTheta, std::nullopt};
  readPartialRotary(keys, nullptr, config, family);
  if (refusedBothRopeObjects(keys))
    return;
  json truncate = true;
  auto readType = [&](KeyReader &reader, mlir::moe::LayerRope &rope,
                      bool legacy) {
    readPartialRotary(keys, &reader, config, family);
    rope.theta = reader.number("rope_theta", rope.theta, true);
    json object = reader.object;
    // A legacy rope_scaling updates {"rope_type": "default"}: transformers
    // 4's `type` does not replace it, and the rest goes unread; an object
    // by layer type without rope_type fails there.
    if (!object.contains("rope_type") && object.contains("type")) {
      if (!legacy)
        return reader.fail(llvm::formatv(
            "key '{0}rope_type' is missing, which transformers' {1} needs "
            "beside 'type' in an object by layer type",
            reader.prefix, family->name));
      config.warnings.push_back(
          llvm::formatv("'{0}type' ({1}) is ignored, as transformers' {2} "
                        "reads a RoPE object's kind from 'rope_type' alone: "
                        "it rotates by the default RoPE, as there",
                        reader.prefix, object["type"].dump(), family->name)
              .str());
      object = {{"rope_type", "default"}};
    }
    if (object.contains("truncate") && object["truncate"] != truncate)
      config.warnings.push_back(
          llvm::formatv("'{0}truncate' ({1}) is ignored, as transformers' "
                        "{2} reads YaRN's truncate from 'rope_parameters' "
                        "itself ({3})",
                        reader.prefix, object["truncate"].dump(), family->name,
                        truncate.dump())
              .str());
    object.erase("truncate");
    json kind = object.value("rope_type", object.value("type", json()));
    if (kind == json("yarn"))
      object["truncate"] = truncate;
    KeyReader nested(object, reader.fileName, reader.prefix);
    rope.scaling = readScaling(nested, nested, config, family);
    reader.report(nested);
  };
  if (ropeObjectGiven(keys, "rope_scaling")) {
    if (!keys.object["rope_scaling"].is_object())
      return keys.keyError("rope_scaling", "an object");
    KeyReader rope = keys.nested("rope_scaling");
    readType(rope, full, /*legacy=*/true);
    keys.report(rope);
  } else if (ropeObjectGiven(keys, "rope_parameters")) {
    if (!keys.object["rope_parameters"].is_object())
      return keys.keyError("rope_parameters", "an object");
    KeyReader types = keys.nested("rope_parameters");
    for (const auto &[type, value] : types.object.items())
      if (type != "full_attention" && type != "sliding_attention" &&
          type != "truncate")
        return keys.fail(llvm::formatv(
            "key 'rope_parameters.{0}' is not supported: transformers' {1} "
            "reads RoPE by layer type (\"full_attention\", "
            "\"sliding_attention\", and YaRN's \"truncate\" for both) and "
            "ignores the rest",
            type, family->name));
    if (types.has("truncate") && !types.object["truncate"].is_boolean())
      return types.keyError("truncate", "true or false");
    truncate = types.object.value("truncate", json(true));
    for (auto [type, rope] : {std::pair<const char *, mlir::moe::LayerRope *>{
                                  "full_attention", &full},
                              {"sliding_attention", &sliding}}) {
      if (!types.has(type))
        continue;
      if (!types.object[type].is_object())
        return types.keyError(type, "an object");
      KeyReader reader = types.nested(type);
      readType(reader, *rope, /*legacy=*/false);
      types.report(reader);
    }
    keys.report(types);
  }
  config.ropeTheta = full.theta;
  config.ropeScaling = full.scaling;
  setSlidingRope(config, sliding);
}

/// moe_sliding_rope: our keys' RoPE of the sliding layers, a flat object
/// as rope_parameters, which transformers' families refuse (OLMo 3's says
/// it by layer type).
void readSlidingRope(KeyReader &keys, ModelConfig &config,
                     const TransformersModel *family) {
  const char *key = "moe_sliding_rope";
  if (!keys.has(key))
    return;
  if (family)
    return keys.fail(llvm::formatv(
        "key '{0}' is not supported in a model_type '{1}' config: {2}", key,
        family->modelType,
        family->ropeByLayerType
            ? "its 'rope_parameters' gives each layer type's RoPE"
            : llvm::formatv("transformers' {0} rotates every layer alike",
                            family->name)
                  .str()));
  if (!keys.object[key].is_object())
    return keys.keyError(key, "an object");
  KeyReader rope = keys.nested(key);
  mlir::moe::LayerRope sliding{
      rope.number("rope_theta", config.ropeTheta, true),
      readScaling(rope, keys, config, family)};
  keys.report(rope);
  setSlidingRope(config, sliding);
}

/// Every layer's RoPE, from rope_theta and rope_scaling or
/// rope_parameters.
void readUniformRope(KeyReader &keys, ModelConfig &config,
                     const TransformersModel *family) {
  config.ropeTheta = keys.number("rope_theta", config.ropeTheta, true);
  if (refusedBothRopeObjects(keys))
    return;
  const char *key = ropeObjectGiven(keys, "rope_scaling") ? "rope_scaling"
                                                          : "rope_parameters";
  if (!ropeObjectGiven(keys, key))
    return readPartialRotary(keys, nullptr, config, family);
  if (!keys.object[key].is_object())
    return keys.keyError(key, "an object");
  KeyReader rope = keys.nested(key);
  readPartialRotary(keys, &rope, config, family);
  if (rope.has("rope_theta")) {
    double theta = rope.number("rope_theta", config.ropeTheta, true);
    if (keys.has("rope_theta") && theta != config.ropeTheta)
      rope.fail(llvm::formatv("key '{0}.rope_theta' ({1}) disagrees with "
                              "'rope_theta' ({2})",
                              key, json(theta).dump(),
                              json(config.ropeTheta).dump())
                    .str());
    config.ropeTheta = theta;
  }
  config.ropeScaling = readScaling(rope, keys, config, family);
  keys.report(rope);
}

} // namespace

bool mlir::moe::LayerRope::sameAs(const LayerRope &other) const {
  return theta == other.theta && config::ropeScalingKeyValue(scaling) ==
                                     config::ropeScalingKeyValue(other.scaling);
}

nlohmann::ordered_json
mlir::moe::config::layerRopeKeyValue(const LayerRope &rope) {
  nlohmann::ordered_json value = ropeScalingKeyValue(rope.scaling);
  if (value.is_null())
    value = {{"rope_type", "default"}};
  value["rope_theta"] = rope.theta;
  return value;
}

void mlir::moe::config::readRope(KeyReader &keys, ModelConfig &config,
                                 const TransformersModel *family) {
  // DeepSeek-V3's key for the pairs; another family's rotation is its
  // class's.
  bool familyPairs = family && family->interleavedRope;
  // DeepSeek-V3's class reads null as false.
  config.ropeInterleaved =
      family && family->readsRopeInterleave
          ? !keys.isNull("rope_interleave") &&
                keys.boolean("rope_interleave", familyPairs)
          : keys.familyFlag("rope_interleave", family, familyPairs,
                            familyPairs ? "turns pairs (2i, 2i + 1)"
                                        : "turns the halves of each head");
  if (family && family->ropeByLayerType)
    readRopeByLayerType(keys, config, family);
  else
    readUniformRope(keys, config, family);
  readSlidingRope(keys, config, family);
}
