#!/usr/bin/env bash
# The GPU acceptance in one command, on a fresh machine with an NVIDIA GPU,
# its driver and the CUDA toolkit (Debian or Ubuntu): installs what else is
# missing, builds the CUDA target in Release (build-gpu/), runs the tests
# labelled gpu (every CUDA kernel against the CPU kernels; the compiled
# CUDA train step against moe-run, in f32 and bf16; graph replay against
# eager launches, bit for bit; the per-kernel profile of --profile) and the
# GPU benchmark (both precisions), and writes a short report.
#
# usage: scripts/gpu-check.sh REPORT_DIR
# Writes REPORT_DIR/report.md (pass/fail per test, the benchmark's figures)
# beside the logs; exits non-zero when a test failed.
set -uo pipefail
cd "$(dirname "$0")/.."
report=${1:?usage: scripts/gpu-check.sh REPORT_DIR}
mkdir -p "$report"
report=$(cd "$report" && pwd)
start=$(date +%s)

fail() {
  echo "gpu-check: error: $*" >&2
  exit 1
}
nvidia-smi -L >/dev/null 2>&1 || fail "no NVIDIA GPU is usable here (nvidia-smi -L failed)"
nvcc=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[ -x "$nvcc" ] || fail "no CUDA toolkit: nvcc is neither on PATH nor in /usr/local/cuda/bin"

# A machine that cannot reach a package mirror may still have what the
# build needs: a failed install is reported, and the build says what lacks.
scripts/install-deps.sh > "$report/install.log" 2>&1 ||
  echo "gpu-check: warning: installing packages failed (see" \
    "$report/install.log); building with what is here" >&2
# The runtime and generated code for this GPU only (sm_90a on Hopper),
# which halves nvcc's time against the default three architectures.
capability=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader |
  head -1 | tr -d ' .')
architectures=()
if [ -n "$capability" ]; then # older drivers lack compute_cap: all three
  arch=${capability}-real
  [ "$capability" = 90 ] && arch=90a-real
  architectures=(-DCMAKE_CUDA_ARCHITECTURES="$arch")
fi
jobs=$(nproc)
{
  [ -f build-gpu/build.ninja ] ||
    cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOE_CUDA=ON \
      -DCMAKE_CUDA_COMPILER="$nvcc" "${architectures[@]}"
  cmake --build build-gpu -j "$jobs" --target moe-cuda-kernel-tests \
    moe-grouped-gemm-bench moe-compile moe-run moe-opt moe-import
} > "$report/build.log" 2>&1 || fail "the build failed (see $report/build.log)"
built=$(date +%s)
tests_status=none bench_status=none tested=$built finished=$built

# Writes report.md from what has run so far, so that a run cut short
# still leaves one.
write_report() {
  python3 - "$report" "$tests_status" "$bench_status" \
    "$((built - start))" "$((tested - built))" "$((finished - tested))" <<'PY'
import os, sys, xml.etree.ElementTree as ET
report, tests, bench, build_s, test_s, bench_s = sys.argv[1:]
lines = ["# gpu-check report", ""]
lines.append(os.popen("nvidia-smi --query-gpu=name,driver_version,memory.total "
                      "--format=csv,noheader").read().strip())
lines.append("build %ss, tests %ss, benchmark %ss" % (build_s, test_s, bench_s))
lines += ["", "## Tests (ctest -L gpu)", ""]
try:
    for case in ET.parse(os.path.join(report, "gpu-tests.xml")).iter("testcase"):
        status = case.get("status", "run")
        lines.append("- %s: %s (%ss)" % (case.get("name"), {
            "run": "pass", "fail": "FAIL", "notrun": "skipped"}.get(status, status),
            case.get("time")))
except (OSError, ET.ParseError) as error:
    lines.append("no test results: %s (see gpu-tests.log)" % error)
lines += ["", "## Benchmark", ""]
md = os.path.join(report, "benchmark", "gpu-train.md")
lines.append(open(md).read().strip() if os.path.exists(md)
             else "no benchmark results (see benchmark.log)")
lines.append("")
lines.append("tests: %s; benchmark: %s" % tuple(
    {"none": "not run", "0": "passed"}.get(s, "FAILED (%s)" % s)
    for s in (tests, bench)))
open(os.path.join(report, "report.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
}

# A kernel test fails, not skips, when the device is unusable; one test
# at a time where the GPU admits one process (exclusive compute mode).
parallel=4
nvidia-smi --query-gpu=compute_mode --format=csv,noheader | grep -qi exclusive &&
  parallel=1
MOE_REQUIRE_GPU=1 ctest --test-dir build-gpu -L gpu --output-on-failure \
  -j "$parallel" --timeout 300 --output-junit "$report/gpu-tests.xml" \
  > "$report/gpu-tests.log" 2>&1
tests_status=$?
tested=$(date +%s)
write_report > /dev/null

# PyTorch in bf16 only (the precision of the MFU and torch.compile
# targets), to keep within 8 minutes.
BUILD_DIR=build-gpu TORCH_PRECISIONS=bf16 timeout 300 \
  benchmarks/gpu-train.sh "$report/benchmark" > "$report/benchmark.log" 2>&1
bench_status=$?
finished=$(date +%s)
write_report
[ "$tests_status" -eq 0 ] && [ "$bench_status" -eq 0 ]
