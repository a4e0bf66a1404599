"""Tests of genbench.testing.conservation: one-step invariance (MALA), exact one-step law (ULA), movement.

Every statistical test states H0, alpha and its seed; seeds are fixed, nothing is retried.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from genbench.calibration import mutants
from genbench.errors import CheckFailed, ParameterError
from genbench.langevin import theory
from genbench.langevin.mala import mala_init, mala_step
from genbench.langevin.ula import ula_kernel
from genbench.targets import Gaussian, GaussianMixture, seed_target
from genbench.testing.conservation import (
    assert_one_step,
    check_one_step,
    check_ula_one_step,
    conservation_detectable_effect,
    conservation_required_samples,
    ula_one_step_inflation,
    ula_one_step_law,
)

TARGET = seed_target()
ALPHA = 0.01
N = 20_000


def mala_kernel(target: Gaussian, step_size: float, seed: int):  # type: ignore[no-untyped-def]
    """genbench's MALA transition in the kernel(x, noise) contract; uniforms from its own seeded generator."""
    gen = torch.Generator().manual_seed(seed)

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        u = torch.rand(x.shape[:-1], generator=gen, dtype=x.dtype)
        state, _ = mala_step(target, mala_init(target, x), step_size, noise, torch.log(u))
        return state.x

    return kernel


def test_ula_one_step_law_matches_theory() -> None:
    """From a point mass (cov 0) the one-step law is theory's law at t = 1; from the target it is N(m, Σ + μ²Σ⁻¹)."""
    mu = 0.07
    x0 = np.array([0.3, -1.2])
    mean, cov = ula_one_step_law(TARGET, mu, mean=x0, cov=np.zeros((2, 2)))
    np.testing.assert_allclose(mean, theory.ula_mean(TARGET, mu, 1, x0), atol=1e-14)
    np.testing.assert_allclose(cov, theory.ula_cov(TARGET, mu, 1), atol=1e-14)
    # Two steps = one step applied to the one-step law.
    m2, c2 = ula_one_step_law(TARGET, mu, mean=mean, cov=cov)
    np.testing.assert_allclose(m2, theory.ula_mean(TARGET, mu, 2, x0), atol=1e-14)
    np.testing.assert_allclose(c2, theory.ula_cov(TARGET, mu, 2), atol=1e-14)
    sigma, prec = TARGET.cov.numpy(), TARGET.precision.numpy()
    m1, c1 = ula_one_step_law(TARGET, mu)
    np.testing.assert_allclose(m1, TARGET.mean.numpy(), atol=1e-14)
    np.testing.assert_allclose(c1, sigma + mu**2 * prec, atol=1e-13)
    assert ula_one_step_inflation(TARGET, mu) == pytest.approx(mu**2 * np.trace(prec @ prec) / 2, rel=1e-12)


