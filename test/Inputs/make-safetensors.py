#!/usr/bin/env python3
"""Writes a safetensors file from NAME:DTYPE:SHAPE:VALUES arguments.

usage: make-safetensors.py OUT NAME:DTYPE:D0xD1:V0,V1,... ...
DTYPE is F32, F64, I32 or I64; an empty SHAPE is a scalar.
Written independently of the project's writer, to test its reader.
"""
import json
import struct
import sys

FORMATS = {"F32": "f", "F64": "d", "I32": "i", "I64": "q"}
header, data = {}, b""
for spec in sys.argv[2:]:
    name, dtype, shape, values = spec.split(":")
    dims = [int(d) for d in shape.split("x")] if shape else []
    numbers = [float(v) if dtype[0] == "F" else int(v)
               for v in values.split(",") if v]
    raw = struct.pack("<%d%s" % (len(numbers), FORMATS[dtype]), *numbers)
    header[name] = {"dtype": dtype, "shape": dims,
                    "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
text = json.dumps(header).encode()
with open(sys.argv[1], "wb") as out:
    out.write(struct.pack("<Q", len(text)) + text + data)
