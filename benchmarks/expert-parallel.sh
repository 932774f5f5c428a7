#!/usr/bin/env bash
# Expert parallelism on one machine: the tiny MoE (4 layers, d=128, 8
# experts top-2, capacity factor 1.25, batch 12 x 64, character vocabulary)
# compiled for 1 rank and for 2 ranks (mpirun -np 2), trained on the same
# data in the same run. Reports the median step of each, the time the
# 2-rank run spends in collectives, and what they carry per step (from
# moe-expert-parallel's report). On a 2-core machine 2 ranks cannot be
# faster than 1 process on 2 threads: the point is the overhead.
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

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "ISA: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|amx_tile)$' | xargs)"

vocab=$(python3 benchmarks/char-tokens.py "$data" "$work/tokens.bin")
python3 test/Inputs/edit-json.py examples/tiny-moe/config.json \
  vocab_size="$vocab" moe_capacity_factor=1.25 > "$work/config.json"
"$bin/moe-import" "$work/config.json" --batch-size 12 --seq-len 64 -o "$work/model.mlir"
"$bin/moe-opt" "$work/model.mlir" --moe-expert-parallel="ranks=2 report=true" -o /dev/null
optimizer="lr=1e-3 min-lr=1e-4 warmup-steps=100 decay-steps=2000 beta2=0.99"
"$bin/moe-compile" "$work/model.mlir" --model-name tiny --optimizer "$optimizer" -o "$work/train-p1"
"$bin/moe-compile" "$work/model.mlir" --expert-parallel 2 --model-name tiny --optimizer "$optimizer" -o "$work/train-p2"

run="--data $work/tokens.bin --steps $steps --eval-interval 0 --sample-tokens 0 --log-interval $steps"
rm -f "$work"/p*.jsonl
"$work/train-p1" $run --threads 2 --metrics "$work/p1.jsonl" > "$work/p1.log"
$mpirun -np 2 "$work/train-p2" $run --threads 1 --metrics "$work/p2.jsonl" > "$work/p2.log"
cat "$work/p2.log" | tail -1

python3 - "$work/p1.jsonl" "$work/p2.jsonl" "$work/p2.log" <<'PY'
import json, re, statistics, sys
def median_ms(path):
    steps = [json.loads(l) for l in open(path) if "step_seconds" in l]
    return 1000 * statistics.median(l["step_seconds"] for l in steps), steps
p1, s1 = median_ms(sys.argv[1])
p2, s2 = median_ms(sys.argv[2])
collectives, total = map(float, re.search(r"([\d.]+) s of ([\d.]+) s",
                                          open(sys.argv[3]).read()).groups())
print("1 process, 2 threads: median step %.1f ms" % p1)
print("2 ranks, 1 thread each: median step %.1f ms" % p2)
print("2 ranks: %.1f%% of the training time in collectives (%.1f ms a step)"
      % (100 * collectives / total, 1000 * collectives / len(s2)))
print("final loss: %.4f (1 process), %.4f (2 ranks)"
      % (s1[-1]["loss"], s2[-1]["loss"]))
PY
