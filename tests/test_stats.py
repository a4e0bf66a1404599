"""Tests of genbench.stats: moments, Gaussian KL/W2 closed forms, autocorrelation, ESS and split-R-hat."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import scipy.stats
import torch

from genbench.errors import ParameterError
from genbench.stats import (
    _geyer,
    autocorrelation,
    empirical_moments,
    ess,
    gaussian_kl,
    gaussian_w2,
    moment_errors,
    split_rhat,
)

SIGMA = np.array([[1.0, 0.9], [0.9, 1.0]])
MEAN = np.array([1.0, 1.0])


def _ar1(rho: float, n: int, seed: int, chains: int = 1) -> np.ndarray:
    """Stationary AR(1) draws with unit variance, shape (chains, n)."""
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((chains, n))
    x = scipy.signal.lfilter([1.0], [1.0, -rho], e, axis=1) * math.sqrt(1 - rho**2)
    # Start each chain in stationarity: replace the zero initial state by an exact stationary draw.
    x += rng.standard_normal((chains, 1)) * rho ** np.arange(1, n + 1)
    return x


# ---------------------------------------------------------------- moments, KL, W2


def test_empirical_moments_numpy_and_torch_agree() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 3))
    m, c = empirical_moments(x)
    mt, ct = empirical_moments(torch.from_numpy(x).float())
    np.testing.assert_allclose(m, x.mean(0))
    np.testing.assert_allclose(c, np.cov(x.T))
    np.testing.assert_allclose(mt, m, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ct, c, rtol=1e-5, atol=1e-6)
    assert m.dtype == np.float64 and c.shape == (3, 3)


def test_empirical_moments_one_dimension_gives_1x1_cov() -> None:
    m, c = empirical_moments(np.arange(5.0)[:, None])
    assert c.shape == (1, 1) and c[0, 0] == pytest.approx(2.5)


@pytest.mark.parametrize(
    "bad",
    [np.zeros(5), np.zeros((1, 2)), np.zeros((3, 0)), np.array([[np.nan, 1.0], [0.0, 1.0]]), "abc"],
)
def test_empirical_moments_rejects_bad_input(bad: object) -> None:
    with pytest.raises(ParameterError, match="x must"):
        empirical_moments(bad)


def test_kl_and_w2_zero_at_equality() -> None:
    assert gaussian_kl(MEAN, SIGMA, MEAN, SIGMA) == pytest.approx(0.0, abs=1e-12)
    # W2 is the square root of a difference of traces, so rounding 1e-16 shows as ~1e-8.
    assert gaussian_w2(MEAN, SIGMA, MEAN, SIGMA) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("m0,s0,m1,s1", [(0.0, 2.0, 1.0, 1.0), (3.0, 0.5, -1.0, 4.0), (0.0, 1.0, 0.0, 9.0)])
def test_kl_and_w2_one_dimensional_closed_forms(m0: float, s0: float, m1: float, s1: float) -> None:
    # KL(N(m0,s0)||N(m1,s1)) = ½(s0/s1 + (m1−m0)²/s1 − 1 + ln(s1/s0)); W2² = (m0−m1)² + (√s0 − √s1)².
    kl = 0.5 * (s0 / s1 + (m1 - m0) ** 2 / s1 - 1 + math.log(s1 / s0))
    w2 = math.sqrt((m0 - m1) ** 2 + (math.sqrt(s0) - math.sqrt(s1)) ** 2)
    assert gaussian_kl([m0], [[s0]], [m1], [[s1]]) == pytest.approx(kl, rel=1e-12)
    assert gaussian_w2([m0], [[s0]], [m1], [[s1]]) == pytest.approx(w2, rel=1e-9)


def test_kl_and_w2_multivariate_closed_forms() -> None:
    # Commuting (diagonal) covariances: KL and W2 split over coordinates.
    m0, m1 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s0, s1 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
    kl = sum(0.5 * (a / b + (y - x) ** 2 / b - 1 + math.log(b / a)) for x, a, y, b in zip(m0, s0, m1, s1))
    w2 = math.sqrt(np.sum((m0 - m1) ** 2) + np.sum((np.sqrt(s0) - np.sqrt(s1)) ** 2))
    assert gaussian_kl(m0, np.diag(s0), m1, np.diag(s1)) == pytest.approx(kl, rel=1e-12)
    assert gaussian_w2(m0, np.diag(s0), m1, np.diag(s1)) == pytest.approx(w2, rel=1e-9)
    # Rotation invariance: rotating both Gaussians (non-diagonal covariances) keeps both distances.
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))
    args = (q @ m0, q @ np.diag(s0) @ q.T, q @ m1, q @ np.diag(s1) @ q.T)
    assert gaussian_kl(*args) == pytest.approx(kl, rel=1e-10)
    assert gaussian_w2(*args) == pytest.approx(w2, rel=1e-7)


def test_kl_w2_reject_bad_covariances() -> None:
    with pytest.raises(ParameterError, match="S1 must be positive definite"):
        gaussian_kl(MEAN, SIGMA, MEAN, np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ParameterError, match="S0 must be symmetric"):
        gaussian_w2(MEAN, np.array([[1.0, 0.5], [0.0, 1.0]]), MEAN, SIGMA)
    with pytest.raises(ParameterError, match=r"m1 must have shape \(2,\)"):
        gaussian_kl(MEAN, SIGMA, np.zeros(3), SIGMA)
    with pytest.raises(ParameterError, match=r"S1 must have shape \(2, 2\)"):
        gaussian_w2(MEAN, SIGMA, MEAN, np.eye(3))


def test_moment_errors_reports_all_four() -> None:
    x = np.random.default_rng(0).multivariate_normal(MEAN, SIGMA, size=1000)
    errs = moment_errors(x, MEAN, SIGMA)
    em, ec = empirical_moments(x)
    assert errs["mean_error"] == pytest.approx(np.linalg.norm(em - MEAN))
    assert errs["cov_error_fro"] == pytest.approx(np.linalg.norm(ec - SIGMA))
    assert errs["kl"] == pytest.approx(gaussian_kl(em, ec, MEAN, SIGMA))
    assert errs["w2"] == pytest.approx(gaussian_w2(em, ec, MEAN, SIGMA))


# ---------------------------------------------------------------- autocorrelation, ESS, R-hat


def test_autocorrelation_of_ar1_decays_geometrically() -> None:
    x = _ar1(0.8, 200_000, seed=3)[0]
    ac = autocorrelation(x)
    assert ac[0] == 1.0
    # Bartlett: sd of the lag-k sample autocorrelation of AR(1) is about sqrt((1+ρ²)/(1−ρ²)/n) <= 0.005
    # here; 5 sd is a deterministic-seed sanity bound, not a tuned tolerance.
    np.testing.assert_allclose(ac[1:6], 0.8 ** np.arange(1, 6), atol=0.025)


def test_autocorrelation_rejects_constant_and_short() -> None:
    with pytest.raises(ParameterError, match="constant"):
        autocorrelation(np.ones(10))
    with pytest.raises(ParameterError, match="at least 2 draws"):
        autocorrelation(np.ones(1))


def _sokal_band(ess_hat: float, window: int, truth: float, n: int, z: float) -> tuple[float, float]:
    """Relative ESS error and its allowed bound z·sd, sd from Sokal's var(τ̂)/τ² ≈ 2(2M+1)/n."""
    return abs(ess_hat / truth - 1.0), z * math.sqrt(2.0 * (2 * window + 1) / n)


