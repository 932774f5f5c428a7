#!/usr/bin/env python3
"""Checks each layer's alpha trajectory against Skywork-MoE's update rule.

usage: check-adaptive-alpha.py METRICS.jsonl XI ALPHA_MAX BETA INITIAL

From the per-step metrics (aux_loss_coeff: the alpha a step used; dropped
and drop_rate of that step): alpha_1 = INITIAL and alpha_{i+1} =
BETA * alpha_i + (1 - BETA) * min(XI * d_i, ALPHA_MAX), within f32
rounding. Both regimes (clamped at ALPHA_MAX and not) must occur, so that
the check covers the clamp.
"""
import json
import re
import sys

path = sys.argv[1]
xi, alpha_max, beta, initial = map(float, sys.argv[2:6])
steps = [json.loads(line) for line in open(path)]
steps = [s for s in steps if "loss" in s]
layers = sorted({int(m.group(1)) for s in steps for k in s
                 for m in [re.match(r"model\.layers\.(\d+)\.block_sparse_moe\.aux_loss_coeff$", k)] if m})
if not layers or len(steps) < 2:
    sys.exit("%s: no alpha trajectory" % path)
clamped = unclamped = failures = 0
for layer in layers:
    prefix = "model.layers.%d.block_sparse_moe." % layer
    expected = initial
    for step in steps:
        alpha = step[prefix + "aux_loss_coeff"]
        if abs(alpha - expected) > 1e-6 * max(abs(expected), 1e-3):
            print("layer %d step %d: alpha %.9g, expected %.9g"
                  % (layer, step["step"], alpha, expected))
            failures += 1
        target = xi * step[prefix + "drop_rate"]
        if target > alpha_max:
            clamped += 1
        else:
            unclamped += 1
        expected = beta * alpha + (1 - beta) * min(target, alpha_max)
print("%d layers x %d steps: %d clamped, %d unclamped updates, %d failures"
      % (len(layers), len(steps), clamped, unclamped, failures))
sys.exit(1 if failures or not clamped or not unclamped else 0)
