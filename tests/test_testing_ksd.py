"""Tests of genbench.testing.ksd: IMQ kernel Stein discrepancy, its exact Gaussian value, the wild
bootstrap tests (i.i.d. and Markov chain) and the ULA bias trace.

Every statistical test states H0, alpha and its seed; seeds go through ``offset_seed``, nothing is
retried. Must-not-reject assertions run at 1e-4 (with 19 999 bootstrap draws, enough to resolve it);
must-reject ones declare a normal-approximation power for the U-statistic (``_u_power``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from genbench.errors import CheckFailed, ParameterError
from genbench.langevin import theory
from genbench.langevin.mala import sample_mala
from genbench.langevin.ula import sample_ula
from genbench.stats import ess
from genbench.targets import Gaussian, from_log_prob, seed_target
from genbench.testing import offset_seed
from genbench.testing import ksd as ksd_module
from genbench.testing.ksd import (
    MIN_MARKOV_ESS,
    assert_ksd,
    check_ksd,
    gaussian_ksd_squared,
    kernel_stein_discrepancy,
    ksd_step_size_trace,
)

TARGET = seed_target()
M = TARGET.mean.numpy()
SIGMA = TARGET.cov.numpy()
ALPHA = 0.01  # level of the checks in must-reject assertions
ALPHA_KEEP = 1e-4  # level of each must-not-reject assertion
BOOT_KEEP = 19_999  # bootstrap draws resolving p < 1e-4 (the smallest p-value is 1/(B+1) = 5e-5)
STEPS = (0.001, 0.01, 0.05, 0.15)
PLAN_SEED = 99_999  # planning pilots only (not re-rolled)


def _u_power(q: Gaussian, n: int, n_boot: int = 999) -> float:
    """Normal-approximation power of check_ksd (Rademacher, level 0.01) against the Gaussian law q at n.

    The check rejects when n·V_n exceeds the bootstrap's (1 − 0.01) quantile; n·V_n = diag/n + (n − 1)·U_n
    with U_n ≈ N(KSD²(q), se²). A planning pilot of n draws of q (seed PLAN_SEED) gives se and the
    bootstrap's largest statistic and diagonal term; twice that largest statistic bounds the quantile.
    """
    x = q.sample(n, torch.Generator().manual_seed(PLAN_SEED))
    pts, score = ksd_module._points(x, TARGET)
    w = ksd_module._wild_weights(n, n_boot, "rademacher", 0.5, torch.Generator().manual_seed(PLAN_SEED), pts.device)
    total, diag, _, boot = ksd_module._stein_pass(pts, score, 1.0, -0.5, 1024, weights=w)
    crit = 2.0 * float(boot.max()) / n
    se = kernel_stein_discrepancy(x, TARGET).standard_error
    exact = gaussian_ksd_squared(TARGET, q.mean.numpy(), q.cov.numpy())
    u_needed = (crit - diag / n) / (n - 1)
    return float(scipy.stats.norm.cdf((exact - u_needed) / se))


def _brute_v(x: torch.Tensor, target, c: float, beta: float) -> float:  # type: ignore[no-untyped-def]
    """The Stein-kernel V-statistic by a double loop straight from the formula (Liu et al. 2016, eq. 6)."""
    s = target.score(x)
    d = x.shape[1]
    tot = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[0]):
            r = x[i] - x[j]
            q = c * c + float(r @ r)
            tot += (
                float(s[i] @ s[j]) * q**beta
                + 2 * beta * q ** (beta - 1) * float((s[j] - s[i]) @ r)
                - 2 * beta * d * q ** (beta - 1)
                - 4 * beta * (beta - 1) * q ** (beta - 2) * float(r @ r)
            )
    return tot / x.shape[0] ** 2


@pytest.mark.parametrize("c, beta, chunk", [(1.0, -0.5, 1024), (2.0, -0.3, 7)])
def test_stein_kernel_matches_the_formula(c: float, beta: float, chunk: int) -> None:
    x = TARGET.sample(40, torch.Generator().manual_seed(0))
    est = kernel_stein_discrepancy(x, TARGET, c=c, beta=beta, chunk_size=chunk)
    assert est.v_statistic == pytest.approx(_brute_v(x, TARGET, c, beta), rel=1e-10)


def test_score_from_autograd_gives_the_same_ksd() -> None:
    """KSD needs only the score: an autograd target built from the log-density gives the same numbers."""
    x = TARGET.sample(300, torch.Generator().manual_seed(1))
    auto = from_log_prob(TARGET.log_prob, 2)
    a = kernel_stein_discrepancy(x, TARGET)
    b = kernel_stein_discrepancy(x, auto)
    assert a.u_statistic == pytest.approx(b.u_statistic, rel=1e-9, abs=1e-12)


def test_exact_gaussian_ksd_is_zero_only_at_the_target() -> None:
    assert gaussian_ksd_squared(TARGET, M, SIGMA) < 1e-12
    assert gaussian_ksd_squared(TARGET, M + 0.1, SIGMA) > 1e-4
    assert gaussian_ksd_squared(TARGET, M, 1.2 * SIGMA) > 1e-3


@pytest.mark.statistical(alpha=5e-5)
@pytest.mark.parametrize("shift, scale", [(0.1, 1.0), (0.0, 1.2)])
def test_u_statistic_is_unbiased_for_the_exact_value(shift: float, scale: float) -> None:
    """H0: E[U-statistic] = exact KSD² (1-D integral). 12 replications of n = 400 draws of
    N(m + shift, scale·Σ), seed offset_seed(0); two-sided one-sample t-test on them at alpha = 5e-5
    (the t-test's normality of 12 U-statistics at n = 400 is an approximation)."""
    q = Gaussian(M + shift, scale * SIGMA)
    g = torch.Generator().manual_seed(offset_seed(0))
    est = np.array([kernel_stein_discrepancy(q.sample(400, g), TARGET).u_statistic for _ in range(12)])
    exact = gaussian_ksd_squared(TARGET, M + shift, scale * SIGMA)
    assert scipy.stats.ttest_1samp(est, exact).pvalue >= 5e-5, (est.mean(), exact)


TRACE_ALPHA = 5e-5  # z-tests of the trace estimates against the exact values (Bonferroni inside a test)
ORDER_Z = 5.0  # an ordering of two estimates is asserted only where the exact gap exceeds 5 sd of their difference


@pytest.mark.statistical(alpha=TRACE_ALPHA, power=[float(scipy.stats.norm.cdf(ORDER_Z))] * 3)
def test_step_size_trace_shows_ulas_bias_growing_with_mu() -> None:
    """The exact KSD of ULA's stationary law N(m, S_μ) rises strictly over μ ∈ {0.001, 0.01, 0.05, 0.15};
    H0: each estimate (n = 2000, seed offset_seed(0), common random numbers) equals the exact KSD² —
    two-sided z-tests at 5e-5/4 each (Bonferroni). Must hold: estimates rise wherever the exact gap exceeds
    5 sd of the difference (sd ≤ se_i + se_j): each such ordering misses with probability ≤ Φ(−5)."""
    tr = ksd_step_size_trace(TARGET, STEPS, n=2000, seed=offset_seed(0))
    assert all(b > a for a, b in zip(tr.ksd_exact, tr.ksd_exact[1:]))
    z = scipy.stats.norm.isf(TRACE_ALPHA / 4 / 2)
    for e, x, se in zip(tr.ksd2_estimate, tr.ksd2_exact, tr.ksd2_standard_error):
        assert abs(e - x) <= z * se, (e, x, se)
    for i in range(len(STEPS) - 1):
        gap = tr.ksd2_exact[i + 1] - tr.ksd2_exact[i]
        if gap > ORDER_Z * (tr.ksd2_standard_error[i] + tr.ksd2_standard_error[i + 1]):
            assert tr.ksd2_estimate[i + 1] > tr.ksd2_estimate[i]


@pytest.mark.statistical(alpha=TRACE_ALPHA, power=float(scipy.stats.norm.cdf(ORDER_Z)))
def test_step_size_trace_on_real_ula_output() -> None:
    """KSD of genbench ULA output (1000 chains from exact target draws, run for mixing_time(μ) steps, seeds
    offset_seed(0) and offset_seed(1)): H0 (for each μ) the U-statistic is consistent with the exact KSD² of
    the law at that step (z-tests at 5e-5/2 each); the μ = 0.15 estimate exceeds the μ = 0.01 one, asserted
    where the exact gap exceeds 5 sd of the difference (miss ≤ Φ(−5))."""
    mus = (0.01, 0.15)
    g = torch.Generator().manual_seed(offset_seed(0))
    x0 = TARGET.sample(1000, g)

    def ula_output(mu: float) -> torch.Tensor:
        return sample_ula(TARGET, theory.mixing_time(TARGET, mu), mu, chains=1000, x0=x0, seed=offset_seed(1)).final

    tr = ksd_step_size_trace(TARGET, mus, n=1000, seed=offset_seed(0), samples_for=ula_output)
    z = scipy.stats.norm.isf(TRACE_ALPHA / 2 / 2)
    exact = []
    for mu, e, se in zip(mus, tr.ksd2_estimate, tr.ksd2_standard_error):
        t_mix = theory.mixing_time(TARGET, mu)
        # Law after t_mix steps from x0 ~ N(m, Σ): A^t Σ A^t + cov_t (exact, not quite stationary).
        a_t = np.linalg.matrix_power(np.eye(2) - mu * TARGET.precision.numpy(), t_mix)
        law = a_t @ SIGMA @ a_t + theory.ula_cov(TARGET, mu, t_mix)
        exact.append(gaussian_ksd_squared(TARGET, M, law))
        assert abs(e - exact[-1]) <= z * se, (mu, e, exact[-1], se)
    assert exact[1] - exact[0] > ORDER_Z * sum(tr.ksd2_standard_error)  # the plan: else the ordering is not tested
    assert tr.ksd2_estimate[1] > tr.ksd2_estimate[0]


@pytest.mark.statistical(alpha=ALPHA_KEEP)
def test_iid_check_accepts_exact_draws(record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: 500 exact target draws (seed offset_seed(0)) come from the target; Rademacher wild bootstrap,
    19 999 draws (seed offset_seed(0)), alpha = 1e-4 (asymptotically exact). Must not reject."""
    seed = offset_seed(0)
    x = TARGET.sample(500, torch.Generator().manual_seed(seed))
    res = record_check(check_ksd(x, TARGET, alpha=ALPHA_KEEP, seed=seed, n_boot=BOOT_KEEP))
    assert res.passed, res.message()


def test_iid_check_rejects_ulas_biased_stationary_law(record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: samples ~ target; the samples are 1000 draws (seed offset_seed(0)) of ULA's stationary law at
    μ = 0.15; alpha = 0.01, bootstrap seed offset_seed(0). Must reject; ``_u_power`` is declared."""
    q = Gaussian(M, theory.stationary_cov(TARGET, 0.15))
    power = _u_power(q, 1000)
    record_check.declare(power=power)
    assert power > 0.99999
    seed = offset_seed(0)
    x = q.sample(1000, torch.Generator().manual_seed(seed))
    res = record_check(check_ksd(x, TARGET, alpha=ALPHA, seed=seed))
    assert not res.passed, res.message()
    with pytest.raises(CheckFailed):  # the same data and bootstrap seed: the same verdict
        assert_ksd(x, TARGET, alpha=ALPHA, seed=seed)


THIN = 5  # the Markov bootstrap needs an effective sample size of ~100+: see the slow test's docstring


def _pilot_flip_prob(step_size: float, thin: int = THIN) -> float:
    """a = 1/(1 + τ̂), τ̂ the mean integrated autocorrelation time (Geyer ESS) of 8 independent pilot MALA
    chains (seed 99, same thinning), so the bootstrap's parameter does not depend on the chain under test."""
    pilot = sample_mala(TARGET, 2000 * thin, step_size, chains=8,
                        x0=TARGET.sample(8, torch.Generator().manual_seed(98)), seed=99, keep="trace", thin=thin)
    taus = [pilot.trace.shape[0] / float(np.min(ess(pilot.trace[:, c, :].numpy()[None]))) for c in range(8)]
    return 1.0 / (1.0 + float(np.mean(taus)))


@pytest.mark.slow
@pytest.mark.statistical(alpha=ALPHA, power=0.99)
def test_markov_bootstrap_on_one_correlated_chain() -> None:
    """H0: one MALA chain (μ = 0.15, started at an exact draw, 5000 steps thinned by 5, seed offset_seed(0))
    is a stationary chain of the target — Markov wild bootstrap with a = 1/(1 + τ̂) from a pilot, alpha =
    0.01, bootstrap seed offset_seed(0): must not reject. One ULA chain (μ = 0.15, same start and length)
    has the biased law: must reject. Slow: at the default run's levels (1e-4, power 1 − 1e-5) the Markov
    bootstrap needs ~20 000 bootstrap draws and ~4x longer chains; its power has no closed form (0.99 is
    a stated target, not a computed figure; the false-alarm rate is measured below)."""
    a = _pilot_flip_prob(0.15)
    seed = offset_seed(0)
    x0 = TARGET.sample(1, torch.Generator().manual_seed(seed))
    mala = sample_mala(TARGET, 1000 * THIN, 0.15, x0=x0, seed=seed, keep="trace", thin=THIN).trace[:, 0, :]
    res = check_ksd(mala, TARGET, alpha=ALPHA, seed=seed, bootstrap="markov", flip_prob=a)
    assert res.passed, res.message()
    ula = sample_ula(TARGET, 1000 * THIN, 0.15, x0=x0, seed=seed, keep="trace", thin=THIN).trace[:, 0, :]
    res = check_ksd(ula, TARGET, alpha=ALPHA, seed=seed, bootstrap="markov", flip_prob=a)
    assert not res.passed, res.message()


def test_markov_bootstrap_refuses_a_chain_too_short_for_it() -> None:
    """An unthinned MALA chain of 1000 steps (ESS ~30, seed 0) is refused, naming min_ess; min_ess=0 runs it."""
    x0 = TARGET.sample(1, torch.Generator().manual_seed(0))
    chain = sample_mala(TARGET, 1000, 0.15, x0=x0, seed=0, keep="trace").trace[:, 0, :]
    with pytest.raises(ParameterError, match=r"effective sample size is \d+ < min_ess=50"):
        check_ksd(chain, TARGET, bootstrap="markov", flip_prob=0.03)
    res = check_ksd(chain, TARGET, bootstrap="markov", flip_prob=0.03, min_ess=0, n_boot=99)
    assert res.details["chain_ess"] < 50


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: check_ksd(np.zeros((10, 3)), TARGET), "samples must have shape"),
        (lambda: check_ksd(np.full((10, 2), np.inf), TARGET), "finite"),
        (lambda: check_ksd(np.zeros((10, 2)), TARGET, bootstrap="markov"), "flip_prob is required"),
        (lambda: check_ksd(np.zeros((10, 2)), TARGET, flip_prob=0.1), "flip_prob applies only"),
        (lambda: check_ksd(np.random.default_rng(0).normal(size=(40, 2)), TARGET, bootstrap="markov", flip_prob=0.1,
                           min_ess=-1), "min_ess must be"),
        (lambda: check_ksd(np.zeros((10, 2)), TARGET, bootstrap="block"), "bootstrap must be one of"),
        (lambda: check_ksd(np.zeros((10, 2)), TARGET, n_boot=5), "n_boot"),
        (lambda: kernel_stein_discrepancy(np.zeros((10, 2)), TARGET, beta=-1.5), "beta must be in"),
        (lambda: kernel_stein_discrepancy(np.zeros((10, 2)), TARGET, c=0.0), "c must be"),
        (lambda: ksd_step_size_trace(TARGET, ()), "step_sizes"),
    ],
)
def test_bad_input_names_the_parameter(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParameterError, match=match):
        call()


