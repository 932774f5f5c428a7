#!/usr/bin/env bash
# The GPU acceptance of the CUDA target: every CUDA kernel against the CPU
# kernels; the compiled CUDA train step against moe-run, in f32 and bf16;
# graph replay against eager launches, bit for bit; the per-kernel profile
# of --profile (test/Cuda/gpu_cases.py); and the GPU benchmark
# (benchmarks/gpu-train.sh, both precisions, with their per-kernel
# profiles). It writes a short report.
#
# usage: scripts/gpu-check.sh REPORT_DIR
#   On a machine with an NVIDIA GPU, its driver and the CUDA toolkit
#   (Debian or Ubuntu): installs what else is missing, builds the CUDA
#   target in Release (build-gpu/), prepares and runs the checks.
# usage: scripts/gpu-check.sh --prepare BUNDLE.tar.xz
#   Where the toolchain is, no GPU needed: builds, then packs every binary,
#   reference run and shared library that the checks need.
# usage: scripts/gpu-check.sh --run BUNDLE.tar.xz REPORT_DIR
#   On a GPU machine that has the driver and python3 but nothing of the
#   toolchain (no MLIR, no package mirror): unpacks the bundle and runs its
#   checks. The CUDA libraries (cuBLAS, NCCL) come from that machine: its
#   toolkit's or PyTorch's.
#
# REPORT_DIR/report.md gets pass/fail per test and the benchmark's figures,
# beside the logs; the exit status is non-zero when a check failed.
# BUILD_DIR (default build-gpu) is the build folder.
set -uo pipefail
cd "$(dirname "$0")/.."
build=$(realpath -m "${BUILD_DIR:-build-gpu}")
start=$(date +%s)

fail() {
  echo "gpu-check: error: $*" >&2
  exit 1
}
usage() {
  sed -n 's/^# usage: /usage: /p' "$0" >&2
  exit 2
}
require_gpu() {
  nvidia-smi -L >/dev/null 2>&1 ||
    fail "no NVIDIA GPU is usable here (nvidia-smi -L failed)"
}

# Builds what the checks need into $build; the log goes to $1.
build_targets() {
  local log=$1 nvcc
  nvcc=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
  [ -x "$nvcc" ] ||
    fail "no CUDA toolkit: nvcc is neither on PATH nor in /usr/local/cuda/bin"
  # A machine that cannot reach a package mirror may still have what the
  # build needs: a failed install is reported, and the build says what
  # lacks.
  scripts/install-deps.sh > "$log.install" 2>&1 ||
    echo "gpu-check: warning: installing packages failed (see" \
      "$log.install); building with what is here" >&2
  # Code for this machine's GPU only (sm_90a on Hopper), which halves
  # nvcc's time against the default three architectures; without a GPU,
  # those three.
  local architectures=() capability arch
  capability=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader \
    2>/dev/null | head -1 | tr -d ' .')
  if [ -n "$capability" ]; then # older drivers lack compute_cap: all three
    arch=${capability}-real
    [ "$capability" = 90 ] && arch=90a-real
    architectures=(-DCMAKE_CUDA_ARCHITECTURES="$arch")
  fi
  {
    [ -f "$build/build.ninja" ] ||
      cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DMOE_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc" "${architectures[@]}"
    cmake --build "$build" -j "$(nproc)" --target moe-cuda-kernel-tests \
      moe-grouped-gemm-bench moe-compile moe-run moe-opt moe-import
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
# the folder $1; the logs go to $2.
prepare() {
  local bundle=$1 logs=$2
  rm -rf "$bundle"
  mkdir -p "$bundle/bin"
  cp "$build/bin/moe-cuda-kernel-tests" "$build/bin/moe-grouped-gemm-bench" \
    "$bundle/bin/"
  PATH=$build/bin:$PATH python3 test/Cuda/gpu_cases.py prepare \
    "$bundle/cases" > "$logs/prepare-cases.log" 2>&1 ||
    fail "preparing the cases failed (see $logs/prepare-cases.log)"
  BUILD_DIR=$build COMPILE_ONLY=1 PROFILE=1 benchmarks/gpu-train.sh \
    "$bundle/benchmark" > "$logs/prepare-benchmark.log" 2>&1 ||
    fail "compiling the benchmark failed (see $logs/prepare-benchmark.log)"
  collect_libraries "$bundle"
}

# Points LD_LIBRARY_PATH at what the bundle's programs lack here: the
# bundle's libraries, and CUDA's wherever this machine keeps them (the
# toolkit, PyTorch's pip packages).
use_libraries() {
  local bundle=$1 own=$1/lib-used programs missing name found dirs round
  rm -rf "$own"
  mkdir -p "$own"
  dirs=$own
  programs=$(find "$bundle/bin" "$bundle/cases" "$bundle/benchmark" \
    -type f -perm -u+x)
  # A library found makes its own dependencies visible: up to three rounds
  # of finding, each checked.
  for round in 1 2 3 4; do
    missing=$(echo "$programs" |
      LD_LIBRARY_PATH=$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} xargs ldd \
        2>/dev/null | awk '/not found/ { print $1 }' | sort -u)
    [ -z "$missing" ] || [ "$round" = 4 ] && break
    for name in $missing; do
      if [ -e "$bundle/lib/$name" ]; then
        ln -sf "$bundle/lib/$name" "$own/$name"
        continue
      fi
      found=$(find /usr/local /opt /usr/lib /usr/lib64 -name "$name" \
        2>/dev/null | head -1)
      [ -n "$found" ] && dirs=$dirs:$(dirname "$found")
    done
  done
  export LD_LIBRARY_PATH=$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  [ -z "$missing" ] ||
    fail "the bundle's programs need libraries that are neither here nor in" \
      "the bundle: ${missing//$'\n'/ }"
}

