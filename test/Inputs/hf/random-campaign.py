#!/usr/bin/env python3
"""Random models of a transformers family against moe-run, by hand.

Run with a Python that has torch, transformers and safetensors, after
building the tools:

    python3 test/Inputs/hf/random-campaign.py FAMILY COUNT [FIRST_SEED]
        [--bin build/bin] [--work /tmp/campaign]

FAMILY: one of FAMILIES below. For each seed it draws a random small
config of that family, builds the model with transformers (weights at a
trained model's scale, routers' biases random, as make-fixtures.py does),
saves it, and compares transformers' logits with moe-run's on the folder;
where moe-import takes the config, it also exports the folder with
moe-export and has transformers read the export back. It prints one line a
model and a summary: how many agree (the largest difference, at the
largest logit), how many exports read back to the same logits, which
family each export took, and why moe-import refused the others.
"""
import argparse
import collections
import json
import os
import random
import shutil
import subprocess

import torch
import transformers
from safetensors.torch import load_file, save_file

import trained_scale


def attention(rng):
    heads = rng.choice([1, 2, 4])
    return dict(vocab_size=32, hidden_size=rng.choice([8, 16, 32]),
                num_hidden_layers=rng.randint(1, 4),
                num_attention_heads=heads,
                num_key_value_heads=rng.choice(
                    [h for h in [1, 2, 4] if heads % h == 0]),
                head_dim=rng.choice([4, 8, 16]),
                intermediate_size=rng.choice([16, 24, 40]),
                max_position_embeddings=64,
                tie_word_embeddings=rng.random() < 0.5, rms_norm_eps=1e-5)


def ernie4_5_moe(rng):
    config = attention(rng)
    layers = config["num_hidden_layers"]
    experts = rng.choice([2, 4, 8])
    start = rng.randint(0, layers - 1)
    config.update(moe_num_experts=experts,
                  moe_k=rng.randint(1, min(4, experts)),
                  moe_intermediate_size=rng.choice([8, 16, 24]),
                  moe_num_shared_experts=rng.choice([0, 1, 2]),
                  moe_layer_start_index=start,
                  moe_layer_end_index=rng.choice(
                      [-1, rng.randint(start, layers - 1)]),
                  moe_layer_interval=rng.choice([1, 1, 2, 3]),
                  rope_parameters={"rope_type": "default",
                                   "rope_theta": rng.choice([1e4, 5e5])})
    return transformers.Ernie4_5_MoeConfig(**config)


def hy_v3(rng):
    config = attention(rng)
    experts = rng.choice([2, 4, 8])
    config.update(num_experts=experts,
                  num_experts_per_tok=rng.randint(1, min(4, experts)),
                  moe_intermediate_size=rng.choice([8, 16, 24]),
                  num_shared_experts=rng.choice([1, 2]),
                  mlp_layer_types=[rng.choice(["dense", "sparse"])
                                   for _ in range(config["num_hidden_layers"])],
                  router_scaling_factor=rng.choice([1.0, 1.5, 2.826, 0.7]),
                  rope_parameters={"rope_type": "default",
                                   "rope_theta": rng.choice([1e4, 11158840.0])})
    return transformers.HYV3Config(**config)


