//===- ModelConfig.h - a model described by a config.json -------*- C++ -*-===//
//
// The subset of a Hugging Face config.json (the keys of the transformers
// families in TransformersModels.h, the keys of
// Skywork-MoE's release) and of our own training keys that defines a model's
// IR. docs/UserGuide.md lists every key.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_FRONTEND_MODELCONFIG_H
#define MOE_FRONTEND_MODELCONFIG_H

#include "moe/MoeDialect.h"

#include "llvm/Support/Error.h"

#include <nlohmann/json_fwd.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::moe {

/// How the attention normalizes queries and keys (RMSNorm, before RoPE).
enum class QkNorm {
  none,
  /// Qwen3's: each head over head_dim (weights q_norm and k_norm of
  /// head_dim).
  perHead,
  /// OLMoE's: the whole projections, all heads together (weights of the
  /// query and the key projections' widths).
  whole,
  /// HunYuan MoE V1's: each head over head_dim after RoPE, not before.
  perHeadRotated,
};

/// The largest size a config may give (sizes index with 32-bit ids and
/// slots).
inline constexpr double kMaxDimension = 2147483647.0;

/// moe_qk_norm's value for `norm`: false, true (each head), "whole" or
/// "after_rope".
nlohmann::json qkNormKeyValue(QkNorm norm);

/// Multi-head latent attention (DeepSeek-V2's and V3's): keys and values
/// from one `kvRank`-wide latent per token (kv_lora_rank), queries through
/// a `queryRank`-wide one where set (q_lora_rank; else one projection).
/// Each query and key head is `nopeHeadDim` unrotated dimensions
/// (qk_nope_head_dim) beside `ropeHeadDim` rotated ones (qk_rope_head_dim),
/// the rotated key one for all heads; each value head `valueHeadDim` wide
/// (v_head_dim).
struct LatentAttention {
  std::optional<int64_t> queryRank;
  int64_t kvRank = 0, nopeHeadDim = 0, ropeHeadDim = 0, valueHeadDim = 0;
  int64_t queryHeadDim() const { return nopeHeadDim + ropeHeadDim; }
};

/// A layer's RoPE: its base and its scaling (unset: unscaled).
struct LayerRope {
  double theta;
  std::optional<moert::RopeScaling> scaling;
  /// Whether `other` rotates as this does.
  bool sameAs(const LayerRope &other) const;
  /// YaRN's truncate, where it scales by YaRN.
  std::optional<bool> yarnTruncate() const {
    return scaling && scaling->kind == moert::RopeKind::Yarn
               ? std::optional<bool>(scaling->truncate)
               : std::nullopt;
  }
};

