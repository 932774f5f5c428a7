#!/usr/bin/env python3
"""Checks a moe-run --steps log: the loss falls by at least a given amount.

usage: moe-run ... --steps N | check-training.py MIN_DROP
Compares the first step's loss with the mean of the last five; every loss
must be finite.
"""
import math
import sys

losses = [float(line.split()[3]) for line in sys.stdin
          if line.startswith("step ") and line.split()[2] == "loss"]
if len(losses) < 6:
    print("too few steps: %d" % len(losses))
    sys.exit(1)
if not all(math.isfinite(loss) for loss in losses):
    print("a loss is not finite: %s" % losses)
    sys.exit(1)
tail = sum(losses[-5:]) / 5
drop = losses[0] - tail
print("first loss %.4f, mean of the last 5 %.4f, drop %.4f (need %s)"
      % (losses[0], tail, drop, sys.argv[1]))
sys.exit(0 if drop >= float(sys.argv[1]) else 1)
