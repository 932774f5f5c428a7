#!/usr/bin/env bash
# Train steps of a MoE that fills one GPU usefully, compiled for the CUDA
# target, against the same model in PyTorch (eager and torch.compile) on the
# same GPU in the same run, plus the experts' grouped GEMM against a dense
# cuBLAS GEMM of equal FLOPs.
#
# Model (benchmarks/gpu/moe-2b.json): 16 layers, hidden 2048, 16 heads, 16
# experts top-2, expert hidden 1408, vocabulary 32000, sequence 2048,
# capacity factor 1.25; 2.6B parameters, 0.68B active per token. Batch 16
# sequences = 32768 tokens per step, in both precisions: f32 (no TF32) and
# bf16 mixed precision (--precision bf16; PyTorch under bf16 autocast). The
# train step's planned arena is 79.6 GB in f32 and 47.3 GB in bf16, beside
# 10.5 GB of parameters and 20.9 GB of Adam moments (moe-plan-memory): the
# suggested 64k tokens would not fit an H200 in f32 as one batch (as two
# micro-batches, moe-compile --micro-batches 2, they would; MFU is the same
# per token either way, so the benchmark keeps one batch a step).
# MFU = model FLOPs per step (3x the forward's matrix products, causal
# attention counted half, top-2 experts per token) / step time / the GPU's
# dense peak of the precision (f32 on CUDA cores, bf16 on tensor cores).
#
# usage: benchmarks/gpu-train.sh [OUT_DIR] [STEPS]
# BUILD_DIR (default build) holds a build with the CUDA target; PYTHON
# (default python3) a PyTorch with CUDA, else the PyTorch rows are skipped;
# PRECISIONS (default "bf16 f32": the targets' precision first, where a
# time limit cuts the other) picks the precisions, TORCH_PRECISIONS
# (default: the same) those PyTorch runs in; TORCH_TIMEOUT bounds each
# PyTorch run and TIME_LIMIT the whole benchmark (seconds; a precision's
# compiled runs come before its PyTorch runs). PROFILE=1 also builds each
# precision with --profile and writes the per-kernel profile of 3 steps to
# OUT_DIR/profile-PRECISION.txt (a profiled step runs eagerly and waits for
# each kernel: its times are for finding where a step goes, not for MFU).
# The bf16 binary runs again with the experts' GEMMs on cuBLAS over whole
# capacities (MOE_CUDA_GROUPED_GEMM=cublas), and on
# an sm_90 GPU with them on the wgmma kernel fed by TMA (=wgmma.tma), then
# with attention on wgmma as well (MOE_CUDA_ATTENTION=wgmma; with
# PROFILE=1, profiled too). moe-grouped-gemm-bench and moe-attention-bench
# time those kernels alone.
# Writes OUT_DIR/gpu-train.md and prints it.
# Compiling and running can happen on two machines (scripts/gpu-check.sh
# --prepare and --run): COMPILE_ONLY=1 only compiles the binaries into
# OUT_DIR (no GPU needed); COMPILED=DIR runs the binaries found in DIR
# instead of compiling them (no moe-compile needed).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
out=${1:-$build/bench-gpu}
steps=${2:-8}
python=${PYTHON:-python3}
config=benchmarks/gpu/moe-2b.json
mkdir -p "$out"

# The binary of precision $1, with --profile when $2 is "profile".
binary_of() {
  local kind=train
  [ "$2" = profile ] && kind=profile
  echo "${COMPILED:-$out}/$kind-moe-2b-$1"
}
status=0
compile() {
  local precision=$1 profile=$2 binary
  binary=$(binary_of "$precision" "$profile")
  "$build/bin/moe-compile" "$config" --target cuda \
    --precision "$precision" ${profile:+--profile} \
    --optimizer "lr=3e-4 warmup-steps=100 decay-steps=10000" \
    -o "$binary" > "$binary.log" 2>&1 || {
    echo "gpu-train: compiling $binary failed (see $binary.log)" >&2
    status=1
    return 1
  }
}
if [ "${COMPILE_ONLY:-0}" = 1 ]; then
  # In parallel: each nvcc run takes one core for tens of seconds.
  compiles=()
  for precision in ${PRECISIONS:-bf16 f32}; do
    compile "$precision" "" &
    compiles+=($!)
    if [ "${PROFILE:-0}" = 1 ]; then
      compile "$precision" profile &
      compiles+=($!)
    fi
  done
  for compile in "${compiles[@]}"; do
    wait "$compile" || status=1
  done
  exit $status
