"""The assignment's single-chain Langevin loop, kept faithful (one Python iteration per step) with
its defects fixed: x_0 is a float tensor, the target's tensors are built once (not every step), and
the noise comes from a seeded ``torch.Generator`` (one ``randn(d)`` per step).

It is deliberately NOT optimised: it is the slow baseline that the benchmarks compare against and
the plain loop that the fast paths are tested against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from genbench._runtime import make_generator
from genbench._validate import positive_float, positive_int
from genbench.errors import DivergenceError, ParameterError
from genbench.langevin import theory
from genbench.targets import SEED_COV, SEED_MEAN, Gaussian


def reference_langevin(
    steps: int,
    step_size: float,
    *,
    mean: Sequence[float] = SEED_MEAN,
    cov: Sequence[Sequence[float]] = SEED_COV,
    x0: float | Sequence[float] = 0.0,
    seed: int = 0,
    allow_unstable: bool = False,
) -> np.ndarray:
    """Run the assignment's ULA loop on N(mean, cov) from ``x0``; returns x_1..x_T, shape (steps, d)."""
    steps = positive_int("steps", steps)
    mu = positive_float("step_size", step_size)
    target = Gaussian(mean, cov)
    bound = theory.stability_bound(target)
    if mu >= bound and not allow_unstable:
        raise ParameterError(f"step_size must be < {bound:.6g} (ULA stability bound for this target), got {mu:g}")
    d = target.dim
    x0_arr = np.broadcast_to(np.asarray(x0, dtype=np.float64), (d,)) if np.ndim(x0) <= 1 else None
    if x0_arr is None or not np.all(np.isfinite(x0_arr)):
        raise ParameterError(f"x0 must be a finite scalar or a ({d},) vector, got {x0!r}")
    gen = make_generator(seed)
    x = torch.tensor(x0_arr, dtype=torch.float64)  # float start (the assignment's was an int tensor)
    noise_scale = math.sqrt(2.0 * mu)
    samples = np.empty((steps, d))
    for t in range(steps):
        x = x + mu * target.score(x) + noise_scale * torch.randn(d, generator=gen, dtype=torch.float64)
        samples[t] = x.numpy()
    if not np.all(np.isfinite(samples[-1])):
        bad = int(np.argmax(~np.isfinite(samples).all(axis=1))) + 1
        raise DivergenceError(f"reference loop produced non-finite values at step {bad} with step_size={mu:g}")
    return samples
