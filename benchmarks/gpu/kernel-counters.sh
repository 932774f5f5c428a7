#!/usr/bin/env bash
# Nsight Compute's hardware counters for the kernels that take most of the
# GPU benchmark's bf16 step (the per-kernel profile of gpu-train.sh): the
# experts' grouped GEMM (whichever kernel runs it: MOE_CUDA_GROUPED_GEMM
# picks one) and attention's forward and backward, over the
# first step of benchmarks/gpu/moe-2b.json cut to one layer and 4 sequences
# (ncu replays each kernel it reads, saving and restoring the memory the
# kernel may write: the whole model would take minutes). The sections say
# why a kernel is slow: each unit's throughput against its peak, the issue
# slots used, what the warps stall on, the occupancy and its limiter. The
# clocks stay as they are (--clock-control none), as for our other figures.
#
# usage: benchmarks/gpu/kernel-counters.sh OUT_DIR
# Writes OUT_DIR/kernel-counters.txt. BUILD_DIR (default build) holds a
# build with the CUDA target. As with gpu-train.sh, COMPILE_ONLY=1 only
# compiles the binary into OUT_DIR (no GPU needed) and COMPILED=DIR runs
# DIR's (no toolchain needed). NCU names ncu (default: on PATH, else in
# /usr/local/cuda/bin); KERNELS (an ncu regex) and LAUNCHES (default 10:
# those kernels' launches in the train step, the validation after it left
# out) pick what it reads; TIME_LIMIT (seconds) bounds the run, and a run
# that it cuts short exits with 124.
set -euo pipefail
if [ $# -ne 1 ]; then
  sed -n 's/^# usage: /usage: /p' "$0" >&2
  exit 2
fi
# The caller's paths, resolved before moving to the repository.
mkdir -p "$1"
out=$(realpath "$1")
binary=$(realpath -m "${COMPILED:-$out}")/counters-moe-2b-bf16
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
if [ -z "${COMPILED:-}" ]; then
  config=$out/moe-2b-one-layer.json
  python3 - benchmarks/gpu/moe-2b.json "$config" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config.update(num_hidden_layers=1)
json.dump(config, open(sys.argv[2], "w"), indent=1)
PY
  "$build/bin/moe-compile" "$config" --batch-size 4 --target cuda \
    --precision bf16 -o "$binary" > "$binary.log" 2>&1 || {
    echo "kernel-counters: compiling $binary failed (see $binary.log)" >&2
    exit 1
  }
fi
[ "${COMPILE_ONLY:-0}" = 1 ] && exit 0
[ -x "$binary" ] || {
  echo "kernel-counters: no binary at $binary (COMPILE_ONLY=1 makes one)" >&2
  exit 1
}
ncu=${NCU:-$(command -v ncu || echo /usr/local/cuda/bin/ncu)}
[ -x "$ncu" ] || {
  echo "kernel-counters: no Nsight Compute at $ncu (set NCU)" >&2
  exit 1
}
tokens=$(mktemp)
trap 'rm -f "$tokens"' EXIT
python3 benchmarks/gpu/random-tokens.py 32000 400000 "$tokens"
kernels='warpGroupGemmKernel|tmaGemmKernel|tensorCoreGemmKernel|groupedGemmKernel'
kernels+='|forwardKernel|keyValueGradKernel|queryGradKernel'
code=0
timeout -k 10 "${TIME_LIMIT:-0}" "$ncu" --clock-control none \
  --section SpeedOfLight --section ComputeWorkloadAnalysis \
  --section MemoryWorkloadAnalysis --section SchedulerStats \
  --section WarpStateStats --section Occupancy --section LaunchStats \
  -k "regex:${KERNELS:-$kernels}" -c "${LAUNCHES:-10}" \
  "$binary" --data "$tokens" --steps 1 --eval-interval 0 --eval-batches 1 \
  --similarity-interval 0 --sample-tokens 0 \
  > "$out/kernel-counters.txt" 2>&1 || code=$?
# timeout's 124 (137 after -k): the time limit, not a failure of ncu.
if [ "$code" = 124 ] || [ "$code" = 137 ]; then
  echo "kernel-counters: the time limit cut ncu short (see" \
    "$out/kernel-counters.txt)" >&2
  exit 124
elif [ "$code" != 0 ]; then
  echo "kernel-counters: ncu failed (see $out/kernel-counters.txt)" >&2
  exit 1
fi
echo "kernel-counters: wrote $out/kernel-counters.txt"
