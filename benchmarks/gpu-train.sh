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
# suggested 64k tokens would not fit an H200 in f32.
# MFU = model FLOPs per step (3x the forward's matrix products, causal
# attention counted half, top-2 experts per token) / step time / the GPU's
# dense peak of the precision (f32 on CUDA cores, bf16 on tensor cores).
#
# usage: benchmarks/gpu-train.sh [OUT_DIR] [STEPS]
# BUILD_DIR (default build) holds a build with the CUDA target; PYTHON
# (default python3) a PyTorch with CUDA, else the PyTorch rows are skipped;
# PRECISIONS (default "f32 bf16") picks the precisions, TORCH_PRECISIONS
# (default: the same) those PyTorch runs in, TORCH_TIMEOUT bounds each
# PyTorch run (seconds). PROFILE=1 also builds each
# precision with --profile and writes the per-kernel profile of 3 steps to
# OUT_DIR/profile-PRECISION.txt (a profiled step runs eagerly and waits for
# each kernel: its times are for finding where a step goes, not for MFU).
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
  for precision in ${PRECISIONS:-f32 bf16}; do
    compile "$precision" "" || true
    if [ "${PROFILE:-0}" = 1 ]; then
      compile "$precision" profile || true
    fi
  done
  exit $status
fi

python3 benchmarks/gpu/random-tokens.py 32000 4000000 "$out/tokens.bin"
have_torch=0
"$python" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null &&
  have_torch=1

# Trains the model of precision $1 (profiled when $2 is "profile") for $3
# steps, compiling it first unless COMPILED is set, the other arguments
# being the binary's; its output goes to $4. One validation batch and no
# similarity metric: only steps are timed. A failed part is reported and
# the others still run.
run_compiled() {
  local precision=$1 profile=$2 steps=$3 log=$4 binary
  shift 4
  binary=$(binary_of "$precision" "$profile")
  [ -n "${COMPILED:-}" ] || compile "$precision" "$profile" || return 0
  "$binary" --data "$out/tokens.bin" --steps "$steps" \
    --eval-interval 0 --eval-batches 1 --similarity-interval 0 \
    --sample-tokens 0 --log-interval 1 "$@" > "$log" 2>&1 || {
    echo "gpu-train: the compiled ${profile:+and profiled }$precision run" \
      "failed (see $log)" >&2
    status=1
  }
}

# The compiled runs and the grouped GEMM first, PyTorch's last: where a
# time limit cuts the run short, it cuts the baselines.
for precision in ${PRECISIONS:-f32 bf16}; do
  rm -f "$out/metrics-$precision.jsonl"
  run_compiled "$precision" "" "$steps" "$out/train-$precision.log" \
    --metrics "$out/metrics-$precision.jsonl"
  if [ "${PROFILE:-0}" = 1 ]; then
    run_compiled "$precision" profile 3 "$out/profile-$precision.txt"
  fi
done

"$build/bin/moe-grouped-gemm-bench" > "$out/grouped-gemm.txt" 2>&1 || {
  echo "gpu-train: moe-grouped-gemm-bench failed" >&2
  status=1
}

# PyTorch's median step in ms, or "failed"; TORCH_TIMEOUT (seconds, default
# none) bounds each run, torch.compile's compilation included.
pytorch() {
  local ms
  ms=$(timeout "${TORCH_TIMEOUT:-0}" "$python" benchmarks/pytorch_moe.py \
    --tokens "$out/tokens.bin" --config "$config" --device cuda "$@") &&
    echo "$ms" || echo failed
}
runs=()
for precision in ${PRECISIONS:-f32 bf16}; do
  eager=skipped compiled=skipped autocast=()
  [ "$precision" = bf16 ] && autocast=(--autocast bf16)
  if [ "$have_torch" = 1 ] &&
    [[ " ${TORCH_PRECISIONS:-${PRECISIONS:-f32 bf16}} " == *" $precision "* ]]; then
    eager=$(pytorch --steps 10 "${autocast[@]}")
    compiled=$(pytorch --steps 15 --compile "${autocast[@]}")
  fi
  runs+=("$precision" "$out/metrics-$precision.jsonl" "$eager" "$compiled")
done

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
python3 - "$config" "$out/grouped-gemm.txt" "$gpu" "${runs[@]}" \
  <<'PY' | tee "$out/gpu-train.md"
import json, statistics, sys
config, gemm, gpu = sys.argv[1:4]
runs = sys.argv[4:]
c = json.load(open(config))
h, f, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
E, k, V = c["num_local_experts"], c["num_experts_per_tok"], c["vocab_size"]
s, b = c["moe_seq_len"], c["moe_batch_size"]
tokens = b * s
# Forward FLOPs per token: q, k, v, o projections; causal attention's two
# products (half the square); the router; top-k SwiGLU experts; the head.
forward = L * (4 * 2 * h * h + 2 * 2 * h * s / 2 + 2 * h * E
               + k * 3 * 2 * h * f) + 2 * h * V
step_flops = 3 * forward * tokens
# Dense peaks without sparsity, TFLOP/s.
peaks = {"H200": {"f32": 67, "bf16": 989}, "H100": {"f32": 67, "bf16": 989},
         "A100": {"f32": 19.5, "bf16": 312}}
peak = next((p for name, p in peaks.items() if name in gpu), None)
print("# GPU train step: %s\n" % gpu)
print("model: %s, %d tokens per step, %.1f TFLOP per step" %
      (config, tokens, step_flops / 1e12))
for i in range(0, len(runs), 4):
    precision, metrics, eager, compiled = runs[i:i + 4]
    print("\n## %s\n" % precision)
    try:
        lines = [json.loads(l) for l in open(metrics)]
    except OSError:
        lines = []
    # The first call runs eagerly, the second captures the graph.
    times = [l["step_seconds"] for l in lines if "step_seconds" in l][2:]
    if not times:
        print("compiled (CUDA target): failed (see train-%s.log)" % precision)
        continue
    step = statistics.median(times)
    rate = step_flops / step / 1e12
    print("compiled (CUDA target): median step %.1f ms, %.0f tokens/s, "
          "%.1f TFLOP/s" % (1000 * step, tokens / step, rate))
    if peak:
        print("MFU: %.1f%% of the dense %s peak (%g TFLOP/s)%s" %
              (100 * rate / peak[precision], precision, peak[precision],
               "; target >= 40%" if precision == "bf16" else ""))
    torch = "PyTorch" + (" (bf16 autocast)" if precision == "bf16" else "")
    for name, value in (("eager", eager), ("torch.compile", compiled)):
        if value in ("skipped", "failed"):
            print("%s %s: %s" % (torch, name, value))
        else:
            ms = float(value)
            print("%s %s: median step %.1f ms (compiled is %.2fx faster)" %
                  (torch, name, ms, ms / (1000 * step)))
print("\n" + open(gemm).read().strip())
PY
exit $status
