#!/usr/bin/env bash
# The GPU acceptance of the CUDA target: every CUDA kernel against the CPU
# kernels; the compiled CUDA train step against moe-run, in f32 and bf16;
# graph replay against eager launches, bit for bit; the per-kernel profile
# of --profile; expert parallelism over NCCL where there are 2 GPUs
# (test/Cuda/gpu_cases.py); the GPU benchmark (benchmarks/gpu-train.sh,
# both precisions, with their per-kernel profiles); and, in the time left,
# Nsight Compute's counters of the costliest kernels
# (benchmarks/gpu/kernel-counters.sh). It writes a report.
#
# usage: scripts/gpu-check.sh REPORT_DIR
#   On a machine with an NVIDIA GPU, its driver and the CUDA toolkit
#   (Debian or Ubuntu): installs what else is missing, builds the CUDA
#   target in Release for this GPU, prepares and runs the checks.
# usage: scripts/gpu-check.sh --prepare BUNDLE.tar.xz
#   Where the toolchain is, no GPU needed: builds for the default GPU
#   architectures, then packs every binary, reference run and shared
#   library that the checks need.
# usage: scripts/gpu-check.sh --run BUNDLE.tar.xz REPORT_DIR
#   On a GPU machine that has the driver and python3 but nothing of the
#   toolchain (no MLIR, no package mirror): unpacks the bundle and runs its
#   checks. The CUDA libraries (cuBLAS, NCCL) come from that machine: its
#   toolkit's or PyTorch's.
#
# REPORT_DIR/report.md gets pass/fail per check and the benchmark's figures,
# beside the logs; the exit status is non-zero when a check failed.
# BUILD_DIR (default build-gpu in the repository) is the build folder.
# GPU_CHECK_SECONDS (default 480) bounds a run (the build included without
# --run): each test and case command gets at most what is left, one that
# cannot start in time is reported as not run, the benchmark gets the rest
# less the report's time, and the kernel counters what the benchmark
# leaves. GPU_CHECK_PUBLISH, a folder, gets copies of
# report.md and of the whole report as report.tgz after each part, so that
# a caller that can take back only a few files (or whose run is cut short)
# has them.
set -uo pipefail
script=$(realpath "$0")
usage() {
  sed -n 's/^# usage: /usage: /p' "$script" >&2
  exit 2
}
# Paths are the caller's: resolved before moving to the repository.
mode=all
case ${1:-} in
--prepare)
  [ $# -eq 2 ] || usage
  mode=prepare archive=$(realpath -m "$2")
  ;;
--run)
  [ $# -eq 3 ] || usage
  mode=run archive=$(realpath -m "$2") report=$(realpath -m "$3")
  ;;
-* | "") usage ;;
*)
  [ $# -eq 1 ] || usage
  report=$(realpath -m "$1")
  ;;
esac
root=$(dirname "$(dirname "$script")")
build=$(realpath -m "${BUILD_DIR:-$root/build-gpu}")
# A relative GPU_CHECK_PUBLISH is the caller's too.
[ -z "${GPU_CHECK_PUBLISH:-}" ] ||
  GPU_CHECK_PUBLISH=$(realpath -m "$GPU_CHECK_PUBLISH")
cd "$root" || exit 1
start=$(date +%s)
# The limit is the GPU machine's: preparing a bundle is not bounded.
[ "$mode" = prepare ] ||
  export GPU_CHECK_DEADLINE=$((start + ${GPU_CHECK_SECONDS:-480}))

# Once run_checks has a report folder (failed_report), an error before the
# checks (this GPU, its driver, missing libraries) is the report.
failed_report=
fail() {
  echo "gpu-check: error: $*" >&2
  if [ -n "$failed_report" ]; then
    python3 scripts/gpu_check.py report "$failed_report" "not run: $*" \
      "not run" > /dev/null
    publish "$failed_report"
  fi
  exit 1
}
require_gpu() {
  nvidia-smi -L >/dev/null 2>&1 ||
    fail "no NVIDIA GPU is usable here (nvidia-smi -L failed)"
}
elapsed_since() {
  echo $(($(date +%s) - $1))
}
seconds_left() {
  echo $((GPU_CHECK_DEADLINE - $(date +%s)))
}
# The seconds a last part may take: what is left but 20 s for the report,
# or nothing (0) when under 30 s would be left.
part_seconds() {
  local limit=$(($(seconds_left) - 20))
  [ "$limit" -ge 30 ] || limit=0
  echo $limit
}

# Builds what the checks need into $build, for this machine's GPU ($2 =
# local) or for the default architectures; the log goes to $1.
build_targets() {
  local log=$1 nvcc architectures=() capability arch
  nvcc=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
  [ -x "$nvcc" ] ||
    fail "no CUDA toolkit: nvcc is neither on PATH nor in /usr/local/cuda/bin"
  # A machine that cannot reach a package mirror may still have what the
  # build needs: a failed install is reported, and the build says what
  # lacks.
  scripts/install-deps.sh > "$log.install" 2>&1 ||
    echo "gpu-check: warning: installing packages failed (see" \
      "$log.install); building with what is here" >&2
  # Code for this GPU only (sm_90a on Hopper) halves nvcc's time against
  # the default three architectures.
  if [ "$2" = local ]; then
    capability=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader \
      2>/dev/null | head -1 | tr -d ' .')
    if [ -n "$capability" ]; then # older drivers lack compute_cap
      arch=${capability}-real
      [ "$capability" = 90 ] && arch=90a-real
      architectures=(-DCMAKE_CUDA_ARCHITECTURES="$arch")
    fi
  fi
  {
    [ -f "$build/build.ninja" ] ||
      cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DMOE_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc" "${architectures[@]}"
    cmake --build "$build" -j "$(nproc)" --target moe-cuda-kernel-tests \
      moe-grouped-gemm-bench moe-attention-bench moe-compile moe-run moe-opt \
      moe-import
  } > "$log" 2>&1 || fail "the build failed (see $log)"
}

