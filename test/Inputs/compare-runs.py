#!/usr/bin/env python3
"""Compares a moe-run training run with a compiled binary's run.

usage: compare-runs.py REF.jsonl OUT.jsonl REF.safetensors OUT.safetensors RTOL
                       [SUFFIX=RTOL...]

REF.jsonl is moe-run's --metrics, OUT.jsonl the binary's. Both must have the
same steps and, per step, the same results (loss, learning rate, gradient
norm and every per-layer metric): floats within RTOL relative (plus 1e-7
absolute), integers (drop counts, expert loads) equal. Every
tensor of the final state must agree within RTOL (relative L2 distance);
integer tensors must be equal. A SUFFIX=RTOL argument gives the results
whose names end with SUFFIX their own tolerance.
"""
import json
import math
import sys

from safetensors_file import read_safetensors


TIMING = {"step_seconds", "tokens_per_second"}


def step_lines(path):
    return [json.loads(line) for line in open(path)
            if "loss" in json.loads(line)]


def close(a, b, rtol):
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y, rtol)
                                        for x, y in zip(a, b))
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    # f32 results of different kernels: relative, with a floor for values
    # that are differences of nearly equal numbers (the aux losses).
    return abs(a - b) <= rtol * max(abs(a), abs(b)) + 1e-7


ref_metrics, out_metrics, ref_path, out_path, rtol = sys.argv[1:6]
rtol = float(rtol)
key_rtols = [(suffix, float(value)) for suffix, value in
             (arg.split("=") for arg in sys.argv[6:])]


def rtol_of(key):
    return next((value for suffix, value in key_rtols
                 if key.endswith(suffix)), rtol)


ref_steps, out_steps = step_lines(ref_metrics), step_lines(out_metrics)
failures = 0
if len(ref_steps) != len(out_steps):
    print("step counts differ: %d vs %d" % (len(ref_steps), len(out_steps)))
    sys.exit(1)
for ref_line, out_line in zip(ref_steps, out_steps):
    keys = set(ref_line) - TIMING
    if keys != set(out_line) - TIMING:
        print("step %s: the results differ: %s" % (
            ref_line["step"], sorted(keys ^ (set(out_line) - TIMING))))
        sys.exit(1)
    for key in sorted(keys):
        if not close(ref_line[key], out_line[key], rtol_of(key)):
            print("step %s %s: interpreter %s compiled %s" % (
                ref_line["step"], key, ref_line[key], out_line[key]))
            failures += 1
    print("step %s: %d results compared, loss interpreter %.7f compiled %.7f"
          % (ref_line["step"], len(keys), ref_line["loss"], out_line["loss"]))

ref, out = read_safetensors(ref_path), read_safetensors(out_path)
if sorted(ref) != sorted(out):
    print("the tensors differ: %s" % sorted(set(ref) ^ set(out)))
    sys.exit(1)
worst = (0.0, "")
for name in sorted(ref):
    a, b = ref[name][2], out[name][2]
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
