#!/usr/bin/env bash
# End-to-end audit log benchmark: append N records (default 1,000,000) the way the daemon does,
# then time 'pipewarden audit verify' of the whole log against its checkpoints and witness.
# Usage: bench/audit/run.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-1000000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
go build -o "$work/pipewarden" ./cmd/pipewarden
go build -o "$work/gen" ./bench/audit/gen
echo "machine: $(nproc) cores, $(lscpu | grep 'Model name' | sed 's/Model name: *//')"
"$work/gen" -n "$N" -dir "$work/data/audit" -witness "$work/witness"
du -sh "$work/data/audit" | sed 's/^/log size: /'
start=$(date +%s.%N)
"$work/pipewarden" audit verify --data "$work/data" --witness "$work/witness" --key "@$work/data/audit/key.pub" | head -1
end=$(date +%s.%N)
echo "audit verify of $N records: $(echo "$end - $start" | bc) s wall"
/usr/bin/time -f "audit verify: %e s wall, %U s user, %M KiB max RSS" "$work/pipewarden" audit verify --data "$work/data" --witness "$work/witness" >/dev/null
