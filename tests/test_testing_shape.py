"""Tests of genbench.testing.shape: the χ²_d-radius + random-projection KS check of Gaussian shape.

Every statistical test states H0, alpha and its seed; seeds go through ``offset_seed``, nothing is
retried. Must-reject assertions run at ALPHA = 0.01 with n planned by ``gaussian_shape_required_samples`` for the
law's actual KS distance and declare the power that plan guarantees; must-not-reject ones run at 1e-4.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pytest
import scipy.stats
import torch

from genbench.errors import CheckFailed, ParameterError
from genbench.targets import seed_target
from genbench.testing import offset_seed
from genbench.testing.shape import (
    _dkwm_radius,
    assert_gaussian_shape,
    check_gaussian_shape,
    gaussian_shape_detectable_effect,
    gaussian_shape_required_samples,
    whiten,
)

TARGET = seed_target()
MEAN = TARGET.mean.numpy()
COV = TARGET.cov.numpy()
CHOL = np.linalg.cholesky(COV)
ALPHA = 0.01  # level of the checks in must-reject assertions
ALPHA_KEEP = 1e-4  # level of each must-not-reject assertion
MIN_POWER = 0.99999
PILOT, PLAN_SEED = 2**18, 99_999  # planning only: not re-rolled


def _law(name: str, n: int, seed: int) -> np.ndarray:
    """n draws with mean MEAN and covariance COV exactly, built as MEAN + L z with E z = 0, Cov z = I."""
    rng = np.random.default_rng(seed)
    if name == "gaussian":
        z = rng.standard_normal((n, 2))
    elif name == "uniform":  # product of U(−√3, √3): unit variance
        z = rng.uniform(-math.sqrt(3.0), math.sqrt(3.0), (n, 2))
    elif name == "laplace":  # scale 1/√2: unit variance
        z = rng.laplace(0.0, 1.0 / math.sqrt(2.0), (n, 2))
    elif name == "student_t5":  # product of t_5 / √(5/3): unit variance
        z = rng.standard_t(5, (n, 2)) / math.sqrt(5.0 / 3.0)
    elif name == "multivariate_t5":  # elliptical: N(0, I)/√(χ²_5/3), Cov = I
        z = rng.standard_normal((n, 2)) / np.sqrt(rng.chisquare(5, n) / 3.0)[:, None]
    elif name == "mixture":  # ½N(±0.8 e1, I − 0.64 e1e1ᵀ): mean 0, Cov I, bimodal along e1
        a = 0.8
        z = rng.standard_normal((n, 2))
        z[:, 0] = a * rng.choice([-1.0, 1.0], n) + math.sqrt(1 - a * a) * z[:, 0]
    else:  # pragma: no cover
        raise AssertionError(name)
    return MEAN + z @ CHOL.T


@lru_cache(maxsize=None)
def _radius_ks_distance(law: str) -> float:
    """Lower bound on the KS distance between the law's ‖z‖² and χ²_2: a 2¹⁸-draw pilot less its DKWM radius at 1e-9."""
    z = whiten(_law(law, PILOT, seed=PLAN_SEED), MEAN, COV)
    return float(scipy.stats.kstest((z * z).sum(axis=1), scipy.stats.chi2(2).cdf).statistic) - _dkwm_radius(PILOT, 1e-9)


def _planned(law: str, projections: int = 16) -> tuple[int, float]:
    """n from gaussian_shape_required_samples for the law's radius KS distance at power 0.99999 (at least 4000),
    and the power the DKWM bound guarantees at that n (the radius test alone; projections only add)."""
    dist = _radius_ks_distance(law)
    n = max(4000, gaussian_shape_required_samples(dist, alpha=ALPHA, power=MIN_POWER, projections=projections))
    crit = _dkwm_radius(n, ALPHA / (projections + 1))
    return n, 1.0 - 2.0 * math.exp(-2.0 * n * (dist - crit) ** 2)


