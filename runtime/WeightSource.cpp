//===- WeightSource.cpp - a model's weights from Hugging Face or us -------===//

#include "moert/WeightSource.h"
#include "moert/Error.h"
#include "moert/Files.h"
#include "moert/Json.h"
#include "moert/StateNames.h"

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <regex>
#include <sys/stat.h>

using moert::DType;
using moert::OwnedTensor;
using moert::TensorView;

struct moert::WeightSource::Part {
  const SafetensorsReader *file;
  const TensorView *view;
  /// Stacked along a new first axis: this part's index (an expert).
  int64_t index = -1;
  /// Rows [begin, end) of `axis` (half of a fused gate_up_proj on axis 1,
  /// of a fused shared MLP's on axis 0, a third of a fused query_key_value
  /// on axis 0); end < 0: the whole tensor.
  int axis = 1;
  int64_t begin = 0, end = -1;
  /// Which of a fused query_key_value's q, k and v rows this part is (-1:
  /// none), whose bounds the o projection's columns (the q rows) give.
  int qkvPart = -1;
  /// Whether a leading axis of 1 is dropped (ERNIE 4.5 MoE's [1, experts]
  /// bias).
  bool squeeze = false;
};

namespace {

bool isDirectory(const std::string &path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

bool exists(const std::string &path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

/// Rows [begin, end) of axis `axis` of a view, in its own dtype.
OwnedTensor sliceAxis(const TensorView &view, int axis, int64_t begin,
                      int64_t end) {
  OwnedTensor slice{view.dtype, view.shape, {}};
  slice.shape[axis] = end - begin;
  int64_t outers = 1;
  size_t row = moert::dtypeSize(view.dtype);
  for (int dim = 0; dim < static_cast<int>(view.shape.size()); ++dim) {
    if (dim < axis)
      outers *= view.shape[dim];
    else if (dim > axis)
      row *= view.shape[dim];
  }
  const char *data = static_cast<const char *>(view.data);
  for (int64_t outer = 0; outer < outers; ++outer) {
    const char *from = data + (outer * view.shape[axis] + begin) * row;
    slice.data.insert(slice.data.end(), from, from + (end - begin) * row);
  }
  return slice;
}

/// Qwen-MoE's names of an expert's projections, and ours (Mixtral's).
constexpr std::pair<std::string_view, std::string_view> kQwenProjections[] = {
    {"gate", "w1"}, {"up", "w3"}, {"down", "w2"}};

/// A projection's name in the other naming: ours for Qwen's, Qwen's for
/// ours.
std::string otherProjectionName(const std::string &name) {
  for (auto [qwen, ours] : kQwenProjections)
    if (name == qwen || name == ours)
      return std::string(name == qwen ? ours : qwen);
  return name;
}

/// Our name (and part) for a name in a Hugging Face file.
struct Renamed {
  std::string name;
  int64_t index = -1;
  /// A fused gate and up projection, [..., 2 x intermediate, hidden] of
  /// rank `fusedRank` (3 for experts, 2 for a shared MLP): `name` takes the
  /// first half of its rows, `up` the second.
  int fusedRank = 0;
  std::string up;
  bool squeeze = false;
  /// A fused query_key_value's: `name` is the layer's attention
  /// ("model.layers.0.self_attn"), `leaf` "weight" or "bias".
  bool fusedQkv = false;
  std::string leaf;
};

Renamed rename(const std::string &name) {
  // No model has names this long; std::regex recurses per character.
  if (name.size() > 1000)
    return {name};
  static const std::regex perExpert(
      R"(^(.*\.layers\.\d+)\.block_sparse_moe\.experts\.(\d{1,9})\.(w[123])\.weight$)");
  // Qwen-MoE's names of an expert's projections.
  static const std::regex qwenPerExpert(
      R"(^(.*\.layers\.\d+)\.mlp\.experts\.(\d{1,9})\.(gate|up|down)_proj\.weight$)");
  // transformers 5's fused experts (Granite MoE's in block_sparse_moe), and
  // Granite MoE's checkpoints' names for them.
  static const std::regex gateUp(
      R"(^(.*\.layers\.\d+)\.(mlp\.experts\.gate_up_proj|block_sparse_moe\.(experts\.gate_up_proj|input_linear\.weight))$)");
  static const std::regex down(
      R"(^(.*\.layers\.\d+)\.(mlp\.experts\.down_proj|block_sparse_moe\.(experts\.down_proj|output_linear\.weight))$)");
  static const std::regex graniteRouter(
      R"(^(.*\.layers\.\d+)\.block_sparse_moe\.router\.(layer\.)?weight$)");
  // The router and its expert-selection bias (Dots1's, DeepSeek-V3's), and
  // the bias where MiniMax-M2 keeps it, beside the router (its checkpoints'
  // name, and transformers 5's).
  static const std::regex router(
      R"(^(.*\.layers\.\d+)\.mlp\.gate\.(weight|e_score_correction_bias)$)");
  static const std::regex blockBias(
      R"(^(.*\.layers\.\d+)\.(block_sparse_moe|mlp)\.e_score_correction_bias$)");
  // ERNIE 4.5 MoE's, [1, experts] (its checkpoints' name, and transformers
  // 5's).
  static const std::regex staticsBias(
      R"(^(.*\.layers\.\d+)\.mlp\.(gate\.)?moe_statics\.e_score_correction_bias$)");
  // HY V3's checkpoints' router, bias and shared experts; HunYuan MoE V1's
  // router and its attention's norms.
  static const std::regex hunyuanRouter(
      R"(^(.*\.layers\.\d+)\.mlp\.(router\.gate|gate\.wg)\.weight$)");
  // MiniCPM5-MoE's query and gate projection, as transformers holds it
  // (its checkpoints' q_proj).
  static const std::regex queryGate(
      R"(^(.*\.layers\.\d+\.self_attn)\.q_gate_proj\.(weight|bias)$)");
  static const std::regex hunyuanNorms(
      R"(^(.*\.layers\.\d+)\.self_attn\.(query|key)_layernorm\.weight$)");
  // HY V3's beside the router, Sarvam-MoE's in it.
  static const std::regex expertBias(
      R"(^(.*\.layers\.\d+)\.mlp\.(gate\.)?expert_bias$)");
  static const std::regex hunyuanShared(
      R"(^(.*\.layers\.\d+)\.mlp\.shared_mlp\.(\w+)\.weight$)");
  // Granite MoE Shared's shared MLP, its gate and up rows fused.
  static const std::regex graniteShared(
      R"(^(.*\.layers\.\d+)\.shared_mlp\.(input|output)_linear\.weight$)");
  // Sarvam-MoE's checkpoints' (Ant's Bailing names): the embedding table,
  // the attention's fused q, k and v rows, its o projection and norms.
  static const std::regex wordEmbeddings(R"(^model\.word_embeddings\.weight$)");
  static const std::regex fusedQkv(
      R"(^(.*\.layers\.\d+)\.attention\.query_key_value\.(weight|bias)$)");
  static const std::regex bailingAttention(
      R"(^(.*\.layers\.\d+)\.attention\.(dense|query_layernorm|key_layernorm)\.(weight|bias)$)");
  std::smatch match;
  if (std::regex_match(name, match, perExpert))
    return {match[1].str() + ".block_sparse_moe.experts." + match[3].str(),
            std::stoll(match[2].str())};
  if (std::regex_match(name, match, qwenPerExpert))
    return {match[1].str() + ".block_sparse_moe.experts." +
                otherProjectionName(match[3].str()),
            std::stoll(match[2].str())};
  if (std::regex_match(name, match, gateUp))
    return {match[1].str() + ".block_sparse_moe.experts.w1", -1, 3,
            match[1].str() + ".block_sparse_moe.experts.w3"};
  if (std::regex_match(name, match, down))
    return {match[1].str() + ".block_sparse_moe.experts.w2"};
  if (std::regex_match(name, match, router))
    return {match[1].str() + ".block_sparse_moe.gate." + match[2].str()};
  if (std::regex_match(name, match, graniteRouter))
    return {match[1].str() + ".block_sparse_moe.gate.weight"};
  if (std::regex_match(name, match, blockBias))
    return {match[1].str() + ".block_sparse_moe.gate.e_score_correction_bias"};
  if (std::regex_match(name, match, staticsBias)) {
    Renamed renamed{match[1].str() +
                    ".block_sparse_moe.gate.e_score_correction_bias"};
    renamed.squeeze = true;
    return renamed;
  }
  if (std::regex_match(name, match, hunyuanRouter))
    return {match[1].str() + ".block_sparse_moe.gate.weight"};
  if (std::regex_match(name, match, expertBias))
    return {match[1].str() + ".block_sparse_moe.gate.e_score_correction_bias"};
  if (std::regex_match(name, match, queryGate))
    return {match[1].str() + ".q_proj." + match[2].str()};
  if (std::regex_match(name, match, hunyuanNorms))
    return {match[1].str() + ".self_attn." + match[2].str()[0] +
            "_norm.weight"};
  if (std::regex_match(name, match, hunyuanShared))
    return {match[1].str() + ".mlp.shared_experts." + match[2].str() +
            ".weight"};
  if (std::regex_match(name, match, graniteShared)) {
    std::string module = match[1].str() + ".mlp.shared_experts.";
    if (match[2] == "output")
      return {module + "down_proj.weight"};
    return {module + "gate_proj.weight", -1, 2, module + "up_proj.weight"};
  }
  if (std::regex_match(name, match, wordEmbeddings))
    return {"model.embed_tokens.weight"};
  if (std::regex_match(name, match, fusedQkv)) {
    Renamed renamed{match[1].str() + ".self_attn"};
    renamed.fusedQkv = true;
    renamed.leaf = match[2].str();
    return renamed;
  }
  if (std::regex_match(name, match, bailingAttention)) {
    std::string module = match[2] == "dense"             ? "o_proj"
                         : match[2] == "query_layernorm" ? "q_norm"
                                                         : "k_norm";
    return {match[1].str() + ".self_attn." + module + "." + match[3].str()};
  }
  return {name};
}

} // namespace

bool moert::isIgnorableTensor(
    const std::string &name,
    const std::function<bool(const std::string &)> &hasGlobal) {
  auto endsWith = [&](std::string_view suffix) {
    return name.size() > suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) ==
               0;
  };
  if (name == kOptimizerStepGlobal || isLossCoeff(name))
    return true;
  for (std::string_view suffix : {kFirstMomentSuffix, kSecondMomentSuffix})
    if (endsWith(suffix) &&
        hasGlobal(name.substr(0, name.size() - suffix.size())))
      return true;
  return endsWith(".rotary_emb.inv_freq") ||
         (name == "lm_head.weight" && !hasGlobal(name));
}

namespace {

/// Stacked expert weights, each layer's w1, w3 and w2.
const std::regex &stackedExperts() {
  static const std::regex stacked(
      R"(^(.*\.layers\.\d+)\.block_sparse_moe\.experts\.(w[123])$)");
  return stacked;
}

/// The names after a layer's of Granite MoE's fused experts (gate and up
/// rows), their down projections and its router, in `names`' spelling;
/// none for the other families.
struct GraniteExpertNames {
  const char *gateUp, *down, *router;
};
std::optional<GraniteExpertNames> graniteExpertNames(moert::ExpertNames names) {
  if (names == moert::ExpertNames::Granite)
    return GraniteExpertNames{".block_sparse_moe.input_linear.weight",
                              ".block_sparse_moe.output_linear.weight",
                              ".block_sparse_moe.router.layer.weight"};
  if (names == moert::ExpertNames::GraniteSwa)
    return GraniteExpertNames{".block_sparse_moe.experts.gate_up_proj",
                              ".block_sparse_moe.experts.down_proj",
                              ".block_sparse_moe.router.weight"};
  return std::nullopt;
}

/// One global as Hugging Face's tensors (toHuggingFace), but for Granite
/// MoE's gate and up projections, which it fuses.
std::vector<std::pair<std::string, OwnedTensor>>
globalToHuggingFace(const std::string &name, OwnedTensor tensor,
                    moert::ExpertNames names) {
  using moert::ExpertNames;
  const std::regex &stacked = stackedExperts();
  static const std::regex router(
      R"(^(.*\.layers\.\d+)\.block_sparse_moe\.gate\.(weight|e_score_correction_bias)$)");
  static const std::regex sharedExperts(
      R"(^(.*\.layers\.\d+)\.mlp\.shared_experts\.(\w+\.weight)$)");
  static const std::regex attentionNorms(
      R"(^(.*\.layers\.\d+)\.self_attn\.([qk])_norm\.weight$)");
  bool qwen = names == ExpertNames::Qwen || names == ExpertNames::Ernie ||
              names == ExpertNames::Hunyuan || names == ExpertNames::HunyuanV1;
  std::smatch match;
  std::vector<std::pair<std::string, OwnedTensor>> tensors;
  // Granite MoE's router has no bias.
  std::optional<GraniteExpertNames> granite = graniteExpertNames(names);
  if (granite &&
      ((std::regex_match(name, match, router) && match[2] == "weight") ||
       std::regex_match(name, match, stacked) ||
       std::regex_match(name, match, sharedExperts))) {
    tensors.emplace_back(match[1].str() + (match[2] == "w2" ? granite->down
                                           : match[2] == "weight"
                                               ? granite->router
                                               : ".shared_mlp."
                                                 "output_linear.weight"),
                         std::move(tensor));
    return tensors;
  }
  if (names == ExpertNames::Hunyuan &&
      (std::regex_match(name, match, router) ||
       std::regex_match(name, match, sharedExperts))) {
    std::string leaf = match[2].str();
    tensors.emplace_back(match[1].str() + (leaf == "weight"
                                               ? ".mlp.router.gate.weight"
                                           : leaf == "e_score_correction_bias"
                                               ? ".mlp.expert_bias"
                                               : ".mlp.shared_mlp." + leaf),
                         std::move(tensor));
    return tensors;
  }
  if (names == ExpertNames::HunyuanV1 &&
      ((std::regex_match(name, match, router) && match[2] == "weight") ||
       std::regex_match(name, match, sharedExperts) ||
       std::regex_match(name, match, attentionNorms))) {
    std::string leaf = match[2].str();
    tensors.emplace_back(
        match[1].str() + (leaf == "weight" ? ".mlp.gate.wg.weight"
                          : leaf == "q"    ? ".self_attn.query_layernorm.weight"
                          : leaf == "k"    ? ".self_attn.key_layernorm.weight"
                                           : ".mlp.shared_mlp." + leaf),
        std::move(tensor));
    return tensors;
  }
  if (names == ExpertNames::Ernie && std::regex_match(name, match, router) &&
      match[2] == "e_score_correction_bias") {
    tensor.shape.insert(tensor.shape.begin(), 1);
    tensors.emplace_back(match[1].str() +
                             ".mlp.moe_statics.e_score_correction_bias",
                         std::move(tensor));
    return tensors;
  }
  if (qwen && std::regex_match(name, match, router)) {
    tensors.emplace_back(match[1].str() + ".mlp.gate." + match[2].str(),
                         std::move(tensor));
    return tensors;
  }
  if (names == ExpertNames::MiniMax && std::regex_match(name, match, router) &&
      match[2] == "e_score_correction_bias") {
    tensors.emplace_back(match[1].str() +
                             ".block_sparse_moe.e_score_correction_bias",
                         std::move(tensor));
    return tensors;
  }
  if (!std::regex_match(name, match, stacked) || tensor.shape.empty()) {
    tensors.emplace_back(name, std::move(tensor));
    return tensors;
  }
  int64_t experts = tensor.shape[0];
  std::vector<int64_t> shape(tensor.shape.begin() + 1, tensor.shape.end());
  size_t bytes = tensor.data.size() / std::max<int64_t>(experts, 1);
  for (int64_t expert = 0; expert < experts; ++expert) {
    const char *begin = tensor.data.data() + expert * bytes;
    std::string tensorName =
        qwen ? fmt::format("{}.mlp.experts.{}.{}_proj.weight", match[1].str(),
                           expert, otherProjectionName(match[2].str()))
             : fmt::format("{}.block_sparse_moe.experts.{}.{}.weight",
                           match[1].str(), expert, match[2].str());
    tensors.emplace_back(tensorName,
                         OwnedTensor{tensor.dtype, shape,
                                     std::vector<char>(begin, begin + bytes)});
  }
  return tensors;
}

} // namespace

std::vector<std::pair<std::string, OwnedTensor>>
moert::toHuggingFace(std::vector<std::pair<std::string, OwnedTensor>> globals,
                     ExpertNames names) {
  std::vector<std::pair<std::string, OwnedTensor>> tensors;
  // Granite MoE's gate and up projections (its experts' w1 and w3, its
  // shared MLP's), by the name of the tensor that fuses them below.
  static const std::regex sharedGateUp(
      R"(^(.*\.layers\.\d+)\.mlp\.shared_experts\.(gate|up)_proj\.weight$)");
  std::map<std::string, OwnedTensor> gates, ups;
  std::smatch match;
  std::optional<GraniteExpertNames> granite = graniteExpertNames(names);
  for (auto &[name, tensor] : globals) {
    if (granite && std::regex_match(name, match, stackedExperts()) &&
        match[2] != "w2") {
      (match[2] == "w1" ? gates : ups)[match[1].str() + granite->gateUp] =
          std::move(tensor);
      continue;
    }
    if (granite && std::regex_match(name, match, sharedGateUp)) {
      (match[2] == "gate"
           ? gates
           : ups)[match[1].str() + ".shared_mlp.input_linear.weight"] =
          std::move(tensor);
      continue;
    }
    for (auto &piece : globalToHuggingFace(name, std::move(tensor), names))
      tensors.push_back(std::move(piece));
  }
  for (auto &[fusedName, gate] : gates) {
    auto up = ups.find(fusedName);
    if (up == ups.end() || up->second.shape != gate.shape ||
        up->second.dtype != gate.dtype || gate.shape.size() < 2)
      fail("{}: the gate and up projections do not pair to fuse", fusedName);
    // [..., F, H] and [..., F, H] to [..., 2F, H], each expert's gate rows
    // first.
    std::vector<int64_t> shape = gate.shape;
    shape[shape.size() - 2] *= 2;
    int64_t outers = moert::numElements(
        std::vector<int64_t>(gate.shape.begin(), gate.shape.end() - 2));
    OwnedTensor fused{gate.dtype, shape, {}};
    size_t bytes = gate.data.size() / std::max<int64_t>(outers, 1);
    for (int64_t outer = 0; outer < outers; ++outer)
      for (const OwnedTensor *half : {&gate, &up->second})
        fused.data.insert(fused.data.end(), half->data.begin() + outer * bytes,
                          half->data.begin() + (outer + 1) * bytes);
    tensors.emplace_back(fusedName, std::move(fused));
  }
  if (gates.size() != ups.size())
    fail("the gate and up projections do not pair to fuse");
  return tensors;
}

OwnedTensor moert::convertTensor(const TensorView &view, DType dtype,
                                 const std::string &where) {
  // Every weight read passes here, under its name in its file.
  requireFinite(where, view);
  OwnedTensor result{dtype, view.shape, {}};
  int64_t count = numElements(view.shape);
  if (view.dtype == dtype) {
    const char *data = static_cast<const char *>(view.data);
    result.data.assign(data, data + view.bytes());
    return result;
  }
  if (!isFloat(view.dtype) || (dtype != DType::F32 && dtype != DType::F64))
    fail("{}: tensor '{}' is {}, which does not convert to {}", where,
         view.name, dtypeName(view.dtype), dtypeName(dtype));
  result.data.resize(count * dtypeSize(dtype));
  const char *data = static_cast<const char *>(view.data);
  for (int64_t i = 0; i < count; ++i) {
    double value = readFloat(view.dtype, data, i);
    if (dtype == DType::F32) {
      float narrow = static_cast<float>(value);
      if (!std::isfinite(narrow))
        fail("{}: tensor '{}' holds {} at element {}, beyond f32's range",
             where, view.name, value, i);
      std::memcpy(result.data.data() + 4 * i, &narrow, 4);
    } else {
      std::memcpy(result.data.data() + 8 * i, &value, 8);
    }
  }
  return result;
}

moert::WeightSource::WeightSource(const std::string &pathArg) : path(pathArg) {
  std::vector<std::string> filePaths;
  // The index's (tensor, file) pairs, checked against the files.
  std::vector<std::pair<std::string, std::string>> listed;
  if (isDirectory(path)) {
    std::string index = path + "/model.safetensors.index.json";
    std::string single = path + "/model.safetensors";
    // transformers reads model.safetensors where a folder has both.
    if (exists(single)) {
      filePaths.push_back(single);
    } else if (exists(index)) {
      std::vector<char> text = readRegularFile(index, "checkpoint index");
      nlohmann::json json =
          parseJsonOrFail(std::string_view(text.data(), text.size()), index);
      if (!json.is_object() || !json.contains("weight_map") ||
          !json["weight_map"].is_object())
        fail("{}: no 'weight_map' object", index);
      std::set<std::string> shards;
      for (const auto &[tensor, file] : json["weight_map"].items()) {
        if (!file.is_string())
          fail("{}: the file of tensor '{}' is not a string", index, tensor);
        std::string name = file.get<std::string>();
        // Shards live in the folder: no paths out of it. A NUL would end
        // the path early; the message shows the name as JSON does.
        if (name.empty() ||
            name.find_first_of(std::string_view("/\0", 2)) !=
                std::string::npos ||
            name == "." || name == "..")
          fail("{}: tensor '{}' is in {}, which is not a file name in the "
               "folder",
               index, tensor, file.dump());
        shards.insert(name);
        listed.emplace_back(tensor, path + "/" + name);
      }
      for (const std::string &shard : shards)
        filePaths.push_back(path + "/" + shard);
    } else {
      fail("{}: a folder without model.safetensors or "
           "model.safetensors.index.json",
           path);
    }
  } else {
    filePaths.push_back(path);
  }

  for (const std::string &filePath : filePaths) {
    files.push_back(std::make_unique<SafetensorsReader>(filePath));
    const SafetensorsReader &file = *files.back();
    for (const TensorView &view : file.getTensors()) {
      Renamed renamed = rename(view.name);
      // A global comes from one tensor (or half of a fused one), or from
      // one tensor per expert: never from two sources.
      auto add = [&](const std::string &name, const Part &part) {
        std::vector<Part> &parts = recipes[name];
        for (const Part &other : parts)
          if (part.index < 0 || other.index < 0 || other.index == part.index)
            fail("{}: tensor '{}' gives '{}' a second time (also from '{}' "
                 "in {})",
                 file.getPath(), view.name, name, other.view->name,
                 other.file->getPath());
        parts.push_back(part);
      };
      if (renamed.fusedRank) {
        int axis = renamed.fusedRank - 2;
        if (static_cast<int>(view.shape.size()) != renamed.fusedRank ||
            view.shape[axis] % 2)
          fail("{}: tensor '{}' is {}, not [{}2 x intermediate, hidden]",
               file.getPath(), view.name, formatShape(view.shape),
               axis ? "experts, " : "");
        int64_t half = view.shape[axis] / 2;
        add(renamed.name, {&file, &view, -1, axis, 0, half});
        add(renamed.up, {&file, &view, -1, axis, half, 2 * half});
      } else if (renamed.fusedQkv) {
        int part = 0;
        for (const char *projection : {".q_proj.", ".k_proj.", ".v_proj."}) {
          Part third{&file, &view, -1, 0};
          third.qkvPart = part++;
          add(renamed.name + projection + renamed.leaf, third);
        }
      } else {
        Part whole{&file, &view, renamed.index};
        whole.squeeze = renamed.squeeze;
        add(renamed.name, whole);
      }
    }
  }
  skipPredictionLayers();
  splitFusedQkv();
  for (const auto &entry : listed) {
    auto file = std::find_if(files.begin(), files.end(), [&](const auto &f) {
      return f->getPath() == entry.second;
    });
    if (file == files.end() || !(*file)->find(entry.first))
      fail("{}/model.safetensors.index.json: tensor '{}' is not in {}", path,
           entry.first, entry.second);
  }
}

moert::WeightSource::~WeightSource() = default;

void moert::WeightSource::skipPredictionLayers() {
  // A multi-token-prediction module is a decoder layer with eh_proj (and
  // enorm, hnorm, shared_head), stored after the last one; ERNIE 4.5's are
  // modules of their own beside the layers, K-EXAONE's one module `mtp`.
  static const std::regex projection(R"(^(.*\.layers\.\d+)\.eh_proj\.weight$)");
  static const std::regex ernieModule(
      R"(^((.*\.)?mtp_(block|emb_norm|hidden_norm|linear_proj)\.\d+)\..*$)");
  static const std::regex mtpModule(R"(^((.*\.)?mtp)\..*$)");
  std::smatch match;
  for (const auto &[name, parts] : recipes)
    if (name.size() <= 1000 &&
        (std::regex_match(name, match, mtpModule) ||
         std::regex_match(name, match, projection) ||
         std::regex_match(name, match, ernieModule)) &&
        // A module's tensors are neighbours in the map.
        (predictionLayers.empty() || predictionLayers.back() != match[1]))
      predictionLayers.push_back(match[1].str());
  for (const std::string &layer : predictionLayers) {
    std::string prefix = layer + ".";
    auto first = recipes.lower_bound(prefix);
    auto last = first;
    while (last != recipes.end() &&
           last->first.compare(0, prefix.size(), prefix) == 0)
      ++last;
    recipes.erase(first, last);
  }
}

void moert::WeightSource::splitFusedQkv() {
  // transformers splits [q | k | v] by its projections' sizes: the q rows
  // are the o projection's columns, k and v the rest in halves.
  static const std::regex projection(R"(^(.*)\.[qkv]_proj\.\w+$)");
  std::smatch match;
  for (auto &[name, parts] : recipes) {
    Part &part = parts.front();
    if (part.qkvPart < 0 || !std::regex_match(name, match, projection))
      continue;
    const TensorView &fused = *part.view;
    std::string outName = match[1].str() + ".o_proj.weight";
    auto out = recipes.find(outName);
    // Named as the fused tensor's file would name it.
    std::string outSpelled =
        fused.name.substr(0, fused.name.rfind("query_key_value")) +
        "dense.weight";
    if (out == recipes.end() || out->second.front().view->shape.size() != 2)
      fail("{}: tensor '{}' holds q, k and v, split by the columns of the "
           "o projection, {}",
           part.file->getPath(), fused.name,
           out == recipes.end()
               ? fmt::format("which is missing ('{}')", outSpelled)
               : fmt::format("which is not a matrix ('{}' is {})",
                             out->second.front().view->name,
                             formatShape(out->second.front().view->shape)));
    int64_t rows = fused.shape.empty() ? 0 : fused.shape[0];
    int64_t queryRows = out->second.front().view->shape[1];
    if (rows <= queryRows || (rows - queryRows) % 2 != 0)
      fail("{}: tensor '{}' is {}, whose {} rows do not split into the {} "
           "q rows of the o projection ('{}' is {}) and k and v rows as "
           "many",
           part.file->getPath(), fused.name, formatShape(fused.shape), rows,
           queryRows, out->second.front().view->name,
           formatShape(out->second.front().view->shape));
    int64_t keyRows = (rows - queryRows) / 2;
    part.begin =
        part.qkvPart == 0 ? 0 : queryRows + (part.qkvPart - 1) * keyRows;
    part.end = part.qkvPart == 0 ? queryRows : part.begin + keyRows;
  }
}

std::string moert::WeightSource::predictionLayersNote() const {
  if (predictionLayers.empty())
    return "";
  bool one = predictionLayers.size() == 1;
  return fmt::format("note: {}: its multi-token-prediction module{} ({}) "
                     "{} not read: as in transformers, the model has "
                     "none\n",
                     path, one ? "" : "s", fmt::join(predictionLayers, ", "),
                     one ? "is" : "are");
}

const moert::Metadata &moert::WeightSource::getMetadata() const {
  static const Metadata none;
  return files.size() == 1 && files.front()->getPath() == path
             ? files.front()->getMetadata()
             : none;
}

std::set<std::string> moert::WeightSource::names() const {
  std::set<std::string> result;
  for (const auto &[name, parts] : recipes)
    result.insert(name);
  return result;
}

bool moert::WeightSource::contains(const std::string &name) const {
  return recipes.count(name) != 0;
}

OwnedTensor moert::WeightSource::get(const std::string &name,
                                     DType dtype) const {
  auto found = recipes.find(name);
  if (found == recipes.end())
    fail("{}: tensor '{}' is missing", path, name);
  std::vector<Part> parts = found->second;
  // One tensor per expert, in expert order.
  std::sort(parts.begin(), parts.end(),
            [](const Part &a, const Part &b) { return a.index < b.index; });
  const Part &first = parts.front();
  if (first.index < 0) {
    if (first.end < 0) {
      OwnedTensor tensor =
          convertTensor(*first.view, dtype, first.file->getPath());
      // Another shape is left for the caller to refuse against the model's.
      if (first.squeeze && tensor.shape.size() == 2 && tensor.shape[0] == 1)
        tensor.shape.erase(tensor.shape.begin());
      return tensor;
    }
    OwnedTensor slice =
        sliceAxis(*first.view, first.axis, first.begin, first.end);
    return convertTensor(slice.view(first.view->name), dtype,
                         first.file->getPath());
  }
  OwnedTensor stacked{dtype, {static_cast<int64_t>(parts.size())}, {}};
  for (size_t expert = 0; expert < parts.size(); ++expert) {
    const Part &part = parts[expert];
    if (part.index != static_cast<int64_t>(expert))
      fail("{}: '{}' has no expert {} (the experts found go up to {})", path,
           name, expert, parts.back().index);
    if (part.view->shape != first.view->shape)
      fail("{}: expert tensors of '{}' differ in shape: '{}' is {}, '{}' is "
           "{}",
           path, name, first.view->name, formatShape(first.view->shape),
           part.view->name, formatShape(part.view->shape));
    OwnedTensor converted =
        convertTensor(*part.view, dtype, part.file->getPath());
    stacked.data.insert(stacked.data.end(), converted.data.begin(),
                        converted.data.end());
  }
  stacked.shape.insert(stacked.shape.end(), first.view->shape.begin(),
                       first.view->shape.end());
  return stacked;
}
