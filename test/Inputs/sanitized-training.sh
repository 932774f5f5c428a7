#!/bin/sh
# A short training run under the sanitizers: compile the tiny MoE, train 3
# steps with a checkpoint, resume to step 5.
#
# usage: sanitized-training.sh BIN_DIR SOURCE_DIR WORK_DIR
set -eu
bin=$1 source=$2 work=$3
mkdir -p "$work"
"$bin/moe-compile" "$source/examples/tiny-moe/config.json" --batch-size 2 \
  --seq-len 16 --adaptive-aux -o "$work/train"
run="--data $source/test/Inputs/english.txt --threads 2 --sample-tokens 8 --eval-interval 2 --eval-batches 2"
rm -f "$work/checkpoint.safetensors"
"$work/train" $run --steps 3 --checkpoint "$work/checkpoint.safetensors"
"$work/train" $run --steps 5 --resume "$work/checkpoint.safetensors" \
  --checkpoint "$work/checkpoint.safetensors"
