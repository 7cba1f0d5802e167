#!/usr/bin/env python3
"""Networks that are not SpikeSharp built-ins, written in PyTorch and exported to ONNX, for `spikesharp import` without
--arch (the graph model, GraphImportTests):

    vgg_maxpool   1×28×28  conv-BN-QCFS ×2, max pool, conv-BN-QCFS, max pool (each pools spikes in the SNN);
                           classifier Linear-QCFS-Dropout(0.5)-Linear (two layers)
    resnet32      3×32×32  CIFAR ResNet-32 (5 BasicBlocks per stage, 1×1 projection shortcuts), global average pool
    inception     3×32×32  stem, then two blocks whose four branches (1×1; 1×1→3×3; 3×3 dilated 2; avg pool→1×1) meet
                           in a channel Concat
    dwsep         1×28×28  depthwise-separable (MobileNet-style): depthwise 3×3 (groups = channels) + pointwise 1×1

Fixture mode (default; Debian's python3-torch, CPU, from the repository root):
    env -u OPENBLAS_CORETYPE /usr/bin/python3 tools/make_graph_fixtures.py
writes tests/SpikeSharp.Tests/Fixtures/torch/graphs/{name}.onnx (random dyadic weights, as tools/make_neuron_fixtures.py
explains: every current is exact in float32, so both sides decide every spike identically) and graphs.safetensors:
x_{name} (2 inputs), logits_{name} (the ANN), and for the SNN at T = 4, run layer-major (the image repeated T times,
each QCFS replaced by an IF neuron: θ = λ, v0 = θ/2, fire on v ≥ θ, soft reset, output θ·s; a max pool of spikes
passes, per window and step, the output of the unit with the largest accumulated output so far: SpikeSharp's rule) counts_{name}_{k} (spikes per neuron over the 4
steps, k = the neuron's index in execution order) and snn_logits_{name} (mean output over the steps). The metadata
lists each model's neuron module paths in that order.

Training mode (done-means 2 of the graph-model issue):
    env -u OPENBLAS_CORETYPE /usr/bin/python3 tools/make_graph_fixtures.py --train ../shared/datasets/fashion-mnist OUT
trains each network (1×28×28 input) one epoch on Fashion-MNIST (SGD 0.1, momentum 0.9, wd 5e-4, batch 128, QCFS L = 4
with λ init 8 and the straight-through floor, normalized with Fashion-MNIST's mean/std), writes OUT/{name}.onnx and
OUT/{name}.json with its ANN test accuracy on the 10 000 test images.
"""
import gzip
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from reference_models import GradFloor, dyadic, grid  # noqa: E402
from safetensors_io import write_safetensors  # noqa: E402

OUT_DIR = os.path.join("tests", "SpikeSharp.Tests", "Fixtures", "torch", "graphs")
BATCH, STEPS, LEVELS = 2, 4, 4


class Qcfs(nn.Module):
    """h = λ·clip(floor(z/λ·L + ½)/L, 0, 1), clip-first order, λ learnable ("up")."""

    def __init__(self, init=8.0):
        super().__init__()
        self.up = nn.Parameter(torch.tensor([init]))

    def forward(self, x):
        x = torch.clamp(x / self.up, 0, 1)
        return GradFloor.apply(x * LEVELS + 0.5) / LEVELS * self.up


def cbq(cin, cout, k=3, stride=1, padding=1, groups=1, dilation=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding, groups=groups, dilation=dilation, bias=False), nn.BatchNorm2d(cout), Qcfs())


