#!/usr/bin/env python3
"""Checks each layer's alpha trajectory against Skywork-MoE's update rule.

usage: check-adaptive-alpha.py METRICS.jsonl XI ALPHA_MAX BETA INITIAL
                               ASSIGNMENTS

From the per-step metrics (aux_loss_coeff: the alpha a step used; dropped
and drop_rate of that step): alpha_1 = INITIAL and alpha_{i+1} =
BETA * alpha_i + (1 - BETA) * min(XI * d_i, ALPHA_MAX), within f32
rounding. The drop rate d_i must be what the step dropped: dropped over
ASSIGNMENTS (the step's token-expert assignments, tokens x top_k), and with
the expert loads, the kept and dropped assignments must add up to
ASSIGNMENTS. Both regimes (clamped at ALPHA_MAX and not) must occur among the
checked updates, so that the check covers the clamp, and some update must
tell BETA from 1 - BETA (alpha_i != min(XI * d_i, ALPHA_MAX) and BETA != 0.5),
so that a swapped BETA fails. A NaN anywhere fails.
"""
import json
import math
import re
import sys

path = sys.argv[1]
xi, alpha_max, beta, initial = map(float, sys.argv[2:6])
assignments = int(sys.argv[6])
steps = [json.loads(line) for line in open(path) if line.strip()]
steps = [s for s in steps if "loss" in s]
layers = sorted({int(m.group(1)) for s in steps for k in s
                 for m in [re.match(r"model\.layers\.(\d+)\.block_sparse_moe\.aux_loss_coeff$", k)] if m})
if not layers or len(steps) < 2:
    sys.exit("%s: no alpha trajectory" % path)


def near(value, expected, rtol, atol):
    return abs(value - expected) <= rtol * abs(expected) + atol


clamped = unclamped = telling = failures = 0
for layer in layers:
    prefix = "model.layers.%d.block_sparse_moe." % layer
    expected = swapped = initial
    for index, step in enumerate(steps):
        alpha = step[prefix + "aux_loss_coeff"]
        if not near(alpha, expected, 1e-6, 1e-9):
            print("layer %d step %d: alpha %.9g, expected %.9g"
                  % (layer, step["step"], alpha, expected))
            failures += 1
        if index > 0 and not near(alpha, swapped, 1e-6, 1e-9):
            telling += 1
        dropped = step[prefix + "dropped"]
        drop_rate = step[prefix + "drop_rate"]
        load = step.get(prefix + "expert_load")
        if (not isinstance(dropped, int) or not 0 <= dropped <= assignments
                or not near(drop_rate, dropped / assignments, 1e-6, 1e-9)
                or (load is not None and sum(load) + dropped != assignments)):
            print("layer %d step %d: dropped %s, drop rate %.9g, expert "
                  "loads %s of %d assignments"
                  % (layer, step["step"], dropped, drop_rate, load,
                     assignments))
            failures += 1
        target = xi * drop_rate
        # The last step's update is not observed: it counts for no regime.
        if index + 1 < len(steps):
            if target > alpha_max:
                clamped += 1
            else:
                unclamped += 1
        expected = beta * alpha + (1 - beta) * min(target, alpha_max)
        swapped = (1 - beta) * alpha + beta * min(target, alpha_max)
print("%d layers x %d steps: %d clamped, %d unclamped updates, %d tell beta "
      "from 1 - beta, %d failures"
      % (len(layers), len(steps), clamped, unclamped, telling, failures))
sys.exit(1 if failures or not clamped or not unclamped or not telling else 0)
