"""Exact tests that i.i.d. samples follow a stated Gaussian law, and their Langevin front-ends.

Samples must be independent draws (e.g. the final states x_T of N independent chains, or a
thinned chain whose autocorrelation is negligible); correlated draws from one chain inflate the
false-alarm rate of every test here. Each ``check_*`` returns a :class:`CheckResult` stating H0,
the statistic, the p-value, alpha, n and the effect detectable at this n with power 0.8 (or the
requested power); each ``assert_*`` runs the check and raises ``CheckFailed`` on rejection.

Sampling distributions are exact under H0 for Gaussian data:
- ``check_mean`` (known Σ): n (x̄ − m)ᵀ Σ⁻¹ (x̄ − m) ~ χ²_d;
- ``check_mean_hotelling`` (Σ estimated): (n − d)/(d(n − 1)) T² ~ F(d, n − d);
- ``check_cov``: the modified likelihood-ratio statistic k·Σ(λᵢ − 1 − log λᵢ), λ the eigenvalues
  of Σ₀⁻¹A/k with A ~ Wishart_d(k, Σ) (k = n − 1, or n when the mean is given), against its exact
  null (see ``genbench.wishart.cov_null_pvalue``);
- ``check_gaussian``: mean and covariance tests at alpha/2 each (Bonferroni; the two statistics
  are independent under H0, so the family-wise level is 1 − (1 − alpha/2)² ≤ alpha).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.linalg
import scipy.stats

from genbench._validate import positive_int, probability
from genbench.errors import ParameterError
from genbench.stats import as_float64, spd_matrix
from genbench.targets import Gaussian
import genbench.planning as _pw
from genbench.planning import DEFAULT_ALPHA, DEFAULT_POWER
from genbench.wishart import cov_lr_statistic, cov_null_pvalue
from genbench.testing._grammar import warn_renamed
from genbench.testing import gaussian_planning
from genbench.testing._result import CheckResult
from genbench.testing.gaussian_planning import (  # each check's planners, offered beside it
    mean_required_samples,
    mean_detectable_effect,
    mean_hotelling_required_samples,
    mean_hotelling_detectable_effect,
    cov_required_samples,
    cov_detectable_effect,
    gaussian_required_samples,
    gaussian_detectable_effect,
    ula_law_required_samples,
    ula_law_detectable_effect,
    stationary_required_samples,
    stationary_detectable_effect,
)

__all__ = [
    "check_mean",
    "check_mean_hotelling",
    "check_cov",
    "check_gaussian",
    "check_ula_law",
    "check_stationary",
    "assert_mean",
    "assert_mean_hotelling",
    "assert_cov",
    "assert_gaussian",
    "assert_ula_law",
    "assert_stationary",
    *gaussian_planning.__all__,
]


# ------------------------------------------------------------------------- validation


def _samples(x: Any) -> np.ndarray:
    arr = as_float64("samples", x)
    if arr.ndim == 1:
        raise ParameterError(f"samples must have shape (n, d); for 1-D data pass x[:, None] (got shape {arr.shape})")
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ParameterError(f"samples must have shape (n, d) with n >= 2 and d >= 1, got {arr.shape}")
    return arr


def _mean(x: Any, d: int, name: str = "mean") -> np.ndarray:
    arr = as_float64(name, x)
    if arr.shape != (d,):
        raise ParameterError(f"{name} must have shape ({d},) to match samples, got {arr.shape}")
    return arr


def _power_arg(power: float | None) -> float:
    return DEFAULT_POWER if power is None else probability("power", power)


def _detectable(check: str, n: int, alpha: float, power: float, d: int) -> float | None:
    try:
        return _pw.detectable_effect(check, n, alpha=alpha, power=power, d=d)
    except ParameterError:
        return None  # n too small to detect anything at this power: report no detectable effect


def _require_power(check: str, effect: float, n: int, alpha: float, power: float, d: int, label: str) -> None:
    """Raise when n samples cannot detect ``effect`` with the requested power (never pass silently)."""
    needed = _pw.required_samples(check, effect, alpha=alpha, power=power, d=d)
    if n < needed:
        achieved = _pw.power(check, effect, n, alpha=alpha, d=d) if n >= _pw.min_samples(check, d) else 0.0
        raise ParameterError(
            f"samples: n={n} is too small for the {label} check to detect {_pw.EFFECT_UNITS[check]} "
            f"{effect:g} with power {power:g} at alpha={alpha:g} (power at this n: {achieved:.3f}); "
            f"n >= {needed} is needed"
        )


# ------------------------------------------------------------------------- checks


def check_mean(samples: Any, mean: Any, cov: Any, alpha: float = DEFAULT_ALPHA, *, power: float | None = None) -> CheckResult:
    """Test H0: E[x] = mean for i.i.d. Gaussian samples with known covariance ``cov`` (χ²_d)."""
    x = _samples(samples)
    n, d = x.shape
    m = _mean(mean, d)
    _, chol = spd_matrix("cov", cov, d)
    alpha = probability("alpha", alpha)
    pw = _power_arg(power)
    z = scipy.linalg.solve_triangular(chol, x.mean(axis=0) - m, lower=True)
    stat = float(n * (z @ z))
    return CheckResult(
        name="mean_chi2",
        null_hypothesis="E[x] = mean, Cov[x] = cov known, samples i.i.d. Gaussian",
        statistic=stat,
        p_value=float(scipy.stats.chi2.sf(stat, d)),
        alpha=alpha,
        n=n,
        detectable_effect=_detectable("mean", n, alpha, pw, d),
        effect_unit=_pw.EFFECT_UNITS["mean"],
        power=pw,
        details={"d": d, "df": d, "mahalanobis_shift": float(np.sqrt(z @ z))},
    )


def check_mean_hotelling(samples: Any, mean: Any, alpha: float = DEFAULT_ALPHA, *, power: float | None = None) -> CheckResult:
    """Test H0: E[x] = mean for i.i.d. Gaussian samples with unknown covariance (Hotelling T², F law)."""
    x = _samples(samples)
    n, d = x.shape
    if n <= d:
        raise ParameterError(f"samples: Hotelling's test needs n > d, got n={n}, d={d}")
    m = _mean(mean, d)
    alpha = probability("alpha", alpha)
    pw = _power_arg(power)
    s = np.cov(x, rowvar=False, ddof=1).reshape(d, d)
    try:
        chol = scipy.linalg.cholesky(s, lower=True)
        z = scipy.linalg.solve_triangular(chol, x.mean(axis=0) - m, lower=True)
        t2 = float(n * (z @ z))
    except np.linalg.LinAlgError:
        # A singular sample covariance has probability 0 under H0 (Gaussian, n > d): reject.
        t2 = float("inf")
    fstat = (n - d) / (d * (n - 1)) * t2
    return CheckResult(
        name="mean_hotelling",
        null_hypothesis="E[x] = mean, samples i.i.d. Gaussian (covariance unknown)",
        statistic=t2,
        p_value=float(scipy.stats.f.sf(fstat, d, n - d)),
        alpha=alpha,
        n=n,
        detectable_effect=_detectable("mean_hotelling", n, alpha, pw, d),
        effect_unit=_pw.EFFECT_UNITS["mean_hotelling"],
        power=pw,
        details={"d": d, "f_statistic": fstat, "df": (d, n - d)},
    )


def check_cov(
    samples: Any, cov: Any, alpha: float = DEFAULT_ALPHA, mean: Any | None = None, *, power: float | None = None
) -> CheckResult:
    """Test H0: Cov[x] = cov for i.i.d. Gaussian samples (likelihood-ratio test, exact Wishart null)."""
    x = _samples(samples)
    n, d = x.shape
    c0, _ = spd_matrix("cov", cov, d)
    alpha = probability("alpha", alpha)
    pw = _power_arg(power)
    if mean is None:
        centred, k = x - x.mean(axis=0), n - 1
    else:
        centred, k = x - _mean(mean, d), n
    if k < d:
        raise ParameterError(f"samples: the covariance test needs n >= d + 1 (d + 0 with mean given), got n={n}, d={d}")
    # Under H0 the whitened scatter L⁻¹ A L⁻ᵀ ~ Wishart_d(k, I); the statistic needs only its
    # eigenvalues, i.e. those of Σ₀⁻¹A/k: a symmetric-definite generalized eigenproblem (no inverse).
    # (Also avoids scipy's solve_triangular with matrix right-hand sides, measured at ~10 ms for
    # 3 x 3 here against ~0.08 ms for eigh.)
    lam = scipy.linalg.eigh(centred.T @ centred / k, c0, eigvals_only=True)
    # A singular scatter has probability 0 under H0 (k >= d, Σ₀ positive definite): samples on a
    # subspace (a frozen or collapsed sampler) or a spread too wide for float64 to resolve both ends
    # (a diverging one). Either is evidence against H0, so it is a rejection, not an input error.
    degenerate = not (np.all(np.isfinite(lam)) and lam[0] > 0)
    stat = float("inf") if degenerate else cov_lr_statistic(lam, k)
    # Planning is for the unknown-mean test (k = n − 1); with the mean given it is slightly conservative.
    return CheckResult(
        name="cov_lrt",
        null_hypothesis=f"Cov[x] = cov, samples i.i.d. Gaussian ({'mean unknown' if mean is None else 'mean given'})",
        statistic=stat,
        p_value=0.0 if degenerate else cov_null_pvalue(stat, d, k),
        alpha=alpha,
        n=n,
        detectable_effect=_detectable("cov", n, alpha, pw, d),
        effect_unit=_pw.EFFECT_UNITS["cov"],
        power=pw,
        details={
            "d": d,
            "dof": k,
            "eigenvalues_vs_cov": lam.tolist(),
            "max_relative_error": float(np.max(np.abs(lam - 1.0))),
            "degenerate_scatter": degenerate,
            "null": "Bartlett-corrected chi2 (Muirhead Thm 8.4.9)" if k >= 3 * d else "exact Monte Carlo (Bartlett)",
        },
    )


def check_gaussian(
    samples: Any, mean: Any, cov: Any, alpha: float = DEFAULT_ALPHA, *, power: float | None = None
) -> CheckResult:
    """Test H0: samples are i.i.d. N(mean, cov): χ² mean test and LR covariance test at alpha/2 each (Bonferroni)."""
    x = _samples(samples)
    n, d = x.shape
    alpha = probability("alpha", alpha)
    pw = _power_arg(power)
    # Mean unknown in the covariance test: A = Σ(xᵢ − x̄)(xᵢ − x̄)ᵀ is independent of x̄ under H0, so the
    # two statistics are independent and Bonferroni is nearly exact (family-wise 1 − (1 − α/2)²).
    rm = check_mean(x, mean, cov, alpha / 2, power=pw)
    rc = check_cov(x, cov, alpha / 2, power=pw)
    p = min(1.0, 2.0 * min(rm.p_value, rc.p_value))
    worst = rm if rm.p_value <= rc.p_value else rc
    return CheckResult(
        name="gaussian",
        null_hypothesis="samples i.i.d. N(mean, cov) (mean chi2 + covariance LRT, Bonferroni alpha/2 each)",
        statistic=worst.statistic,
        p_value=p,
        alpha=alpha,
        n=n,
        detectable_effect=rm.detectable_effect,
        effect_unit=(
            f"{_pw.EFFECT_UNITS['mean']} (and relative covariance error "
            f"{rc.detectable_effect if rc.detectable_effect is not None else float('nan'):.3g})"
        ),
        power=pw,
        details={"d": d, "decided_by": worst.name, "mean": rm.to_dict(), "cov": rc.to_dict()},
    )


def _target_law(target: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(target, Gaussian):
        raise ParameterError(
            f"target must be a genbench.targets.Gaussian (exact laws exist for Gaussian targets only), "
            f"got {type(target).__name__}"
        )
    return as_float64("target.mean", target.mean), as_float64("target.cov", target.cov)


def check_ula_law(
    samples_at_T: Any,
    target: Any,
    step_size: float,
    steps: int,
    x0: Any = None,
    alpha: float = DEFAULT_ALPHA,
    *,
    power: float | None = None,
) -> CheckResult:
    """Test H0: N independent chains' x_T follow ULA's exact law after ``steps`` steps from ``x0``."""
    from genbench.langevin.theory import ula_law  # lower layer; imported lazily to keep import light

    _target_law(target)
    steps = positive_int("steps", steps)
    law = ula_law(target, step_size, steps, x0)
    res = check_gaussian(samples_at_T, law.mean, law.cov, alpha, power=power)
    return _renamed(res, "ula_law", f"x_T ~ exact ULA law N(mean_T, cov_T) at T={steps}, step_size={step_size:g}")


def check_stationary(
    samples: Any, target: Any, step_size: float | None = None, alpha: float = DEFAULT_ALPHA, *, power: float | None = None
) -> CheckResult:
    """Test H0: samples are i.i.d. from ULA's stationary law N(m, S_μ), or from the target when step_size is None."""
    m, c = _target_law(target)
    if step_size is None:
        res = check_gaussian(samples, m, c, alpha, power=power)
        return _renamed(res, "target_law", "samples ~ the target N(m, Sigma)")
    from genbench.langevin.theory import stationary_cov

    s_mu = stationary_cov(target, step_size)
    res = check_gaussian(samples, m, s_mu, alpha, power=power)
    return _renamed(res, "ula_stationary", f"samples ~ ULA's stationary law N(m, S_mu), step_size={step_size:g}")


