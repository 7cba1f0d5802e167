#!/usr/bin/env bash
# Lines of C# per folder (like tinygrad's sz.py): a number to watch, never to golf. CI prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
printf '%-40s %8s %6s\n' folder lines files
for d in $(find src tests bench -name '*.cs' -not -path '*/obj/*' -not -path '*/bin/*' -printf '%h\n' | sort -u); do
  files=$(find "$d" -maxdepth 1 -name '*.cs' | wc -l)
  lines=$(cat "$d"/*.cs | wc -l)
  printf '%-40s %8d %6d\n' "$d" "$lines" "$files"
done
printf '%-40s %8d\n' total "$(find src tests bench -name '*.cs' -not -path '*/obj/*' -not -path '*/bin/*' -exec cat {} + | wc -l)"
