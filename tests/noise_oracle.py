"""The samplers' documented random stream, recomputed independently in numpy (uint64 arithmetic).

Step t's key is one ``random_()`` int64 from the run's ``torch.Generator``; its uniforms are
SplitMix64 outputs 1..m of that key (Java's SplittableRandom), top 53 bits; pair p of uniforms gives
Box–Muller normals with numpy's own log, sqrt, cos and sin (equal to genbench's to a few ulp).
"""

from __future__ import annotations

import numpy as np
import torch

GAMMA, MIX1, MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def splitmix64(key: int, m: int) -> np.ndarray:
    """Outputs 1..m of SplitMix64 seeded with ``key``, as uint64."""
    with np.errstate(over="ignore"):
        z = np.uint64(key) + np.arange(1, m + 1, dtype=np.uint64) * GAMMA
        z = (z ^ (z >> np.uint64(30))) * MIX1
        z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


def step_uniforms(gen: torch.Generator, m: int) -> np.ndarray:
    """The next step's m float64 uniforms of a run drawing from ``gen``."""
    key = int(torch.empty(1, dtype=torch.int64).random_(generator=gen))
    return (splitmix64(key, m) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def step_normals(gen: torch.Generator, n: int) -> np.ndarray:
    """The next step's normals of a ULA run drawing from ``gen`` with n = d·chains noise coordinates (2 ceil(n/2) of them)."""
    pairs = -(-n // 2)
    u = step_uniforms(gen, 2 * pairs)
    r = np.sqrt(-2.0 * np.log1p(-u[0::2]))
    z = np.empty(2 * pairs)
    z[0::2], z[1::2] = r * np.cos(2 * np.pi * u[1::2]), r * np.sin(2 * np.pi * u[1::2])
    return z
