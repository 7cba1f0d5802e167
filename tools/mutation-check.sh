#!/usr/bin/env bash
# Mutation check of the simulator tests (issue 17): applies each deliberate bug to the library, runs the simulator,
# conversion and golden tests, prints which tests fail, and restores the file. Every mutation must make a test fail.
#   tools/mutation-check.sh            # all mutations
#   tools/mutation-check.sh v0-zero    # one
# Needs a clean working tree for the mutated files (it restores them with `git checkout`).
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=${CPULOCK:-$(command -v cpulock || true)}
FILTER='FullyQualifiedName~SpikeSharp.Tests.Snn|FullyQualifiedName~SpikeSharp.Tests.Conversion|FullyQualifiedName~SpikeSharp.Tests.Golden'
S=src/SpikeSharp

# name | file | perl substitution(s)
MUTATIONS=(
  "ge-to-gt|$S/Snn/IfKernels.cs|s/Vector512\.GreaterThanOrEqual\(vv, th\)/Vector512.GreaterThan(vv, th)/; s/vv >= theta/vv > theta/"
  "v0-zero|$S/Snn/IfNeuron.cs|s/Array\.Fill\(v, InitialFraction \* Threshold\);/Array.Fill(v, 0f);/"
  "reset-to-zero|$S/Snn/IfKernels.cs|s/\(vv - spike\)\.StoreUnsafe\(ref vr, k\);/Vector512.ConditionalSelect(fire, Vector512<float>.Zero, vv).StoreUnsafe(ref vr, k);/; s/v\[k\] = vv - spike;/v[k] = fire ? 0f : vv;/"
  "srp-mask-late|$S/Snn/IfKernels.cs|s/if \(masked\)\n/if (masked && t > 0)\n/; s/output\[outBase \+ i\] = masked \?/output[outBase + i] = masked && t > 0 ?/; s/\(!masked \|\| mask\[k\] != 0\)/(!masked || t == 0 || mask[k] != 0)/"
  "cos-sign|$S/Conversion/Methods/CosCalibration.cs|s/offsets\[i\] = \(v0\[i\] - start\) \* theta;/offsets[i] = (start - v0[i]) * theta;/"
  "acc-off-by-one|$S/Snn/Simulator.cs|s/(\s*)(TensorPrimitives\.Add\(sum, outputs\.Data\.AsSpan\(t \* batch \* k, batch \* k\), sum\);)\n(\s*)(correct\[t\] \+= Evaluation\.CountCorrect\(sum, k, labels\);)/\$1\$4\n\$3\$2/"
  "sop-last-layer|$S/Autograd/Ops/LinearOp.cs|s/^\s*OpCounter\.Add\(\"linear\".*\n//m"
  "chunk-drop|$S/Snn/Simulator.cs|s/for \(int b0 = 0; b0 < batch\.Count; b0 \+= chunk\)/for (int b0 = 0; b0 + chunk <= batch.Count; b0 += chunk)/"
)

for m in "${MUTATIONS[@]}"; do
  IFS='|' read -r name file subst <<<"$m"
  [[ $# -gt 0 && " $* " != *" $name "* ]] && continue
  cp "$file" "/tmp/mutation-orig"
  perl -0pi -e "$subst" "$file"
  if cmp -s "$file" /tmp/mutation-orig; then echo "$name: the substitution did not apply to $file" >&2; exit 1; fi
  trap 'git checkout -q -- "$file"' EXIT
  echo "== $name ($file)"
  git diff --stat -- "$file" | head -1
  if ! $LOCK dotnet build -c Release tests/SpikeSharp.Tests -v q -nologo 2>&1 | grep -q "0 Error(s)"; then
    echo "$name: does not compile"; git checkout -q -- "$file"; exit 1
  fi
  out=$($LOCK dotnet test -c Release --no-build tests/SpikeSharp.Tests --filter "$FILTER" 2>&1 || true)
  failed=$(grep -oE '^\s+Failed [A-Za-z0-9_.]+(\([^)]*\))?' <<<"$out" | sed -E 's/^\s+Failed //' | sort -u)
  if [[ -z "$failed" ]]; then echo "$name: NO TEST FAILED"; else echo "$failed" | sed 's/^/  fails: /'; fi
  echo "  $(grep -E '^(Passed|Failed)!' <<<"$out" | tail -1)"
  git checkout -q -- "$file"
  trap - EXIT
done
$LOCK dotnet build -c Release tests/SpikeSharp.Tests -v q -nologo >/dev/null
