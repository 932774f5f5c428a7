#!/usr/bin/env python3
"""Checks a cross-entropy over labels with transformers' ignore index.

usage: check-masked-loss.py LOGITS.safetensors INPUTS.safetensors
                            LOSS.safetensors RTOL

LOGITS holds `logits` [..., vocab] (moe-run --entry logits), INPUTS
`labels`, LOSS `loss` (moe-run --entry forward of a model without aux or
z-loss terms). The loss must be the mean over the positions whose label is
not -100 of logsumexp(logits) - logits[label], computed here in double
(0 when every label is -100), within RTOL relative (plus 1e-12).
"""
import math
import sys

from safetensors_file import read_safetensors

logits_path, inputs_path, loss_path, rtol = sys.argv[1:5]
_, shape, logits = read_safetensors(logits_path)["logits"]
_, _, labels = read_safetensors(inputs_path)["labels"]
_, _, (loss,) = read_safetensors(loss_path)["loss"]
vocab = shape[-1]
total, counted = 0.0, 0
for position, label in enumerate(labels):
    if label == -100:
        continue
    row = logits[position * vocab:(position + 1) * vocab]
    top = max(row)
    total += top + math.log(sum(math.exp(v - top) for v in row)) - row[label]
    counted += 1
expected = total / counted if counted else 0.0
error = abs(loss - expected)
print("%d of %d positions counted; loss %.12g, expected %.12g"
      % (counted, len(labels), loss, expected))
sys.exit(0 if error <= float(rtol) * abs(expected) + 1e-12 else 1)
