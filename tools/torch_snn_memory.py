#!/usr/bin/env python3
"""Peak resident memory of the PyTorch baseline's SNN inference alone (one network, one T), for the memory row of
docs/performance.md. Uses the model definitions of ../shared/bench/torch_baseline.py.

    env -u OPENBLAS_CORETYPE /usr/bin/python3 tools/torch_snn_memory.py --model vgg16 --T 8
"""
import argparse, importlib.util, os, resource
import torch

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="vgg16")
ap.add_argument("--T", type=int, default=8)
ap.add_argument("--batch", type=int, default=128)
ap.add_argument("--baseline", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench", "torch_baseline.py"))
a = ap.parse_args()
spec = importlib.util.spec_from_file_location("torch_baseline", a.baseline)
tb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tb)
torch.set_num_threads(2)
torch.manual_seed(0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
build = {"vgg16": tb.vgg16, "resnet20": tb.resnet20}[a.model]
snn = build(3, 10, lambda: tb.IfLayer(a.T, 1.0)).to(memory_format=torch.channels_last).eval()
xt = torch.randn(a.batch, 3, 32, 32).to(memory_format=torch.channels_last).repeat(a.T, 1, 1, 1)
with torch.no_grad():
    for _ in range(2):
        snn(xt).view(a.T, a.batch, -1).mean(0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"torch {torch.__version__} snn_{a.model}_T{a.T} batch {a.batch}: peak RSS {peak:.0f} MiB (after imports {before:.0f} MiB)")