# The shared libraries that a bundle's programs need, copied into
# $bundle/lib, except the C and C++ runtimes, which every Linux has, and
# CUDA's, which a GPU machine has (and which are too large to carry).
collect_libraries() {
  local bundle=$1
  mkdir -p "$bundle/lib"
  find "$bundle" -type f -perm -u+x -exec ldd {} + 2>/dev/null |
    awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u |
    while read -r name path; do
      case $name in
      libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | \
        ld-linux* | libgcc_s.so.* | libstdc++.so.* | libcuda.so.* | \
        libcudart.so.* | libcublas*.so.* | libnccl.so.*) ;;
      *) cp -L "$path" "$bundle/lib/$name" ;;
      esac
    done
}

# Builds and writes the checks' binaries, references and libraries into
# the folder $1, with the CUDA architectures they hold; the logs go to $2.
prepare() {
  local bundle=$1 logs=$2
  rm -rf "$bundle"
  mkdir -p "$bundle/bin"
  cp "$build/bin/moe-cuda-kernel-tests" "$build/bin/moe-grouped-gemm-bench" \
    "$build/bin/moe-attention-bench" "$bundle/bin/"
  [ -s "$build/cuda-architectures" ] ||
    fail "$build/cuda-architectures is missing: configure $build again"
  cp "$build/cuda-architectures" "$bundle/architectures"
  git describe --always --dirty > "$bundle/version" 2>/dev/null ||
    echo "unknown (no git here)" > "$bundle/version"
  PATH=$build/bin:$PATH python3 test/Cuda/gpu_cases.py prepare \
    "$bundle/cases" > "$logs/prepare-cases.log" 2>&1 ||
    fail "preparing the cases failed (see $logs/prepare-cases.log)"
  BUILD_DIR=$build COMPILE_ONLY=1 PROFILE=1 benchmarks/gpu-train.sh \
    "$bundle/benchmark" > "$logs/prepare-benchmark.log" 2>&1 ||
    fail "compiling the benchmark failed (see $logs/prepare-benchmark.log)"
  BUILD_DIR=$build COMPILE_ONLY=1 benchmarks/gpu/kernel-counters.sh \
    "$bundle/counters" > "$logs/prepare-counters.log" 2>&1 ||
    fail "compiling the kernel counters' model failed (see" \
      "$logs/prepare-counters.log)"
  collect_libraries "$bundle"
}

