"""Statistical tests of the Langevin samplers against the exact ULA law (genbench.langevin.theory).

Target: the assignment's N((1, 1), [[1, .9], [.9, 1]]), x_0 = 0. N independent chains give i.i.d.
draws of x_T, so the exact tests of genbench.testing apply with their stated alpha. Every test
names H0, alpha (declared to genbench's pytest plugin) and its seed (through ``offset_seed``); none
is retried. Runs on the real samplers (``genbench.langevin.ula.sample_ula``,
``genbench.langevin.mala.sample_mala``) and the real mutant catalogue (``genbench.testing.mutants``).

Must-not-reject assertions run at 5e-5 each. Must-reject assertions declare the power of the
covariance likelihood-ratio test for the broken law, from its normal approximation (``_lr_power``).
The scenario grid T ∈ {1e3, 1e4, 1e5} × μ ∈ {0.001, 0.01, 0.15} is tested cell by cell at 5e-5; the
T = 1e5 row runs under ``-m slow`` (10⁵ sequential steps are the cost, whatever the number of chains).
"""

from __future__ import annotations

from collections.abc import Callable

import math

import numpy as np
import pytest
import scipy.stats
import torch

from gaussian_draws import gaussian_draws
from genbench.testing.mutants import kernel_mutant
from genbench.langevin import theory
from genbench.langevin.experiments import trajectory_mean_law
from genbench.langevin.mala import sample_mala
from genbench.langevin.ula import sample_ula, ula_kernel
from genbench.targets import seed_target
from genbench.testing import (
    offset_seed,
    assert_gaussian,
    assert_stationary,
    assert_ula_law,
    check_stationary,
    check_ula_law,
    detectable_effect,
    required_samples,
)
from genbench.wishart import cov_critical_value
from genbench.testing.power import cov_power_for_eigenvalues

TARGET = seed_target()
MUS = (0.001, 0.01, 0.15)
CHAINS = 2000  # per step size; detectable effects at this n are asserted in test_grid_power_is_stated
ALPHA = 0.01  # level of the checks in must-reject assertions (and of the slow rate studies)
KEEP = 5e-5  # level of each must-not-reject assertion in the default run
GRID_ALPHA = KEEP  # each cell of the scenario grid
GRID_SEED = 2026  # through offset_seed
SNAPSHOTS = (1_000, 10_000)
MIN_POWER = 0.99999


def _lr_power(lam: np.ndarray, k: int, alpha: float) -> float:
    """Power of the covariance LR test (k = n − 1 degrees of freedom, level alpha) when the sample's law has
    whitened covariance eigenvalues ``lam``, by the delta method: T = k Σ g(ℓᵢ) with g(u) = u − 1 − log u and
    ℓᵢ ≈ λᵢ(1 + √(2/k) Zᵢ) gives T ≈ N(k Σ g(λᵢ), 2k Σ (λᵢ − 1)²). The critical value is the exact null's
    (genbench.testing.power). An approximation, used only where the margin is tens of standard deviations."""
    lam = np.asarray(lam, dtype=float)
    crit = cov_critical_value(len(lam), k, alpha)
    mean = k * float(np.sum(lam - 1 - np.log(lam)))
    sd = math.sqrt(2 * k * float(np.sum((lam - 1) ** 2)))
    return float(scipy.stats.norm.sf((crit - mean) / sd))


def _eig_tail(lam: float, k: int, bound: float) -> float:
    """P(the sample's whitened eigenvalue near lam stays above bound) ≈ Φ((lam − bound)/(lam √(2/k)))."""
    return float(scipy.stats.norm.cdf((lam - bound) / (lam * math.sqrt(2 / k))))


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
    run = sample_ula(TARGET, max(SNAPSHOTS), mu, chains=len(mu), seed=offset_seed(GRID_SEED), kernel=rec)
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
    """The grid tests' resolution at n = CHAINS, alpha 5e-5 split in two (Bonferroni), power 0.8 (no randomness)."""
    a = GRID_ALPHA / 2
    delta = detectable_effect("mean", CHAINS, alpha=a, power=0.8, d=2)
    eps = detectable_effect("cov", CHAINS, alpha=a, power=0.8, d=2)
    # Recorded here so a change of CHAINS is a visible decision: ~0.11 Mahalanobis, ~18% covariance.
    assert 0.05 < delta < 0.14 and 0.08 < eps < 0.25
    # μ = 0.15's stationary bias (S_μ has a whitened eigenvalue 4 against Σ) is far beyond resolution.
    lam = np.linalg.eigvalsh(np.linalg.solve(TARGET.cov.numpy(), theory.stationary_cov(TARGET, 0.15)))
    assert lam.max() == pytest.approx(4.0, rel=1e-9)
    assert cov_power_for_eigenvalues(lam, CHAINS, alpha=a) > 0.999


