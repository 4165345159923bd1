#!/usr/bin/env bash
# End-to-end ingestion benchmark: a real `pipewarden serve` with the embedded store, loaded over
# loopback HTTP by bench/ingest. Usage: bench/ingest/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-10}"
tmp="$(mktemp -d)"
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/pipewarden" ./cmd/pipewarden
go build -o "$tmp/loadgen" ./bench/ingest
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(go version | cut -d' ' -f3)"
for sync in full normal; do
  rm -rf "$tmp/data"
  printf 'store:\n  sqlite:\n    synchronous: %s\n' "$sync" > "$tmp/pw.yaml"
  "$tmp/pipewarden" serve --config "$tmp/pw.yaml" --data "$tmp/data" --listen 127.0.0.1:7799 --log-level warn >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  for _ in $(seq 50); do [ -s "$tmp/data/admin.token" ] && grep -q listening "$tmp/out" && break; sleep 0.1; done
  tok="$(cat "$tmp/data/admin.token")"
  echo "== synchronous=$sync: batches of 100, 8 clients"
  "$tmp/loadgen" -url http://127.0.0.1:7799 -token "$tok" -batch 100 -c 8 -d "${secs}s"
  echo "== synchronous=$sync: single events at 1000 requests/s"
  "$tmp/loadgen" -url http://127.0.0.1:7799 -token "$tok" -batch 1 -c 4 -rps 1000 -d "${secs}s"
  kill "$pid"; wait "$pid" || true
done
