#!/usr/bin/env python3
"""Writes the small PyTorch .pth fixtures that pin SpikeSharp's PthReader (src/SpikeSharp/Interop/Pth) to torch.save.

Run from the repository root (unset OPENBLAS_CORETYPE; Debian's python3-torch 1.13, CPU):

    env -u OPENBLAS_CORETYPE /usr/bin/python3 tools/make_pth_fixtures.py

Output in tests/SpikeSharp.Tests/Fixtures/pth/, read by tests/SpikeSharp.Tests/Interop/PthReaderTests.cs:
    tiny_bn.pth         state dict of Conv(1→2) + BN(2) + a QCFS-like module with λ named `up` + Linear(8→3);
                        BN's num_batches_tracked is int64 (= 7)
    legacy.pth          the same state dict in the legacy (pre-1.6) format: _use_new_zipfile_serialization=False
    params.pth          tiny_bn's dict saved with keep_vars=True (Parameters, via torch._utils._rebuild_parameter)
    tiny_bn_p4.pth      the same state dict with pickle_protocol=4 (STACK_GLOBAL, MEMOIZE, FRAME, SHORT_BINUNICODE)
    dtypes.pth          {f32, f64, f16, bf16, i64, i32, u8, bool, scalar}: a dict of tensors of every storage type
    views.pth           {base [3,4], t = base.t(), row = base[1], col = base[:, 2], block = base[1:3, 1:3],
                         other}: five tensors on one storage, four of them non-contiguous or offset views
    wrapped.pth         {"state_dict": tiny_bn's dict, "epoch": 3, "best_acc": 0.91, "optimizer": SGD state dict}
    dataparallel.pth    tiny_bn's dict with DataParallel's `module.` prefix on every key
    cnn_small.pth       SpikeSharp's cnn-small for 1x8x8 inputs, width 0.25, 10 classes, with reference-code key names:
                        features.0.weight, features.1.* (+ num_batches_tracked), features.2.up, features.4.weight,
                        features.5.*, features.6.up, classifier.1.*, classifier.2.up, classifier.3.*
    resnet20_w025.pth   the SRP/COS reference ResNet-20 (ResNet4Cifar, keys of methods.md §9) at width 0.25
                        (channels 4/8/16), BN statistics and λ (`up`) randomized: SpikeSharp's resnet20 --width 0.25
    expected.safetensors  every tensor above as float32, named "<file stem>/<key>" (keys as saved, prefixes included)
Re-running reproduces the files (seeded), except legacy.pth, whose storage keys are memory addresses.
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_models  # noqa: E402  (the reference ResNet-20 layout, methods.md §9)
from safetensors_io import write_f32  # noqa: E402

OUT = os.path.join("tests", "SpikeSharp.Tests", "Fixtures", "pth")


class Qcfs(nn.Module):
    """The reference codes' activation: only its threshold λ (`up`) is state."""

    def __init__(self):
        super().__init__()
        self.up = nn.Parameter(torch.tensor([4.0]))

    def forward(self, x):
        return torch.minimum(torch.relu(x), self.up)


def tiny_model():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), Qcfs(), nn.Flatten(), nn.Linear(8, 3))
    with torch.no_grad():
        m[1].running_mean.uniform_(-1, 1)
        m[1].running_var.uniform_(0.5, 2)
        m[1].weight.uniform_(0.5, 1.5)
        m[1].bias.uniform_(-0.5, 0.5)
        m[1].num_batches_tracked.fill_(7)
        m[2].up.fill_(2.5)
    return m


