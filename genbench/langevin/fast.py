"""Exact fast single-chain ULA on a Gaussian target, via the eigenbasis of the precision.

With P = Σ⁻¹ = Q diag(λ) Qᵀ and y = Qᵀ(x − m), ULA  x_{t+1} = x_t + μP(m − x_t) + √(2μ) n_t  is
y_{t+1} = diag(ρ) y_t + √(2μ) Qᵀ n_t,  ρ_i = 1 − μλ_i: d independent AR(1) recursions. Each is a
first-order IIR filter, run in compiled code by ``scipy.signal.lfilter`` (with the initial
condition carrying y_0), then rotated back. It is the same recursion as the plain loop, so given
the same noise it reproduces the loop to float64 rounding (tested).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.signal
import torch

from genbench._validate import positive_int
from genbench.errors import DivergenceError, ParameterError
from genbench.langevin import theory
from genbench.targets import Gaussian


def gaussian_chain(
    target: Gaussian,
    steps: int,
    step_size: float,
    *,
    x0: float | np.ndarray | None = None,
    seed: int = 0,
    noise: np.ndarray | torch.Tensor | None = None,
    allow_unstable: bool = False,
) -> np.ndarray:
    """x_1..x_T of one ULA chain on a Gaussian target, shape (steps, d), float64.

    ``noise`` (steps, d) standard normals replaces the default draw, one bulk
    ``numpy.random.Generator(PCG64(seed)).standard_normal((steps, d))`` (its ziggurat sampler is
    ~1.5x faster than torch's float64 ``randn`` on CPU, which would dominate the run time). The
    stream therefore differs from the loop's per-step torch draws: same law, different numbers.
    """
    if not isinstance(target, Gaussian):
        raise ParameterError(f"target must be a genbench.targets.Gaussian for the exact fast path, got {type(target).__name__}")
    steps = positive_int("steps", steps)
    bound = theory.stability_bound(target)
    mu = float(step_size) if isinstance(step_size, (int, float)) and not isinstance(step_size, bool) else None
    if mu is None or not math.isfinite(mu) or mu <= 0:
        raise ParameterError(f"step_size must be a finite number > 0, got {step_size!r}")
    if mu >= bound and not allow_unstable:
        raise ParameterError(f"step_size must be < {bound:.6g} (ULA stability bound for this target), got {mu:g}")
    d = target.dim
    if noise is None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
        e = np.random.Generator(np.random.PCG64(seed)).standard_normal((steps, d))
    else:
        e = noise.detach().cpu().double().numpy() if isinstance(noise, torch.Tensor) else np.asarray(noise, dtype=np.float64)
        if e.shape != (steps, d):
            raise ParameterError(f"noise must have shape ({steps}, {d}), got {e.shape}")
    x0v = np.zeros(d) if x0 is None else np.broadcast_to(np.asarray(x0, dtype=np.float64), (d,))
    if not np.all(np.isfinite(x0v)):
        raise ParameterError("x0 must be finite (it contains NaN or inf)")
    m = target.mean.detach().cpu().double().numpy()
    prec = target.precision.detach().cpu().double().numpy()
    lam, q = np.linalg.eigh((prec + prec.T) / 2)
    rho = 1.0 - mu * lam
    sig = math.sqrt(2.0 * mu)
    y0 = q.T @ (x0v - m)
    # Work in (d, steps) rows so every pass is contiguous; the result is returned as its (steps, d)
    # transpose (a Fortran-ordered view), which saves a copy.
    xt = np.empty((d, steps))
    for i in range(d):
        drive = e @ q[:, i]  # (Qᵀ n_t)_i for every t
        # y[t] = ρ y[t−1] + σ e[t]  <=>  lfilter(b=[σ], a=[1, −ρ]) with zi = ρ y_0.
        y, _ = scipy.signal.lfilter([sig], [1.0, -rho[i]], drive, zi=[rho[i] * y0[i]])
        for j in range(d):
            if i == 0:
                np.multiply(y, q[j, i], out=xt[j])
            else:
                xt[j] += q[j, i] * y
    xt += m[:, None]
    x = xt.T
    if not np.all(np.isfinite(x[-1])):
        bad = int(np.argmax(~np.isfinite(x).all(axis=1))) + 1
        raise DivergenceError(f"ULA produced non-finite values at step {bad} with step_size={mu:g}; stability bound {bound:.6g}")
    return x
