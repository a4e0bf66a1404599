"""Statistical tests of the Langevin samplers against the exact ULA law (genbench.langevin.theory).

Target: the assignment's N((1, 1), [[1, .9], [.9, 1]]), x_0 = 0. N independent chains give i.i.d.
draws of x_T, so the exact tests of genbench.testing apply with their stated alpha. Every test
names H0, alpha and its seed; none is retried. Runs on the real samplers
(``genbench.langevin.ula.sample_ula``, ``genbench.langevin.mala.sample_mala``) and the real
mutant catalogue (``genbench.calibration.mutants``).

The scenario grid T ∈ {1e3, 1e4, 1e5} × μ ∈ {0.001, 0.01, 0.15} is one family of 9 exact-law
tests at alpha 0.01 / 9 each (Bonferroni); the T = 1e5 row runs under ``-m slow`` (10⁵ sequential
steps are the cost, whatever the number of chains).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import scipy.stats
import torch

from genbench.calibration.mutants import kernel_mutant
from genbench.langevin import theory
from genbench.langevin.experiments import trajectory_mean_law
from genbench.langevin.mala import sample_mala
from genbench.langevin.ula import sample_ula, ula_kernel
from genbench.targets import seed_target
from genbench.testing import (
    assert_matches_gaussian,
    assert_stationary,
    assert_ula_law,
    check_stationary,
    check_ula_law,
    detectable_effect,
    required_samples,
)
from genbench.testing.power import cov_power_for_eigenvalues

pytestmark = pytest.mark.statistical

TARGET = seed_target()
MUS = (0.001, 0.01, 0.15)
CHAINS = 2000  # per step size; detectable effects at this n are asserted in test_grid_power_is_stated
ALPHA = 0.01
GRID_ALPHA = ALPHA / 9  # Bonferroni over the 9 cells of the scenario grid
GRID_SEED = 20_261_126
SNAPSHOTS = (1_000, 10_000)


class _Recorder:
    """Wraps the production ULA kernel; records x_t at the snapshot steps and each chain's running sum.

    The driver calls the kernel exactly once per step, in order, so the t-th call returns x_t.
    """

    def __init__(self, kernel: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], chains: int, d: int):
        self.kernel = kernel
        self.t = 0
        self.total = torch.zeros(chains, d, dtype=torch.float64)
        self.states: dict[int, np.ndarray] = {}
        self.traj_means: dict[int, np.ndarray] = {}

    def __call__(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        y = self.kernel(x, noise)
        self.t += 1
        self.total += y
        if self.t in SNAPSHOTS:
            self.states[self.t] = y.detach().clone().numpy()
            self.traj_means[self.t] = (self.total / self.t).numpy().copy()
        return y


@pytest.fixture(scope="module")
def grid_run() -> dict[str, dict[tuple[int, float], np.ndarray]]:
    """One ULA run of 10⁴ steps, CHAINS chains per step size (per-chain μ), seed GRID_SEED, from x_0 = 0."""
    mu = torch.tensor([m for m in MUS for _ in range(CHAINS)], dtype=torch.float64)
    rec = _Recorder(ula_kernel(TARGET, mu), len(mu), TARGET.dim)
    run = sample_ula(TARGET, max(SNAPSHOTS), mu, chains=len(mu), seed=GRID_SEED, kernel=rec)
    assert rec.t == max(SNAPSHOTS)
    np.testing.assert_array_equal(run.final.numpy(), rec.states[max(SNAPSHOTS)])
    out: dict[str, dict[tuple[int, float], np.ndarray]] = {"final": {}, "traj_mean": {}}
    for t in SNAPSHOTS:
        for i, m in enumerate(MUS):
            out["final"][(t, m)] = rec.states[t][i * CHAINS : (i + 1) * CHAINS]
            out["traj_mean"][(t, m)] = rec.traj_means[t][i * CHAINS : (i + 1) * CHAINS]
    return out


# ---------------------------------------------------------------------------------- the grid


def test_grid_power_is_stated() -> None:
    """The grid tests' resolution at n = CHAINS, alpha/9 split in two (Bonferroni), power 0.8 (no randomness)."""
    a = GRID_ALPHA / 2
    delta = detectable_effect("mean", CHAINS, alpha=a, power=0.8, d=2)
    eps = detectable_effect("cov", CHAINS, alpha=a, power=0.8, d=2)
    # Recorded here so a change of CHAINS is a visible decision: ~0.09 Mahalanobis, ~14% covariance.
    assert 0.05 < delta < 0.12 and 0.08 < eps < 0.2
    # μ = 0.15's stationary bias (S_μ has a whitened eigenvalue 4 against Σ) is far beyond resolution.
    lam = np.linalg.eigvalsh(np.linalg.solve(TARGET.cov.numpy(), theory.stationary_cov(TARGET, 0.15)))
    assert lam.max() == pytest.approx(4.0, rel=1e-9)
    assert cov_power_for_eigenvalues(lam, CHAINS, alpha=a) > 0.999


