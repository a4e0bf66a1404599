"""The Langevin checks of the calibration study: each check of ``genbench.testing`` in a stated scenario.

Every check is one registration (``@calibration_check``) on its trial function. Seeds: a trial
with seed ``s`` draws everything (start points, noise, projections) from generators seeded by
``s``; a MALA mutant's accept/reject uniforms use ``s + MUTANT_SEED_OFFSET`` and MALA start points
``s + 2 * MUTANT_SEED_OFFSET``. Correct input and every mutant share the seed (common random numbers).
Claimed detection rates are stated a priori from the exact laws (``why``), never fitted.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from genbench._runtime import make_generator
from genbench.testing.mutants import KERNEL_MUTANTS, Kernel, kernel_mutant
from genbench.calibration.registry import Profile, Scenario, calibration_check
from genbench.langevin import theory
from genbench.langevin.posterior import mala_posterior_sampler
from genbench.langevin.mala import mala_init, mala_step, sample_mala
from genbench.langevin.ula import sample_ula, ula_kernel
from genbench.planning import required_samples
from genbench.targets import ConjugateGaussianModel, Gaussian, seed_target
from genbench.testing._result import CheckResult
from genbench.testing.conservation import check_one_step, check_ula_one_step
from genbench.testing.gaussian import check_cov, check_mean, check_stationary, check_ula_law
from genbench.testing.ksd import check_ksd
from genbench.testing.sbc import check_sbc
from genbench.testing.sequential import check_sequential
from genbench.testing.shape import check_gaussian_shape

MUTANT_SEED_OFFSET = 1_000_003

# TRANSIENT: the law still moves with t, so time and constants both matter; ONE_STEP: the law after
# one step from a fixed point is the noise law itself; STATIONARY: mu = 0.15 (the assignment's
# largest), T far past the mixing time; MALA: from the target; CONSERVATION: one step from the target.
TRANSIENT = Scenario(steps=5, step_size=0.05, x0=(0.0, 0.0))
ONE_STEP = Scenario(steps=1, step_size=0.05, x0=(0.0, 0.0))
STATIONARY = Scenario(steps=200, step_size=0.15, x0=(0.0, 0.0))
MALA = Scenario(steps=10, step_size=0.15, x0="exact target draws")
CONSERVATION = Scenario(steps=1, step_size=0.15, x0="exact target draws")

ULA_MUTANTS = tuple(m.name for m in KERNEL_MUTANTS if m.family == "ula")
MALA_MUTANTS = tuple(m.name for m in KERNEL_MUTANTS if m.family == "mala")

# The planned stationary test: as many chains as the covariance LR test needs to see a 5% error in
# one whitened direction's variance with power 0.95 at alpha/2 (check_stationary's Bonferroni half).
PLANNED_EFFECT = 0.05
PLANNED_POWER = 0.95

# SBC of MALA on the conjugate normal model.
SBC_STEP_SIZE, SBC_DRAWS, SBC_THIN, SBC_BINS = 0.1, 49, 5, 10
SBC = Scenario(step_size=SBC_STEP_SIZE, x0="exact posterior draws").with_settings(
    model="theta ~ N(0, 1), y_1..5 | theta ~ N(theta, 1)", draws=SBC_DRAWS, thin=SBC_THIN, bins=SBC_BINS,
    replications="profile.sbc_replications")


# ----- inputs -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _target() -> Gaussian:
    return seed_target(dtype=torch.float64)


def _mutant_kernel(name: str, target: Any, step_size: float, seed: int) -> Kernel:
    return kernel_mutant(name).make(target, step_size, generator=make_generator(seed + MUTANT_SEED_OFFSET))


def _ula_final(sc: Scenario, chains: int, mutant: str | None, seed: int) -> np.ndarray:
    """x_T of ``chains`` independent ULA chains from the scenario's x_0 (correct, or the mutant kernel)."""
    target = _target()
    kernel = None if mutant is None else _mutant_kernel(mutant, target, sc.step_size, seed)  # type: ignore[arg-type]
    run = sample_ula(target, sc.steps, sc.step_size, chains=chains, seed=seed, kernel=kernel, keep="final",
                     x0=torch.as_tensor(sc.start, dtype=torch.float64))
    return run.final.detach().cpu().double().numpy()


