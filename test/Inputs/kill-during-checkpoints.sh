#!/bin/sh
# Kills a training binary with SIGKILL several times while it writes a
# checkpoint every step, resuming each time. After every kill the checkpoint
# must load (the old or the new one, never a torn file) and at most the one
# temporary file of the interrupted write may exist; the next run removes it.
#
# usage: kill-during-checkpoints.sh BINARY DATA DIR KILLS
set -u
binary=$1 data=$2 dir=$3 kills=$4
checkpoint=$dir/killed.safetensors
run="--data $data --threads 1 --sample-tokens 0 --eval-interval 0 --log-interval 1000"
rm -f "$checkpoint" "$checkpoint".tmp-*
for i in $(seq 1 "$kills"); do
  resume=""
  [ -e "$checkpoint" ] && resume="--resume $checkpoint"
  "$binary" $run --steps 1000000 --checkpoint "$checkpoint" \
    --checkpoint-interval 1 $resume > /dev/null &
  pid=$!
  # Once a checkpoint exists (start-up takes longer on a loaded machine),
  # kill it at a different point of its step-write cycle each time.
  while [ ! -e "$checkpoint" ] && kill -0 "$pid" 2> /dev/null; do
    sleep 0.1
  done
  sleep "0.$((i * 17 % 10))$i"
  kill -9 "$pid"
  wait "$pid" 2> /dev/null
  # --steps 0 loads and checks the whole checkpoint, then refuses to train.
  "$binary" $run --steps 0 --resume "$checkpoint" > "$dir/load.txt" 2>&1
  if ! grep -q "nothing to train" "$dir/load.txt"; then
    echo "kill $i: the checkpoint does not load:"; cat "$dir/load.txt"; exit 1
  fi
  temporaries=$(ls "$checkpoint".tmp-* 2> /dev/null | wc -l)
  if [ "$temporaries" -gt 1 ]; then
    echo "kill $i: $temporaries temporary files"; exit 1
  fi
  echo "kill $i: $(grep -o 'at step [0-9]*' "$dir/load.txt"), $temporaries temporary file(s)"
done
step=$(grep -o 'at step [0-9]*' "$dir/load.txt" | grep -o '[0-9]*$')
"$binary" $run --steps $((step + 1)) --resume "$checkpoint" --checkpoint "$checkpoint" > /dev/null || exit 1
temporaries=$(ls "$checkpoint".tmp-* 2> /dev/null | wc -l)
echo "after a clean run: $temporaries temporary files"
