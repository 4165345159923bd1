#!/usr/bin/env bash
# End-to-end data benchmarks: `data check` of a generated 1,000,000 x 20 numeric CSV (rows/s,
# peak RSS), KS 1M vs 1M against scipy.stats.ks_2samp in the same run, streaming detectors.
# Usage: bash bench/data/run.sh   (needs /usr/bin/time and Debian python3-scipy)
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(lscpu | grep 'Model name' | sed 's/Model name: *//')"
go build -o "$tmp/pipewarden" ./cmd/pipewarden
go run ./bench/data/gen -rows 200000 -cols 20 -seed 1 -out "$tmp/base.csv"
go run ./bench/data/gen -rows 1000000 -cols 20 -seed 2 -shift 0.05 -out "$tmp/batch.csv"
ls -la "$tmp"/*.csv
/usr/bin/time -v "$tmp/pipewarden" data profile "$tmp/base.csv" --out "$tmp/base.json" 2> "$tmp/profile.time"
grep -E "Elapsed|Maximum resident" "$tmp/profile.time" | sed 's/^/profile 200k: /'
set +e
/usr/bin/time -v "$tmp/pipewarden" data check "$tmp/batch.csv" --baseline "$tmp/base.json" > "$tmp/check.out" 2> "$tmp/check.time"
echo "check exit code: $?"
set -e
tail -1 "$tmp/check.out"
el=$(grep Elapsed "$tmp/check.time" | awk '{print $NF}')
rss=$(grep "Maximum resident" "$tmp/check.time" | awk '{print $NF}')
python3 - "$el" "$rss" <<'PY'
import sys
el, rss = sys.argv[1], int(sys.argv[2])
parts = [float(p) for p in el.split(":")]
sec = parts[-1] + 60 * (parts[-2] if len(parts) > 1 else 0)
print(f"check 1M x 20: {sec:.2f} s, {1e6/sec:,.0f} rows/s, peak RSS {rss/1024:.0f} MiB")
PY
echo "--- KS 1M vs 1M (baseline side presorted)"
go test -run XXX -bench 'KS1Mvs1M|KSCounter' -benchtime 5x ./internal/dataset/stattest/ | grep Benchmark
/usr/bin/python3 - <<'PY'
import time, numpy as np
from scipy import stats
a = np.random.default_rng(1).random(1_000_000); b = np.random.default_rng(2).random(1_000_000) + 0.001
stats.ks_2samp(a, b)
t = time.perf_counter()
for _ in range(5): stats.ks_2samp(a, b)
print(f"scipy.stats.ks_2samp 1M vs 1M: {(time.perf_counter()-t)/5*1e9:.0f} ns/op")
PY
echo "--- streaming detectors"
go test -run XXX -bench . ./internal/dataset/changepoint/ | grep Benchmark
