#!/usr/bin/env bash
# End-to-end ingestion benchmark: a real `pipewarden serve` with the embedded store, loaded over
# loopback HTTP by bench/ingest (the load generator runs on the same 2 cores).
# Usage: bench/ingest/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-10}"
tmp="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
go build -o "$tmp/pipewarden" ./cmd/pipewarden
go build -o "$tmp/loadgen" ./bench/ingest
go build -o "$tmp/floor" ./bench/ingest/floor
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)"
# The disk's own sync latency and the machine's own scheduling stalls, before and after the runs:
# the single-event tail follows them.
"$tmp/loadgen" -probe-disk "$tmp"
"$tmp/loadgen" -probe-cpu 5s
start() { # config yaml; a fresh daemon, so one phase's backlog never slows the next
  rm -rf "$tmp/data"
  printf '%b' "$1" > "$tmp/pw.yaml"
  "$tmp/pipewarden" serve --config "$tmp/pw.yaml" --data "$tmp/data" --listen 127.0.0.1:7799 --log-level warn >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  for _ in $(seq 100); do [ -s "$tmp/data/admin.token" ] && grep -q listening "$tmp/out" && break; sleep 0.1; done
  tok="$(cat "$tmp/data/admin.token")"
}
cpu() { # CPU seconds the daemon has used (user + system)
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat"
}
stop() { echo "   daemon CPU: $(cpu) s"; kill "$pid"; wait "$pid" || true; pid=""; }
run() { # name, config yaml
  start "$2"
  echo "== $1: single events at 1000 requests/s"
  "$tmp/loadgen" -url http://127.0.0.1:7799 -token "$tok" -batch 1 -c 16 -rps 1000 -d "${secs}s"
  stop
  start "$2"
  echo "== $1: batches of 100, 16 clients"
  "$tmp/loadgen" -url http://127.0.0.1:7799 -token "$tok" -batch 100 -c 16 -d "${secs}s"
  stop
}
floor() { # mode [loadgen flags]: the machine's own floor for the single-event phase (bench/ingest/floor)
  "$tmp/floor" -mode "$1" -dir "$tmp" -listen 127.0.0.1:7798 >/dev/null &
  pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/7798) 2>/dev/null && break; sleep 0.1; done
  echo "== floor, $1 ${2:-}: single events at 1000 requests/s"
  "$tmp/loadgen" -url http://127.0.0.1:7798 -token none -batch 1 -c 16 -rps 1000 -d "${secs}s" ${2:-}
  echo "   server CPU: $(cpu) s"; kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}
floor null  # HTTP only: answers 202 at once
floor fsync # plus a group-committed fdatasync per request, the least a durable answer costs
run "default (synchronous=full, every detector on)" ""
if [ -w /dev/cpu_dma_latency ]; then
  # The same with every CPU kept out of idle halt while the load runs (PM QoS, as tuned's
  # latency-performance profile): on a VM a halted virtual CPU can take milliseconds to wake.
  floor fsync -cpu-qos
  start ""
  echo "== default, -cpu-qos (CPUs kept out of idle halt): single events at 1000 requests/s"
  "$tmp/loadgen" -url http://127.0.0.1:7799 -token "$tok" -batch 1 -c 16 -rps 1000 -d "${secs}s" -cpu-qos
  stop
fi
run "synchronous=normal, every detector on" "store:\n  sqlite:\n    synchronous: normal\n"
run "synchronous=full, rules and stream detectors off (ingest, store, audit)" "rules:\n  disable_defaults: true\ndata:\n  streaming:\n    disabled: true\n"
"$tmp/loadgen" -probe-disk "$tmp"
"$tmp/loadgen" -probe-cpu 5s
