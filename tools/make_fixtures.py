#!/usr/bin/env python3
"""Writes the PyTorch golden fixtures (.safetensors) that pin SpikeSharp's layers to what PyTorch computes.

Run from the repository root (unset OPENBLAS_CORETYPE; Debian's python3-torch, CPU):

    env -u OPENBLAS_CORETYPE /usr/bin/python3 tools/make_fixtures.py

Output: tests/SpikeSharp.Tests/Fixtures/torch/<case>.safetensors, one file per layer case. Every tensor is
float32 (labels too). Names: inputs (x, w, b, ...), forward output `y`, a random upstream gradient `gy`, and
the gradients `g<name>` of sum(y * gy) with respect to each input/parameter. Scalar outputs (the mean loss) are
0-d (shape []); the QCFS threshold `lam` has shape [1] like the reference code's nn.Parameter. Layer settings
(stride, padding, eps, ...) are strings in the safetensors `__metadata__`.

The file format is written by hand (struct + json, no safetensors package) exactly as the Rust safetensors
writer lays it out: u64 LE header length, compact JSON header with `__metadata__` first (keys sorted) and then
the tensors sorted by name, padded with spaces to a multiple of 8, then the raw little-endian data in the same
order. The C# tests rewrite each fixture with Safetensors.Write and compare bytes, so keep the two in step.
Re-running the script reproduces the files byte for byte (seed 0, one thread).
"""
import json
import os
import struct
import sys

import torch
import torch.nn.functional as F

from reference_models import GradFloor  # noqa: E402
from safetensors_io import write_f32 as write_safetensors

OUT_DIR = os.path.join("tests", "SpikeSharp.Tests", "Fixtures", "torch")
MAX_TOTAL_BYTES = 300 * 1024


def grads(y, inputs):
    """Random upstream gradient gy and the gradients of sum(y*gy) w.r.t. each named input."""
    gy = torch.randn_like(y)
    names = list(inputs)
    gs = torch.autograd.grad(y, [inputs[n] for n in names], grad_outputs=gy)
    return gy, {"g" + n: g for n, g in zip(names, gs)}


def leaf(*shape):
    return torch.randn(*shape, dtype=torch.float32).requires_grad_(True)


def conv_case(n, cin, h, w, cout, k, stride, padding, bias):
    x = leaf(n, cin, h, w)
    wt = leaf(cout, cin, k, k)
    b = leaf(cout) if bias else None
    y = F.conv2d(x, wt, b, stride=stride, padding=padding)
    inputs = {"x": x, "w": wt}
    if bias:
        inputs["b"] = b
    gy, g = grads(y, inputs)
    meta = {"op": "conv2d", "stride": stride, "padding": padding, "kernel": k, "dilation": 1, "groups": 1,
            "bias": "true" if bias else "false"}
    return {**inputs, "y": y, "gy": gy, **g}, meta


def bn_case(shape, train):
    c = shape[1]
    x = leaf(*shape)
    weight = (1.0 + 0.2 * torch.randn(c)).requires_grad_(True)
    bias = (0.2 * torch.randn(c)).requires_grad_(True)
    rm0 = 0.3 * torch.randn(c)
    rv0 = 0.5 + torch.rand(c)
    rm, rv = rm0.clone(), rv0.clone()
    y = F.batch_norm(x, rm, rv, weight, bias, training=train, momentum=0.1, eps=1e-5)
    gy, g = grads(y, {"x": x, "weight": weight, "bias": bias})
    tensors = {"x": x, "weight": weight, "bias": bias, "rm0": rm0, "rv0": rv0, "y": y, "gy": gy, **g}
    if train:
        tensors["rm1"], tensors["rv1"] = rm, rv  # running_var uses the unbiased batch variance
    meta = {"op": "batchnorm", "mode": "train" if train else "eval", "momentum": "0.1", "eps": "1e-05"}
    return tensors, meta


def pool_case(kind):
    if kind == "maxpool2":
        n = 2 * 3 * 6 * 6
        # Distinct values (a scaled permutation) so no window has a tie and the argmax is unambiguous.
        x = ((torch.randperm(n).to(torch.float32) - n / 2) / 16.0).reshape(2, 3, 6, 6).requires_grad_(True)
        y = F.max_pool2d(x, 2, 2)
        meta = {"op": "maxpool2d", "kernel": 2, "stride": 2}
    elif kind == "avgpool2":
        x = leaf(2, 3, 6, 6)
        y = F.avg_pool2d(x, 2, 2)
        meta = {"op": "avgpool2d", "kernel": 2, "stride": 2}
    else:
        x = leaf(2, 3, 5, 5)
        y = F.adaptive_avg_pool2d(x, 1)
        meta = {"op": "adaptive_avgpool2d", "output_size": 1}
    gy, g = grads(y, {"x": x})
    return {"x": x, "y": y, "gy": gy, **g}, meta


