#!/usr/bin/env python3
"""Writes the PyTorch golden fixture that pins SpikeSharp's QCFS ANN and its converted SNN (spike counts included)
to what PyTorch computes with the same weights.

Run from the repository root (unset OPENBLAS_CORETYPE; Debian's python3-torch, CPU):

    env -u OPENBLAS_CORETYPE /usr/bin/python3 tools/make_snn_fixtures.py

Output: tests/SpikeSharp.Tests/Fixtures/torch/snn_cnn_small.safetensors, read by
tests/SpikeSharp.Tests/Golden/SnnEquivalenceTests.cs. Re-running reproduces it byte for byte (seeded, one thread).

The network is SpikeSharp's `cnn-small` for ModelSpec("cnn-small", InChannels 1, Height 8, Width 8, Classes 10,
WidthMultiplier 0.25, QCFS L = 4):
    features   = Conv(1→8, 3×3, pad 1, no bias), BN(8), QCFS, AvgPool2, Conv(8→16, 3×3, pad 1, no bias), BN(16), QCFS, AvgPool2
    classifier = Flatten, Linear(16·2·2→32), QCFS, Linear(32→10)
with SpikeSharp's state-dict keys (features.0.weight, features.1.{weight,bias,running_mean,running_var},
features.2.lambda [1], features.4.weight, features.5.*, features.6.lambda, classifier.1.{weight,bias},
classifier.2.lambda, classifier.3.{weight,bias}; no num_batches_tracked).

QCFS forward (methods.md §1, clip-then-floor): h = λ·floor(clamp(z/λ, 0, 1)·L + ½)/L.
SNN (methods.md §0, layer-major as shared/bench/torch_baseline.py's IfLayer): the image is repeated T times along the
batch axis (direct encoding, row = t·B + b); every QCFS becomes an IF neuron with θ = λ, v(0) = θ/2, m = v + I(t),
fire iff m ≥ θ, soft reset v = m − θ·s, output θ·s; BN stays a per-step affine map; logits = mean over the T steps.

Tensors (all F32 except the per-neuron counts):
    model weights under their state-dict keys; x [16,1,8,8]; ann_logits [16,10];
    for T in (4, 8) and neuron layer k = 0 (features.2), 1 (features.6), 2 (classifier.2):
        spikes_T{T}_layer{k}  F32 [T]           spikes per step, summed over batch and neurons
        counts_T{T}_layer{k}  U8  [16, C, H, W] or [16, F]: spikes per neuron, summed over the T steps
        snn_logits_T{T}       F32 [16,10]       mean over the T steps of the output layer
The counts are U8 (exact, ≤ 8) to keep the file under 100 KB; the safetensors layout is the Rust writer's for mixed
dtypes: F32 tensors first, then U8, each group sorted by name.

Exact spike-count equality between two float implementations needs every membrane potential to stay clear of the
threshold by more than their rounding differences. Random float weights cannot give that: with ~150 k
(neuron, step) potentials, about 15-30 land within 1e-4·θ of θ whatever the seed. So the weights are random but
dyadic on coarse grids, which makes every pre-fire potential m − θ an odd multiple of half a grid step G/2:
  * x, conv weights: multiples of 1/8; BN scale γ/√(var+eps) a multiple of 1/2 (var ∈ {1024, 4096, 16384}, where
    var + 1e-5 rounds to var in float32, so √ and 1/√ are exact); BN mean a multiple of the conv-output grid,
    BN bias a multiple of G; classifier.1 weights multiples of 1/16, its bias a multiple of G.
  * So each layer's input current is a multiple of G (layer 0: G = 2^-7; later layers: G = θ_prev/4 · weight grid
    · BN-scale grid, since the inputs are θ_prev·(spikes in the 2×2 window)/4), and θ = λ is an ODD multiple q·G.
    Then m − θ = ΣI − (k + ½)θ ≡ G/2 (mod G): |m − θ|/θ ≥ 1/(2q) > 1e-3 for every neuron and step.
  * The QCFS ANN likewise stays ≥ G/8 away from its rounding ties.
The script measures both margins (float32 and float64 SNN runs must also give identical spikes) and records them in
the metadata; it re-draws (next seed) if any margin were below 1e-4.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

from safetensors_io import write_safetensors

OUT_PATH = os.path.join("tests", "SpikeSharp.Tests", "Fixtures", "torch", "snn_cnn_small.safetensors")
MAX_BYTES = 100 * 1024
MIN_MARGIN = 1e-4

LEVELS = 4
STEPS = (4, 8)
BATCH = 16
EPS = 1e-5

X_GRID = 2.0 ** -3      # input pixels
W_GRID = 2.0 ** -3      # conv weights
A_GRID = 2.0 ** -1      # BN scale γ/σ
FC_GRID = 2.0 ** -4     # classifier.1 weights
BN_VARS = (1024.0, 4096.0, 16384.0)

NEURON_LAYERS = ("features.2", "features.6", "classifier.2")


def qcfs(z, lam):
    """methods.md §1, clip-then-floor."""
    return lam * torch.floor(torch.clamp(z / lam, 0.0, 1.0) * LEVELS + 0.5) / LEVELS


def on_grid(t, grid):
    return torch.round(t / grid) * grid


def odd_multiple(target, grid):
    """The odd multiple of grid nearest to target, as a float that float32 represents exactly."""
    q = 2 * math.floor(target / grid / 2) + 1
    value = q * grid
    assert float(torch.tensor(value, dtype=torch.float32)) == value, "threshold %r not exact in float32" % value
    return value, q


def uniform(g, shape, lo, hi):
    return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)


def draw_bn(g, h, lam, mean_grid, bias_grid, prefix, sd):
    """Random BN statistics around the actual statistics of h, on the grids that keep currents on bias_grid."""
    c = h.shape[1]
    dims = [0] + list(range(2, h.dim()))
    m, s = h.mean(dims), h.std(dims).clamp_min(0.25)
    alpha = on_grid(lam / s * uniform(g, c, 0.5, 1.1), A_GRID).clamp_min(A_GRID)
    var = torch.tensor(BN_VARS, dtype=torch.float64)[torch.randint(0, len(BN_VARS), (c,), generator=g)]
    for v in BN_VARS:  # var + eps rounds to var in float32, so γ/sqrt(var + eps) = alpha exactly
        assert float(torch.tensor(v, dtype=torch.float32) + torch.tensor(EPS, dtype=torch.float32)) == v
    sd[prefix + ".weight"] = alpha * torch.sqrt(var)
    sd[prefix + ".bias"] = on_grid(lam * uniform(g, c, -0.1, 0.6), bias_grid)
    sd[prefix + ".running_mean"] = on_grid(m + 0.2 * s * torch.randn(c, generator=g, dtype=torch.float64), mean_grid)
    sd[prefix + ".running_var"] = var


def batch_norm(h, sd, prefix):
    return F.batch_norm(h, sd[prefix + ".running_mean"], sd[prefix + ".running_var"], sd[prefix + ".weight"],
                        sd[prefix + ".bias"], training=False, momentum=0.1, eps=EPS)


def build(seed):
    """Draws input and weights (float64 values, all exact in float32 except classifier.3); returns (x, state dict)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    x = torch.randint(-8, 9, (BATCH, 1, 8, 8), generator=g).to(torch.float64) * X_GRID
    targets = uniform(g, 3, 1.0, 3.0).tolist()  # λ per neuron layer

    # Layer 0: current grid X·W·A; θ0 an odd multiple of it.
    g0 = X_GRID * W_GRID * A_GRID
    lam0, _ = odd_multiple(targets[0], g0)
    sd["features.0.weight"] = torch.randint(-8, 9, (8, 1, 3, 3), generator=g).to(torch.float64) * W_GRID
    h = F.conv2d(x, sd["features.0.weight"], padding=1)
    draw_bn(g, h, lam0, X_GRID * W_GRID, g0, "features.1", sd)
    sd["features.2.lambda"] = torch.tensor([lam0], dtype=torch.float64)
    p = F.avg_pool2d(qcfs(batch_norm(h, sd, "features.1"), lam0), 2)

    # Layer 1: SNN inputs are θ0·(count in the 2×2 window)/4, so the current grid is θ0/4·W·A.
    g1 = lam0 / 4 * W_GRID * A_GRID
    lam1, _ = odd_multiple(targets[1], g1)
    sd["features.4.weight"] = torch.randint(-8, 9, (16, 8, 3, 3), generator=g).to(torch.float64) * W_GRID
    h = F.conv2d(p, sd["features.4.weight"], padding=1)
    draw_bn(g, h, lam1, lam0 / 4 * W_GRID, g1, "features.5", sd)
    sd["features.6.lambda"] = torch.tensor([lam1], dtype=torch.float64)
    p = F.avg_pool2d(qcfs(batch_norm(h, sd, "features.5"), lam1), 2).flatten(1)

    # Layer 2 (classifier.1 + its QCFS): inputs θ1·count/4, weights on FC_GRID, bias on the current grid.
    g2 = lam1 / 4 * FC_GRID
    lam2, _ = odd_multiple(targets[2], g2)
    w = torch.randint(-4, 5, (32, 64), generator=g).to(torch.float64) * FC_GRID
    h = p @ w.t()
    sd["classifier.1.weight"] = w
    sd["classifier.1.bias"] = on_grid(lam2 * uniform(g, 32, -0.1, 0.6) - h.mean(0)
                                      + 0.3 * h.std(0) * torch.randn(32, generator=g, dtype=torch.float64), g2)
    sd["classifier.2.lambda"] = torch.tensor([lam2], dtype=torch.float64)

    # Output layer: plain random floats (no threshold downstream).
    sd["classifier.3.weight"] = 0.3 * torch.randn(10, 32, generator=g, dtype=torch.float64)
    sd["classifier.3.bias"] = 0.1 * torch.randn(10, generator=g, dtype=torch.float64)

    sd = {k: v.to(torch.float32) for k, v in sd.items()}
    for k, v in sd.items():
        if not k.startswith("classifier.3."):
            assert torch.equal(v.to(torch.float64), v.to(torch.float64).to(torch.float32).to(torch.float64)), k
    return x.to(torch.float32), sd


