"""Tests of genbench.testing.conservation: one-step invariance (MALA), exact one-step law (ULA), movement.

Every statistical test states H0, alpha and its seed; seeds go through ``offset_seed``, nothing is
retried. Must-not-reject assertions run at ALPHA_KEEP = 1e-4 and declare it; must-reject assertions
run the check at ALPHA = 0.01 (their level does not enter the budget) and declare the power computed
for the broken kernel's actual one-step law by ``_one_step_power`` (a lower bound, see there).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from genbench.testing import mutants
from genbench.errors import CheckFailed, ParameterError
from genbench.langevin import theory
from genbench.langevin.mala import mala_init, mala_step
from genbench.langevin.ula import ula_kernel
from genbench.targets import Gaussian, GaussianMixture, seed_target
from genbench.testing import offset_seed
from genbench.testing.conservation import (
    assert_one_step,
    check_one_step,
    check_ula_one_step,
    one_step_detectable_effect,
    one_step_required_samples,
    ula_one_step_inflation,
    ula_one_step_law,
)
from genbench.testing.shape import _dkwm_radius, whiten

TARGET = seed_target()
ALPHA = 0.01  # level of the checks in must-reject assertions
ALPHA_KEEP = 1e-4  # level of each must-not-reject assertion (declared to the plugin)
MIN_POWER = 0.99999  # every must-reject assertion is planned to at least this power
N = 20_000
PLAN_SEED = 99_999  # planning pilots only (not re-rolled: they size the tests, they do not decide them)
PILOT = 2**18
D = TARGET.dim


def _affine_parts(kernel) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:  # type: ignore[no-untyped-def]
    """(B, c, S) if kernel(x, e) = B x + c + S e exactly on random probes, else None."""
    eye, zero = torch.eye(D, dtype=torch.float64), torch.zeros(1, D, dtype=torch.float64)
    c = kernel(zero, zero)[0].numpy()
    b = (kernel(eye, torch.zeros(D, D, dtype=torch.float64)).numpy() - c).T
    s = (kernel(torch.zeros(D, D, dtype=torch.float64), eye).numpy() - c).T
    g = torch.Generator().manual_seed(PLAN_SEED)
    x, e = torch.randn(64, D, generator=g, dtype=torch.float64), torch.randn(64, D, generator=g, dtype=torch.float64)
    affine = x.numpy() @ b.T + c + e.numpy() @ s.T
    return (b, c, s) if np.allclose(kernel(x, e).numpy(), affine, rtol=1e-12, atol=1e-12) else None


def _one_step_power(make, mean: np.ndarray, cov: np.ndarray, n: int | list[int], alpha: float = ALPHA):  # type: ignore[no-untyped-def]
    """Lower bound on P(check_one_step rejects) for the kernel ``make(generator)`` at n chains and level alpha
    (a list of n gives a list of bounds from one pilot).

    The check rejects when any of its 4 tests does (each at alpha/4), so the larger of two computable
    powers bounds it below. Scale test Σ‖z‖² (z whitened by the expected law): for an affine kernel the
    one-step law from N(m, Σ) is Gaussian N(b, C) in whitened units, E‖z‖² = tr C + ‖b‖² and
    Var ‖z‖² = 2 tr C² + 4 bᵀCb exactly; otherwise both moments come from a pilot of 2¹⁸ chains, the mean
    moved 5 standard errors towards the null. Σ‖z‖² is then normal to within the CLT at n·d degrees of
    freedom. Radius KS test (shape, level alpha/4/9): with the radius law at KS distance D_KS from χ²_d
    (pilot, less its DKWM radius at 1e-9), it misses with probability ≤ 2·exp(−2n(D_KS − crit)²), crit the
    DKWM critical value (Massart).
    """
    level = alpha / 4
    kernel = make(torch.Generator().manual_seed(PLAN_SEED))
    chol = np.linalg.cholesky(cov)
    parts = _affine_parts(kernel)
    if parts is not None:  # exact moments; the shape bound is not needed (d_ks = 0 counts nothing)
        bm, c, s = parts
        m_t, s_t = TARGET.mean.numpy(), TARGET.cov.numpy()
        b = np.linalg.solve(chol, bm @ m_t + c - mean)
        cw = np.linalg.solve(chol, np.linalg.solve(chol, bm @ s_t @ bm.T + s @ s.T).T)
        m_r2, v_r2 = float(np.trace(cw) + b @ b), float(2 * np.trace(cw @ cw) + 4 * b @ cw @ b)
        d_ks = 0.0
    else:
        g = torch.Generator().manual_seed(PLAN_SEED)
        x0 = TARGET.sample(PILOT, generator=g)
        with torch.no_grad():
            x1 = kernel(x0.clone(), torch.randn(x0.shape, generator=g, dtype=x0.dtype))
        r2 = (whiten(x1, mean, cov) ** 2).sum(axis=1)
        raw, v_r2 = float(r2.mean()), float(r2.var())
        shrink = 5 * math.sqrt(v_r2 / PILOT)
        m_r2 = max(raw - shrink, D) if raw > D else min(raw + shrink, D)
        d_ks = float(scipy.stats.kstest(r2, scipy.stats.chi2(D).cdf).statistic) - _dkwm_radius(PILOT, 1e-9)

    def bound(k: int) -> float:
        dof = k * D
        hi, lo = scipy.stats.chi2.isf(level / 2, dof), scipy.stats.chi2.ppf(level / 2, dof)
        mu_s, sd_s = k * m_r2, math.sqrt(k * v_r2)
        p_scale = float(scipy.stats.norm.sf((hi - mu_s) / sd_s) + scipy.stats.norm.cdf((lo - mu_s) / sd_s))
        crit = _dkwm_radius(k, level / 9)
        p_shape = 1.0 - 2.0 * math.exp(-2.0 * k * (d_ks - crit) ** 2) if d_ks > crit else 0.0
        return max(p_scale, p_shape)

    return [bound(k) for k in n] if isinstance(n, list) else bound(n)


def _planned_n(make, mean: np.ndarray, cov: np.ndarray) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """The smallest n in N·2^j (j ≤ 5) with _one_step_power >= MIN_POWER, and that power."""
    ns = [N * 2**j for j in range(6)]
    for n, p in zip(ns, _one_step_power(make, mean, cov, ns)):
        if p >= MIN_POWER:
            return n, p
    raise AssertionError(f"power {p:.6f} < {MIN_POWER} even at n={n}: the mutant is too weak for a default-run test")


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


@pytest.mark.statistical(alpha=ALPHA_KEEP)
def test_mala_step_leaves_target_invariant(record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: one genbench MALA step (μ = 0.15) from exact target draws is still N(m, Σ), and chains move;
    n = 20 000, alpha = 1e-4, seed offset_seed(0) (kernel uniforms offset_seed(100)). Must not reject."""
    kernel = mala_kernel(TARGET, 0.15, seed=offset_seed(100))
    res = record_check(check_one_step(kernel, TARGET, n=N, alpha=ALPHA_KEEP, seed=offset_seed(0)))
    assert res.passed, res.message()
    # MALA rejects some proposals: acceptance ≈ 0.65 here, ±0.0034 binomial sd at n = 20 000.
    assert 0.3 < res.details["moved_fraction"] < 1.0