@pytest.mark.statistical(alpha=ALPHA_KEEP)
def test_accepts_exact_gaussian_draws(record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: 4000 exact N(m, Σ) draws (seed offset_seed(0)) are N(m, Σ); alpha = 1e-4; must not reject."""
    seed = offset_seed(0)
    res = record_check(check_gaussian_shape(_law("gaussian", 4000, seed=seed), MEAN, COV, alpha=ALPHA_KEEP, seed=seed))
    assert res.passed, res.message()
    assert res.details["projections"] == 16
    assert len(res.details["projection_p_values"]) == 16


@pytest.mark.parametrize("law", ["uniform", "laplace", "student_t5", "multivariate_t5", "mixture"])
def test_rejects_laws_with_matched_mean_and_covariance(law: str, record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: samples ~ N(m, Σ); the samples have mean m and cov Σ but another shape (seed offset_seed(1),
    alpha = 0.01, n planned by gaussian_shape_required_samples for power 0.99999 against the law's radius KS
    distance, at least 4000; the mixture needs ~14 000): the check must reject, and a moment test could
    not. The power guaranteed at that n is declared."""
    n, power = _planned(law)
    record_check.declare(power=power)
    assert power >= MIN_POWER
    seed = offset_seed(1)
    x = _law(law, n, seed=seed)
    res = record_check(check_gaussian_shape(x, MEAN, COV, alpha=ALPHA, seed=seed))
    assert not res.passed, res.message()
    with pytest.raises(CheckFailed, match="REJECTED"):  # the same data and seed: the same verdict
        assert_gaussian_shape(x, MEAN, COV, alpha=ALPHA, seed=seed)


def test_whiten_recovers_standard_normals() -> None:
    """whiten inverts x = m + L z exactly."""
    z = np.random.default_rng(3).standard_normal((50, 2))
    np.testing.assert_allclose(whiten(MEAN + z @ CHOL.T, MEAN, COV), z, atol=1e-12)


def test_planning_twins_are_consistent() -> None:
    """required_samples(detectable_effect(n)) returns n (to rounding); both shrink/grow monotonically."""
    for n in (200, 1000, 4000, 50_000):
        eps = gaussian_shape_detectable_effect(n, alpha=ALPHA, power=0.8, projections=16)
        assert gaussian_shape_required_samples(eps, alpha=ALPHA, power=0.8, projections=16) in (n, n + 1)
    assert gaussian_shape_detectable_effect(4000) < gaussian_shape_detectable_effect(1000)
    assert gaussian_shape_detectable_effect(1000, power=0.95) > gaussian_shape_detectable_effect(1000, power=0.8)
    assert gaussian_shape_detectable_effect(1000, projections=64) > gaussian_shape_detectable_effect(1000, projections=4)
    # DKWM closed form at K = 0: √(ln(2/α)/2n) + √(ln(2/β)/2n).
    n = 1000
    want = math.sqrt(math.log(2 / ALPHA) / (2 * n)) + math.sqrt(math.log(2 / 0.2) / (2 * n))
    assert gaussian_shape_detectable_effect(n, alpha=ALPHA, power=0.8, projections=0) == pytest.approx(want, rel=1e-12)


@pytest.mark.statistical(alpha=5e-5)
def test_dkwm_power_guarantee_on_a_shifted_radius_law() -> None:
    """H0 (of the planning): a law whose radius CDF is at KS distance ≥ detectable_effect(n) from χ²_d is
    rejected with probability ≥ 0.8. Alternative: z = 1.25·N(0, I) (radius KS distance computed exactly),
    n planned by gaussian_shape_required_samples; 50 seeds (offset_seed(0..49)); the rejection rate's one-sided
    exact binomial test against 0.8 must not reject at 5e-5."""
    scale = 1.25
    r = np.linspace(0, 40, 40001)
    ks_dist = float(np.max(np.abs(scipy.stats.chi2(2).cdf(r / scale**2) - scipy.stats.chi2(2).cdf(r))))
    n = gaussian_shape_required_samples(ks_dist, alpha=ALPHA, power=0.8, projections=4)
    rej = 0
    for seed in map(offset_seed, range(50)):
        z = scale * np.random.default_rng(seed).standard_normal((n, 2))
        rej += not check_gaussian_shape(MEAN + z @ CHOL.T, MEAN, COV, alpha=ALPHA, projections=4, seed=seed).passed
    assert scipy.stats.binomtest(rej, 50, 0.8, alternative="less").pvalue >= 5e-5, (rej, n, ks_dist)


def test_accepts_torch_tensors() -> None:
    """Samples may be torch tensors (any float dtype)."""
    g = torch.Generator().manual_seed(0)
    res = check_gaussian_shape(TARGET.sample(500, g).float(), TARGET.mean, TARGET.cov, alpha=ALPHA)
    assert res.n == 500


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"samples": np.zeros((10, 3))}, "mean must have shape"),
        ({"samples": np.zeros(10)}, "samples must have shape"),
        ({"samples": np.full((10, 2), np.nan)}, "samples must be finite"),
        ({"cov": [[1.0, 2.0], [2.0, 1.0]]}, "cov must be positive definite"),
        ({"cov": [[1.0, 0.5], [0.0, 1.0]]}, "cov must be symmetric"),
        ({"alpha": 1.5}, "alpha must be in"),
        ({"projections": -1}, "projections must be an integer"),
        ({"seed": -3}, "seed must be a non-negative integer"),
    ],
)
def test_bad_input_names_the_parameter(kwargs: dict, match: str) -> None:
    args = {"samples": _law("gaussian", 20, 0), "mean": MEAN, "cov": COV}
    args.update(kwargs)
    samples, mean, cov = args.pop("samples"), args.pop("mean"), args.pop("cov")
    with pytest.raises(ParameterError, match=match):
        check_gaussian_shape(samples, mean, cov, **args)


