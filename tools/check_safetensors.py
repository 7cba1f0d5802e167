#!/usr/bin/env python3
"""Reads a .safetensors file with the standard library only, following the format's rules (8-byte little-endian header
length, JSON header, tensors packed back to back with in-bounds, non-overlapping data_offsets), and prints one JSON
object: {"metadata": {...}, "tensors": {name: {"dtype", "shape", "sum", "values"[:8]}}}. A second implementation of the
reader, independent of SpikeSharp's, for tests/SpikeSharp.Tests/Interop/SafetensorsTests.cs.

    /usr/bin/python3 tools/check_safetensors.py FILE.safetensors
"""
import json
import math
import struct
import sys

FORMATS = {"F32": ("f", 4), "F64": ("d", 8), "F16": ("e", 2), "I64": ("q", 8), "I32": ("i", 4), "U8": ("B", 1)}


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    assert 8 + n <= len(data), "header longer than the file"
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    metadata = header.pop("__metadata__", {})
    spans, tensors = [], {}
    for name, info in header.items():
        fmt, size = FORMATS[info["dtype"]]
        begin, end = info["data_offsets"]
        count = math.prod(info["shape"])
        assert 0 <= begin <= end <= len(body) and end - begin == count * size, f"{name}: bad data_offsets"
        spans.append((begin, end))
        values = struct.unpack_from("<%d%s" % (count, fmt), body, begin)
        tensors[name] = {"dtype": info["dtype"], "shape": info["shape"], "sum": math.fsum(values), "values": list(values[:8])}
    spans.sort()
    position = 0
    for begin, end in spans:  # the format requires the tensors to cover the body exactly, in order
        assert begin == position, "gap or overlap in the data section"
        position = end
    assert position == len(body), "trailing bytes after the last tensor"
    return {"metadata": metadata, "tensors": tensors}


if __name__ == "__main__":
    print(json.dumps(read(sys.argv[1])))