def lam(sd, layer):
    return sd[layer + ".lambda"]


def ann_forward(x, sd):
    """QCFS ANN (eval); returns logits and the pre-activations of the three QCFS layers."""
    pre = []
    h = batch_norm(F.conv2d(x, sd["features.0.weight"], padding=1), sd, "features.1")
    pre.append(h)
    h = F.avg_pool2d(qcfs(h, lam(sd, "features.2")), 2)
    h = batch_norm(F.conv2d(h, sd["features.4.weight"], padding=1), sd, "features.5")
    pre.append(h)
    h = F.avg_pool2d(qcfs(h, lam(sd, "features.6")), 2).flatten(1)
    h = F.linear(h, sd["classifier.1.weight"], sd["classifier.1.bias"])
    pre.append(h)
    h = qcfs(h, lam(sd, "classifier.2"))
    return F.linear(h, sd["classifier.3.weight"], sd["classifier.3.bias"]), pre


def ann_margin(pre, sd):
    """Smallest distance of z/λ·L + ½ (for 0 ≤ z ≤ λ) to a rounding tie, in units of λ."""
    best = math.inf
    for z, layer in zip(pre, NEURON_LAYERS):
        lm = lam(sd, layer).to(torch.float64)
        zz = z.to(torch.float64)
        u = zz / lm * LEVELS + 0.5
        inside = (zz >= 0) & (zz <= lm)
        d = (u - torch.round(u)).abs() / LEVELS
        if inside.any():
            best = min(best, float(d[inside].min()))
    return best


