#!/usr/bin/env python3
"""Writes the Hugging Face fixtures of test/Frontend/hf-checkpoints.test
and hf-families.test.

Run by hand, with a Python that has torch, transformers and safetensors:

    python3 test/Inputs/hf/make-fixtures.py test/Inputs/hf [NAME...]

(NAMEs: only those models; all without).

For each model below it creates a small random model with transformers
(seed 0), saves it with save_pretrained (config.json and safetensors, in
the layout this transformers version writes, sharded where asked, in the
dtype asked), loads it back in float32, and records its logits for fixed
token ids in inputs.safetensors (input_ids, I32) and logits.safetensors
(logits, F32). It also records transformers' training loss for labels
with -100 (ignored) at every third position: logits.safetensors holds
`loss` (F32, the cross-entropy plus, for a Mixtral model with
output_router_logits, router_aux_loss_coef times transformers' pooled
load-balancing loss) and inputs.safetensors `labels` (I32) as our models
take them, already shifted: labels[:, s] is the target of position s, -100
at the last position. gradients.safetensors holds that loss's gradient of
every parameter (F32), named as moe-autodiff names it (see
gradients_by_our_names). save_pretrained writes Mixtral's experts one by one
(model.layers.L.block_sparse_moe.experts.E.w1.weight, ...), as the hub's
checkpoints have them; the "fused" model is rewritten with the fused names
transformers 5 uses in memory (see save_fused).
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file

import trained_scale

VOCAB, HIDDEN, FFN, LAYERS, HEADS = 32, 16, 24, 2, 4
BATCH, SEQ = 2, 8

MODELS = {
    # Grouped-query attention, top-2, untied, RoPE base 1e6.
    # Its loss includes transformers' aux loss (output_router_logits).
    "mixtral-gqa-top2": dict(kind="mixtral", kv_heads=2, top_k=2, tied=False,
                             theta=1e6, router_logits=True),
    # Top-1, tied embeddings, transformers 5's fused expert tensors.
    "mixtral-top1-tied-fused": dict(kind="mixtral", kv_heads=4, top_k=1,
                                    tied=True, theta=1e4, fused=True),
    # Dense Llama, grouped-query attention, sharded into several files.
    "llama-gqa-sharded": dict(kind="llama", kv_heads=2, tied=False, theta=5e5,
                              shard="8KB"),
    # Dense Llama stored in bfloat16, tied.
    "llama-bf16-tied": dict(kind="llama", kv_heads=1, tied=True, theta=1e4,
                            dtype=torch.bfloat16),
    # MixtralConfig's RoPE base and epsilon, left out of config.json, and
    # keys that transformers' Mixtral ignores (its top-k weights are always
    # renormalized, it has no z-loss, its experts are intermediate_size
    # wide).
    "mixtral-transformers-keys": dict(
        kind="mixtral", kv_heads=2, top_k=2, tied=False, theta=None,
        router_logits=True,
        config_edits={"rope_parameters": None, "rope_theta": None,
                      "rms_norm_eps": None, "norm_topk_prob": False,
                      "router_z_loss_coef": 0.1,
                      "moe_intermediate_size": 40}),
    # Mixtral attending within a sliding window of 3 positions (of the 8).
    "mixtral-window": dict(kind="mixtral", kv_heads=2, top_k=2, tied=False,
                           theta=1e6, router_logits=True, window=3),
    # Qwen3-MoE with use_sliding_window: every layer within 5 positions.
    "qwen3-moe-window": dict(
        kind="qwen3_moe", kv_heads=2, top_k=2, tied=False, theta=1e6,
        head_dim=8, moe_keys={"use_sliding_window": True,
                              "sliding_window": 5}),
    # Qwen2-MoE sliding its even layers below max_window_layers (its
    # config class's rule): layer 0 within 3 positions, layer 1 all.
    "qwen2-moe-window-layer0": dict(
        kind="qwen2_moe", kv_heads=2, top_k=2, tied=False, theta=1e6,
        router_logits=True,
        moe_keys={"use_sliding_window": True, "sliding_window": 3,
                  "max_window_layers": 2}),
    # Dots1 sliding the layers from max_window_layers: layer 0 (dense) all
    # positions, layer 1 within 3.
    "dots1-window-layer1": dict(
        kind="dots1", kv_heads=2, top_k=2, tied=False, theta=1e6,
        head_dim=8,
        moe_keys={"first_k_dense_replace": 1, "intermediate_size": 40,
                  "n_shared_experts": 1, "norm_topk_prob": True,
                  "sliding_window": 3, "max_window_layers": 1}),
    # EXAONE 4: norms after each sublayer, each query and key head 8 wide
    # normalized; layer 0 slides within 3 positions (sliding_window_pattern
    # 2), layer 1 attends to all and applies no RoPE.
    "exaone4-nope-layer1": dict(
        kind="exaone4", kv_heads=2, tied=False, theta=1e6, head_dim=8,
        moe_keys={"sliding_window": 3, "sliding_window_pattern": 2}),
    # EXAONE-MoE (K-EXAONE): EXAONE 4's attention and RoPE with norms
    # before each sublayer; layer 0 dense (first_k_dense_replace 1, its
    # default, 40 wide) and sliding within 3, layer 1 a MoE layer of
    # DeepSeek-V3's routing (sigmoid scores chosen with a random bias, top-2
    # renormalized and scaled by 2.5) beside one shared expert, attending
    # to all without RoPE.
    "exaone-moe-nope-layer1": dict(
        kind="exaone_moe", kv_heads=2, top_k=2, tied=False, theta=1e6,
        head_dim=8,
        moe_keys={"intermediate_size": 40, "sliding_window": 3,
                  "sliding_window_pattern": 2}),
    # Qwen3-MoE: heads 8 wide where hidden_size / num_attention_heads is 4,
    # each query and key head normalized, top-2 weights not renormalized
    # (Qwen3MoeConfig's norm_topk_prob default), transformers' aux loss;
    # its experts as save_pretrained writes Qwen's (mlp.experts.E.gate_proj).
    "qwen3-moe-head-dim": dict(kind="qwen3_moe", kv_heads=2, top_k=2,
                               tied=False, theta=1e6, head_dim=8,
                               router_logits=True),
    # OLMoE: the whole query and key projections normalized (q_norm of
    # hidden_size, k_norm of the key-value heads' width), top-2 weights not
    # renormalized, transformers' aux loss, OlmoeConfig's RoPE base and
    # epsilon; its experts under Qwen's names.
    "olmoe-gqa": dict(kind="olmoe", kv_heads=2, top_k=2, tied=False,
                      theta=None, router_logits=True),
    # Qwen2-MoE: a shared expert (20 wide) beside top-2 routed ones, its
    # output scaled by the sigmoid of its gate; biases on the q, k and v
    # projections (qkv_bias); top-2 weights not renormalized; transformers'
    # aux loss; its experts under Qwen's names.
    "qwen2-moe-shared": dict(kind="qwen2_moe", kv_heads=2, top_k=2,
                             tied=False, theta=1e6, router_logits=True),
    # Dense Qwen2: biases on the q, k and v projections, 2 key-value heads.
    "qwen2-qkv-bias": dict(kind="qwen2", kv_heads=2, tied=False, theta=1e6),
    # Dense Qwen3, heads 6 wide, one key-value head, tied embeddings.
    "qwen3-dense-tied": dict(kind="qwen3", kv_heads=1, tied=True, theta=1e4,
                             head_dim=6),
    # Llama 3.1's RoPE scaling: heads 8 wide, so that of the 4 frequencies
    # (wavelengths 6.3, 63, 628, 6283) one is kept, one smoothed and two
    # slowed for an original context of 64.
    "llama-rope-llama3": dict(
        kind="llama", kv_heads=2, tied=False, theta=1e4, head_dim=8,
        rope={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
              "high_freq_factor": 4.0,
              "original_max_position_embeddings": 64}),
    # Qwen3-MoE with YaRN (Qwen3's long-context recipe): the frequencies
    # ramp between kept and slowed, cos and sin scaled by its attention
    # factor (0.1 ln 4 + 1).
    "qwen3-moe-yarn": dict(
        kind="qwen3_moe", kv_heads=2, top_k=2, tied=False, theta=1e4,
        head_dim=8, rope={"rope_type": "yarn", "factor": 4.0,
                          "original_max_position_embeddings": 16}),
    # Dense layers among the MoE ones: Qwen3-MoE's layer 0 listed in
    # mlp_only_layers (a dense MLP of intermediate_size, 40, under the dense
    # model's names; the experts 24 wide), and Qwen2-MoE's
    # decoder_sparse_step 2 (layer 0 dense, layer 1 a MoE layer with its
    # shared expert).
    "qwen3-moe-dense-layer": dict(
        kind="qwen3_moe", kv_heads=2, top_k=2, tied=False, theta=1e6,
        head_dim=8, router_logits=True,
        moe_keys={"mlp_only_layers": [0], "intermediate_size": 40}),
    "qwen2-moe-sparse-step": dict(
        kind="qwen2_moe", kv_heads=2, top_k=2, tied=False, theta=1e6,
        router_logits=True,
        moe_keys={"decoder_sparse_step": 2, "intermediate_size": 40}),
    # Dots1 (DeepSeek-V3's MoE layers with Qwen3's attention): layer 0
    # dense (first_k_dense_replace, 40 wide), layer 1 routing by sigmoid
    # scores chosen with a random e_score_correction_bias, its top-2 weights
    # renormalized and scaled by routed_scaling_factor, beside one ungated
    # shared expert 24 wide; heads 8 wide. No aux loss (Dots1 has none).
    "dots1-dense-first": dict(
        kind="dots1", kv_heads=2, top_k=2, tied=False, theta=1e6,
        head_dim=8,
        moe_keys={"first_k_dense_replace": 1, "intermediate_size": 40,
                  "n_shared_experts": 1, "routed_scaling_factor": 2.5,
                  "norm_topk_prob": True}),
    # Dots1 with top-1 weights that are the score itself (norm_topk_prob
    # false, Dots1Config's default), two shared experts (48 wide), tied.
    "dots1-top1-tied": dict(
        kind="dots1", kv_heads=4, top_k=1, tied=True, theta=1e4,
        moe_keys={"n_shared_experts": 2}),
    # Dots1 with DeepSeek-V3's group-limited routing: the 4 experts in 2
    # groups (n_group), each token's top-2 from the one group (topk_group)
    # whose two best scores plus bias sum highest.
    "dots1-groups": dict(
        kind="dots1", kv_heads=2, top_k=2, tied=False, theta=1e4,
        moe_keys={"n_shared_experts": 1, "n_group": 2, "topk_group": 1,
                  "norm_topk_prob": True}),
    # GLM-4-MoE (Glm4MoeConfig, GLM-4.5's): half of each 8-wide head
    # rotated (partial_rotary_factor 0.5, its default), q, k and v biases
    # (attention_bias), each query and key head normalized (use_qk_norm),
    # DeepSeek-V3's MoE layers after a dense first one (first_k_dense_replace
    # 1, its default), top-2 weights renormalized and scaled by 1.5, one
    # ungated shared expert.
    "glm4-moe-partial-rope": dict(
        kind="glm4_moe", kv_heads=2, top_k=2, tied=False, theta=1e4,
        head_dim=8,
        moe_keys={"attention_bias": True, "use_qk_norm": True,
                  "intermediate_size": 40, "n_shared_experts": 1,
                  "routed_scaling_factor": 1.5}),
    # GLM-4-MoE with its attention's keys left at their defaults (no q, k
    # and v biases, no query and key norms), a quarter of each 8-wide head
    # rotated, every layer a MoE layer (first_k_dense_replace 0), top-2 of 4
    # experts in 2 groups, weights not renormalized, two ungated shared
    # experts, tied embeddings.
    "glm4-moe-groups-tied": dict(
        kind="glm4_moe", kv_heads=4, top_k=2, tied=True, theta=1e4,
        head_dim=8, rope={"partial_rotary_factor": 0.25},
        moe_keys={"first_k_dense_replace": 0, "n_shared_experts": 2,
                  "n_group": 2, "topk_group": 1, "norm_topk_prob": False}),
    # DeepSeek-V3: multi-head latent attention with queries through a
    # 12-wide latent (q_lora_rank), keys and values from an 8-wide one, each
    # head 6 unrotated and 4 rotated dimensions, values 8 wide (padded to
    # the queries' 10 for moe.attention), RoPE turning pairs (rope_interleave,
    # its default), YaRN with mscale_all_dim (which scales the softmax too);
    # GLM-4-MoE's MoE layers after a dense first one, top-2 of 4 experts in
    # 2 groups, scaled by 2.5 (its default), one shared expert.
    "deepseek-v3-latent": dict(
        kind="deepseek_v3", kv_heads=HEADS, top_k=2, tied=False, theta=1e4,
        rope={"rope_type": "yarn", "factor": 4.0,
              "original_max_position_embeddings": 16, "mscale": 1.0,
              "mscale_all_dim": 0.8},
        moe_keys={"q_lora_rank": 12, "kv_lora_rank": 8, "qk_nope_head_dim": 6,
                  "qk_rope_head_dim": 4, "v_head_dim": 8,
                  "first_k_dense_replace": 1, "n_shared_experts": 1,
                  "n_group": 2, "topk_group": 1}),
    # DeepSeek-V3 with one query projection (q_lora_rank null), values 12
    # wide (the queries and keys, 6 + 4, padded to them), RoPE turning
    # halves (rope_interleave false), every layer a MoE layer, tied.
    "deepseek-v3-q-proj": dict(
        kind="deepseek_v3", kv_heads=HEADS, top_k=2, tied=True, theta=1e4,
        moe_keys={"q_lora_rank": None, "kv_lora_rank": 8,
                  "qk_nope_head_dim": 6, "qk_rope_head_dim": 4,
                  "v_head_dim": 12, "rope_interleave": False,
                  "first_k_dense_replace": 0, "n_shared_experts": 1,
                  "n_group": 1, "topk_group": 1, "routed_scaling_factor": 1.0,
                  "norm_topk_prob": False}),
    # DeepSeek-V2: DeepSeek-V3's attention (RoPE turning pairs, YaRN with
    # mscale equal to mscale_all_dim as its release has) over softmax
    # scores, never renormalized, chosen within the better of 2 groups by
    # each group's best expert (topk_method group_limited_greedy), scaled by
    # 2, two shared experts, a dense first layer.
    "deepseek-v2-groups": dict(
        kind="deepseek_v2", kv_heads=HEADS, top_k=2, tied=False, theta=1e4,
        rope={"rope_type": "yarn", "factor": 4.0,
              "original_max_position_embeddings": 16, "mscale": 0.707,
              "mscale_all_dim": 0.707},
        moe_keys={"q_lora_rank": 12, "kv_lora_rank": 8, "qk_nope_head_dim": 6,
                  "qk_rope_head_dim": 4, "v_head_dim": 8,
                  "first_k_dense_replace": 1, "n_shared_experts": 2,
                  "topk_method": "group_limited_greedy", "n_group": 2,
                  "topk_group": 1, "routed_scaling_factor": 2.0}),
    # DeepSeek-V2-Lite's layout: one query projection, top-2 among all
    # experts (topk_method greedy), one shared expert, every layer a MoE
    # layer, tied.
    "deepseek-v2-lite-greedy": dict(
        kind="deepseek_v2", kv_heads=HEADS, top_k=2, tied=True, theta=1e4,
        moe_keys={"q_lora_rank": None, "kv_lora_rank": 8,
                  "qk_nope_head_dim": 6, "qk_rope_head_dim": 4,
                  "v_head_dim": 8, "n_shared_experts": 1,
                  "topk_method": "greedy"}),
    # GLM-4-MoE-Lite (GLM-4.7-Flash): DeepSeek-V3's model with a MoE layer
    # before a dense one (mlp_layer_types), queries through a 6-wide latent,
    # values 10 wide as the query heads (no padding), RoPE turning pairs
    # (its default), top-2 of 4 scaled by 1.8 (its default), one shared
    # expert, tied.
    "glm4-moe-lite-dense-after": dict(
        kind="glm4_moe_lite", kv_heads=HEADS, top_k=2, tied=True, theta=1e4,
        moe_keys={"q_lora_rank": 6, "kv_lora_rank": 8, "qk_nope_head_dim": 6,
                  "qk_rope_head_dim": 4, "v_head_dim": 10,
                  "mlp_layer_types": ["sparse", "dense"],
                  "n_shared_experts": 1}),
    # Solar Open: GLM-4-MoE's MoE layers in every layer (top-2 of 4 within
    # the better of 2 groups, renormalized, scaled by 2, one shared expert)
    # with Llama's attention and q, k and v biases (attention_bias).
    "solar-open-groups": dict(
        kind="solar_open", kv_heads=2, top_k=2, tied=False, theta=1e4,
        head_dim=8,
        moe_keys={"attention_bias": True, "n_shared_experts": 1,
                  "routed_scaling_factor": 2.0, "n_group": 2,
                  "topk_group": 1, "norm_topk_prob": True}),
    # MiniMax-M2: each layer a MoE layer whose sigmoid scores choose the
    # top-2 of 4 experts with a random bias and are renormalized; queries
    # and keys normalized over their whole projections (heads 8 wide, 32
    # and 16 wide in all, the hidden state 16), half of each head rotated
    # (rotary_dim 4, its released configs' key).
    "minimax-m2-rotary-dim": dict(
        kind="minimax_m2", kv_heads=2, top_k=2, tied=False, theta=1e4,
        head_dim=8, moe_keys={"rotary_dim": 4}),
    # ERNIE 4.5 (dense): Llama's with RoPE turning pairs (2i, 2i + 1),
    # heads 8 wide, tied embeddings (its default), padding token 0.
    "ernie4.5-interleaved": dict(
        kind="ernie4_5", kv_heads=2, tied=True, theta=1e4, head_dim=8),
    # ERNIE 4.5 MoE: layer 0 dense (moe_layer_start_index's default 1, an
    # MLP of intermediate_size, 40), layer 1 a MoE layer whose softmax
    # scores choose the top-2 of 4 experts with a random bias
    # (moe_statics.e_score_correction_bias, [1, 4]) and are renormalized,
    # beside one ungated shared expert; RoPE turning pairs, heads 8 wide,
    # tied embeddings.
    "ernie4.5-moe-shared": dict(
        kind="ernie4_5_moe", kv_heads=2, top_k=2, tied=True, theta=1e4,
        head_dim=8,
        moe_keys={"moe_num_shared_experts": 1, "intermediate_size": 40}),
    # HY V3: layer 0 a MoE layer whose sigmoid scores choose the top-2 of 4
    # experts with a random bias, renormalized and scaled by 1.5
    # (router_scaling_factor), beside one ungated shared expert; layer 1
    # dense after it (mlp_layer_types, an MLP of intermediate_size, 40);
    # each query and key head normalized, heads 8 wide.
    "hy-v3-dense-after": dict(
        kind="hy_v3", kv_heads=2, top_k=2, tied=False, theta=1e4, head_dim=8,
        moe_keys={"num_shared_experts": 1, "router_scaling_factor": 1.5,
                  "mlp_layer_types": ["sparse", "dense"],
                  "intermediate_size": 40}),
    # HunYuan MoE V1 (Tencent's Hunyuan-A13B): Mixtral's routing (top-2 of
    # 4, always renormalized, no load-balancing loss) beside one ungated
    # shared MLP as wide as the experts (intermediate_size), each 8-wide
    # query and key head (head_dim, which its class requires) normalized
    # after RoPE, whose "dynamic" scaling with an alpha of 4 is NTK-alpha
    # (the base times 4^(8 / 6)); moe_topk listed per layer, as its released
    # config does.
    "hunyuan-v1-moe": dict(
        kind="hunyuan_v1_moe", kv_heads=2, top_k=2, tied=False, theta=1e4,
        head_dim=8, rope={"rope_type": "dynamic", "alpha": 4.0, "factor": 1.0}),
    # HunYuan Dense V1: HunYuan MoE V1's attention (each 8-wide query and
    # key head normalized after RoPE, NTK-alpha RoPE with an alpha of 4) on
    # Llama's layers.
    "hunyuan-v1-dense": dict(
        kind="hunyuan_v1_dense", kv_heads=2, tied=False, theta=1e4,
        head_dim=8, rope={"rope_type": "dynamic", "alpha": 4.0, "factor": 1.0}),
    # MiniCPM5-MoE: layer 0 dense (first_k_dense_replace's 1, written out
    # as mlp_layer_types), layer 1 DeepSeek-V3's MoE layer (sigmoid scores
    # with a random bias choosing the top-2 of 4 in the better of 2 groups,
    # renormalized, scaled by 2.0, beside one shared expert); the attention
    # gated: q_proj holds each 8-wide head's query, then its gate, whose
    # sigmoid scales the head's output element by element.
    "minicpm5-moe-gated": dict(
        kind="minicpm5_moe", kv_heads=2, top_k=2, tied=False, theta=1e4,
        head_dim=8,
        moe_keys={"n_group": 2, "topk_group": 1,
                  "routed_scaling_factor": 2.0}),
    # Sarvam-MoE (GLM-4-MoE's model under its own config class, its
    # checkpoints in Ant's Bailing names: word_embeddings, a fused
    # attention.query_key_value, attention.dense, ...): whole 8-wide heads
    # rotated, each query and key head normalized and RoPE's base and the
    # epsilon (8e6, 1e-6) by its defaults, q, k and v biases, layer 0 dense
    # (an MLP of intermediate_size, 40), layer 1 top-2 of 4 renormalized and
    # scaled by 2.5 (its default) beside one shared expert; the counts and
    # the biases in its released config's spellings (num_experts,
    # num_shared_experts, use_qkv_bias).
    "sarvam-moe-qkv-bias": dict(
        kind="sarvam_moe", kv_heads=2, top_k=2, tied=False, theta=None,
        head_dim=8,
        moe_keys={"attention_bias": True, "intermediate_size": 40},
        config_edits={"n_routed_experts": None, "num_experts": 4,
                      "n_shared_experts": None, "num_shared_experts": 1,
                      "attention_bias": None, "use_qkv_bias": True}),
    # Param2-MoE (Sarvam-MoE's model and names): every layer a MoE layer,
    # top-2 of 4 in 2 groups, not renormalized, two shared experts (its
    # default), no query and key norms (use_qk_norm false), tied
    # embeddings, its RoPE base and epsilon (5e5, 1e-6).
    "param2-moe-groups": dict(
        kind="param2moe", kv_heads=2, top_k=2, tied=True, theta=None,
        head_dim=8,
        moe_keys={"use_qk_norm": False, "first_k_dense_replace": 0,
                  "n_group": 2, "topk_group": 1, "norm_topk_prob": False}),
    # Granite MoE (Mixtral's MoE layers, top-2 of 4 renormalized, with
    # transformers' pooled load-balancing loss; Llama's attention) with
    # muP's multipliers: the embeddings times 12, the softmax scale 0.3
    # (1 / sqrt(4) without it), each sublayer's output times 0.22 before
    # its residual add, the logits over 6; its checkpoints' experts fused
    # (block_sparse_moe.input_linear, output_linear, router.layer).
    "granitemoe-mup": dict(
        kind="granitemoe", kv_heads=2, top_k=2, tied=False, theta=1e4,
        router_logits=True,
        moe_keys={"embedding_multiplier": 12.0, "attention_multiplier": 0.3,
                  "residual_multiplier": 0.22, "logits_scaling": 6.0}),
    # Granite MoE Shared: granitemoe-mup's model with a shared MLP beside
    # the experts, ungated and 20 wide (no multiple of the experts' 24), its
    # gate and up rows fused in its checkpoints (shared_mlp.input_linear).
    "granitemoe-shared": dict(
        kind="granitemoeshared", kv_heads=2, top_k=2, tied=False, theta=1e4,
        router_logits=True,
        moe_keys={"shared_intermediate_size": 20,
                  "embedding_multiplier": 12.0, "attention_multiplier": 0.3,
                  "residual_multiplier": 0.22, "logits_scaling": 6.0}),
    # Granite (dense, Llama's model with muP's multipliers), tied
    # embeddings, the attention's multiplier left at its class's 1.
    "granite-mup-tied": dict(
        kind="granite", kv_heads=2, tied=True, theta=1e4,
        moe_keys={"embedding_multiplier": 6.0, "residual_multiplier": 0.5,
                  "logits_scaling": 2.5}),
    # Granite SWA (dense): Granite's model with muP's multipliers, a
    # learned sink in each head's softmax, layer 0 attending to all
    # without RoPE, layer 1 sliding within 3 positions at RoPE base 10
    # (layer_rope_theta), tied embeddings.
    "granite-swa-sinks": dict(
        kind="granite_swa", kv_heads=2, tied=True, theta=1e4,
        moe_keys={"embedding_multiplier": 6.0, "attention_multiplier": 0.3,
                  "residual_multiplier": 0.5, "logits_scaling": 2.5,
                  "sliding_window": 3, "layer_rope_theta": [0, 10.0]}),
    # Granite MoE SWA: granitemoe-shared's model (a shared MLP 20 wide)
    # with sinks, layer 0 sliding within 3 positions at base 500 and layer
    # 1 attending to all at base 1e4 (layer_types, layer_rope_theta).
    "granitemoe-swa-sinks": dict(
        kind="granitemoe_swa", kv_heads=2, top_k=2, tied=False, theta=1e4,
        router_logits=True,
        moe_keys={"shared_intermediate_size": 20,
                  "embedding_multiplier": 12.0, "attention_multiplier": 0.3,
                  "residual_multiplier": 0.22, "logits_scaling": 6.0,
                  "sliding_window": 3,
                  "layer_types": ["sliding_attention", "full_attention"],
                  "layer_rope_theta": [500.0, 1e4]}),
    # OLMo 2 (dense): each sublayer's output normalized before its
    # residual add (post_attention_layernorm, post_feedforward_layernorm),
    # the whole queries and keys normalized (16 and 8 wide).
    "olmo2-post-norm": dict(
        kind="olmo2", kv_heads=2, tied=False, theta=1e4, moe_keys={}),
    # OLMo 3: OLMo 2's layers, layer 0 sliding within 3 positions, layer 1
    # attending to all; each layer type's RoPE its own (the full layer's
    # YaRN, factor 4 over 16 positions, base 5e5; the sliding one's
    # unscaled, base 10).
    "olmo3-rope-by-type": dict(
        kind="olmo3", kv_heads=2, tied=False, theta=None,
        moe_keys={"sliding_window": 3, "rms_norm_eps": 1e-5,
                  "layer_types": ["sliding_attention", "full_attention"],
                  "rope_parameters": {
                      "full_attention": {
                          "rope_type": "yarn", "factor": 4.0,
                          "original_max_position_embeddings": 16,
                          "rope_theta": 5e5},
                      "sliding_attention": {"rope_type": "default",
                                            "rope_theta": 10.0}}}),
    # FlexOlmo: OLMoE's MoE layers (top-2 of 4 not renormalized, its
    # load-balancing loss) on OLMo 2's layers, its class's RoPE base and
    # epsilon (5e5, 1e-6), padding token 0.
    "flex-olmo-top2": dict(
        kind="flex_olmo", kv_heads=4, top_k=2, tied=True, theta=None,
        moe_keys={"num_experts": 4, "num_experts_per_tok": 2,
                  "output_router_logits": True, "pad_token_id": 0}),
    # Linear scaling in transformers 4's spelling (rope_scaling with "type",
    # rope_theta apart).
    "qwen2-rope-linear": dict(
        kind="qwen2", kv_heads=2, tied=False, theta=1e4,
        rope={"rope_type": "linear", "factor": 4.0},
        config_edits={"rope_parameters": None, "rope_theta": 1e4,
                      "rope_scaling": {"type": "linear", "factor": 4.0}}),
}


def make_model(spec):
    common = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FFN,
                  num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                  num_key_value_heads=spec["kv_heads"],
                  max_position_embeddings=64,
                  tie_word_embeddings=spec["tied"])
    # Without a theta, the config class's own RoPE base and epsilon.
    if spec["theta"] is not None:
        common.update(rms_norm_eps=1e-5,
                      rope_parameters={"rope_type": "default",
                                       "rope_theta": spec["theta"],
                                       **spec.get("rope", {})})
    if spec["kind"] == "mixtral":
        config = transformers.MixtralConfig(
            num_local_experts=4, num_experts_per_tok=spec["top_k"],
            router_aux_loss_coef=0.01, sliding_window=spec.get("window"),
            output_router_logits=spec.get("router_logits", False), **common)
        model = transformers.MixtralForCausalLM(config)
    elif spec["kind"] == "qwen3_moe":
        config = transformers.Qwen3MoeConfig(
            num_experts=4, num_experts_per_tok=spec["top_k"],
            moe_intermediate_size=FFN, router_aux_loss_coef=0.01,
            head_dim=spec["head_dim"],
            output_router_logits=spec.get("router_logits", False),
            **{**common, **spec.get("moe_keys", {})})
        model = transformers.Qwen3MoeForCausalLM(config)
    elif spec["kind"] == "olmoe":
        config = transformers.OlmoeConfig(
            num_experts=4, num_experts_per_tok=spec["top_k"],
            router_aux_loss_coef=0.01,
            output_router_logits=spec.get("router_logits", False), **common)
        model = transformers.OlmoeForCausalLM(config)
    elif spec["kind"] == "qwen2_moe":
        config = transformers.Qwen2MoeConfig(
            num_experts=4, num_experts_per_tok=spec["top_k"],
            moe_intermediate_size=FFN, shared_expert_intermediate_size=20,
            router_aux_loss_coef=0.01,
            output_router_logits=spec.get("router_logits", False),
            **{**common, **spec.get("moe_keys", {})})
        model = transformers.Qwen2MoeForCausalLM(config)
    elif spec["kind"] == "dots1":
        extra = {"head_dim": spec["head_dim"]} if "head_dim" in spec else {}
        config = transformers.Dots1Config(
            n_routed_experts=4, num_experts_per_tok=spec["top_k"],
            moe_intermediate_size=FFN, **extra,
            **{**common, **spec.get("moe_keys", {})})
        model = transformers.Dots1ForCausalLM(config)
    elif spec["kind"] == "glm4_moe":
        config = transformers.Glm4MoeConfig(
            n_routed_experts=4, num_experts_per_tok=spec["top_k"],
            moe_intermediate_size=FFN, head_dim=spec["head_dim"],
            **{**common, **spec.get("moe_keys", {})})
        model = transformers.Glm4MoeForCausalLM(config)
    elif spec["kind"] == "solar_open":
        config = transformers.SolarOpenConfig(
            n_routed_experts=4, num_experts_per_tok=spec["top_k"],
            moe_intermediate_size=FFN, head_dim=spec["head_dim"],
            **{**common, **spec.get("moe_keys", {})})
        model = transformers.SolarOpenForCausalLM(config)
    elif spec["kind"] == "minimax_m2":
        config = transformers.MiniMaxM2Config(
            num_local_experts=4, num_experts_per_tok=spec["top_k"],
            head_dim=spec["head_dim"],
            **{**common, **spec.get("moe_keys", {})})
        model = transformers.MiniMaxM2ForCausalLM(config)
    elif spec["kind"] == "ernie4_5":
        config = transformers.Ernie4_5Config(head_dim=spec["head_dim"],
                                             **common)
        model = transformers.Ernie4_5ForCausalLM(config)
    elif spec["kind"] == "ernie4_5_moe":
        config = transformers.Ernie4_5_MoeConfig(
            moe_num_experts=4, moe_k=spec["top_k"], moe_intermediate_size=FFN,
            head_dim=spec["head_dim"],
            **{**common, **spec.get("moe_keys", {})})
        model = transformers.Ernie4_5_MoeForCausalLM(config)
    elif spec["kind"] == "minicpm5_moe":
        config = transformers.MiniCPM5MoeConfig(
            n_routed_experts=4, num_experts_per_tok=spec["top_k"],
            moe_intermediate_size=FFN, n_shared_experts=1,
            head_dim=spec["head_dim"], **{**common, **spec["moe_keys"]})
        model = transformers.MiniCPM5MoeForCausalLM(config)
    elif spec["kind"] == "hunyuan_v1_dense":
        config = transformers.HunYuanDenseV1Config(
            head_dim=spec["head_dim"], **common)
        model = transformers.HunYuanDenseV1ForCausalLM(config)
    elif spec["kind"] == "hunyuan_v1_moe":
        config = transformers.HunYuanMoEV1Config(
            num_experts=4, moe_topk=[spec["top_k"]] * LAYERS,
            head_dim=spec["head_dim"], **common)
        model = transformers.HunYuanMoEV1ForCausalLM(config)
    elif spec["kind"] == "hy_v3":
        config = transformers.HYV3Config(
            num_experts=4, num_experts_per_tok=spec["top_k"],
            moe_intermediate_size=FFN, head_dim=spec["head_dim"],
            **{**common, **spec.get("moe_keys", {})})
        model = transformers.HYV3ForCausalLM(config)
    elif spec["kind"] in ("exaone4", "exaone_moe"):
        experts = dict(num_experts=4, num_experts_per_tok=spec["top_k"],
                       moe_intermediate_size=FFN
                       ) if spec["kind"] == "exaone_moe" else {}
        config = transformers.AutoConfig.for_model(
            spec["kind"], head_dim=spec["head_dim"], **experts,
            **{**common, **spec["moe_keys"]})
        model = transformers.AutoModelForCausalLM.from_config(config)
    elif spec["kind"] in ("olmo2", "olmo3", "flex_olmo"):
        config = transformers.AutoConfig.for_model(
            spec["kind"], **{**common, **spec["moe_keys"]})
        model = transformers.AutoModelForCausalLM.from_config(config)
    elif spec["kind"] in ("granite", "granitemoe", "granitemoeshared",
                          "granite_swa", "granitemoe_swa"):
        experts = dict(num_local_experts=4, num_experts_per_tok=spec["top_k"],
                       router_aux_loss_coef=0.01,
                       output_router_logits=spec.get("router_logits", False)
                       ) if spec["kind"] not in ("granite", "granite_swa") else {}
        config = transformers.AutoConfig.for_model(
            spec["kind"], **experts, **{**common, **spec["moe_keys"]})
        model = transformers.AutoModelForCausalLM.from_config(config)
    elif spec["kind"] in ("deepseek_v3", "glm4_moe_lite", "deepseek_v2"):
        config = transformers.AutoConfig.for_model(
            spec["kind"], n_routed_experts=4,
            num_experts_per_tok=spec["top_k"], moe_intermediate_size=FFN,
            **{**common, **spec["moe_keys"]})
        model = transformers.AutoModelForCausalLM.from_config(config)
    elif spec["kind"] in ("sarvam_moe", "param2moe"):
        config = transformers.AutoConfig.for_model(
            spec["kind"], n_routed_experts=4,
            num_experts_per_tok=spec["top_k"], moe_intermediate_size=FFN,
            head_dim=spec["head_dim"],
            **{**common, **spec.get("moe_keys", {})})
        model = transformers.AutoModelForCausalLM.from_config(config)
    elif spec["kind"] == "qwen2":
        config = transformers.Qwen2Config(**common)
        model = transformers.Qwen2ForCausalLM(config)
    elif spec["kind"] == "qwen3":
        config = transformers.Qwen3Config(head_dim=spec["head_dim"], **common)
        model = transformers.Qwen3ForCausalLM(config)
    else:
        config = transformers.LlamaConfig(head_dim=spec.get("head_dim"),
                                          **common)
        model = transformers.LlamaForCausalLM(config)
    trained_scale.randomize(model)
    return model


def gradients_by_our_names(model):
    """The parameters' gradients under the names moe-autodiff gives them: a
    global of moe-import's model and ".grad". transformers 5 holds a Mixtral
    (and a Qwen3-MoE, OLMoE or Qwen2-MoE) layer's experts fused (mlp.experts.gate_up_proj [E, 2F, H], gate rows
    first; mlp.experts.down_proj [E, H, F]) and its router at mlp.gate; the
    model has them as block_sparse_moe.experts.w1, w3, w2 and
    block_sparse_moe.gate."""
    gradients = {}
    for name, parameter in model.named_parameters():
        if parameter.grad is None:
            continue
        grad = parameter.grad.detach()
        # Granite MoE Shared's shared MLP, its gate and up rows fused.
        layer, _, shared = name.rpartition(".shared_mlp.")
        if shared in ("input_linear.weight", "output_linear.weight"):
            module = layer + ".mlp.shared_experts."
            if shared == "output_linear.weight":
                gradients[module + "down_proj.weight"] = grad
            else:
                width = grad.shape[0] // 2
                gradients[module + "gate_proj.weight"] = grad[:width]
                gradients[module + "up_proj.weight"] = grad[width:]
            continue
        # Granite MoE's MoE block is block_sparse_moe, its router `router`.
        prefix, _, leaf = name.rpartition(
            ".block_sparse_moe." if ".block_sparse_moe." in name else ".mlp.")
        # HunYuan MoE V1's router, shared MLP and attention norms.
        if leaf in ("router.weight", "gate.wg.weight"):
            leaf = "gate.weight"
        if leaf.startswith("shared_mlp."):
            gradients[prefix + ".mlp.shared_experts." +
                      leaf[len("shared_mlp."):]] = grad
            continue
        # MiniCPM5-MoE's query and gate projection, its checkpoints' q_proj.
        for spelled, ours in (("query_layernorm", "q_norm"),
                              ("key_layernorm", "k_norm"),
                              ("q_gate_proj", "q_proj")):
            name = name.replace(".self_attn." + spelled + ".",
                                ".self_attn." + ours + ".")
        if leaf == "experts.gate_up_proj":
            experts = prefix + ".block_sparse_moe.experts."
            width = grad.shape[1] // 2
            gradients[experts + "w1"] = grad[:, :width]
            gradients[experts + "w3"] = grad[:, width:]
        elif leaf == "experts.down_proj":
            gradients[prefix + ".block_sparse_moe.experts.w2"] = grad
        elif leaf == "gate.weight":
            gradients[prefix + ".block_sparse_moe.gate.weight"] = grad
        else:
            gradients[name] = grad
    return {name + ".grad": grad.contiguous()
            for name, grad in gradients.items()}


def save_fused(model, folder):
    """Rewrites model.safetensors with transformers 5's in-memory names: the
    fused experts (mlp.experts.gate_up_proj [E, 2F, H], mlp.experts.down_proj
    [E, H, F]) and the router at mlp.gate, as a state_dict saved directly
    holds them (save_pretrained converts back to the per-expert layout)."""
    tensors = {name: tensor.detach().clone().contiguous()
               for name, tensor in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        tensors.pop("lm_head.weight")
    save_file(tensors, os.path.join(folder, "model.safetensors"),
              metadata={"format": "pt"})


def edit_config(folder, edits):
    """Sets keys of the saved config.json (None removes one)."""
    path = os.path.join(folder, "config.json")
    config = json.load(open(path))
    for key, value in edits.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    with open(path, "w") as file:
        json.dump(config, file, indent=2, sort_keys=True)
        file.write("\n")


def main():
    out, names = sys.argv[1], sys.argv[2:]
    for name, spec in MODELS.items():
        if names and name not in names:
            continue
        torch.manual_seed(0)
        model = make_model(spec).eval()
        folder = os.path.join(out, name)
        model.to(spec.get("dtype", torch.float32)).save_pretrained(
            folder, max_shard_size=spec.get("shard", "1GB"))
        if spec.get("fused"):
            save_fused(model, folder)
        edit_config(folder, spec.get("config_edits", {}))
        # Sampling defaults, which no test reads.
        generation = os.path.join(folder, "generation_config.json")
        if os.path.exists(generation):
            os.remove(generation)
        # By model_type: Glm4MoeForCausalLM's own config class would drop
        # Sarvam-MoE's defaults and checkpoint names.
        reloaded = transformers.AutoModelForCausalLM.from_pretrained(
            folder, dtype=torch.float32).eval()
        generator = torch.Generator().manual_seed(1)
        ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=generator)
        hf_labels = ids.clone()
        hf_labels.view(-1)[1::3] = -100
        with torch.no_grad():
            logits = reloaded(input_ids=ids).logits.float()
            loss = reloaded(input_ids=ids, labels=hf_labels).loss.float()
        reloaded(input_ids=ids, labels=hf_labels).loss.backward()
        # transformers shifts the labels inside the model; ours are shifted.
        labels = torch.full_like(ids, -100)
        labels[:, :-1] = hf_labels[:, 1:]
        save_file({"input_ids": ids.to(torch.int32),
                   "labels": labels.to(torch.int32)},
                  os.path.join(folder, "inputs.safetensors"))
        save_file({"logits": logits.contiguous(), "loss": loss.reshape(())},
                  os.path.join(folder, "logits.safetensors"))
        save_file(gradients_by_our_names(reloaded),
                  os.path.join(folder, "gradients.safetensors"))
        print(name, sorted(os.listdir(folder)))
    print("transformers", transformers.__version__, "torch", torch.__version__)


if __name__ == "__main__":
    main()
