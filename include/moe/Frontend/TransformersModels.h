//===- TransformersModels.h - transformers' model families -----*- C++ -*-===//
//
// Each transformers model family that moe-import reads and moe-export
// writes, described once: its names, its config class's defaults where they
// differ from ours, and where its config keys and tensor names differ from
// the model's. The importer reads a config by its model_type's entry;
// moe-export and moe-upcycle pick the entry that computes what a model
// computes.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_FRONTEND_TRANSFORMERSMODELS_H
#define MOE_FRONTEND_TRANSFORMERSMODELS_H

#include "moe/Frontend/ModelConfig.h"
#include "moert/ExpertNames.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mlir::moe {

/// What a transformers model does with config.json's sliding_window.
enum class SlidingWindow {
  /// Nothing (Llama, OLMoE: their masks are causal only).
  ignored,
  /// It applies it whatever use_sliding_window says (Mistral, Mixtral).
  applied,
  /// It applies it to every layer where use_sliding_window is true:
  /// Qwen3-MoE's.
  switchedAll,
  /// It applies it where use_sliding_window is true, to the layers from
  /// max_window_layers (28 by default; or those layer_types names
  /// sliding_attention): Qwen2's and Qwen3's.
  switchedFrom,
  /// It applies it where use_sliding_window is true, to the even layers
  /// below max_window_layers (or those layer_types names
  /// sliding_attention): Qwen2-MoE's.
  switchedAlternating,
  /// It applies it to the layers from max_window_layers (62 by default; or
  /// those layer_types names sliding_attention), with no switch: Dots1's.
  appliedFrom,
  /// It applies it to the layers that layer_types names sliding_attention,
  /// by default all but every `windowPattern`-th (EXAONE 4's
  /// sliding_window_pattern, OLMo 3's 4), with no switch.
  patterned,
};

/// Whether `rule` applies the window only where use_sliding_window is true.
inline bool isSwitched(SlidingWindow rule) {
  return rule != SlidingWindow::ignored && rule != SlidingWindow::applied &&
         rule != SlidingWindow::appliedFrom && rule != SlidingWindow::patterned;
}
/// Whether `rule`'s config class picks the sliding layers
/// (max_window_layers, layer_types).
inline bool picksLayers(SlidingWindow rule) {
  return rule == SlidingWindow::switchedFrom ||
         rule == SlidingWindow::switchedAlternating ||
         rule == SlidingWindow::appliedFrom || rule == SlidingWindow::patterned;
}

struct TransformersModel {
  /// As messages name it ("Qwen3-MoE"), its architecture, model_type and
  /// config class.
  const char *name = "", *architecture = "", *modelType = "", *configClass = "";
  bool moe = false;
  QkNorm qkNorm = QkNorm::none;
  /// Whether its whole-projection query norm is hidden_size wide (OLMoE's),
  /// as its heads must then be together; MiniMax-M2's is as wide as they.
  bool wholeNormHiddenSize = false;
  /// The key whose true normalizes each query and key head, where
  /// `qkNorm` is none (GLM-4-MoE's use_qk_norm); null: none.
  const char *qkNormKey = nullptr;
  /// Whether its q, k and v projections have biases (Qwen2's), by default
  /// where `qkvBiasKey` names the key that says so: qkv_bias (Qwen2-MoE's)
  /// or attention_bias (GLM-4-MoE's, whose o projection has none).
  bool qkvBias = false;
  const char *qkvBiasKey = nullptr;
  /// partial_rotary_factor's default where its class reads the key (0.5,
  /// GLM-4-MoE's); none where it rotates every dimension of a head.
  std::optional<double> partialRotaryFactor;
  /// Whether its RoPE turns pairs (2i, 2i + 1) (ERNIE 4.5's), which our
  /// key rope_interleave says elsewhere.
  bool interleavedRope = false;
  /// Whether its class reads rope_interleave (DeepSeek-V3's), with
  /// `interleavedRope` as its default, rather than fixing the rotation.
  bool readsRopeInterleave = false;
  /// Its multi-head latent attention's sizes where its config leaves them
  /// out (DeepSeek-V3's); none where its attention is not one.
  std::optional<LatentAttention> latentAttention;
  /// Whether it normalizes each sublayer's output rather than its input
  /// (OLMo 2's), which our key moe_post_norms says elsewhere.
  bool postNorms = false;
  /// Whether its attention's output is gated (MiniCPM5-MoE's), which our
  /// key use_gated_attention says elsewhere.
  bool gatedAttention = false;
  /// Whether its class reads muP's multipliers (Granite's
  /// embedding_multiplier, attention_multiplier, residual_multiplier,
  /// logits_scaling: each 1 by default, so that its attention's softmax
  /// scale is 1), which the other families ignore.
  bool muP = false;
  /// The key that gives the rotated dimensions in place of the factor
  /// (MiniMax-M2's released configs' rotary_dim), which the factor, where
  /// given, must agree with.
  const char *rotaryDimKey = nullptr;
  SlidingWindow slidingWindow = SlidingWindow::ignored;
  /// Whether its layers that attend to the whole sequence apply no RoPE
  /// where sliding_window is not null (EXAONE 4's "global NoPE"), which our
  /// key moe_nope_layers says elsewhere.
  bool ropelessFullAttention = false;
  /// Whether its class fails on a null sliding_window (EXAONE-MoE's types
  /// it an integer, OLMo 3's mask needs one).
  bool nullWindowFails = false;
  /// The patterned rule's spacing of the layers that do not slide, and the
  /// key that gives it (EXAONE 4's sliding_window_pattern; null: fixed).
  int64_t windowPattern = 4;
  const char *windowPatternKey = nullptr;
  /// Whether those layers come first in each period of the pattern
  /// (GraniteSWA's 0, 4, 8, ...) rather than last (EXAONE 4's and OLMo 3's
  /// 3, 7, 11, ...).
  bool fullAttentionFirst = false;
  /// Whether each query head's softmax counts a learned sink (GraniteSWA's
  /// self_attn.sinks), which our key moe_attention_sinks says elsewhere.
  bool attentionSinks = false;
  /// Whether its class reads each layer's RoPE base from layer_rope_theta,
  /// 0 for a layer without RoPE (GraniteSWA's), which our keys
  /// moe_layer_rope_theta and moe_nope_layers say elsewhere.
  bool layerRopeTheta = false;
  /// Whether its class reads RoPE by layer type (OLMo 3's rope_parameters
  /// {"full_attention": ..., "sliding_attention": ...}; a legacy
  /// rope_scaling and rope_theta are the full-attention layers'), which
  /// our key moe_sliding_rope says elsewhere.
  bool ropeByLayerType = false;
  /// sliding_window's default where the config leaves the key out
  /// (Mistral's and Qwen's 4096); 0: none.
  int64_t windowSize = 0;
  /// max_window_layers' default, where the rule picks layers.
  int64_t maxWindowLayers = 28;

