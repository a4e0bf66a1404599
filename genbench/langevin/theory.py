"""Exact law of the unadjusted Langevin algorithm (ULA) on a Gaussian target.

For N(m, Σ) with precision P = Σ⁻¹, ULA  x_{t+1} = x_t + μ P (m − x_t) + √(2μ) n_t  is the linear
recursion x_{t+1} − m = A (x_t − m) + √(2μ) n_t with A = I − μP. Hence, from a fixed x_0,

    mean_t = m + Aᵗ (x_0 − m),        cov_t = Σ_{k<t} Aᵏ (2μ I) Aᵏᵀ,

and, as A is symmetric with eigenvalues ρ_i = 1 − μλ_i (λ_i the eigenvalues of P),
cov_t = Q diag(2μ (1 − ρ_i^{2t}) / (1 − ρ_i²)) Qᵀ. The chain is stable iff |ρ_i| < 1 for all i,
i.e. μ < 2/λ_max(P), and then converges to S_μ = Σ (I − μP/2)⁻¹. All results are float64 numpy.

Numerics: every closed form is written in terms of u_i = μλ_i, never of a rounded ρ_i = 1 − u_i.
For small u (μ = 1e-9, say) 1 − u has only ~|log10 u| correct digits of u left, so 1 − ρ², ρᵗ for
t ~ 1/u and (1 + ρ)/(1 − ρ) lose up to 16 − |log10 u| digits (and a tolerance test such as
``isclose(ρ², 1)`` silently replaces the geometric sum by t). Here 1 − ρ² = u(2 − u),
log|ρ| = log1p(−u) (or log(u − 1) when u > 1) and 1 − ρ^{2t} = −expm1(2t·log|ρ|), each accurate to a
few ulps for every u and t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from genbench._validate import positive_float, positive_int
from genbench.errors import ParameterError
from genbench.stats import gaussian_kl
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


def _decay(target: Gaussian, step_size: float, *, check_stable: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """(u = μλ, eigenvectors Q, μ): the eigen-decomposition of A = I − μP, as u_i = 1 − ρ_i."""
    mu = positive_float("step_size", step_size)
    lam, q = _spectrum(target)
    u = mu * lam
    if check_stable and np.any(u >= 2.0):
        raise ParameterError(
            f"step_size must be < {2.0 / lam[-1]:.6g} (stability bound 2/lambda_max(precision)) "
            f"for this target, got {mu:g}"
        )
    return u, q, mu


def _log_abs_rho(u: np.ndarray) -> np.ndarray:
    """log|1 − u| without forming 1 − u (−inf where u == 1 exactly)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(u < 1.0, np.log1p(-u), np.log(np.abs(u - 1.0)))


def _rho_pow(u: np.ndarray, t: int) -> np.ndarray:
    """ρᵗ = (1 − u)ᵗ as sign · exp(t·log|ρ|) (1 at t = 0, also where ρ = 0)."""
    if t == 0:
        return np.ones_like(u)
    sign = np.where((u > 1.0) & (t % 2 == 1), -1.0, 1.0)
    with np.errstate(over="ignore", under="ignore"):
        return sign * np.exp(t * _log_abs_rho(u))


def _one_minus_rho_pow(u: np.ndarray, t: int) -> np.ndarray:
    """1 − ρᵗ accurate near ρᵗ = 1: −expm1(t·log|ρ|) where ρᵗ > 0, else 1 + |ρ|ᵗ."""
    if t == 0:
        return np.zeros_like(u)
    logr = _log_abs_rho(u)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        positive = -np.expm1(t * logr)
        negative = 1.0 + np.exp(t * logr)
    return np.where((u > 1.0) & (t % 2 == 1), negative, positive)


