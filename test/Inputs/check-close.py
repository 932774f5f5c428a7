#!/usr/bin/env python3
"""Checks that moe-run printed NAME ... = VALUE within a relative tolerance.

usage: moe-run ... | check-close.py NAME EXPECTED RTOL
A NaN or infinite VALUE fails.
"""
import sys

name, expected, rtol = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
for line in sys.stdin:
    words = line.split()
    if words and words[0] == name and "=" in words:
        value = float(words[words.index("=") + 1])
        error = abs(value - expected) / abs(expected)
        print("%s = %.7g, expected %.7g, relative error %.2g (limit %.2g)"
              % (name, value, expected, error, rtol))
        sys.exit(0 if error <= rtol else 1)
print("no line for %s" % name)
sys.exit(1)