def linear_case():
    x, w, b = leaf(5, 7), leaf(3, 7), leaf(3)
    y = F.linear(x, w, b)
    gy, g = grads(y, {"x": x, "w": w, "b": b})
    return {"x": x, "w": w, "b": b, "y": y, "gy": gy, **g}, {"op": "linear"}


def ce_case(smoothing):
    logits = leaf(6, 10)
    labels = torch.randint(0, 10, (6,))
    loss = F.cross_entropy(logits, labels, reduction="mean", label_smoothing=smoothing)
    (glogits,) = torch.autograd.grad(loss, [logits])
    tensors = {"logits": logits, "labels": labels.to(torch.float32), "loss": loss, "glogits": glogits}
    return tensors, {"op": "cross_entropy", "reduction": "mean", "label_smoothing": str(smoothing)}


def qcfs_case():
    levels, lam0 = 4, 2.0
    # Boundaries of h(z): clamp edges z = 0 and z = λ, rounding steps z = λ(k - 1/2)/L for k = 1..L.
    edges = [0.0, lam0] + [lam0 * (k - 0.5) / levels for k in range(1, levels + 1)]
    z = torch.empty(64)
    i = 0
    while i < 64:
        v = float(torch.rand(1)) * 4.0 - 1.0  # [-1, 3): below 0, inside, above λ
        if min(abs(v - e) for e in edges) >= 0.05:
            z[i] = v
            i += 1
    z.requires_grad_(True)
    lam = torch.tensor([lam0], requires_grad=True)
    # methods.md §1, clip-then-floor: u = clamp(z/λ, 0, 1); q = floor(u·L + 0.5)/L; h = λ·q.
    u = torch.clamp(z / lam, 0.0, 1.0)
    q = GradFloor.apply(u * levels + 0.5) / levels
    y = lam * q
    gy, g = grads(y, {"z": z, "lam": lam})
    meta = {"op": "qcfs", "L": levels, "order": "clip-then-floor", "phi": "0.5"}
    return {"z": z, "lam": lam, "y": y, "gy": gy, **g}, meta


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(OUT_DIR, exist_ok=True)
    cases = [
        ("conv_k3s1p1_bias", lambda: conv_case(2, 3, 7, 7, 4, 3, 1, 1, True)),
        ("conv_k3s2p1_nobias", lambda: conv_case(2, 4, 8, 8, 5, 3, 2, 1, False)),
        ("conv_k1s2p0_nobias", lambda: conv_case(2, 4, 8, 8, 6, 1, 2, 0, False)),
        ("conv_k5s1p2_bias", lambda: conv_case(1, 2, 9, 9, 3, 5, 1, 2, True)),
        ("conv_k3s1p0_bias", lambda: conv_case(2, 2, 6, 5, 3, 3, 1, 0, True)),
        ("bn2d_train", lambda: bn_case((4, 3, 5, 5), True)),
        ("bn2d_eval", lambda: bn_case((4, 3, 5, 5), False)),
        ("bn1d_train", lambda: bn_case((8, 5), True)),
        ("bn1d_eval", lambda: bn_case((8, 5), False)),
        ("avgpool2", lambda: pool_case("avgpool2")),
        ("maxpool2", lambda: pool_case("maxpool2")),
        ("gap", lambda: pool_case("gap")),
        ("linear", linear_case),
        ("ce", lambda: ce_case(0.0)),
        ("ce_ls01", lambda: ce_case(0.1)),
        ("qcfs", qcfs_case),
    ]
    total = 0
    for name, make in cases:
        tensors, meta = make()
        path = os.path.join(OUT_DIR, name + ".safetensors")
        write_safetensors(path, tensors, meta)
        size = os.path.getsize(path)
        total += size
        print("%-22s %6d bytes  %s" % (name, size, ", ".join("%s%s" % (k, list(tensors[k].shape)) for k in sorted(tensors))))
    print("total %d bytes" % total)
    if total > MAX_TOTAL_BYTES:
        sys.exit("fixtures total %d bytes, over the %d-byte budget" % (total, MAX_TOTAL_BYTES))


if __name__ == "__main__":
    main()
