#!/usr/bin/env python3
"""Copies a safetensors file with edits, to make bad checkpoints for tests.

usage: edit-safetensors.py IN OUT EDIT...
  drop=NAME                     leave tensor NAME out
  rename=NAME:NEW               give tensor NAME the name NEW
  add=NAME:DTYPE:D0xD1:V0,V1    add a tensor (as make-safetensors.py)
  set=NAME:INDEX:VALUE          overwrite element INDEX of tensor NAME
  moe.KEY=JSON                  set KEY of the JSON in the "moe" metadata
  moe.KEY=@FILE                 the same with the JSON in FILE
  header-length=DELTA           write a header length DELTA bytes off (a
                                shorter one still holds the whole JSON)
  damage=NAME:BYTE              flip the bits of byte BYTE of tensor NAME
                                after the checksums are recorded
  stale-checksums=1             keep the file's checksums as they were
The checksums (metadata "moe.crc32", zlib's CRC-32 of each tensor and,
under "__metadata__", of the other metadata's keys and values, each ended
by a NUL, in key order), where the file records them, are recomputed after
the edits, so that an edit tests the check it is made for; damage= and
stale-checksums=1 leave stale ones.
Written independently of the project's writer, to test its reader.
"""
import json
import struct
import sys
import zlib

FORMATS = {"F32": "f", "F64": "d", "I32": "i", "I64": "q"}

with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
metadata = header.pop("__metadata__", {})
tensors = {name: data[e["data_offsets"][0]:e["data_offsets"][1]]
           for name, e in header.items()}
length_delta = 0
for edit in sys.argv[3:]:
    key, value = edit.split("=", 1)
    if key == "drop":
        del header[value], tensors[value]
    elif key == "rename":
        name, new = value.split(":")
        header[new], tensors[new] = header.pop(name), tensors.pop(name)
    elif key == "add":
        name, dtype, shape, values = value.split(":")
        numbers = [float(v) if dtype[0] == "F" else int(v)
                   for v in values.split(",") if v]
        tensors[name] = struct.pack("<%d%s" % (len(numbers), FORMATS[dtype]),
                                    *numbers)
        header[name] = {"dtype": dtype,
                        "shape": [int(d) for d in shape.split("x")] if shape else []}
    elif key == "set":
        name, index, number = value.split(":")
        code = FORMATS[header[name]["dtype"]]
        at = int(index) * struct.calcsize(code)
        packed = struct.pack("<" + code,
                             float(number) if code in "fd" else int(number))
        tensors[name] = tensors[name][:at] + packed + tensors[name][at + len(packed):]
    elif key.startswith("moe."):
        run = json.loads(metadata["moe"])
        if value.startswith("@"):
            value = open(value[1:]).read()
        run[key[4:]] = json.loads(value)
        metadata["moe"] = json.dumps(run)
    elif key == "header-length":
        length_delta = int(value)
    elif key not in ("damage", "stale-checksums"):
        sys.exit("unknown edit " + edit)
if "moe.crc32" in metadata and "stale-checksums=1" not in sys.argv[3:]:
    sums = {name: "%08x" % zlib.crc32(tensors[name]) for name in header}
    sums["__metadata__"] = "%08x" % zlib.crc32(b"".join(
        key.encode() + b"\0" + value.encode() + b"\0"
        for key, value in sorted(metadata.items()) if key != "moe.crc32"))
    metadata["moe.crc32"] = json.dumps(sums)
for edit in sys.argv[3:]:
    key, value = edit.split("=", 1)
    if key == "damage":
        name, index = value.split(":")
        at = int(index)
        tensors[name] = (tensors[name][:at] + bytes([tensors[name][at] ^ 0xff])
                         + tensors[name][at + 1:])
out_data = b""
for name in header:
    header[name]["data_offsets"] = [len(out_data), len(out_data) + len(tensors[name])]
    out_data += tensors[name]
if metadata:
    header["__metadata__"] = metadata
text = json.dumps(header).encode()
padding = (8 - len(text) % 8) % 8
# A short length cuts into the padding, not the JSON: what is wrong is then
# only where the data starts.
while padding < -length_delta:
    padding += 8
text += b" " * padding
with open(sys.argv[2], "wb") as out:
    out.write(struct.pack("<Q", len(text) + length_delta) + text + out_data)