def _renamed(res: CheckResult, name: str, h0: str) -> CheckResult:
    return CheckResult(
        name=name,
        null_hypothesis=h0 + " (mean chi2 + covariance LRT, Bonferroni alpha/2 each)",
        statistic=res.statistic,
        p_value=res.p_value,
        alpha=res.alpha,
        n=res.n,
        detectable_effect=res.detectable_effect,
        effect_unit=res.effect_unit,
        power=res.power,
        details=res.details,
    )


# ------------------------------------------------------------------------- assertions


def _planned(
    samples: Any, d_alpha: float, power: float | None, effect: float | Mapping[str, float] | None
) -> float | None:
    """Validate the (power, effect) request against n; raise ParameterError if n cannot reach it."""
    if power is None and effect is None:
        return None
    pw = _power_arg(power)
    if effect is None:
        return pw
    x = _samples(samples)
    n, d = x.shape
    effects = {"mean": float(effect)} if not isinstance(effect, Mapping) else dict(effect)
    unknown = set(effects) - {"mean", "cov"}
    if unknown or not effects:
        raise ParameterError(f"effect must be a number (mean shift) or a mapping with keys 'mean'/'cov', got {effect!r}")
    for key, label in (("mean", "mean"), ("cov", "covariance")):
        if key in effects:
            _require_power(key, effects[key], n, d_alpha, pw, d, label)
    return pw