def _correct_mala_kernel(target: Gaussian, step_size: float, generator: torch.Generator) -> Kernel:
    """The production ``mala_step`` as a kernel(x, noise), its uniforms drawn from ``generator``."""

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        u = torch.rand(x.shape[:-1], generator=generator, dtype=x.dtype, device=x.device)
        state, _ = mala_step(target, mala_init(target, x), step_size, noise, torch.log(u))
        return state.x

    return kernel


def _mala_kernel(mutant: str | None, step_size: float, seed: int) -> Kernel:
    """The correct MALA kernel, or the mutant impersonating it."""
    if mutant is not None:
        return _mutant_kernel(mutant, _target(), step_size, seed)
    return _correct_mala_kernel(_target(), step_size, make_generator(seed + MUTANT_SEED_OFFSET))


def _mala_from_target(sc: Scenario, chains: int, mutant: str | None, seed: int) -> np.ndarray:
    """x_T of ``chains`` MALA chains started from exact target draws (stationary under H0).

    The correct input runs the production ``sample_mala``; a mutant runs through ``sample_ula``'s
    kernel slot from the same start points (same divergence guard).
    """
    target = _target()
    x0 = target.sample(chains, generator=make_generator(seed + 2 * MUTANT_SEED_OFFSET))
    if mutant is None:
        run = sample_mala(target, sc.steps, sc.step_size, chains=chains, x0=x0, seed=seed, keep="final")
    else:
        kernel = _mutant_kernel(mutant, target, sc.step_size, seed)  # type: ignore[arg-type]
        run = sample_ula(target, sc.steps, sc.step_size, chains=chains, x0=x0, seed=seed, kernel=kernel, keep="final")
    return run.final.detach().cpu().double().numpy()


def _law(sc: Scenario) -> theory.ULALaw:
    return theory.ula_law(_target(), sc.step_size, sc.steps, sc.start)  # type: ignore[arg-type]


def planned_stationary_chains(alpha: float) -> int:
    """Chains for ``ula_stationary@planned``: required_samples of the covariance test for PLANNED_EFFECT."""
    return required_samples("cov", PLANNED_EFFECT, alpha=alpha / 2, power=PLANNED_POWER)


def bfloat16_variance_error(step_size: float) -> float:
    """Relative variance error, in the worst whitened direction, of ULA's stationary law with a bfloat16 precision matrix."""
    s = theory.stationary_cov(_target(), step_size)
    p16 = _target().precision.to(torch.bfloat16).double()
    s16 = theory.stationary_cov(Gaussian(_target().mean, torch.linalg.inv(p16)), step_size)
    chol = np.linalg.cholesky(s)
    white = np.linalg.solve(chol, np.linalg.solve(chol, s16).T)
    return float(np.abs(np.linalg.eigvalsh(white) - 1).max())


class _PosteriorView:
    """A batched 1-D normal posterior seen through the attributes the kernel mutants read."""

    def __init__(self, post: Any) -> None:
        self.dim = 1
        self.mean = post.mean  # (S, 1): one posterior mean per chain
        self.precision = torch.tensor([[1.0 / post.var]], dtype=torch.float64)
        self.cov = torch.tensor([[post.var]], dtype=torch.float64)
        self.log_prob = post.log_prob


