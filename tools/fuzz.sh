#!/usr/bin/env bash
# Coverage-guided fuzzing of the file readers (ONNX, .pth, safetensors, IDX, CIFAR) with SharpFuzz 2.3.0 and AFL++
# (Debian's afl++). Builds tests/SpikeSharp.Fuzz, instruments SpikeSharp.dll with the SharpFuzz tool, and runs afl-fuzz
# per reader from the committed seed corpus (tests/SpikeSharp.Fuzz/corpus/READER) in chunks of at most
# FUZZ_CHUNK_SECONDS, each pinned to one core and serialized through cpulock when it exists, until FUZZ_EXECS
# executions. Prints executions, edges, corpus size, crashes and hangs per reader; exits 1 on any crash or hang (the
# inputs are in $FUZZ_OUT/findings/READER/default/{crashes,hangs}; reproduce with
# `dotnet $FUZZ_OUT/bin/SpikeSharp.Fuzz.dll READER replay FILE`).
#
#   tools/fuzz.sh                      # every reader, 1 000 000 executions each
#   FUZZ_EXECS=50000 tools/fuzz.sh pth # one reader, a short run
#
# Environment: FUZZ_EXECS (1000000), FUZZ_CHUNK_SECONDS (280), FUZZ_CPU (1), FUZZ_OUT (/tmp/spikesharp-fuzz),
# FUZZ_FRESH=1 to discard earlier findings and start again from the seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
READERS=(${@:-onnx onnx-resnet pth safetensors idx cifar})
EXECS=${FUZZ_EXECS:-1000000}
CHUNK=${FUZZ_CHUNK_SECONDS:-280}
CPU=${FUZZ_CPU:-1}
OUT=${FUZZ_OUT:-/tmp/spikesharp-fuzz}
LOCK=$(command -v cpulock || true)
command -v afl-fuzz >/dev/null || { echo "afl-fuzz not found: apt-get install afl++" >&2; exit 2; }

mkdir -p "$OUT/findings"
if [[ ! -x "$OUT/tool/sharpfuzz" ]]; then
  dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$OUT/tool" >/dev/null
fi
# Build, then instrument only the library (the harness and the runtime stay as they are).
$LOCK dotnet build -c Release tests/SpikeSharp.Fuzz -o "$OUT/bin" -nologo -v q >/dev/null
"$OUT/tool/sharpfuzz" "$OUT/bin/SpikeSharp.dll" >/dev/null

stat_of() { [[ -f "$1/default/fuzzer_stats" ]] || return 0; awk -F': *' -v k="$2" '$1 ~ "^"k" *$" {print $2; exit}' "$1/default/fuzzer_stats" | tr -d '%'; }

export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 \
  AFL_AUTORESUME=1 AFL_FAST_CAL=1 DOTNET_TieredCompilation=0
status=0
printf '%-12s %10s %8s %8s %8s %8s %8s\n' reader execs execs/s edges corpus crashes hangs
for r in "${READERS[@]}"; do
  dir="$OUT/findings/$r"
  [[ "${FUZZ_FRESH:-0}" == 1 ]] && rm -rf "$dir"
  total=0 secs=0
  while (( total < EXECS )); do
    input="tests/SpikeSharp.Fuzz/corpus/$r"
    [[ -f "$dir/default/fuzzer_stats" ]] && input=-
    before=$(stat_of "$dir" execs_done); before=${before:-0}
    start=$(date +%s)
    $LOCK taskset -c "$CPU" afl-fuzz -i "$input" -o "$dir" -t 5000 -m none -V "$CHUNK" -E $((EXECS - total + before)) \
      -- dotnet "$OUT/bin/SpikeSharp.Fuzz.dll" "$r" >"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; exit 1; }
    secs=$((secs + $(date +%s) - start))
    now=$(stat_of "$dir" execs_done); now=${now:-0}
    # AFL++ restores execs_done when it resumes; count only what this chunk added.
    if (( now >= before )); then total=$((total + now - before)); else total=$((total + now)); fi
  done
  crashes=$(stat_of "$dir" saved_crashes); hangs=$(stat_of "$dir" saved_hangs)
  printf '%-12s %10d %8d %8s %8s %8s %8s\n' "$r" "$total" $((total / (secs > 0 ? secs : 1))) \
    "$(stat_of "$dir" edges_found)" "$(stat_of "$dir" corpus_count)" "${crashes:-?}" "${hangs:-?}"
  [[ "${crashes:-1}" == 0 && "${hangs:-1}" == 0 ]] || status=1
done
exit $status