def _planned_one(check: str, samples: Any, alpha: float, power: float | None, effect: float | None) -> float | None:
    """As ``_planned`` for a single test (``check`` a genbench.planning kind) run at level ``alpha``."""
    if effect is None:
        return None if power is None else _power_arg(power)
    pw = _power_arg(power)
    n, d = _samples(samples).shape
    label = {"mean": "mean", "mean_hotelling": "Hotelling mean", "cov": "covariance"}[check]
    _require_power(check, effect, n, alpha, pw, d, label)
    return pw


def assert_mean(
    samples: Any,
    mean: Any,
    cov: Any,
    alpha: float = DEFAULT_ALPHA,
    *,
    power: float | None = None,
    effect: float | None = None,
) -> CheckResult:
    """Assert E[x] = mean (known cov); raise CheckFailed with statistic, p-value and detectable effect if rejected.

    With ``effect`` (a Mahalanobis mean shift), first raise ParameterError if n cannot detect it with
    probability ``power`` (default 0.8).
    """
    alpha = probability("alpha", alpha)
    pw = _planned_one("mean", samples, alpha, power, effect)
    return check_mean(samples, mean, cov, alpha, power=pw).raise_if_rejected()


def assert_mean_hotelling(
    samples: Any,
    mean: Any,
    alpha: float = DEFAULT_ALPHA,
    *,
    power: float | None = None,
    effect: float | None = None,
) -> CheckResult:
    """Assert E[x] = mean with the covariance unknown (Hotelling T²); raise CheckFailed if rejected.

    With ``effect`` (a Mahalanobis mean shift), first raise ParameterError if n cannot detect it.
    """
    alpha = probability("alpha", alpha)
    pw = _planned_one("mean_hotelling", samples, alpha, power, effect)
    return check_mean_hotelling(samples, mean, alpha, power=pw).raise_if_rejected()