@pytest.mark.statistical(alpha=GRID_ALPHA)
@pytest.mark.parametrize("steps", SNAPSHOTS)
@pytest.mark.parametrize("mu", MUS)
def test_ula_matches_exact_law_on_grid(grid_run, record_check, steps: int, mu: float) -> None:  # type: ignore[no-untyped-def]
    """H0: x_T of CHAINS independent ULA chains ~ ula_law(target, μ, T) exactly; alpha 5e-5; seed offset_seed(GRID_SEED)."""
    res = assert_ula_law(grid_run["final"][(steps, mu)], TARGET, mu, steps, x0=0.0, alpha=GRID_ALPHA)
    record_check(res)


@pytest.mark.slow
@pytest.mark.parametrize("mu", MUS)
def test_ula_matches_exact_law_at_1e5_steps(record_check, mu: float) -> None:  # type: ignore[no-untyped-def]
    """H0: x_T ~ ula_law at T = 10⁵ (default fused sampler path); alpha 5e-5; seed offset_seed(GRID_SEED + 1).

    For μ = 0.15 also: H0 "x_T ~ N(m, S_μ)" holds (alpha 5e-5) and H0 "x_T ~ N(m, Σ)" is rejected
    (alpha 0.01; power by ``_lr_power`` for S_μ's whitened eigenvalues against Σ). Declared at run time.
    """
    run = sample_ula(TARGET, 100_000, mu, chains=CHAINS, seed=offset_seed(GRID_SEED + 1))
    record_check(assert_ula_law(run.final, TARGET, mu, 100_000, x0=0.0, alpha=GRID_ALPHA), declare=True)
    if mu == 0.15:
        lam = np.linalg.eigvalsh(np.linalg.solve(TARGET.cov.numpy(), theory.stationary_cov(TARGET, 0.15)))
        record_check.declare(alpha=KEEP, power=_lr_power(lam, CHAINS - 1, ALPHA / 2))
        assert_stationary(run.final, TARGET, 0.15, alpha=KEEP)
        assert not check_stationary(run.final, TARGET, None, alpha=ALPHA).passed


