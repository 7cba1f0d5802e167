#!/usr/bin/env python3
"""Writes tests/SpikeSharp.Tests/Fixtures/torch/neurons_resnet20.safetensors: the newer neuron models written in
PyTorch from docs/conversion-methods.md ("parallel", "signed", "burst", "ftbc"), run layer-major on a small random
QCFS ResNet-20 (width 0.125: 2/4/8 channels, input 3×8×8, 10 classes, L = 4), for MethodGoldenTests.

Run from the repository root (Debian's python3-torch, CPU):
    env -u OPENBLAS_CORETYPE /usr/bin/python3 tools/make_neuron_fixtures.py

The network is tools/reference_models.ResNet20; its Qcfs modules (λ under "up") become neuron layers that take the
whole sequence [T·B, …] (row = t·B + b): the image is repeated T times (direct encoding), BN stays a per-step affine
map, and the residual add and pooling act per step.
    parallel  x̄ = mean over the T rows, computed as a float32 sum in step order then / T; step t fires iff
              (T/t)·x̄ + (θ/2)/t ≥ θ, with T/t and (θ/2)/t as float32 divisions; output θ.
    signed    v0 = θ/2, n = 0; v += x; v ≥ θ: +θ, v −= θ, n += 1; elif v ≤ −1e-3 and n > 0: −θ, v += θ, n −= 1.
    burst     m = 4, u = θ/m, v0 = u/2; v += x; s = clamp(floor(v/u), 0, m); v −= s·u; output s·u.
    ftbc      per-step per-channel bias b[t, c] subtracted before charging; IF otherwise (v0 = θ/2, fire on v ≥ θ).
              The biases are drawn (multiples of θ/8) and stored, so the test checks the neuron, not the calibration.

Exactness: every weight, input, BN statistic and λ is a small dyadic number (x and conv weights multiples of 1/8,
BN var 1024 so that var + 1e-5 rounds to 1024 and its square root is exactly 32, γ multiples of 8, β and the BN mean
multiples of 1/16, λ ∈ {1, 1.5, 2}), so every current and potential is exact in float32 whatever the summation
order, and PyTorch and SpikeSharp decide every spike identically. Only the parallel neuron's (T/t)·x̄ + (θ/2)/t
rounds, the same IEEE operations in both.

Tensors: the state dict under SpikeSharp's keys (λ as "lambda"), x [8,3,8,8]; for method M in (parallel, signed,
burst, ftbc) and T in (4, 8): counts_{M}_T{T}_layer{k} U8 [8, …] unit spikes per neuron over the T steps (a burst of
s counts s, a negative spike 1), logits_{M}_T{T} F32 [8,10] mean output over the steps; ftbc_bias_T{T}_layer{k} F32
[T, C]. Re-running reproduces the file byte for byte (seeded, one thread).
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(__file__))
from reference_models import ResNet20, Qcfs, dyadic, grid, qcfs_factory  # noqa: E402
from safetensors_io import write_safetensors  # noqa: E402

OUT_PATH = os.path.join("tests", "SpikeSharp.Tests", "Fixtures", "torch", "neurons_resnet20.safetensors")
BATCH, STEPS, BURST, EPS = 8, (4, 8), 4, 1e-3


def build(seed):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = ResNet20(width=0.125, classes=10, act=qcfs_factory(4, "clip-first", "up")).eval()
    dyadic(model, g)
    x = grid(g, (BATCH, 3, 8, 8), -1, 1, 1 / 8)
    return model, x


class Neuron(nn.Module):
    """One converted layer: consumes [T·B, …], returns [T·B, …], and records unit spikes per neuron."""

    def __init__(self, kind, theta, steps, bias=None):
        super().__init__()
        self.kind, self.theta, self.T, self.bias = kind, theta, steps, bias
        self.counts = None

    def forward(self, x):
        T, th = self.T, self.theta
        seq = x.view((T, x.shape[0] // T) + x.shape[1:])
        out = torch.zeros_like(seq)
        counts = torch.zeros(seq.shape[1:])
        if self.kind == "parallel":
            total = torch.zeros_like(seq[0])
            for t in range(T):
                total = total + seq[t]
            mean = total / T
            for t in range(1, T + 1):
                ratio = torch.tensor(float(T), dtype=torch.float32) / torch.tensor(float(t), dtype=torch.float32)
                bias = torch.tensor(0.5 * th, dtype=torch.float32) / torch.tensor(float(t), dtype=torch.float32)
                fire = (ratio * mean + bias) >= th
                out[t - 1] = fire.float() * th
                counts += fire.float()
        else:
            unit = th / BURST if self.kind == "burst" else th
            v = torch.full_like(seq[0], unit / 2)
            net = torch.zeros_like(seq[0])
            for t in range(T):
                if self.kind == "ftbc":
                    v = v - self.bias[t].view((1, -1) + (1,) * (seq.dim() - 3))
                v = v + seq[t]
                if self.kind == "burst":
                    s = torch.clamp(torch.floor(v / unit), 0, BURST)
                    v = v - s * unit
                    out[t] = s * unit
                    counts += s
                elif self.kind == "signed":
                    pos = v >= th
                    neg = (~pos) & (v <= -EPS) & (net > 0)
                    v = v - pos.float() * th + neg.float() * th
                    net = net + pos.float() - neg.float()
                    out[t] = pos.float() * th - neg.float() * th
                    counts += pos.float() + neg.float()
                else:  # ftbc: IF
                    fire = v >= th
                    v = v - fire.float() * th
                    out[t] = fire.float() * th
                    counts += fire.float()
        self.counts = counts
        return out.view(x.shape)


def convert(model, kind, steps):
    """Swaps every Qcfs for a Neuron, in execution (registration) order; returns the neurons in that order."""
    neurons = []

    def visit(parent):
        for name, child in list(parent.named_children()):
            if isinstance(child, Qcfs):
                n = Neuron(kind, float(child.up), steps)  # ftbc's biases are drawn once the channel counts are known
                setattr(parent, name, n)
                neurons.append(n)
            else:
                visit(child)
    visit(model)
    return neurons


def run(model, x, kind, steps, g):
    import copy
    snn = copy.deepcopy(model)
    neurons = convert(snn, kind, steps)
    if kind == "ftbc":
        # The channel count of each layer's input, from one forward of the ANN with hooks.
        shapes = []
        hooks = [m.register_forward_hook(lambda mod, i, o: shapes.append(i[0].shape[1])) for m in model.modules() if isinstance(m, Qcfs)]
        model(x)
        for h in hooks:
            h.remove()
        for n, c in zip(neurons, shapes):
            n.bias = grid(g, (steps, c), -0.5, 0.5, 1 / 8) * n.theta
    with torch.no_grad():
        y = snn(x.repeat(steps, 1, 1, 1))
    logits = y.view(steps, x.shape[0], -1).mean(0)
    return neurons, logits


def main():
    torch.set_num_threads(1)
    model, x = build(7)
    tensors = {"x": (x, "F32")}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        tensors[key[:-len("up")] + "lambda" if key.endswith(".up") else key] = (value, "F32")
    g = torch.Generator().manual_seed(11)
    for kind in ("parallel", "signed", "burst", "ftbc"):
        for steps in STEPS:
            neurons, logits = run(model, x, kind, steps, g)
            tensors[f"logits_{kind}_T{steps}"] = (logits, "F32")
            for k, n in enumerate(neurons):
                tensors[f"counts_{kind}_T{steps}_layer{k}"] = (n.counts, "U8")
                if kind == "ftbc":
                    tensors[f"ftbc_bias_T{steps}_layer{k}"] = (n.bias, "F32")
    meta = {"producer": "tools/make_neuron_fixtures.py", "torch": torch.__version__, "burst_m": BURST, "signed_eps": EPS}
    write_safetensors(OUT_PATH, tensors, meta)
    fired = {k: int(sum(t.sum() for name, (t, d) in tensors.items() if name.startswith(f"counts_{k}_T4"))) for k in ("parallel", "signed", "burst", "ftbc")}
    print(f"wrote {OUT_PATH} ({os.path.getsize(OUT_PATH)} bytes); unit spikes at T = 4: {fired}")


if __name__ == "__main__":
    main()
