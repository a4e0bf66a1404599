"""Sample diagnostics: moments, Gaussian KL / 2-Wasserstein, autocorrelation, ESS and split-R-hat.

Everything is computed in float64 numpy. Inputs may be numpy arrays or torch tensors (any device).

ESS and R-hat follow Stan / ArviZ (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021, "Rank-
normalization, folding, and localization: an improved R-hat"; Geyer 1992 initial monotone
sequence). They are written out here rather than imported because ArviZ is not a dependency of
genbench and pulls in xarray/pandas; the code mirrors ``arviz.stats.diagnostics._ess`` / ``_rhat``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.fft
import scipy.linalg
import scipy.stats

from genbench.errors import ParameterError

__all__ = [
    "as_float64",
    "holm",
    "spd_matrix",
    "empirical_moments",
    "gaussian_kl",
    "gaussian_w2",
    "moment_errors",
    "autocovariance",
    "autocorrelation",
    "ess",
    "split_rhat",
]


def as_float64(name: str, x: Any) -> np.ndarray:
    """Return ``x`` (numpy array, torch tensor or nested sequence) as a finite float64 numpy array."""
    try:
        import torch

        if isinstance(x, torch.Tensor):
            x = x.detach().to("cpu", torch.float64).numpy()
    except ImportError:  # pragma: no cover - torch is a hard dependency, kept defensive for reuse
        pass
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be a numeric array, got {type(x).__name__}") from exc
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{name} must be finite (it contains NaN or inf)")
    return arr


def _samples(name: str, x: Any, *, min_n: int = 2) -> np.ndarray:
    arr = as_float64(name, x)
    if arr.ndim != 2:
        raise ParameterError(f"{name} must have shape (n, d), got {arr.shape}")
    if arr.shape[0] < min_n or arr.shape[1] < 1:
        raise ParameterError(f"{name} must have shape (n, d) with n >= {min_n} and d >= 1, got {arr.shape}")
    return arr


def _vector(name: str, x: Any, d: int | None = None) -> np.ndarray:
    arr = as_float64(name, x)
    if arr.ndim != 1 or (d is not None and arr.shape[0] != d):
        want = f"({d},)" if d is not None else "(d,)"
        raise ParameterError(f"{name} must have shape {want}, got {arr.shape}")
    return arr


def spd_matrix(name: str, x: Any, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate an SPD (d, d) matrix; return it (symmetrised) and its lower Cholesky factor."""
    arr = as_float64(name, x)
    if arr.shape != (d, d):
        raise ParameterError(f"{name} must have shape ({d}, {d}), got {arr.shape}")
    scale = max(1.0, float(np.abs(arr).max()))
    if not np.allclose(arr, arr.T, rtol=0.0, atol=1e-8 * scale):
        raise ParameterError(f"{name} must be symmetric")
    arr = (arr + arr.T) / 2
    try:
        chol = scipy.linalg.cholesky(arr, lower=True)
    except np.linalg.LinAlgError as exc:
        raise ParameterError(f"{name} must be positive definite (Cholesky failed)") from exc
    return arr, chol