def glm4_moe_layers(rng, config_class):
    """GLM-4-MoE's model under `config_class` (Sarvam-MoE's, Param2-MoE's)."""
    config = attention(rng)
    experts = rng.choice([2, 4, 8])
    groups = rng.choice([g for g in [1, 2] if experts // g >= 2])
    chosen = rng.randint(1, groups)
    config.update(n_routed_experts=experts,
                  num_experts_per_tok=rng.randint(
                      1, min(4, chosen * experts // groups)),
                  moe_intermediate_size=rng.choice([8, 16, 24]),
                  n_shared_experts=rng.choice([1, 2]),
                  first_k_dense_replace=rng.randint(
                      0, config["num_hidden_layers"] - 1),
                  n_group=groups, topk_group=chosen,
                  norm_topk_prob=rng.random() < 0.5,
                  routed_scaling_factor=rng.choice([1.0, 2.5, 0.7]),
                  use_qk_norm=rng.random() < 0.8,
                  attention_bias=rng.random() < 0.5,
                  rope_parameters={"rope_type": "default",
                                   "rope_theta": rng.choice([1e4, 8e6]),
                                   "partial_rotary_factor":
                                       rng.choice([1.0, 1.0, 0.5])})
    return config_class(**config)


def latent_attention(rng, config_class):
    """GLM-4-MoE's layers under multi-head latent attention: one head per
    key and value, random latent widths, queries through a latent or not,
    values narrower, as wide as or wider than the query heads, RoPE's
    pairs or halves, YaRN with mscale_all_dim or the default RoPE.
    DeepSeek-V3's dense layers come first, GLM-4-MoE-Lite's anywhere."""
    config = glm4_moe_layers(rng, dict)
    if config_class is transformers.Glm4MoeLiteConfig:
        del config["first_k_dense_replace"]
        layers = config["num_hidden_layers"]
        types = [rng.choice(["dense", "sparse"]) for _ in range(layers)]
        types[rng.randrange(layers)] = "sparse"
        config["mlp_layer_types"] = types
    for key in ("use_qk_norm", "attention_bias", "head_dim"):
        config.pop(key)
    config["num_key_value_heads"] = config["num_attention_heads"]
    nope, rope = rng.choice([2, 4, 6]), rng.choice([2, 4, 8])
    config.update(q_lora_rank=rng.choice([None, 8, 12]),
                  kv_lora_rank=rng.choice([4, 8, 16]),
                  qk_nope_head_dim=nope, qk_rope_head_dim=rope,
                  v_head_dim=rng.choice([4, nope + rope, 12]),
                  rope_interleave=rng.random() < 0.5)
    theta = rng.choice([1e4, 8e6])
    config["rope_parameters"] = rng.choice([
        {"rope_type": "default", "rope_theta": theta},
        {"rope_type": "yarn", "rope_theta": theta, "factor": 4.0,
         "original_max_position_embeddings": 16,
         "mscale": rng.choice([0.707, 1.0]),
         "mscale_all_dim": rng.choice([0.707, 1.0])}])
    return config_class(**config)


def deepseek_v2(rng):
    """The same attention (RoPE always turning pairs) over DeepSeek-V2's
    MoE layers: softmax scores, never renormalized, chosen among all
    experts or within groups scored by their best expert."""
    config = latent_attention(rng, dict)
    for key in ("norm_topk_prob", "rope_interleave"):
        config.pop(key)
    experts = config["n_routed_experts"]
    groups = rng.choice([g for g in [1, 2, 4] if experts % g == 0])
    chosen = rng.randint(1, groups)
    config.update(topk_method=rng.choice(["greedy", "group_limited_greedy"]),
                  n_group=groups, topk_group=chosen,
                  num_experts_per_tok=rng.randint(
                      1, min(4, chosen * experts // groups)))
    return transformers.DeepseekV2Config(**config)


def multipliers(rng):
    """muP's, as Granite's classes read them (or left at their 1s)."""
    return {key: rng.choice([1.0, value]) for key, value in (
        ("embedding_multiplier", rng.uniform(1, 12)),
        ("attention_multiplier", rng.uniform(0.01, 1)),
        ("residual_multiplier", rng.uniform(0.1, 1)),
        ("logits_scaling", rng.uniform(1, 10)))}


def granitemoe_keys(rng):
    config = attention(rng)
    experts = rng.choice([2, 4, 8])
    config.update(num_local_experts=experts,
                  num_experts_per_tok=rng.randint(1, min(4, experts)),
                  **multipliers(rng))
    return config


def granitemoeshared(rng):
    """Granite MoE with a shared MLP of any width (or none)."""
    return transformers.GraniteMoeSharedConfig(
        **granitemoe_keys(rng),
        shared_intermediate_size=rng.choice([0, rng.randint(1, 48)]))


def minicpm5_moe(rng):
    """DeepSeek-V3's layers on a gated attention, the dense layers placed by
    mlp_layer_types (anywhere) or by first_k_dense_replace (odd seeds'
    configs say those by first_k_dense_replace, first_dense_spelling)."""
    config = attention(rng)
    layers = config["num_hidden_layers"]
    experts = rng.choice([2, 4, 8])
    groups = rng.choice([g for g in [1, 2] if experts // g >= 2])
    chosen = rng.randint(1, groups)
    types = ["sparse"] * layers
    for layer in rng.sample(range(layers), rng.randint(0, layers - 1)):
        types[layer] = "dense"
    placement = rng.choice([
        {"mlp_layer_types": types},
        {"first_k_dense_replace": rng.randint(0, layers - 1)}])
    config.update(n_routed_experts=experts,
                  num_experts_per_tok=rng.randint(
                      1, min(4, chosen * experts // groups)),
                  moe_intermediate_size=rng.choice([8, 16, 24]),
                  n_shared_experts=rng.choice([1, 2]),
                  n_group=groups, topk_group=chosen,
                  norm_topk_prob=rng.random() < 0.5,
                  routed_scaling_factor=rng.choice([1.0, 2.5, 0.7]),
                  rope_parameters={"rope_type": "default",
                                   "rope_theta": rng.choice([1e4, 5e6])},
                  **placement)
    return transformers.MiniCPM5MoeConfig(**config)


def ntk_alpha_rope(rng):
    """HunYuan's RoPE: by an NTK alpha or unscaled."""
    if rng.random() < 0.5:
        return {"rope_type": "dynamic", "rope_theta": 1e4, "factor": 1.0,
                "alpha": rng.choice([2.0, 4.0, 1000.0])}
    return {"rope_type": "default", "rope_theta": 1e4}


def hunyuan_v1_moe(rng):
    """Top-k as one number or per layer."""
    config = attention(rng)
    experts = rng.choice([2, 4, 8])
    top_k = rng.randint(1, min(4, experts))
    config.update(num_experts=experts,
                  moe_topk=rng.choice(
                      [top_k, [top_k] * config["num_hidden_layers"]]),
                  rope_parameters=ntk_alpha_rope(rng))
    return transformers.HunYuanMoEV1Config(**config)


def sliding_window(rng, config, switched=True):
    """A window of 1 to 9 positions (of the campaign's 8) for the layers
    that max_window_layers picks, or that a random layer_types names."""
    layers = config["num_hidden_layers"]
    config.update(sliding_window=rng.randint(1, 9),
                  max_window_layers=rng.randint(0, layers))
    if switched:
        config["use_sliding_window"] = rng.random() < 0.8
    if rng.random() < 0.5:
        config["layer_types"] = [
            rng.choice(["sliding_attention", "full_attention"])
            for _ in range(layers)]
    return config


def routed_experts(rng, experts_key):
    """2, 4 or 8 experts under `experts_key`, a top-k and their width."""
    experts = rng.choice([2, 4, 8])
    return {experts_key: experts,
            "num_experts_per_tok": rng.randint(1, min(4, experts)),
            "moe_intermediate_size": rng.choice([8, 16, 24])}


def qwen2_moe_window(rng):
    config = sliding_window(rng, attention(rng))
    config.update(routed_experts(rng, "num_experts"),
                  shared_expert_intermediate_size=rng.choice([8, 20]),
                  norm_topk_prob=rng.random() < 0.5)
    return transformers.Qwen2MoeConfig(**config)


def dots1_window(rng):
    config = sliding_window(rng, attention(rng), switched=False)
    config.update(routed_experts(rng, "n_routed_experts"),
                  n_shared_experts=rng.choice([1, 2]),
                  first_k_dense_replace=rng.randint(
                      0, config["num_hidden_layers"] - 1))
    return transformers.Dots1Config(**config)


def mixtral_window(rng):
    config = attention(rng)
    experts = routed_experts(rng, "num_local_experts")
    # Mixtral's experts are intermediate_size wide.
    experts["intermediate_size"] = experts.pop("moe_intermediate_size")
    config.update(experts, sliding_window=rng.randint(1, 9))
    return transformers.MixtralConfig(**config)


def exaone_layers(rng, config, nullable=True):
    """A window of 1 to 9 positions on all but every sliding_window_pattern-th
    layer or on those a random layer_types names, the other layers without
    RoPE; or none, every layer full_attention (in layer_types, which a null
    window needs) and rotating."""
    layers = config["num_hidden_layers"]
    windows = [rng.randint(1, 9)] + ([None] if nullable else [])
    config.update(sliding_window=rng.choice(windows),
                  sliding_window_pattern=rng.choice([1, 2, 4, -2]))
    # Its model fails on a sliding layer without a window.
    if config["sliding_window"] is None:
        config["layer_types"] = ["full_attention"] * layers
    elif rng.random() < 0.5:
        config["layer_types"] = [
            rng.choice(["sliding_attention", "full_attention"])
            for _ in range(layers)]
    return config


def exaone_moe(rng):
    """EXAONE 4's layers with DeepSeek-V3's MoE layers (in groups), the
    dense layers placed by mlp_layer_types; its class refuses a null
    window."""
    config = exaone_layers(rng, attention(rng), nullable=False)
    layers = config["num_hidden_layers"]
    experts = routed_experts(rng, "num_experts")
    count = experts["num_experts"]
    groups = rng.choice([g for g in [1, 2] if count // g >= 2])
    chosen = rng.randint(1, groups)
    experts["num_experts_per_tok"] = rng.randint(
        1, min(4, chosen * count // groups))
    types = ["sparse"] * layers
    for layer in rng.sample(range(layers), rng.randint(0, layers - 1)):
        types[layer] = "dense"
    config.update(experts, num_shared_experts=rng.choice([1, 2]),
                  n_group=groups, topk_group=chosen,
                  norm_topk_prob=rng.random() < 0.5,
                  routed_scaling_factor=rng.choice([1.0, 2.5, 0.7]),
                  mlp_layer_types=types)
    return transformers.ExaoneMoeConfig(**config)


def olmo3(rng):
    """OLMo 2's layers, a window of 1 to 9 positions on all but every fourth
    layer or on those a random layer_types names, each layer type's RoPE
    drawn apart (unscaled, linear or YaRN, bases 10 to 5e5)."""
    config = attention(rng)

    def rope():
        kind = rng.choice(["default", "linear", "yarn"])
        params = {"rope_type": kind, "rope_theta": rng.choice([10.0, 1e4, 5e5])}
        if kind != "default":
            params["factor"] = rng.choice([2.0, 4.0])
        if kind == "yarn":
            params["original_max_position_embeddings"] = 16
        return params

    config.update(sliding_window=rng.randint(1, 9), pad_token_id=1,
                  rope_parameters={"full_attention": rope(),
                                   "sliding_attention": rope()})
    if rng.random() < 0.5:
        config["layer_types"] = [
            rng.choice(["sliding_attention", "full_attention"])
            for _ in range(config["num_hidden_layers"])]
    return transformers.Olmo3Config(**config)


def granite(rng):
    return transformers.GraniteConfig(**attention(rng), **multipliers(rng))


def swa_layers(rng, config):
    """GraniteSWA's attention: a window of 1 to 9 positions on all but
    every fourth layer from the first or on those a random layer_types
    names, and each layer's RoPE base drawn (0: none) or rope_parameters'
    for all; the sinks are the model's parameters."""
    layers = config["num_hidden_layers"]
    config["sliding_window"] = rng.randint(1, 9)
    if rng.random() < 0.5:
        config["layer_types"] = [
            rng.choice(["sliding_attention", "full_attention"])
            for _ in range(layers)]
    if rng.random() < 0.7:
        config["layer_rope_theta"] = [rng.choice([0, 10.0, 500.0, 1e4])
                                      for _ in range(layers)]
    return config


def olmo2(rng):
    return transformers.Olmo2Config(**attention(rng), pad_token_id=1)


def flex_olmo(rng):
    config = attention(rng)
    experts = rng.choice([2, 4, 8])
    config.update(num_experts=experts,
                  num_experts_per_tok=rng.randint(1, min(4, experts)),
                  norm_topk_prob=rng.random() < 0.5, pad_token_id=0)
    return transformers.FlexOlmoConfig(**config)


FAMILIES = {"ernie4_5_moe": ernie4_5_moe, "hy_v3": hy_v3,
            "deepseek_v3": lambda rng: latent_attention(
                rng, transformers.DeepseekV3Config),
            "deepseek_v2": deepseek_v2,
            "glm4_moe_lite": lambda rng: latent_attention(
                rng, transformers.Glm4MoeLiteConfig),
            "olmo2": olmo2, "flex_olmo": flex_olmo,
            "granitemoe": lambda rng: transformers.GraniteMoeConfig(
                **granitemoe_keys(rng)),
            "granitemoeshared": granitemoeshared, "granite": granite,
            "hunyuan_v1_moe": hunyuan_v1_moe,
            "hunyuan_v1_dense": lambda rng: transformers.HunYuanDenseV1Config(
                **attention(rng), rope_parameters=ntk_alpha_rope(rng)),
            "minicpm5_moe": minicpm5_moe,
            "qwen2_moe_window": qwen2_moe_window,
            "dots1_window": dots1_window, "mixtral_window": mixtral_window,
            "exaone4": lambda rng: transformers.Exaone4Config(
                **exaone_layers(rng, attention(rng))),
            "exaone_moe": exaone_moe, "olmo3": olmo3,
            "granite_swa": lambda rng: transformers.GraniteSWAConfig(
                **swa_layers(rng, attention(rng)), **multipliers(rng)),
            "granitemoe_swa": lambda rng: transformers.GraniteMoeSWAConfig(
                **swa_layers(rng, granitemoe_keys(rng)),
                shared_intermediate_size=rng.choice([0, rng.randint(1, 48)])),
            "qwen3_window": lambda rng: transformers.Qwen3Config(
                **sliding_window(rng, attention(rng))),
            "sarvam_moe": lambda rng: glm4_moe_layers(
                rng, transformers.SarvamMoEConfig),
            "param2moe": lambda rng: glm4_moe_layers(
                rng, transformers.Param2MoeConfig)}

# Keys that half of a family's configs spell as its released configs do
# (attribute_map), renamed in the saved config.json.
RELEASED_SPELLINGS = {
    family: {"n_routed_experts": "num_experts",
             "n_shared_experts": "num_shared_experts",
             "attention_bias": "use_qkv_bias"}
    for family in ("sarvam_moe", "param2moe")}


def first_dense_spelling(saved):
    """MiniCPM5-MoE's config without mlp_layer_types (its config class
    writes them out), where its dense layers come first: by
    first_k_dense_replace instead."""
    types = saved["mlp_layer_types"]
    first = next((i for i, kind in enumerate(types) if kind != "dense"),
                 len(types))
    if "dense" not in types[first:]:
        del saved["mlp_layer_types"]
        saved["first_k_dense_replace"] = first


def pattern_spelling(saved, first):
    """EXAONE 4's, OLMo 3's and GraniteSWA's config without layer_types
    (their config classes write them out), where their
    sliding_window_pattern (OLMo 3's and GraniteSWA's 4) derives them:
    GraniteSWA's layers that attend to all come `first` in each period."""
    # EXAONE's class sets the pattern to 0 where the window is null.
    if saved["sliding_window"] is None:
        return
    pattern = abs(saved.get("sliding_window_pattern", 4))
    shift = 0 if first else 1
    derived = ["sliding_attention" if (layer + shift) % pattern else
               "full_attention" for layer in range(len(saved["layer_types"]))]
    if saved["layer_types"] == derived:
        del saved["layer_types"]


def run(command):
    return subprocess.run(command, shell=True, capture_output=True, text=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("family", choices=sorted(FAMILIES))
    parser.add_argument("count", type=int)
    parser.add_argument("first_seed", type=int, nargs="?", default=0)
    parser.add_argument("--bin", default="build/bin")
    parser.add_argument("--work", default="/tmp/campaign")
    args = parser.parse_args()
    agree, refused, exports = [], collections.Counter(), collections.Counter()
    for seed in range(args.first_seed, args.first_seed + args.count):
        folder = os.path.join(args.work, f"{args.family}-{seed}")
        shutil.rmtree(folder, ignore_errors=True)
        torch.manual_seed(seed)
        config = FAMILIES[args.family](random.Random(seed))
        model = transformers.AutoModelForCausalLM.from_config(config)
        trained_scale.randomize(model)
        model.eval().save_pretrained(folder)
        spellings = RELEASED_SPELLINGS.get(args.family, {})
        full_first = args.family in ("granite_swa", "granitemoe_swa")
        patterned = full_first or args.family in (
            "exaone4", "exaone_moe", "olmo3")
        if (spellings or args.family == "minicpm5_moe" or patterned) and \
                seed % 2:
            path = os.path.join(folder, "config.json")
            saved = json.load(open(path))
            for key, spelling in spellings.items():
                saved[spelling] = saved.pop(key)
            if args.family == "minicpm5_moe":
                first_dense_spelling(saved)
            if patterned:
                pattern_spelling(saved, full_first)
            json.dump(saved, open(path, "w"), indent=2)
        # By model_type: a class's own config class could drop another
        # family's defaults and checkpoint names (Sarvam-MoE's).
        model = transformers.AutoModelForCausalLM.from_pretrained(
            folder, dtype=torch.float32).eval()
        ids = torch.randint(0, 32, (2, 8),
                            generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            logits = model(input_ids=ids).logits.float()
        save_file({"input_ids": ids.to(torch.int32)},
                  os.path.join(folder, "inputs.safetensors"))
        ours = run(f"{args.bin}/moe-import {folder}/config.json --batch-size 2 "
                   f"--seq-len 8 -o {folder}/model.mlir && {args.bin}/moe-run "
                   f"{folder}/model.mlir --entry logits --params {folder} "
                   f"--inputs {folder}/inputs.safetensors --output "
                   f"{folder}/logits.safetensors")
        if ours.returncode:
            reason = ours.stderr.strip().splitlines()[-1].split(": ", 3)[-1]
            refused[reason] += 1
            print(seed, "refused:", reason)
            continue
        difference = (load_file(os.path.join(folder, "logits.safetensors"))
                      ["logits"] - logits).abs().max().item()
        exported = run(f"{args.bin}/moe-export {folder} -o {folder}/export")
        back = None
        if not exported.returncode:
            family = json.load(open(os.path.join(
                folder, "export", "config.json")))["model_type"]
            reloaded = transformers.AutoModelForCausalLM.from_pretrained(
                os.path.join(folder, "export"), dtype=torch.float32).eval()
            with torch.no_grad():
                back = (reloaded(input_ids=ids).logits.float()
                        - logits).abs().max().item()
            exports[(family, back == 0)] += 1
        else:
            exports[("refused: " + exported.stderr.strip()[-200:], False)] += 1
        agree.append((difference, logits.abs().max().item()))
        print(seed, "logits within", difference, "export", back)
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{len(agree)} of {args.count} imported", end="")
    if agree:
        print(f", logits within {max(d for d, _ in agree):.3g} (logits up to "
              f"{max(m for _, m in agree):.3g})", end="")
    print()
    for (family, same), count in sorted(exports.items()):
        print(f"  exported as {family}: {count}"
              + (", read back to the same logits" if same else ""))
    for reason, count in refused.most_common():
        print(f"  refused ({count}): {reason}")


if __name__ == "__main__":
    main()