# Runs the checks of the bundle folder $1 into the report folder $2; $3
# and $4 are the seconds that building and preparing took.
run_checks() {
  local bundle=$1 report=$2 build_s=$3 prepare_s=$4 parallel tested log
  use_libraries "$bundle"
  # A kernel test per two cores (their CPU references are multithreaded),
  # up to 8; one at a time where the GPU admits one process (exclusive
  # mode).
  parallel=$(($(nproc) / 2))
  [ "$parallel" -gt 8 ] && parallel=8
  [ "$parallel" -lt 1 ] && parallel=1
  nvidia-smi --query-gpu=compute_mode --format=csv,noheader |
    grep -qi exclusive && parallel=1
  local began=$(date +%s) status=0
  python3 scripts/gpu_check.py kernel-tests \
    "$bundle/bin/moe-cuda-kernel-tests" "$report/kernel-tests.json" \
    "$report/kernel-tests" "$parallel" > "$report/kernel-tests.log" 2>&1 ||
    status=1
  python3 test/Cuda/gpu_cases.py check "$bundle/cases" \
    --results "$report/cases.json" > "$report/cases.log" 2>&1 || status=1
  for log in "$bundle"/cases/*/log.txt; do
    mkdir -p "$report/cases/$(basename "$(dirname "$log")")"
    cp "$log" "$report/cases/$(basename "$(dirname "$log")")/"
  done
  tested=$(date +%s)
  # A report now, so that a run cut short during the benchmark leaves one.
  python3 scripts/gpu_check.py report "$report" "$build_s" "$prepare_s" \
    "$((tested - began))" "not run yet" > /dev/null
  # PyTorch in bf16 only (the precision of the MFU and torch.compile
  # targets), each of its runs within 150 s, to keep within 8 minutes.
  BUILD_DIR=$bundle COMPILED=$bundle/benchmark PROFILE=1 TORCH_PRECISIONS=bf16 \
    TORCH_TIMEOUT=150 timeout 360 benchmarks/gpu-train.sh \
    "$report/benchmark" > "$report/benchmark.log" 2>&1 || status=1
  python3 scripts/gpu_check.py report "$report" "$build_s" "$prepare_s" \
    "$((tested - began))" "$(($(date +%s) - tested))"
  return $status
}

case ${1:-} in
--prepare)
  [ $# -eq 2 ] || usage
  archive=$(realpath -m "$2")
  logs=$(dirname "$archive")
  mkdir -p "$logs"
  build_targets "$logs/gpu-build.log"
  bundle=$build/gpu-bundle
  prepare "$bundle" "$logs"
  tar -C "$bundle" -cf - . | xz -9 -T1 > "$archive" ||
    fail "cannot write $archive"
  echo "gpu-check: wrote $archive ($(du -h "$archive" | cut -f1)) in" \
    "$(($(date +%s) - start)) s; on the GPU machine: scripts/gpu-check.sh" \
    "--run $2 REPORT_DIR"
  ;;
--run)
  [ $# -eq 3 ] || usage
  require_gpu
  [ -f "$2" ] || fail "no bundle at $2 (scripts/gpu-check.sh --prepare writes one)"
  report=$(realpath -m "$3")
  mkdir -p "$report"
  bundle=$(mktemp -d)
  trap 'rm -rf "$bundle"' EXIT
  # Python's tarfile, not tar -J: a slim image may lack xz.
  python3 -c 'import sys, tarfile
with tarfile.open(sys.argv[1]) as bundle:
    bundle.extractall(sys.argv[2], **(
        {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))' \
    "$2" "$bundle" || fail "cannot unpack $2"
  prepared=$(($(date +%s) - start))
  run_checks "$bundle" "$report" 0 "$prepared"
  ;;
-* | "") usage ;;
*)
  [ $# -eq 1 ] || usage
  require_gpu
  report=$(realpath -m "$1")
  mkdir -p "$report"
  build_targets "$report/build.log"
  built=$(date +%s)
  prepare "$build/gpu-bundle" "$report"
  run_checks "$build/gpu-bundle" "$report" "$((built - start))" \
    "$(($(date +%s) - built))"
  ;;
esac
