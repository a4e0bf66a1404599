"""Tests of genbench.testing.sbc: simulation-based calibration of MALA on a conjugate Gaussian model.

Every statistical test states H0, alpha and its seed; seeds go through ``offset_seed``, nothing is
retried. Must-reject assertions declare the power of the χ² rank test (``_sbc_power``'s noncentral χ²)
for the broken sampler's rank law, computed by ``_rank_law`` under one approximation: the L kept draws
are treated as independent draws of the sampler's stationary law (thinned by 10, their
autocorrelation is small; the slow test measures the false-alarm rate this leaves).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.stats
import torch

from genbench.errors import CheckFailed, ParameterError
from genbench.langevin.posterior import mala_posterior_sampler, ula_posterior_sampler
from genbench.testing import offset_seed
from genbench.testing.sbc import (
    _sbc_power,
    ConjugateGaussianModel,
    assert_sbc,
    check_sbc,
    sbc_detectable_effect,
    sbc_ranks,
    sbc_required_samples,
)

MODEL = ConjugateGaussianModel(prior_mean=0.5, prior_sd=2.0, noise_sd=1.0, n_obs=4)
VAR = MODEL.posterior_sd**2  # every step size below is stated relative to the posterior variance
ALPHA = 0.01  # level of the checks in must-reject assertions
ALPHA_KEEP = 1e-4  # level of each must-not-reject assertion
S, L, BINS = 1000, 99, 10
PLAN_DRAWS, PLAN_SEED = 2**18, 99_999  # planning only: not re-rolled


def _rank_law(sampler_mean, sampler_sd: float) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Binned rank probabilities of θ among L independent draws of N(sampler_mean(y), sampler_sd²), (θ, y)
    from MODEL, by 2¹⁸ Monte Carlo draws; returned with their standard errors."""
    theta, y = MODEL.simulate(PLAN_DRAWS, torch.Generator().manual_seed(PLAN_SEED))
    g = scipy.stats.norm.cdf((theta.numpy() - sampler_mean(y).numpy()) / sampler_sd)  # P(one draw < θ)
    edges = np.arange(0, L + 2, (L + 1) // BINS) - 1  # ranks 0..L in BINS bins of (L+1)/BINS
    per = np.diff(scipy.stats.binom.cdf(edges[None, :], L, g[:, None]), axis=1)
    return per.mean(axis=0), per.std(axis=0) / math.sqrt(PLAN_DRAWS)


def _power_and_shape(p: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """χ²-test power at S, ALPHA for Cohen's w of ``p`` (each |pᵢ − 1/B| shrunk by 5 Monte Carlo SE), and
    P(count in the two end bins < count in the two middle bins) by the normal approximation."""
    dev = np.maximum(np.abs(p - 1 / BINS) - 5 * se, 0.0)
    w = math.sqrt(BINS * float(np.sum(dev**2)))
    ends, mid = p[[0, -1]].sum(), p[4:6].sum()
    sd = math.sqrt(S * (ends + mid - (mid - ends) ** 2))
    return _sbc_power(w, S, BINS, ALPHA), float(scipy.stats.norm.cdf(S * (mid - ends) / sd))


def test_posterior_is_the_conjugate_formula() -> None:
    """σ_n² = 1/(1/τ² + m/s²) and μ_n = σ_n²(μ₀/τ² + Σy/s²), checked against a direct computation."""
    y = torch.tensor([[1.0, 2.0, 0.0, 3.0]], dtype=torch.float64)
    prec = 1 / 4 + 4 / 1
    assert MODEL.posterior_sd == pytest.approx(1 / math.sqrt(prec), rel=1e-15)
    assert float(MODEL.posterior_mean(y)[0]) == pytest.approx((0.5 / 4 + 6.0) / prec, rel=1e-15)
    post = MODEL.posterior(y)
    x = torch.tensor([[0.7]], dtype=torch.float64)
    assert float(post.log_prob(x)[0]) == pytest.approx(
        scipy.stats.norm(float(post.mean[0, 0]), MODEL.posterior_sd).logpdf(0.7), rel=1e-12
    )


def test_ranks_count_draws_below_theta() -> None:
    theta = torch.tensor([0.0, 1.0], dtype=torch.float64)
    draws = torch.tensor([[-1.0, 1.0, 2.0], [0.0, 0.5, 0.9]], dtype=torch.float64)
    assert sbc_ranks(theta, draws, torch.Generator().manual_seed(0)).tolist() == [1, 3]


@pytest.mark.statistical(alpha=ALPHA_KEEP)
def test_mala_is_calibrated(record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: SBC ranks of MALA (μ = σ_n², 99 draws thinned by 10, started at an exact posterior draw) are
    uniform; S = 1000 replications, 10 bins, alpha = 1e-4, seed offset_seed(0). Must not reject."""
    res = record_check(check_sbc(mala_posterior_sampler(MODEL, VAR), MODEL, replications=S, alpha=ALPHA_KEEP,
                                 seed=offset_seed(0)))
    assert res.passed, res.message()
    assert sum(res.details["rank_counts"]) == 1000


def test_wrong_likelihood_variance_is_detected(record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: uniform ranks; the sampler's model uses noise sd 1.5 instead of 1 (posterior too wide);
    S = 1000, alpha = 0.01, seed offset_seed(0). Must reject, with a ∩-shaped rank histogram; the power of
    both assertions for the wrong posterior's rank law (``_rank_law``) is declared."""
    wrong = dataclasses.replace(MODEL, noise_sd=1.5)
    power, shape = _power_and_shape(*_rank_law(wrong.posterior_mean, wrong.posterior_sd))
    record_check.declare(power=[power, shape])
    assert power > 0.99999 and shape > 0.99999
    res = record_check(check_sbc(mala_posterior_sampler(wrong, VAR), MODEL, replications=S, alpha=ALPHA,
                                 seed=offset_seed(0)))
    assert not res.passed, res.message()
    counts = np.array(res.details["rank_counts"])
    assert counts[[0, -1]].sum() < counts[4:6].sum()  # too wide: the truth sits in the middle too often


def test_ula_with_large_step_is_detected(record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: uniform ranks; ULA with μ = σ_n² has stationary variance σ_n²/(1 − μ/(2σ_n²)) = 2σ_n² (biased);
    S = 1000, alpha = 0.01, seed offset_seed(0). Must reject; the power for that stationary law's rank
    law is declared."""
    power, _ = _power_and_shape(*_rank_law(MODEL.posterior_mean, math.sqrt(2.0) * MODEL.posterior_sd))
    record_check.declare(power=power)
    assert power > 0.99999
    with pytest.raises(CheckFailed, match="REJECTED"):
        assert_sbc(ula_posterior_sampler(MODEL, VAR), MODEL, replications=S, alpha=ALPHA, seed=offset_seed(0))


def test_planning_twins() -> None:
    """required_replications(detectable_effect(S)) returns S; the noncentral-χ² power is reproduced."""
    for s in (200, 1000, 5000):
        w = sbc_detectable_effect(s, bins=10, alpha=ALPHA, power=0.8)
        assert sbc_required_samples(w, bins=10, alpha=ALPHA, power=0.8) in (s, s + 1)
        crit = scipy.stats.chi2.isf(ALPHA, 9)
        assert scipy.stats.ncx2.sf(crit, 9, s * w * w) == pytest.approx(0.8, abs=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"replications": 20}, "replications must be >= 5 \\* bins"),
        ({"bins": 7}, "bins must divide L \\+ 1"),
        ({"alpha": 0.0}, "alpha must be in"),
    ],
)
def test_bad_input_names_the_parameter(kwargs: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        check_sbc(mala_posterior_sampler(MODEL, VAR, draws=9, thin=1), MODEL, **kwargs)


def test_bad_model_and_sampler_output() -> None:
    with pytest.raises(ParameterError, match="prior_sd"):
        ConjugateGaussianModel(prior_sd=0.0)
    with pytest.raises(ParameterError, match="sampler must return a tensor of shape"):
        check_sbc(lambda y, g: torch.zeros(3, 9), MODEL, replications=100)
    with pytest.raises(ParameterError, match="model must be"):
        check_sbc(mala_posterior_sampler(MODEL, VAR), "model")  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.statistical(alpha=0.001)
def test_false_alarm_and_detection_rates() -> None:
    """H0 rate: MALA SBC (μ = σ_n², thin 10, S = 500, alpha = 0.05, seeds offset_seed(3000..3199)) rejects with rate
    ≤ 0.05 — one-sided exact binomial test at 0.001 (thinned MCMC draws are only nearly independent, so
    this also checks that thinning by 10 suffices). Prints the rate with its CP 95% interval and the
    detection rates of ULA μ = 0.5σ_n² and of noise sd 1.2 at S = 500."""
    a, seeds = 0.05, [offset_seed(s) for s in range(3000, 3200)]
    ns = len(seeds)
    fa = sum(not check_sbc(mala_posterior_sampler(MODEL, VAR), MODEL, replications=500, alpha=a, seed=s).passed
             for s in seeds)
    det_ula = sum(
        not check_sbc(ula_posterior_sampler(MODEL, 0.5 * VAR), MODEL, replications=500, alpha=a, seed=s).passed
        for s in seeds
    )
    wrong = dataclasses.replace(MODEL, noise_sd=1.2)
    det_lik = sum(
        not check_sbc(mala_posterior_sampler(wrong, VAR), MODEL, replications=500, alpha=a, seed=s).passed
        for s in seeds
    )
    for label, k in (("false_alarm", fa), ("ula_0.5var_detect", det_ula), ("noise_sd_1.2_detect", det_lik)):
        ci = scipy.stats.binomtest(k, ns).proportion_ci(method="exact")
        print(f"\nsbc {label}: {k}/{ns} = {k / ns:.4f} CI95 [{ci.low:.4f}, {ci.high:.4f}] (alpha={a}, S=500)")
    assert scipy.stats.binomtest(fa, ns, a, alternative="greater").pvalue >= 0.001


def test_underpowered_assertion_raises_instead_of_passing() -> None:
    """assert_sbc(effect=w) refuses replications below sbc_required_samples(w)."""
    needed = sbc_required_samples(0.1, alpha=ALPHA, power=0.8)
    with pytest.raises(ParameterError, match=f"replications >= {needed} is needed"):
        assert_sbc(mala_posterior_sampler(MODEL, VAR), MODEL, replications=needed - 1, alpha=ALPHA, effect=0.1)
