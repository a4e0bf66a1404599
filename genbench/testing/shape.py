"""Shape check: catches laws with the right mean and covariance but the wrong shape.

Under H0 the samples are i.i.d. N(m, Σ). Whitening with the Cholesky factor L of Σ,
z = L⁻¹(x − m) is i.i.d. N(0, I_d), so

* the squared Mahalanobis radii ‖z‖² are i.i.d. χ²_d, and
* for any fixed unit vector u, uᵀz is i.i.d. N(0, 1).

The check runs one Kolmogorov–Smirnov test on the radii against ``scipy.stats.chi2(d)`` and one
KS test on each of K random projections (directions drawn uniformly on the sphere, independently
of the samples, from ``seed``) against N(0, 1). The family of K + 1 tests is combined with a
Bonferroni correction: each test runs at α/(K+1) and the reported p-value is
min(1, (K+1)·min pᵢ), so P(reject | H0) ≤ α whatever the dependence between the tests.

Power is planned with the Dvoretzky–Kiefer–Wolfowitz–Massart inequality (as TFP's
``statistical_testing`` does): P(sup|F_n − F| > t) ≤ 2 exp(−2nt²). The exact KS test at level
α' rejects whenever D_n > t_α' = √(ln(2/α')/(2n)) (the exact critical value is below the DKWM
bound), and when the true KS distance of one tested 1-D law is ε, D_n ≥ ε − t_β with probability
≥ 1 − β, t_β = √(ln(2/β)/(2n)). So any tested 1-D law (radius or projection) at KS distance
ε ≥ t_α' + t_β from its null is detected with probability ≥ power = 1 − β: a guaranteed,
distribution-free (conservative) power bound.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.linalg
import scipy.stats

from genbench._validate import nonnegative_seed, positive_int, probability
from genbench.errors import ParameterError
from genbench.planning import DEFAULT_ALPHA, DEFAULT_POWER
from genbench.stats import as_float64
from genbench.testing._grammar import deprecated_alias
from genbench.testing._result import CheckResult

__all__ = [
    "check_gaussian_shape",
    "assert_gaussian_shape",
    "gaussian_shape_detectable_effect",
    "gaussian_shape_required_samples",
    "whiten",
]

SHAPE_NULL = "samples are i.i.d. N(mean, cov)"
SHAPE_EFFECT_UNIT = "KS distance of the chi^2_d radius law or of a whitened 1-D projection"


def _validate_samples(samples: Any, *, min_n: int = 2) -> np.ndarray:
    x = as_float64("samples", samples)
    if x.ndim != 2 or x.shape[0] < min_n or x.shape[1] < 1:
        raise ParameterError(f"samples must have shape (n, d) with n >= {min_n} and d >= 1, got {x.shape}")
    return x


def _gaussian_params(mean: Any, cov: Any, d: int) -> tuple[np.ndarray, np.ndarray]:
    m = as_float64("mean", mean).reshape(-1)
    if m.shape != (d,):
        raise ParameterError(f"mean must have shape ({d},) to match samples, got {m.shape}")
    c = as_float64("cov", cov)
    if c.shape != (d, d):
        raise ParameterError(f"cov must have shape ({d}, {d}) to match samples, got {c.shape}")
    scale = max(1.0, float(np.abs(c).max()))
    if not np.allclose(c, c.T, rtol=0.0, atol=1e-8 * scale):
        raise ParameterError("cov must be symmetric")
    try:
        chol = scipy.linalg.cholesky((c + c.T) / 2, lower=True)
    except np.linalg.LinAlgError as exc:
        raise ParameterError("cov must be positive definite (Cholesky failed)") from exc
    return m, chol


def whiten(samples: Any, mean: Any, cov: Any) -> np.ndarray:
    """Return z = L⁻¹(x − mean) (L the Cholesky factor of cov), i.i.d. N(0, I) under H0, shape (n, d)."""
    x = _validate_samples(samples, min_n=1)
    m, chol = _gaussian_params(mean, cov, x.shape[1])
    return scipy.linalg.solve_triangular(chol, (x - m).T, lower=True).T


def _random_directions(k: int, d: int, seed: int) -> np.ndarray:
    """K unit vectors uniform on the sphere S^{d-1}, drawn from ``seed`` (independent of the samples)."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((k, d))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def _dkwm_radius(n: int, prob: float) -> float:
    """t with 2·exp(−2 n t²) = prob: P(sup|F_n − F| > t) ≤ prob (Massart's constant)."""
    return math.sqrt(math.log(2.0 / prob) / (2.0 * n))


def gaussian_shape_detectable_effect(
    n: int, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER, projections: int = 16
) -> float:
    """Smallest KS distance (radius law or one projection) detected with probability >= power at n samples."""
    n = positive_int("n", n)
    alpha = probability("alpha", alpha)
    power = probability("power", power)
    k = positive_int("projections", projections, minimum=0) + 1
    return _dkwm_radius(n, alpha / k) + _dkwm_radius(n, 1.0 - power)


