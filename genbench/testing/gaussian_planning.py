"""The planners of the Gaussian checks in ``genbench.testing.gaussian`` (re-exported there, beside each check).

Thin, exact wrappers of :mod:`genbench.planning`, each at its check's own level. The joint checks
(``check_gaussian``, ``check_ula_law``, ``check_stationary``) test each component at alpha/2
(Bonferroni), so they plan each component at alpha/2; ``component`` picks the mean (δ, a
Mahalanobis shift) or the covariance (ε, a relative error along one whitened direction) test.
"""

from __future__ import annotations

import genbench.planning as _pw
from genbench._validate import choice, probability
from genbench.planning import DEFAULT_ALPHA, DEFAULT_POWER

__all__ = [
    "mean_required_samples",
    "mean_detectable_effect",
    "mean_hotelling_required_samples",
    "mean_hotelling_detectable_effect",
    "cov_required_samples",
    "cov_detectable_effect",
    "gaussian_required_samples",
    "gaussian_detectable_effect",
    "ula_law_required_samples",
    "ula_law_detectable_effect",
    "stationary_required_samples",
    "stationary_detectable_effect",
]



def mean_required_samples(
    effect: float, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER, d: int = 2
) -> int:
    """Samples at which ``check_mean`` detects a Mahalanobis mean shift ``effect`` with probability ``power``."""
    return _pw.required_samples("mean", effect, alpha=alpha, power=power, d=d)


def mean_detectable_effect(n: int, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER, d: int = 2) -> float:
    """Mahalanobis mean shift that ``check_mean`` detects with probability ``power`` from ``n`` samples."""
    return _pw.detectable_effect("mean", n, alpha=alpha, power=power, d=d)


def mean_hotelling_required_samples(
    effect: float, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER, d: int = 2
) -> int:
    """Samples at which ``check_mean_hotelling`` detects a Mahalanobis mean shift ``effect`` with ``power``."""
    return _pw.required_samples("mean_hotelling", effect, alpha=alpha, power=power, d=d)


def mean_hotelling_detectable_effect(
    n: int, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER, d: int = 2
) -> float:
    """Mahalanobis mean shift that ``check_mean_hotelling`` detects with probability ``power`` from ``n`` samples."""
    return _pw.detectable_effect("mean_hotelling", n, alpha=alpha, power=power, d=d)


def cov_required_samples(
    effect: float, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER, d: int = 2
) -> int:
    """Samples at which ``check_cov`` detects a relative covariance error ``effect`` with probability ``power``."""
    return _pw.required_samples("cov", effect, alpha=alpha, power=power, d=d)


def cov_detectable_effect(n: int, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER, d: int = 2) -> float:
    """Relative covariance error that ``check_cov`` detects with probability ``power`` from ``n`` samples."""
    return _pw.detectable_effect("cov", n, alpha=alpha, power=power, d=d)


_COMPONENTS = ("mean", "cov")


def gaussian_required_samples(
    effect: float,
    *,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    d: int = 2,
    component: str = "mean",
) -> int:
    """Samples at which ``check_gaussian`` detects ``effect`` in ``component`` ("mean": δ, "cov": ε) with ``power``."""
    component = choice("component", component, _COMPONENTS)
    return _pw.required_samples(component, effect, alpha=probability("alpha", alpha) / 2, power=power, d=d)


def gaussian_detectable_effect(
    n: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    d: int = 2,
    component: str = "mean",
) -> float:
    """Effect in ``component`` ("mean": δ, "cov": ε) that ``check_gaussian`` detects with ``power`` from n samples."""
    component = choice("component", component, _COMPONENTS)
    return _pw.detectable_effect(component, n, alpha=probability("alpha", alpha) / 2, power=power, d=d)


def ula_law_required_samples(
    effect: float,
    *,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    d: int = 2,
    component: str = "mean",
) -> int:
    """Chains at which ``check_ula_law`` detects ``effect`` in ``component`` with ``power`` (as ``check_gaussian``)."""
    return gaussian_required_samples(effect, alpha=alpha, power=power, d=d, component=component)


def ula_law_detectable_effect(
    n: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    d: int = 2,
    component: str = "mean",
) -> float:
    """Effect in ``component`` that ``check_ula_law`` detects with ``power`` from n chains (as ``check_gaussian``)."""
    return gaussian_detectable_effect(n, alpha=alpha, power=power, d=d, component=component)


def stationary_required_samples(
    effect: float,
    *,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    d: int = 2,
    component: str = "mean",
) -> int:
    """Samples at which ``check_stationary`` detects ``effect`` in ``component`` with ``power`` (as ``check_gaussian``)."""
    return gaussian_required_samples(effect, alpha=alpha, power=power, d=d, component=component)


def stationary_detectable_effect(
    n: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    d: int = 2,
    component: str = "mean",
) -> float:
    """Effect in ``component`` that ``check_stationary`` detects with ``power`` from n samples (as ``check_gaussian``)."""
    return gaussian_detectable_effect(n, alpha=alpha, power=power, d=d, component=component)
