#!/usr/bin/env bash
# Adaptive versus fixed auxiliary-loss coefficients (Skywork-MoE section 3.2):
# a fixed alpha = 0.01 in every layer against moe-adaptive-aux with the
# paper's xi = 0.2, alpha_max = 0.01, beta = 0.99, starting from 0.01.
# Writes $BUILD_DIR/ablations/adaptive-aux/adaptive-aux.csv and
# adaptive-aux.png (training loss, drop rate, alpha per layer against
# tokens). See common.sh for the model and the environment.
ablation=adaptive-aux
source "$(dirname "$0")/common.sh"

train_variant fixed
train_variant adaptive --adaptive-aux="xi=0.2 alpha-max=0.01 beta=0.99 initial-alpha=0.01"

"$python" benchmarks/ablations/plot.py adaptive-aux "$work" fixed adaptive