@pytest.mark.statistical
def test_mala_step_leaves_target_invariant(record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: one genbench MALA step (μ = 0.15) from exact target draws is still N(m, Σ), and chains move;
    n = 20 000, alpha = 0.01, seed 0 (kernel uniforms seed 100). Must not reject."""
    res = record_check(check_one_step(mala_kernel(TARGET, 0.15, seed=100), TARGET, n=N, alpha=ALPHA, seed=0))
    assert res.passed, res.message()
    assert 0.3 < res.details["moved_fraction"] < 1.0  # MALA rejects some proposals


@pytest.mark.statistical
@pytest.mark.parametrize("mu", [0.01, 0.15])
def test_ula_step_has_its_exact_one_step_law(mu: float, record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: one genbench ULA step from exact target draws is N(m, Σ + μ²Σ⁻¹); n = 20 000, alpha = 0.01,
    seed 0. Must not reject."""
    res = record_check(check_ula_one_step(ula_kernel(TARGET, mu), TARGET, mu, n=N, alpha=ALPHA, seed=0))
    assert res.passed, res.message()
    assert res.details["moved_fraction"] == 1.0


@pytest.mark.statistical
def test_identity_kernel_fails_by_movement_only() -> None:
    """H0 (invariance + movement) on the identity kernel x' = x, seed 0, alpha = 0.01: the law is trivially
    conserved, so only the movement test can reject — and it must."""
    res = check_one_step(lambda x, noise: x, TARGET, n=N, alpha=ALPHA, seed=0)
    assert not res.passed
    assert res.details["worst_test"] == "movement"
    assert res.details["moved_fraction"] == 0.0
    level = ALPHA / 4
    assert all(p >= level for k, p in res.details["p_values"].items() if k != "movement")
    with pytest.raises(CheckFailed, match="moves each chain"):
        assert_one_step(lambda x, noise: x, TARGET, n=N, alpha=ALPHA, seed=0)


@pytest.mark.statistical
def test_mala_always_accept_detected_at_the_planned_n(record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: one step of the 'MALA that always accepts' mutant (= ULA) leaves N(m, Σ) invariant. Its exact
    one-step law inflates Cov by μ²Σ⁻¹ (δ = μ² tr(P²)/d); at μ = 0.05, n = conservation_required_samples(δ,
    power = 0.99); alpha = 0.01, seed 0. Must reject."""
    mu = 0.05
    delta = ula_one_step_inflation(TARGET, mu)
    n = conservation_required_samples(delta, 2, alpha=ALPHA, power=0.99)
    assert n < 5000  # the bias of a broken accept step is visible after ONE step with a few thousand chains
    kernel = mutants.mala_always_accept(TARGET, mu, generator=torch.Generator().manual_seed(100))
    res = record_check(check_one_step(kernel, TARGET, n=n, alpha=ALPHA, seed=0))
    assert not res.passed, res.message()
    assert res.detectable_effect <= delta


@pytest.mark.statistical
@pytest.mark.parametrize("name", ["mala_always_accept", "mala_no_proposal_correction", "mala_inverted_accept"])
def test_broken_accept_reject_steps_detected(name: str) -> None:
    """H0: one step of the mutant from exact target draws leaves N(m, Σ) invariant; μ = 0.15, n = 20 000,
    alpha = 0.01, seed 0 (mutant uniforms seed 100). Must reject."""
    kernel = mutants.kernel_mutant(name).make(TARGET, 0.15, generator=torch.Generator().manual_seed(100))
    res = check_one_step(kernel, TARGET, n=N, alpha=ALPHA, seed=0)
    assert not res.passed, res.message()


@pytest.mark.statistical
@pytest.mark.parametrize(
    "name", ["noise_sqrt_mu", "score_sign_flipped", "cov_for_precision", "half_drift", "uniform_noise",
             "rademacher_noise", "noise_shared_across_coords"],
)
def test_broken_ula_steps_miss_the_exact_one_step_law(name: str) -> None:
    """H0: one step of the ULA mutant from exact target draws has ULA's law N(m, Σ + μ²Σ⁻¹); μ = 0.15,
    n = 20 000, alpha = 0.01, seed 0. Must reject (uniform/Rademacher noise: only the shape test can)."""
    kernel = mutants.kernel_mutant(name).make(TARGET, 0.15)
    res = check_ula_one_step(kernel, TARGET, 0.15, n=N, alpha=ALPHA, seed=0)
    assert not res.passed, res.message()


def test_planning_is_consistent_and_exact() -> None:
    """detectable_effect and required_samples invert each other; the scale test's power is the exact χ² power."""
    for n in (100, 1000, 20_000):
        eff = conservation_detectable_effect(n, 2, alpha=ALPHA, power=0.8)
        assert conservation_required_samples(eff, 2, alpha=ALPHA, power=0.8) in (n, n + 1)
    n, d, delta = 1000, 2, 0.1
    hi = scipy.stats.chi2.isf(ALPHA / 8, n * d)
    lo = scipy.stats.chi2.ppf(ALPHA / 8, n * d)
    want = scipy.stats.chi2.sf(hi / (1 + delta), n * d) + scipy.stats.chi2.cdf(lo / (1 + delta), n * d)
    n_req = conservation_required_samples(delta, d, alpha=ALPHA, power=float(want))
    assert n_req <= n


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: check_one_step(lambda x, e: x, GaussianMixture([1.0], [[0.0]], [[[1.0]]])), "Gaussian"),
        (lambda: check_one_step("no", TARGET), "kernel must be callable"),
        (lambda: check_one_step(lambda x, e: x[:, :1], TARGET, n=10), "kernel must return a tensor of shape"),
        (lambda: check_one_step(lambda x, e: x * np.nan, TARGET, n=10), "non-finite"),
        (lambda: check_one_step(lambda x, e: x, TARGET, n=1), "n must be an integer >= 2"),
        (lambda: check_one_step(lambda x, e: x, TARGET, min_move_fraction=0.0), "min_move_fraction"),
        (lambda: ula_one_step_law(TARGET, -0.1), "step_size"),
        (lambda: conservation_required_samples(0.0, 2), "effect"),
    ],
)
def test_bad_input_names_the_parameter(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParameterError, match=match):
        call()


