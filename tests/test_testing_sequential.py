"""Tests of genbench.testing.sequential: the Gandy & Scott (2020) sequential scheme.

Every statistical test states H0, alpha and its seed; seeds go through ``offset_seed``, nothing is retried.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from test_testing_shape import _radius_ks_distance

from genbench.errors import CheckFailed, ParameterError
from genbench.targets import seed_target
from genbench.testing import offset_seed
from genbench.testing._result import CheckResult
from genbench.testing.sequential import assert_sequential, check_sequential, sequential_thresholds
from genbench.testing.shape import _dkwm_radius, check_gaussian_shape

TARGET = seed_target()
MEAN = TARGET.mean.numpy()
COV = TARGET.cov.numpy()
CHOL = np.linalg.cholesky(COV)
ALPHA = 0.01  # level of the scheme in must-reject assertions
ALPHA_KEEP = 1e-4  # level of each must-not-reject assertion


def _fake(p_values: list[float]):  # type: ignore[no-untyped-def]
    """A check returning the given stage p-values in order (records the n it was asked for)."""
    calls: list[int] = []

    def check(n: int, seed: int) -> CheckResult:
        calls.append(n)
        return CheckResult("fake", "H0", 0.0, p_values[len(calls) - 1], 0.05, n)

    check.calls = calls  # type: ignore[attr-defined]
    return check


def _uniform_p(n: int, seed: int) -> CheckResult:
    """A check whose p-value is exactly Uniform(0, 1) under H0 (drawn from the stage seed)."""
    return CheckResult("uniform", "H0", 0.0, float(np.random.default_rng(seed).uniform()), 0.05, n)


def _shape_check(law: str):  # type: ignore[no-untyped-def]
    def check(n: int, seed: int) -> CheckResult:
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, 2)) if law == "gaussian" else rng.uniform(-3**0.5, 3**0.5, (n, 2))
        return check_gaussian_shape(MEAN + z @ CHOL.T, MEAN, COV, alpha=ALPHA, seed=seed)

    return check


def test_thresholds_spend_alpha_over_k_per_stage() -> None:
    """β₁ = α/k, γ = β₁^{1/k}, βᵢ₊₁ = βᵢ/γ, last β = γ; the bound Σ γ^{i−1}βᵢ on P(reject | H0) equals α."""
    for alpha, k in [(0.01, 3), (0.05, 1), (1e-5, 7)]:
        th = sequential_thresholds(alpha, k)
        gamma = (alpha / k) ** (1 / k)
        assert th[0][0] == pytest.approx(alpha / k)
        assert th[-1][0] == pytest.approx(gamma)
        assert all(hi == pytest.approx(lo + gamma) for lo, hi in th)
        assert sum(gamma**i * b for i, (b, _) in enumerate(th)) == pytest.approx(alpha, rel=1e-12)


def test_decision_logic_and_sample_schedules() -> None:
    """Reject at p ≤ β, accept at p > γ + β, continue in between; 'doubling' grows n each stage, 'paper' once."""
    (b1, g1), (b2, g2), (b3, _) = sequential_thresholds(ALPHA, 3)
    mid1, mid2 = (b1 + g1) / 2, (b2 + g2) / 2
    chk = _fake([mid1, mid2, b3 / 2])
    res = check_sequential(chk, n=100, alpha=ALPHA, max_stages=3, schedule="doubling")
    assert [s.decision for s in res.stages] == ["continue", "continue", "reject"]
    assert chk.calls == [100, 200, 400] and not res.passed and res.total_samples == 700
    chk = _fake([mid1, mid2, b3 * 1.5])
    res = check_sequential(chk, n=100, alpha=ALPHA, max_stages=3, schedule="paper")
    assert chk.calls == [100, 200, 200] and res.passed and res.stages[-1].decision == "accept"
    res = check_sequential(_fake([g1 + 1e-3]), n=10, alpha=ALPHA)
    assert res.passed and len(res.stages) == 1
    res = check_sequential(_fake([b1 / 2]), n=10, alpha=ALPHA)
    assert not res.passed and len(res.stages) == 1 and res.result.p_value < ALPHA


@pytest.mark.statistical(alpha=5e-5)
def test_level_is_exactly_alpha_for_uniform_p_values() -> None:
    """With exactly uniform stage p-values the rejection probability is Σ γ^{i−1}βᵢ = α. H0: rate = 0.05
    (alpha of the scheme), 20 000 runs (seeds offset_seed(0..19 999)); two-sided exact binomial test at 5e-5."""
    runs = 20_000
    rej = sum(not check_sequential(_uniform_p, n=1, alpha=0.05, seed=offset_seed(s)).passed for s in range(runs))
    assert scipy.stats.binomtest(rej, runs, 0.05).pvalue >= 5e-5, rej / runs


BAD_N = 2000


def _stage_one_power() -> float:
    """Lower bound on P(stage 1 rejects) for the uniform law at n = BAD_N: the radius KS test alone at
    β₁/17 (the shape check's Bonferroni p-value is ≤ β₁ when it is), DKWM bound on its miss."""
    beta1 = sequential_thresholds(ALPHA, 3)[0][0]
    dist, crit = _radius_ks_distance("uniform"), _dkwm_radius(BAD_N, beta1 / 17)
    return 1.0 - 2.0 * math.exp(-2.0 * BAD_N * (dist - crit) ** 2)


@pytest.mark.statistical(alpha=ALPHA_KEEP)
def test_clear_cases_stop_at_the_first_stage(record_check) -> None:  # type: ignore[no-untyped-def]
    """Must reject at stage 1: a uniform law with Σ's moments, n₀ = 2000, scheme alpha = 0.01, seed
    offset_seed(0) (power from the DKWM bound, declared). Must not reject: exact Gaussian draws, n₀ = 1000,
    H0 samples ~ N(m, Σ) via the shape check, scheme alpha = 1e-4, seed offset_seed(0)."""
    power = _stage_one_power()
    record_check.declare(power=power)
    assert power > 0.99999
    seed = offset_seed(0)
    bad = check_sequential(_shape_check("uniform"), n=BAD_N, alpha=ALPHA, seed=seed)
    assert not bad.passed and len(bad.stages) == 1
    good = record_check(check_sequential(_shape_check("gaussian"), n=1000, alpha=ALPHA_KEEP, seed=seed).result)
    assert good.passed, good.message()
    with pytest.raises(CheckFailed, match="sequential"):  # the same check and seed as `bad`: the same verdict
        assert_sequential(_shape_check("uniform"), n=BAD_N, alpha=ALPHA, seed=seed)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0}, "n must be"),
        ({"max_stages": 0}, "max_stages"),
        ({"growth": 0.5}, "growth must be >= 1"),
        ({"schedule": "tripling"}, "schedule must be one of"),
        ({"alpha": 2.0}, "alpha must be in"),
    ],
)
def test_bad_input_names_the_parameter(kwargs: dict, match: str) -> None:
    args = {"n": 10}
    args.update(kwargs)
    with pytest.raises(ParameterError, match=match):
        check_sequential(_uniform_p, **args)