def _geometric(u: np.ndarray, t: int) -> np.ndarray:
    """Σ_{k<t} ρ^{2k} = (1 − ρ^{2t}) / (1 − ρ²), with 1 − ρ² = u(2 − u); t exactly where ρ² == 1."""
    denom = u * (2.0 - u)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        geo = _one_minus_rho_pow(u, 2 * t) / denom
    return np.where(denom == 0.0, float(t), geo)


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
    t = positive_int("t", t, minimum=0)
    u, q, _ = _decay(target, step_size, check_stable=False)
    m = target.mean.detach().cpu().double().numpy()
    return m + q @ (_rho_pow(u, t) * (q.T @ (_x0(target, x0) - m)))


def ula_cov(target: Gaussian, step_size: float, t: int) -> np.ndarray:
    """Exact covariance of x_t from a fixed x_0: Σ_{k<t} Aᵏ (2μI) Aᵏᵀ, shape (d, d)."""
    t = positive_int("t", t, minimum=0)
    u, q, mu = _decay(target, step_size, check_stable=False)
    cov = (q * (2.0 * mu * _geometric(u, t))) @ q.T
    return (cov + cov.T) / 2


def _stationary_variances(u: np.ndarray, mu: float) -> np.ndarray:
    """Stationary variance 2μ/(1 − ρ²) = 2/(λ(2 − u)) of each eigen-direction."""
    return 2.0 * mu / (u * (2.0 - u))


def stationary_cov(target: Gaussian, step_size: float) -> np.ndarray:
    """ULA's stationary covariance S_μ = Σ (I − μΣ⁻¹/2)⁻¹ (biased by O(μ)), shape (d, d)."""
    u, q, mu = _decay(target, step_size)
    cov = (q * _stationary_variances(u, mu)) @ q.T
    return (cov + cov.T) / 2


def autocorrelation(target: Gaussian, step_size: float, *, lag: int = 1) -> np.ndarray:
    """Lag-``lag`` autocorrelation ρ_iʰ = (1 − μλ_i)ʰ of each eigen-direction of the precision, shape (d,)."""
    lag = positive_int("lag", lag, minimum=0)
    u, _, _ = _decay(target, step_size)
    return _rho_pow(u, lag)


def integrated_autocorrelation_time(target: Gaussian, step_size: float, *, thin: int = 1) -> np.ndarray:
    """Stationary integrated autocorrelation time of each coordinate of x, kept every ``thin`` steps, shape (d,).

    Coordinate i is a sum of independent AR(1) components with variances s_j Q_ij² and lag-h
    coefficients ρ_jʰ (h = ``thin``), so τ_i = Σ_j Q_ij² s_j (1+ρ_jʰ)/(1−ρ_jʰ) / Σ_j Q_ij² s_j.
    """
    h = positive_int("thin", thin)
    u, q, mu = _decay(target, step_size)
    w = q**2 * _stationary_variances(u, mu)  # (coord, direction)
    # (1 + ρʰ)/(1 − ρʰ) with 1 − ρʰ from expm1: for h = 1 this is (2 − u)/u, exact for tiny u.
    ratio = (1.0 + _rho_pow(u, h)) / _one_minus_rho_pow(u, h)
    return (w @ ratio) / w.sum(axis=1)


def predicted_ess(target: Gaussian, step_size: float, n: int, *, thin: int = 1) -> np.ndarray:
    """Predicted effective sample size n/τ_i of each coordinate for n stationary draws kept every ``thin`` steps, shape (d,)."""
    n = positive_int("n", n)
    return n / integrated_autocorrelation_time(target, step_size, thin=thin)


def mixing_time(target: Gaussian, step_size: float, tol: float = 0.01) -> int:
    """Smallest t with max_i |ρ_i|ᵗ <= ``tol``: steps until the slowest direction's memory of x_0 falls below tol."""
    tol = positive_float("tol", tol, upper=1.0, upper_name="a fraction of the initial offset")
    u, _, _ = _decay(target, step_size)
    slowest = float(np.max(_log_abs_rho(u)))  # log max|ρ| < 0 for a stable step; −inf when every ρ is 0
    if slowest == -np.inf:
        return 1
    return max(1, int(np.ceil(np.log(tol) / slowest)))


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


# ---------------------------------------------------------------------------------------------
# The trajectory average (the theory side of the assignment's grid)
# ---------------------------------------------------------------------------------------------