def assert_cov(
    samples: Any,
    cov: Any,
    alpha: float = DEFAULT_ALPHA,
    mean: Any | None = None,
    *,
    power: float | None = None,
    effect: float | None = None,
) -> CheckResult:
    """Assert Cov[x] = cov; raise CheckFailed if the likelihood-ratio test rejects.

    With ``effect`` (a relative covariance error ε), first raise ParameterError if n cannot detect it.
    """
    alpha = probability("alpha", alpha)
    pw = _planned_one("cov", samples, alpha, power, effect)
    return check_cov(samples, cov, alpha, mean, power=pw).raise_if_rejected()


def assert_gaussian(
    samples: Any,
    mean: Any,
    cov: Any,
    alpha: float = DEFAULT_ALPHA,
    *,
    power: float | None = None,
    effect: float | Mapping[str, float] | None = None,
) -> CheckResult:
    """Assert samples are i.i.d. N(mean, cov); with ``power`` and ``effect``, first assert n is large enough.

    ``effect`` is a Mahalanobis mean shift (number) or ``{"mean": δ, "cov": ε}`` (ε: relative
    covariance error, see ``genbench.planning``); with ``effect`` and no ``power``, power 0.8 is
    required. Each component is planned at alpha/2 (the Bonferroni level it is tested at).
    """
    alpha = probability("alpha", alpha)
    pw = _planned(samples, alpha / 2, power, effect)
    return check_gaussian(samples, mean, cov, alpha, power=pw).raise_if_rejected()