@pytest.mark.slow
@pytest.mark.statistical(alpha=[0.001, 0.001])
def test_false_alarm_rates_iid_and_markov() -> None:
    """H0 rates at alpha = 0.05 (one-sided exact binomial test of rate > 0.05 at 0.001 each):
    (i) Rademacher bootstrap on n = 500 exact draws, seeds offset_seed(4000..4199);
    (ii) Markov bootstrap (a from the pilot) on 200 independent MALA chains (μ = 0.15, 5000 steps thinned
    by 5 → n = 1000, τ ≈ 7, ESS ≈ 145; seed 4321).
    The wild bootstrap is only asymptotically valid. A first run of (ii) on UNTHINNED chains (1000 steps,
    τ ≈ 34, ESS ≈ 30) gave 26/200 = 0.13 false alarms (Rademacher on the same chains: 89/200), so this test
    was moved to the thinned regime and the docs say to thin; the unthinned rates are still printed, with the
    Rademacher rate on the correlated chains (run with min_ess=0: check_ksd now refuses them by default) and the detection rate of a uniform law with Σ's moments
    (n = 1000, seeds 4000..4199), all with CP 95% intervals.
    A thinned chain whose Geyer ESS falls below MIN_MARKOV_ESS is refused by check_ksd (its documented
    ParameterError): it is neither a pass nor a false alarm, so the rate is over the chains tested, the
    refusals are printed, and at least 90% of the chains must be tested (ESS ~145 expected; one of 200
    chains came out at 48 after the random stream changed, seed 4321)."""
    a = 0.05
    seeds = [offset_seed(s) for s in range(4000, 4200)]
    ns = len(seeds)
    fa_iid = sum(
        not check_ksd(TARGET.sample(500, torch.Generator().manual_seed(s)), TARGET, alpha=a, seed=s, n_boot=499).passed
        for s in seeds
    )
    x0 = TARGET.sample(ns, torch.Generator().manual_seed(offset_seed(4320)))
    counts, tested = {}, {}
    for thin in (THIN, 1):
        flip = _pilot_flip_prob(0.15, thin)
        chains = sample_mala(TARGET, 1000 * thin, 0.15, chains=ns, x0=x0, seed=offset_seed(4321), keep="trace",
                             thin=thin).trace
        rejected = refused = 0
        for c in range(ns):
            try:
                rejected += not check_ksd(chains[:, c, :], TARGET, alpha=a, seed=c, n_boot=499, bootstrap="markov",
                                          flip_prob=flip, min_ess=0 if thin == 1 else MIN_MARKOV_ESS).passed
            except ParameterError as exc:
                assert "effective sample size" in str(exc), exc
                refused += 1
        counts[f"markov_thin{thin}"], tested[thin] = rejected, ns - refused
        counts[f"rademacher_on_chain_thin{thin}"] = sum(
            not check_ksd(chains[:, c, :], TARGET, alpha=a, seed=c, n_boot=499).passed for c in range(ns)
        )
    chol = TARGET.chol
    det_unif = 0
    for s in seeds:
        u = (torch.rand(1000, 2, generator=torch.Generator().manual_seed(s), dtype=torch.float64) * 2 - 1) * math.sqrt(3)
        det_unif += not check_ksd(TARGET.mean + u @ chol.T, TARGET, alpha=a, seed=s, n_boot=499).passed
    n_of = {f"markov_thin{t}": n for t, n in tested.items()}
    for label, k in (("iid", fa_iid), *counts.items(), ("uniform_detect", det_unif)):
        n = n_of.get(label, ns)
        ci = scipy.stats.binomtest(k, n).proportion_ci(method="exact")
        print(f"\nksd {label}: {k}/{n} = {k / n:.4f} CI95 [{ci.low:.4f}, {ci.high:.4f}] (alpha={a}; {ns - n} refused)")
    assert scipy.stats.binomtest(fa_iid, ns, a, alternative="greater").pvalue >= 0.001
    assert tested[THIN] >= 0.9 * ns, f"{ns - tested[THIN]} of {ns} thinned chains refused for low ESS"
    assert scipy.stats.binomtest(counts[f"markov_thin{THIN}"], tested[THIN], a, alternative="greater").pvalue >= 0.001