@pytest.mark.statistical(alpha=ALPHA_KEEP)
@pytest.mark.parametrize("mu", [0.01, 0.15])
def test_ula_step_has_its_exact_one_step_law(mu: float, record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: one genbench ULA step from exact target draws is N(m, Σ + μ²Σ⁻¹); n = 20 000, alpha = 1e-4,
    seed offset_seed(0). Must not reject."""
    kernel = ula_kernel(TARGET, mu)
    res = record_check(check_ula_one_step(kernel, TARGET, mu, n=N, alpha=ALPHA_KEEP, seed=offset_seed(0)))
    assert res.passed, res.message()
    assert res.details["moved_fraction"] == 1.0


@pytest.mark.statistical(alpha=[ALPHA_KEEP / 4] * 3)
def test_identity_kernel_fails_by_movement_only() -> None:
    """H0 (invariance + movement) on the identity kernel x' = x, seed offset_seed(0), alpha = 1e-4: the law
    is trivially conserved, so only the movement test can reject — and it must (deterministically: no chain
    moves, p = 0.95^n). The three law tests see exact target draws: must not reject, each at 1e-4/4."""
    seed = offset_seed(0)
    res = check_one_step(lambda x, noise: x, TARGET, n=N, alpha=ALPHA_KEEP, seed=seed)
    assert not res.passed
    assert res.details["worst_test"] == "movement"
    assert res.details["moved_fraction"] == 0.0
    level = ALPHA_KEEP / 4
    assert all(p >= level for k, p in res.details["p_values"].items() if k != "movement")
    with pytest.raises(CheckFailed, match="moves each chain"):
        assert_one_step(lambda x, noise: x, TARGET, n=N, alpha=ALPHA_KEEP, seed=seed)


def test_mala_always_accept_detected_at_the_planned_n(record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: one step of the 'MALA that always accepts' mutant (= ULA) leaves N(m, Σ) invariant. Its exact
    one-step law inflates Cov by μ²Σ⁻¹ (δ = μ² tr(P²)/d); at μ = 0.05, n = one_step_required_samples(δ,
    power = 0.99999) (the planner's isotropic power). Must reject, by the planned scale test; declared power:
    the scale test's power for the actual anisotropic law (``_one_step_power``); alpha = 0.01,
    seed offset_seed(0), mutant uniforms offset_seed(100)."""
    mu = 0.05
    delta = ula_one_step_inflation(TARGET, mu)
    n = one_step_required_samples(delta, d=2, alpha=ALPHA, power=MIN_POWER)
    assert n < 5000  # the bias of a broken accept step is visible after ONE step with a few thousand chains
    make = lambda g: mutants.mala_always_accept(TARGET, mu, generator=g)  # noqa: E731
    power = _one_step_power(make, TARGET.mean.numpy(), TARGET.cov.numpy(), n)
    record_check.declare(power=power)
    assert power > 0.9999  # anisotropy costs a little against the isotropic plan
    res = record_check(check_one_step(make(torch.Generator().manual_seed(offset_seed(100))), TARGET, n=n,
                                      alpha=ALPHA, seed=offset_seed(0)))
    assert res.details["p_values"]["scale"] < ALPHA / 4, res.message()  # the planned component rejects
    assert not res.passed


@pytest.mark.parametrize("name", ["mala_always_accept", "mala_no_proposal_correction", "mala_inverted_accept"])
def test_broken_accept_reject_steps_detected(name: str, record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: one step of the mutant from exact target draws leaves N(m, Σ) invariant; μ = 0.15, alpha = 0.01,
    seed offset_seed(0) (mutant uniforms offset_seed(100)); n planned for power >= 0.99999 (``_planned_n``).
    Must reject; the computed power is declared."""
    make = lambda g: mutants.kernel_mutant(name).make(TARGET, 0.15, generator=g)  # noqa: E731
    n, power = _planned_n(make, TARGET.mean.numpy(), TARGET.cov.numpy())
    record_check.declare(power=power)
    res = check_one_step(make(torch.Generator().manual_seed(offset_seed(100))), TARGET, n=n, alpha=ALPHA,
                         seed=offset_seed(0))
    assert not res.passed, res.message()


@pytest.mark.parametrize(
    "name", ["noise_sqrt_mu", "score_sign_flipped", "cov_for_precision", "uniform_noise",
             "rademacher_noise", "noise_shared_across_coords"],
)
def test_broken_ula_steps_miss_the_exact_one_step_law(name: str, record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: one step of the ULA mutant from exact target draws has ULA's law N(m, Σ + μ²Σ⁻¹); μ = 0.15,
    alpha = 0.01, seed offset_seed(0); n planned for power >= 0.99999 (``_planned_n``: uniform/Rademacher
    noise keep the first two moments, so only the shape test's bound counts). Must reject; the computed
    power is declared. (half_drift is left to the calibration study: its one-step law differs from ULA's
    mostly along one whitened direction, which only the covariance test sees, and no closed-form power
    exists for it at the 1e-5 miss level.)"""
    make = lambda g: mutants.kernel_mutant(name).make(TARGET, 0.15, generator=g)  # noqa: E731
    mean, cov = ula_one_step_law(TARGET, 0.15)
    n, power = _planned_n(make, mean, cov)
    record_check.declare(power=power)
    res = check_ula_one_step(make(None), TARGET, 0.15, n=n, alpha=ALPHA, seed=offset_seed(0))
    assert not res.passed, res.message()


def test_planning_is_consistent_and_exact() -> None:
    """detectable_effect and required_samples invert each other; the scale test's power is the exact χ² power."""
    for n in (100, 1000, 20_000):
        eff = one_step_detectable_effect(n, d=2, alpha=ALPHA, power=0.8)
        assert one_step_required_samples(eff, d=2, alpha=ALPHA, power=0.8) in (n, n + 1)
    n, d, delta = 1000, 2, 0.1
    hi = scipy.stats.chi2.isf(ALPHA / 8, n * d)
    lo = scipy.stats.chi2.ppf(ALPHA / 8, n * d)
    want = scipy.stats.chi2.sf(hi / (1 + delta), n * d) + scipy.stats.chi2.cdf(lo / (1 + delta), n * d)
    n_req = one_step_required_samples(delta, d=d, alpha=ALPHA, power=float(want))
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
        (lambda: one_step_required_samples(0.0, d=2), "effect"),
    ],
)
def test_bad_input_names_the_parameter(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParameterError, match=match):
        call()


