//===- LatentAttentionConfig.cpp - multi-head latent attention's keys -----===//
//
// DeepSeek-V2's and V3's attention: kv_lora_rank, q_lora_rank,
// qk_nope_head_dim, qk_rope_head_dim and v_head_dim, as the config classes
// of the families that have it read them (their defaults where they are
// absent) and as our keys do (multi-head latent attention where
// kv_lora_rank is given).
//
//===----------------------------------------------------------------------===//

#include "ConfigKeys.h"

using nlohmann::json;

namespace {

/// Refuses what the model cannot compute beside a latent attention.
void checkLatentAttention(mlir::moe::config::KeyReader &keys,
                          const mlir::moe::ModelConfig &config,
                          const mlir::moe::TransformersModel *family) {
  const mlir::moe::LatentAttention &mla = *config.latentAttention;
  std::string who = family ? "transformers' " + std::string(family->name)
                           : std::string("multi-head latent attention");
  std::string whose = who + "'s";
  if (mla.ropeHeadDim % 2 != 0)
    return keys.fail(llvm::formatv("key 'qk_rope_head_dim' ({0}) must be "
                                   "even for RoPE",
                                   mla.ropeHeadDim)
                         .str());
  if (config.numKvHeads != config.numHeads)
    return keys.fail(llvm::formatv(
        "key 'num_key_value_heads' ({0}{1}) must be 'num_attention_heads' "
        "({2}): {3} keys and values have a head for each query head",
        config.numKvHeads,
        family && !keys.has("num_key_value_heads")
            ? llvm::formatv(", {0}'s default", family->configClass).str()
            : std::string(),
        config.numHeads, whose));
  if (config.qkNorm != mlir::moe::QkNorm::none)
    return keys.fail(llvm::formatv("key 'moe_qk_norm' is not supported: {0} "
                                   "queries and keys are normalized as "
                                   "latents (q_a_layernorm, kv_a_layernorm), "
                                   "not as heads",
                                   whose));
  if (config.qkvBias)
    return keys.fail(llvm::formatv("key 'qkv_bias' is not supported: {0} "
                                   "projections have no biases",
                                   whose));
  if (config.partialRotaryFactor != 1)
    keys.fail(llvm::formatv("key 'partial_rotary_factor' is not supported: "
                            "{0} rotates the 'qk_rope_head_dim' ({1}) "
                            "dimensions of each head",
                            who, mla.ropeHeadDim));
}

} // namespace

void mlir::moe::config::readLatentAttention(KeyReader &keys,
                                            ModelConfig &config,
                                            const TransformersModel *family,
                                            bool classDefaults) {
  if (family && !family->latentAttention) {
    for (const char *key : {"kv_lora_rank", "q_lora_rank"})
      if (keys.has(key))
        keys.fail(llvm::formatv("key '{0}' ({1}) is not supported: "
                                "transformers' {2} has no multi-head latent "
                                "attention (model_type deepseek_v2's, "
                                "deepseek_v3's and glm4_moe_lite's have)",
                                key, keys.object[key].dump(), family->name)
                      .str());
    return;
  }
  // Ours (or a config of ours with the family's model_type): a latent
  // attention where kv_lora_rank says so.
  std::optional<LatentAttention> defaults =
      classDefaults && family ? family->latentAttention : std::nullopt;
  if (!defaults && !keys.has("kv_lora_rank")) {
    for (const char *key : kLatentAttentionKeys)
      if (keys.has(key))
        keys.fail(llvm::formatv("key '{0}' sizes multi-head latent "
                                "attention, which 'kv_lora_rank' makes "
                                "(missing)",
                                key)
                      .str());
    return;
  }
  // Every latent attention has these sizes; q_lora_rank's null is a query
  // projection of its own.
  for (const char *key : kLatentAttentionKeys)
    if (llvm::StringRef(key) != "q_lora_rank" && keys.isNull(key))
      keys.keyError(key, family ? llvm::formatv("a positive integer "
                                                "(transformers' {0} fails "
                                                "on null)",
                                                family->name)
                                      .str()
                                : std::string("a positive integer"));
  LatentAttention mla = defaults.value_or(LatentAttention{});
  mla.kvRank = keys.positive("kv_lora_rank", mla.kvRank);
  mla.nopeHeadDim = keys.positive("qk_nope_head_dim", mla.nopeHeadDim);
  mla.ropeHeadDim = keys.positive("qk_rope_head_dim", mla.ropeHeadDim);
  mla.valueHeadDim = keys.positive("v_head_dim", mla.valueHeadDim);
  if (keys.isNull("q_lora_rank"))
    mla.queryRank.reset();
  else if (keys.has("q_lora_rank"))
    mla.queryRank = keys.positive("q_lora_rank");
  if (!keys.error.empty())
    return;
  config.latentAttention = mla;
  checkLatentAttention(keys, config, family);
}