def gaussian_shape_required_samples(
    effect: float, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER, projections: int = 16
) -> int:
    """Samples needed so a KS distance ``effect`` (radius law or one projection) is detected with prob >= power."""
    effect = probability("effect", effect)
    alpha = probability("alpha", alpha)
    power = probability("power", power)
    k = positive_int("projections", projections, minimum=0) + 1
    # Solve √(ln(2k/α)/2n) + √(ln(2/β)/2n) = ε for n.
    root = math.sqrt(math.log(2.0 * k / alpha) / 2.0) + math.sqrt(math.log(2.0 / (1.0 - power)) / 2.0)
    n = max(1, math.ceil((root / effect) ** 2))
    # The closed form rounds: step to the smallest n whose detectable effect is <= effect, so that
    # gaussian_shape_required_samples(gaussian_shape_detectable_effect(n)) == n.
    while n > 1 and gaussian_shape_detectable_effect(n - 1, alpha=alpha, power=power, projections=k - 1) <= effect:
        n -= 1
    while gaussian_shape_detectable_effect(n, alpha=alpha, power=power, projections=k - 1) > effect:
        n += 1
    return n


def check_gaussian_shape(
    samples: Any,
    mean: Any,
    cov: Any,
    *,
    alpha: float = DEFAULT_ALPHA,
    projections: int = 16,
    seed: int = 0,
    power: float = DEFAULT_POWER,
) -> CheckResult:
    """Test H0: samples are i.i.d. N(mean, cov), by KS on χ²_d radii and on K random projections.

    H0: the rows of ``samples`` (n, d) are i.i.d. N(mean, cov). Level: ``alpha`` overall, split by
    Bonferroni into α/(K+1) for the radius test and each of the K = ``projections`` projection tests.
    ``seed`` draws the projection directions (independently of the samples). The detectable effect
    is the DKWM-guaranteed KS distance detected with probability ``power`` (see module docstring).
    """
    x = _validate_samples(samples)
    alpha = probability("alpha", alpha)
    power = probability("power", power)
    k = positive_int("projections", projections, minimum=0)
    seed = nonnegative_seed("seed", seed)
    n, d = x.shape
    z = whiten(x, mean, cov)
    tests = 1 + k
    level = alpha / tests

    radius = scipy.stats.kstest((z * z).sum(axis=1), scipy.stats.chi2(d).cdf)
    stats = [float(radius.statistic)]
    pvals = [float(radius.pvalue)]
    if k:
        u = _random_directions(k, d, seed)
        proj = z @ u.T  # (n, K): each column i.i.d. N(0, 1) under H0
        # One vectorised KS per column (scipy.stats.kstest broadcasts over axis 0).
        res = scipy.stats.kstest(proj, scipy.stats.norm.cdf, axis=0)
        stats += [float(s) for s in np.atleast_1d(res.statistic)]
        pvals += [float(p) for p in np.atleast_1d(res.pvalue)]
    p_min = min(pvals)
    worst = int(np.argmin(pvals))
    return CheckResult(
        name="gaussian_shape",
        null_hypothesis=SHAPE_NULL,
        statistic=max(stats),
        p_value=min(1.0, tests * p_min),
        alpha=alpha,
        n=n,
        detectable_effect=gaussian_shape_detectable_effect(n, alpha=alpha, power=power, projections=k),
        effect_unit=SHAPE_EFFECT_UNIT,
        power=power,
        details={
            "statistic_meaning": "largest KS distance among the K+1 tests",
            "correction": f"Bonferroni over {tests} KS tests, each at alpha/{tests} = {level:.3g}",
            "radius_ks": stats[0],
            "radius_p_value": pvals[0],
            "projection_ks": stats[1:],
            "projection_p_values": pvals[1:],
            "worst_test": "radius" if worst == 0 else f"projection {worst - 1}",
            "projections": k,
            "seed": seed,
        },
    )


def assert_gaussian_shape(
    samples: Any,
    mean: Any,
    cov: Any,
    *,
    alpha: float = DEFAULT_ALPHA,
    projections: int = 16,
    seed: int = 0,
    power: float = DEFAULT_POWER,
    effect: float | None = None,
) -> CheckResult:
    """Raise CheckFailed unless samples pass ``check_gaussian_shape`` (H0: i.i.d. N(mean, cov)) at ``alpha``.

    With ``effect`` (a KS distance), first raise ParameterError if n is too small to detect it with
    probability ``power`` — an underpowered assertion never passes silently.
    """
    if effect is not None:
        n = _validate_samples(samples).shape[0]
        needed = gaussian_shape_required_samples(effect, alpha=alpha, power=power, projections=projections)
        if n < needed:
            raise ParameterError(
                f"samples: n={n} is too small for the shape check to detect a KS distance {effect:g} with power "
                f"{power:g} at alpha={alpha:g}; n >= {needed} is needed"
            )
    return check_gaussian_shape(
        samples, mean, cov, alpha=alpha, projections=projections, seed=seed, power=power
    ).raise_if_rejected()


shape_required_samples = deprecated_alias(__name__, "shape_required_samples", gaussian_shape_required_samples)
shape_detectable_effect = deprecated_alias(__name__, "shape_detectable_effect", gaussian_shape_detectable_effect)
