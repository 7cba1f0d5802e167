#!/usr/bin/env python3
"""Checks that a file written by `spikesharp export --format nir` has the HDF5 layout that nir.read (neuromorphs/NIR,
nir/serialization.py, nir 1.0.x) accepts, using only h5py (Debian python3-h5py), and that the shapes chain along the
edges as NIR's type check (NIRGraph.infer_types/check_types) requires. If the nir package is importable, also calls
nir.read. With --simulate, also re-simulates the graph in numpy (dt = 1, T from the graph metadata, IF with the
metadata's v_initial, soft reset and fire rule) on INPUT (raw float32 [B, *input shape]) and compares the output per
step with EXPECTED (raw float32 [T, B, K], SpikeSharp's own simulation).
Usage: /usr/bin/python3 tools/check_nir.py FILE.nir [--simulate INPUT.f32 EXPECTED.f32]   (exit 0 = ok)"""
import sys

import h5py
import numpy as np

# Datasets each NIR type's constructor takes (from_dict passes them as keyword arguments; extra keys are rejected).
FIELDS = {
    "Input": {"shape"},
    "Output": {"shape"},
    "Conv2d": {"input_shape", "weight", "stride", "padding", "dilation", "groups", "bias"},
    "Affine": {"weight", "bias"},
    "AvgPool2d": {"kernel_size", "stride", "padding"},
    "SumPool2d": {"kernel_size", "stride", "padding"},
    "Flatten": {"start_dim", "end_dim", "input_type"},
    "IF": {"r", "v_threshold", "v_reset"},
    "Scale": {"scale"},
}


def s(v):
    return v.decode("utf8") if isinstance(v, bytes) else v


def fail(msg):
    print(f"check_nir: FAIL: {msg}")
    sys.exit(1)


def conv_out(size, pad, dil, k, stride):
    return [int(np.floor((size[i] + 2 * pad[i] - dil[i] * (k[i] - 1) - 1) / stride[i] + 1)) for i in range(2)]


def types(t, n, in_shape):
    """(input shape, output shape) of a node as NIR computes them; in_shape is the upstream shape for pools."""
    if t == "Input":
        sh = list(n["shape"][()])
        return sh, sh
    if t == "Output":
        sh = list(n["shape"][()])
        return sh, sh
    if t == "Conv2d":
        w = n["weight"].shape
        ish = list(n["input_shape"][()])
        out = conv_out(ish, n["padding"][()], n["dilation"][()], w[2:], n["stride"][()])
        return [w[1], *ish], [w[0], *out]
    if t == "Affine":
        w = n["weight"].shape
        if n["bias"].shape != (w[0],):
            fail(f"Affine bias shape {n['bias'].shape} != ({w[0]},)")
        return [w[1]], [w[0]]
    if t in ("AvgPool2d", "SumPool2d"):
        out = conv_out(in_shape[1:], n["padding"][()], [1, 1], n["kernel_size"][()], n["stride"][()])
        return in_shape, [in_shape[0], *out]
    if t == "Flatten":
        ish = list(n["input_type"][()])
        if int(n["start_dim"][()]) != 0 or int(n["end_dim"][()]) != -1:
            fail("only Flatten(0, -1) is checked")
        return ish, [int(np.prod(ish))]
    if t == "IF":
        sh = list(n["r"].shape)
        if n["v_threshold"].shape != n["r"].shape or n["v_reset"].shape != n["r"].shape:
            fail("IF r, v_threshold, v_reset shapes differ")
        return sh, sh
    if t == "Scale":
        sh = list(n["scale"].shape)
        return sh, sh
    fail(f"unexpected node type {t}")


def windows(x, kh, kw, sh, sw, pad):
    """[B,C,H,W] -> [B,C,OH,OW,kh,kw] sliding windows (zero padding)."""
    x = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    v = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return v[:, :, ::sh, ::sw]


def step_node(t, n, x, state):
    if t == "Conv2d":
        w = n["weight"][()]
        win = windows(x, w.shape[2], w.shape[3], *n["stride"][()], n["padding"][()])
        return np.einsum("bchwij,ocij->bohw", win, w) + n["bias"][()][None, :, None, None]
    if t == "AvgPool2d":
        k = n["kernel_size"][()]
        return windows(x, k[0], k[1], *n["stride"][()], n["padding"][()]).mean(axis=(4, 5))
    if t == "Flatten":
        return x.reshape(x.shape[0], -1)
    if t == "Affine":
        return x @ n["weight"][()].T + n["bias"][()]
    if t == "Scale":
        return x * n["scale"][()]
    if t == "IF":
        md = n["metadata"]
        thr = n["v_threshold"][()]
        if "v" not in state:
            state["v"] = np.broadcast_to(md["v_initial"][()], x.shape).astype(np.float32).copy()
        v = state["v"]
        v += n["r"][()] * x
        s = (v >= thr) if s_(md["fire_rule"][()]) == "v >= v_threshold" else (v > thr)
        if s_(md["reset"][()]) == "subtract":
            v -= thr * s
        else:
            v[s] = np.broadcast_to(n["v_reset"][()], v.shape)[s]
        return s.astype(np.float32)
    return x  # Input, Output


