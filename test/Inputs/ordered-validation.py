#!/usr/bin/env python3
"""The validation loss of a training binary's --eval-batches all, from
moe-run: the mean lm_loss of `forward` over the whole batches of the
windows of seq + 1 tokens in order (window w: tokens [w*seq, w*seq + seq]),
each batch run by moe-run on the checkpoint's weights.

usage: ordered-validation.py MODEL.mlir CHECKPOINT TEXT BATCH SEQ WORK METRICS
Compares it with the val_loss of the binary's METRICS file (within 1e-5
relative) and prints both and the batch count; exits 1 if they differ.
"""
import json
import os
import struct
import subprocess
import sys

from safetensors_file import read_safetensors

model, checkpoint, text, work, metrics = (sys.argv[1], sys.argv[2],
                                          sys.argv[3], sys.argv[6], sys.argv[7])
batch, seq = int(sys.argv[4]), int(sys.argv[5])
tokens = open(text, "rb").read()
windows = (len(tokens) - 1) // seq
losses = []
for b in range(windows // batch):
    ids, labels = [], []
    for w in range(b * batch, (b + 1) * batch):
        ids += tokens[w * seq:w * seq + seq]
        labels += tokens[w * seq + 1:w * seq + seq + 1]
    inputs, outputs = (os.path.join(work, n) for n in ("in.st", "out.st"))
    header, data = {}, b""
    for name, values in (("input_ids", ids), ("labels", labels)):
        raw = struct.pack("<%di" % len(values), *values)
        header[name] = {"dtype": "I32", "shape": [batch, seq],
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text_header = json.dumps(header).encode()
    with open(inputs, "wb") as f:
        f.write(struct.pack("<Q", len(text_header)) + text_header + data)
    subprocess.run(["moe-run", model, "--entry", "forward", "--params",
                    checkpoint, "--inputs", inputs, "--output", outputs],
                   check=True, stdout=subprocess.DEVNULL)
    losses.append(read_safetensors(outputs)["lm_loss"][2][0])
expected = sum(losses) / len(losses)
binary = [json.loads(line)["val_loss"] for line in open(metrics)
          if "val_loss" in line][-1]
print("validation loss: moe-run %.7f, binary %.7f, over %d batches"
      % (expected, binary, len(losses)))
sys.exit(0 if abs(binary - expected) <= 1e-5 * abs(expected) else 1)