def cnn_small_state():
    """cnn-small (src/SpikeSharp/Models/CnnSmall.cs) at 1x8x8, width 0.25: channels 8, 16; hidden 32; 10 classes."""
    g = torch.Generator().manual_seed(1)

    def r(*shape, scale=0.3):
        return (torch.rand(*shape, generator=g) * 2 - 1) * scale

    sd = {}
    for i, (cin, cout) in ((0, (1, 8)), (4, (8, 16))):
        sd[f"features.{i}.weight"] = r(cout, cin, 3, 3)
        bn = f"features.{i + 1}"
        sd[f"{bn}.weight"] = 1 + r(cout, scale=0.2)
        sd[f"{bn}.bias"] = r(cout, scale=0.1)
        sd[f"{bn}.running_mean"] = r(cout, scale=0.1)
        sd[f"{bn}.running_var"] = 1 + r(cout, scale=0.2).abs()
        sd[f"{bn}.num_batches_tracked"] = torch.tensor(100, dtype=torch.int64)
        sd[f"features.{i + 2}.up"] = torch.tensor([1.0 + i / 4])
    sd["classifier.1.weight"] = r(32, 64, scale=0.1)
    sd["classifier.1.bias"] = r(32, scale=0.1)
    sd["classifier.2.up"] = torch.tensor([2.0])
    sd["classifier.3.weight"] = r(10, 32, scale=0.2)
    sd["classifier.3.bias"] = r(10, scale=0.1)
    # An OrderedDict, as model.state_dict() returns.
    from collections import OrderedDict
    return OrderedDict(sd)


def randomized(model):
    """Non-trivial BN statistics and thresholds, so a mix-up of any two tensors shows."""
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.copy_(torch.rand(mod.running_mean.shape, generator=g) - 0.5)
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=g) + 0.5)
                mod.bias.copy_(torch.rand(mod.bias.shape, generator=g) - 0.5)
                mod.num_batches_tracked.fill_(391)
            elif isinstance(mod, (Qcfs, reference_models.Qcfs)):
                mod.up.copy_(torch.rand(1, generator=g) * 4 + 1)
    return model


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    expected = {}

    def save(stem, obj, tensors, **kw):
        torch.save(obj, os.path.join(OUT, stem + ".pth"), **kw)
        for k, t in tensors.items():
            expected[f"{stem}/{k}"] = t.detach().to(torch.float32).contiguous().clone()  # a copy: opt.step() changes m later

    m = tiny_model()
    sd = m.state_dict()
    save("tiny_bn", sd, sd)
    save("tiny_bn_p4", sd, sd, pickle_protocol=4)
    save("legacy", sd, sd, _use_new_zipfile_serialization=False)

    params = m.state_dict(keep_vars=True)  # nn.Parameter values: torch._utils._rebuild_parameter
    save("params", params, params)

    dtypes = {
        "f32": torch.randn(2, 3),
        "f64": torch.randn(5, dtype=torch.float64),
        "f16": torch.randn(4, dtype=torch.float16),
        "bf16": torch.randn(4).to(torch.bfloat16),
        "i64": torch.tensor([-3, 0, 7, 1 << 20], dtype=torch.int64),
        "i32": torch.tensor([[-1, 2], [3, -4]], dtype=torch.int32),
        "u8": torch.tensor([0, 1, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(1.25),
    }
    save("dtypes", dtypes, dtypes)

    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.5 - 1
    views = {"base": base, "t": base.t(), "row": base[1], "col": base[:, 2], "block": base[1:3, 1:3], "other": torch.randn(3)}
    assert not views["t"].is_contiguous() and not views["col"].is_contiguous()
    save("views", views, views)

    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(torch.randn(2, 1, 4, 4)).sum().backward()
    opt.step()
    m.eval()
    wrapped = {"state_dict": m.state_dict(), "epoch": 3, "best_acc": 0.91, "optimizer": opt.state_dict()}
    save("wrapped", wrapped, m.state_dict())

    dp = nn.DataParallel(tiny_model()).state_dict()
    assert all(k.startswith("module.") for k in dp)
    save("dataparallel", dp, dp)

    cs = cnn_small_state()
    save("cnn_small", cs, cs)

    rn = randomized(reference_models.ResNet20(width=0.25)).state_dict()
    save("resnet20_w025", rn, rn)

    write_f32(os.path.join(OUT, "expected.safetensors"), expected)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
