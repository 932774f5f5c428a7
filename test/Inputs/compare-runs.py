#!/usr/bin/env python3
"""Compares a moe-run training run with a compiled binary's run.

usage: compare-runs.py REF.jsonl OUT.jsonl REF.safetensors OUT.safetensors RTOL
                       [SUFFIX=RTOL...] [--flipped-rtol=RTOL]

REF.jsonl is moe-run's --metrics, OUT.jsonl the binary's. Both must have the
same steps (at least one) and, per step, the same results (loss, learning
rate, gradient norm and every per-layer metric): floats within RTOL relative
(plus 1e-7 absolute), integers (drop counts, expert loads) equal, lists of
the same length. Both safetensors files must hold the same tensors (at least
one), with the same dtypes and shapes; every float tensor of the final state
must agree within RTOL (relative L2 distance), integer tensors must be equal.
A SUFFIX=RTOL argument gives the results and tensors whose names end
with SUFFIX their own tolerance. A NaN or infinity anywhere fails: every
comparison is written `not (error <= tolerance)`, and a metric that is null
(as the metrics files write a NaN or an infinity) fails.

--flipped-rtol=RTOL admits routing flips, for runs that round to bf16 in
other orders: there a last-bit difference can turn a near tie of two
experts (or of two tokens for an expert's last place) the other way. A
layer (`...layers.N.`) whose integer results (or routing counts, which
--micro-batches makes means) differ at a step flipped there: it is
reported, and from that step on its results, integers too, and at the end
its tensors are held to RTOL (or their own tolerance, if looser) instead.
At least one layer must not flip, so that the tight tolerances still hold
somewhere. The other layers and the tensors outside the layers keep their
tolerances, though a flip moves them a little too (the gradients flow
through the flipped layer): where that exceeds them, the comparison fails,
and the flip's reach needs a look.
"""
import json
import math
import re
import sys

from safetensors_file import read_safetensors


# The run's own figures (timing, the data consumed), not the model's.
RUN_FIGURES = {"step_seconds", "tokens_per_second", "model_flops_per_second",
               "consumed_samples", "time"}


def step_lines(path):
    lines = [json.loads(line) for line in open(path) if line.strip()]
    return [line for line in lines if "loss" in line]


def is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def close(a, b, rtol, exact_integers=True):
    if isinstance(a, list) or isinstance(b, list):
        return (isinstance(a, list) and isinstance(b, list)
                and len(a) == len(b)
                and all(close(x, y, rtol, exact_integers)
                        for x, y in zip(a, b)))
    if a is None or b is None:
        return False
    if not is_number(a) or not is_number(b):
        return a == b
    if exact_integers and isinstance(a, int) and isinstance(b, int):
        return a == b
    # f32 results of different kernels: relative, with a floor for values
    # that are differences of nearly equal numbers (the aux losses). NaN and
    # infinities fail: the difference is NaN or the bound infinite.
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    return abs(a - b) <= rtol * max(abs(a), abs(b)) + 1e-7


ref_metrics, out_metrics, ref_path, out_path, rtol = sys.argv[1:6]
rtol = float(rtol)
FLIPPED = "--flipped-rtol="
flipped_rtol = next((float(arg[len(FLIPPED):]) for arg in sys.argv[6:]
                     if arg.startswith(FLIPPED)), None)
key_rtols = [(suffix, float(value)) for suffix, value in
             (arg.split("=") for arg in sys.argv[6:]
              if not arg.startswith(FLIPPED))]


def layer_of(name):
    """The layer prefix of a result or tensor name (`model.layers.3.`)."""
    match = re.match(r"(.*\blayers\.\d+\.)", name)
    return match.group(1) if match else None


def is_integral(value):
    if isinstance(value, list):
        return bool(value) and all(is_integral(x) for x in value)
    return isinstance(value, int) and not isinstance(value, bool)


# Routing counts: integers, or with --micro-batches their means over a
# step's micro-batches (55.5), which differ just the same when a token flips.
COUNTS = (".expert_load", ".dropped")


def is_count(key, value):
    return is_integral(value) or key.endswith(COUNTS)


def rtol_of(key):
    return next((value for suffix, value in key_rtols
                 if key.endswith(suffix)), rtol)


ref_steps, out_steps = step_lines(ref_metrics), step_lines(out_metrics)
failures = 0
layers, flipped = set(), set()
if len(ref_steps) != len(out_steps):
    print("step counts differ: %d vs %d" % (len(ref_steps), len(out_steps)))
    sys.exit(1)
if not ref_steps:
    print("no steps to compare in %s and %s" % (ref_metrics, out_metrics))
    sys.exit(1)
for ref_line, out_line in zip(ref_steps, out_steps):
    keys = set(ref_line) - RUN_FIGURES
    if keys != set(out_line) - RUN_FIGURES:
        print("step %s: the results differ: %s" % (
            ref_line.get("step"), sorted(keys ^ (set(out_line) - RUN_FIGURES))))
        sys.exit(1)
    layers |= {layer_of(key) for key in keys} - {None}
    if flipped_rtol is not None:
        for key in sorted(keys):
            layer = layer_of(key)
            if (layer and layer not in flipped and is_count(key, ref_line[key])
                    and ref_line[key] != out_line[key]):
                print("step %s: %s routed differently (%s: interpreter %s "
                      "compiled %s); its results and tensors from here on "
                      "within %g" % (ref_line.get("step"), layer, key,
                                     ref_line[key], out_line[key],
                                     flipped_rtol))
                flipped.add(layer)
    for key in sorted(keys):
        if layer_of(key) in flipped:
            agree = close(ref_line[key], out_line[key],
                          max(flipped_rtol, rtol_of(key)), False)
        else:
            agree = close(ref_line[key], out_line[key], rtol_of(key))
        if not agree:
            print("step %s %s: interpreter %s compiled %s" % (
                ref_line.get("step"), key, ref_line[key], out_line[key]))
            failures += 1
    print("step %s: %d results compared, loss interpreter %.7f compiled %.7f"
          % (ref_line.get("step"), len(keys), ref_line["loss"],
             out_line["loss"]))

if flipped and flipped >= layers:
    print("every layer routed differently: nothing held to %g" % rtol)
    failures += 1

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
    tolerance = rtol_of(name)
    if layer_of(name) in flipped:
        tolerance = max(flipped_rtol, tolerance)
    if not (error <= tolerance):
        print("%s: relative difference %.2e" % (name, error))
        failures += 1
print("%d tensors compared, worst relative difference %.2e (%s), %d failures"
      % (len(ref), worst[0], worst[1], failures))
sys.exit(1 if failures else 0)
