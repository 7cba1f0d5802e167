#!/usr/bin/env python3
"""Writes the PyTorch golden fixture for SRP and COS on a small random ResNet: the spec's algorithms (methods.md §2, §3)
written in PyTorch, independently of SpikeSharp, with per-neuron spike counts that SpikeSharp must reproduce exactly.

Run from the repository root (unset OPENBLAS_CORETYPE; Debian's python3-torch, CPU):

    env -u OPENBLAS_CORETYPE /usr/bin/python3 tools/make_method_fixtures.py

Output: tests/SpikeSharp.Tests/Fixtures/torch/methods_resnet20.safetensors, read by
tests/SpikeSharp.Tests/Golden/MethodGoldenTests.cs. Re-running reproduces it byte for byte (seeded, one thread).

The network is SpikeSharp's `resnet20` for ModelSpec("resnet20", InChannels 1, Height 8, Width 8, Classes 10,
WidthMultiplier 0.25, QCFS L = 4): conv1 = (Conv 1→4 3×3, BN, QCFS); conv2_x, conv3_x, conv4_x = 3 BasicBlocks each of
4, 8 (stride 2), 16 (stride 2) channels; BasicBlock = residual_function (Conv 3×3, BN, QCFS, Conv 3×3, BN) + shortcut
(identity, or Conv 1×1 stride 2 + BN) → relu (QCFS); GAP; fc 16→10. State-dict keys as SpikeSharp's.

Both methods run the SNN of methods.md §0 (θ = λ, v(0) = θ/2, m = v + I, fire iff m ≥ θ, soft reset, output θ·s,
BN a per-step affine map, direct input):
  * SRP (§2), STEP-MAJOR over the whole network like the authors' MPLayer: τ steps from v0 (outputs discarded, deeper
    layers see unmasked spikes); mask = [v(τ)/θ > 1e-3] per sample and neuron; reset to θ/2; T steps with each
    neuron's output multiplied by its mask.
  * COS (§3), LAYER-MAJOR like the authors' code: each layer gets the full T-step output sequence of the calibrated
    layer before it; in units of θ, from v = ½ run ρ steps, count spikes c, the smallest pre-reset potential on firing
    steps P, the largest potential on silent steps Q, the residual r; r < 0 and c ≥ 1: v0 = ½ − max(1, P − 0.999);
    r ≥ 1: v0 = ½ + max(1, 1.001 − Q); else ½ (float32 constants); then all T steps from v0.

Exactness: every weight is a multiple of 1/32, every BN has γ ∈ {½, 1, 2}, β and μ on a 1/8 grid, var chosen so
float32(var) + float32(1e-5) ∈ {¼, 1, 4} (σ a power of two, as SpikeSharp computes it in float32), λ ∈ {¼, ½, 1}, and
inputs multiples of 1/8. The simulation runs in float64, where all of this is exact; SpikeSharp's float32 is exact
too, so spikes agree even at ties m = θ (recorded: ties). COS's 0.999/1.001 leave its offsets off the grid; the
smallest |m − θ| that is not a tie is recorded as margin (it must stay far above float32 rounding).

Tensors: model weights (F32) under their keys; x [B,1,8,8] F32; for method in (srp, cos) and neuron layer k in
forward order: {method}_spikes_layer{k} F32 [T] spikes per step summed over batch and neurons, {method}_counts_layer{k}
U8 [B, S] spikes per neuron over the T steps; {method}_logits F32 [B,10] mean over T.
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

from safetensors_io import write_safetensors

OUT_PATH = os.path.join("tests", "SpikeSharp.Tests", "Fixtures", "torch", "methods_resnet20.safetensors")
MAX_BYTES = 130 * 1024
BATCH, STEPS, PRESIM = 6, 6, 3
EPS32 = torch.tensor(1e-5, dtype=torch.float32)
C999, C1001 = float(torch.tensor(0.999, dtype=torch.float32)), float(torch.tensor(1.001, dtype=torch.float32))


def bn_var(target):
    """A float32 var with float32(var) + float32(1e-5) == target."""
    v = torch.tensor(target, dtype=torch.float32) - EPS32
    for _ in range(64):
        s = v + EPS32
        if float(s) == target:
            return float(v)
        v = torch.nextafter(v, torch.tensor(-math.inf if float(s) > target else math.inf))
    sys.exit("no float32 var for %r" % target)


class Net:
    """The ResNet as a list of ops; weights in a state dict with SpikeSharp's keys."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)
        self.sd = {}
        self.neurons = []  # names of QCFS layers in forward order
        ch = 4
        self.conv("conv1.0", 1, ch, 3)
        self.bn("conv1.1", ch)
        self.act("conv1.2")
        self.blocks = []
        for s, (width, stride) in enumerate([(4, 1), (8, 2), (16, 2)]):
            for b in range(3):
                p = "conv%d_x.%d." % (s + 2, b)
                st = stride if b == 0 else 1
                self.conv(p + "residual_function.0", ch, width, 3)
                self.bn(p + "residual_function.1", width)
                self.act(p + "residual_function.2")
                self.conv(p + "residual_function.3", width, width, 3)
                self.bn(p + "residual_function.4", width)
                short = st != 1 or ch != width
                if short:
                    self.conv(p + "shortcut.0", ch, width, 1)
                    self.bn(p + "shortcut.1", width)
                self.act(p + "relu")
                self.blocks.append((p, st, short))
                ch = width
        w = torch.randn(10, ch, generator=self.g, dtype=torch.float64) * 1.6 / math.sqrt(ch)
        self.sd["fc.weight"] = torch.round(w * 32) / 32
        self.sd["fc.bias"] = torch.randint(-4, 5, (10,), generator=self.g).to(torch.float64) / 16

    def conv(self, name, cin, cout, k):
        w = torch.randn(cout, cin, k, k, generator=self.g, dtype=torch.float64) * 1.6 / math.sqrt(cin * k * k)
        self.sd[name + ".weight"] = torch.round(w * 32) / 32

    def bn(self, name, c):
        pick = lambda values: torch.tensor(values, dtype=torch.float64)[torch.randint(0, len(values), (c,), generator=self.g)]
        self.sd[name + ".weight"] = pick([0.5, 1.0, 2.0])
        self.sd[name + ".bias"] = torch.randint(-2, 3, (c,), generator=self.g).to(torch.float64) / 8
        self.sd[name + ".running_mean"] = torch.randint(-2, 3, (c,), generator=self.g).to(torch.float64) / 8
        targets = pick([0.25, 1.0, 4.0])
        self.sd[name + ".running_var"] = torch.tensor([bn_var(float(t)) for t in targets], dtype=torch.float64)
        self.sd[name + ".sigma2"] = targets  # float32(var) + float32(eps): not saved, used by the float64 simulation

    def act(self, name):
        self.sd[name + ".lambda"] = torch.tensor([[0.25, 0.5, 1.0][int(torch.randint(0, 3, (1,), generator=self.g))]], dtype=torch.float64)
        self.neurons.append(name)

    def lam(self, name):
        return float(self.sd[name + ".lambda"][0])

    def c(self, name, x, stride=1):
        w = self.sd[name + ".weight"]
        return F.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2)

    def b(self, name, x):
        sh = (1, -1, 1, 1)
        return (x - self.sd[name + ".running_mean"].view(sh)) / torch.sqrt(self.sd[name + ".sigma2"]).view(sh) \
            * self.sd[name + ".weight"].view(sh) + self.sd[name + ".bias"].view(sh)

    def forward(self, x, fire):
        """One pass; fire(name, current) is the neuron layer (step-major: one step; layer-major: a whole sequence)."""
        h = fire("conv1.2", self.b("conv1.1", self.c("conv1.0", x)))
        for p, st, short in self.blocks:
            r = fire(p + "residual_function.2", self.b(p + "residual_function.1", self.c(p + "residual_function.0", h, st)))
            r = self.b(p + "residual_function.4", self.c(p + "residual_function.3", r))
            sc = self.b(p + "shortcut.1", self.c(p + "shortcut.0", h, st)) if short else h
            h = fire(p + "relu", r + sc)
        return F.linear(h.mean((2, 3)), self.sd["fc.weight"], self.sd["fc.bias"])