struct ModelConfig {
  int64_t vocabSize = 0;
  int64_t hiddenSize = 0;
  int64_t intermediateSize = 0;
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  int64_t numKvHeads = 0;
  /// Each head's width where the config gives head_dim; 0: hiddenSize /
  /// numHeads (headDim()).
  int64_t headDimension = 0;
  QkNorm qkNorm = QkNorm::none;
  /// Multi-head latent attention's sizes, where the attention is one;
  /// headDim() is then its query and key heads' width.
  std::optional<LatentAttention> latentAttention;
  /// Qwen2's biases of the query, key and value projections (qkv_bias).
  bool qkvBias = false;
  int64_t maxPositions = 0;
  double ropeTheta = 10000.0;
  /// RoPE's scaling where a config scales it (transformers' rope_type
  /// linear, llama3 or yarn), each kind's defaults and derived values (YaRN's
  /// attention factor) resolved; unset: unscaled.
  std::optional<moert::RopeScaling> ropeScaling;
  /// The share of each head that RoPE rotates (GLM's partial_rotary_factor):
  /// its first int(head_dim * factor) dimensions.
  double partialRotaryFactor = 1;
  /// Whether RoPE turns pairs (2i, 2i + 1) rather than (i, i + half)
  /// (DeepSeek-V3's key rope_interleave; ERNIE 4.5's rotation).
  bool ropeInterleaved = false;
  /// YaRN's mscale_all_dim (0: none), by which multi-head latent
  /// attention also scales its softmax: by yarn_get_mscale(factor, it)^2.
  double ropeMscaleAllDim = 0;
  double rmsNormEps = 1e-6;
  double initStd = 0.02;
  bool tieWordEmbeddings = false;
  /// transformers' pad_token_id: that token's embedding gets no gradient
  /// (nn.Embedding's padding_idx).
  std::optional<int64_t> padTokenId;
  /// Whether each layer normalizes its attention's and FFN's outputs
  /// before their residual adds (post_attention_layernorm,
  /// post_feedforward_layernorm) rather than their inputs: OLMo 2's.
  bool postNorms = false;
  /// Whether the attention's output is gated, element by element, by the
  /// sigmoid of a second half of each query head's projection (q_proj
  /// [heads x 2 head_dim, hidden], each head's query then its gate):
  /// MiniCPM5-MoE's.
  bool gatedAttention = false;
  /// muP's constant multipliers (IBM Granite's keys): on the embeddings,
  /// the attention's softmax scale (unset: 1 / sqrt(head_dim)), each
  /// sublayer's output before its residual add, and the logits' divisor.
  double embeddingMultiplier = 1;
  std::optional<double> attentionMultiplier;
  double residualMultiplier = 1;
  double logitsScaling = 1;
  bool hasMultipliers() const {
    return embeddingMultiplier != 1 || attentionMultiplier ||
           residualMultiplier != 1 || logitsScaling != 1;
  }
  /// The softmax scale without attention_multiplier.
  double defaultSoftmaxScale() const {
    return 1 / std::sqrt(static_cast<double>(headDim()));
  }

  // Mixture of experts; numExperts == 0 means a dense Llama model.
  int64_t numExperts = 0;
  int64_t topK = 0;
  int64_t expertIntermediateSize = 0;
  /// In a MoE model, the layers (ascending) whose FFN is a dense SwiGLU MLP
  /// `intermediateSize` wide, named as a dense model's (Qwen's
  /// mlp_only_layers and decoder_sparse_step, DeepSeek's
  /// first_k_dense_replace); the others are MoE layers.
  std::vector<int64_t> denseLayers;
  /// Whether the shared expert's output is scaled by a sigmoid gate
  /// (Qwen2-MoE's, `mlp.shared_expert` and `mlp.shared_expert_gate`) or
  /// added as it is (DeepSeek's `n_shared_experts`, `mlp.shared_experts`,
  /// n times moe_intermediate_size wide).
  bool sharedExpertGated = true;
  /// Qwen2-MoE's shared expert, a SwiGLU MLP that every token of a MoE
  /// layer passes, its output scaled by a sigmoid gate: its width, 0 where
  /// there is none.
  int64_t sharedExpertIntermediateSize = 0;
  std::optional<double> gateNormLambda; // unset: plain softmax gate
  std::optional<double> capacityFactor; // unset: dropless
  // Over capacity, drop the lowest gate probabilities instead of the latest
  // tokens.
  bool dropByProbability = false;
  bool renormalize = true;
  /// How the gate scores the experts (moe.gate's scoring): softmax, or
  /// DeepSeek-V3's sigmoid.
  GateScoring scoring = GateScoring::softmax;
  /// A per-layer bias that chooses experts without weighing them
  /// (`layers.L.block_sparse_moe.gate.e_score_correction_bias`), which
  /// moe-expert-bias moves towards an even load: DeepSeek-V3's auxiliary-
  /// loss-free balancing.
  bool expertBias = false;
  /// The factor on the top-k weights (DeepSeek's routed_scaling_factor).
  double routedScale = 1;
  /// DeepSeek-V3's group-limited routing (n_group, topk_group): the experts
  /// in `routerGroups` groups, each token's choices from its best
  /// `routerGroupTopK` (1 and 1: among all).
  int64_t routerGroups = 1, routerGroupTopK = 1;
  /// How many of a group's best scores (plus bias) score it: V3's 2,
  /// DeepSeek-V2's 1 (its topk_method group_limited_greedy).
  int64_t routerGroupScoreTop = 2;
  AuxLossKind auxLossKind = AuxLossKind::skywork;
  /// One load-balancing loss over every layer's tokens pooled
  /// (transformers' Mixtral loss, moe.pooled_aux_loss) instead of one per
  /// layer of `auxLossKind`.
  bool pooledAuxLoss = false;
  /// The coefficient the loss applies: the configured one, or 0 where a
  /// transformers config's output_router_logits leaves the term out.
  double auxLossCoeff = 0.01;
  /// The configured coefficient (transformers' router_aux_loss_coef).
  double configuredAuxLossCoeff = 0.01;
  double zLossCoeff = 0.0;

