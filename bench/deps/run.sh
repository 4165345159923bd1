#!/usr/bin/env bash
# End-to-end benchmark of `pipewarden deps check`: 50,000 generated OSV records in a zip, a
# 1,000-package requirements file. Prints the machine, the split load/check figures, then the
# whole command's wall time.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(nproc) cores, $(lscpu | grep 'Model name' | sed 's/Model name:[[:space:]]*//')"
go run ./bench/deps -dir "$out" "$@"
go build -o "$out/pipewarden" ./cmd/pipewarden
start=$(date +%s.%N)
"$out/pipewarden" deps check --osv-db "$out/all.zip" "$out/requirements.txt" --format json >"$out/report.json" || true
end=$(date +%s.%N)
echo "pipewarden deps check end to end: $(echo "$end - $start" | bc) s"