# Fails unless the bundle's code runs on this GPU: machine code for its
# architecture, or PTX of an architecture up to it, which the driver
# compiles.
check_architectures() {
  local capability
  capability=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader \
    2>/dev/null | head -1 | tr -d ' .')
  [ -n "$capability" ] || return 0 # older drivers lack compute_cap
  python3 - "$capability" "$(cat "$1/architectures")" <<'PY' ||
import re, sys
gpu, architectures = int(sys.argv[1]), sys.argv[2].split()
def runs(a):
    match = re.match(r"(\d+)a?(?:-(real|virtual))?$", a)
    if not match:  # native, all: not ours to judge
        return True
    number, kind = int(match.group(1)), match.group(2)
    return number == gpu or (kind != "real" and number <= gpu)
sys.exit(0 if any(runs(a) for a in architectures) else 1)
PY
    fail "the bundle holds code for CUDA architectures" \
      "'$(cat "$1/architectures")', none of which runs on this GPU" \
      "(compute capability $capability); prepare it with" \
      "CMAKE_CUDA_ARCHITECTURES that include it"
}

# Fails unless this driver runs the CUDA major version the bundle was
# linked against (libcudart.so.N): else every kernel would fail to load.
check_driver() {
  local needed supported
  needed=$(ldd "$1/bin/moe-cuda-kernel-tests" 2>/dev/null |
    grep -o 'libcudart\.so\.[0-9]*' | head -1 | sed 's/.*\.//')
  supported=$(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9]*' |
    head -1 | grep -o '[0-9]*$')
  [ -z "$needed" ] || [ -z "$supported" ] ||
    [ "$supported" -ge "$needed" ] ||
    fail "the bundle was built with CUDA $needed, and this driver runs" \
      "CUDA up to $supported (nvidia-smi): prepare it with a toolkit no" \
      "newer than the driver, or update the driver"
}

# Points LD_LIBRARY_PATH at the bundle's libraries (those its programs were
# linked with) and at CUDA's wherever this machine keeps them (the toolkit,
# PyTorch's pip packages); PyTorch's own runs keep the path they had.
use_libraries() {
  local bundle=$1 programs missing versions name candidate dirs round
  export PYTORCH_LD_LIBRARY_PATH=${PYTORCH_LD_LIBRARY_PATH-${LD_LIBRARY_PATH:-}}
  dirs=$bundle/lib
  programs=$(find "$bundle/bin" "$bundle/cases" "$bundle/benchmark" \
    "$bundle/counters" -type f -perm -u+x)
  # Each round adds a folder for each library still missing (a library
  # found can need others); the last one only checks.
  for round in 1 2 3 4; do
    # A library there but older than the one linked against: ldd says
    # "version `GLIBC_2.36' not found (required by ...)".
    versions=$(echo "$programs" |
      LD_LIBRARY_PATH=$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} xargs ldd \
        2>&1 | grep -o "version \`[^']*' not found (required by [^)]*)" |
      sort -u)
    [ -z "$versions" ] ||
      fail "this machine's system libraries are older than those the bundle" \
        "was built against ($(ldd --version 2>/dev/null | head -1)):" \
        "${versions//$'\n'/; }; prepare the bundle on a system no newer" \
        "than this one"
    missing=$(echo "$programs" |
      LD_LIBRARY_PATH=$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} xargs ldd \
        2>/dev/null | awk '$2 == "=>" && $3 == "not" { print $1 }' |
      sort -u | tr '\n' ' ')
    [ -z "$missing" ] || [ "$round" = 4 ] && break
    # The first folder of each library's candidates not taken yet.
    # shellcheck disable=SC2086 # one argument per library name
    while read -r name candidate; do
      case " $missing " in *" $name "*) ;; *) continue ;; esac
      case ":$dirs:" in
      *":$(dirname "$candidate"):"*) ;;
      *)
        dirs=$dirs:$(dirname "$candidate")
        missing=$(echo " $missing " | sed "s/ $name / /")
        ;;
      esac
    done < <(python3 scripts/gpu_check.py find-libraries $missing)
  done
  export LD_LIBRARY_PATH=$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  [ -z "$missing" ] ||
    fail "the bundle's programs need libraries that are neither here nor in" \
      "the bundle: $missing"
}

