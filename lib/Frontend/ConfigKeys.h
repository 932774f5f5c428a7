//===- ConfigKeys.h - reading a config.json's keys --------------*- C++ -*-===//
//
// The typed reader of a config object's keys that the importer's readers
// share (ModelConfig.cpp, RopeConfig.cpp): the first error wins and names
// the file and the key.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_FRONTEND_CONFIGKEYS_H
#define MOE_LIB_FRONTEND_CONFIGKEYS_H

#include "moe/Frontend/ModelConfig.h"
#include "moe/Frontend/TransformersModels.h"

#include "llvm/Support/FormatVariadic.h"

#include <nlohmann/json.hpp>

#include <limits>
#include <string>
#include <utility>

namespace mlir::moe::config {

/// The model computes in f32, where a larger value is infinite and a
/// positive one may round to 0.
inline bool withinF32(double value, bool strictlyPositive) {
  return value <= std::numeric_limits<float>::max() &&
         !(strictlyPositive && static_cast<float>(value) == 0);
}

/// Reads typed keys from the config object, remembering the first error.
class KeyReader {
public:
  KeyReader(const nlohmann::json &object, llvm::StringRef fileName,
            llvm::StringRef prefix = "")
      : object(object), fileName(fileName.str()), prefix(prefix.str()) {}

  /// A reader of the object under `key` whose messages name its keys as
  /// `key.inner`; its first error becomes this reader's with report().
  KeyReader nested(const char *key) const {
    return KeyReader(object[key], fileName, prefix + key + ".");
  }
  void report(const KeyReader &inner) {
    if (error.empty())
      error = inner.error;
  }

  bool has(const char *key) const {
    return object.contains(key) && !object[key].is_null();
  }
  /// Whether the key is there with null, which most readers take as absent.
  bool isNull(const char *key) const {
    return object.contains(key) && object[key].is_null();
  }

  void fail(const std::string &message) {
    if (error.empty())
      error = fileName + ": " + message;
  }

  void keyError(const char *key, const std::string &expected) {
    fail(llvm::formatv("key '{0}{1}' must be {2}, got {3}", prefix, key,
                       expected, object[key].dump())
             .str());
  }

  /// Fails where `key` is absent (or null).
  void require(const char *key) {
    if (!has(key))
      fail(
          llvm::formatv("required key '{0}{1}' is missing", prefix, key).str());
  }

  /// A positive integer; `fallback` when the key is absent (0: required).
  int64_t positive(const char *key, int64_t fallback = 0,
                   const char *expected = "a positive integer below 2^31") {
    if (!has(key)) {
      if (fallback == 0)
        require(key);
      return fallback;
    }
    const nlohmann::json &value = object[key];
    // Sizes index with 32-bit ids and slots.
    if (!value.is_number_integer() || value.get<double>() <= 0 ||
        value.get<double>() > mlir::moe::kMaxDimension) {
      keyError(key, expected);
      return fallback;
    }
    return value.get<int64_t>();
  }

  /// A number >= `lowest` (or > 0 when `strictlyPositive`).
  double number(const char *key, double fallback, bool strictlyPositive) {
    if (!has(key))
      return fallback;
    const nlohmann::json &value = object[key];
    if (!value.is_number() || (strictlyPositive ? value.get<double>() <= 0
                                                : value.get<double>() < 0)) {
      keyError(key, strictlyPositive ? "a positive number"
                                     : "a non-negative number");
      return fallback;
    }
    if (!withinF32(value.get<double>(), strictlyPositive)) {
      keyError(key, "a number within f32's range (1.4e-45 to 3.4e38)");
      return fallback;
    }
    return value.get<double>();
  }

  bool boolean(const char *key, bool fallback) {
    if (!has(key))
      return fallback;
    if (!object[key].is_boolean()) {
      keyError(key, "true or false");
      return fallback;
    }
    return object[key].get<bool>();
  }

  std::string string(const char *key, const std::string &fallback) {
    if (!has(key))
      return fallback;
    if (!object[key].is_string()) {
      keyError(key, "a string");
      return fallback;
    }
    return object[key].get<std::string>();
  }

  /// The first of `keys` present: two present at once is an error, since the
  /// config would say one thing twice and might contradict itself.
  const char *either(const char *first, const char *second) {
    if (has(first) && has(second))
      fail(llvm::formatv("keys '{0}{1}' and '{0}{2}' mean the same; give "
                         "only one",
                         prefix, first, second)
               .str());
    return has(second) ? second : first;
  }

  /// Our boolean key `key` where a transformers family's class fixes its
  /// value (`familyValue`): that value by default, another refused, naming
  /// what the family `does` instead. Without a family, false by default.
  bool familyFlag(const char *key, const TransformersModel *family,
                  bool familyValue, const std::string &does) {
    bool value = boolean(key, family && familyValue);
    if (family && value != familyValue)
      fail(llvm::formatv("key '{0}{1}' ({2}) is not supported: "
                         "transformers' {3} {4}",
                         prefix, key, value, family->name, does)
               .str());
    return value;
  }

