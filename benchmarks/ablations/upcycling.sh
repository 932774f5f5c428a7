#!/usr/bin/env bash
# Skywork-MoE section 3 at small scale: upcycling against training from
# scratch. A dense model (the tiny MoE's dimensions with one FFN of 352 per
# layer) trains for a budget of C steps; then the MoE of the same config
# (8 experts of 352, top-2, dropless, made by moe-upcycle, so both starts
# are the same model) trains for C/3 and for 2C steps, from scratch and
# upcycled from the dense checkpoint, the upcycled one at two peak learning
# rates. Writes $BUILD_DIR/ablations/upcycling/upcycling.csv and
# upcycling.png (loss and expert similarity against tokens) and prints the
# summary table of docs/Ablations.md.
#
# Environment: DATA, BUILD_DIR and PYTHON as in common.sh; DENSE_STEPS (C,
# default 1200).
ablation=upcycling
source "$(dirname "$0")/common.sh"
dense_steps=${DENSE_STEPS:-1200}
short=$((dense_steps / 3))
long=$((dense_steps * 2))

python3 test/Inputs/edit-json.py examples/tiny-moe/config.json \
  vocab_size="$vocab" model_type='"llama"' -num_local_experts \
  -num_experts_per_tok -router_aux_loss_coef -moe_aux_loss_kind \
  -moe_capacity_factor moe_batch_size=12 > "$work/dense.json"
"$bin/moe-import" "$work/dense.json" -o "$work/dense.mlir"
"$bin/moe-opt" "$work/dense.mlir" --moe-upcycle="experts=8 top-k=2" \
  -o "$work/moe.mlir"

# run NAME MODEL STEPS PEAK_LR [binary options...]: compiles MODEL with the
# ablations' optimizer at PEAK_LR decaying over STEPS and trains it.
run() {
  local name=$1 model=$2 steps=$3 lr=$4
  shift 4
  echo "== upcycling: $name ($steps steps, lr $lr $*)"
  "$bin/moe-compile" "$work/$model.mlir" -o "$work/$name" --optimizer \
    "lr=$lr min-lr=$(python3 -c "print($lr / 10)") warmup-steps=$((steps / 20)) decay-steps=$steps beta2=0.99 weight-decay=0.1 max-grad-norm=1.0"
  rm -f "$work/$name.jsonl"
  "$work/$name" --data "$work/tokens.bin" --steps "$steps" \
    --eval-interval $((steps / 4)) --eval-batches 50 --log-interval $((steps / 4)) \
    --similarity-interval $((steps / 24 > 0 ? steps / 24 : 1)) --sample-tokens 0 \
    --metrics "$work/$name.jsonl" "$@" | grep -E '^step .*(validation|/)' || true
}

# A new dense run each time (a binary refuses to replace its own run's
# checkpoint that is further along than it starts).
rm -f "$work/dense.safetensors"
run dense dense "$dense_steps" 1e-3 --checkpoint "$work/dense.safetensors"
for steps in "$short" "$long"; do
  run "scratch-$steps" moe "$steps" 1e-3
  run "upcycled-lr1e-3-$steps" moe "$steps" 1e-3 --init-from "$work/dense.safetensors"
  run "upcycled-lr3e-4-$steps" moe "$steps" 3e-4 --init-from "$work/dense.safetensors"
done

"$python" benchmarks/ablations/plot-upcycling.py "$work" "$dense_steps" \
  "$short" "$long"