class IfLayer:
    """Layer-major IF (torch_baseline.py's IfLayer) that also records spikes and the threshold margin."""

    def __init__(self, steps, theta):
        self.steps, self.theta = steps, theta
        self.per_step = None
        self.counts = None
        self.margin = math.inf

    def __call__(self, x):
        xs = x.view(self.steps, -1, *x.shape[1:])
        v = torch.full_like(xs[0], 0.5) * self.theta
        out = torch.empty_like(xs)
        spikes = torch.zeros_like(xs)
        for t in range(self.steps):
            v = v + xs[t]
            self.margin = min(self.margin, float(((v - self.theta).abs() / self.theta).min()))
            s = (v >= self.theta).to(x.dtype)
            v = v - s * self.theta
            out[t] = s * self.theta
            spikes[t] = s
        self.per_step = spikes.flatten(1).sum(1)
        self.counts = spikes.sum(0)
        return out.view_as(x)


def snn_forward(x, sd, steps):
    """Converted SNN: image repeated T times (row = t·B + b), BN per step, IF(θ = λ); returns mean logits, neurons."""
    neurons = [IfLayer(steps, lam(sd, layer)) for layer in NEURON_LAYERS]
    h = x.repeat(steps, 1, 1, 1)
    h = batch_norm(F.conv2d(h, sd["features.0.weight"], padding=1), sd, "features.1")
    h = F.avg_pool2d(neurons[0](h), 2)
    h = batch_norm(F.conv2d(h, sd["features.4.weight"], padding=1), sd, "features.5")
    h = F.avg_pool2d(neurons[1](h), 2).flatten(1)
    h = F.linear(h, sd["classifier.1.weight"], sd["classifier.1.bias"])
    h = F.linear(neurons[2](h), sd["classifier.3.weight"], sd["classifier.3.bias"])
    return h.view(steps, x.shape[0], -1).mean(0), neurons