  const nlohmann::json &object;
  std::string fileName;
  /// What names this object's keys in messages ("rope_scaling."), or "".
  std::string prefix;
  std::string error;
};

/// The key of a config's number of experts and its other spelling, which
/// `family`'s config class (null: ours) reads as one: num_local_experts
/// and num_experts, Dots1's n_routed_experts and num_local_experts, ERNIE
/// 4.5 MoE's moe_num_experts and num_experts, HY V3's num_experts and
/// num_local_experts.
std::pair<const char *, const char *>
expertsKeys(const TransformersModel *family);

/// Reads the experts', the router's and the losses' keys into `config`
/// (MoeKeys.cpp). `family` is the config's model_type's (its router and its
/// experts' key), `transformers` the family of a transformers MoE model's
/// own config (naming no moe_aux_loss_kind), or null: such a config
/// imports as transformers computes and trains that model, with its config
/// class's defaults where ours differ, and the keys that the model ignores
/// are ignored here too (with a warning where they would have changed the
/// model).
void readMoeKeys(KeyReader &keys, ModelConfig &config,
                 const TransformersModel *family,
                 const TransformersModel *transformers);

/// The layers of a MoE model whose FFN is a dense MLP: those Qwen's
/// mlp_only_layers lists, those its decoder_sparse_step passes over (layer
/// l is a MoE layer where (l + 1) % step == 0), DeepSeek's first
/// first_k_dense_replace, for `family` ERNIE 4.5 MoE those outside
/// moe_layer_start_index..moe_layer_end_index or that moe_layer_interval
/// passes over, and for HY V3, GLM-4-MoE-Lite and MiniCPM5-MoE those its
/// mlp_layer_types names "dense" (without it MiniCPM5-MoE's first
/// first_k_dense_replace; DenseLayerKeys.cpp). A
/// transformers config reads only the keys its class reads (Qwen-MoE's two,
/// Dots1's first_k_dense_replace, ERNIE 4.5 MoE's three, HY V3's list);
/// another's are refused unless they place no dense layer.
void readDenseLayers(KeyReader &keys, ModelConfig &config,
                     const TransformersModel *family,
                     const TransformersModel *transformers);

/// The MoE layers' shared expert: Qwen2-MoE's gated one
/// (shared_expert_intermediate_size), part of the model like its
/// attention, so that a qwen2_moe config has Qwen2MoeConfig's where the key
/// is absent, whatever aux kind it names (0 or null is none, but in a
/// qwen2_moe config, whose class builds an empty expert with a gate for 0
/// and refuses null; transformers' other MoE classes ignore the key); or
/// DeepSeek's ungated ones (n_shared_experts), which a dots1 config must
/// give and a glm4_moe or solar_open config has one of by default.
void readSharedExpert(KeyReader &keys, ModelConfig &config,
                      const TransformersModel *family,
                      const TransformersModel *transformers);

/// Reads the sliding window, the layers it applies to, those that apply no
/// RoPE and each layer's RoPE base into `config` (AttentionLayerKeys.cpp):
/// our keys sliding_window, layer_types, moe_nope_layers and
/// moe_layer_rope_theta, or as `family`'s class reads and derives them (its
/// SlidingWindow rule; EXAONE 4's full-attention layers rotate nothing
/// where the window is not null, GraniteSWA's layer_rope_theta gives each
/// layer's base, 0 for none, which our keys, if given, must agree with; the
/// other families rotate every layer by rope_theta).
void readAttentionLayers(KeyReader &keys, ModelConfig &config,
                         const TransformersModel *family);

/// Reads RoPE's keys into `config`: its base (`rope_theta`, or
/// `rope_parameters.rope_theta`) and its scaling (`rope_scaling`, or
/// `rope_parameters`: dynamic, linear, llama3, yarn), as transformers' config
/// classes read them (RopeConfig.cpp).
/// And the partial rotary embedding's `partial_rotary_factor` (top-level,
/// or in `rope_parameters`, where transformers 5 copies it; MiniMax-M2's
/// `rotary_dim`), which our keys, GLM-4-MoE's and MiniMax-M2's read and the
/// other families (`family`: the config's model_type's, or null) refuse but
/// 1; and `rope_interleave`, the pairs turned, which must be `family`'s.
/// OLMo 3's RoPE by layer type (`family`'s ropeByLayerType), and our key
/// moe_sliding_rope, give ModelConfig::slidingRope.
void readRope(KeyReader &keys, ModelConfig &config,
              const TransformersModel *family);

/// Reads multi-head latent attention's keys into `config`
/// (LatentAttentionConfig.cpp): where `family` (the config's model_type's,
/// or null) has one, with its class's defaults where `classDefaults`, and
/// otherwise where kv_lora_rank is given; other families refuse
/// kv_lora_rank and q_lora_rank. Reads after RoPE's keys, which it checks
/// against.
void readLatentAttention(KeyReader &keys, ModelConfig &config,
                         const TransformersModel *family, bool classDefaults);
/// `rope_scaling`'s canonical value: the kind and every number it reads,
/// resolved (null: unscaled).
nlohmann::ordered_json
ropeScalingKeyValue(const std::optional<moert::RopeScaling> &scaling);
/// A layer's RoPE as one flat rope_parameters object: its kind, numbers
/// and base (our moe_sliding_rope, OLMo 3's objects by layer type).
nlohmann::ordered_json layerRopeKeyValue(const LayerRope &rope);

} // namespace mlir::moe::config

#endif // MOE_LIB_FRONTEND_CONFIGKEYS_H
