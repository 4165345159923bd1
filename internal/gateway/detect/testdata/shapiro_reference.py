#!/usr/bin/env python3
"""Reference values from SciPy for internal/gateway/detect's Shapiro-Wilk golden test.

Run with Debian's python3-scipy and python3-numpy:
    /usr/bin/python3 internal/gateway/detect/testdata/shapiro_reference.py \
        > internal/gateway/detect/testdata/shapiro_golden.json

Samples are rebuilt on both sides from splitmix64 (uniform doubles from the top 53 bits), then
shaped: uniform, normal (Box-Muller), exponential, or a two-component mixture, so no data is
stored and the Go test sees bit-identical inputs.
"""
import json
import math

import numpy as np
import scipy
from scipy import stats

M64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def uniforms(seed, n):
    out, state = [], seed
    for _ in range(n):
        state, z = splitmix64(state)
        out.append((z >> 11) / float(1 << 53))
    return out


def sample(seed, n, kind):
    u = uniforms(seed, 2 * n)
    xs = []
    for i in range(n):
        u1, u2 = u[2 * i], u[2 * i + 1]
        if kind == "uniform":
            xs.append(u1)
        elif kind == "normal":
            xs.append(math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2))
        elif kind == "exponential":
            xs.append(-math.log(1 - u1))
        elif kind == "mixture":
            g = math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)
            xs.append(g + (4.0 if i % 3 == 0 else 0.0))
    return xs


cases = []
seed = 7000
for n in (3, 4, 5, 6, 7, 10, 11, 12, 20, 50, 100, 257, 1000, 5000):
    for kind in ("uniform", "normal", "exponential", "mixture"):
        seed += 1
        w, p = stats.shapiro(np.array(sample(seed, n, kind), dtype=np.float64))
        cases.append({"n": n, "kind": kind, "seed": seed, "w": float(w), "p": float(p)})

json.dump({"scipy": scipy.__version__, "numpy": np.__version__, "shapiro": cases}, __import__("sys").stdout, indent=1)
print()
