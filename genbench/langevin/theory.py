"""Exact law of the unadjusted Langevin algorithm (ULA) on a Gaussian target.

For N(m, Σ) with precision P = Σ⁻¹, ULA  x_{t+1} = x_t + μ P (m − x_t) + √(2μ) n_t  is the linear
recursion x_{t+1} − m = A (x_t − m) + √(2μ) n_t with A = I − μP. Hence, from a fixed x_0,

    mean_t = m + Aᵗ (x_0 − m),        cov_t = Σ_{k<t} Aᵏ (2μ I) Aᵏᵀ,

and, as A is symmetric with eigenvalues ρ_i = 1 − μλ_i (λ_i the eigenvalues of P),
cov_t = Q diag(2μ (1 − ρ_i^{2t}) / (1 − ρ_i²)) Qᵀ. The chain is stable iff |ρ_i| < 1 for all i,
i.e. μ < 2/λ_max(P), and then converges to S_μ = Σ (I − μP/2)⁻¹. All results are float64 numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genbench._validate import positive_float, positive_int
from genbench.errors import ParameterError
from genbench.targets import Gaussian


def _spectrum(target: Gaussian) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and orthonormal eigenvectors of the precision, in float64."""
    prec = target.precision.detach().to("cpu").double().numpy()
    lam, q = np.linalg.eigh((prec + prec.T) / 2)
    return lam, q


def stability_bound(target: Gaussian) -> float:
    """Largest stable step size: ULA is stable iff μ < 2 / λ_max(Σ⁻¹)."""
    lam, _ = _spectrum(target)
    return float(2.0 / lam[-1])


def _rho(target: Gaussian, step_size: float, *, check_stable: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mu = positive_float("step_size", step_size)
    lam, q = _spectrum(target)
    rho = 1.0 - mu * lam
    if check_stable and np.any(np.abs(rho) >= 1.0):
        raise ParameterError(
            f"step_size must be < {2.0 / lam[-1]:.6g} (stability bound 2/lambda_max(precision)) "
            f"for this target, got {mu:g}"
        )
    return lam, q, rho


def _x0(target: Gaussian, x0: np.ndarray | float | None) -> np.ndarray:
    d = target.dim
    if x0 is None:
        return np.zeros(d)
    arr = np.broadcast_to(np.asarray(x0, dtype=np.float64), (d,)).copy()
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"x0 must be finite, got {arr.tolist()}")
    return arr


def ula_mean(target: Gaussian, step_size: float, t: int, x0: np.ndarray | float | None = None) -> np.ndarray:
    """Exact mean of x_t: m + Aᵗ (x_0 − m), shape (d,)."""
    positive_int("t", t, minimum=0)
    _, q, rho = _rho(target, step_size, check_stable=False)
    m = target.mean.detach().cpu().double().numpy()
    return m + q @ (rho**t * (q.T @ (_x0(target, x0) - m)))


def ula_cov(target: Gaussian, step_size: float, t: int) -> np.ndarray:
    """Exact covariance of x_t from a fixed x_0: Σ_{k<t} Aᵏ (2μI) Aᵏᵀ, shape (d, d)."""
    positive_int("t", t, minimum=0)
    mu = float(step_size)
    _, q, rho = _rho(target, mu, check_stable=False)
    r2 = rho**2
    with np.errstate(divide="ignore", invalid="ignore"):
        geo = np.where(np.isclose(r2, 1.0), float(t), (1.0 - r2**t) / (1.0 - r2))
    cov = (q * (2.0 * mu * geo)) @ q.T
    return (cov + cov.T) / 2


def stationary_cov(target: Gaussian, step_size: float) -> np.ndarray:
    """ULA's stationary covariance S_μ = Σ (I − μΣ⁻¹/2)⁻¹ (biased by O(μ)), shape (d, d)."""
    lam, q, _ = _rho(target, step_size)
    s = 1.0 / (lam * (1.0 - float(step_size) * lam / 2.0))
    cov = (q * s) @ q.T
    return (cov + cov.T) / 2


def autocorrelation(target: Gaussian, step_size: float) -> np.ndarray:
    """Lag-1 autocorrelation ρ_i = 1 − μλ_i of each eigen-direction of the precision, shape (d,)."""
    _, _, rho = _rho(target, step_size)
    return rho


def integrated_autocorrelation_time(target: Gaussian, step_size: float) -> np.ndarray:
    """Stationary integrated autocorrelation time of each coordinate of x, shape (d,).

    Coordinate i is a sum of independent AR(1) components with variances s_j Q_ij² and
    coefficients ρ_j, so τ_i = Σ_j Q_ij² s_j (1+ρ_j)/(1−ρ_j) / Σ_j Q_ij² s_j.
    """
    lam, q, rho = _rho(target, step_size)
    s = 1.0 / (lam * (1.0 - float(step_size) * lam / 2.0))
    w = q**2 * s  # (coord, direction)
    return (w @ ((1.0 + rho) / (1.0 - rho))) / w.sum(axis=1)


def predicted_ess(target: Gaussian, step_size: float, n: int) -> np.ndarray:
    """Predicted effective sample size n/τ_i of each coordinate for n stationary draws, shape (d,)."""
    positive_int("n", n)
    return n / integrated_autocorrelation_time(target, step_size)


def mixing_time(target: Gaussian, step_size: float, tol: float = 0.01) -> int:
    """Steps until the slowest direction's memory |ρ|ᵗ of x_0 falls below ``tol``."""
    _, _, rho = _rho(target, step_size)
    return int(np.ceil(np.log(tol) / np.log(np.max(np.abs(rho)))))


@dataclass(frozen=True)
class ULALaw:
    """The exact Gaussian law of x_t and the stationary quantities of a ULA run."""

    step_size: float
    steps: int
    mean: np.ndarray
    cov: np.ndarray
    stationary_cov: np.ndarray
    stability_bound: float


def ula_law(target: Gaussian, step_size: float, steps: int, x0: np.ndarray | float | None = None) -> ULALaw:
    """Exact law of x_T after ``steps`` ULA steps from ``x0`` (default 0)."""
    return ULALaw(
        step_size=float(step_size),
        steps=int(steps),
        mean=ula_mean(target, step_size, steps, x0),
        cov=ula_cov(target, step_size, steps),
        stationary_cov=stationary_cov(target, step_size),
        stability_bound=stability_bound(target),
    )