def empirical_moments(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean (d,) and unbiased sample covariance (d, d) of samples ``x`` of shape (n, d)."""
    arr = _samples("x", x)
    mean = arr.mean(axis=0)
    cov = np.cov(arr, rowvar=False, ddof=1).reshape(arr.shape[1], arr.shape[1])
    return mean, cov


def gaussian_kl(m0: Any, S0: Any, m1: Any, S1: Any) -> float:
    """KL(N(m0, S0) || N(m1, S1)) in nats."""
    m0v = _vector("m0", m0)
    d = m0v.shape[0]
    m1v = _vector("m1", m1, d)
    s0, _ = spd_matrix("S0", S0, d)
    s1, l1 = spd_matrix("S1", S1, d)
    # The eigenvalues μ of S1⁻¹S0 (symmetric-definite generalized problem, no inverse) give
    # tr(S1⁻¹S0) − d − log det(S1⁻¹S0) = Σ(μ − 1 − log μ), each term >= 0 and accurate near μ = 1.
    mu = scipy.linalg.eigh(s0, s1, eigvals_only=True)
    b = scipy.linalg.solve_triangular(l1, m1v - m0v, lower=True)  # Mahalanobis term ||L1⁻¹(m1 − m0)||²
    kl = 0.5 * (float(np.sum((mu - 1.0) - np.log(mu))) + float(b @ b))
    return max(kl, 0.0)  # rounding can leave -1e-16 at equality; KL is non-negative by definition


def gaussian_w2(m0: Any, S0: Any, m1: Any, S1: Any) -> float:
    """2-Wasserstein distance between N(m0, S0) and N(m1, S1)."""
    m0v = _vector("m0", m0)
    d = m0v.shape[0]
    m1v = _vector("m1", m1, d)
    s0, _ = spd_matrix("S0", S0, d)
    s1, _ = spd_matrix("S1", S1, d)
    r1 = np.real(scipy.linalg.sqrtm(s1))
    cross = np.real(scipy.linalg.sqrtm(r1 @ s0 @ r1))
    bures = float(np.trace(s0) + np.trace(s1) - 2.0 * np.trace(cross))
    # sqrtm's rounding can make the Bures term slightly negative at equality: clip to 0.
    return math.sqrt(max(float(np.sum((m0v - m1v) ** 2)) + max(bures, 0.0), 0.0))


def moment_errors(x: Any, mean: Any, cov: Any) -> dict[str, float]:
    """Errors of samples' moments against N(mean, cov): mean L2, cov Frobenius, KL(emp||target), W2."""
    em, ec = empirical_moments(x)
    d = em.shape[0]
    m = _vector("mean", mean, d)
    c, _ = spd_matrix("cov", cov, d)
    return {
        "mean_error": float(np.linalg.norm(em - m)),
        "cov_error_fro": float(np.linalg.norm(ec - c, ord="fro")),
        "kl": gaussian_kl(em, ec, m, c),
        "w2": gaussian_w2(em, ec, m, c),
    }


def _chains(name: str, x: Any, *, min_draws: int) -> np.ndarray:
    """Return draws as (n_chains, n_draws[, d]) float64."""
    arr = as_float64(name, x)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim not in (2, 3):
        raise ParameterError(
            f"{name} must have shape (n_draws,), (n_chains, n_draws) or (n_chains, n_draws, d), got {arr.shape}"
        )
    if arr.shape[1] < min_draws:
        raise ParameterError(f"{name} must have at least {min_draws} draws per chain, got {arr.shape[1]}")
    return arr


def autocovariance(x: Any) -> np.ndarray:
    """Biased (divide-by-n) autocovariance at lags 0..n-1 along the last axis of ``x``."""
    arr = as_float64("x", x)
    if arr.ndim < 1 or arr.shape[-1] < 2:
        raise ParameterError(f"x must have at least 2 draws along its last axis, got shape {arr.shape}")
    n = arr.shape[-1]
    centred = arr - arr.mean(axis=-1, keepdims=True)
    m = scipy.fft.next_fast_len(2 * n)  # zero-padding to >= 2n makes the circular correlation linear
    f = np.fft.rfft(centred, n=m, axis=-1)
    acov = np.fft.irfft(f * np.conjugate(f), n=m, axis=-1)[..., :n]
    return acov / n


def autocorrelation(x: Any) -> np.ndarray:
    """Sample autocorrelation at lags 0..n-1 along the last axis of ``x`` (1 at lag 0)."""
    acov = autocovariance(x)
    var = acov[..., :1]
    if np.any(var <= 0):
        raise ParameterError("x must not be constant along its last axis (autocorrelation undefined)")
    return acov / var


def _ess_2d(ary: np.ndarray) -> float:
    """Stan's multi-chain ESS of (n_chains, n_draws) draws (Geyer initial monotone sequence)."""
    return _geyer(ary)[0]


def _geyer(ary: np.ndarray) -> tuple[float, int]:
    """Stan's multi-chain ESS and the truncation lag of its autocorrelation sum."""
    n_chain, n_draw = ary.shape
    if np.ptp(ary) < np.finfo(float).resolution:
        return float(ary.size), 0  # constant draws: Stan/ArviZ convention, nothing to correlate
    acov = autocovariance(ary)
    chain_mean = ary.mean(axis=1)
    mean_var = np.mean(acov[:, 0]) * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus += np.var(chain_mean, ddof=1)
    # All lags' combined autocorrelations at once; the scalar loops below only index into it.
    rho_all = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus
    rho = np.zeros(n_draw)
    rho_even = 1.0
    rho[0] = rho_even
    rho_odd = rho_all[1]
    rho[1] = rho_odd
    # Geyer's initial positive sequence: sum pairs while they stay positive.
    t = 1
    while t < n_draw - 3 and rho_even + rho_odd > 0.0:
        rho_even = rho_all[t + 1]
        rho_odd = rho_all[t + 2]
        if rho_even + rho_odd >= 0:
            rho[t + 1] = rho_even
            rho[t + 2] = rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0:
        rho[max_t + 1] = rho_even
    # Geyer's initial monotone sequence: pair sums must not increase.
    t = 1
    while t <= max_t - 2:
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
            rho[t + 2] = rho[t + 1]
        t += 2
    total = n_chain * n_draw
    tau = -1.0 + 2.0 * np.sum(rho[: max_t + 1]) + np.sum(rho[max_t + 1 : max_t + 2])
    tau = max(tau, 1.0 / np.log10(total))  # Stan's cap: ESS <= N log10(N) for antithetic chains
    return float(total / tau), int(max_t + 1)


def _split(ary: np.ndarray) -> np.ndarray:
    """Split each chain in halves (dropping the middle draw when odd), doubling the chains."""
    half = ary.shape[1] // 2
    return np.concatenate([ary[:, :half], ary[:, ary.shape[1] - half :]], axis=0)


def _z_scale(ary: np.ndarray) -> np.ndarray:
    """Rank-normalise all draws jointly: Φ⁻¹((rank − 3/8)/(N + 1/4)) (Blom), as Vehtari et al. 2021."""
    ranks = scipy.stats.rankdata(ary, method="average").reshape(ary.shape)
    return scipy.stats.norm.ppf((ranks - 0.375) / (ary.size + 0.25))


def _per_coordinate(arr: np.ndarray, fn: Any) -> float | np.ndarray:
    if arr.ndim == 2:
        return fn(arr)
    return np.array([fn(arr[:, :, j]) for j in range(arr.shape[2])])


def ess(x: Any, *, split: bool = False, rank_normalize: bool = False) -> float | np.ndarray:
    """Effective sample size of draws (n_draws,), (n_chains, n_draws) or (n_chains, n_draws, d) per coordinate."""
    arr = _chains("x", x, min_draws=8 if split else 4)

    def one(a: np.ndarray) -> float:
        if split:
            a = _split(a)
        if rank_normalize:
            a = _z_scale(a)
        return _ess_2d(a)

    return _per_coordinate(arr, one)


def _rhat_2d(ary: np.ndarray) -> float:
    """Gelman–Rubin potential scale reduction of (n_chains, n_draws) draws (BDA3 eq. 11.4)."""
    n = ary.shape[1]
    chain_mean = ary.mean(axis=1)
    within = np.mean(np.var(ary, axis=1, ddof=1))
    between = n * np.var(chain_mean, ddof=1)
    if within <= 0:
        raise ParameterError("x has zero within-chain variance: R-hat is undefined for constant chains")
    return float(math.sqrt(((n - 1) / n * within + between / n) / within))


def split_rhat(x: Any, *, rank_normalize: bool = False) -> float | np.ndarray:
    """Split-R-hat of draws (n_chains, n_draws) or (n_chains, n_draws, d); rank-normalised = max(bulk, tail)."""
    arr = _chains("x", x, min_draws=4)

    def one(a: np.ndarray) -> float:
        s = _split(a)
        if not rank_normalize:
            return _rhat_2d(s)
        # Vehtari et al. 2021: bulk R-hat on rank-normalised split chains, tail R-hat on the
        # rank-normalised folded draws |x - median|; report the larger.
        bulk = _rhat_2d(_z_scale(s))
        tail = _rhat_2d(_z_scale(np.abs(s - np.median(s))))
        return max(bulk, tail)

    return _per_coordinate(arr, one)


def holm(p_values: Sequence[float], alpha: float, m: int | None = None) -> tuple[list[float], list[bool]]:
    """Holm's step-down procedure: (each p-value's comparison level, rejected flags), FWER <= alpha.

    ``m`` (default: the number of p-values) is the family's size; tests of the family that were not
    run count as p = 1 (they rank last and change no level).
    """
    k = len(p_values)
    m = k if m is None else m
    if m < k:
        raise ParameterError(f"m must be >= the number of p-values ({k}), got {m}")
    order = sorted(range(k), key=lambda i: (p_values[i], i))
    levels = [0.0] * k
    rejected = [False] * k
    still = True
    for rank, i in enumerate(order):
        levels[i] = alpha / (m - rank)
        if still and p_values[i] <= levels[i]:
            rejected[i] = True
        else:
            still = False
    return levels, rejected