class VggMaxPool(nn.Module):
    def __init__(self, cin=1, size=28, classes=10):
        super().__init__()
        # Flat blocks, as VGG is written: the max pool directly follows a QCFS.
        self.block1 = nn.Sequential(*cbq(cin, 16), *cbq(16, 16), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(*cbq(16, 32), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * (size // 4) ** 2, 64), Qcfs(), nn.Dropout(0.5), nn.Linear(64, classes))

    def forward(self, x):
        return self.classifier(self.block2(self.block1(x)))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.residual_function = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), Qcfs(),
                                               nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = Qcfs()

    def forward(self, x):
        return self.relu(self.residual_function(x) + self.shortcut(x))


class ResNet32(nn.Module):
    def __init__(self, cin=3, classes=10, widths=(8, 16, 32)):
        super().__init__()
        c = widths[0]
        self.conv1 = cbq(cin, c)
        stages = []
        for s, w in enumerate(widths):
            blocks = []
            for b in range(5):
                blocks.append(Block(c, w, 2 if b == 0 and s > 0 else 1))
                c = w
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.stages(self.conv1(x)), 1)
        return self.fc(x.view(x.size(0), -1))


class InceptionBlock(nn.Module):
    def __init__(self, cin, c):
        super().__init__()
        self.b1 = cbq(cin, c, 1, 2, 0)
        self.b2 = nn.Sequential(cbq(cin, c, 1, 1, 0), cbq(c, c, 3, 2, 1))
        self.b3 = cbq(cin, c, 3, 2, 2, dilation=2)
        self.b4 = nn.Sequential(nn.AvgPool2d(2), cbq(cin, c, 1, 1, 0))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class Inception(nn.Module):
    def __init__(self, cin=3, classes=10):
        super().__init__()
        self.stem = cbq(cin, 16)
        self.block1 = InceptionBlock(16, 8)
        self.block2 = InceptionBlock(32, 16)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class DwSep(nn.Module):
    def __init__(self, cin=1, classes=10):
        super().__init__()
        layers = [cbq(cin, 16)]
        c = 16
        for cout, stride in ((32, 2), (32, 1), (64, 2), (64, 1)):
            layers += [cbq(c, c, 3, stride, 1, groups=c), cbq(c, cout, 1, 1, 0)]
            c = cout
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def models(channels_for_fixture=True):
    return {
        "vgg_maxpool": (VggMaxPool(1, 28), (1, 28, 28)),
        "resnet32": (ResNet32(3 if channels_for_fixture else 1), (3, 32, 32) if channels_for_fixture else (1, 28, 28)),
        "inception": (Inception(3 if channels_for_fixture else 1), (3, 32, 32) if channels_for_fixture else (1, 28, 28)),
        "dwsep": (DwSep(1), (1, 28, 28)),
    }


class IfNeuron(nn.Module):
    """A converted QCFS: [B or T·B, …] in, [T·B, …] out (row = t·B + b); records spikes per neuron."""

    def __init__(self, theta, batch):
        super().__init__()
        self.theta, self.batch, self.counts = theta, batch, None

    def forward(self, x):
        if x.shape[0] == self.batch:
            x = x.repeat((STEPS,) + (1,) * (x.dim() - 1))
        seq = x.view((STEPS, self.batch) + x.shape[1:])
        v = torch.full_like(seq[0], self.theta / 2)
        out = torch.zeros_like(seq)
        counts = torch.zeros_like(seq[0])
        for t in range(STEPS):
            v = v + seq[t]
            fire = (v >= self.theta).float()
            v = v - fire * self.theta
            out[t] = fire * self.theta
            counts += fire
        self.counts = counts
        return out.view(x.shape)


class GatedMaxPool(nn.Module):
    """SpikeSharp's max pool of spikes: per window, step t passes the output at t of the unit whose accumulated output
    over steps 1..t is largest (the first on ties, in row-major window order)."""

    def __init__(self, kernel, stride, batch):
        super().__init__()
        self.k, self.s, self.batch = kernel, stride, batch

    def forward(self, x):
        seq = x.view((STEPS, self.batch) + x.shape[1:])
        b, c, h, w = seq.shape[1:]
        oh, ow = (h - self.k) // self.s + 1, (w - self.k) // self.s + 1
        total = torch.zeros_like(seq[0])
        out = torch.zeros((STEPS, b, c, oh, ow))
        for t in range(STEPS):
            total = total + seq[t]
            for r in range(oh):
                for q in range(ow):
                    win = total[:, :, r * self.s:r * self.s + self.k, q * self.s:q * self.s + self.k].reshape(b, c, -1)
                    best = win.argmax(-1)  # the first maximum (torch ≥ 1.7 returns the first index on CPU)
                    frame = seq[t][:, :, r * self.s:r * self.s + self.k, q * self.s:q * self.s + self.k].reshape(b, c, -1)
                    out[t, :, :, r, q] = frame.gather(-1, best.unsqueeze(-1)).squeeze(-1)
        return out.view((STEPS * b, c, oh, ow))


def to_snn(model, batch):
    """Every Qcfs becomes an IfNeuron and every MaxPool2d (in these networks each pools a QCFS's spikes) a
    GatedMaxPool, in execution order. Returns [(module path, neuron)]."""
    neurons = []

    def visit(parent, prefix):
        for name, child in list(parent.named_children()):
            path = prefix + name
            if isinstance(child, Qcfs):
                n = IfNeuron(float(child.up), batch)
                setattr(parent, name, n)
                neurons.append((path, n))
            elif isinstance(child, nn.MaxPool2d):
                setattr(parent, name, GatedMaxPool(child.kernel_size, child.stride, batch))
            else:
                visit(child, path + ".")
    visit(model, "")
    return neurons


def export(model, shape, path):
    model.eval()
    torch.onnx.export(model, torch.zeros((1,) + shape), path, opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def fixtures():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(OUT_DIR, exist_ok=True)
    tensors, meta = {}, {}
    for k, (name, (model, shape)) in enumerate(models().items()):
        g = torch.Generator().manual_seed(100 + k)
        dyadic(model, g)
        model.eval()
        export(model, shape, os.path.join(OUT_DIR, name + ".onnx"))
        x = grid(g, (BATCH,) + shape, -1, 1, 1 / 8)
        with torch.no_grad():
            tensors[f"x_{name}"] = (x, "F32")
            tensors[f"logits_{name}"] = (model(x), "F32")
            neurons = to_snn(model, BATCH)
            y = model(x)
            tensors[f"snn_logits_{name}"] = (y.view(STEPS, BATCH, -1).mean(0), "F32")
        for i, (_, n) in enumerate(neurons):
            tensors[f"counts_{name}_{i}"] = (n.counts, "U8")
        meta[name] = ",".join(p for p, _ in neurons)
        rate = sum(float(n.counts.sum()) for _, n in neurons) / sum(n.counts.numel() * STEPS for _, n in neurons)
        print(f"{name}: {len(neurons)} neuron layers, firing rate {rate:.3f}")
    write_safetensors(os.path.join(OUT_DIR, "graphs.safetensors"), tensors, meta)
    print(f"wrote {OUT_DIR}/*.onnx and graphs.safetensors")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8).view(n, 1, rows, cols)
    return torch.frombuffer(bytearray(data[8:]), dtype=torch.uint8).long()


def train(data_dir, out_dir):
    torch.manual_seed(0)
    os.makedirs(out_dir, exist_ok=True)
    mean, std = 0.2860, 0.3530  # Fashion-MNIST (SpikeSharp's Datasets.DefaultNormalization)
    def load(prefix):
        x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz")).float() / 255
        return (x - mean) / std, read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    xtr, ytr = load("train")
    xte, yte = load("t10k")
    only = sys.argv[4:] or None
    for name, (model, shape) in models(channels_for_fixture=False).items():
        if only and name not in only:
            continue
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        steps = (len(xtr) + 127) // 128
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        model.train()
        perm = torch.randperm(len(xtr))
        for i in range(steps):
            idx = perm[i * 128:(i + 1) * 128]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum()) for i in range(0, len(xte), 500))
        export(model, shape, os.path.join(out_dir, name + ".onnx"))
        acc = correct / len(xte)
        with open(os.path.join(out_dir, name + ".json"), "w") as f:
            json.dump({"model": name, "epochs": 1, "test_accuracy": acc, "test_correct": correct, "input_shape": list(shape)}, f)
        print(f"{name}: ANN test accuracy {acc * 100:.2f} % after one epoch (PyTorch)")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--train":
        train(sys.argv[2], sys.argv[3])
    else:
        fixtures()