# Runs the checks of the bundle folder $1 into the report folder $2; $3
# says how long getting the bundle took.
run_checks() {
  local bundle=$1 report=$2 times=$3 parallel began tested log status=0
  rm -rf "$report"/{kernel-tests,kernel-tests.json,cases,cases.json} \
    "$report"/{benchmark,counters,counters.log,report.md,environment.txt}
  mkdir -p "$report"
  # What a failure to load or run may come from, first in the report.
  {
    echo "bundle: $(cat "$bundle/version" 2>/dev/null || echo unknown)," \
      "CUDA architectures $(cat "$bundle/architectures")"
    echo "machine: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")," \
      "$(ldd --version 2>/dev/null | head -1), $(nproc) cores"
  } > "$report/environment.txt"
  failed_report=$report
  check_architectures "$bundle"
  check_driver "$bundle"
  use_libraries "$bundle"
  # A kernel test per two cores, whose CPU references share them, up to
  # 8; one at a time where the GPU admits one process (exclusive mode).
  parallel=$(($(nproc) / 2))
  [ "$parallel" -gt 8 ] && parallel=8
  [ "$parallel" -lt 1 ] && parallel=1
  # Read whole, then matched: `grep -q` in a pipe could end nvidia-smi
  # with SIGPIPE, which pipefail would count as no match.
  case "$(nvidia-smi --query-gpu=compute_mode --format=csv,noheader)" in
  *[Ee]xclusive*) parallel=1 ;;
  esac
  began=$(date +%s)
  OMP_NUM_THREADS=$(($(nproc) / parallel)) python3 scripts/gpu_check.py \
    kernel-tests \
    "$bundle/bin/moe-cuda-kernel-tests" "$report/kernel-tests.json" \
    "$report/kernel-tests" "$parallel" > "$report/kernel-tests.log" 2>&1 ||
    status=1
  # A report after each part, so that a run cut short leaves one.
  python3 scripts/gpu_check.py report "$report" \
    "$times, kernel tests $(elapsed_since "$began") s" "not run yet" \
    > /dev/null
  publish "$report"
  python3 test/Cuda/gpu_cases.py check "$bundle/cases" \
    --results "$report/cases.json" > "$report/cases.log" 2>&1 || status=1
  for log in "$bundle"/cases/*/log.txt; do
    mkdir -p "$report/cases/$(basename "$(dirname "$log")")"
    cp "$log" "$report/cases/$(basename "$(dirname "$log")")/"
  done
  tested=$(date +%s)
  times="$times, tests $((tested - began)) s"
  python3 scripts/gpu_check.py report "$report" "$times" "not run yet" \
    > /dev/null
  publish "$report"
  # PyTorch in bf16 only (the precision of the MFU and torch.compile
  # targets), each of its runs within 150 s, and the whole within what is
  # left but 20 s for the report.
  local benchmark=passed limit
  limit=$(part_seconds)
  if [ "$limit" = 0 ]; then
    benchmark="not run (out of time)"
  else
    BUILD_DIR=$bundle COMPILED=$bundle/benchmark PROFILE=1 \
      TORCH_PRECISIONS=bf16 TORCH_TIMEOUT=150 TIME_LIMIT=$limit \
      bash benchmarks/gpu-train.sh "$report/benchmark" \
      > "$report/benchmark.log" 2>&1 || benchmark="failed (see benchmark.log)"
  fi
  [ "$benchmark" = passed ] || status=1
  times="$times, benchmark $(elapsed_since "$tested") s"
  python3 scripts/gpu_check.py report "$report" "$times" "$benchmark" \
    > /dev/null
  publish "$report"
  # Nsight Compute's counters of the costliest kernels, in the time left: a
  # diagnosis for the next change, not a check (its failure fails nothing).
  local counters=counters/kernel-counters.txt code=0
  began=$(date +%s)
  limit=$(part_seconds)
  if [ "$limit" = 0 ]; then
    counters="not read (out of time)"
  else
    COMPILED=$bundle/counters TIME_LIMIT=$limit \
      benchmarks/gpu/kernel-counters.sh "$report/counters" \
      > "$report/counters.log" 2>&1 || code=$?
    case $code in
    0) ;;
    124) counters="cut short by the time limit (see counters.log)" ;;
    *) counters="not read (see counters.log)" ;;
    esac
  fi
  python3 scripts/gpu_check.py report "$report" \
    "$times, kernel counters $(elapsed_since "$began") s" \
    "$benchmark; kernel counters: $counters"
  publish "$report"
  return $status
}

# Copies report.md and the whole report folder (report.tgz) into
# GPU_CHECK_PUBLISH, when it is set.
publish() {
  local report=$1
  [ -n "${GPU_CHECK_PUBLISH:-}" ] || return 0
  mkdir -p "$GPU_CHECK_PUBLISH" &&
    cp "$report/report.md" "$GPU_CHECK_PUBLISH/report.md" &&
    tar -czf "$GPU_CHECK_PUBLISH/report.tgz.partial" \
      -C "$(dirname "$report")" "$(basename "$report")" &&
    mv "$GPU_CHECK_PUBLISH/report.tgz.partial" \
      "$GPU_CHECK_PUBLISH/report.tgz" ||
    echo "gpu-check: warning: cannot publish the report to" \
      "$GPU_CHECK_PUBLISH" >&2
}

case $mode in
prepare)
  logs=$(dirname "$archive")
  mkdir -p "$logs"
  build_targets "$logs/gpu-build.log" default
  bundle=$build/gpu-bundle
  prepare "$bundle" "$logs"
  tar -C "$bundle" -cf - . | xz -9 -T1 > "$archive" ||
    fail "cannot write $archive"
  echo "gpu-check: wrote $archive ($(du -h "$archive" | cut -f1); CUDA" \
    "architectures $(cat "$bundle/architectures")) in $(elapsed_since \
      "$start") s; on the GPU machine: scripts/gpu-check.sh --run BUNDLE" \
    "REPORT_DIR"
  ;;
run)
  require_gpu
  [ -f "$archive" ] ||
    fail "no bundle at $archive (scripts/gpu-check.sh --prepare writes one)"
  bundle=$(mktemp -d)
  trap 'rm -rf "$bundle"' EXIT
  # Python's tarfile, not tar -J: a slim image may lack xz.
  python3 -c 'import sys, tarfile
with tarfile.open(sys.argv[1]) as bundle:
    bundle.extractall(sys.argv[2], **(
        {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))' \
    "$archive" "$bundle" || fail "cannot unpack $archive"
  run_checks "$bundle" "$report" "unpacking $(elapsed_since "$start") s"
  ;;
all)
  require_gpu
  mkdir -p "$report"
  build_targets "$report/build.log" local
  built=$(date +%s)
  prepare "$build/gpu-bundle" "$report"
  run_checks "$build/gpu-bundle" "$report" \
    "build $((built - start)) s, prepare $(elapsed_since "$built") s"
  ;;
esac