@pytest.mark.slow
@pytest.mark.statistical
def test_false_alarm_and_detection_rates() -> None:
    """H0 rate: correct MALA (μ = 0.15) and correct ULA one-step law (μ = 0.05), n = 5000, alpha = 0.05,
    seeds 2000..2199: rejection rate ≤ 0.05 (one-sided exact binomial test at 0.001 each).
    Power: the always-accept mutant at μ = 0.05 with n = conservation_required_samples(δ, power = 0.8):
    detection rate ≥ 0.8 (one-sided binomial test of rate < 0.8 at 0.001). Prints rates with CP 95% CIs."""
    a, seeds = 0.05, range(2000, 2200)
    ns = len(seeds)
    fa_mala = sum(not check_one_step(mala_kernel(TARGET, 0.15, s + 7), TARGET, n=5000, alpha=a, seed=s).passed
                  for s in seeds)
    fa_ula = sum(not check_ula_one_step(ula_kernel(TARGET, 0.05), TARGET, 0.05, n=5000, alpha=a, seed=s).passed
                 for s in seeds)
    delta = ula_one_step_inflation(TARGET, 0.05)
    n80 = conservation_required_samples(delta, 2, alpha=a, power=0.8)
    det = sum(
        not check_one_step(mutants.mala_always_accept(TARGET, 0.05), TARGET, n=n80, alpha=a, seed=s).passed
        for s in seeds
    )
    for label, k in (("mala", fa_mala), ("ula", fa_ula), ("always_accept_detect", det)):
        ci = scipy.stats.binomtest(k, ns).proportion_ci(method="exact")
        print(f"\nconservation {label}: {k}/{ns} = {k / ns:.4f} CI95 [{ci.low:.4f}, {ci.high:.4f}] (alpha={a}, n80={n80})")
    assert scipy.stats.binomtest(fa_mala, ns, a, alternative="greater").pvalue >= 0.001
    assert scipy.stats.binomtest(fa_ula, ns, a, alternative="greater").pvalue >= 0.001
    assert scipy.stats.binomtest(det, ns, 0.8, alternative="less").pvalue >= 0.001


def test_underpowered_assertion_raises_instead_of_passing() -> None:
    """assert_one_step(effect=δ) refuses n below conservation_required_samples(δ) before running anything."""
    from genbench.testing.conservation import assert_ula_one_step

    needed = conservation_required_samples(0.05, 2, alpha=ALPHA, power=0.9)
    with pytest.raises(ParameterError, match=f"n >= {needed} is needed"):
        assert_one_step(lambda x, e: x, TARGET, n=needed - 1, alpha=ALPHA, power=0.9, effect=0.05)
    with pytest.raises(ParameterError, match=f"n >= {needed} is needed"):
        assert_ula_one_step(ula_kernel(TARGET, 0.1), TARGET, 0.1, n=needed - 1, alpha=ALPHA, power=0.9, effect=0.05)


@pytest.mark.slow
@pytest.mark.statistical
def test_scale_component_power_matches_prediction() -> None:
    """H0: the scale test's rejection rate (its p-value < alpha/4) on the always-accept mutant (μ = 0.05)
    at n = conservation_required_samples(δ, power = 0.8) equals the predicted 0.8; alpha = 0.05,
    seeds 6000..6199; two-sided exact binomial test at 0.001. Prints the rate with its CP 95% interval."""
    a, seeds = 0.05, range(6000, 6200)
    delta = ula_one_step_inflation(TARGET, 0.05)
    n80 = conservation_required_samples(delta, 2, alpha=a, power=0.8)
    hits = sum(
        check_one_step(mutants.mala_always_accept(TARGET, 0.05), TARGET, n=n80, alpha=a, seed=s).details["p_values"][
            "scale"
        ]
        < a / 4
        for s in seeds
    )
    ci = scipy.stats.binomtest(hits, len(seeds)).proportion_ci(method="exact")
    print(f"\nconservation scale-test power: {hits}/{len(seeds)} CI95 [{ci.low:.4f}, {ci.high:.4f}] vs predicted 0.8")
    assert scipy.stats.binomtest(hits, len(seeds), 0.8).pvalue >= 0.001
