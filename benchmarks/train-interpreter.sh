#!/usr/bin/env bash
# Trains the tiny MoE (4 layers, d=128, 8 experts top-2, byte vocabulary) in
# the reference interpreter for 300 AdamW steps (batch 8, context 64) on
# tinyshakespeare and checks that the loss falls from about ln(256) = 5.55 to
# below 2.5 (mean of the last 10 steps). Takes about 10 minutes on 2 cores.
#
# usage: benchmarks/train-interpreter.sh [DATA] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BUILD_DIR:-build}/bin
data=${1:-../shared/data/tinyshakespeare.txt}
steps=${2:-300}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bin/moe-import" examples/tiny-moe/config.json --batch-size 8 --seq-len 64 -o "$work/model.mlir"
"$bin/moe-opt" "$work/model.mlir" --moe-autodiff \
  --moe-optimizer="lr=3e-3 min-lr=3e-4 warmup-steps=30 decay-steps=$steps weight-decay=0.1 beta2=0.99" \
  -o "$work/train.mlir"
"$bin/moe-run" "$work/train.mlir" --entry train_step --steps "$steps" --seed 0 \
  --data "$data" --data-seed 0 | tee "$work/log.txt"

awk -v steps="$steps" '
  /^step / { loss[++n] = $4 }
  END {
    first = loss[1]; tail = 0; k = (n < 10 ? n : 10)
    for (i = n - k + 1; i <= n; ++i) tail += loss[i]
    tail /= k
    printf "first loss %.4f, mean of last %d losses %.4f (target < 2.5)\n", first, k, tail
    exit !(tail < 2.5)
  }' "$work/log.txt"
