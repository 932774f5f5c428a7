//===- DenseLayerKeys.cpp - which layers of a MoE model are dense ---------===//
//
// The keys that place a MoE model's dense layers among its MoE layers, as
// ours, Qwen's (mlp_only_layers, decoder_sparse_step), DeepSeek's
// (first_k_dense_replace), ERNIE 4.5 MoE's (moe_layer_start_index, ...) and
// HY V3's (mlp_layer_types) config classes spell and default them.
//
//===----------------------------------------------------------------------===//

#include "ConfigKeys.h"
#include "moe/Frontend/TransformersModels.h"
#include "moe/MoeDialect.h"

#include "llvm/Support/FormatVariadic.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <string_view>
#include <vector>

using mlir::moe::TransformersModel;
using mlir::moe::config::KeyReader;
using nlohmann::json;

namespace {

/// How `family`'s class places the dense layers, as messages name its keys
/// (null: it builds every layer as a MoE layer).
const char *layerKeysOf(const TransformersModel &family) {
  if (family.sparseLayerKeys)
    return "keys 'mlp_only_layers' and 'decoder_sparse_step'";
  if (family.firstDenseLayers)
    return "key 'first_k_dense_replace'";
  if (family.firstMoeLayer)
    return "keys 'moe_layer_start_index', 'moe_layer_end_index' and "
           "'moe_layer_interval'";
  if (family.mlpLayerTypes)
    return "key 'mlp_layer_types'";
  return nullptr;
}

/// HY V3's "dense" or "sparse" for each layer into `dense`: read in its
/// configs (the first dense where the key is absent or null, as its class
/// has it) and in ours that name its model_type (every layer sparse by
/// default).
void readLayerTypes(KeyReader &keys, const TransformersModel *transformers,
                    std::vector<bool> &dense) {
  const char *key = "mlp_layer_types";
  int64_t layers = dense.size();
  if (!keys.has(key)) {
    // MiniCPM5-MoE's class places them by first_k_dense_replace then (its
    // value checked by readDenseLayers), the others' the first.
    int64_t first = transformers ? 1 : 0;
    const char *firstKey = "first_k_dense_replace";
    bool byFirst = transformers && transformers->firstDenseWithoutLayerTypes;
    if (byFirst && keys.isNull(firstKey))
      keys.keyError(firstKey, llvm::formatv("an integer (transformers' {0} "
                                            "fails on null)",
                                            transformers->name)
                                  .str());
    if (byFirst && keys.has(firstKey) &&
        keys.object[firstKey].is_number_integer())
      first = keys.object[firstKey].get<int64_t>();
    for (int64_t layer = 0; layer < std::min(first, layers); ++layer)
      dense[layer] = true;
    return;
  }
  const json &types = keys.object[key];
  std::string expected =
      llvm::formatv("a list of \"dense\" or \"sparse\", one for each of the "
                    "{0} layers ('num_hidden_layers')",
                    layers)
          .str();
  if (!types.is_array() || static_cast<int64_t>(types.size()) != layers)
    return keys.keyError(key, expected);
  for (int64_t layer = 0; layer < layers; ++layer) {
    if (types[layer] != json("dense") && types[layer] != json("sparse"))
      return keys.keyError(key, expected);
    dense[layer] = types[layer] == json("dense");
  }
}

/// ERNIE 4.5 MoE's range of MoE layers: read in its configs (from layer 1
/// by default, as its class has it) and in ours that name its model_type
/// (every layer by default).
mlir::moe::MoeLayerRange
readMoeLayerRange(KeyReader &keys, int64_t layers,
                  const TransformersModel *transformers) {
  auto integer = [&](const char *key, int64_t fallback) {
    if (!keys.object.contains(key))
      return fallback;
    const json &value = keys.object[key];
    if (!value.is_number_integer() || value.get<double>() < -(1LL << 31) ||
        value.get<double>() >= (1LL << 31)) {
      keys.keyError(key, "an integer");
      return fallback;
    }
    return value.get<int64_t>();
  };
  mlir::moe::MoeLayerRange range;
  range.start = integer("moe_layer_start_index",
                        transformers ? *transformers->firstMoeLayer : 0);
  // Its class reads -1 as the last layer.
  int64_t end = integer("moe_layer_end_index", -1);
  range.end = end == -1 ? layers - 1 : end;
  // 1 where the key is refused too: an interval of 0 divides by zero.
  if (keys.isNull("moe_layer_interval"))
    keys.keyError("moe_layer_interval", "a positive integer");
  range.interval = keys.positive("moe_layer_interval", 1);
  return range;
}

} // namespace

