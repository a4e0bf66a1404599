"""Kernel Inception Distance: classifier features -> unbiased MMD^2 estimates (cubic polynomial
kernel) on disjoint subsets -> their mean, a Student-t interval and a one-sided t-test of KID = 0.

torch-fidelity reports the "std" over overlapping subsets, which is a spread, not a standard error;
here the subsets are disjoint, so their estimates are independent and unbiased and their mean over
B subsets has standard error sd/sqrt(B). With B = 10 the interval and the test use Student's t with
B - 1 degrees of freedom (a 95% interval is mean ± 2.26 s.e., not ± 1.96).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.optimize
import scipy.stats

from genbench import _validate
from genbench.errors import DivergenceError, ParameterError
from genbench.gan.metrics.base import EvaluationInputs, HypothesisResult, as_features

NULL_HYPOTHESIS = "MMD^2 between the real and generated feature laws is 0 (same law)"


@dataclass(frozen=True)
class KIDResult(HypothesisResult):
    """KID (mean of disjoint-subset MMD^2 estimates) with its t interval and one-sided t-test."""

    kid: float
    se: float  # standard error of the mean over the subsets
    ci_low: float  # 95% Student-t interval, n_subsets - 1 degrees of freedom
    ci_high: float
    t: float  # kid / se
    dof: int
    p_value: float  # one-sided t-test, H1: KID > 0
    alpha: float
    power: float
    detectable_kid: float | None  # KID detected with probability `power` given this s.e. (None: se = 0)
    n_subsets: int
    subset_size: int
    floor: float | None = None  # KID between two disjoint held-out real sets (from evaluate)
    floor_se: float | None = None
    null_hypothesis: str = NULL_HYPOTHESIS

    def summary_line(self) -> str:
        """One line for the printed summary."""
        floor = f"   real-vs-real: {self.floor:.5f} ± {self.floor_se:.5f}" if self.floor is not None else ""
        return (f"KID: {self.kid:.5f} ± {self.se:.5f} (s.e.; 95% t interval [{self.ci_low:.5f}, {self.ci_high:.5f}], "
                f"{self.n_subsets} disjoint subsets of {self.subset_size}), p={self.p_value:.3g}{floor}")


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2.0 * kxy.mean()
    )


def subset_estimates(feat_x: Any, feat_y: Any, *, n_subsets: int = 10, seed: int = 0) -> np.ndarray:
    """Unbiased MMD^2 (kernel (x.y/d + 1)^3) on ``n_subsets`` disjoint random subsets of each side."""
    x, y = as_features("features", feat_x), as_features("features", feat_y)
    n_subsets = _validate.positive_int("n_subsets", n_subsets, minimum=2)
    if x.shape[1] != y.shape[1]:
        raise ParameterError(f"features must be (N, d) arrays of equal d, got {x.shape} and {y.shape}")
    size = min(len(x), len(y)) // n_subsets
    if size < 2:
        raise ParameterError(
            f"KID with n_subsets={n_subsets} needs >= {2 * n_subsets} samples per side, got {len(x)} and {len(y)}"
        )
    rng = np.random.default_rng(seed)
    px, py = rng.permutation(len(x)), rng.permutation(len(y))
    vals = np.array(
        [_mmd2_unbiased(x[px[i * size:(i + 1) * size]], y[py[i * size:(i + 1) * size]]) for i in range(n_subsets)]
    )
    if not np.isfinite(vals).all():
        raise DivergenceError("KID is non-finite (features overflow the cubic kernel)")
    return vals


@functools.lru_cache(maxsize=256)
def noncentrality_for_power(dof: int, alpha: float, power: float) -> float:
    """Noncentrality at which the one-sided t-test (``dof`` degrees of freedom, level ``alpha``) has ``power``."""
    crit = scipy.stats.t.isf(alpha, dof)
    f = lambda nc: scipy.stats.nct.sf(crit, dof, nc) - power  # noqa: E731 - a one-line root function
    hi = max(1.0, crit)
    while f(hi) < 0:
        hi *= 2
    return float(scipy.optimize.brentq(f, -abs(crit) - 10.0, hi, xtol=1e-10))


def kid_from_estimates(values: Any, subset_size: int, *, alpha: float = 0.01, power: float = 0.8) -> KIDResult:
    """KID, its Student-t 95% interval and one-sided t-test from independent subset estimates."""
    vals = np.asarray(values, dtype=np.float64)
    alpha = _validate.probability("alpha", alpha)
    power = _validate.probability("power", power)
    b = len(vals)
    if b < 2:
        raise ParameterError(f"KID needs >= 2 subset estimates, got {b}")
    mean, dof = float(vals.mean()), b - 1
    se = float(vals.std(ddof=1) / math.sqrt(b))
    half = float(scipy.stats.t.ppf(0.975, dof)) * se
    if se > 0:
        t = mean / se
        p = float(scipy.stats.t.sf(t, dof))
        detectable: float | None = se * noncentrality_for_power(dof, alpha, power)
    else:  # every subset gave the same value: no spread to test against
        t, p, detectable = (math.inf if mean > 0 else 0.0), (0.0 if mean > 0 else 1.0), None
    return KIDResult(kid=mean, se=se, ci_low=mean - half, ci_high=mean + half, t=t, dof=dof, p_value=p,
                     alpha=alpha, power=power, detectable_kid=detectable, n_subsets=b, subset_size=subset_size)


def kernel_inception_distance(
    feat_x: Any, feat_y: Any, *, n_subsets: int = 10, seed: int = 0, alpha: float = 0.01, power: float = 0.8
) -> KIDResult:
    """KID between two (N, d) feature sets: mean over disjoint subsets, t interval and t-test of KID = 0."""
    vals = subset_estimates(feat_x, feat_y, n_subsets=n_subsets, seed=seed)
    size = min(len(feat_x), len(feat_y)) // n_subsets
    return kid_from_estimates(vals, size, alpha=alpha, power=power)


def evaluate(inputs: EvaluationInputs) -> KIDResult:
    """KID of generated vs held-out real features, tested against 0, with the real-vs-real value beside it."""
    real = inputs.real_features.features
    kid = kernel_inception_distance(inputs.fake_features.features, real, n_subsets=inputs.kid_subsets,
                                    seed=inputs.seed, alpha=inputs.alpha, power=inputs.power)
    floor = kernel_inception_distance(inputs.floor_features.features, real, n_subsets=inputs.kid_subsets,
                                      seed=inputs.seed, alpha=inputs.alpha, power=inputs.power)
    return replace(kid, floor=floor.kid, floor_se=floor.se)
