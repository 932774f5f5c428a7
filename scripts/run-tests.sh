#!/usr/bin/env bash
# The whole test suite: lit tests of the compiler and gtest unit tests of the
# runtime and reference kernels, all through ctest; then the sanitizer build
# with its unit tests, training run and fuzz targets (scripts/sanitize.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j2
scripts/sanitize.sh
