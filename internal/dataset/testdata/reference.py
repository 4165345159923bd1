#!/usr/bin/env python3
"""Reference values from SciPy for internal/dataset/stattest's golden tests.

Run with Debian's python3-scipy (1.10.1) and python3-numpy:
    /usr/bin/python3 internal/dataset/testdata/reference.py > internal/dataset/testdata/scipy_golden.json

Inputs are not stored: both this script and the Go test rebuild them from splitmix64, so the
samples are bit-identical on both sides (uniform doubles from the top 53 bits, optionally
floored to a grid to make ties, then scaled and shifted).
"""
import json
import sys

import numpy as np
import scipy
from scipy import stats
from scipy.spatial import distance

M64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def sample(seed, n, grid, scale, shift):
    """n values: u in [0,1) from splitmix64; floor(u*grid)/grid when grid > 0; then u*scale+shift."""
    s = seed
    out = []
    for _ in range(n):
        s, z = splitmix64(s)
        u = (z >> 11) * (1.0 / 9007199254740992.0)
        if grid > 0:
            u = float(int(u * grid)) / grid
        out.append(u * scale + shift)
    return np.array(out, dtype=np.float64)


KS_CASES = [
    # n1, n2, grid (0 = continuous), scale2, shift2
    (5, 5, 0, 1.0, 0.0), (5, 7, 0, 1.0, 0.3), (5, 8, 4, 1.0, 0.0), (8, 12, 0, 1.0, 0.5),
    (10, 10, 0, 1.0, 0.2), (10, 10, 3, 1.0, 0.0), (20, 35, 0, 1.0, 0.1), (30, 30, 0, 1.0, 1.5),
    (50, 50, 10, 1.0, 0.0), (100, 80, 0, 1.3, 0.0), (137, 251, 0, 1.0, 0.05),
    (250, 250, 0, 1.0, 0.15), (500, 400, 20, 1.0, 0.02), (1000, 1000, 0, 1.0, 0.0),
    (1000, 1000, 0, 1.0, 0.1), (3000, 2000, 50, 1.0, 0.01), (5000, 7000, 0, 1.0, 0.03),
    (9999, 10000, 0, 1.0, 0.0), (10000, 10000, 100, 1.0, 0.01),
    (10001, 50, 0, 1.0, 0.2), (20000, 5, 0, 1.0, 0.0), (20000, 120, 0, 1.0, 0.1),
    (20000, 130, 0, 1.0, 0.4), (12000, 139, 0, 1.0, 0.9), (15000, 15000, 0, 1.0, 0.0),
    (15000, 15000, 0, 1.0, 0.02), (30000, 600, 0, 1.0, 0.0), (30000, 600, 0, 1.0, 0.07),
    (50000, 80000, 1000, 1.0, 0.005), (100000, 3000, 0, 1.0, 0.0), (100000, 3000, 0, 1.0, 0.04),
    (100000, 100000, 0, 1.0, 0.0), (100000, 100000, 200, 1.0, 0.003), (100000, 100000, 0, 1.0, 0.01),
    (11000, 11000, 0, 1.0, 3.0), (7, 7, 0, 1.0, 5.0),
    (12000, 150, 5, 1.0, 0.0), (12000, 200, 10, 1.0, 0.0), (20000, 1000, 3, 1.0, 0.0),
    (12000, 300, 0, 1.0, 0.0), (40000, 60, 0, 1.0, 0.05),
]


def main():
    out = {"scipy": scipy.__version__, "numpy": np.__version__, "ks": [], "chi2_gof": [],
           "chi2_homogeneity": [], "wasserstein": [], "jensenshannon": []}
    for i, (n1, n2, grid, scale2, shift2) in enumerate(KS_CASES):
        a = sample(1000 + i, n1, grid, 1.0, 0.0)
        b = sample(5000 + i, n2, grid, scale2, shift2)
        r = stats.ks_2samp(a, b, method="auto")
        out["ks"].append({"n1": n1, "n2": n2, "grid": grid, "seed1": 1000 + i, "seed2": 5000 + i,
                          "scale2": scale2, "shift2": shift2,
                          "d": float(r.statistic), "p": float(r.pvalue)})
        if max(n1, n2) <= 20000:
            out["wasserstein"].append({"n1": n1, "n2": n2, "grid": grid, "seed1": 1000 + i,
                                       "seed2": 5000 + i, "scale2": scale2, "shift2": shift2,
                                       "w": float(stats.wasserstein_distance(a, b))})
    rng = np.random.default_rng(7)
    for k in (2, 3, 5, 10, 25):
        for _ in range(3):
            obs = rng.integers(0, 200, size=k).astype(float)
            exp = rng.integers(1, 200, size=k).astype(float)
            exp = exp * obs.sum() / exp.sum()
            r = stats.chisquare(obs, exp)
            out["chi2_gof"].append({"obs": obs.tolist(), "exp": exp.tolist(),
                                    "stat": float(r.statistic), "p": float(r.pvalue)})
            a = rng.integers(1, 500, size=k).astype(float)
            b = rng.integers(1, 500, size=k).astype(float)
            st, p, dof, _ = stats.chi2_contingency(np.array([a, b]), correction=False)
            out["chi2_homogeneity"].append({"a": a.tolist(), "b": b.tolist(), "stat": float(st),
                                            "p": float(p), "dof": int(dof)})
            p1 = rng.integers(0, 50, size=k).astype(float)
            q1 = rng.integers(0, 50, size=k).astype(float)
            p1[0] += 1
            q1[-1] += 1
            out["jensenshannon"].append({"p": p1.tolist(), "q": q1.tolist(),
                                         "js": float(distance.jensenshannon(p1, q1, base=2))})
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