@pytest.mark.slow
@pytest.mark.statistical(alpha=0.001)
def test_false_alarm_rate_consistent_with_alpha() -> None:
    """H0: on exact N(m, Σ) draws (n = 1000, seeds offset_seed(1000..1399)) the check at alpha = 0.05 rejects with
    rate ≤ 0.05 (Bonferroni makes it conservative). One-sided exact binomial test of rate > 0.05 at 0.001;
    prints the rate with its Clopper–Pearson 95% interval, and the mixture law's detection rate at n = 1000."""
    seeds = [offset_seed(s) for s in range(1000, 1400)]
    a = 0.05
    rej = sum(not check_gaussian_shape(_law("gaussian", 1000, s), MEAN, COV, alpha=a, seed=s).passed for s in seeds)
    bt = scipy.stats.binomtest(rej, len(seeds), a, alternative="greater")
    ci = scipy.stats.binomtest(rej, len(seeds)).proportion_ci(method="exact")
    det = sum(not check_gaussian_shape(_law("mixture", 1000, s), MEAN, COV, alpha=a, seed=s).passed for s in seeds)
    print(f"\nshape: false alarms {rej}/{len(seeds)} = {rej / len(seeds):.4f} CI95 [{ci.low:.4f}, {ci.high:.4f}] "
          f"at alpha={a}; mixture detection {det}/{len(seeds)}")
    assert bt.pvalue >= 0.001


def test_underpowered_assertion_raises_instead_of_passing() -> None:
    """assert_gaussian_shape(effect=ε, power=…) refuses an n below gaussian_shape_required_samples(ε)."""
    needed = gaussian_shape_required_samples(0.05, alpha=ALPHA, power=0.9)
    with pytest.raises(ParameterError, match=f"n >= {needed} is needed"):
        assert_gaussian_shape(_law("gaussian", needed - 1, 0), MEAN, COV, alpha=ALPHA, power=0.9, effect=0.05)