@pytest.mark.parametrize("steps", SNAPSHOTS)
@pytest.mark.parametrize("mu", MUS)
def test_ula_matches_exact_law_on_grid(grid_run, record_check, steps: int, mu: float) -> None:  # type: ignore[no-untyped-def]
    """H0: x_T of CHAINS independent ULA chains ~ ula_law(target, μ, T) exactly; alpha 0.01/9; seed GRID_SEED."""
    res = assert_ula_law(grid_run["final"][(steps, mu)], TARGET, mu, steps, x0=0.0, alpha=GRID_ALPHA)
    record_check(res)


@pytest.mark.slow
@pytest.mark.parametrize("mu", MUS)
def test_ula_matches_exact_law_at_1e5_steps(record_check, mu: float) -> None:  # type: ignore[no-untyped-def]
    """H0: x_T ~ ula_law at T = 10⁵ (default fused sampler path); alpha 0.01/9; seed GRID_SEED + 1.

    For μ = 0.15 also: H0 "x_T ~ N(m, S_μ)" holds (alpha 0.01) and H0 "x_T ~ N(m, Σ)" is rejected.
    """
    run = sample_ula(TARGET, 100_000, mu, chains=CHAINS, seed=GRID_SEED + 1)
    record_check(assert_ula_law(run.final, TARGET, mu, 100_000, x0=0.0, alpha=GRID_ALPHA))
    if mu == 0.15:
        assert_stationary(run.final, TARGET, 0.15, alpha=ALPHA)
        assert not check_stationary(run.final, TARGET, None, alpha=ALPHA).passed