fi

# TIME_LIMIT (seconds, default none) bounds the whole benchmark from here
# on, the tokens and the PyTorch probe included: each run gets what is
# left (at most $1 seconds when given); none is left: 0.
deadline=$(($(date +%s) + ${TIME_LIMIT:-0}))
time_left() {
  local left=$((deadline - $(date +%s))) most=${1:-0}
  if [ -z "${TIME_LIMIT:-}" ]; then
    echo "$most" # timeout's 0: no limit
  elif [ "$left" -lt 1 ]; then
    echo 0
  elif [ "$most" -gt 0 ] && [ "$most" -lt "$left" ]; then
    echo "$most"
  else
    echo "$left"
  fi
}
# Runs the command within `time_left $1`; "out of time" when none is left.
within() {
  local seconds
  seconds=$(time_left "$1")
  shift
  if [ -n "${TIME_LIMIT:-}" ] && [ "$seconds" = 0 ]; then
    echo "gpu-train: out of time for $*" >&2
    return 124
  fi
  timeout -k 10 "$seconds" "$@"
}

# The tokens stay out of OUT_DIR, which a GPU machine may send back whole.
tokens=$(mktemp)
trap 'rm -f "$tokens"' EXIT
python3 benchmarks/gpu/random-tokens.py 32000 4000000 "$tokens"
# The PyTorch runs see PYTORCH_LD_LIBRARY_PATH (default LD_LIBRARY_PATH):
# scripts/gpu-check.sh points LD_LIBRARY_PATH at libraries for our
# programs, which must not replace PyTorch's own CUDA libraries.
# Expandable segments: the experts' varying sizes fragment PyTorch's cache.
torch_env=(env "LD_LIBRARY_PATH=${PYTORCH_LD_LIBRARY_PATH-${LD_LIBRARY_PATH:-}}"
  PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True)
have_torch=0
within 60 "${torch_env[@]}" "$python" -c \
  "import torch; assert torch.cuda.is_available()" 2>/dev/null && have_torch=1

# Trains the model of precision $1 (profiled when $2 is "profile") for $3
# steps, compiling it first unless COMPILED is set, the other arguments
# being the binary's; its output goes to $4. One validation batch and no
# similarity metric: only steps are timed. A failed part is reported and
# the others still run. run_env holds the binary's extra environment
# (NAME=VALUE words).
run_env=()
run_compiled() {
  local precision=$1 profile=$2 steps=$3 log=$4 binary
  shift 4
  binary=$(binary_of "$precision" "$profile")
  [ -n "${COMPILED:-}" ] || compile "$precision" "$profile" || return 0
  local code=0
  within 0 env "${run_env[@]}" "$binary" --data "$tokens" --steps "$steps" \
    --eval-interval 0 --eval-batches 1 --similarity-interval 0 \
    --sample-tokens 0 --log-interval 1 "$@" > "$log" 2>&1 || code=$?
  # timeout's 124 (or 137 after -k): the time limit cut the run, which
  # is not a failure of the binary; the steps it logged still count.
  if [ -n "${TIME_LIMIT:-}" ] && { [ "$code" = 124 ] || [ "$code" = 137 ]; }; then
    echo "gpu-train: the time limit cut the compiled" \
      "${profile:+and profiled }$precision run short (see $log)" >&2
  elif [ "$code" != 0 ]; then
    echo "gpu-train: the compiled ${profile:+and profiled }$precision run" \
      "failed (see $log)" >&2
    status=1
  fi
}

# PyTorch's median step in ms, or why there is none; TORCH_TIMEOUT
# (seconds, default none) bounds each run, torch.compile's compilation
# included.
pytorch() {
  local ms code=0
  ms=$(within "${TORCH_TIMEOUT:-0}" "${torch_env[@]}" "$python" \
    benchmarks/pytorch_moe.py --tokens "$tokens" --config "$config" \
    --device cuda "$@") || code=$?
  if [ "$code" = 0 ]; then
    echo "$ms"
  elif [ "$code" = 124 ]; then
    echo "timed out"
  else
    echo failed
  fi
}

