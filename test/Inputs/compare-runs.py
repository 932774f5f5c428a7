#!/usr/bin/env python3
"""Compares a moe-run training run with a compiled binary's run.

usage: compare-runs.py REF.jsonl OUT.jsonl REF.safetensors OUT.safetensors RTOL
                       [SUFFIX=RTOL...]

REF.jsonl is moe-run's --metrics, OUT.jsonl the binary's. Both must have the
same steps (at least one) and, per step, the same results (loss, learning
rate, gradient norm and every per-layer metric): floats within RTOL relative
(plus 1e-7 absolute), integers (drop counts, expert loads) equal, lists of
the same length. Both safetensors files must hold the same tensors (at least
one), with the same dtypes and shapes; every float tensor of the final state
must agree within RTOL (relative L2 distance), integer tensors must be equal.
A SUFFIX=RTOL argument gives the results whose names end with SUFFIX their
own tolerance. A NaN or infinity anywhere fails: every comparison is written
`not (error <= tolerance)`, and a metric that is null (as the metrics files
write a NaN or an infinity) fails.
"""
import json
import math
import sys

from safetensors_file import read_safetensors


TIMING = {"step_seconds", "tokens_per_second"}


def step_lines(path):
    lines = [json.loads(line) for line in open(path) if line.strip()]
    return [line for line in lines if "loss" in line]


def is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def close(a, b, rtol):
    if isinstance(a, list) or isinstance(b, list):
        return (isinstance(a, list) and isinstance(b, list)
                and len(a) == len(b)
                and all(close(x, y, rtol) for x, y in zip(a, b)))
    if a is None or b is None:
        return False
    if not is_number(a) or not is_number(b):
        return a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    # f32 results of different kernels: relative, with a floor for values
    # that are differences of nearly equal numbers (the aux losses). NaN and
    # infinities fail: the difference is NaN or the bound infinite.
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
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
if not ref_steps:
    print("no steps to compare in %s and %s" % (ref_metrics, out_metrics))
    sys.exit(1)
for ref_line, out_line in zip(ref_steps, out_steps):
    keys = set(ref_line) - TIMING
    if keys != set(out_line) - TIMING:
        print("step %s: the results differ: %s" % (
            ref_line.get("step"), sorted(keys ^ (set(out_line) - TIMING))))
        sys.exit(1)
    for key in sorted(keys):
        if not close(ref_line[key], out_line[key], rtol_of(key)):
            print("step %s %s: interpreter %s compiled %s" % (
                ref_line.get("step"), key, ref_line[key], out_line[key]))
            failures += 1
    print("step %s: %d results compared, loss interpreter %.7f compiled %.7f"
          % (ref_line.get("step"), len(keys), ref_line["loss"],
             out_line["loss"]))

ref, out = read_safetensors(ref_path), read_safetensors(out_path)
if sorted(ref) != sorted(out):
    print("the tensors differ: %s" % sorted(set(ref) ^ set(out)))
    sys.exit(1)
if not ref:
    print("no tensors to compare in %s and %s" % (ref_path, out_path))
    sys.exit(1)
worst = (0.0, "")
for name in sorted(ref):
    (ref_dtype, ref_shape, a), (out_dtype, out_shape, b) = ref[name], out[name]
    if ref_dtype != out_dtype or list(ref_shape) != list(out_shape):
        print("%s: %s %s vs %s %s" % (name, ref_dtype, ref_shape, out_dtype,
                                      out_shape))
        failures += 1
        continue
    if len(a) != len(b) or len(a) != math.prod(ref_shape):
        print("%s: %d values vs %d for shape %s" % (name, len(a), len(b),
                                                    ref_shape))
        failures += 1
        continue
    if ref_dtype.startswith("I"):
        if a != b:
            print("%s differs: %s vs %s" % (name, a[:4], b[:4]))
            failures += 1
        continue
    norm = math.sqrt(sum(x * x for x in a))
    diff = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    error = diff / norm if norm > 0 else diff
    # A NaN error (from a NaN or infinity in either tensor) is the worst.
    if not math.isnan(worst[0]) and not (error <= worst[0]):
        worst = (error, name)
    if not (error <= rtol):
        print("%s: relative difference %.2e" % (name, error))
        failures += 1
print("%d tensors compared, worst relative difference %.2e (%s), %d failures"
      % (len(ref), worst[0], worst[1], failures))
sys.exit(1 if failures else 0)