def _ar1_segment(u: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(ρⁿ, Σ_{k=1..n} ρᵏ) per direction: how n noise-free steps carry (y, running sum of y)."""
    return _rho_pow(u, n), (1.0 - u) * _one_minus_rho_pow(u, n) / u


def _sum_noise_cov(u: np.ndarray, steps: int) -> np.ndarray:
    """Var(Σ_{t=1..T} y_t) / σ² of the AR(1) y_t = ρ y_{t−1} + σ e_t from y_0 = 0, per direction.

    The closed form T − 2ρ(1 − ρᵀ)/u + ρ²(1 − ρ²ᵀ)/(u(2 − u)), all over u², cancels to O(u²T³) from
    terms of order T: at μ = 1e-6, T = 10 it was 13 % off. Instead, segments of the recursion are
    composed by binary doubling: the noise covariance of (y, Y = Σ y) over a segment a followed by
    a segment b is V_b + M_b V_a M_bᵀ with M_b = [[ρᵇ, 0], [Σ_{k≤b} ρᵏ, 1]]. For ρ ≥ 0 every term is
    non-negative, so the result keeps full relative precision (about log2 T roundings).
    """
    one = np.ones_like(u)
    # (Vyy, VyY, VYY) of a segment of length 2^k, and of the accumulated prefix.
    seg, seg_len = (one, one.copy(), one.copy()), 1
    acc: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    t = steps
    while True:
        if t & 1:
            if acc is None:
                acc = seg
            else:  # prefix first, then this segment
                r, c = _ar1_segment(u, seg_len)
                ayy, ayY, aYY = acc
                acc = (r * r * ayy + seg[0], r * (c * ayy + ayY) + seg[1], aYY + 2 * c * ayY + c * c * ayy + seg[2])
        t >>= 1
        if not t:
            break
        r, c = _ar1_segment(u, seg_len)
        syy, syY, sYY = seg
        seg = (r * r * syy + syy, r * (c * syy + syY) + syY, sYY + 2 * c * syY + c * c * syy + sYY)
        seg_len *= 2
    assert acc is not None
    return acc[2]


def trajectory_mean_law(target: Gaussian, step_size: float, steps: int, x0: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean (d,) and covariance (d, d) of the trajectory average (1/T) Σ_{t=1..T} x_t of ULA from x0.

    In the precision's eigenbasis the coordinates are independent AR(1) processes
    y_t = ρ y_{t−1} + σ e_t (σ² = 2μ), so ȳ has mean y_0 Σ_{t≤T} ρᵗ / T and variance
    σ² Var(Σ_t y_t | y_0 = 0) / T², both computed without forming 1 − ρ (see _sum_noise_cov).
    """
    steps = positive_int("steps", steps)
    u, q, mu = _decay(target, step_size)
    m = target.mean.detach().cpu().double().numpy()
    y0 = q.T @ (_x0(target, x0) - m)
    T = float(steps)
    mean_y = y0 * _ar1_segment(u, steps)[1] / T
    var_y = 2.0 * mu * _sum_noise_cov(u, steps) / T**2
    cov = (q * var_y) @ q.T
    return m + q @ mean_y, (cov + cov.T) / 2


def predicted_grid_kl(target: Gaussian, step_size: float, steps: int, x0: Any = None) -> dict[str, float]:
    """The theory criterion: exact expected mean term of the KL plus the stationary covariance bias KL."""
    mean_bar, cov_bar = trajectory_mean_law(target, step_size, steps, x0)
    m = target.mean.detach().cpu().double().numpy()
    sigma = target.cov.detach().cpu().double().numpy()
    prec = target.precision.detach().cpu().double().numpy()
    diff = mean_bar - m
    mean_term = 0.5 * float(diff @ prec @ diff + np.trace(prec @ cov_bar))
    cov_term = gaussian_kl(m, stationary_cov(target, step_size), m, sigma)
    return {"predicted_kl": mean_term + cov_term, "predicted_kl_mean_term": mean_term, "predicted_kl_cov_bias": cov_term}
