"""Public statistical assertions for testing samplers and generative models, one grammar for every check.

For each check X listed in :data:`CHECKS`:

- ``check_X(...) -> CheckResult`` (H0, statistic, p-value, alpha, n, detectable effect);
- ``assert_X(...)``: the check, then ``.raise_if_rejected()`` (raises ``CheckFailed``; returns the result);
- ``X_required_samples(effect, *, alpha, power, ...) -> int``: the n at which the check detects ``effect``;
- ``X_detectable_effect(n, *, alpha, power, ...) -> float``: the effect it detects at ``n``.

Every ``alpha`` defaults to :data:`DEFAULT_ALPHA` (0.01) and every planning ``power`` to
:data:`DEFAULT_POWER` (0.8). KSD is the one check without planners (its row in ``CHECKS`` says why).
The generic planners ``required_samples(kind, ...)`` / ``detectable_effect(kind, ...)`` of
:mod:`genbench.planning` are re-exported here. The GAN checks follow the same grammar in
:mod:`genbench.testing.gan` (its own ``CHECKS``). Names of the previous release still work for one
release and warn (``DeprecationWarning``) naming their replacement.

Example::

    from genbench.testing import assert_gaussian, gaussian_required_samples
    n = gaussian_required_samples(0.1, alpha=0.01, power=0.99, d=2)
    assert_gaussian(draws[:n], mean, cov, alpha=0.01, power=0.99, effect=0.1)
"""

from types import MappingProxyType

from genbench._seed_offset import offset_seed
from genbench.planning import DEFAULT_ALPHA, DEFAULT_POWER, EFFECT_UNITS, detectable_effect, required_samples
from genbench.testing._grammar import CheckSpec
from genbench.testing._result import CheckResult

# One import block per submodule and one block of names each in __all__: add new checks below,
# and one CheckSpec in CHECKS.
from genbench.testing.gaussian import (
    assert_cov,
    assert_gaussian,
    assert_matches_gaussian,
    assert_mean,
    assert_mean_hotelling,
    assert_stationary,
    assert_ula_law,
    check_cov,
    check_gaussian,
    check_mean,
    check_mean_hotelling,
    check_stationary,
    check_ula_law,
    cov_detectable_effect,
    cov_required_samples,
    gaussian_detectable_effect,
    gaussian_required_samples,
    mean_detectable_effect,
    mean_hotelling_detectable_effect,
    mean_hotelling_required_samples,
    mean_required_samples,
    stationary_detectable_effect,
    stationary_required_samples,
    ula_law_detectable_effect,
    ula_law_required_samples,
)
from genbench.testing.conservation import (
    assert_one_step,
    assert_ula_one_step,
    check_one_step,
    check_ula_one_step,
    conservation_detectable_effect,
    conservation_required_samples,
    one_step_detectable_effect,
    one_step_required_samples,
    ula_one_step_detectable_effect,
    ula_one_step_inflation,
    ula_one_step_law,
    ula_one_step_required_samples,
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
    sbc_required_samples,
)
from genbench.testing.sequential import (
    SequentialResult,
    assert_sequential,
    check_sequential,
    sequential_check,
    sequential_detectable_effect,
    sequential_required_samples,
    sequential_thresholds,
)
from genbench.testing.shape import (
    assert_gaussian_shape,
    check_gaussian_shape,
    gaussian_shape_detectable_effect,
    gaussian_shape_required_samples,
    shape_detectable_effect,
    shape_required_samples,
)

_GAUSS = "i.i.d. draws"
_BONF = "mean chi^2_d and covariance LRT at alpha/2 each (Bonferroni); effect: mean shift or, with component='cov', eps"

