#!/usr/bin/env bash
# Two training runs at once on the same cores, as a sweep on one machine
# runs them: the tiny MoE (4 layers, d=128, 8 experts top-2, batch 12 x 64,
# character vocabulary), each run on every core (the default --threads),
# alone and two side by side, with the spin the training driver sets for
# libgomp (GOMP_SPINCOUNT=1000) and with libgomp's default (300,000 spins at
# every barrier before a thread sleeps). Reports each run's median step,
# leaving out the first 5.
#
# usage: benchmarks/concurrent-runs.sh [DATA] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BUILD_DIR:-build}/bin
data=${1:-../shared/data/tinyshakespeare.txt}
steps=${2:-40}
if [ "$steps" -le 5 ]; then
  echo "STEPS must exceed the 5 left out of each median" >&2
  exit 1
fi
work=${BUILD_DIR:-build}/bench-concurrent-runs
mkdir -p "$work"

source benchmarks/common.sh
report_machine
character_corpus "$data" "$work"
"$bin/moe-compile" "$work/config.json" --batch-size 12 --seq-len 64 -o "$work/train"

# run NAME [ENV...]: one training run in the background, metrics to NAME;
# finish: waits for the runs started, and fails where one failed.
pids=()
run() {
  local name=$1
  shift
  env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY "$@" "$work/train" \
    --data "$work/tokens.bin" --steps "$steps" --log-interval 100000 \
    --eval-interval 0 --sample-tokens 0 --metrics "$work/$name.jsonl" \
    > /dev/null &
  pids+=($!)
}
finish() {
  for pid in "${pids[@]}"; do wait "$pid"; done
  pids=()
}
rm -f "$work"/*.jsonl
run alone && finish
run alone-libgomp GOMP_SPINCOUNT=300000 && finish
run driver-a && run driver-b && finish
run libgomp-a GOMP_SPINCOUNT=300000 && run libgomp-b GOMP_SPINCOUNT=300000 && finish

python3 - "$work" <<'PY'
import json, statistics, sys
work = sys.argv[1]
def median(name):
    steps = [l["step_seconds"] for l in map(json.loads, open(f"{work}/{name}.jsonl"))
             if "step_seconds" in l]
    return 1000 * statistics.median(steps[5:])
print("alone: median step %.1f ms (GOMP_SPINCOUNT=1000), %.1f ms (300000)"
      % (median("alone"), median("alone-libgomp")))
print("two at once, GOMP_SPINCOUNT=1000 (the driver's): %.1f and %.1f ms"
      % (median("driver-a"), median("driver-b")))
print("two at once, GOMP_SPINCOUNT=300000 (libgomp's default): %.1f and %.1f ms"
      % (median("libgomp-a"), median("libgomp-b")))
PY