  // The shape of one training step.
  int64_t batchSize = 0;
  int64_t seqLen = 0;
  /// Hugging Face's sliding attention window: each position attends to
  /// itself and the window's positions before it (moe.attention's window,
  /// left out where it covers the whole sequence).
  std::optional<int64_t> slidingWindow;
  /// The layers (ascending) that attend to the whole sequence although the
  /// model has a sliding window (those transformers' layer_types names
  /// full_attention: Qwen's and Dots1's may slide some layers only); empty
  /// where every layer slides.
  std::vector<int64_t> fullAttentionLayers;
  /// The layers (ascending) whose attention applies no RoPE (EXAONE 4's
  /// full-attention layers beside its sliding ones).
  std::vector<int64_t> noRopeLayers;
  /// RoPE's base and scaling in the layers that slide, where a config gives
  /// them apart from the others' (OLMo 3's rope_parameters by layer type,
  /// our key moe_sliding_rope); unset: every layer's are ropeTheta and
  /// ropeScaling.
  std::optional<LayerRope> slidingRope;
  /// Each layer's RoPE base, where a config gives one a layer (GraniteSWA's
  /// layer_rope_theta, our key moe_layer_rope_theta); empty: rope(layer)'s.
  /// A layer without RoPE (noRopeLayers) holds ropeTheta.
  std::vector<double> layerRopeTheta;
  /// Whether each query head's softmax counts a learned sink logit beside
  /// its keys' (GraniteSWA's and GPT-OSS's sinks, our key
  /// moe_attention_sinks): the parameter layers.N.self_attn.sinks.
  bool attentionSinks = false;

  /// What the importer should say about choices it made for the user
  /// (moe-import and moe-compile print them as warnings).
  std::vector<std::string> warnings;

  bool isMoe() const { return numExperts > 0; }
  /// The sliding window where it is shorter than the sequence: the only
  /// place where it changes what the model computes.
  std::optional<int64_t> effectiveWindow() const {
    if (slidingWindow && *slidingWindow < seqLen)
      return slidingWindow;
    return std::nullopt;
  }
  /// Whether layer `layer` attends within the sliding window.
  bool slides(int64_t layer) const {
    return slidingWindow &&
           !std::binary_search(fullAttentionLayers.begin(),
                               fullAttentionLayers.end(), layer);
  }
  /// The RoPE of the layers that attend to the whole sequence (of every
  /// layer, without slidingRope).
  LayerRope fullRope() const { return {ropeTheta, ropeScaling}; }
  /// The RoPE that layer `layer` rotates by.
  LayerRope rope(int64_t layer) const {
    LayerRope rope = slidingRope && slides(layer) ? *slidingRope : fullRope();
    if (!layerRopeTheta.empty())
      rope.theta = layerRopeTheta[layer];
    return rope;
  }
  /// Whether layer `layer` rotates its queries and keys.
  bool rotates(int64_t layer) const {
    return !std::binary_search(noRopeLayers.begin(), noRopeLayers.end(), layer);
  }
  /// The window that layer `layer`'s attention applies (effectiveWindow),
  /// or none.
  std::optional<int64_t> attentionWindow(int64_t layer) const {
    return slides(layer) ? effectiveWindow() : std::nullopt;
  }
  bool isMoeLayer(int64_t layer) const {
    return isMoe() &&
           !std::binary_search(denseLayers.begin(), denseLayers.end(), layer);
  }
  int64_t headDim() const {
    if (latentAttention)
      return latentAttention->queryHeadDim();
    return headDimension ? headDimension : hiddenSize / numHeads;
  }
  /// DeepSeek's ungated shared experts, each moe_intermediate_size wide: how
  /// many (0 for a gated one, or none).
  int64_t ungatedSharedExperts() const {
    return sharedExpertGated || !expertIntermediateSize
               ? 0
               : sharedExpertIntermediateSize / expertIntermediateSize;
  }
  /// The width of ungated shared experts beyond a whole number of experts
  /// (Granite MoE Shared's may be any), which a count cannot give.
  int64_t ungatedSharedExpertsRemainder() const {
    return sharedExpertGated || !expertIntermediateSize
               ? 0
               : sharedExpertIntermediateSize % expertIntermediateSize;
  }
  /// The dimensions of each head that RoPE rotates, as transformers counts
  /// them (int() truncates).
  int64_t rotaryDim() const {
    if (latentAttention)
      return latentAttention->ropeHeadDim;
    return static_cast<int64_t>(static_cast<double>(headDim()) *
                                partialRotaryFactor);
  }
};