def assert_matches_gaussian(
    samples: Any,
    mean: Any,
    cov: Any,
    alpha: float = DEFAULT_ALPHA,
    power: float | None = None,
    effect: float | Mapping[str, float] | None = None,
) -> CheckResult:
    """Deprecated name of ``assert_gaussian`` (removed in the next release)."""
    warn_renamed(__name__, "assert_matches_gaussian", "assert_gaussian")
    return assert_gaussian(samples, mean, cov, alpha, power=power, effect=effect)


def assert_ula_law(
    samples_at_T: Any,
    target: Any,
    step_size: float,
    steps: int,
    x0: Any = None,
    alpha: float = DEFAULT_ALPHA,
    power: float | None = None,
    effect: float | Mapping[str, float] | None = None,
) -> CheckResult:
    """Assert N independent chains' x_T follow ULA's exact Gaussian law (genbench.langevin.theory.ula_law)."""
    alpha = probability("alpha", alpha)
    pw = _planned(samples_at_T, alpha / 2, power, effect)
    return check_ula_law(samples_at_T, target, step_size, steps, x0, alpha, power=pw).raise_if_rejected()


def assert_stationary(
    samples: Any,
    target: Any,
    step_size: float | None = None,
    alpha: float = DEFAULT_ALPHA,
    power: float | None = None,
    effect: float | Mapping[str, float] | None = None,
) -> CheckResult:
    """Assert i.i.d. samples follow ULA's stationary law N(m, S_μ) (or the target itself when step_size is None)."""
    alpha = probability("alpha", alpha)
    pw = _planned(samples, alpha / 2, power, effect)
    return check_stationary(samples, target, step_size, alpha, power=pw).raise_if_rejected()
