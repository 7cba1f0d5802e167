"""Writes .safetensors files by hand (struct + json), so fixture scripts need no safetensors package.

Shared by tools/make_fixtures.py and tools/make_snn_fixtures.py.
"""
import json
import struct

import torch


def write_safetensors(path, tensors, metadata=None):
    """{name: (tensor, "F32"|"U8")} in the Rust writer's layout: F32 group then U8 group, each sorted by name."""
    header = {"__metadata__": {k: str(metadata[k]) for k in sorted(metadata)}} if metadata else {}
    blobs, offset = [], 0
    for dtype in ("F32", "U8"):
        for name in sorted(n for n in tensors if tensors[n][1] == dtype):
            t = tensors[name][0].detach().contiguous().cpu()
            if dtype == "F32":
                raw = struct.pack("<%df" % t.numel(), *t.to(torch.float32).reshape(-1).tolist())
            else:
                vals = t.reshape(-1).tolist()
                assert all(v == int(v) and 0 <= v <= 255 for v in vals), name
                raw = bytes(int(v) for v in vals)
            header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
            offset += len(raw)
            blobs.append(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def write_f32(path, tensors, metadata=None):
    """All tensors as F32 ({name: tensor})."""
    write_safetensors(path, {n: (t, "F32") for n, t in tensors.items()}, metadata)
