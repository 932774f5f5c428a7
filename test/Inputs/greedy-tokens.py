#!/usr/bin/env python3
"""Greedy decoding with moe-run's logits, as the training binaries' sampler
with --top-k 1 should decode.

usage: greedy-tokens.py MODEL.mlir COUNT ids|text PROMPT_TOKEN...
Continues the prompt by COUNT tokens, each the argmax of the logits of the
last position of a window of the last seq_len tokens (zeros after it),
from the model's initialization (moe-run --seed 0). Prints the continuation
as ids separated by spaces (`ids`) or, as text data spells it, the prompt
and continuation as bytes with a token past 255 as <id> (`text`).
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

from safetensors_file import read_safetensors

model, count, form = sys.argv[1], int(sys.argv[2]), sys.argv[3]
prompt = [int(t) for t in sys.argv[4:]]
# The logits function's input shape [batch, seq], from the IR.
for line in open(model):
    if "func.func @logits" in line:
        dims = line.split("tensor<")[1].split("xi32")[0]
        batch, seq = (int(d) for d in dims.split("x"))
        break
with tempfile.TemporaryDirectory() as work:
    inputs, outputs = (os.path.join(work, n) for n in ("in.st", "out.st"))
    context = list(prompt)
    for _ in range(count):
        window = context[-seq:]
        ids = window + [0] * (batch * seq - len(window))
        header = json.dumps({"input_ids": {
            "dtype": "I32", "shape": [batch, seq],
            "data_offsets": [0, 4 * batch * seq]}}).encode()
        with open(inputs, "wb") as f:
            f.write(struct.pack("<Q", len(header)) + header +
                    struct.pack("<%di" % len(ids), *ids))
        subprocess.run(["moe-run", model, "--seed", "0", "--entry", "logits",
                        "--inputs", inputs, "--output", outputs],
                       stdout=subprocess.DEVNULL, check=True)
        _, shape, logits = read_safetensors(outputs)["logits"]
        vocab = shape[2]
        row = logits[(len(window) - 1) * vocab:len(window) * vocab]
        context.append(max(range(vocab), key=lambda v: row[v]))
if form == "ids":
    print(" ".join(str(t) for t in context[len(prompt):]))
else:
    sys.stdout.buffer.write(b"".join(
        bytes([t]) if t < 256 else b"<%d>" % t for t in context) + b"\n")
