//===- ExpertNames.h - checkpoints' names of MoE weights --------*- C++ -*-===//
//
// Whose names a MoE layer's router, its expert-selection bias, its experts
// and its shared experts take in Hugging Face files: what
// moert::toHuggingFace writes and what a transformers family
// (TransformersModels.h) reads.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_EXPERTNAMES_H
#define MOERT_EXPERTNAMES_H

namespace moert {

enum class ExpertNames {
  /// block_sparse_moe.gate (its weight and bias),
  /// block_sparse_moe.experts.E.w1.
  Mixtral,
  /// mlp.gate (its weight and bias), mlp.experts.E.gate_proj.
  Qwen,
  /// Mixtral's, the bias at block_sparse_moe.e_score_correction_bias.
  MiniMax,
  /// Qwen's, the bias at mlp.moe_statics.e_score_correction_bias, shaped
  /// [1, experts].
  Ernie,
  /// Qwen's experts, the router at mlp.router.gate, the bias at
  /// mlp.expert_bias, the shared experts at mlp.shared_mlp.
  Hunyuan,
  /// Qwen's experts, the router at mlp.gate.wg, the shared MLP at
  /// mlp.shared_mlp, and the attention's norms at self_attn.query_layernorm
  /// and key_layernorm (HunYuan MoE V1's).
  HunyuanV1,
  /// block_sparse_moe.router.layer, each layer's experts' gate and up
  /// rows fused in block_sparse_moe.input_linear [E, 2F, H] (gate first),
  /// their down projections in block_sparse_moe.output_linear; a shared
  /// MLP's likewise in shared_mlp.input_linear [2F, H] and output_linear.
  Granite,
  /// Granite's with transformers 5's names (Granite MoE SWA's): the router
  /// at block_sparse_moe.router.weight, the experts' fused gate and up rows
  /// at block_sparse_moe.experts.gate_up_proj, their down projections at
  /// experts.down_proj.
  GraniteSwa,
};

} // namespace moert

#endif // MOERT_EXPERTNAMES_H