# The summary of what has run, rewritten after each run, so that a run
# cut short leaves the figures it got: runs holds (precision, metrics,
# eager, torch.compile) for each precision.
runs=()
summarize() {
  python3 benchmarks/gpu/summary.py "$config" "$out/grouped-gemm.txt" \
    "$out/attention.txt" \
    "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" \
    "${runs[@]}" > "$out/gpu-train.md"
}
wants_torch() {
  [ "$have_torch" = 1 ] &&
    [[ " ${TORCH_PRECISIONS:-${PRECISIONS:-bf16 f32}} " == *" $1 "* ]]
}

# The bf16 variants (none the default until it has been measured): the
# experts' GEMMs on cuBLAS over whole capacities, and on an sm_90 GPU
# (H100, H200) on the wgmma kernel fed by TMA, then with attention on
# wgmma too. Each is a label and the environment it runs in.
variants=("experts' GEMMs on cuBLAS" "MOE_CUDA_GROUPED_GEMM=cublas")
if [ "$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader \
  2>/dev/null | head -1)" = 9.0 ]; then
  variants+=("experts' GEMMs on wgmma.tma" "MOE_CUDA_GROUPED_GEMM=wgmma.tma"
    "experts' GEMMs on wgmma.tma, attention on wgmma"
    "MOE_CUDA_GROUPED_GEMM=wgmma.tma MOE_CUDA_ATTENTION=wgmma")
fi

# A precision at a time, in PRECISIONS' order: the compiled runs, then
# (after the first precision's) the grouped GEMM, then PyTorch's of the
# same precision, then (bf16) the variant runs, then (after the
# first precision's) moe-attention-bench. Where the time limit cuts the
# benchmark short, it cuts the last precision, and a precision's PyTorch
# runs before its first compiled run (though not before the variant
# runs).
rm -f "$out/grouped-gemm.txt" "$out/attention.txt"
for precision in ${PRECISIONS:-bf16 f32}; do
  rm -f "$out/metrics-$precision.jsonl"
  run_compiled "$precision" "" "$steps" "$out/train-$precision.log" \
    --metrics "$out/metrics-$precision.jsonl"
  if [ "${PROFILE:-0}" = 1 ]; then
    run_compiled "$precision" profile 3 "$out/profile-$precision.txt"
  fi
  if [ ! -f "$out/grouped-gemm.txt" ]; then
    within 0 "$build/bin/moe-grouped-gemm-bench" > "$out/grouped-gemm.txt" \
      2>&1 || {
      echo "gpu-train: moe-grouped-gemm-bench failed" >&2
      status=1
    }
  fi
  eager=skipped compiled=skipped
  wants_torch "$precision" && eager="not run yet" compiled="not run yet"
  runs+=("$precision" "$out/metrics-$precision.jsonl" "$eager" "$compiled")
  summarize
  if wants_torch "$precision"; then
    autocast=()
    [ "$precision" = bf16 ] && autocast=(--autocast bf16)
    last=$((${#runs[@]} - 2))
    runs[last]=$(pytorch --steps 10 "${autocast[@]}")
    summarize
    runs[last+1]=$(pytorch --steps 15 --compile "${autocast[@]}")
    summarize
  fi
  if [ "$precision" = bf16 ]; then
    for ((v = 0; v < ${#variants[@]}; v += 2)); do
      metrics=$out/metrics-bf16-variant$((v / 2 + 1)).jsonl
      rm -f "$metrics"
      read -ra run_env <<< "${variants[v + 1]}"
      # The binary that ran above, not compiled again.
      COMPILED=${COMPILED:-$out} run_compiled bf16 "" "$steps" \
        "${metrics%.jsonl}.log" --metrics "$metrics"
      runs+=("bf16:${variants[v]}" "$metrics" skipped skipped)
      summarize
    done
    if [ "${PROFILE:-0}" = 1 ] && [ ${#variants[@]} -gt 2 ]; then
      # The last variant, which changes most, profiled.
      COMPILED=${COMPILED:-$out} run_compiled bf16 profile 3 \
        "$out/profile-bf16-variant.txt"
    fi
    run_env=()
  fi
  # The attention kernels alone, after the runs above (its wgmma kernels
  # have not yet run on a GPU), within 2 minutes.
  if [ ! -f "$out/attention.txt" ]; then
    within 120 "$build/bin/moe-attention-bench" > "$out/attention.txt" \
      2>&1 || {
      echo "gpu-train: moe-attention-bench failed" >&2
      status=1
    }
    summarize
  fi
done
cat "$out/gpu-train.md"
exit $status
