#!/bin/sh
# The reference interpreter under the sanitizers: two steps of a bf16,
# micro-batched, recomputing train step of a small MoE with one-token
# sequences (its expert FFN once read weights the value map had moved when
# it grew: a use after free that only ASan sees every time).
#
# usage: sanitized-interpreter.sh BIN_DIR SOURCE_DIR WORK_DIR
set -eu
bin=$1 source=$2 work=$3
mkdir -p "$work"
cat > "$work/config.json" <<'JSON'
{"model_type": "mixtral", "vocab_size": 256, "hidden_size": 32,
 "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
 "num_key_value_heads": 2, "max_position_embeddings": 16,
 "num_local_experts": 4, "num_experts_per_tok": 2,
 "moe_aux_loss_kind": "skywork", "moe_capacity_factor": 1.25,
 "moe_batch_size": 2, "moe_seq_len": 1}
JSON
"$bin/moe-import" "$work/config.json" -o "$work/model.mlir"
"$bin/moe-opt" "$work/model.mlir" \
  --moe-train-pipeline="recompute=true micro-batches=2 precision=bf16" \
  -o "$work/train.mlir"
"$bin/moe-run" "$work/train.mlir" --entry train_step --steps 2 \
  --data "$source/test/Inputs/english.txt"