CHECKS: MappingProxyType[str, CheckSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            CheckSpec(
                "mean", check_mean, assert_mean, mean_required_samples, mean_detectable_effect,
                null_hypothesis=f"E[x] = mean, Cov[x] = cov known; {_GAUSS} Gaussian",
                statistic="n (x̄ − m)ᵀ Σ⁻¹ (x̄ − m) ~ χ²_d",
                effect_unit=EFFECT_UNITS["mean"],
            ),
            CheckSpec(
                "mean_hotelling", check_mean_hotelling, assert_mean_hotelling, mean_hotelling_required_samples,
                mean_hotelling_detectable_effect,
                null_hypothesis=f"E[x] = mean, covariance unknown; {_GAUSS} Gaussian",
                statistic="Hotelling T²; (n − d)/(d(n − 1)) T² ~ F(d, n − d)",
                effect_unit=EFFECT_UNITS["mean_hotelling"],
            ),
            CheckSpec(
                "cov", check_cov, assert_cov, cov_required_samples, cov_detectable_effect,
                null_hypothesis=f"Cov[x] = cov; {_GAUSS} Gaussian",
                statistic="modified likelihood-ratio k Σ(λᵢ − 1 − log λᵢ), exact Wishart null",
                effect_unit=EFFECT_UNITS["cov"],
            ),
            CheckSpec(
                "gaussian", check_gaussian, assert_gaussian, gaussian_required_samples, gaussian_detectable_effect,
                null_hypothesis=f"samples are {_GAUSS} of N(mean, cov)",
                statistic=_BONF,
                effect_unit=EFFECT_UNITS["mean"],
            ),
            CheckSpec(
                "ula_law", check_ula_law, assert_ula_law, ula_law_required_samples, ula_law_detectable_effect,
                null_hypothesis="x_T of N independent ULA chains follows ULA's exact law N(mean_T, cov_T)",
                statistic=_BONF,
                effect_unit=EFFECT_UNITS["mean"],
            ),
            CheckSpec(
                "stationary", check_stationary, assert_stationary, stationary_required_samples,
                stationary_detectable_effect,
                null_hypothesis="i.i.d. samples follow ULA's stationary law N(m, S_mu) (the target if step_size=None)",
                statistic=_BONF,
                effect_unit=EFFECT_UNITS["mean"],
            ),
            CheckSpec(
                "gaussian_shape", check_gaussian_shape, assert_gaussian_shape, gaussian_shape_required_samples,
                gaussian_shape_detectable_effect,
                null_hypothesis=f"samples are {_GAUSS} of N(mean, cov)",
                statistic="largest KS distance: chi^2_d radii and K whitened projections, Bonferroni over K + 1",
                effect_unit="KS distance (DKWM-guaranteed power)",
            ),
            CheckSpec(
                "one_step", check_one_step, assert_one_step, one_step_required_samples, one_step_detectable_effect,
                null_hypothesis="one kernel step from exact target draws has law N(expected_mean, expected_cov) "
                "and moves chains",
                statistic="Bonferroni over 4: gaussian, scale sum||z||^2 ~ chi^2_nd, shape, movement binomial",
                effect_unit="relative covariance inflation (scale test's exact power)",
            ),
            CheckSpec(
                "ula_one_step", check_ula_one_step, assert_ula_one_step, ula_one_step_required_samples,
                ula_one_step_detectable_effect,
                null_hypothesis="one kernel step from exact target draws has ULA's law N(m, Sigma + mu^2 Sigma^-1)",
                statistic="as one_step, against ula_one_step_law",
                effect_unit="relative covariance inflation (scale test's exact power)",
            ),
            CheckSpec(
                "sbc", check_sbc, assert_sbc, sbc_required_samples, sbc_detectable_effect,
                null_hypothesis="SBC ranks of the true parameter among the posterior draws are uniform",
                statistic="Pearson chi^2_{B-1} on B rank bins",
                effect_unit="Cohen's w of the binned rank law (noncentral chi^2)",
            ),
            CheckSpec(
                "ksd", check_ksd, assert_ksd, None, None,
                null_hypothesis="samples are draws from the target (i.i.d., or one stationary chain)",
                statistic="n V_n of the IMQ kernel Stein discrepancy vs a wild bootstrap",
                effect_unit="",
                no_planner="the wild-bootstrap null depends on the data and the statistic's law under an "
                "alternative has no closed form: plan with a pilot on data of the same kind",
            ),
            CheckSpec(
                "sequential", check_sequential, assert_sequential, sequential_required_samples,
                sequential_detectable_effect,
                null_hypothesis="that of the wrapped check (stages on fresh samples)",
                statistic="deciding stage's p-value; Gandy & Scott thresholds, alpha/k per stage",
                effect_unit="the wrapped check's (its planner at alpha/k: a stage-1 lower bound)",
            ),
        )
    }
)
"""Every check of genbench.testing: name X -> its CheckSpec (check_X, assert_X and the two planners)."""

__all__ = [
    "CHECKS",
    "CheckResult",
    "CheckSpec",
    "DEFAULT_ALPHA",
    "DEFAULT_POWER",
    "offset_seed",
    # genbench.planning: generic planners by kind
    "EFFECT_UNITS",
    "detectable_effect",
    "required_samples",
    # gaussian.py
    "assert_cov",
    "assert_gaussian",
    "assert_mean",
    "assert_mean_hotelling",
    "assert_stationary",
    "assert_ula_law",
    "check_cov",
    "check_gaussian",
    "check_mean",
    "check_mean_hotelling",
    "check_stationary",
    "check_ula_law",
    "cov_detectable_effect",
    "cov_required_samples",
    "gaussian_detectable_effect",
    "gaussian_required_samples",
    "mean_detectable_effect",
    "mean_hotelling_detectable_effect",
    "mean_hotelling_required_samples",
    "mean_required_samples",
    "stationary_detectable_effect",
    "stationary_required_samples",
    "ula_law_detectable_effect",
    "ula_law_required_samples",
    # shape.py
    "assert_gaussian_shape",
    "check_gaussian_shape",
    "gaussian_shape_detectable_effect",
    "gaussian_shape_required_samples",
    # conservation.py
    "assert_one_step",
    "assert_ula_one_step",
    "check_one_step",
    "check_ula_one_step",
    "one_step_detectable_effect",
    "one_step_required_samples",
    "ula_one_step_detectable_effect",
    "ula_one_step_inflation",
    "ula_one_step_law",
    "ula_one_step_required_samples",
    # sbc.py
    "ConjugateGaussianModel",
    "assert_sbc",
    "check_sbc",
    "sbc_detectable_effect",
    "sbc_required_samples",
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
    "check_sequential",
    "sequential_detectable_effect",
    "sequential_required_samples",
    "sequential_thresholds",
]

# Names of the previous release (importable, not in __all__): each warns naming its replacement.
DEPRECATED = {
    "assert_matches_gaussian": "assert_gaussian",
    "shape_required_samples": "gaussian_shape_required_samples",
    "shape_detectable_effect": "gaussian_shape_detectable_effect",
    "conservation_required_samples": "one_step_required_samples",
    "conservation_detectable_effect": "one_step_detectable_effect",
    "sbc_required_replications": "sbc_required_samples",
    "sequential_check": "check_sequential",
}


def __getattr__(name: str) -> object:
    # Names that moved out of genbench.testing keep working for one release, with a DeprecationWarning.
    from genbench.testing import sbc

    return sbc.__getattr__(name)
