#!/usr/bin/env bash
# Spike-count (popcount) regularizer sweep, spec §5: trains cnn-small with QCFS L = 15 (bit-serial, T = 4) on the bundled
# MNIST sample for several β, evaluates each with the bit-serial SNN, and prints a Markdown table.
# Usage: tools/beta_sweep.sh [OUT_DIR] [EPOCHS]    (run from the repository root)
set -euo pipefail
out=${1:-runs/beta-sweep}; epochs=${2:-6}
cli=(dotnet run -c Release --project src/SpikeSharp.Cli --no-build --)
mkdir -p "$out"
echo "| β | ANN accuracy | spikes per test image (Σ popcount) | bit-serial SNN accuracy (T = 4) | ANN agreement |"
echo "|---|---|---|---|---|"
for beta in 0 1e-8 3e-8 1e-7 3e-7; do
  run="$out/beta-$beta"
  "${cli[@]}" train --model cnn-small --dataset mnist --data data --out "$run" --preset bit-serial --augment none \
    --epochs "$epochs" --spike-beta "$beta" --json "$run.train.json" > "$run.log" 2>&1
  "${cli[@]}" evaluate --checkpoint "$run/last" --data data --method bit-serial --timesteps 4 --json "$run.eval.json" >> "$run.log" 2>&1
  python3 - "$run" "$beta" <<'PY'
import json, sys
run, beta = sys.argv[1], sys.argv[2]
tr = json.load(open(run + ".train.json")); ev = json.load(open(run + ".eval.json"))
last = tr["epochs"][-1]; snn = ev["snn"][0]
print(f"| {beta} | {ev['ann_accuracy']*100:.2f} % | {last['test_spikes_per_image']:.0f} | {snn['accuracy_by_t']['4']*100:.2f} % | {snn['ann_prediction_agreement']*100:.2f} % |")
PY
done
