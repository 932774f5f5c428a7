#!/usr/bin/env bash
# nanoGPT's CPU recipe for the tiny MoE on tinyshakespeare, compiled by this
# project, against a straightforward PyTorch (CPU) implementation of the
# same model (benchmarks/pytorch_moe.py), eager and under torch.compile,
# measured in the same run, with this machine's GEMM peak (moe-gemm-peak).
#
# Model: 4 layers, 4 heads, d=128, context 64, 8 experts top-2, expert hidden
# 352, capacity factor 1.25, character vocabulary, 90/10 split. Training:
# batch 12, 2000 iterations, AdamW lr 1e-3 (beta2 0.99), 100 warmup steps,
# cosine decay to 1e-4, clipping 1.0, weight decay 0.1.
# Targets: validation loss <= 1.80; median step time at least 3x faster than
# PyTorch eager and 2x faster than torch.compile, each at its best of 1 and 2
# threads, against the compiled steps run right before it. The model's GEMM
# flops (moe-cost-model) at the probe's rate for the experts' products, one
# per thread as the expert kernels run them, give the step time its GEMMs
# alone would take at that peak.
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

source benchmarks/common.sh
report_machine
character_corpus "$data" "$work"
"$bin/moe-compile" "$work/config.json" --batch-size 12 --seq-len 64 --precision "$precision" ${PROFILE:+--profile} \
  --optimizer "lr=1e-3 min-lr=1e-4 warmup-steps=100 decay-steps=2000 beta2=0.99 weight-decay=0.1 max-grad-norm=1.0" \
  -o "$work/train-shakespeare-moe"
"$bin/moe-gemm-peak" > "$work/gemm-peak.jsonl"
"$bin/moe-import" "$work/config.json" --batch-size 12 --seq-len 64 -o "$work/model.mlir"
"$bin/moe-opt" "$work/model.mlir" --moe-train-pipeline --moe-cost-model \
  -o /dev/null > "$work/cost.txt" 2>&1

rm -f "$work/metrics.jsonl" "$work/trained.ckpt"
"$work/train-shakespeare-moe" --data "$work/tokens.bin" --steps "$steps" \
  --eval-interval 500 --eval-batches 200 --log-interval 100 \
  --metrics "$work/metrics.jsonl" --sample-tokens 0 \
  --checkpoint "$work/trained.ckpt"

python=${PYTHON:-}
if [ -z "$python" ]; then
  python=${BUILD_DIR:-build}/bench-venv/bin/python
  if ! "$python" -c "import torch" 2>/dev/null; then
    python3 -m venv "${BUILD_DIR:-build}/bench-venv"
    "${BUILD_DIR:-build}/bench-venv/bin/pip" install -q torch numpy
  fi
fi
# Each PyTorch run follows 45 more compiled steps, resumed from the trained
# model (its routing, not a fresh model's), so that each pair of medians
# comes from the same few minutes of this machine, whose speed wanders.
torch=()
for mode in eager compile; do
  for threads in 1 2; do
    rm -f "$work/paired-$mode-$threads.jsonl"
    "$work/train-shakespeare-moe" --data "$work/tokens.bin" \
      --resume "$work/trained.ckpt" --steps $((steps + 45)) --eval-interval 0 \
      --eval-batches 1 --log-interval 1000 --similarity-interval 0 \
      --sample-tokens 0 --metrics "$work/paired-$mode-$threads.jsonl" > /dev/null
    flags=(--tokens "$work/tokens.bin" --config "$work/config.json" --batch 12 --seq 64 --threads "$threads" --steps 40)
    [ "$mode" = compile ] && flags+=(--compile)
    torch+=("$mode-$threads=$("$python" benchmarks/pytorch_moe.py "${flags[@]}")")
  done
done

python3 - "$work" "${torch[@]}" <<'PY'
import json, re, statistics, sys
work = sys.argv[1]
torch = {k: float(v) for k, v in (a.split("=") for a in sys.argv[2:])}
def step_seconds(path):
    return [l["step_seconds"] for l in map(json.loads, open(path))
            if "step_seconds" in l]
lines = [json.loads(l) for l in open(f"{work}/metrics.jsonl")]
steps = [l for l in lines if "step_seconds" in l]
val = [l["val_loss"] for l in lines if "val_loss" in l]
ours = 1000 * statistics.median(l["step_seconds"] for l in steps)
tokens = statistics.median(l["tokens_per_second"] for l in steps)
gemm_flops = sum(int(x) for x in re.findall(r"gemm (\d+) flops", open(f"{work}/cost.txt").read()))
peaks = {(l["gemm"], l["precision"]): l["gflops"] for l in map(json.loads, open(f"{work}/gemm-peak.jsonl"))}
peak = peaks[("tiny-expert-per-thread", "f32")]
print("validation loss %.4f (target <= 1.80)" % val[-1])
print("compiled: median step %.1f ms, %.0f tokens/s" % (ours, tokens))
print("GEMMs: %.1f GFLOP a step (balanced routing), %.1f ms at the f32 tiny-expert "
      "rate of %.0f GFLOP/s (moe-gemm-peak, one product per thread)"
      % (gemm_flops / 1e9, gemm_flops / peak / 1e6, peak))
ok = val[-1] <= 1.80
for mode, target in (("eager", 3), ("compile", 2)):
    best = min(("1", "2"), key=lambda t: torch[f"{mode}-{t}"])
    paired = {t: 1000 * statistics.median(
        step_seconds(f"{work}/paired-{mode}-{t}.jsonl")[5:]) for t in "12"}
    ratio = torch[f"{mode}-{best}"] / paired[best]
    print("pytorch %s: median step %.1f ms (1 thread), %.1f ms (2 threads); "
          "compiled right before each: %.1f and %.1f ms; %.2fx at PyTorch's "
          "best (target >= %dx), %.2fx against the training run's median"
          % (mode, torch[f"{mode}-1"], torch[f"{mode}-2"], paired["1"],
             paired["2"], ratio, target, torch[f"{mode}-{best}"] / ours))
    ok = ok and ratio >= target
print("targets met" if ok else "targets NOT met")
sys.exit(0 if ok else 1)
PY