@pytest.mark.statistical(alpha=KEEP)
def test_default_fused_sampler_matches_exact_law(record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: x_T of the default (fused, scalar-μ) ULA path ~ ula_law, μ = 0.01, T = 1000; alpha 5e-5; seed offset_seed(7)."""
    run = sample_ula(TARGET, 1_000, 0.01, chains=CHAINS, seed=offset_seed(7))
    record_check(assert_ula_law(run.final, TARGET, 0.01, 1_000, x0=0.0, alpha=KEEP))


@pytest.mark.cuda
@pytest.mark.statistical(alpha=KEEP)
def test_cuda_ula_matches_exact_law(record_check) -> None:  # type: ignore[no-untyped-def]
    """H0: x_T of CHAINS ULA chains run on CUDA (fused default path, float64) ~ ula_law(target, 0.01, 1000)
    exactly; alpha 5e-5; seed offset_seed(8). Skipped (by conftest) without a CUDA device."""
    target = seed_target(device="cuda")
    run = sample_ula(target, 1_000, 0.01, chains=CHAINS, seed=offset_seed(8), device="cuda")
    assert run.final.device.type == "cuda"
    record_check(assert_ula_law(run.final.cpu(), TARGET, 0.01, 1_000, x0=0.0, alpha=KEEP))


# ---------------------------------------------------------------------------------- trends


@pytest.mark.statistical(alpha=KEEP)
@pytest.mark.parametrize("steps", SNAPSHOTS)
def test_trajectory_means_match_exact_law(grid_run, steps: int) -> None:  # type: ignore[no-untyped-def]
    """H0: each chain's trajectory average (1/T)Σ x_t ~ its exact Gaussian law (μ = 0.01); alpha 5e-5; seed offset_seed(GRID_SEED)."""
    mean, cov = trajectory_mean_law(TARGET, 0.01, steps, x0=0.0)
    assert_gaussian(grid_run["traj_mean"][(steps, 0.01)], mean, cov, alpha=KEEP)


def _mahalanobis_sq(x: np.ndarray) -> np.ndarray:
    diff = x - TARGET.mean.numpy()
    return np.einsum("ni,ij,nj->n", diff, TARGET.precision.numpy(), diff)


def _mw_power(law_small: tuple[np.ndarray, np.ndarray], law_big: tuple[np.ndarray, np.ndarray], n: int,
              alpha: float) -> float:
    """Power of the one-sided Mann–Whitney test (alternative: errors under law_small are smaller) for n
    independent squared Mahalanobis errors from each exact Gaussian law, by the normal approximation of
    U around n²θ, θ = P(e_small < e_big) and var(U) from θ, P(two small-law errors < one big) and the
    converse (Lehmann 1975, eq. 2.20), all by 2¹⁸ planning draws (seed fixed, not re-rolled)."""
    rng = np.random.default_rng(99_999)
    m = 2**18

    def errs(law: tuple[np.ndarray, np.ndarray], k: int) -> np.ndarray:
        return _mahalanobis_sq(gaussian_draws(int(rng.integers(2**31)), k * m, *law)).reshape(k, m)

    s, b = errs(law_small, 2), errs(law_big, 2)
    theta = float(np.mean(s[0] < b[0]))
    p1 = float(np.mean((s[0] < b[0]) & (s[1] < b[0])))
    p2 = float(np.mean((s[0] < b[0]) & (s[0] < b[1])))
    var1 = n * n * (theta * (1 - theta) + (n - 1) * (p1 - theta**2) + (n - 1) * (p2 - theta**2))
    sd0 = math.sqrt(n * n * (2 * n + 1) / 12)
    crit = n * n / 2 + scipy.stats.norm.isf(alpha) * sd0
    return float(scipy.stats.norm.sf((crit - n * n * theta) / math.sqrt(var1)))


def test_errors_fall_with_steps_for_mu_001(grid_run, record_check) -> None:  # type: ignore[no-untyped-def]
    """Errors of the assignment's estimator (one chain's trajectory average) fall with T for μ = 0.01.

    Theory: E‖x̄_T − m‖²_{Σ⁻¹} from the exact trajectory law strictly decreases over T = 1e3, 1e4, 1e5.
    Sampler: H0 "squared errors at T = 1e4 are distributed as at T = 1e3" is REJECTED by a one-sided
    Mann–Whitney U test (alternative: smaller at 1e4), alpha 0.01, seed offset_seed(GRID_SEED). Declared
    power: ``_mw_power`` for the two exact laws (the two samples come from the same chains, which the
    test ignores; the positive correlation only makes rejection likelier).
    """
    prec, m = TARGET.precision.numpy(), TARGET.mean.numpy()
    predicted = []
    for steps in (1_000, 10_000, 100_000):
        mean, cov = trajectory_mean_law(TARGET, 0.01, steps, x0=0.0)
        predicted.append(float(np.trace(prec @ cov) + (mean - m) @ prec @ (mean - m)))
    assert predicted[0] > predicted[1] > predicted[2]
    power = _mw_power(trajectory_mean_law(TARGET, 0.01, 10_000, x0=0.0),
                      trajectory_mean_law(TARGET, 0.01, 1_000, x0=0.0), CHAINS, ALPHA)
    record_check.declare(power=power)
    assert power > MIN_POWER
    e3 = _mahalanobis_sq(grid_run["traj_mean"][(1_000, 0.01)])
    e4 = _mahalanobis_sq(grid_run["traj_mean"][(10_000, 0.01)])
    p = scipy.stats.mannwhitneyu(e4, e3, alternative="less").pvalue
    assert p < ALPHA, f"errors did not fall: mean {e3.mean():.4g} -> {e4.mean():.4g} (p={p:.3g})"


@pytest.mark.slow
def test_errors_keep_falling_to_1e5_steps_for_mu_001(record_check) -> None:  # type: ignore[no-untyped-def]
    """μ = 0.01, CHAINS chains, 10⁵ steps, seed offset_seed(GRID_SEED + 2): trajectory averages at T = 1e4 and 1e5.

    H0 "x̄_T ~ its exact law" holds at T = 1e5 (alpha 5e-5), and H0 "squared errors at 1e5 are
    distributed as at 1e4" is REJECTED in favour of smaller errors (one-sided Mann–Whitney, alpha 0.01;
    power by ``_mw_power``). Declared at run time.
    """
    mu = 0.01
    record_check.declare(alpha=KEEP, power=_mw_power(trajectory_mean_law(TARGET, mu, 100_000, x0=0.0),
                                                     trajectory_mean_law(TARGET, mu, 10_000, x0=0.0), CHAINS, ALPHA))
    rec = _Recorder(ula_kernel(TARGET, mu), CHAINS, TARGET.dim)
    rec_steps = 100_000
    sample_ula(TARGET, rec_steps, mu, chains=CHAINS, seed=offset_seed(GRID_SEED + 2), kernel=rec)
    final_mean = (rec.total / rec_steps).numpy()
    mean, cov = trajectory_mean_law(TARGET, mu, rec_steps, x0=0.0)
    assert_gaussian(final_mean, mean, cov, alpha=KEEP)
    p = scipy.stats.mannwhitneyu(_mahalanobis_sq(final_mean), _mahalanobis_sq(rec.traj_means[10_000]), alternative="less").pvalue
    assert p < ALPHA


S_015 = theory.stationary_cov(TARGET, 0.15)
# S_μ whitened by Σ (eigenvalues (1 − μλᵢ/2)⁻¹ = (4, 1.04)) and Σ whitened by S_μ (their inverses).
LAM_S_VS_SIGMA = np.linalg.eigvalsh(np.linalg.solve(TARGET.cov.numpy(), S_015))
LAM_SIGMA_VS_S = 1.0 / LAM_S_VS_SIGMA
PLATEAU_POWER = [_lr_power(LAM_S_VS_SIGMA, CHAINS - 1, ALPHA / 2), _eig_tail(LAM_S_VS_SIGMA.max(), CHAINS - 1, 3.0)]


@pytest.mark.statistical(alpha=KEEP, power=PLATEAU_POWER)
@pytest.mark.parametrize("steps", SNAPSHOTS)
def test_mu_015_plateaus_at_predicted_stationary_bias(grid_run, steps: int) -> None:  # type: ignore[no-untyped-def]
    """μ = 0.15 converges to the biased S_μ, not Σ, and stays there (T = 1e3 and 1e4); seed offset_seed(GRID_SEED).

    H0 "x_T ~ N(m, S_μ)" holds at alpha 5e-5; H0 "x_T ~ N(m, Σ)" is rejected at alpha 0.01 (covariance
    part at 0.005; power ``_lr_power``), and the measured top whitened eigenvalue exceeds 3 (S_μ's is 4;
    power from its asymptotic sd 4√(2/k)). (At T = 1e3 the law is S_μ to within 1e-60: 1 − μλ_min = 0.92.)
    """
    x = grid_run["final"][(steps, 0.15)]
    assert_stationary(x, TARGET, 0.15, alpha=KEEP)
    res = check_stationary(x, TARGET, None, alpha=ALPHA)
    assert not res.passed, res.message()
    lam = np.sort(res.details["cov"]["details"]["eigenvalues_vs_cov"])
    assert lam[-1] > 3.0


@pytest.mark.statistical(alpha=[KEEP, 1e-34], power=_lr_power(LAM_SIGMA_VS_S, 999, ALPHA / 2))
def test_mala_removes_the_bias(record_check) -> None:  # type: ignore[no-untyped-def]
    """MALA at μ = 0.15 (400 steps from x_0 = 0, 1000 chains, seed offset_seed(11)) targets Σ, not S_μ.

    H0 "x_T ~ N(m, Σ)" is not rejected at alpha 5e-5 (MALA's x_T law converges geometrically to
    the target; the remaining bias after 400 steps is < 1e-6 in the slowest direction, acceptance
    ~0.63 ± 0.01 over the chains); H0 "x_T ~ N(m, S_μ)" is rejected at alpha 0.01 (S_μ⁻¹Σ has eigenvalue
    0.25; power ``_lr_power``). The acceptance rate, mean 0.63, stays in (0.4, 0.9): chains are
    independent and each one's acceptance fraction lies in [0, 1], so by Hoeffding it leaves
    0.63 ± 0.2 with probability <= 2 exp(-2 · 1000 · 0.2²) = 4e-35 (declared as 1e-34).
    """
    chains = 1000
    run = sample_mala(TARGET, 400, 0.15, chains=chains, seed=offset_seed(11))
    assert 0.4 < run.acceptance_rate < 0.9
    record_check(assert_stationary(run.final, TARGET, None, alpha=KEEP))
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


def _mutant_eigenvalues(name: str) -> np.ndarray:
    """Whitened eigenvalues of the mutant's exact x_T covariance against the exact ULA law's (μ = 0.01, T = 1000)."""
    law = theory.ula_law(TARGET, MUTANT_MU, MUTANT_T, 0.0)
    _, cov1 = _affine_law(kernel_mutant(name).make(TARGET, MUTANT_MU), MUTANT_T)
    return np.linalg.eigvalsh(np.linalg.solve(law.cov, cov1))


MUTANT_CHAINS = 1000  # large enough for the LR test's normal approximation; every plan below needs far fewer


@pytest.mark.parametrize("name", MUTANTS)
def test_exact_law_check_rejects_broken_sampler(name: str, record_check) -> None:  # type: ignore[no-untyped-def]
    """H0 "x_T ~ exact ULA law" must be REJECTED for each bug of issue 2 (μ = 0.01, T = 1000, x_0 = 0).

    1000 chains; the covariance part alone (alpha 0.01/2) rejects with the power ``_lr_power`` computes
    for the mutant's exact law (it is Gaussian: the mutants are affine), declared, at least 0.99999; the
    joint check rejects whenever it does. Seed offset_seed(31 + mutant index); alpha 0.01.
    """
    power = _lr_power(_mutant_eigenvalues(name), MUTANT_CHAINS - 1, ALPHA / 2)
    record_check.declare(power=power)
    assert power >= MIN_POWER
    kernel = kernel_mutant(name).make(TARGET, MUTANT_MU)
    run = sample_ula(TARGET, MUTANT_T, MUTANT_MU, chains=MUTANT_CHAINS, seed=offset_seed(31 + MUTANTS.index(name)),
                     kernel=kernel)
    res = check_ula_law(run.final, TARGET, MUTANT_MU, MUTANT_T, x0=0.0, alpha=ALPHA)
    assert res.details["cov"]["p_value"] < ALPHA / 2, f"{name}: the planned covariance test did not reject: {res.message()}"
    assert not res.passed


@pytest.mark.slow
@pytest.mark.statistical(alpha=ALPHA)
@pytest.mark.parametrize("name", MUTANTS)
def test_rejection_rate_against_broken_sampler_is_as_predicted(record_property, name: str) -> None:  # type: ignore[no-untyped-def]
    """H0: the rejection rate at the planned n (power 0.99 by the simulated Wishart power) is >= 0.99
    (one-sided binomial, alpha 0.01); seeds offset_seed(1000..1199)."""
    n, _ = _planned_chains(name)
    kernel_factory = kernel_mutant(name).make
    seeds = [offset_seed(s) for s in range(1000, 1200)]
    rejected = 0
    for seed in seeds:
        run = sample_ula(TARGET, MUTANT_T, MUTANT_MU, chains=n, seed=seed, kernel=kernel_factory(TARGET, MUTANT_MU))
        rejected += not check_ula_law(run.final, TARGET, MUTANT_MU, MUTANT_T, x0=0.0, alpha=ALPHA).passed
    p = scipy.stats.binomtest(rejected, len(seeds), 0.99, alternative="less").pvalue
    record_property("rejections", f"{rejected}/{len(seeds)} at n={n}")
    assert p >= ALPHA, f"{name}: {rejected}/{len(seeds)} rejections at n={n}"


@pytest.mark.slow
@pytest.mark.statistical(alpha=ALPHA)
def test_ula_law_false_alarm_rate_over_many_seeds(record_property) -> None:  # type: ignore[no-untyped-def]
    """H0: on the correct sampler, the exact-law check's false-alarm rate is <= 0.01 (one-sided binomial, alpha 0.01).

    250 seeds (offset_seed(5000..5249)), μ = 0.01, T = 1000, 500 chains each, check at alpha 0.01.
    """
    seeds = [offset_seed(s) for s in range(5000, 5250)]
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
