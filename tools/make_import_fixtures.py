#!/usr/bin/env python3
"""Writes the fixtures of SpikeSharp's ONNX import tests (tests/SpikeSharp.Tests/Interop/OnnxImportTests.cs) and the
.pth files for the PyTorch state-dict reader's round-trip test, from the reference models of tools/reference_models.py.

Run from the repository root (unset OPENBLAS_CORETYPE; Debian's python3-torch 1.13, CPU; no onnx package needed):

    env -u OPENBLAS_CORETYPE /usr/bin/python3 tools/make_import_fixtures.py

Output in tests/SpikeSharp.Tests/Fixtures/import/ (re-running reproduces the tensors; seeded, one thread):
    resnet20_w0.5_clipfirst.onnx    QCFS L=4 ResNet-20 (ResNet4Cifar, width 0.5: 8/16/32 channels), λ named `up`,
                                    clip-first QCFS, opset 13, dynamic batch (so view(size(0), -1) exports the
                                    Shape→Gather→Unsqueeze→Concat→Reshape chain)
    resnet20_w0.5_up.pth            its torch.save(model.state_dict())
    resnet20_w0.5_expected.safetensors
    vgg16_w0.03125_floorfirst.onnx   QCFS L=4 VGG-16 (width 1/32: 2/4/8/16/16 channels, hidden 128), λ named
                                    `thresh`, floor-first QCFS, opset 11
    vgg16_w0.03125_thresh.pth
    vgg16_w0.03125_expected.safetensors
    resnet20_w0.125_opset9_bn.onnx  QCFS L=4 ResNet-20 at width 1/8 (2/4/8 channels), floor-first, opset 9, exported
                                    with training=PRESERVE so BatchNormalization stays a node (no folding); opset 9
                                    gives Clip with min/max attributes, Pad with a pads attribute, Unsqueeze with axes
    resnet20_w0.125_opset9_bn_expected.safetensors   x [4,3,32,32] and its float32 PyTorch ann_logits
    cnn_small_fuzz.onnx             SpikeSharp's cnn-small (1×8×8 input, width 0.25), clip-first QCFS, opset 13: the
                                    small valid file the fuzz test mutates

The exporter runs in eval mode with constant folding, which fuses every BatchNorm into the preceding Conv (the .onnx
has no BatchNormalization node; the importer rebuilds the BN as an identity and says so).

Weights: conv Kaiming-normal, BN running statistics set to the batch statistics of random inputs and then perturbed
(mean ± 0.2σ, var × U(0.7, 1.4)), γ ∈ U(0.7, 1.3), β ∈ U(−0.1, 0.4), λ ∈ U(1.2, 2.4), so BN and λ matter.

Expected outputs (F32 unless noted), for B = 8 inputs x [8,3,32,32] drawn from N(0, 1):
    x, ann_logits [8,K] (float32 PyTorch, unfused model), snn_logits_T4 [8,K] (float64 reference)
    for each QCFS layer k (forward order; names in metadata `neuron_layers`):
        counts_layer{k}  U8 [ceil(n/2)]  spikes per neuron over T = 4 steps (n = B·C·H·W or B·F neurons, flat
                                         in [B, C, H, W] order), two 4-bit counts per byte, low nibble first
        ties_layer{k}    F32 [m]         flat indices of the neurons whose membrane potential came within 1e-4·θ
                                         of θ at some step (float64 run): rounding may decide their spikes
SNN (methods.md §0, layer-major): image repeated T times along the batch axis (row = t·B + b), IF with θ = λ,
v(0) = θ/2, fire iff m ≥ θ, soft reset, BN as a per-step affine map, logits = mean over steps.
Inputs are kept only when the float64 SNN and two float32 SNNs (BN applied, and BN fused into the conv as the
.onnx has it) give identical spike counts, and the float32 ANN logits agree with float64 within 1e-5, so that a
correct float32 implementation reproduces every count; ties are recorded anyway and the test excludes them.
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_models as rm  # noqa: E402
from safetensors_io import write_safetensors  # noqa: E402

OUT_DIR = os.path.join("tests", "SpikeSharp.Tests", "Fixtures", "import")
LEVELS = 4
STEPS = 4
BATCH = 8
TIE = 1e-4
MAX_TOTAL = 3 * 1024 * 1024


class IfLayer(nn.Module):
    """Layer-major IF neuron replacing a Qcfs module; records per-neuron counts and the threshold margin."""

    def __init__(self, theta):
        super().__init__()
        self.theta = theta
        self.counts = None
        self.margin = None

    def forward(self, x):
        theta = self.theta.to(x.dtype)
        xs = x.view(STEPS, -1, *x.shape[1:])
        v = torch.full_like(xs[0], 0.5) * theta
        out = torch.empty_like(xs)
        counts = torch.zeros_like(xs[0])
        margin = torch.full_like(xs[0], math.inf)
        for t in range(STEPS):
            v = v + xs[t]
            margin = torch.minimum(margin, (v - theta).abs() / theta)
            s = (v >= theta).to(x.dtype)
            v = v - s * theta
            out[t] = s * theta
            counts += s
        self.counts, self.margin = counts, margin
        return out.view_as(x)


def qcfs_modules(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, rm.Qcfs)]


def set_module(model, name, new):
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def randomize(model, g):
    """Non-trivial BN statistics and λ (see the module docstring)."""
    for m in model.modules():
        if isinstance(m, rm.Qcfs):
            getattr(m, m.param).data.fill_(float(1.2 + 1.2 * torch.rand(1, generator=g)))
    # Batch statistics of random inputs through the network with its λ, layer by layer (momentum 1).
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(torch.randn(64, 3, 32, 32, generator=g) if not isinstance(model, CnnSmallRef) else torch.randn(64, 1, 8, 8, generator=g))
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
            c = m.num_features
            std = m.running_var.sqrt()
            m.running_mean += 0.2 * std * torch.randn(c, generator=g)
            m.running_var *= 0.7 + 0.7 * torch.rand(c, generator=g)
            m.weight.data = 0.7 + 0.6 * torch.rand(c, generator=g)
            m.bias.data = -0.1 + 0.5 * torch.rand(c, generator=g)
            m.num_batches_tracked.fill_(100)
        elif isinstance(m, nn.Linear):
            m.bias.data = 0.1 * torch.randn(m.bias.shape, generator=g)
        elif isinstance(m, nn.Conv2d) and m.bias is not None:
            m.bias.data = 0.1 * torch.randn(m.bias.shape, generator=g)


def fused_copy(model):
    """The model with every BN folded into its conv, as the ONNX exporter does (for the float32 agreement check)."""
    import copy
    m2 = copy.deepcopy(model)
    for name, mod in list(m2.named_modules()):
        if isinstance(mod, nn.Sequential):
            children = list(mod.named_children())
            for (n1, a), (n2, b) in zip(children, children[1:]):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    scale = b.weight / torch.sqrt(b.running_var + b.eps)
                    bias = a.bias if a.bias is not None else torch.zeros_like(b.running_mean)
                    new = nn.Conv2d(a.in_channels, a.out_channels, a.kernel_size, a.stride, a.padding, bias=True)
                    new.weight.data = a.weight * scale.view(-1, 1, 1, 1)
                    new.bias.data = (bias - b.running_mean) * scale + b.bias
                    setattr(mod, n1, new)
                    setattr(mod, n2, nn.Identity())
    return m2


def snn_run(model, x):
    """Converted SNN (deep copy with IF layers); returns mean logits and the IF layers in forward order."""
    import copy
    snn = copy.deepcopy(model)
    layers = []
    for name, m in qcfs_modules(snn):
        layer = IfLayer(getattr(m, m.param).detach().clone())
        set_module(snn, name, layer)
        layers.append(layer)
    with torch.no_grad():
        y = snn(x.repeat(STEPS, 1, 1, 1))
    return y.view(STEPS, x.shape[0], -1).mean(0), layers


def select_inputs(model, g, shape):
    """Draws candidates and keeps those whose spikes and logits do not depend on float rounding (docstring)."""
    m64 = __import__("copy").deepcopy(model).double()
    fused = fused_copy(model)
    kept, stats = [], {"drawn": 0}
    while len(kept) < BATCH:
        cand = torch.randn(16, *shape, generator=g)
        stats["drawn"] += 16
        with torch.no_grad():
            a32 = model(cand)
            a64 = m64(cand.double())
        _, l64 = snn_run(m64, cand.double())
        _, l32 = snn_run(model, cand)
        _, lf = snn_run(fused, cand)
        for i in range(16):
            ok = float((a32[i].double() - a64[i]).abs().max()) <= 1e-5
            for a, b, c in zip(l64, l32, lf):
                ok = ok and torch.equal(a.counts[i], b.counts[i].double()) and torch.equal(b.counts[i], c.counts[i])
            if ok and len(kept) < BATCH:
                kept.append(cand[i])
    print("  kept %d of %d candidate inputs" % (BATCH, stats["drawn"]))
    return torch.stack(kept)


def export(model, x, path, opset):
    torch.onnx.export(model, x[:1], path, opset_version=opset, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)


def expected(model, x, meta, path):
    names = [n for n, _ in qcfs_modules(model)]
    with torch.no_grad():
        ann = model(x)
    m64 = __import__("copy").deepcopy(model).double()
    logits, layers = snn_run(m64, x.double())
    tensors = {"x": (x, "F32"), "ann_logits": (ann, "F32"), "snn_logits_T%d" % STEPS: (logits, "F32")}
    total_ties, min_margin = 0, math.inf
    for k, layer in enumerate(layers):
        c = layer.counts.reshape(-1).to(torch.int64)
        assert int(c.max()) <= 15
        if c.numel() % 2:
            c = torch.cat([c, torch.zeros(1, dtype=torch.int64)])
        packed = c[0::2] | (c[1::2] << 4)
        tensors["counts_layer%d" % k] = (packed, "U8")
        ties = (layer.margin.reshape(-1) < TIE).nonzero().reshape(-1)
        assert layer.counts.numel() < 2 ** 24
        tensors["ties_layer%d" % k] = (ties.to(torch.float32), "F32")
        total_ties += ties.numel()
        min_margin = min(min_margin, float(layer.margin.min()))
    rate = sum(float(l.counts.sum()) for l in layers) / sum(l.counts.numel() * STEPS for l in layers)
    meta.update({"steps": STEPS, "batch": BATCH, "levels": LEVELS, "neuron_layers": ",".join(names),
                 "lambdas": ",".join(repr(float(getattr(m, m.param))) for _, m in qcfs_modules(model)),
                 "neuron_counts": ",".join(str(l.counts.numel()) for l in layers),
                 "tie_margin": repr(TIE), "ties": total_ties, "min_margin": "%.6g" % min_margin,
                 "if_rule": "m>=theta", "v0": "theta/2", "reset": "subtract", "encoding": "direct",
                 "bn": "eval, per step", "spike_rate": "%.4f" % rate})
    write_safetensors(path, tensors, meta)
    agree = float((logits.argmax(1) == ann.argmax(1)).float().mean())
    print("  %d QCFS layers, spike rate %.3f, %d ties within %g·θ (min margin %.3g), SNN/ANN argmax agreement %.2f"
          % (len(layers), rate, total_ties, TIE, min_margin, agree))


class CnnSmallRef(nn.Module):
    """SpikeSharp's cnn-small (features.0..7, classifier.0..3) for the fuzz seed."""

    def __init__(self, width, classes, act):
        super().__init__()
        c1, c2, hidden = rm.scaled(32, width), rm.scaled(64, width), rm.scaled(128, width)
        self.features = nn.Sequential(nn.Conv2d(1, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), act(), nn.AvgPool2d(2),
                                      nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2), act(), nn.AvgPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c2 * 4, hidden), act(), nn.Linear(hidden, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    os.makedirs(OUT_DIR, exist_ok=True)
    out = lambda name: os.path.join(OUT_DIR, name)  # noqa: E731

    print("resnet20 (width 0.5, clip-first, up)")
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    model = rm.ResNet20(0.5, 10, rm.qcfs_factory(LEVELS, "clip-first", "up"))
    randomize(model, g)
    x = select_inputs(model, g, (3, 32, 32))
    export(model, x, out("resnet20_w0.5_clipfirst.onnx"), 13)
    torch.save(model.state_dict(), out("resnet20_w0.5_up.pth"))
    expected(model, x, {"model": "resnet20", "width_multiplier": "0.5", "qcfs_order": "clip-first", "lambda_name": "up",
                        "onnx": "resnet20_w0.5_clipfirst.onnx", "opset": 13}, out("resnet20_w0.5_expected.safetensors"))

    print("vgg16 (width 1/32, floor-first, thresh)")
    g = torch.Generator().manual_seed(2)
    torch.manual_seed(2)
    model = rm.VGG16(0.03125, 10, rm.qcfs_factory(LEVELS, "floor-first", "thresh"))
    randomize(model, g)
    x = select_inputs(model, g, (3, 32, 32))
    export(model, x, out("vgg16_w0.03125_floorfirst.onnx"), 11)
    torch.save(model.state_dict(), out("vgg16_w0.03125_thresh.pth"))
    expected(model, x, {"model": "vgg16", "width_multiplier": "0.03125", "qcfs_order": "floor-first",
                        "lambda_name": "thresh", "onnx": "vgg16_w0.03125_floorfirst.onnx", "opset": 11},
             out("vgg16_w0.03125_expected.safetensors"))

    print("resnet20 (width 1/8, floor-first, opset 9, BN kept)")
    g = torch.Generator().manual_seed(4)
    torch.manual_seed(4)
    model = rm.ResNet20(0.125, 10, rm.qcfs_factory(LEVELS, "floor-first", "up"))
    randomize(model, g)
    x = torch.randn(4, 3, 32, 32, generator=g)
    torch.onnx.export(model, x[:1], out("resnet20_w0.125_opset9_bn.onnx"), opset_version=9, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True, training=torch.onnx.TrainingMode.PRESERVE)
    with torch.no_grad():
        write_safetensors(out("resnet20_w0.125_opset9_bn_expected.safetensors"),
                          {"x": (x, "F32"), "ann_logits": (model(x), "F32")},
                          {"model": "resnet20", "width_multiplier": "0.125", "qcfs_order": "floor-first", "opset": 9,
                           "levels": LEVELS, "batch_norm": "kept"})

    print("cnn-small fuzz seed")
    g = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    model = CnnSmallRef(0.25, 10, rm.qcfs_factory(LEVELS, "clip-first", "up"))
    randomize(model, g)
    export(model, torch.randn(1, 1, 8, 8, generator=g), out("cnn_small_fuzz.onnx"), 13)

    total = 0
    for name in sorted(os.listdir(OUT_DIR)):
        size = os.path.getsize(out(name))
        total += size
        print("  %-40s %8d bytes" % (name, size))
    print("total %d bytes" % total)
    if total > MAX_TOTAL:
        sys.exit("fixtures total %d bytes, over the %d-byte budget" % (total, MAX_TOTAL))


if __name__ == "__main__":
    main()
