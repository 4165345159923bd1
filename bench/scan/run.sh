#!/usr/bin/env bash
# End-to-end scan benchmark: pipewarden scan versus picklescan on the same generated corpus.
# Usage: bench/scan/run.sh [PICKLESCAN_GIT_DIR]
#   PICKLESCAN_GIT_DIR: a git directory of github.com/mmaitre314/picklescan (only its src/ is
#   checked out, into a temp dir; nothing of it is committed). Without it, only pipewarden runs.
# Environment: TENSOR_MB (default 2048), PICKLE_MB (default 500), KEEP=1 keeps the corpus.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT
corpus="$work/corpus"
echo "machine: $(nproc) cores, $(lscpu | grep 'Model name' | sed 's/.*: *//')"
echo "generating corpus in $corpus (TENSOR_MB=${TENSOR_MB:-2048} PICKLE_MB=${PICKLE_MB:-500}) ..."
python3 "$root/bench/scan/gen_corpus.py" "$corpus" "$root/../shared/fixtures/models"
(cd "$root" && go build -o "$work/pipewarden" ./cmd/pipewarden)
if [ -n "${1:-}" ]; then
  mkdir -p "$work/picklescan"
  git --git-dir="$1" archive HEAD src | tar -x -C "$work/picklescan"
fi
python3 - "$work" "$corpus" "${1:-}" <<'PY'
import os, subprocess, sys, time
work, corpus, peer = sys.argv[1:4]
items = [("tensors.pt", "2 GiB-class PyTorch ZIP"), ("objects.pkl", "pickle of many small objects"), ("fixtures", "fixture corpus")]
def size(p):
    if os.path.isdir(p):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(p) for f in fs), sum(len(fs) for _, _, fs in os.walk(p))
    return os.path.getsize(p), 1
def timed(cmd, env=None):
    # Best of two runs: wall seconds, CPU seconds (user + system, from wait4) and peak RSS.
    best = None
    for _ in range(2):
        t = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t
        r = (dt, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024)
        best = r if best is None else min(best, r)
    return best
env = dict(os.environ, PYTHONPATH=os.path.join(work, "picklescan", "src"))
print("| input | bytes | files | pipewarden s | MB/s | files/s | CPU s | MB per CPU s | peak RSS MB | picklescan s | ratio |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
tot_pw = tot_ps = 0.0
for name, what in items:
    p = os.path.join(corpus, name)
    if not os.path.exists(p):
        continue
    b, n = size(p)
    pw, cpu, rss = timed([os.path.join(work, "pipewarden"), "scan", "--format", "json", p])
    tot_pw += pw
    ps_col = ratio = "-"
    if peer:
        ps, _, _ = timed([sys.executable, "-m", "picklescan", "-p", p], env)
        tot_ps += ps
        ps_col, ratio = "%.2f" % ps, "%.1fx" % (ps / pw)
    print("| %s (%s) | %d | %d | %.2f | %.0f | %.0f | %.2f | %.0f | %.0f | %s | %s |" % (
        name, what, b, n, pw, b / pw / 1e6, n / pw, cpu, b / max(cpu, 1e-3) / 1e6, rss, ps_col, ratio))
if peer:
    print("| **whole corpus** | | | %.2f | | | | | | %.2f | **%.1fx** |" % (tot_pw, tot_ps, tot_ps / tot_pw))
PY
