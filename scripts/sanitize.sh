#!/usr/bin/env bash
# The sanitizer half of the suite: builds the project with clang, ASan and
# UBSan in build-sanitize/ (ccache shares objects between runs), then runs
# the unit tests, a short training run with a checkpoint and a resume, two
# interpreter steps, and the fuzz targets' corpora (replayed, then fuzzed
# briefly) under them.
set -euo pipefail
cd "$(dirname "$0")/.."
# -O1 with line tables: readable reports, and half the compile time of -O2 -g.
[ -f build-sanitize/build.ninja ] ||
  CC=clang CXX=clang++ cmake -S . -B build-sanitize -G Ninja \
    -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only -Wno-pass-failed" \
    -DMOE_SANITIZE=address,undefined -DMOE_FUZZ=ON
# What the sanitized tests run: not the tools that only lit uses (moe-import,
# moe-opt and moe-run serve the interpreter's run).
cmake --build build-sanitize --target moe-unit-tests moe-cpu-kernel-tests \
  moe-estimator-tests moe-op-coverage-tests moe-tool-files-tests \
  moe-compile moe-import moe-opt moe-run moe-fuzz-safetensors \
  moe-fuzz-checkpoint-metadata moe-fuzz-token-data moe-fuzz-config moe-fuzz-ir \
  moe-fuzz-compile moe-fuzz-interpret
# OpenMP's and OpenMPI's own allocations outlive main by design. LLVM's
# BumpPtrAllocator, inlined into our instrumented code, poisons the free part
# of a slab, and Debian's uninstrumented libMLIR then allocates from the same
# slab without unpoisoning it: manual poisoning is false alarms in a build
# that mixes the two.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:allow_user_poisoning=0
export UBSAN_OPTIONS=print_stacktrace=1
ctest --test-dir build-sanitize --output-on-failure -j2 -E '^lit$|gradient-check|GradientCheck'
