"""Tests of genbench.stats: moments, Gaussian KL/W2 closed forms, autocorrelation, ESS and split-R-hat.

Every statistical test states H0, alpha (declared to genbench's pytest plugin) and its seeds, which go
through ``offset_seed`` (``GENBENCH_SEED_OFFSET`` re-rolls them); nothing is retried.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import scipy.signal
import scipy.stats
import torch

from gaussian_draws import gaussian_draws
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
from genbench.testing import offset_seed

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
    x = gaussian_draws(0, 1000, MEAN, SIGMA)  # the identities below hold for any draws
    errs = moment_errors(x, MEAN, SIGMA)
    em, ec = empirical_moments(x)
    assert errs["mean_error"] == pytest.approx(np.linalg.norm(em - MEAN))
    assert errs["cov_error_fro"] == pytest.approx(np.linalg.norm(ec - SIGMA))
    assert errs["kl"] == pytest.approx(gaussian_kl(em, ec, MEAN, SIGMA))
    assert errs["w2"] == pytest.approx(gaussian_w2(em, ec, MEAN, SIGMA))


# ---------------------------------------------------------------- autocorrelation, ESS, R-hat


# Bartlett's asymptotic variance of the lag-k sample autocorrelation of AR(1) (Box, Jenkins & Reinsel,
# eq. 2.1.15): var r_k ≈ [(1 + ρ²)(1 − ρ^{2k})/(1 − ρ²) − 2kρ^{2k}] / n.
ACF_RHO, ACF_N, ACF_LAGS, ACF_ALPHA = 0.8, 200_000, 5, 1e-6


def _bartlett_sd(rho: float, n: int, k: np.ndarray) -> np.ndarray:
    return np.sqrt(((1 + rho**2) * (1 - rho ** (2 * k)) / (1 - rho**2) - 2 * k * rho ** (2 * k)) / n)


def _acf_z(acf: Any, seed: int) -> np.ndarray:
    """|r_k − ρᵏ| / Bartlett sd at lags 1..5 of ``acf`` on 3 + stationary AR(1) draws (ρ = 0.8, n = 200 000).

    The offset 3 changes no autocorrelation, but an estimator that forgets to centre sees it.
    """
    x = 3.0 + _ar1(ACF_RHO, ACF_N, seed=seed)[0]
    ac = acf(x)
    assert ac[0] == pytest.approx(1.0)
    k = np.arange(1, ACF_LAGS + 1)
    return np.abs(ac[1 : ACF_LAGS + 1] - ACF_RHO**k) / _bartlett_sd(ACF_RHO, ACF_N, k)


def _acf_critical(alpha: float) -> float:
    return float(scipy.stats.norm.isf(alpha / (2 * ACF_LAGS)))  # two-sided, Bonferroni over the lags


@pytest.mark.statistical(alpha=ACF_ALPHA)
def test_autocorrelation_of_ar1_decays_geometrically() -> None:
    """H0: the sample autocorrelations of n = 200 000 stationary AR(1) draws (ρ = 0.8) at lags 1..5 are
    ρ^k up to Bartlett's asymptotic sd; two-sided z-tests, alpha 1e-6 (Bonferroni over the 5 lags);
    seed offset_seed(3). The next test shows it rejects a lag off by one and a missing centring; the
    slow one below measures its false-alarm rate."""
    z = _acf_z(autocorrelation, offset_seed(3))
    assert np.all(z <= _acf_critical(ACF_ALPHA)), z


def _acf_lag_off_by_one(x: np.ndarray) -> np.ndarray:
    ac = autocorrelation(x)
    return np.concatenate([ac[:1], ac[2:], [0.0]])  # r_{k+1} reported as lag k


def _acf_not_centred(x: np.ndarray) -> np.ndarray:
    n = x.shape[-1]  # genbench's autocovariance, the mean not removed
    f = np.fft.rfft(x, n=2 * n)
    acov = np.fft.irfft(f * np.conjugate(f), n=2 * n)[:n]
    return acov / acov[0]


@pytest.mark.statistical(power=[1 - 1e-12, 1 - 1e-12])
@pytest.mark.parametrize("mutant", [_acf_lag_off_by_one, _acf_not_centred], ids=["lag_off_by_one", "not_centred"])
def test_autocorrelation_check_rejects_broken_estimators(mutant: Any) -> None:
    """Must reject: ρ^{k+1} in place of ρᵏ is 0.16ρᵏ⁻¹ off, 50-100 Bartlett sd; without centring the
    offset 3 (9 times the variance) pulls every r_k to about 0.9 + 0.1ρᵏ, over 100 sd (seed offset_seed(4)).
    Misses below 1e-12 (far beyond 7 sd)."""
    z = _acf_z(mutant, offset_seed(4))
    assert np.any(z > _acf_critical(ACF_ALPHA)), z
    assert np.max(z) > 20  # not a near miss: the margin that makes the declared power conservative


@pytest.mark.statistical(alpha=0.001)
@pytest.mark.slow
def test_autocorrelation_check_false_alarm_rate_over_many_seeds() -> None:
    """H0: at per-seed level 0.01 the ACF z-test (Bartlett's asymptotic sd) rejects <= 1% of 300 seeds
    offset_seed(2000..2299). One-sided exact binomial test at 0.001."""
    crit = _acf_critical(0.01)
    misses = sum(bool(np.any(_acf_z(autocorrelation, offset_seed(s)) > crit)) for s in range(2000, 2300))
    p = scipy.stats.binomtest(misses, 300, 0.01, alternative="greater").pvalue
    assert p >= 0.001, f"{misses}/300 seeds rejected (p={p:.3g})"


def test_autocorrelation_rejects_constant_and_short() -> None:
    with pytest.raises(ParameterError, match="constant"):
        autocorrelation(np.ones(10))
    with pytest.raises(ParameterError, match="at least 2 draws"):
        autocorrelation(np.ones(1))


def _sokal_band(ess_hat: float, window: int, truth: float, n: int, z: float) -> tuple[float, float]:
    """Relative ESS error and its allowed bound z·sd, sd from Sokal's var(τ̂)/τ² ≈ 2(2M+1)/n."""
    return abs(ess_hat / truth - 1.0), z * math.sqrt(2.0 * (2 * window + 1) / n)


# Each ESS test is one assertion at ESS_ALPHA, Bonferroni over its seeds (two-sided z per seed).
ESS_ALPHA, ESS_SEEDS = 5e-5, 10


@pytest.mark.statistical(alpha=ESS_ALPHA)
@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_ess_of_ar1_matches_theory(rho: float) -> None:
    """H0: the ESS estimate of n = 20 000 stationary AR(1) draws is n(1−ρ)/(1+ρ) up to its sampling error.

    alpha 5e-5 over 10 seeds offset_seed(0..9) (Bonferroni: two-sided z = 4.56 each). The sampling error
    is Sokal's asymptotic var(τ̂)/τ² ≈ 2(2M+1)/n for a window-M estimator (Sokal 1997, eq. 3.19), with
    M the lag where this Geyer estimator truncated its sum; the per-seed band's false-alarm rate is
    measured in the slow test below. Detects an ESS that ignores autocorrelation (ρ = 0.9: 19x too large).
    """
    n = 20_000
    z = scipy.stats.norm.isf(ESS_ALPHA / (2 * ESS_SEEDS))
    truth = n * (1 - rho) / (1 + rho)
    for seed in map(offset_seed, range(ESS_SEEDS)):
        est, window = _geyer(_ar1(rho, n, seed))
        err, bound = _sokal_band(est, window, truth, n, z)
        assert err <= bound, f"seed {seed}: ESS {est:.1f} vs theory {truth:.1f}: rel. error {err:.3f} > {bound:.3f}"
        assert ess(_ar1(rho, n, seed)[0]) == est  # the public function is the same estimator


@pytest.mark.statistical(alpha=ESS_ALPHA)
def test_multichain_ess_of_ar1_matches_theory() -> None:
    """H0: ESS of 4 stationary AR(1) chains (ρ = 0.7) is chains·n(1−ρ)/(1+ρ) up to Sokal's sampling error.

    alpha 5e-5 over seeds offset_seed(100..109) (Bonferroni), as in the single-chain test.
    """
    rho, n, chains = 0.7, 5_000, 4
    z = scipy.stats.norm.isf(ESS_ALPHA / (2 * ESS_SEEDS))
    truth = chains * n * (1 - rho) / (1 + rho)
    for seed in map(offset_seed, range(100, 100 + ESS_SEEDS)):
        est, window = _geyer(_ar1(rho, n, seed, chains))
        err, bound = _sokal_band(est, window, truth, chains * n, z)
        assert err <= bound, f"seed {seed}: ESS {est:.1f} vs theory {truth:.1f}: rel. error {err:.3f} > {bound:.3f}"


@pytest.mark.statistical(power=[1 - 1e-12, 1 - 1e-12])
@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_ess_band_rejects_an_ess_that_ignores_autocorrelation(rho: float) -> None:
    """Must reject: an ESS that ignores autocorrelation (n draws count as n) is (1+ρ)/(1−ρ) = 3x or 19x
    the truth, against a band of relative half-width 4.56·sd, sd = √(2(2M+1)/n) <= 0.05 here (seed
    offset_seed(5)): 40 or more sd away, misses below 1e-12."""
    n = 20_000
    z = scipy.stats.norm.isf(ESS_ALPHA / (2 * ESS_SEEDS))
    truth = n * (1 - rho) / (1 + rho)
    x = _ar1(rho, n, offset_seed(5))
    _, window = _geyer(x)
    err, bound = _sokal_band(float(n), window, truth, n, z)  # the broken estimator's answer: n
    assert err > bound and err / (bound / z) > 20, (err, bound)  # >= 20 sd: the declared miss rate is conservative


# The configurations the default run checks: (ρ, draws per chain, chains).
ESS_CONFIGS = [(0.0, 20_000, 1), (0.5, 20_000, 1), (0.9, 20_000, 1), (0.7, 5_000, 4)]


@pytest.mark.statistical(alpha=0.001)
@pytest.mark.slow
@pytest.mark.parametrize(("rho", "n", "chains"), ESS_CONFIGS)
def test_ess_band_false_alarm_rate_over_many_seeds(rho: float, n: int, chains: int, record_property) -> None:  # type: ignore[no-untyped-def]
    """H0: with per-seed level 0.01 (z = 2.576), the Sokal band's miss rate over 300 seeds is <= 0.01,
    at each configuration the default run uses. One-sided exact binomial test at alpha 0.001 each;
    seeds offset_seed(1000..1299)."""
    seeds = [offset_seed(s) for s in range(1000, 1300)]
    z = scipy.stats.norm.ppf(1 - 0.01 / 2)
    truth = chains * n * (1 - rho) / (1 + rho)
    misses = 0
    for seed in seeds:
        est, window = _geyer(_ar1(rho, n, seed, chains))
        err, bound = _sokal_band(est, window, truth, chains * n, z)
        misses += err > bound
    p = scipy.stats.binomtest(misses, len(seeds), 0.01, alternative="greater").pvalue
    record_property("misses", f"{misses}/{len(seeds)}")
    assert p >= 0.001, f"{misses}/{len(seeds)} seeds outside the band (p={p:.3g})"


def test_ess_shapes_and_variants() -> None:
    """Per-coordinate shapes, and what each variant changes: exact identities, no randomness involved."""
    x = _ar1(0.5, 2_001, seed=7, chains=4)
    three = np.stack([x, -x, 2 * x], axis=-1)  # (chains, draws, d=3): per-coordinate ESS
    per = ess(three)
    assert per.shape == (3,)
    np.testing.assert_allclose(per, ess(x))
    # split=True is the plain estimator on the 8 half-chains (the odd middle draw dropped).
    halves = np.concatenate([x[:, :1000], x[:, 1001:]], axis=0)
    assert ess(x, split=True) == ess(halves)
    # rank_normalize=True sees only ranks: any increasing map of the draws leaves it unchanged,
    # while the plain estimator changes (exp makes the marginal skewed).
    assert ess(np.exp(x), rank_normalize=True) == ess(x, rank_normalize=True)
    assert ess(np.exp(x)) != ess(x)
    assert ess(x, split=True, rank_normalize=True) == ess(halves, rank_normalize=True)
    assert ess(np.ones((2, 10))) == 20.0
    # Chains stuck 3 sd apart carry far less information than their draw count: the between-chain
    # variance (15) dwarfs the within (1), so the pooled autocorrelations stay near 1 for thousands of lags.
    stuck = x + np.arange(4)[:, None] * 3.0
    assert ess(stuck) < 0.1 * ess(x)


@pytest.mark.parametrize("bad", [np.zeros((2, 3, 4, 5)), np.zeros(3), np.array([1.0, np.inf, 2.0, 3.0, 4.0])])
def test_ess_rejects_bad_input(bad: np.ndarray) -> None:
    with pytest.raises(ParameterError, match="x must"):
        ess(bad)


# Split-R̂ of m split chains of n draws: R̂² = (n−1)/n + F/n with F = B/W, B = n·var(half-chain means)
# and W = mean within-half variance, the one-way ANOVA F statistic (BDA3 eq. 11.4).
RHAT_CHAINS, RHAT_DRAWS, RHAT_ALPHA = 4, 1_000, 1e-4
RHAT_M, RHAT_N = 2 * RHAT_CHAINS, RHAT_DRAWS // 2
# Rank-normalised R̂ is the larger of two such statistics on normal scores (≈ F under H0): P(R̂ ≥ 1.01).
RANK_ALPHA = 2 * float(scipy.stats.f.sf(RHAT_N * (1.01**2 - (RHAT_N - 1) / RHAT_N), RHAT_M - 1, RHAT_M * (RHAT_N - 1)))


def _rhat_miss_bound(offsets: np.ndarray, within_extra: float, cut: float = 1.1) -> float:
    """Upper bound on P(split-R̂ ≤ cut) for N(0,1) draws plus fixed half-chain offsets and a fixed within-half
    spread: B·(m−1) is noncentral χ²(m−1, n·Σ(offset − mean)²), W·m(n−1) is at most noncentral
    χ²(m(n−1), m·n·within_extra); R̂ ≤ cut needs B ≤ c·w0 or W ≥ w0 (union bound, w0 = 1 + 2·within_extra + 0.5)."""
    m, n = RHAT_M, RHAT_N
    c = n * (cut**2 - (n - 1) / n)  # R̂ ≤ cut ⇔ F ≤ c
    lam_b = n * float(np.sum((offsets - offsets.mean()) ** 2))
    w0 = 1.5 + 2 * within_extra
    dof_w = m * (n - 1)
    p_b = scipy.stats.ncx2.cdf(c * w0 * (m - 1), m - 1, lam_b)
    lam_w = m * n * within_extra  # Σ over the halves of Σᵢ (tᵢ − t̄)² for the fixed within-half spread
    p_w = scipy.stats.ncx2.sf(w0 * dof_w, dof_w, lam_w) if within_extra else scipy.stats.chi2.sf(w0 * dof_w, dof_w)
    return float(p_b + p_w)


# Two chains shifted by 2 sd: half-chain offsets (2, 2, 2, 2, 0, 0, 0, 0). A linear trend from −3 to 3
# inside every chain: half-chain offsets ±1.5, within-half spread var(linspace over 3 units) ≈ 0.75.
_TREND = np.linspace(-3, 3, RHAT_DRAWS)
SHIFT_MISS = _rhat_miss_bound(np.repeat([2.0, 2.0, 0.0, 0.0], 2), 0.0)
TREND_MISS = _rhat_miss_bound(np.tile([_TREND[:RHAT_N].mean(), _TREND[RHAT_N:].mean()], RHAT_CHAINS),
                              float(np.var(_TREND[:RHAT_N])))


def test_split_rhat_is_the_anova_f_identity() -> None:
    """split-R̂² = (n−1)/n + F/n exactly, F the one-way ANOVA statistic of the half-chains (scipy.stats.f_oneway)."""
    x = np.random.default_rng(10).standard_normal((RHAT_CHAINS, RHAT_DRAWS)) + np.arange(RHAT_CHAINS)[:, None] * 0.05
    halves = np.concatenate([x[:, :RHAT_N], x[:, RHAT_N:]], axis=0)
    f = scipy.stats.f_oneway(*halves).statistic
    assert split_rhat(x) == pytest.approx(math.sqrt((RHAT_N - 1) / RHAT_N + f / RHAT_N), rel=1e-12)
    # rank_normalize=True depends on ranks only: invariant under an increasing map of the draws.
    assert split_rhat(np.exp(x), rank_normalize=True) == split_rhat(x, rank_normalize=True)


@pytest.mark.statistical(alpha=[RHAT_ALPHA, RANK_ALPHA])
def test_split_rhat_of_mixed_chains_below_exact_null_quantile() -> None:
    """H0: the 4 chains are iid N(0,1) (perfectly mixed); seed offset_seed(11).

    For iid normal draws, F = B/W is exactly F(m−1, m(n−1)), so R̂ is below the root of
    (n−1)/n + F_{1−α}/n with probability 1 − α: alpha 1e-4. The rank-normalised R̂ (Vehtari et al.
    2021) stays below their recommended cut 1.01: alpha RANK_ALPHA ≈ 1.3e-13 (F approximation on
    normal scores, for bulk and tail). Detects a between-chain variance counted twice or not at all.
    """
    x = np.random.default_rng(offset_seed(11)).standard_normal((RHAT_CHAINS, RHAT_DRAWS))
    m, n = RHAT_M, RHAT_N
    threshold = math.sqrt((n - 1) / n + scipy.stats.f.isf(RHAT_ALPHA, m - 1, m * (n - 1)) / n)
    assert split_rhat(x) < threshold
    assert split_rhat(x, rank_normalize=True) < 1.01


@pytest.mark.statistical(alpha=0.001)
@pytest.mark.slow
def test_split_rhat_false_alarm_rate_over_many_seeds() -> None:
    """H0: for 4 iid N(0, 1) chains, R̂ exceeds its exact F-null quantile at level 0.01 in <= 1% of 1000
    seeds offset_seed(3000..3999). One-sided exact binomial test at 0.001."""
    m, n = RHAT_M, RHAT_N
    threshold = math.sqrt((n - 1) / n + scipy.stats.f.isf(0.01, m - 1, m * (n - 1)) / n)
    misses = sum(split_rhat(np.random.default_rng(offset_seed(s)).standard_normal((RHAT_CHAINS, RHAT_DRAWS))) >= threshold
                 for s in range(3000, 4000))
    p = scipy.stats.binomtest(int(misses), 1000, 0.01, alternative="greater").pvalue
    assert p >= 0.001, f"{misses}/1000 seeds above the 1% quantile (p={p:.3g})"


@pytest.mark.statistical(power=[1 - SHIFT_MISS, 1 - TREND_MISS])
def test_split_rhat_flags_chains_with_different_means() -> None:
    """Must reject (R̂ > 1.1): two of four chains shifted by 2 sd (seed offset_seed(12)); a trend from −3 to 3
    inside every chain, so that chain means agree and only splitting sees it (seed offset_seed(13)).
    Power for each from the exact noncentral χ² laws of B and W (union bound, ``_rhat_miss_bound``):
    misses below 1e-30."""
    assert SHIFT_MISS < 1e-30 and TREND_MISS < 1e-30
    x = np.random.default_rng(offset_seed(12)).standard_normal((RHAT_CHAINS, RHAT_DRAWS))
    x[:2] += 2.0
    assert split_rhat(x) > 1.1
    trend = np.random.default_rng(offset_seed(13)).standard_normal((RHAT_CHAINS, RHAT_DRAWS)) + _TREND
    assert split_rhat(trend) > 1.1


def test_split_rhat_shapes_and_errors() -> None:
    x = np.random.default_rng(14).standard_normal((3, 100, 2))
    assert split_rhat(x).shape == (2,)
    with pytest.raises(ParameterError, match="constant chains"):
        split_rhat(np.ones((2, 10)))
    with pytest.raises(ParameterError, match="at least 4 draws"):
        split_rhat(np.zeros((2, 3)))
