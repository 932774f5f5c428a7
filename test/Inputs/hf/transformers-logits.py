#!/usr/bin/env python3
"""Loads a model folder with transformers and writes its logits.

usage: transformers-logits.py MODEL_DIR INPUTS.safetensors OUT.safetensors

Run by hand, with a Python that has torch, transformers and safetensors, to
check that moe-export's folders load in transformers and compute what
moe-run computes (see docs/HuggingFace.md):
INPUTS holds input_ids (I32 [batch, seq]); OUT gets logits (F32).
"""
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file

model_dir, inputs, out = sys.argv[1:4]
model = transformers.AutoModelForCausalLM.from_pretrained(
    model_dir, dtype=torch.float32).eval()
ids = load_file(inputs)["input_ids"].long()
with torch.no_grad():
    logits = model(input_ids=ids).logits.float().contiguous()
save_file({"logits": logits}, out)
print(type(model).__name__, "logits", list(logits.shape))
