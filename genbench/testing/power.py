"""Planning for genbench's checks, kept here for existing imports: the code lives in ``genbench.planning``.

``from genbench.testing.power import power, required_samples, detectable_effect`` keeps working; new
code imports them from :mod:`genbench.planning` (planners) and :mod:`genbench.wishart` (the covariance
likelihood-ratio statistic and its laws).
"""

from genbench.planning import (
    CHECKS,
    DEFAULT_ALPHA,
    DEFAULT_POWER,
    EFFECT_UNITS,
    MAX_N,
    clear_caches,
    detectable_effect,
    min_samples,
    power,
    required_samples,
)
from genbench.wishart import (
    COV_NULL_DRAWS,
    COV_POWER_DRAWS,
    cov_lr_statistic,
    cov_null_distribution,
    cov_null_pvalue,
    cov_power_for_eigenvalues,
)

__all__ = [
    "CHECKS",
    "COV_NULL_DRAWS",
    "COV_POWER_DRAWS",
    "DEFAULT_ALPHA",
    "DEFAULT_POWER",
    "EFFECT_UNITS",
    "MAX_N",
    "clear_caches",
    "cov_lr_statistic",
    "cov_null_distribution",
    "cov_null_pvalue",
    "cov_power_for_eigenvalues",
    "detectable_effect",
    "min_samples",
    "power",
    "required_samples",
]