def _sbc_sampler(mutant: str | None, seed: int) -> tuple[ConjugateGaussianModel, Any]:
    model = ConjugateGaussianModel()
    if mutant is None:
        return model, mala_posterior_sampler(model, SBC_STEP_SIZE, draws=SBC_DRAWS, thin=SBC_THIN)
    uniforms = make_generator(seed + MUTANT_SEED_OFFSET)

    def sampler(y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        post = model.posterior(y)
        x0 = post.mean + model.posterior_sd * torch.randn(post.mean.shape, generator=generator, dtype=torch.float64)
        kernel = kernel_mutant(mutant).make(_PosteriorView(post), SBC_STEP_SIZE, generator=uniforms)
        run = sample_ula(post, SBC_DRAWS * SBC_THIN, SBC_STEP_SIZE, chains=y.shape[0], x0=x0, generator=generator,
                         thin=SBC_THIN, keep="trace", kernel=kernel)
        return run.trace[..., 0].T.contiguous()  # type: ignore[index]

    return model, sampler


# ----- the checks, in table order ---------------------------------------------------------------


@calibration_check(
    "ula_law_mean@transient", domain="langevin", function="genbench.testing.gaussian.check_mean",
    null_hypothesis="x_T of independent ULA chains has the exact mean m + A^T(x0 - m) (covariance known)",
    scenario=TRANSIENT, mutants=ULA_MUTANTS,
    # Each of these moves the mean of x_5 by >= 0.1 Mahalanobis units (n = 2000 chains).
    claims=("score_sign_flipped", "cov_for_precision", "half_drift", "mean_dropped", "noise_shared_across_chains"),
    why="the noise law cannot move the mean; drift bugs do",
)
def _law_mean(sc: Scenario, profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    law = _law(sc)
    return check_mean(_ula_final(sc, profile.chains, mutant, seed), law.mean, law.cov, alpha=profile.alpha)


@calibration_check(
    "ula_law_cov@transient", domain="langevin", function="genbench.testing.gaussian.check_cov",
    null_hypothesis="x_T of independent ULA chains has the exact covariance sum_k A^k (2 mu I) A^k",
    scenario=TRANSIENT, mutants=ULA_MUTANTS,
    claims=("noise_sqrt_mu", "score_sign_flipped", "cov_for_precision", "half_drift", "skipped_first_step",
            "noise_shared_across_coords", "noise_shared_across_chains", "noise_frozen_in_time"),
    why="T=5: one step fewer changes the slow direction's variance by ~20%",
)
def _law_cov(sc: Scenario, profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    return check_cov(_ula_final(sc, profile.chains, mutant, seed), _law(sc).cov, alpha=profile.alpha)


@calibration_check(
    "ula_law@transient", domain="langevin", function="genbench.testing.gaussian.check_ula_law",
    null_hypothesis="x_T of independent ULA chains ~ exact law N(mean_T, cov_T) (mean and cov tests, Bonferroni)",
    scenario=TRANSIENT, mutants=ULA_MUTANTS,
    claims=("noise_sqrt_mu", "score_sign_flipped", "cov_for_precision", "half_drift", "mean_dropped",
            "skipped_first_step", "noise_shared_across_coords", "noise_shared_across_chains", "noise_frozen_in_time"),
    why="the union of the mean and covariance claims (each component at alpha/2)",
)
def _ula_law(sc: Scenario, profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    x = _ula_final(sc, profile.chains, mutant, seed)
    return check_ula_law(x, _target(), sc.step_size, sc.steps, sc.start, alpha=profile.alpha)  # type: ignore[arg-type]


@calibration_check(
    "gaussian_shape@one_step", domain="langevin", function="genbench.testing.shape.check_gaussian_shape",
    null_hypothesis="x_1 of independent ULA chains is N(exact mean, exact covariance)",
    scenario=ONE_STEP, mutants=ULA_MUTANTS,
    claims=("noise_sqrt_mu", "score_sign_flipped", "cov_for_precision", "uniform_noise", "rademacher_noise",
            "noise_shared_across_coords", "noise_shared_across_chains", "skipped_first_step"),
    why="after one step from a fixed point the law IS the noise law: its shape shows directly",
)
def _shape_one_step(sc: Scenario, profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    law = _law(sc)
    x = _ula_final(sc, profile.chains, mutant, seed)
    return check_gaussian_shape(x, law.mean, law.cov, alpha=profile.alpha, seed=seed)


# score_sign_flipped grows the stiff direction by 2.5x per step: ~1e79 at T = 200, finite in float64,
# so the check (not the divergence guard, which stops only non-finite states) rejects it.
STATIONARY_CLAIMS = ("noise_sqrt_mu", "score_sign_flipped", "cov_for_precision", "half_drift", "mean_dropped", "noise_shared_across_coords",
                     "noise_shared_across_chains", "noise_frozen_in_time")


@calibration_check(
    "ula_stationary", domain="langevin", function="genbench.testing.gaussian.check_stationary",
    null_hypothesis="x_T (T past mixing) ~ ULA's stationary law N(m, S_mu), S_mu = Sigma (I - mu P/2)^-1",
    scenario=STATIONARY, mutants=ULA_MUTANTS, claims=STATIONARY_CLAIMS,
    why=(
        "uniform/Rademacher noise have the right moments, so the stationary law's moments are unchanged; "
        "a skipped step is invisible at stationarity"
    ),
)
def _stationary(sc: Scenario, profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    # T = 200 at mu = 0.15: the exact law differs from N(m, S_mu) by |rho|^T < 1e-7 (negligible).
    return check_stationary(_ula_final(sc, profile.chains, mutant, seed), _target(), sc.step_size, alpha=profile.alpha)


@calibration_check(
    "ula_stationary@planned", domain="langevin", function="genbench.testing.gaussian.check_stationary",
    null_hypothesis="x_T (T past mixing) ~ ULA's stationary law N(m, S_mu), with a planned number of chains",
    scenario=STATIONARY.with_settings(chains=(
        f"required_samples('cov', {PLANNED_EFFECT}, alpha/2, power={PLANNED_POWER}): a {PLANNED_EFFECT:.0%} "
        "variance error in one whitened direction")),
    mutants=ULA_MUTANTS, claims=(*STATIONARY_CLAIMS, "bfloat16_state"),
    why=(
        "bfloat16 rounds the precision matrix to [[5.25, -4.75], [-4.75, 5.25]]: the soft eigenvalue "
        "becomes 0.5 instead of 0.526, so S_mu's variance along (1, 1) is 5.05% too large "
        "(bfloat16_variance_error(0.15)); the chains are planned to see 5% with power 0.95, "
        "and every bug claimed at n=2000 only gets easier"
    ),
)
def _stationary_planned(sc: Scenario, profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    x = _ula_final(sc, planned_stationary_chains(profile.alpha), mutant, seed)
    return check_stationary(x, _target(), sc.step_size, alpha=profile.alpha)


@calibration_check(
    "ula_one_step_law", domain="langevin", function="genbench.testing.conservation.check_ula_one_step",
    null_hypothesis="one ULA step from exact target draws has law N(m, Sigma + mu^2 P)",
    scenario=CONSERVATION, mutants=ULA_MUTANTS,
    claims=("noise_sqrt_mu", "score_sign_flipped", "cov_for_precision", "skipped_first_step",
            "noise_shared_across_coords", "noise_shared_across_chains"),
    why=(
        "a skipped step does not move the chains (movement test); noise-law bugs are diluted by x; "
        "half_drift gives cov Sigma + mu I + mu^2 P/4 against Sigma + mu^2 P: the stiff direction "
        "shrinks ~6% while the soft one grows ~7%, so the trace (scale test) barely moves; "
        "mean_dropped shifts the mean by mu P m: noncentrality n*0.0066 = 13 at n=2000, exact power of "
        "the chi2_2 mean test at alpha/4 is 0.79 (< 0.9, so not claimed)"
    ),
)
def _ula_one_step(sc: Scenario, profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    target, mu = _target(), sc.step_size
    kernel = ula_kernel(target, mu) if mutant is None else _mutant_kernel(mutant, target, mu, seed)  # type: ignore[arg-type]
    return check_ula_one_step(kernel, target, mu, n=profile.chains, alpha=profile.alpha, seed=seed)  # type: ignore[arg-type]


@calibration_check(
    "mala_invariance", domain="langevin", function="genbench.testing.gaussian.check_stationary",
    null_hypothesis="MALA chains started from exact target draws are still ~ N(m, Sigma) after T steps",
    scenario=MALA, mutants=MALA_MUTANTS,
    claims=("mala_always_accept", "mala_no_proposal_correction", "mala_inverted_accept"),
    why="mu=0.15: ULA's stationary variance in the stiff direction is 4x the target's",
)
def _mala(sc: Scenario, profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    return check_stationary(_mala_from_target(sc, profile.chains, mutant, seed), _target(), None, alpha=profile.alpha)


@calibration_check(
    "mala_one_step", domain="langevin", function="genbench.testing.conservation.check_one_step",
    null_hypothesis="one MALA step from exact target draws leaves the target invariant, and chains move",
    scenario=CONSERVATION, mutants=MALA_MUTANTS, claims=("mala_always_accept", "mala_inverted_accept"),
    why="one step of ULA from the target inflates the covariance by mu^2 P (~2% at mu=0.15)",
)
def _mala_one_step(sc: Scenario, profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    kernel = _mala_kernel(mutant, sc.step_size, seed)  # type: ignore[arg-type]
    return check_one_step(kernel, _target(), n=profile.chains, alpha=profile.alpha, seed=seed)


@calibration_check(
    "ksd@transient", domain="langevin", function="genbench.testing.ksd.check_ksd",
    null_hypothesis="x_T of independent ULA chains ~ its exact Gaussian law (IMQ KSD, Rademacher wild bootstrap)",
    scenario=TRANSIENT.with_settings(samples="profile.ksd_samples", bootstrap="profile.ksd_bootstrap"),
    mutants=ULA_MUTANTS, claims=("score_sign_flipped", "cov_for_precision", "noise_frozen_in_time"),
    why="KSD at n=500 sees only gross errors of the law; it is the score-only check, not the sharpest",
)
def _ksd_law(sc: Scenario, profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    law = _law(sc)
    x = _ula_final(sc, profile.ksd_samples, mutant, seed)
    exact = Gaussian(law.mean, law.cov)  # the exact law of x_T is the target of this test
    return check_ksd(x, exact, alpha=profile.alpha, seed=seed, n_boot=profile.ksd_bootstrap)


@calibration_check(
    "ksd_mala", domain="langevin", function="genbench.testing.ksd.check_ksd",
    null_hypothesis="MALA chains started from the target are still ~ target (IMQ KSD from the score)",
    scenario=MALA.with_settings(samples="profile.ksd_samples", bootstrap="profile.ksd_bootstrap"),
    mutants=MALA_MUTANTS, claims=("mala_inverted_accept",),
    why="inverted acceptance drives chains into the tails; the others bias the covariance mildly",
)
def _ksd_mala(sc: Scenario, profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    x = _mala_from_target(sc, profile.ksd_samples, mutant, seed)
    return check_ksd(x, _target(), alpha=profile.alpha, seed=seed, n_boot=profile.ksd_bootstrap)


@calibration_check(
    "sbc_mala", domain="langevin", function="genbench.testing.sbc.check_sbc",
    null_hypothesis="SBC ranks of theta among MALA's posterior draws are uniform (conjugate normal model)",
    scenario=SBC, mutants=MALA_MUTANTS, claims=("mala_inverted_accept",),
    why=(
        "mu=0.1 on a posterior of variance 1/6: ULA (always-accept) inflates the variance by "
        "1/(1 - mu P/2) - 1 = 43%, a mild rank distortion; inverted acceptance is gross"
    ),
)
def _sbc(sc: Scenario, profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    model, sampler = _sbc_sampler(mutant, seed)
    return check_sbc(sampler, model, replications=profile.sbc_replications, bins=SBC_BINS, alpha=profile.alpha,
                     seed=seed)


@calibration_check(
    "sequential_ula_law", domain="langevin", function="genbench.testing.sequential.check_sequential",
    null_hypothesis="x_T ~ exact ULA law, tested in up to 3 stages of n, 2n, 4n fresh chains (Gandy & Scott)",
    scenario=TRANSIENT.with_settings(stage_n="profile.sequential_n, doubling", max_stages=3),
    mutants=ULA_MUTANTS,
    claims=("noise_sqrt_mu", "score_sign_flipped", "cov_for_precision", "mean_dropped", "noise_shared_across_coords",
            "noise_shared_across_chains", "noise_frozen_in_time"),
    why="gross bugs are rejected at stage 1 on n chains; alpha/3 is spent per stage",
)
def _sequential(sc: Scenario, profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    def stage(n: int, stage_seed: int) -> CheckResult:
        x = _ula_final(sc, n, mutant, stage_seed)
        return check_ula_law(x, _target(), sc.step_size, sc.steps, sc.start, alpha=profile.alpha)  # type: ignore[arg-type]

    return check_sequential(stage, n=profile.sequential_n, alpha=profile.alpha, max_stages=3, seed=seed).result
