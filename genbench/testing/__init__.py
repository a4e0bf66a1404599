"""Public statistical assertions for testing samplers and generative models.

Every ``check_*`` returns a :class:`CheckResult` (H0, statistic, p-value, alpha, n, detectable effect);
every ``assert_*`` is the check followed by ``.raise_if_rejected()`` (raises ``CheckFailed``).
Planning twins live in :mod:`genbench.testing.power` (``power``, ``required_samples``,
``detectable_effect``); the last two are re-exported here. ``genbench.testing.power`` stays the
module (import the function as ``from genbench.testing.power import power``).

Example::

    from genbench.testing import assert_matches_gaussian, required_samples
    n = required_samples("mean", effect=0.1, alpha=0.005, power=0.99, d=2)
    assert_matches_gaussian(draws[:n], mean, cov, alpha=0.01, power=0.99, effect=0.1)
"""

from genbench.testing._result import CheckResult

# One import line per submodule and one block of names each in __all__: add new checks below.
from genbench.testing.gaussian import (
    assert_cov,
    assert_matches_gaussian,
    assert_mean,
    assert_stationary,
    assert_ula_law,
    check_cov,
    check_gaussian,
    check_mean,
    check_mean_hotelling,
    check_stationary,
    check_ula_law,
)
from genbench.testing.power import CHECKS, EFFECT_UNITS, detectable_effect, required_samples

__all__ = [
    "CheckResult",
    # gaussian.py
    "assert_cov",
    "assert_matches_gaussian",
    "assert_mean",
    "assert_stationary",
    "assert_ula_law",
    "check_cov",
    "check_gaussian",
    "check_mean",
    "check_mean_hotelling",
    "check_stationary",
    "check_ula_law",
    # power.py
    "CHECKS",
    "EFFECT_UNITS",
    "detectable_effect",
    "required_samples",
]