def s_(v):
    return v.decode("utf8") if isinstance(v, bytes) else v


def simulate(path, order, kinds, preds, input_file, expected_file):
    with h5py.File(path, "r") as f:
        nodes = f["node/nodes"]
        steps = int(f["node/metadata/timesteps"][()])
        in_shape = list(nodes["input/shape"][()])
        out_k = int(np.prod(nodes["output/shape"][()]))
        x = np.fromfile(input_file, dtype="<f4").reshape(-1, *in_shape)
        expected = np.fromfile(expected_file, dtype="<f4").reshape(steps, x.shape[0], out_k)
        states = {k: {} for k in order}
        got = []
        for _ in range(steps):
            vals = {}
            for k in order:
                inp = x if kinds[k] == "Input" else sum(vals[p] for p in preds[k])
                vals[k] = step_node(kinds[k], nodes[k], inp.astype(np.float32), states[k])
            got.append(vals["output"])
        got = np.stack(got)
    close = np.abs(got - expected) <= 1e-3 * (1 + np.abs(expected))
    if close.mean() < 0.99:
        fail(f"re-simulation differs from SpikeSharp: {close.mean():.4f} of outputs agree, max |diff| {np.abs(got - expected).max():.4g}")
    return f"; re-simulated {steps} steps x {x.shape[0]} inputs: {close.mean() * 100:.2f} % of outputs agree (max |diff| {np.abs(got - expected).max():.3g})"


def check_storage(f):
    """Every dataset is its own object (no hard link shared between nodes) with contiguous storage: the layout libhdf5's
    defaults and nir's own h5py writer give."""
    links, objects = [], set()

    def walk(group):
        for key in group.keys():
            o = group[key]
            if isinstance(o, h5py.Group):
                walk(o)
                continue
            links.append(o.name)
            objects.add(h5py.h5o.get_info(o.id).addr)
            if o.id.get_create_plist().get_layout() != h5py.h5d.CONTIGUOUS:
                fail(f"dataset {o.name} is not stored contiguously")

    walk(f)
    if len(objects) != len(links):
        fail(f"{len(links)} dataset links point to only {len(objects)} datasets: some are shared hard links")


def main(path, sim=None):
    with h5py.File(path, "r") as f:
        check_storage(f)
        version = s(f["version"][()])
        g = f["node"]
        if s(g["type"][()]) != "NIRGraph":
            fail("node/type is not NIRGraph")
        nodes = g["nodes"]
        kinds = {}
        for name, n in nodes.items():
            t = s(n["type"][()])
            if t not in FIELDS:
                fail(f"node {name}: unknown type {t}")
            keys = set(n.keys()) - {"type", "metadata"}
            if keys != FIELDS[t]:
                fail(f"node {name} ({t}): datasets {sorted(keys)}, nir expects {sorted(FIELDS[t])}")
            kinds[name] = t
        edges = [(s(a), s(b)) for a, b in g["edges"][()]]
        for a, b in edges:
            if a not in kinds or b not in kinds:
                fail(f"edge ({a}, {b}) names a missing node")
        # Type inference in topological order from the Input node, as NIR does on read.
        preds = {k: [a for a, b in edges if b == k] for k in kinds}
        shapes = {}
        pending = list(kinds)
        order = []
        while pending:
            ready = [k for k in pending if all(p in shapes for p in preds[k])]
            if not ready:
                fail(f"cycle or unreachable nodes: {pending}")
            for k in ready:
                order.append(k)
                ups = [shapes[p][1] for p in preds[k]]
                if any(list(u) != list(ups[0]) for u in ups):
                    fail(f"node {k}: incoming shapes differ {ups}")
                i, o = types(kinds[k], nodes[k], list(ups[0]) if ups else None)
                if ups and list(map(int, i)) != list(map(int, ups[0])):
                    fail(f"type mismatch into {k}: {ups[0]} -> {i}")
                shapes[k] = (i, o)
                pending.remove(k)
        counts = {t: list(kinds.values()).count(t) for t in sorted(set(kinds.values()))}
        meta = sorted(g["metadata"].keys()) if "metadata" in g else []
    extra = simulate(path, order, kinds, preds, *sim) if sim else ""
    try:
        import nir  # noqa: F401  (not packaged by Debian; checked only when present)

        graph = nir.read(path)
        extra += f"; nir.read ok ({len(graph.nodes)} nodes)"
    except ImportError:
        extra += "; nir package not installed (layout checked with h5py only)"
    print(f"check_nir: OK version {version}, {len(kinds)} nodes {counts}, {len(edges)} edges, graph metadata {meta}{extra}")


if __name__ == "__main__":
    if len(sys.argv) == 2:
        main(sys.argv[1])
    elif len(sys.argv) == 5 and sys.argv[2] == "--simulate":
        main(sys.argv[1], (sys.argv[3], sys.argv[4]))
    else:
        print(__doc__)
        sys.exit(2)
