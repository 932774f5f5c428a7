#!/usr/bin/env python3
"""Compares one rank's tensors with a single process's.

usage: compare-shards.py REF.safetensors OUT.safetensors RTOL RANK RANKS

OUT holds rank RANK's results of a program partitioned over RANKS ranks.
Both files must hold the same tensor names (and at least one), with the
same dtypes. A tensor of REF's shape is compared whole; one whose first
axis is REF's divided by RANKS is rank RANK's part of REF along that axis.
Each float comparison must have a relative L2 distance <= RTOL, integer
tensors must be equal; a NaN or infinity anywhere fails.
"""
import json
import math
import sys

from safetensors_file import read_safetensors


def main():
    ref_path, out_path, rtol, rank, ranks = sys.argv[1:6]
    rtol, rank, ranks = float(rtol), int(rank), int(ranks)
    ref, out = read_safetensors(ref_path), read_safetensors(out_path)
    if not ref:
        sys.exit("%s holds no tensor" % ref_path)
    if set(ref) != set(out):
        sys.exit("tensor names differ: only in %s: %s; only in %s: %s" % (
            ref_path, sorted(set(ref) - set(out)), out_path,
            sorted(set(out) - set(ref))))
    worst = 0.0
    for name in sorted(ref):
        (ref_dtype, ref_shape, ref_values) = ref[name]
        (out_dtype, out_shape, out_values) = out[name]
        if ref_dtype != out_dtype:
            sys.exit("%s: dtype %s, expected %s" % (name, out_dtype, ref_dtype))
        for path, shape, values in ((ref_path, ref_shape, ref_values),
                                    (out_path, out_shape, out_values)):
            if len(values) != math.prod(shape):
                sys.exit("%s in %s: %d values for shape %s" % (
                    name, path, len(values), shape))
        if out_shape != ref_shape:
            if (not ref_shape or not out_shape
                    or out_shape[1:] != ref_shape[1:]
                    or out_shape[0] * ranks != ref_shape[0]):
                sys.exit("%s: shape %s is neither %s nor its part over %d "
                         "ranks" % (name, out_shape, ref_shape, ranks))
            size = len(out_values)
            ref_values = ref_values[rank * size:(rank + 1) * size]
        if len(ref_values) != len(out_values):
            sys.exit("%s: %d values, expected %d" % (
                name, len(out_values), len(ref_values)))
        if ref_dtype.startswith("I"):
            if list(ref_values) != list(out_values):
                sys.exit("%s: integers differ" % name)
            continue
        if not all(math.isfinite(v) for v in ref_values + out_values):
            sys.exit("%s: a NaN or infinity" % name)
        distance = math.sqrt(sum((a - b) ** 2
                                 for a, b in zip(ref_values, out_values)))
        scale = math.sqrt(sum(a * a for a in ref_values))
        error = distance / scale if scale > 0 else distance
        if not error <= rtol:
            sys.exit("%s: relative error %g exceeds %g" % (name, error, rtol))
        worst = max(worst, error)
    print("%d tensors agree, worst relative error %.3g" % (len(ref), worst))


if __name__ == "__main__":
    main()
