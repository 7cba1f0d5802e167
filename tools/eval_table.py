#!/usr/bin/env python3
"""Prints Markdown tables from a `spikesharp evaluate --json` file: accuracy per t and firing rate/energy per method.
Usage: python3 tools/eval_table.py eval.json"""
import json
import sys

r = json.load(open(sys.argv[1]))
ts = sorted({int(t) for m in r["snn"] for t in m["accuracy_by_t"]})
ann = r["ann_accuracy"]
print(f"{r['model']} on {r['dataset']}, {r['test_images']} test images; ANN {ann * 100:.2f} %; "
      f"{r['macs_per_image'] / 1e6:.1f} M MACs = {r['ann_energy_pj_per_image'] / 1e6:.2f} µJ per image\n")
print("| method | extra steps | calibration images | " + " | ".join(f"t={t}" for t in ts) + " | seconds |")
print("|---|---|---|" + "---|" * len(ts) + "---|")
for m in r["snn"]:
    acc = m["accuracy_by_t"]
    cells = " | ".join(f"{acc[str(t)] * 100:.2f} %" if str(t) in acc else "" for t in ts)
    print(f"| {m['method']} | {m['extra_steps']} | {m['calibration_images']} | {cells} | {m['seconds']:.0f} |")
print("\n| method | t | firing rate | SOPs per image | energy per image | vs ANN | ANN agreement |")
print("|---|---|---|---|---|---|---|")
for m in r["snn"]:
    for t in ts:
        k = str(t)
        if k not in m["energy_pj_per_image"]:
            continue
        e = m["energy_pj_per_image"][k]
        agree = m.get("ann_prediction_agreement")
        print(f"| {m['method']} | {t} | {m['firing_rate_by_t'][k]:.4f} | {m['sops_per_image'][k] / 1e6:.2f} M | "
              f"{e / 1e6:.2f} µJ | {e / r['ann_energy_pj_per_image']:.2f}× | {'' if agree is None else f'{agree * 100:.2f} %'} |")
