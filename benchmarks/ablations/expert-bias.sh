#!/usr/bin/env bash
# Auxiliary-loss-free balancing (DeepSeek-V3: sigmoid scores, a per-layer
# expert bias moved by the load) against Skywork's aux loss, without gating
# logit normalization:
# - softmax-aux: softmax gate, Skywork aux loss at alpha = 0.01 (the
#   reference of the other ablations, unnormalized);
# - sigmoid-none: sigmoid scores, no aux loss, no bias (nothing balances);
# - sigmoid-bias-0.001: sigmoid scores, no aux loss, the bias at DeepSeek-
#   V3's rate 1e-3 (moe-compile --expert-bias-rate);
# - sigmoid-bias-0.01: the same at rate 1e-2.
# Writes $BUILD_DIR/ablations/expert-bias/expert-bias.csv and
# expert-bias.png. See common.sh for the model and the environment.
ablation=expert-bias
source "$(dirname "$0")/common.sh"

sigmoid="moe_router_score_function=\"sigmoid\" router_aux_loss_coef=0"
train_variant softmax-aux "router_aux_loss_coef=0.01"
train_variant sigmoid-none "$sigmoid"
train_variant sigmoid-bias-0.001 "$sigmoid moe_router_enable_expert_bias=true" \
  --expert-bias-rate 0.001
train_variant sigmoid-bias-0.01 "$sigmoid moe_router_enable_expert_bias=true" \
  --expert-bias-rate 0.01

"$python" benchmarks/ablations/plot.py expert-bias "$work" \
  softmax-aux sigmoid-none sigmoid-bias-0.001 sigmoid-bias-0.01