  // The config class's defaults where they differ from ours: 0 takes ours
  // (for kvHeads, num_attention_heads).
  int64_t kvHeads = 0, headDim = 0;
  /// Whether its class fails without head_dim (HunYuan MoE V1's, whose
  /// default is null).
  bool requiresHeadDim = false;
  /// Whether RoPE's "dynamic" scaling with an `alpha` is NTK-alpha scaling
  /// (HunYuan's): the base times alpha^(head_dim / (head_dim - 2)), fixed.
  bool ntkAlpha = false;
  double ropeTheta = 0, rmsNormEps = 0;
  /// nn.Embedding's padding_idx where the config leaves pad_token_id out.
  std::optional<int64_t> padTokenId;
  /// tie_word_embeddings' default (ERNIE 4.5's true).
  bool tiedEmbeddings = false;
  int64_t experts = 0, topK = 0;
  /// The key of top-k where its class reads another than
  /// num_experts_per_tok, which it then maps to that one (ERNIE 4.5 MoE's
  /// moe_k).
  const char *topKKey = nullptr;
  /// Whether that key may list each layer's top-k (HunYuan MoE V1's
  /// moe_topk), read where every layer's is the same.
  bool perLayerTopK = false;
  /// Mixtral and OLMoE size their experts by intermediate_size; Qwen3-MoE
  /// reads moe_intermediate_size (expertSize by default), and needs no
  /// intermediate_size (its dense layers', of denseSize by default).
  bool expertsByIntermediateSize = false;
  int64_t expertSize = 0, denseSize = 0;
  /// Mixtral renormalizes the top-k gate values whatever norm_topk_prob
  /// says; the others read norm_topk_prob (`normTopKProb` by default).
  bool alwaysRenormalizes = false, normTopKProb = false;
  /// Whether it never divides them by their sum (DeepSeek-V2's class reads
  /// no norm_topk_prob).
  bool neverRenormalizes = false;
  /// Whether it adds a load-balancing loss (with output_router_logits), and
  /// router_aux_loss_coef's default.
  bool auxLoss = true;
  double auxLossCoeff = 0.001;
  /// How its router scores the experts, whether it chooses them with a
  /// bias (e_score_correction_bias) and whether it scales their weights by
  /// routed_scaling_factor (or `scaleKey`): DeepSeek-V3's router, in Dots1.
  GateScoring scoring = GateScoring::softmax;
  bool expertBias = false, scalesWeights = false;
  /// The factor's key where its class reads another than
  /// routed_scaling_factor (HY V3's router_scaling_factor), and the
  /// factor's default.
  const char *scaleKey = nullptr;
  double routedScale = 1;
  /// Whether its router limits the choices to groups of experts (n_group,
  /// topk_group), and those keys' defaults.
  bool expertGroups = false;
  int64_t routerGroups = 1, routerGroupTopK = 1;
  /// How its router scores a group (ModelConfig::routerGroupScoreTop), and
  /// topk_method's default where its class reads that key (DeepSeek-V2's
  /// "greedy", among all experts, or "group_limited_greedy").
  int64_t groupScoreTop = 2;
  const char *topkMethod = nullptr;
  /// The width of the shared expert that every token of a MoE layer passes,
  /// gated by a sigmoid (shared_expert_intermediate_size's default): 0 where
  /// the family has none (all but Qwen2-MoE).
  int64_t sharedExpertSize = 0;
  /// Whether its MoE layers have ungated shared experts, `sharedExpertsKey`
  /// times moe_intermediate_size wide (DeepSeek's, in Dots1 and GLM-4-MoE;
  /// ERNIE 4.5 MoE's, HY V3's), and that key's default (0: the class fails
  /// without the key). A null key: always `sharedExperts` of them, which no
  /// key counts (HunYuan MoE V1's one).
  bool ungatedSharedExperts = false;
  int64_t sharedExperts = 0;
  const char *sharedExpertsKey = "n_shared_experts";
  /// What its class builds for a count of 0 or fewer, which is refused
  /// (Dots1's empty experts, HY V3's MLP of intermediate_size); null: none
  /// (ERNIE 4.5 MoE's).
  const char *zeroSharedExperts = nullptr;
  /// The key that gives its ungated shared MLP's width itself, not a count
  /// of experts (Granite MoE Shared's shared_intermediate_size; 0: none).
  const char *sharedWidthKey = nullptr;