class Stats:
    def __init__(self):
        self.ties, self.margin = 0, math.inf

    def see(self, m, theta):
        d = (m - theta).abs()
        self.ties += int((d == 0).sum())
        if (d > 0).any():
            self.margin = min(self.margin, float(d[d > 0].min()) / theta)


def srp(net, x, stats):
    """methods.md §2, step-major."""
    v, mask, out = {}, {}, {}

    def fire(name, current):
        theta = net.lam(name)
        m = v.get(name, torch.full_like(current, theta / 2)) + current
        stats.see(m, theta)
        s = (m >= theta).to(m.dtype)
        v[name] = m - theta * s
        emitted = s * mask[name] if name in mask else s
        out.setdefault(name, []).append(emitted)
        return emitted * theta

    for _ in range(PRESIM):
        net.forward(x, fire)
    for name in net.neurons:
        mask[name] = (v[name] / net.lam(name) > 1e-3).to(x.dtype)
    v.clear()
    out.clear()
    logits = torch.stack([net.forward(x, fire) for _ in range(STEPS)]).mean(0)
    return logits, {n: torch.stack(out[n]) for n in net.neurons}


def cos(net, x, stats):
    """methods.md §3, layer-major: each neuron layer gets its whole [T, B, ...] input sequence."""
    out = {}

    def fire(name, seq):
        theta = net.lam(name)
        u = seq / theta  # normalized units (λ is a power of two: exact)
        v = torch.full_like(u[0], 0.5)
        count = torch.zeros_like(v)
        p_min = torch.full_like(v, 1000.0)  # the reference code's sentinels for "no such step"
        q_max = torch.full_like(v, -1000.0)
        for t in range(PRESIM):
            v = v + u[t]
            f = v >= 1
            p_min = torch.where(f, torch.minimum(p_min, v), p_min)
            q_max = torch.where(f, q_max, torch.maximum(q_max, v))
            v = v - f.to(v.dtype)
            count = count + f.to(v.dtype)
        v0 = torch.full_like(v, 0.5)
        down = (v < 0) & (count >= 1)
        up = ~down & (v >= 1)
        v0 = torch.where(down, 0.5 - torch.clamp(p_min - C999, min=1.0), v0)
        v0 = torch.where(up, 0.5 + torch.clamp(C1001 - q_max, min=1.0), v0)
        vt = v0 * theta
        spikes = []
        for t in range(STEPS):
            m = vt + seq[t]
            stats.see(m, theta)
            s = (m >= theta).to(m.dtype)
            vt = m - theta * s
            spikes.append(s)
        out[name] = torch.stack(spikes)
        return out[name] * theta

    # The per-image ops run on the whole sequence with T folded into the batch (row = t·B + b).
    steps_x = x.unsqueeze(0).expand(STEPS, *x.shape)

    def fire_flat(name, current):
        seq = current.view(STEPS, -1, *current.shape[1:])
        return fire(name, seq).reshape(current.shape)

    logits = net.forward(steps_x.reshape(-1, *x.shape[1:]), fire_flat).view(STEPS, x.shape[0], -1).mean(0)
    return logits, out


