#!/usr/bin/env python3
"""Checks moe-estimate's model flops against moe-cost-model's counts.

usage: check-estimate-flops.py COST ESTIMATE SEQUENCES_PER_GPU

COST is moe-cost-model's report of a one-sequence train step; ESTIMATE is
moe-estimate's output for a layout with SEQUENCES_PER_GPU sequences per
GPU per step. The estimate's flops per GPU must be the report's GEMM and
attention flops (forward and backward) times that, to 3 digits.
"""
import re
import sys

cost, estimate, sequences = open(sys.argv[1]).read(), open(sys.argv[2]).read(), int(sys.argv[3])
per_sequence = 0
for match in re.finditer(r" (?:forward|backward): gemm (\d+) flops, attention (\d+) flops", cost):
    per_sequence += int(match.group(1)) + int(match.group(2))
if per_sequence == 0:
    sys.exit("no forward or backward flops in the cost report")
found = re.search(r"model flops per GPU per step: ([0-9.e+]+) ([kMGTP]?)FLOP", estimate)
if not found:
    sys.exit("no model flops in the estimate")
scale = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}[found.group(2)]
flops = float(found.group(1)) * scale
expected = per_sequence * sequences
if not abs(flops - expected) <= 0.005 * expected:
    sys.exit(f"estimate says {flops:.4g} flops per GPU, the cost model {expected:.4g}")
print(f"{flops:.4g} flops per GPU per step, as the cost model counts")