@pytest.mark.slow
@pytest.mark.statistical(alpha=[0.001, 0.001, 0.001])
def test_false_alarm_and_detection_rates() -> None:
    """H0 rate: correct MALA (μ = 0.15) and correct ULA one-step law (μ = 0.05), n = 5000, alpha = 0.05,
    seeds offset_seed(2000..2199): rejection rate ≤ 0.05 (one-sided exact binomial test at 0.001 each).
    Power: the always-accept mutant at μ = 0.05 with n = one_step_required_samples(δ, power = 0.8):
    detection rate ≥ 0.8 (one-sided binomial test of rate < 0.8 at 0.001). Prints rates with CP 95% CIs."""
    a, seeds = 0.05, [offset_seed(s) for s in range(2000, 2200)]
    ns = len(seeds)
    fa_mala = sum(not check_one_step(mala_kernel(TARGET, 0.15, s + 7), TARGET, n=5000, alpha=a, seed=s).passed
                  for s in seeds)
    fa_ula = sum(not check_ula_one_step(ula_kernel(TARGET, 0.05), TARGET, 0.05, n=5000, alpha=a, seed=s).passed
                 for s in seeds)
    delta = ula_one_step_inflation(TARGET, 0.05)
    n80 = one_step_required_samples(delta, d=2, alpha=a, power=0.8)
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
    """assert_one_step(effect=δ) refuses n below one_step_required_samples(δ) before running anything."""
    from genbench.testing.conservation import assert_ula_one_step

    needed = one_step_required_samples(0.05, d=2, alpha=ALPHA, power=0.9)
    with pytest.raises(ParameterError, match=f"n >= {needed} is needed"):
        assert_one_step(lambda x, e: x, TARGET, n=needed - 1, alpha=ALPHA, power=0.9, effect=0.05)
    with pytest.raises(ParameterError, match=f"n >= {needed} is needed"):
        assert_ula_one_step(ula_kernel(TARGET, 0.1), TARGET, 0.1, n=needed - 1, alpha=ALPHA, power=0.9, effect=0.05)


@pytest.mark.slow
@pytest.mark.statistical(alpha=0.001)
def test_scale_component_power_matches_prediction() -> None:
    """H0: the scale test's rejection rate (its p-value < alpha/4) on the always-accept mutant (μ = 0.05)
    at n = one_step_required_samples(δ, power = 0.8) equals the predicted 0.8; alpha = 0.05,
    seeds offset_seed(6000..6199); two-sided exact binomial test at 0.001. Prints the rate with its CP 95% interval."""
    a, seeds = 0.05, [offset_seed(s) for s in range(6000, 6200)]
    delta = ula_one_step_inflation(TARGET, 0.05)
    n80 = one_step_required_samples(delta, d=2, alpha=a, power=0.8)
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
