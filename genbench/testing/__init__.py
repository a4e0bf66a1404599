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

from genbench._seed_offset import offset_seed
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
from genbench.planning import CHECKS, EFFECT_UNITS, detectable_effect, required_samples

# Beyond moments (issue 7): shape, one-step conservation, SBC, KSD, sequential.
from genbench.testing.conservation import (
    assert_one_step,
    assert_ula_one_step,
    check_one_step,
    check_ula_one_step,
    conservation_detectable_effect,
    conservation_required_samples,
    ula_one_step_inflation,
    ula_one_step_law,
)
from genbench.testing.ksd import (
    KSDEstimate,
    KSDTrace,
    assert_ksd,
    check_ksd,
    gaussian_ksd_squared,
    kernel_stein_discrepancy,
    ksd_step_size_trace,
)
from genbench.testing.sbc import (
    ConjugateGaussianModel,
    assert_sbc,
    check_sbc,
    sbc_detectable_effect,
    sbc_required_replications,
)
from genbench.testing.sequential import SequentialResult, assert_sequential, sequential_check, sequential_thresholds
from genbench.testing.shape import (
    assert_gaussian_shape,
    check_gaussian_shape,
    shape_detectable_effect,
    shape_required_samples,
)

__all__ = [
    "CheckResult",
    "offset_seed",
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
    # shape.py
    "assert_gaussian_shape",
    "check_gaussian_shape",
    "shape_detectable_effect",
    "shape_required_samples",
    # conservation.py
    "assert_one_step",
    "assert_ula_one_step",
    "check_one_step",
    "check_ula_one_step",
    "conservation_detectable_effect",
    "conservation_required_samples",
    "ula_one_step_inflation",
    "ula_one_step_law",
    # sbc.py
    "ConjugateGaussianModel",
    "assert_sbc",
    "check_sbc",
    "sbc_detectable_effect",
    "sbc_required_replications",
    # ksd.py
    "KSDEstimate",
    "KSDTrace",
    "assert_ksd",
    "check_ksd",
    "gaussian_ksd_squared",
    "kernel_stein_discrepancy",
    "ksd_step_size_trace",
    # sequential.py
    "SequentialResult",
    "assert_sequential",
    "sequential_check",
    "sequential_thresholds",
]


def __getattr__(name: str) -> object:
    # Names that moved out of genbench.testing keep working for one release, with a DeprecationWarning.
    from genbench.testing import sbc

    return sbc.__getattr__(name)