void mlir::moe::config::readDenseLayers(KeyReader &keys, ModelConfig &config,
                                        const TransformersModel *family,
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
  // GLM-4.7-Flash's released config gives first_k_dense_replace, which its
  // class ignores: it must place the layers as mlp_layer_types does.
  // EXAONE-MoE's class saves it beside mlp_layer_types, which wins.
  bool ignoredFirstDense = transformers && transformers->mlpLayerTypes &&
                           keys.has("first_k_dense_replace");
  bool checkedFirstDense =
      ignoredFirstDense && !(transformers->savesFirstDenseBesideLayerTypes &&
                             keys.has("mlp_layer_types"));
  for (const auto &[key, value] : neutral) {
    bool read =
        !transformers ||
        (std::string_view(key) == "first_k_dense_replace"
             ? transformers->firstDenseLayers.has_value() || ignoredFirstDense
             : transformers->sparseLayerKeys);
    const char *placement = transformers ? layerKeysOf(*transformers) : "";
    if (keys.has(key) && !read && keys.object[key] != value)
      keys.fail(llvm::formatv("key '{0}' ({1}) is not supported: "
                              "transformers' {2} {3}",
                              key, keys.object[key].dump(), transformers->name,
                              placement ? "places its layers by its " +
                                              std::string(placement) + " only"
                                        : "builds every layer as a MoE layer")
                    .str());
  }
  if (family && family->mlpLayerTypes)
    readLayerTypes(keys, transformers, dense);
  std::optional<MoeLayerRange> moeRange;
  if (family && family->firstMoeLayer)
    moeRange = readMoeLayerRange(keys, layers, transformers);
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
  int64_t first = transformers ? transformers->firstDenseLayers.value_or(0) : 0;
  // DeepSeek's classes fail on null.
  if (transformers && transformers->firstDenseLayers &&
      keys.isNull("first_k_dense_replace"))
    keys.keyError("first_k_dense_replace",
                  llvm::formatv("an integer (transformers' {0} fails on null)",
                                transformers->name)
                      .str());
  // EXAONE-MoE's class passes over it beside mlp_layer_types.
  if (keys.has("first_k_dense_replace") &&
      (checkedFirstDense || !ignoredFirstDense)) {
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
  if (checkedFirstDense && keys.error.empty()) {
    for (int64_t layer = 0; layer < layers; ++layer)
      if (dense[layer] != (layer < first))
        return keys.fail(llvm::formatv(
            "key 'first_k_dense_replace' ({0}) disagrees with 'mlp_layer_types'"
            "{1}, by which transformers' {2} places its dense layers (it "
            "ignores 'first_k_dense_replace')",
            first,
            keys.has("mlp_layer_types") ? ""
                                        : " (absent: the first layer dense)",
            transformers->name));
  }
  if (ignoredFirstDense)
    first = 0;
  auto outsideRange = [&](int64_t layer) {
    return moeRange && ((layer + 1) % moeRange->interval != 0 ||
                        layer < moeRange->start || layer > moeRange->end);
  };
  for (int64_t layer = 0; layer < layers; ++layer)
    if (dense[layer] || (layer + 1) % step != 0 || layer < first ||
        outsideRange(layer))
      config.denseLayers.push_back(layer);
  if (static_cast<int64_t>(config.denseLayers.size()) == layers) {
    bool familyKeys =
        family && (family->firstMoeLayer || family->mlpLayerTypes);
    keys.fail(llvm::formatv("no layer is a MoE layer by its {0}{1}: a model "
                            "with experts needs one",
                            familyKeys ? layerKeysOf(*family)
                                       : "keys 'mlp_only_layers', "
                                         "'decoder_sparse_step' and "
                                         "'first_k_dense_replace'",
                            family && family->mlpLayerTypes &&
                                    !keys.has("mlp_layer_types")
                                ? family->firstDenseWithoutLayerTypes
                                      ? " (absent: the first "
                                        "'first_k_dense_replace' dense)"
                                      : " (absent: the first layer dense)"
                                : "")
                  .str());
  }
}
