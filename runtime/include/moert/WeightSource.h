//===- WeightSource.h - weights from Hugging Face or us ---------*- C++ -*-===//
//
// Reads weights as Hugging Face stores them and hands them out under the
// names of our models' globals: a folder with model.safetensors or a
// sharded model.safetensors.index.json, a single .safetensors file, or one
// of our own files (whose names are already ours). Mixtral's experts come
// in two layouts and are stacked into our [experts, rows, columns] globals:
//   - per expert (transformers 4, the hub's checkpoints):
//     model.layers.L.block_sparse_moe.experts.E.{w1,w2,w3}.weight
//   - fused (transformers 5): model.layers.L.mlp.experts.gate_up_proj
//     [E, 2F, H] (gate rows, then up rows) and ...mlp.experts.down_proj
//     [E, H, F], with the router at model.layers.L.mlp.gate.weight (and
//     DeepSeek-V3's expert-selection bias, in Dots1, at
//     mlp.gate.e_score_correction_bias; MiniMax-M2's beside the router, at
//     block_sparse_moe.e_score_correction_bias or mlp.e_score_correction_bias;
//     ERNIE 4.5 MoE's at mlp.moe_statics.e_score_correction_bias, or
//     transformers 5's mlp.gate.moe_statics.e_score_correction_bias, shaped
//     [1, experts]; HY V3's router at mlp.router.gate.weight, its bias at
//     mlp.expert_bias, its shared experts at mlp.shared_mlp).
// Sarvam-MoE's checkpoints keep Ant's Bailing names, read as
// transformers reads them: model.word_embeddings, the attention's
// attention.dense (o_proj), query_layernorm and key_layernorm (q_norm,
// k_norm), its q, k and v rows fused in attention.query_key_value (split
// by the o projection's columns, the q rows, and two equal k and v parts),
// and the expert-selection bias at mlp.gate.expert_bias.
// BF16, F16, F32 and F64 tensors are converted to the dtype asked for.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_WEIGHTSOURCE_H
#define MOERT_WEIGHTSOURCE_H

#include "moert/ExpertNames.h"
#include "moert/Safetensors.h"

#include <functional>
#include <map>
#include <memory>
#include <set>

namespace moert {

/// A tensor with its own storage.
struct OwnedTensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<char> data;
  TensorView view(const std::string &name) const {
    return {name, dtype, shape, data.data()};
  }
};

class WeightSource {
public:
  /// Opens `path` (a folder or a safetensors file); throws moert::Error.
  explicit WeightSource(const std::string &path);
  ~WeightSource();

  const std::string &getPath() const { return path; }
  /// The "__metadata__" of a single-file source (our checkpoints record
  /// their run there); empty for a folder.
  const Metadata &getMetadata() const;
  /// Our names of every tensor the source holds, but for its
  /// multi-token-prediction layers'.
  std::set<std::string> names() const;
  /// A line that names the layers ("model.layers.46") holding DeepSeek-V3's
  /// and GLM-4.5's multi-token-prediction modules, ERNIE 4.5's modules
  /// ("model.mtp_block.0", "model.mtp_linear_proj.0", ...) or K-EXAONE's
  /// ("mtp"), which are
  /// skipped (as in transformers, no model here builds them), or "" where
  /// there are none.
  std::string predictionLayersNote() const;
  bool contains(const std::string &name) const;
  /// The tensor of our `name`, its values converted to `dtype` (F32 or
  /// F64, or the stored integer type); throws if it is missing or its
  /// parts disagree. The file and tensor are named in errors.
  OwnedTensor get(const std::string &name, DType dtype) const;

  /// How a global is assembled from the files' tensors.
  struct Part;

private:
  void skipPredictionLayers();
  void splitFusedQkv();

  std::string path;
  std::vector<std::unique_ptr<SafetensorsReader>> files;
  std::map<std::string, std::vector<Part>> recipes;
  std::vector<std::string> predictionLayers;
};

/// Whether a weights file may hold `name` although the model reading it has
/// no such global (`hasGlobal` says which it has): the Adam state and step
/// count of a training checkpoint read into a model without an optimizer,
/// the loss coefficients of the run that wrote it (a checkpoint's adaptive
/// ones, or constants before ABI 11) read into a model without those losses
/// per layer, RoPE's inverse frequencies (a buffer older conversions store),
/// and lm_head.weight stored beside tied embeddings (transformers ignores
/// both).
bool isIgnorableTensor(
    const std::string &name,
    const std::function<bool(const std::string &)> &hasGlobal);

/// Our globals as Hugging Face's tensors: stacked expert weights
/// split into the per-expert tensors save_pretrained writes
/// (model.layers.L.block_sparse_moe.experts.E.w1.weight, ..., or Qwen-MoE's
/// model.layers.L.mlp.experts.E.gate_proj.weight, ..., with the router and
/// its bias at mlp.gate; MiniMax-M2's bias at
/// block_sparse_moe.e_score_correction_bias, ERNIE 4.5 MoE's at
/// mlp.moe_statics.e_score_correction_bias as [1, experts]; HY V3's router
/// at mlp.router.gate, its bias at mlp.expert_bias, its shared experts at
/// mlp.shared_mlp; Granite MoE's router at block_sparse_moe.router.layer,
/// each layer's experts whole, w1 and w3 fused as
/// block_sparse_moe.input_linear [E, 2F, H], w2 as output_linear),
/// everything else under its own name. WeightSource reads them back.
std::vector<std::pair<std::string, OwnedTensor>>
toHuggingFace(std::vector<std::pair<std::string, OwnedTensor>> globals,
              ExpertNames names = ExpertNames::Mixtral);

/// `view`'s values as `dtype`: floats to F32 or F64 from any float type,
/// integers unchanged. Throws on any other conversion, and on a NaN or an
/// infinity (moert::requireFinite, naming `where`).
OwnedTensor convertTensor(const TensorView &view, DType dtype,
                          const std::string &where);

} // namespace moert

#endif // MOERT_WEIGHTSOURCE_H
