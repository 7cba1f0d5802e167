#!/usr/bin/env bash
# Renders a SpikeSharp report.html in headless Chromium (Debian package `chromium`) and saves a PNG screenshot.
# Usage: tools/screenshot_report.sh runs/demo/report/report.html out.png
set -euo pipefail
html=$(realpath "$1"); out=${2:-report.png}
profile=$(mktemp -d)
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --window-size=1100,3300 --screenshot="$(realpath -m "$out")" "file://$html" 2>/dev/null
rm -rf "$profile"
echo "wrote $out"
