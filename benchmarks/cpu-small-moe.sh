#!/usr/bin/env bash
# The small MoE (issue 15's CPU config) compiled in f32 and in bf16 mixed
# precision, against the GEMM peak of this machine and against PyTorch
# (eager and torch.compile, f32 and bf16 autocast, best of 1 and 2 threads),
# all in the same run.
#
# Model: 8 layers, hidden 512, 8 heads, 16 experts top-2, expert hidden
# 1408, context 256, batch 8, character vocabulary, capacity factor 1.25.
# Reports, per precision: start-up ("ready in"), median step time, the model
# FLOPs of a step (moe-cost-model: GEMMs and attention) and its rate as a
# fraction of the f32 GEMM peak (moe-gemm-peak), and the train step's peak
# activation memory (moe-plan-memory).
#
# usage: benchmarks/cpu-small-moe.sh [DATA] [STEPS]
# STEPS (20): the compiled steps' median leaves out the first 5, which
# create GEMM primitives and fault in memory that later steps reuse (on a
# Xeon with AMX, steps 3-8 took 11-14% longer than steps 16-20, where
# routing had also changed).
# ROUNDS (3): the f32 and bf16 binaries run in turn this many times, and
# each precision reports the median of its runs' medians and the bf16/f32
# ratio of each round: these machines' speed wanders by 10-20% within
# minutes, and a ratio from two runs minutes apart measures that too.
# PYTHON: a Python with PyTorch (else the PyTorch rows are skipped).
# TORCH_STEPS: PyTorch steps per run (15; the median leaves out the first 5).
# Without bf16 instructions a bf16 autocast step of PyTorch takes minutes.
# PROFILE=1: build the binaries with --profile, which print where the
# steps' time goes per kernel and call site.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BUILD_DIR:-build}/bin
data=${1:-../shared/data/tinyshakespeare.txt}
steps=${2:-20}
work=${BUILD_DIR:-build}/bench-small-moe
mkdir -p "$work"

source benchmarks/common.sh
report_machine
character_corpus "$data" "$work" hidden_size=512 intermediate_size=1408 \
  num_hidden_layers=8 num_attention_heads=8 num_key_value_heads=8 \
  max_position_embeddings=256 num_local_experts=16 num_experts_per_tok=2 \
  moe_batch_size=8 moe_seq_len=256

"$bin/moe-gemm-peak" | tee "$work/gemm-peak.jsonl"
"$bin/moe-import" "$work/config.json" -o "$work/model.mlir"
"$bin/moe-opt" "$work/model.mlir" --moe-train-pipeline --moe-cost-model \
  -o /dev/null > "$work/cost.txt" 2>&1

optimizer="lr=1e-3 min-lr=1e-4 warmup-steps=100 decay-steps=2000 beta2=0.99 weight-decay=0.1 max-grad-norm=1.0"
for precision in f32 bf16; do
  # bf16 with weight copies as moe-compile's CPU target chooses them.
  pipeline="precision=$precision"
  [ "$precision" = bf16 ] && pipeline+=" weight-copies=per-expert"
  "$bin/moe-opt" "$work/model.mlir" --moe-train-pipeline="$pipeline" \
    --moe-attach-target --moe-fuse-elementwise --moe-plan-memory=report=true \
    -o /dev/null 2>&1 | grep '@train_step' > "$work/memory-$precision.txt"
  "$bin/moe-compile" "$work/config.json" --precision "$precision" \
    --optimizer "$optimizer" ${PROFILE:+--profile} -o "$work/train-$precision"
done
rounds=${ROUNDS:-3}
for round in $(seq "$rounds"); do
  for precision in f32 bf16; do
    rm -f "$work/metrics-$precision-$round.jsonl"
    "$work/train-$precision" --data "$work/tokens.bin" --steps "$steps" \
      --eval-interval 0 --sample-tokens 0 --log-interval 1 \
      --metrics "$work/metrics-$precision-$round.jsonl" |
      tee "$work/log-$precision-$round.txt"
  done
done

python=${PYTHON:-}
torch_rows=()
if [ -n "$python" ] && "$python" -c "import torch" 2>/dev/null; then
  for mode in eager compile; do
    for autocast in f32 bf16; do
      best=""
      for threads in 1 2; do
        flags=(--tokens "$work/tokens.bin" --config "$work/config.json" --threads "$threads" --steps "${TORCH_STEPS:-15}")
        [ "$mode" = compile ] && flags+=(--compile)
        [ "$autocast" = bf16 ] && flags+=(--autocast bf16)
        ms=$("$python" benchmarks/pytorch_moe.py "${flags[@]}")
        echo "PyTorch $mode $autocast, $threads threads: median step $ms ms"
        best=$(python3 -c "import sys; v = [float(x) for x in sys.argv[1:] if x]; print(min(v))" $best $ms)
      done
      torch_rows+=("$mode-$autocast=$best")
    done
  done
else
  echo "PyTorch skipped: set PYTHON to a Python with torch"
fi

python3 - "$work" "$rounds" "${torch_rows[@]}" <<'PY'
import json, re, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
rows = dict(r.split("=") for r in sys.argv[3:])
cost = open(f"{work}/cost.txt").read()
flops = sum(int(x) for x in re.findall(r"(?:gemm|attention) (\d+) flops", cost))
peaks = {(l["gemm"], l["precision"]): l for l in map(json.loads, open(f"{work}/gemm-peak.jsonl"))}
peak = peaks[("square-2048", "f32")]["gflops"]
print(f"model FLOPs per step: {flops / 1e9:.1f} GFLOP; f32 GEMM peak {peak:.0f} GFLOP/s; "
      f"bf16 GEMM {peaks[('square-2048', 'bf16')]['gflops']:.0f} GFLOP/s ({peaks[('square-2048', 'bf16')]['path']})")
def median_step(precision, round):
    lines = [json.loads(l) for l in open(f"{work}/metrics-{precision}-{round}.jsonl")]
    times = [l["step_seconds"] for l in lines if "step_seconds" in l]
    return 1000 * statistics.median(times[5:] or times)  # the first steps warm up
runs = {p: [median_step(p, r) for r in range(1, rounds + 1)] for p in ("f32", "bf16")}
for precision in ("f32", "bf16"):
    ms = statistics.median(runs[precision])
    ready = re.search(r"ready in ([0-9.]+) s", open(f"{work}/log-{precision}-1.txt").read())
    memory = re.search(r"peak activations (\d+)", open(f"{work}/memory-{precision}.txt").read())
    print(f"compiled {precision}: median step {ms:.0f} ms (runs: "
          f"{', '.join(f'{t:.0f}' for t in runs[precision])}), {flops / ms / 1e6:.0f} GFLOP/s "
          f"({100 * flops / ms / 1e6 / peak:.0f}% of the f32 GEMM peak), ready in "
          f"{ready.group(1) if ready else '?'} s, peak activations {int(memory.group(1)) / 1e6:.1f} MB")
    for name, best in rows.items():
        print(f"  vs PyTorch {name} ({float(best):.0f} ms): {float(best) / ms:.2f}x")
ratios = [f / b for f, b in zip(runs["f32"], runs["bf16"])]
print(f"bf16 over f32, each round: {', '.join(f'{r:.2f}x' for r in ratios)} "
      f"(median {statistics.median(ratios):.2f}x)")
PY
