# Shared by the Skywork-MoE ablation scripts (sourced, with $ablation set).
#
# The model: the tiny MoE (4 layers, 4 heads, d=128, context 64) with 16
# experts, top-2, capacity factor 1.0, so that routing and token dropping
# matter; character vocabulary of the corpus; batch 12; AdamW lr 1e-3 with
# 100 warmup steps and cosine decay over the run.
#
# Environment: DATA (default ../shared/data/tinyshakespeare.txt), STEPS
# (default 1500), BUILD_DIR (default build), PYTHON (a Python with
# matplotlib; by default a venv under $BUILD_DIR/ablation-venv gets it from
# PyPI).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin=${BUILD_DIR:-build}/bin
data=${DATA:-../shared/data/tinyshakespeare.txt}
steps=${STEPS:-1500}
work=${BUILD_DIR:-build}/ablations/$ablation
mkdir -p "$work"
if [ ! -x "$bin/moe-compile" ]; then
  echo "error: $bin/moe-compile is missing: build the project first (scripts/build.sh)" >&2
  exit 1
fi
if [ ! -f "$data" ]; then
  echo "error: $data: no such corpus (set DATA)" >&2
  exit 1
fi

vocab=$(python3 benchmarks/char-tokens.py "$data" "$work/tokens.bin")
python3 test/Inputs/edit-json.py examples/tiny-moe/config.json \
  vocab_size="$vocab" num_local_experts=16 moe_capacity_factor=1.0 \
  > "$work/config.json"
optimizer="lr=1e-3 min-lr=1e-4 warmup-steps=100 decay-steps=$steps beta2=0.99 weight-decay=0.1 max-grad-norm=1.0"

python=${PYTHON:-}
if [ -z "$python" ]; then
  python=${BUILD_DIR:-build}/ablation-venv/bin/python
  if ! "$python" -c "import matplotlib" 2>/dev/null; then
    python3 -m venv "${BUILD_DIR:-build}/ablation-venv"
    "${BUILD_DIR:-build}/ablation-venv/bin/pip" install -q matplotlib
  fi
fi

# train_variant NAME "CONFIG EDITS" [moe-compile options...]: compiles and
# trains one variant (the config edited with edit-json.py's KEY=VALUE
# edits), its metrics in $work/NAME.jsonl.
train_variant() {
  local name=$1 edits=$2
  shift 2
  echo "== $ablation: $name ($edits $*)"
  # shellcheck disable=SC2086
  python3 test/Inputs/edit-json.py "$work/config.json" $edits > "$work/$name.json"
  "$bin/moe-compile" "$work/$name.json" --batch-size 12 --seq-len 64 \
    --optimizer "$optimizer" "$@" -o "$work/$name"
  rm -f "$work/$name.jsonl"
  "$work/$name" --data "$work/tokens.bin" --steps "$steps" \
    --eval-interval 250 --eval-batches 50 --log-interval 250 \
    --similarity-interval 250 --sample-tokens 0 --metrics "$work/$name.jsonl" \
    | grep -E '^step .*(validation|/)' || true
}