@pytest.mark.statistical
@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_ess_of_ar1_matches_theory(rho: float) -> None:
    """H0: the ESS estimate of n stationary AR(1) draws is n(1−ρ)/(1+ρ) up to its sampling error.

    alpha 0.01 family-wise over seeds 0..9 (Bonferroni: each seed at 0.001, two-sided z = 3.29).
    The sampling error is Sokal's asymptotic var(τ̂)/τ² ≈ 2(2M+1)/n for a window-M estimator
    (Sokal 1997, eq. 3.19), with M the lag where this Geyer estimator truncated its sum.
    """
    n, seeds = 20_000, range(10)
    z = scipy.stats.norm.ppf(1 - 0.01 / (2 * len(seeds)))
    truth = n * (1 - rho) / (1 + rho)
    for seed in seeds:
        est, window = _geyer(_ar1(rho, n, seed))
        err, bound = _sokal_band(est, window, truth, n, z)
        assert err <= bound, f"seed {seed}: ESS {est:.1f} vs theory {truth:.1f}: rel. error {err:.3f} > {bound:.3f}"
        assert ess(_ar1(rho, n, seed)[0]) == est  # the public function is the same estimator


@pytest.mark.statistical
def test_multichain_ess_of_ar1_matches_theory() -> None:
    """H0: ESS of 4 stationary AR(1) chains (ρ = 0.7) is chains·n(1−ρ)/(1+ρ) up to Sokal's sampling error.

    alpha 0.01 family-wise over seeds 100..109 (Bonferroni), as in the single-chain test.
    """
    rho, n, chains, seeds = 0.7, 5_000, 4, range(100, 110)
    z = scipy.stats.norm.ppf(1 - 0.01 / (2 * len(seeds)))
    truth = chains * n * (1 - rho) / (1 + rho)
    for seed in seeds:
        est, window = _geyer(_ar1(rho, n, seed, chains))
        err, bound = _sokal_band(est, window, truth, chains * n, z)
        assert err <= bound, f"seed {seed}: ESS {est:.1f} vs theory {truth:.1f}: rel. error {err:.3f} > {bound:.3f}"


