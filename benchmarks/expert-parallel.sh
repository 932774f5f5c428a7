#!/usr/bin/env bash
# Expert parallelism on one machine: the tiny MoE (4 layers, d=128, 8
# experts top-2, capacity factor 1.25, batch 12 x 64, character vocabulary)
# compiled for 1 rank and for 2 ranks (mpirun -np 2), the experts split
# over both (expert parallelism) or held whole by each (--expert-ranks 1,
# data parallelism), each also with the distributed optimizer (ZeRO-1),
# trained on the same data in the same run. Reports the median step of
# each, the time the 2-rank runs spend in collectives, a rank's state
# (parameters, Adam moments), and what the collectives carry per step
# (from moe-expert-parallel's report). On a 2-core
# machine 2 ranks cannot be faster than 1 process on 2 threads: the point
# is the overhead, and which layout's collectives cost less.
#
# usage: benchmarks/expert-parallel.sh [DATA] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BUILD_DIR:-build}/bin
data=${1:-../shared/data/tinyshakespeare.txt}
steps=${2:-200}
work=${BUILD_DIR:-build}/bench-expert-parallel
mkdir -p "$work"
mpirun="mpirun --oversubscribe --bind-to none"
[ "$(id -u)" -eq 0 ] && mpirun="$mpirun --allow-run-as-root"

source benchmarks/common.sh
report_machine
character_corpus "$data" "$work"
"$bin/moe-import" "$work/config.json" --batch-size 12 --seq-len 64 -o "$work/model.mlir"
"$bin/moe-opt" "$work/model.mlir" --moe-expert-parallel="ranks=2 report=true" -o /dev/null
"$bin/moe-opt" "$work/model.mlir" --moe-expert-parallel="ranks=2 expert-ranks=1 report=true" -o /dev/null
optimizer="lr=1e-3 min-lr=1e-4 warmup-steps=100 decay-steps=2000 beta2=0.99"
"$bin/moe-compile" "$work/model.mlir" --model-name tiny --optimizer "$optimizer" -o "$work/train-p1"
"$bin/moe-compile" "$work/model.mlir" --expert-parallel 2 --model-name tiny --optimizer "$optimizer" -o "$work/train-p2"
"$bin/moe-compile" "$work/model.mlir" --expert-parallel 2 --expert-ranks 1 --model-name tiny --optimizer "$optimizer" -o "$work/train-p2x1"
"$bin/moe-compile" "$work/model.mlir" --expert-parallel 2 --distributed-optimizer --model-name tiny --optimizer "$optimizer" -o "$work/train-p2-zero"
"$bin/moe-compile" "$work/model.mlir" --expert-parallel 2 --expert-ranks 1 --distributed-optimizer --model-name tiny --optimizer "$optimizer" -o "$work/train-p2x1-zero"

run="--data $work/tokens.bin --steps $steps --eval-interval 0 --sample-tokens 0 --log-interval $steps"
rm -f "$work"/p*.jsonl
"$work/train-p1" $run --threads 2 --metrics "$work/p1.jsonl" > "$work/p1.log"
for layout in p2 p2x1 p2-zero p2x1-zero; do
  $mpirun -np 2 "$work/train-$layout" $run --threads 1 --metrics "$work/$layout.jsonl" > "$work/$layout.log"
done

python3 - "$work" <<'PY'
import json, os, re, statistics, sys
work = sys.argv[1]
def final_loss(steps):
    # The cross-entropy, as the binaries report it.
    return steps[-1].get("lm_loss", steps[-1]["loss"])
def median_ms(layout):
    steps = [json.loads(l) for l in open(os.path.join(work, layout + ".jsonl"))
             if "step_seconds" in l]
    return 1000 * statistics.median(l["step_seconds"] for l in steps), steps
p1, s1 = median_ms("p1")
print("1 process, 2 threads: median step %.1f ms, final loss %.4f"
      % (p1, final_loss(s1)))
for layout, name in (
        ("p2", "2 ranks, experts split (expert parallel)"),
        ("p2x1", "2 ranks, experts whole (data parallel)"),
        ("p2-zero", "2 ranks, experts split, distributed optimizer"),
        ("p2x1-zero", "2 ranks, experts whole, distributed optimizer")):
    median, steps = median_ms(layout)
    log = open(os.path.join(work, layout + ".log")).read()
    collectives, total = map(float, re.search(r"([\d.]+) s of ([\d.]+) s",
                                              log).groups())
    state = float(re.search(r"([\d.]+) MB of state a rank", log).group(1))
    print("%s, 1 thread each: median step %.1f ms, %.1f%% of the training "
          "time in collectives (%.1f ms a step), %.1f MB of state a rank, "
          "final loss %.4f"
          % (name, median, 100 * collectives / total,
             1000 * collectives / len(steps), state, final_loss(steps)))
PY
