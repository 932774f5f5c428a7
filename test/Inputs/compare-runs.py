#!/usr/bin/env python3
"""Compares a moe-run training run with a compiled binary's run.

usage: compare-runs.py MOE_RUN_LOG METRICS_JSONL REF.safetensors OUT.safetensors RTOL

Each step's loss, and every tensor of the final state (relative L2
distance), must agree within RTOL; integer tensors must be equal.
"""
import json
import math
import struct
import sys


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        fmt = {"F32": "f", "F64": "d", "I32": "i", "I64": "q"}[entry["dtype"]]
        count = (end - begin) // struct.calcsize(fmt)
        tensors[name] = struct.unpack("<%d%s" % (count, fmt), data[begin:end])
    return tensors


ref_log, metrics, ref_path, out_path, rtol = sys.argv[1:6]
rtol = float(rtol)
ref_losses = [float(line.split()[3]) for line in open(ref_log)
              if line.startswith("step ")]
out_losses = [json.loads(line)["loss"] for line in open(metrics)
              if "loss" in json.loads(line)]
failures = 0
if len(ref_losses) != len(out_losses):
    print("step counts differ: %d vs %d" % (len(ref_losses), len(out_losses)))
    sys.exit(1)
for step, (a, b) in enumerate(zip(ref_losses, out_losses), 1):
    error = abs(a - b) / abs(a)
    print("step %d loss: interpreter %.7f compiled %.7f relative %.2e"
          % (step, a, b, error))
    failures += error > rtol

ref, out = read_safetensors(ref_path), read_safetensors(out_path)
if sorted(ref) != sorted(out):
    print("the tensors differ: %s" % sorted(set(ref) ^ set(out)))
    sys.exit(1)
worst = (0.0, "")
for name in sorted(ref):
    a, b = ref[name], out[name]
    if isinstance(a[0], int):
        if a != b:
            print("%s differs: %s vs %s" % (name, a[:4], b[:4]))
            failures += 1
        continue
    norm = math.sqrt(sum(x * x for x in a))
    diff = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    error = diff / norm if norm > 0 else diff
    worst = max(worst, (error, name))
    if error > rtol:
        print("%s: relative difference %.2e" % (name, error))
        failures += 1
print("%d tensors compared, worst relative difference %.2e (%s), %d failures"
      % (len(ref), worst[0], worst[1], failures))
sys.exit(1 if failures else 0)
