#!/usr/bin/env bash
# moe-estimate on the Skywork-MoE-146B config and its paper's cluster
# (1536 A800s): the paper's layout at three global batches, the search
# restricted to the paper's degrees (the split), the full layout search,
# and Mixtral-8x7B on 64 H100s with Megatron-Core's layout. Times each run
# (import, compile, cost model and search); the target is under 5 s each.
# docs/Estimator.md records the figures.
#
# usage: benchmarks/estimate-146b.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BUILD_DIR:-build}/bin

source benchmarks/common.sh
report_machine

timed() {
  local start=$EPOCHREALTIME
  "$@"
  awk -v start="$start" -v end="$EPOCHREALTIME" \
    'BEGIN { printf "(%.3f s)\n\n", end - start }'
}

skywork=(examples/skywork-moe-146b/config.json --cluster examples/clusters/a800-80gb.json --seq-len 8192)
paper=dp=32,tp=4,ep=4,pp=12,zero1
for batch in 768 1536 3072; do
  timed "$bin/moe-estimate" "${skywork[@]}" --global-batch "$batch" --layout "$paper"
done
timed "$bin/moe-estimate" "${skywork[@]}" --global-batch 1536 --layout "$paper" --search --top 3
timed "$bin/moe-estimate" "${skywork[@]}" --global-batch 1536 --search --top 5
timed "$bin/moe-estimate" examples/mixtral-8x7b/config.json \
  --cluster examples/clusters/h100-80gb.json --global-batch 256 \
  --layout dp=16,tp=1,ep=8,pp=4,zero1