@pytest.mark.statistical
@pytest.mark.slow
def test_ess_band_false_alarm_rate_over_many_seeds(record_property) -> None:  # type: ignore[no-untyped-def]
    """H0: with per-seed level 0.01 (z = 2.576), the Sokal band's miss rate over 300 seeds is <= 0.01.

    One-sided exact binomial test at alpha 0.01; seeds 1000..1299; ρ = 0.9, n = 20 000.
    """
    rho, n, seeds = 0.9, 20_000, range(1000, 1300)
    z = scipy.stats.norm.ppf(1 - 0.01 / 2)
    truth = n * (1 - rho) / (1 + rho)
    misses = 0
    for seed in seeds:
        est, window = _geyer(_ar1(rho, n, seed))
        err, bound = _sokal_band(est, window, truth, n, z)
        misses += err > bound
    p = scipy.stats.binomtest(misses, len(seeds), 0.01, alternative="greater").pvalue
    record_property("misses", f"{misses}/{len(seeds)}")
    assert p >= 0.01, f"{misses}/{len(seeds)} seeds outside the band (p={p:.3g})"


def test_ess_shapes_and_variants() -> None:
    x = _ar1(0.5, 2_000, seed=7, chains=4)
    three = np.stack([x, -x, 2 * x], axis=-1)  # (chains, draws, d=3): per-coordinate ESS
    per = ess(three)
    assert per.shape == (3,)
    np.testing.assert_allclose(per, ess(x))
    for kw in ({"split": True}, {"rank_normalize": True}, {"split": True, "rank_normalize": True}):
        e = ess(x, **kw)
        assert 0 < e < x.size * math.log10(x.size)
    assert ess(np.ones((2, 10))) == 20.0
    # Chains stuck at different places carry far less information than their draw count.
    stuck = x + np.arange(4)[:, None] * 3.0
    assert ess(stuck) < 0.1 * ess(x)


@pytest.mark.parametrize("bad", [np.zeros((2, 3, 4, 5)), np.zeros(3), np.array([1.0, np.inf, 2.0, 3.0, 4.0])])
def test_ess_rejects_bad_input(bad: np.ndarray) -> None:
    with pytest.raises(ParameterError, match="x must"):
        ess(bad)


@pytest.mark.statistical
def test_split_rhat_of_mixed_chains_below_exact_null_quantile() -> None:
    """H0: the 4 chains are iid N(0,1) (perfectly mixed); alpha 0.01; seed 11.

    For iid normal draws in m split chains of length n, n·var(chain means)/mean(within var) is
    exactly F(m−1, m(n−1)), so R̂² = (n−1)/n + F/n; its 99% quantile is the threshold.
    """
    chains, draws = 4, 1_000
    x = np.random.default_rng(11).standard_normal((chains, draws))
    m, n = 2 * chains, draws // 2
    threshold = math.sqrt((n - 1) / n + scipy.stats.f.ppf(0.99, m - 1, m * (n - 1)) / n)
    r = split_rhat(x)
    assert 1.0 - 1e-3 < r < threshold
    assert split_rhat(x, rank_normalize=True) < 1.01  # Vehtari et al.'s recommended cut


def test_split_rhat_flags_chains_with_different_means() -> None:
    x = np.random.default_rng(12).standard_normal((4, 1_000))
    x[:2] += 2.0  # two chains centred 2 sd away from the other two
    assert split_rhat(x) > 1.1
    assert split_rhat(x, rank_normalize=True) > 1.1
    # A trend inside each chain is what splitting catches even when chain means agree.
    trend = np.random.default_rng(13).standard_normal((4, 1_000)) + np.linspace(-3, 3, 1_000)
    assert split_rhat(trend) > 1.1


def test_split_rhat_shapes_and_errors() -> None:
    x = np.random.default_rng(14).standard_normal((3, 100, 2))
    assert split_rhat(x).shape == (2,)
    with pytest.raises(ParameterError, match="constant chains"):
        split_rhat(np.ones((2, 10)))
    with pytest.raises(ParameterError, match="at least 4 draws"):
        split_rhat(np.zeros((2, 3)))