def test_check_must_return_a_valid_result() -> None:
    with pytest.raises(ParameterError, match="CheckResult"):
        check_sequential(lambda n, s: 0.5, n=10)  # type: ignore[arg-type, return-value]
    with pytest.raises(ParameterError, match="outside"):
        check_sequential(_fake([1.5]), n=10)


@pytest.mark.slow
@pytest.mark.statistical(alpha=0.001)
def test_false_alarm_rate_and_stages_on_a_real_check() -> None:
    """H0: exact Gaussian draws via the shape check in the sequential scheme, alpha = 0.05, n₀ = 500,
    seeds offset_seed(5000..5299): rejection rate ≤ 0.05 (one-sided exact binomial test at 0.001). Prints the rate with
    its CP 95% interval, the mean number of stages, and the uniform law's detection rate and stages."""
    a, seeds = 0.05, [offset_seed(s) for s in range(5000, 5300)]
    ns = len(seeds)
    good = [check_sequential(_shape_check("gaussian"), n=500, alpha=a, seed=s) for s in seeds]
    bad = [check_sequential(_shape_check("uniform"), n=100, alpha=a, seed=s) for s in seeds]
    fa = sum(not r.passed for r in good)
    det = sum(not r.passed for r in bad)
    ci = scipy.stats.binomtest(fa, ns).proportion_ci(method="exact")
    print(f"\nsequential: false alarms {fa}/{ns} = {fa / ns:.4f} CI95 [{ci.low:.4f}, {ci.high:.4f}] (alpha={a}); "
          f"mean stages {np.mean([len(r.stages) for r in good]):.3f}; uniform(n0=100) detected {det}/{ns}, "
          f"mean stages {np.mean([len(r.stages) for r in bad]):.3f}")
    assert scipy.stats.binomtest(fa, ns, a, alternative="greater").pvalue >= 0.001