  // Its config keys and tensor names, where they differ from the model's.
  /// The key of the number of experts (num_local_experts, num_experts,
  /// n_routed_experts or moe_num_experts).
  const char *expertsKey = "num_local_experts";
  /// The other spelling its config class reads as the same (attribute_map;
  /// null: none, Qwen2-MoE's and EXAONE-MoE's).
  const char *otherExpertsKey = "num_experts";
  /// Qwen's decoder_sparse_step and mlp_only_layers, which place dense
  /// layers among the MoE ones.
  bool sparseLayerKeys = false;
  /// first_k_dense_replace's default where its class reads DeepSeek's key
  /// (Dots1's 0, GLM-4-MoE's 1), which places dense layers first.
  std::optional<int64_t> firstDenseLayers;
  /// Whether its class places the dense layers by mlp_layer_types, "dense"
  /// or "sparse" for each layer (HY V3's; the first dense by default).
  bool mlpLayerTypes = false;
  /// Whether, without mlp_layer_types, first_k_dense_replace places them
  /// (MiniCPM5-MoE's; 1 by default).
  bool firstDenseWithoutLayerTypes = false;
  /// Whether its class saves first_k_dense_replace beside mlp_layer_types,
  /// which places the dense layers then whatever it says (EXAONE-MoE's);
  /// elsewhere the two must agree.
  bool savesFirstDenseBesideLayerTypes = false;
  /// moe_layer_start_index's default where its class places the MoE layers
  /// by ERNIE 4.5's keys: every moe_layer_interval-th layer (those whose
  /// index plus 1 it divides) from moe_layer_start_index to
  /// moe_layer_end_index (-1: the last).
  std::optional<int64_t> firstMoeLayer;
  /// The names of a MoE block's router, its bias, its experts and its
  /// shared experts in its checkpoints (the model's globals have Mixtral's
  /// and DeepSeek's).
  moert::ExpertNames expertNames = moert::ExpertNames::Mixtral;
  /// The key that counts its multi-token-prediction modules (GLM-4-MoE's
  /// and ERNIE 4.5 MoE's num_nextn_predict_layers), which an export,
  /// holding none, sets to 0.
  const char *predictionLayersKey = nullptr;
  /// Other spellings of keys that its config class reads as those keys
  /// (its attribute_map), each {spelling, key}: Sarvam-MoE's num_experts
  /// for n_routed_experts, its released config's names. The experts' count
  /// has its own pair (`otherExpertsKey`).
  std::vector<std::pair<const char *, const char *>> keyAliases;
};

/// Renames the keys of config.json object `config` that `family` (null:
/// none) spells otherwise to the keys its class reads them as, returning
/// the {key, spelling} pairs renamed, so that messages can name what the
/// file says. Fails where a file gives a key in both spellings with
/// different values.
llvm::Expected<std::vector<std::pair<std::string, std::string>>>
renameKeyAliases(nlohmann::json &config, const TransformersModel *family,
                 llvm::StringRef fileName);

