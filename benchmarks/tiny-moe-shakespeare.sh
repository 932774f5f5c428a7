#!/usr/bin/env bash
# nanoGPT's CPU recipe for the tiny MoE on tinyshakespeare, compiled by this
# project, against a straightforward PyTorch (CPU, eager) implementation of
# the same model (benchmarks/pytorch_moe.py) measured in the same run.
#
# Model: 4 layers, 4 heads, d=128, context 64, 8 experts top-2, expert hidden
# 352, capacity factor 1.25, character vocabulary, 90/10 split. Training:
# batch 12, 2000 iterations, AdamW lr 1e-3 (beta2 0.99), 100 warmup steps,
# cosine decay to 1e-4, clipping 1.0, weight decay 0.1.
# Targets: validation loss <= 1.80; median step time at least 2x faster than
# PyTorch's best of 1 and 2 threads.
#
# usage: [PRECISION=bf16] benchmarks/tiny-moe-shakespeare.sh [DATA] [STEPS]
# PRECISION (f32 by default) is moe-compile's --precision; PyTorch stays f32.
# PROFILE=1: build with --profile, which prints where the steps' time goes
# per kernel and call site.
# Needs Python with PyTorch: set PYTHON, or the script makes a venv under
# build/bench-venv and installs torch from PyPI (a few GB).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BUILD_DIR:-build}/bin
data=${1:-../shared/data/tinyshakespeare.txt}
steps=${2:-2000}
precision=${PRECISION:-f32}
work=${BUILD_DIR:-build}/bench-tiny-moe-$precision
mkdir -p "$work"

echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-<unset>} (both sides run under these)"

# Character vocabulary, as nanoGPT's shakespeare_char.
vocab=$(python3 benchmarks/char-tokens.py "$data" "$work/tokens.bin")
python3 test/Inputs/edit-json.py examples/tiny-moe/config.json \
  vocab_size="$vocab" moe_capacity_factor=1.25 > "$work/config.json"
"$bin/moe-compile" "$work/config.json" --batch-size 12 --seq-len 64 --precision "$precision" ${PROFILE:+--profile} \
  --optimizer "lr=1e-3 min-lr=1e-4 warmup-steps=100 decay-steps=2000 beta2=0.99 weight-decay=0.1 max-grad-norm=1.0" \
  -o "$work/train-shakespeare-moe"

rm -f "$work/metrics.jsonl"
"$work/train-shakespeare-moe" --data "$work/tokens.bin" --steps "$steps" \
  --eval-interval 500 --eval-batches 200 --log-interval 100 \
  --metrics "$work/metrics.jsonl" --sample-tokens 0

python=${PYTHON:-}
if [ -z "$python" ]; then
  python=${BUILD_DIR:-build}/bench-venv/bin/python
  if ! "$python" -c "import torch" 2>/dev/null; then
    python3 -m venv "${BUILD_DIR:-build}/bench-venv"
    "${BUILD_DIR:-build}/bench-venv/bin/pip" install -q torch numpy
  fi
fi
torch1=$("$python" benchmarks/pytorch_moe.py --tokens "$work/tokens.bin" --config "$work/config.json" --batch 12 --seq 64 --threads 1 --steps 40)
torch2=$("$python" benchmarks/pytorch_moe.py --tokens "$work/tokens.bin" --config "$work/config.json" --batch 12 --seq 64 --threads 2 --steps 40)

python3 - "$work/metrics.jsonl" "$torch1" "$torch2" <<'PY'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
steps = [l for l in lines if "step_seconds" in l]
val = [l["val_loss"] for l in lines if "val_loss" in l]
ours = 1000 * statistics.median(l["step_seconds"] for l in steps)
tokens = statistics.median(l["tokens_per_second"] for l in steps)
torch1, torch2 = float(sys.argv[2]), float(sys.argv[3])
best = min(torch1, torch2)
print("validation loss %.4f (target <= 1.80)" % val[-1])
print("compiled: median step %.1f ms, %.0f tokens/s" % (ours, tokens))
print("pytorch eager: median step %.1f ms (1 thread), %.1f ms (2 threads)" % (torch1, torch2))
print("speedup over pytorch's best: %.2fx (target >= 2x)" % (best / ours))
ok = val[-1] <= 1.80 and best / ours >= 2
print("targets met" if ok else "targets NOT met")
sys.exit(0 if ok else 1)
PY
