#!/usr/bin/env bash
# End-to-end data benchmarks: `data check` of a generated 1,000,000 x 20 numeric CSV (rows/s,
# peak RSS), KS 1M vs 1M against scipy.stats.ks_2samp in the same run, streaming detectors.
# Usage: bash bench/data/run.sh   (needs /usr/bin/time and Debian python3-scipy at /usr/bin/python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(lscpu | grep 'Model name' | sed 's/Model name: *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
go version
go build -o "$tmp/pipewarden" ./cmd/pipewarden
go build -o "$tmp/gen" ./bench/data/gen
"$tmp/gen" -rows 200000 -cols 20 -seed 1 -out "$tmp/base.csv"
"$tmp/gen" -rows 1000000 -cols 20 -seed 2 -shift 0.05 -out "$tmp/batch.csv"
ls -la "$tmp"/*.csv
# timed CMD...: runs CMD under /usr/bin/time -v and prints wall, CPU and peak RSS.
timed() {
	local label=$1
	shift
	set +e
	/usr/bin/time -v "$@" > "$tmp/out" 2> "$tmp/time"
	local code=$?
	set -e
	/usr/bin/python3 - "$label" "$code" "$tmp/time" <<'PY'
import re, sys
label, code, path = sys.argv[1], sys.argv[2], sys.argv[3]
t = open(path).read()
def num(key):
    return re.search(re.escape(key) + r".*?: (.*)", t).group(1).strip()
parts = [float(p) for p in num("Elapsed (wall clock) time").split(":")]
wall = parts[-1] + 60 * (parts[-2] if len(parts) > 1 else 0)
cpu = float(num("User time (seconds)")) + float(num("System time (seconds)"))
rss = int(num("Maximum resident set size (kbytes)")) / 1024
print(f"{label}: exit {code}, wall {wall:.2f} s, CPU (user+sys) {cpu:.2f} s, peak RSS {rss:.0f} MiB")
if "1M" in label:
    print(f"{label}: {1e6/wall:,.0f} rows/s wall, {1e6/cpu:,.0f} rows per CPU second")
PY
}
timed "profile 200k x 20" "$tmp/pipewarden" data profile "$tmp/base.csv" --out "$tmp/base.json"
timed "check 1M x 20" "$tmp/pipewarden" data check "$tmp/batch.csv" --baseline "$tmp/base.json"
tail -1 "$tmp/out"
echo "--- KS 1M vs 1M (baseline side presorted), Go then SciPy in the same run"
go_ns=$(go test -run XXX -bench 'KS1Mvs1M' -benchtime 5x -count 3 ./internal/dataset/stattest/ | awk '/^BenchmarkKS1Mvs1M/ {print $3}' | sort -n | head -1)
echo "Go KS2Sorted + radix sort of the batch, best of 3: ${go_ns} ns/op"
/usr/bin/python3 - "$go_ns" <<'PY'
import sys, time, numpy as np, scipy
from scipy import stats
go = float(sys.argv[1])
a = np.random.default_rng(1).random(1_000_000); b = np.random.default_rng(2).random(1_000_000) + 0.001
stats.ks_2samp(a, b)
best = float("inf")
for _ in range(3):
    t = time.perf_counter()
    for _ in range(5): stats.ks_2samp(a, b)
    best = min(best, (time.perf_counter() - t) / 5 * 1e9)
print(f"scipy {scipy.__version__} stats.ks_2samp 1M vs 1M, best of 3: {best:.0f} ns/op")
print(f"ratio scipy / Go: {best / go:.1f}x")
PY
go test -run XXX -bench 'KSCounter' -benchtime 5x ./internal/dataset/stattest/ | grep '^Benchmark'
echo "--- streaming detectors (best of 5)"
go test -run XXX -bench . -count 5 ./internal/dataset/changepoint/ | awk '/^Benchmark/ {if (!($1 in b) || $3 < b[$1]) b[$1] = $3} END {for (k in b) print k, b[k], "ns/value"}'
