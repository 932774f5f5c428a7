#!/usr/bin/env bash
# Adaptive versus fixed auxiliary-loss coefficients (Skywork-MoE section
# 3.2), all with gating logit normalization (lambda = 1):
# - fixed-0.01: alpha = 0.01 in every layer;
# - adaptive-paper: moe-adaptive-aux with the paper's xi = 0.2,
#   alpha_max = 0.01, beta = 0.99, from alpha = 0;
# - fixed-0.3: alpha = 0.3 in every layer;
# - adaptive-scaled: xi = 1, alpha_max = 1, beta = 0.99 from alpha = 0.3, a
#   range in which this small model's drop rates (15-50% at capacity 1.0)
#   do not saturate the clamp.
# Writes $BUILD_DIR/ablations/adaptive-aux/adaptive-aux.csv and
# adaptive-aux.png (training loss, drop rate, alpha per layer, aux loss
# against tokens). See common.sh for the model and the environment.
ablation=adaptive-aux
source "$(dirname "$0")/common.sh"

train_variant fixed-0.01 "router_aux_loss_coef=0.01" --gate-norm 1
train_variant adaptive-paper "" --gate-norm 1 \
  --adaptive-aux="xi=0.2 alpha-max=0.01 beta=0.99 initial-alpha=0"
train_variant fixed-0.3 "router_aux_loss_coef=0.3" --gate-norm 1
train_variant adaptive-scaled "" --gate-norm 1 \
  --adaptive-aux="xi=1 alpha-max=1 beta=0.99 initial-alpha=0.3"

"$python" benchmarks/ablations/plot.py adaptive-aux "$work" \
  fixed-0.01 adaptive-paper fixed-0.3 adaptive-scaled
