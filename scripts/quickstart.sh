#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install the dependencies, build
# the compiler and the tiny MoE's training binary, and train it on the CPU on
# real English text (Debian's fortune cookies), ending with a sample of
# generated text. Pass another text file to train on it instead.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Installing dependencies"
scripts/install-deps.sh
echo "== Building"
scripts/build.sh

data=${1:-}
if [ -z "$data" ]; then
  data=build/data/fortunes.txt
  mkdir -p build/data
  find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' \
    -print0 | sort -z | xargs -0 cat > "$data"
fi
echo "== Training the tiny MoE (4 layers, d=128, 8 experts, top-2) on $data"
# A new run each time: a binary refuses to replace a checkpoint of the
# model further along than where it starts (--resume would continue it).
rm -f build/tiny-moe.safetensors build/tiny-moe.jsonl
build/bin/train-tiny-moe --data "$data" --steps 2000 --eval-interval 250 --log-interval 50 \
  --checkpoint build/tiny-moe.safetensors --metrics build/tiny-moe.jsonl