def main():
    torch.set_num_threads(1)
    seed = 2
    net = Net(seed)
    g = torch.Generator().manual_seed(100 + seed)
    x = torch.randint(-8, 9, (BATCH, 1, 8, 8), generator=g).to(torch.float64) / 8
    tensors, meta = {}, {}
    for k, v in net.sd.items():
        if not k.endswith(".sigma2"):
            f = v.to(torch.float32)
            assert torch.equal(f.to(torch.float64), v), k  # exact in float32
            tensors[k] = (f, "F32")
    tensors["x"] = (x.to(torch.float32), "F32")
    with torch.no_grad():
        for name, method in (("srp", srp), ("cos", cos)):
            stats = Stats()
            logits, spikes = method(net, x, stats)
            tensors[name + "_logits"] = (logits.to(torch.float32), "F32")
            for k, layer in enumerate(net.neurons):
                s = spikes[layer]  # [T, B, ...]
                tensors["%s_spikes_layer%d" % (name, k)] = (s.flatten(1).sum(1).to(torch.float32), "F32")
                tensors["%s_counts_layer%d" % (name, k)] = (s.sum(0).flatten(1).to(torch.uint8), "U8")
            rates = [float(spikes[l].mean()) for l in net.neurons]
            print("%s: ties %d, margin %.3g, firing rate per layer %s" % (name, stats.ties, stats.margin, " ".join("%.2f" % r for r in rates)))
            assert stats.margin > 1e-5, "a potential came within %g of θ without a tie" % stats.margin
            assert min(rates) > 0, "a layer never fires"
            meta[name + "_ties"] = str(stats.ties)
            meta[name + "_margin"] = "%.6g" % stats.margin
    meta.update({"model": "resnet20", "in_channels": "1", "height": "8", "width": "8", "classes": "10", "width_multiplier": "0.25",
                 "levels": "4", "steps": str(STEPS), "presim": str(PRESIM), "batch": str(BATCH), "seed": str(seed),
                 "neuron_layers": ",".join(net.neurons)})
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    write_safetensors(OUT_PATH, tensors, meta)
    size = os.path.getsize(OUT_PATH)
    print("wrote %s (%d bytes)" % (OUT_PATH, size))
    if size > MAX_BYTES:
        sys.exit("fixture is %d bytes, over the %d-byte budget" % (size, MAX_BYTES))


if __name__ == "__main__":
    main()