def main():
    torch.set_num_threads(1)
    for seed in range(100):
        x, sd = build(seed)
        with torch.no_grad():
            ann_logits, pre = ann_forward(x, sd)
            m_ann = ann_margin(pre, sd)
            runs = {}
            m_snn = math.inf
            for steps in STEPS:
                logits, neurons = snn_forward(x, sd, steps)
                # The same simulation in float64 must give the same spikes (rounding never decides a spike).
                sd64 = {k: v.to(torch.float64) for k, v in sd.items()}
                _, neurons64 = snn_forward(x.to(torch.float64), sd64, steps)
                for a, b in zip(neurons, neurons64):
                    assert torch.equal(a.counts.to(torch.float64), b.counts), "float32 and float64 spikes differ"
                m_snn = min([m_snn] + [n.margin for n in neurons] + [n.margin for n in neurons64])
                runs[steps] = (logits, neurons)
        if m_snn >= MIN_MARGIN and m_ann >= MIN_MARGIN:
            break
        print("seed %d: margin snn %.3g ann %.3g below %g, re-drawing" % (seed, m_snn, m_ann, MIN_MARGIN))
    else:
        sys.exit("no seed gave a margin of %g" % MIN_MARGIN)

    tensors = {k: (v, "F32") for k, v in sd.items()}
    tensors["x"] = (x, "F32")
    tensors["ann_logits"] = (ann_logits, "F32")
    for steps, (logits, neurons) in runs.items():
        tensors["snn_logits_T%d" % steps] = (logits, "F32")
        for k, n in enumerate(neurons):
            tensors["spikes_T%d_layer%d" % (steps, k)] = (n.per_step, "F32")
            tensors["counts_T%d_layer%d" % (steps, k)] = (n.counts, "U8")
            rate = float(n.counts.sum()) / (n.counts.numel() * steps)
            print("T=%d layer %d (%s, θ=%.9g): %d neurons, spike rate %.3f, spikes per step %s" % (
                steps, k, NEURON_LAYERS[k], float(n.theta), n.counts[0].numel(), rate,
                [int(v) for v in n.per_step.tolist()]))
        agree = float((logits.argmax(1) == ann_logits.argmax(1)).float().mean())
        print("T=%d: max |snn - ann| logit %.4f, argmax agreement %.2f" % (steps, float((logits - ann_logits).abs().max()), agree))

    meta = {
        "model": "cnn-small", "in_channels": 1, "height": 8, "width": 8, "classes": 10, "width_multiplier": "0.25",
        "activation": "qcfs", "levels": LEVELS, "qcfs_order": "clip-then-floor", "phi": "0.5",
        "steps": ",".join(str(s) for s in STEPS), "batch": BATCH, "seed": seed,
        "neuron_layers": ",".join(NEURON_LAYERS),
        "lambdas": ",".join(repr(float(lam(sd, layer))) for layer in NEURON_LAYERS),
        "if_rule": "m>=theta", "v0": "theta/2", "reset": "subtract", "encoding": "direct", "bn": "eval, per step",
        "margin_snn": "%.6g" % m_snn, "margin_ann": "%.6g" % m_ann,
        "margin_definition": "snn: min |m - theta|/theta over neurons, steps, T (float32 and float64 runs); "
                             "ann: min distance of z/lambda*L + 1/2 to a tie, over L (0 <= z <= lambda)",
    }
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    write_safetensors(OUT_PATH, tensors, meta)
    size = os.path.getsize(OUT_PATH)
    print("seed %d, margin snn %.6g, ann %.6g; wrote %s (%d bytes)" % (seed, m_snn, m_ann, OUT_PATH, size))
    if size > MAX_BYTES:
        sys.exit("fixture is %d bytes, over the %d-byte budget" % (size, MAX_BYTES))


if __name__ == "__main__":
    main()
