#!/usr/bin/env python3
"""Checks that two safetensors files hold the same tensors within a bound.

usage: check-logits.py REF.safetensors OUT.safetensors NAME MAX_ABS_ERROR

Both files must hold NAME (with '*': every tensor REF holds, and REF at
least one) with the same dtype and shape (and at least one element); the
largest absolute difference must be <= MAX_ABS_ERROR. A NaN or infinity
fails: the comparison is written `not (error <= bound)`.
"""
import math
import sys

from safetensors_file import read_safetensors

ref_path, out_path, pattern, bound = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
ref, out = read_safetensors(ref_path), read_safetensors(out_path)
names = sorted(ref) if pattern == "*" else [pattern]
if not names:
    sys.exit("%s holds no tensor" % ref_path)
failed = False
for name in names:
    for path, tensors in ((ref_path, ref), (out_path, out)):
        if name not in tensors:
            sys.exit("%s holds no tensor '%s'" % (path, name))
    (ref_dtype, ref_shape, ref_values), (out_dtype, out_shape, out_values) = ref[name], out[name]
    if ref_dtype != out_dtype or ref_shape != out_shape:
        sys.exit("'%s' is %s %s in %s but %s %s in %s" % (
            name, ref_dtype, ref_shape, ref_path, out_dtype, out_shape, out_path))
    if not ref_values:
        sys.exit("'%s' is empty" % name)
    error = max(abs(a - b) if math.isfinite(a) and math.isfinite(b) else math.inf
                for a, b in zip(ref_values, out_values))
    print("%s: %d values, largest absolute difference %.3g (bound %.3g)"
          % (name, len(ref_values), error, bound))
    failed = failed or not error <= bound
sys.exit(1 if failed else 0)