/// The MoE layers of a model as ERNIE 4.5 MoE's keys place them: every
/// `interval`-th layer from `start` to `end`.
struct MoeLayerRange {
  int64_t start, end, interval;
};

/// The keys that place `config`'s MoE layers so, if any do: they must be
/// evenly spaced, each at an index one below a multiple of their spacing.
std::optional<MoeLayerRange> moeLayerRangeOf(const ModelConfig &config);

/// The family of config model_type `modelType`, or null (none, or one that
/// is not a transformers model: skywork_moe).
const TransformersModel *transformersModelNamed(llvm::StringRef modelType);

/// The transformers model that computes what `config`'s does: Qwen3's and
/// OLMoE's normalize queries and keys, Qwen2's projections have biases,
/// Qwen2-MoE's has a shared expert, Dots1's DeepSeek-V3's routing and
/// ungated shared experts (GLM-4-MoE's too, which rotates part of each
/// head, and is preferred to Solar Open's, the same model), MiniMax-M2's
/// sigmoid scores and bias alone on whole-projection norms, ERNIE 4.5's
/// turns RoPE's pairs (its MoE, softmax scores chosen with a bias), Mistral's
/// is Llama's with a sliding window (which Llama's and OLMoE's ignore), HY
/// V3's DeepSeek-V3's routing without groups with dense layers anywhere
/// (Dots1's is preferred where they come first, the same model), Granite's
/// and Granite MoE's have muP's multipliers, OLMo 2's and FlexOlmo's norms
/// follow each sublayer, DeepSeek-V3's has multi-head latent attention
/// over Dots1's MoE layers (Sarvam-MoE's and Param2-MoE's are GLM-4-MoE's,
/// which is preferred), EXAONE 4's and EXAONE-MoE's leave the layers that
/// attend to the whole sequence beside a window unrotated. An error says
/// why none does.
llvm::Expected<const TransformersModel &>
transformersModelOf(const ModelConfig &config);

/// Writes `model`'s attention into config.json object `config` in the keys
/// that `family`'s config class reads (ours where it is null): key-value
/// heads, head width, q, k and v biases where a key says them, the query
/// and key norms where no model_type does, multi-head latent attention's
/// sizes, the rotated part of each head where the class reads it
/// (GLM-4-MoE's, MiniMax-M2's), RoPE's pairs where it reads that
/// (DeepSeek-V3's), the sliding window as the family's rule reads it
/// (Qwen2's, Qwen3's, Qwen2-MoE's, Dots1's and EXAONE's with every layer
/// named in layer_types, as our keys where some layers do not slide; for
/// EXAONE, whose layers are unrotated where no window slides, or where its
/// class fails on a null one, max_position_embeddings stands for it), and
/// the layers without RoPE (our moe_nope_layers), so that neither the
/// class's defaults nor keys left from another family change it.
void writeAttentionKeys(nlohmann::json &config, const ModelConfig &model,
                        const TransformersModel *family);

/// Writes `model`'s number of experts, experts per token and ungated
/// shared experts into config.json object `config` in the keys that
/// `family`'s config class reads (ours where it is null), removing the other
/// families' spellings, which the class would ignore or refuse.
void writeExpertCountKeys(nlohmann::json &config, const ModelConfig &model,
                          const TransformersModel *family);

/// Writes where `model`'s dense layers are into config.json object `config`
/// in the keys that `family`'s config class reads (ours where it is null),
/// removing the others: Qwen's and our list, DeepSeek's count of the first
/// ones, HY V3's kind of each layer, ERNIE 4.5 MoE's range of MoE layers,
/// which `transformersModelOf` has checked can place them.
void writeLayerPlacementKeys(nlohmann::json &config, const ModelConfig &model,
                             const TransformersModel *family);

/// Writes the other keys whose defaults differ between config classes as
/// `model` has them: RoPE's base (also inside a RoPE object, which
/// transformers reads first; each layer type's for `family` OLMo 3, and
/// the sliding layers' in moe_sliding_rope for ours, null), the RoPE pairs
/// where interleaved, the norms after each sublayer where there, the
/// epsilon, tied embeddings and padding token, so that the class reading
/// `config` (another family's, or ours) cannot change them.
void writeClassDefaultedKeys(nlohmann::json &config, const ModelConfig &model,
                             const TransformersModel *family);

/// Writes `model`'s muP multipliers into config.json object `config` where
/// `family`'s class reads them (Granite's, every one; ours, where the model
/// has them), removing them elsewhere.
void writeMultiplierKeys(nlohmann::json &config, const ModelConfig &model,
                         const TransformersModel *family);

/// Every family's name, as a list for messages ("Llama, Mistral, ...").
std::string transformersModelNames();

} // namespace mlir::moe

#endif // MOE_FRONTEND_TRANSFORMERSMODELS_H