/// Multi-head latent attention's keys (ModelConfig::latentAttention), as
/// DeepSeek's classes and ours spell them.
inline constexpr const char *kLatentAttentionKeys[] = {
    "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
    "v_head_dim"};

/// The epsilon of multi-head latent attention's latent norms
/// (q_a_layernorm, kv_a_layernorm): DeepSeek's classes build them with
/// their RMSNorm's default, whatever rms_norm_eps says.
inline constexpr double kLatentNormEps = 1e-6;

/// YaRN's yarn_get_mscale(scale, mscale) (transformers'
/// modeling_rope_utils): 1 for a scale up to 1.
double yarnMscale(double scale, double mscale);

/// muP's multipliers' keys (ModelConfig::embeddingMultiplier ...), as
/// Granite's classes and ours spell them.
inline constexpr const char *kMultiplierKeys[] = {
    "embedding_multiplier", "attention_multiplier", "residual_multiplier",
    "logits_scaling"};

/// Parses and checks `jsonText`; errors name `fileName` and the key at fault.
llvm::Expected<ModelConfig> parseModelConfig(llvm::StringRef jsonText,
                                             llvm::StringRef fileName);

/// A key whose value differs between two configs' models.
struct ConfigDifference {
  std::string key, from, to;
};

/// Where the models of `from` and `to` differ, by the config keys that set
/// them (their values as the model reads them: a key spelled otherwise, or
/// left at the value its default gives, is no difference). The step's
/// shape, the initializer's scale and the importer's warnings are not the
/// model's, and not compared.
std::vector<ConfigDifference> modelDifferences(const ModelConfig &from,
                                               const ModelConfig &to);

/// transformers' layer_types of `config`: "sliding_attention" for each
/// layer that attends within its sliding window, "full_attention" for the
/// others.
std::vector<std::string> layerTypes(const ModelConfig &config);

/// `config` as a JSON object of every key that shapes its model or training
/// step, each in one spelling, with the value the model reads (null where
/// unset; defaults spelled out): two configs that build the same model have
/// the same canonical config, however their files spell it. Compiled models
/// carry it, and checkpoints record it, to compare models without the
/// importer (moert::requireCheckpointConfig).
std::string canonicalConfig(const ModelConfig &config);

/// The canonical config of config.json text `text` (a module's moe.config),
/// or "" where it is empty or the importer would refuse it (IR written by
/// hand may carry any JSON there).
std::string canonicalConfigOf(llvm::StringRef text);

/// Checks that no tensor of the model (with its batch and sequence length)
/// exceeds 2^40 elements and no expert 2^31 rows, so that sizes cannot
/// overflow and memory is refused by name, not exhausted.
llvm::Error checkModelSizes(const ModelConfig &config,
                            llvm::StringRef fileName);

} // namespace mlir::moe

#endif // MOE_FRONTEND_MODELCONFIG_H