def test_default_fused_sampler_matches_exact_law(record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: x_T of the default (fused, scalar-μ) ULA path ~ ula_law, μ = 0.01, T = 1000; alpha 0.01; seed 7."""
    run = sample_ula(TARGET, 1_000, 0.01, chains=CHAINS, seed=7)
    record_check(assert_ula_law(run.final, TARGET, 0.01, 1_000, x0=0.0, alpha=ALPHA))


# ---------------------------------------------------------------------------------- trends


@pytest.mark.parametrize("steps", SNAPSHOTS)
def test_trajectory_means_match_exact_law(grid_run, steps: int) -> None:  # type: ignore[no-untyped-def]
    """H0: each chain's trajectory average (1/T)Σ x_t ~ its exact Gaussian law (μ = 0.01); alpha 0.01/2; seed GRID_SEED."""
    mean, cov = trajectory_mean_law(TARGET, 0.01, steps, x0=0.0)
    assert_matches_gaussian(grid_run["traj_mean"][(steps, 0.01)], mean, cov, alpha=ALPHA / 2)


def _mahalanobis_sq(x: np.ndarray) -> np.ndarray:
    diff = x - TARGET.mean.numpy()
    return np.einsum("ni,ij,nj->n", diff, TARGET.precision.numpy(), diff)


def test_errors_fall_with_steps_for_mu_001(grid_run) -> None:  # type: ignore[no-untyped-def]
    """Errors of the assignment's estimator (one chain's trajectory average) fall with T for μ = 0.01.

    Theory: E‖x̄_T − m‖²_{Σ⁻¹} from the exact trajectory law strictly decreases over T = 1e3, 1e4, 1e5.
    Sampler: H0 "squared errors at T = 1e4 are distributed as at T = 1e3" is REJECTED by a one-sided
    Mann–Whitney U test (alternative: smaller at 1e4), alpha 0.01, seed GRID_SEED.
    """
    prec, m = TARGET.precision.numpy(), TARGET.mean.numpy()
    predicted = []
    for steps in (1_000, 10_000, 100_000):
        mean, cov = trajectory_mean_law(TARGET, 0.01, steps, x0=0.0)
        predicted.append(float(np.trace(prec @ cov) + (mean - m) @ prec @ (mean - m)))
    assert predicted[0] > predicted[1] > predicted[2]
    e3 = _mahalanobis_sq(grid_run["traj_mean"][(1_000, 0.01)])
    e4 = _mahalanobis_sq(grid_run["traj_mean"][(10_000, 0.01)])
    p = scipy.stats.mannwhitneyu(e4, e3, alternative="less").pvalue
    assert p < ALPHA, f"errors did not fall: mean {e3.mean():.4g} -> {e4.mean():.4g} (p={p:.3g})"


@pytest.mark.slow
def test_errors_keep_falling_to_1e5_steps_for_mu_001() -> None:
    """μ = 0.01, CHAINS chains, 10⁵ steps, seed GRID_SEED + 2: trajectory averages at T = 1e4 and 1e5.

    H0 "x̄_T ~ its exact law" holds at T = 1e5 (alpha 0.01/2), and H0 "squared errors at 1e5 are
    distributed as at 1e4" is REJECTED in favour of smaller errors (one-sided Mann–Whitney, alpha 0.01).
    """
    mu = 0.01
    rec = _Recorder(ula_kernel(TARGET, mu), CHAINS, TARGET.dim)
    rec_steps = 100_000
    sample_ula(TARGET, rec_steps, mu, chains=CHAINS, seed=GRID_SEED + 2, kernel=rec)
    final_mean = (rec.total / rec_steps).numpy()
    mean, cov = trajectory_mean_law(TARGET, mu, rec_steps, x0=0.0)
    assert_matches_gaussian(final_mean, mean, cov, alpha=ALPHA / 2)
    p = scipy.stats.mannwhitneyu(_mahalanobis_sq(final_mean), _mahalanobis_sq(rec.traj_means[10_000]), alternative="less").pvalue
    assert p < ALPHA


@pytest.mark.parametrize("steps", SNAPSHOTS)
def test_mu_015_plateaus_at_predicted_stationary_bias(grid_run, steps: int) -> None:  # type: ignore[no-untyped-def]
    """μ = 0.15 converges to the biased S_μ, not Σ, and stays there (T = 1e3 and 1e4); seed GRID_SEED.

    H0 "x_T ~ N(m, S_μ)" holds at alpha 0.01/2; H0 "x_T ~ N(m, Σ)" is rejected at alpha 0.01/2
    (predicted power > 0.999: test_grid_power_is_stated).
    """
    x = grid_run["final"][(steps, 0.15)]
    assert_stationary(x, TARGET, 0.15, alpha=ALPHA / 2)
    res = check_stationary(x, TARGET, None, alpha=ALPHA / 2)
    assert not res.passed, res.message()
    # The measured whitened covariance eigenvalues sit at S_μ's, (1 − μλ_i/2)⁻¹ = (4, 1.04).
    lam = np.sort(res.details["cov"]["details"]["eigenvalues_vs_cov"])
    assert lam[-1] > 3.0


def test_mala_removes_the_bias(record_check) -> None:  # type: ignore[no-untyped-def]
    """MALA at μ = 0.15 (400 steps from x_0 = 0, 1000 chains, seed 11) targets Σ, not S_μ.

    H0 "x_T ~ N(m, Σ)" is not rejected at alpha 0.01 (MALA's x_T law converges geometrically to
    the target; the remaining bias after 400 steps is < 1e-6 in the slowest direction, acceptance
    ~0.63); H0 "x_T ~ N(m, S_μ)" is rejected (S_μ⁻¹Σ has eigenvalue 0.25: predicted power > 0.999).
    """
    chains = 1000
    s_mu = theory.stationary_cov(TARGET, 0.15)
    lam = np.linalg.eigvalsh(np.linalg.solve(s_mu, TARGET.cov.numpy()))
    assert cov_power_for_eigenvalues(lam, chains, alpha=ALPHA) > 0.999
    run = sample_mala(TARGET, 400, 0.15, chains=chains, seed=11)
    assert 0.4 < run.acceptance_rate < 0.9
    record_check(assert_stationary(run.final, TARGET, None, alpha=ALPHA))
    assert not check_stationary(run.final, TARGET, 0.15, alpha=ALPHA).passed


# ---------------------------------------------------------------------------------- tests of the tests

MUTANTS = ("noise_sqrt_mu", "score_sign_flipped", "cov_for_precision")
MUTANT_MU, MUTANT_T = 0.01, 1_000


def _affine_law(kernel: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact law of x_T from x_0 = 0 under an affine Gaussian kernel x' = Bx + c + S n, probed numerically."""
    d = TARGET.dim
    eye, zero = torch.eye(d, dtype=torch.float64), torch.zeros(1, d, dtype=torch.float64)
    c = kernel(zero, zero)[0].numpy()
    b = (kernel(eye, torch.zeros(d, d, dtype=torch.float64)).numpy() - c).T  # column j = B e_j
    s = (kernel(torch.zeros(d, d, dtype=torch.float64), eye).numpy() - c).T
    mean, cov = np.zeros(d), np.zeros((d, d))
    for _ in range(steps):
        mean, cov = b @ mean + c, b @ cov @ b.T + s @ s.T
    return mean, cov


def _planned_chains(name: str) -> tuple[int, float]:
    """Smallest n (>= 10) whose covariance-part power against the mutant's exact law is >= 0.99, and that power."""
    law = theory.ula_law(TARGET, MUTANT_MU, MUTANT_T, 0.0)
    _, cov1 = _affine_law(kernel_mutant(name).make(TARGET, MUTANT_MU), MUTANT_T)
    lam = np.linalg.eigvalsh(np.linalg.solve(law.cov, cov1))
    fn = lambda n: cov_power_for_eigenvalues(lam, n, alpha=ALPHA / 2)  # noqa: E731
    n = 10
    while fn(n) < 0.99:
        n *= 2
    lo, hi = n // 2, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fn(mid) >= 0.99 else (mid, hi)
    n = max(hi, 10)
    return n, fn(n)


@pytest.mark.parametrize("name", MUTANTS)
def test_exact_law_check_rejects_broken_sampler(name: str) -> None:
    """H0 "x_T ~ exact ULA law" must be REJECTED for each bug of issue 2 (μ = 0.01, T = 1000, x_0 = 0).

    n chains is planned so the covariance part alone (alpha 0.01/2) has predicted power >= 0.99
    against the mutant's exact law (it is Gaussian: the mutants are affine); the joint check rejects
    at least as often. Seed 31 + mutant index; alpha 0.01.
    """
    n, predicted = _planned_chains(name)
    assert predicted >= 0.99
    kernel = kernel_mutant(name).make(TARGET, MUTANT_MU)
    run = sample_ula(TARGET, MUTANT_T, MUTANT_MU, chains=n, seed=31 + MUTANTS.index(name), kernel=kernel)
    res = check_ula_law(run.final, TARGET, MUTANT_MU, MUTANT_T, x0=0.0, alpha=ALPHA)
    assert not res.passed, f"{name}: not rejected with n={n} (predicted power {predicted:.3f}): {res.message()}"
    # The planned component itself (covariance LRT at alpha/2) is what rejects.
    assert res.details["cov"]["p_value"] < ALPHA / 2


@pytest.mark.slow
@pytest.mark.parametrize("name", MUTANTS)
def test_rejection_rate_against_broken_sampler_is_as_predicted(record_property, name: str) -> None:  # type: ignore[no-untyped-def]
    """H0: the rejection rate at the planned n is >= 0.99 (one-sided binomial, alpha 0.01); seeds 1000..1199."""
    n, _ = _planned_chains(name)
    kernel_factory = kernel_mutant(name).make
    seeds = range(1000, 1200)
    rejected = 0
    for seed in seeds:
        run = sample_ula(TARGET, MUTANT_T, MUTANT_MU, chains=n, seed=seed, kernel=kernel_factory(TARGET, MUTANT_MU))
        rejected += not check_ula_law(run.final, TARGET, MUTANT_MU, MUTANT_T, x0=0.0, alpha=ALPHA).passed
    p = scipy.stats.binomtest(rejected, len(seeds), 0.99, alternative="less").pvalue
    record_property("rejections", f"{rejected}/{len(seeds)} at n={n}")
    assert p >= ALPHA, f"{name}: {rejected}/{len(seeds)} rejections at n={n}"


@pytest.mark.slow
def test_ula_law_false_alarm_rate_over_many_seeds(record_property) -> None:  # type: ignore[no-untyped-def]
    """H0: on the correct sampler, the exact-law check's false-alarm rate is <= 0.01 (one-sided binomial, alpha 0.01).

    250 seeds (5000..5249), μ = 0.01, T = 1000, 500 chains each, check at alpha 0.01.
    """
    seeds = range(5000, 5250)
    false_alarms = sum(
        not check_ula_law(sample_ula(TARGET, 1_000, 0.01, chains=500, seed=s).final, TARGET, 0.01, 1_000, 0.0, ALPHA).passed
        for s in seeds
    )
    p = scipy.stats.binomtest(false_alarms, len(seeds), ALPHA, alternative="greater").pvalue
    record_property("false_alarms", f"{false_alarms}/{len(seeds)}")
    assert p >= ALPHA, f"{false_alarms}/{len(seeds)} false alarms"


def test_required_samples_covers_the_mutant_effects() -> None:
    """The planning API agrees with the mutant plans: a one-direction ε equal to the largest deviation needs no fewer chains."""
    law = theory.ula_law(TARGET, MUTANT_MU, MUTANT_T, 0.0)
    _, cov1 = _affine_law(kernel_mutant("noise_sqrt_mu").make(TARGET, MUTANT_MU), MUTANT_T)
    lam = np.linalg.eigvalsh(np.linalg.solve(law.cov, cov1))
    # √μ noise instead of √(2μ) halves every variance of x_T (the law is linear in the noise variance).
    np.testing.assert_allclose(lam, 0.5, rtol=1e-9)
    n_one = required_samples("cov", -0.5, alpha=ALPHA / 2, power=0.99, d=2)
    n_both, _ = _planned_chains("noise_sqrt_mu")
    assert n_both <= n_one
