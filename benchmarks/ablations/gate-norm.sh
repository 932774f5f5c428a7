#!/usr/bin/env bash
# Skywork-MoE Figure 3 at small scale: gating logit normalization off versus
# lambda = 0.5, 1 and 2. Writes $BUILD_DIR/ablations/gate-norm/gate-norm.csv
# and gate-norm.png (training loss, token drop rate, Max1/Max2 and
# Max2/Max3 of layer 1 against tokens). See common.sh for the model and the
# environment.
ablation=gate-norm
source "$(dirname "$0")/common.sh"

train_variant no-norm "" --gate-norm 0
train_variant lambda-0.5 "" --gate-norm 0.5
train_variant lambda-1 "" --gate-norm 1
train_variant lambda-2 "" --gate-norm 2

"$python" benchmarks/ablations/plot.py gate-norm "$work" \
  no-norm lambda-0.5 lambda-1 lambda-2
