#!/usr/bin/env python3
"""Prints Markdown tables from one or more `spikesharp evaluate --json` files of the same checkpoint: accuracy per t
with each method's spike kind, extra steps and latency, then spikes, SOPs and energy per image per t.
Usage: python3 tools/eval_table.py eval.json [more.json ...]"""
import json
import sys

docs = [json.load(open(p)) for p in sys.argv[1:]]
r = docs[0]
methods = [m for d in docs for m in d["snn"]]
ts = sorted({int(t) for m in methods for t in m["accuracy_by_t"]})
ann = r["ann_accuracy"]
print(f"{r['model']} on {r['dataset']}, {r['test_images']} test images; ANN {ann * 100:.2f} %; "
      f"{r['macs_per_image'] / 1e6:.1f} M MACs = {r['ann_energy_pj_per_image'] / 1e6:.2f} µJ per image\n")


def latency(m):
    lat = m.get("latency_steps_by_t") or {}
    if m.get("window_per_t"):
        return f"{int(lat[str(ts[-1])]) // ts[-1]}·t" if lat else "?"
    return f"{m['extra_steps']} + t" if m["extra_steps"] else "t"


print("| method | spikes | calibration images | latency | " + " | ".join(f"t={t}" for t in ts) + " | seconds |")
print("|---|---|---|---|" + "---|" * len(ts) + "---|")
for m in methods:
    acc = m["accuracy_by_t"]
    cells = " | ".join(f"{acc[str(t)] * 100:.2f} %" if str(t) in acc else "" for t in ts)
    kind = m.get("spike_kind", "binary").split(" ")[0]
    print(f"| {m['method']} | {kind} | {m['calibration_images']} | {latency(m)} | {cells} | {m['seconds']:.0f} |")
print("\nSpikes per image (every unit spike) / energy per image at each t (vs the ANN's):\n")
print("| method | " + " | ".join(f"t={t}" for t in ts) + " |")
print("|---|" + "---|" * len(ts))
for m in methods:
    cells = []
    for t in ts:
        k = str(t)
        if k not in m["energy_pj_per_image"]:
            cells.append("")
            continue
        # From the firing rate at t, which windowed methods (parallel) take from the run of that window.
        neurons = sum(layer["neurons_per_image"] for layer in m["spikes_by_layer_and_t"])
        spikes = m["firing_rate_by_t"][k] * neurons * t
        e = m["energy_pj_per_image"][k]
        cells.append(f"{spikes / 1e3:.1f} k / {e / 1e6:.1f} µJ ({e / r['ann_energy_pj_per_image']:.2f}×)")
    print(f"| {m['method']} | " + " | ".join(cells) + " |")
