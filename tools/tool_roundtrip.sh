#!/usr/bin/env bash
# The .NET tool round trip a new user makes: pack SpikeSharp and SpikeSharp.Cli, install the tool into a temporary
# HOME from the local packages, then run `spikesharp --version` and `spikesharp demo` from an empty directory.
# Usage: tools/tool_roundtrip.sh [--keep] [demo flags...]   (default demo flags: --epochs 1 --limit 2000, ~30 s)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
keep=0; [ "${1:-}" = "--keep" ] && { keep=1; shift; }
demo_args=("$@"); [ ${#demo_args[@]} -eq 0 ] && demo_args=(--epochs 1 --limit 2000)
work=$(mktemp -d /tmp/spikesharp-tool.XXXXXX)
[ $keep -eq 1 ] && echo "keeping $work" || trap 'rm -rf "$work"' EXIT

dotnet pack -c Release "$repo/SpikeSharp.sln" -o "$work/packages" -v quiet -nologo
version=$(sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' "$repo/Directory.Build.props")
ls "$work/packages"

# A fresh HOME: no dotnet tools, no NuGet cache; the package feed (the mirror or nuget.org) still resolves through
# the user's NuGet.Config, copied over.
export HOME="$work/home" DOTNET_CLI_HOME="$work/home"
mkdir -p "$HOME"
[ -d "${SPIKESHARP_REAL_HOME:-/root}/.nuget/NuGet" ] && mkdir -p "$HOME/.nuget" && cp -r "${SPIKESHARP_REAL_HOME:-/root}/.nuget/NuGet" "$HOME/.nuget/"
dotnet tool install --global --add-source "$work/packages" SpikeSharp.Cli --version "$version"
export PATH="$HOME/.dotnet/tools:$PATH"

mkdir "$work/empty" && cd "$work/empty"
printed=$(spikesharp --version)
echo "spikesharp --version: $printed"
[ "$printed" = "$version" ] || { echo "expected version $version" >&2; exit 1; }
spikesharp demo "${demo_args[@]}"
test -s runs/demo/report/report.html && test -s runs/demo/report/report.json
echo "tool round trip OK: SpikeSharp.Cli $version installed in $HOME, demo report in $PWD/runs/demo/report"
