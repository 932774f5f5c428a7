#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install the dependencies, build,
# import the tiny example MoE and evaluate its initial loss on real English
# text (Debian's fortunes) with the reference interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Installing dependencies"
scripts/install-deps.sh
echo "== Building"
scripts/build.sh

data=${1:-/usr/share/games/fortunes/fortunes}
echo "== Importing examples/tiny-moe/config.json"
build/bin/moe-import examples/tiny-moe/config.json -o build/tiny-moe.mlir
build/bin/moe-opt --moe-model-stats build/tiny-moe.mlir -o /dev/null
echo "== Initial loss on $data (a uniform guess over 256 bytes gives ln 256 = 5.545)"
build/bin/moe-run build/tiny-moe.mlir --seed 0 --data "$data"
