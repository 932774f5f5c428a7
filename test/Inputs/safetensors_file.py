"""Reads a safetensors file for the test scripts, without Python packages."""
import json
import struct


def read_safetensors(path):
    """{name: (dtype, shape, values)} of every tensor in `path`."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        fmt = {"F32": "f", "F64": "d", "I32": "i", "I64": "q"}[entry["dtype"]]
        count = (end - begin) // struct.calcsize(fmt)
        values = struct.unpack("<%d%s" % (count, fmt), data[begin:end])
        tensors[name] = (entry["dtype"], entry["shape"], values)
    return tensors
