"""Simulation-based calibration (SBC; Talts, Betancourt, Simpson, Vehtari & Gelman 2018) of a posterior sampler.

Model (conjugate, posterior known): θ ~ N(μ₀, τ²), y_j | θ ~ N(θ, s²) for j = 1..m, so
θ | y ~ N(μ_n, σ_n²) with σ_n² = 1/(1/τ² + m/s²), μ_n = σ_n²(μ₀/τ² + Σy/s²).

For each of S replications: draw θ ~ prior, y | θ, run the sampler on the posterior for L (thinned)
draws and record the rank r = #{draws < θ} ∈ {0, …, L}. If the draws are i.i.d. from the exact
posterior, θ and the draws are exchangeable given y and r is uniform on {0, …, L} (Talts et al.,
Theorem 1). MCMC draws are correlated, which makes ranks only approximately uniform: thin until the
autocorrelation is negligible (Talts et al. §5), and start each chain from an exact posterior draw so
no burn-in bias remains (possible here because the posterior is known).

Test: ranks binned into B equal-probability bins ((L + 1) divisible by B), Pearson χ² against
uniform with B − 1 degrees of freedom (asymptotic; expected counts S/B ≥ 5 are required).
Power: under bin probabilities pᵢ the statistic is approximately noncentral χ²_{B−1}(λ = S w²) with
Cohen's w² = B Σ (pᵢ − 1/B)², so the detectable w at power 1 − β solves that equation.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import scipy.optimize
import scipy.stats
import torch

from genbench._runtime import make_generator
from genbench._validate import nonnegative_seed, positive_float, positive_int, probability
from genbench.errors import ParameterError
from genbench.langevin import posterior as _posterior
from genbench.langevin.posterior import PosteriorSampler
from genbench.planning import DEFAULT_ALPHA, DEFAULT_POWER
from genbench.targets import BatchedNormalPosterior, ConjugateGaussianModel
from genbench.testing._grammar import warn_renamed
from genbench.testing._result import CheckResult

__all__ = [
    "ConjugateGaussianModel",
    "BatchedNormalPosterior",
    "PosteriorSampler",
    "sbc_ranks",
    "sbc_detectable_effect",
    "sbc_required_samples",
    "check_sbc",
    "assert_sbc",
]

_MOVED = {"mala_posterior_sampler", "ula_posterior_sampler"}


def __getattr__(name: str) -> object:
    # The Langevin posterior samplers are samplers, not checks: they live in genbench.langevin.posterior.
    if name in _MOVED:
        warnings.warn(
            f"genbench.testing.sbc.{name} moved to genbench.langevin.posterior.{name}; "
            "the old location will be removed in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_posterior, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sbc_ranks(theta: torch.Tensor, draws: torch.Tensor, generator: torch.Generator) -> np.ndarray:
    """Rank of each θ_i among its L draws, in {0..L}; ties (a draw equal to θ) broken uniformly at random."""
    if draws.ndim != 2 or theta.shape != draws.shape[:1]:
        raise ParameterError(f"draws must have shape ({theta.shape[0]}, L), got {tuple(draws.shape)}")
    below = (draws < theta[:, None]).sum(1)
    ties = (draws == theta[:, None]).sum(1)
    extra = torch.floor(torch.rand(theta.shape, generator=generator, dtype=torch.float64) * (ties + 1)).long()
    return (below + extra).cpu().numpy()


def _sbc_power(w: float, replications: int, bins: int, alpha: float) -> float:
    crit = scipy.stats.chi2.isf(alpha, bins - 1)
    return float(scipy.stats.ncx2.sf(crit, bins - 1, replications * w * w))


def sbc_detectable_effect(
    replications: int, *, bins: int = 10, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER
) -> float:
    """Smallest Cohen's w = √(B Σ(pᵢ − 1/B)²) of the binned rank law detected with prob ``power``."""
    s = positive_int("replications", replications)
    bins = positive_int("bins", bins, minimum=2)
    alpha = probability("alpha", alpha)
    power = probability("power", power)
    return float(scipy.optimize.brentq(lambda w: _sbc_power(w, s, bins, alpha) - power, 1e-9, 1e3))


def sbc_required_samples(
    effect: float, *, bins: int = 10, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER
) -> int:
    """Replications S needed to detect a binned-rank deviation of Cohen's w = ``effect`` with prob ``power``."""
    w = positive_float("effect", effect)
    bins = positive_int("bins", bins, minimum=2)
    alpha = probability("alpha", alpha)
    power = probability("power", power)
    crit = scipy.stats.chi2.isf(alpha, bins - 1)
    lam = scipy.optimize.brentq(lambda nc: scipy.stats.ncx2.sf(crit, bins - 1, nc) - power, 1e-9, 1e6)
    return max(math.ceil(lam / (w * w)), 5 * bins)


def sbc_required_replications(
    effect: float, *, bins: int = 10, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER
) -> int:
    """Deprecated name of ``sbc_required_samples`` (removed in the next release)."""
    warn_renamed(__name__, "sbc_required_replications", "sbc_required_samples")
    return sbc_required_samples(effect, bins=bins, alpha=alpha, power=power)


def check_sbc(
    sampler: PosteriorSampler,
    model: ConjugateGaussianModel,
    *,
    replications: int = 1000,
    bins: int = 10,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    power: float = DEFAULT_POWER,
) -> CheckResult:
    """Test H0: SBC ranks of the true θ among ``sampler``'s posterior draws are uniform (χ² on binned ranks).

    H0: for θ ~ prior and y | θ from ``model``, the rank of θ among the sampler's L draws is uniform on
    {0..L} (true when the draws are independent exact posterior draws). Level ``alpha`` (Pearson χ²_{B−1},
    asymptotic; S/B ≥ 5 enforced). ``seed`` drives the simulation of (θ, y), the sampler and tie-breaking.
    Detectable effect: Cohen's w of the binned rank law at power ``power`` (noncentral χ²).
    """
    if not isinstance(model, ConjugateGaussianModel):
        raise ParameterError(f"model must be a ConjugateGaussianModel, got {type(model).__name__}")
    if not callable(sampler):
        raise ParameterError("sampler must be callable as sampler(y, generator) -> draws of shape (S, L)")
    s = positive_int("replications", replications)
    bins = positive_int("bins", bins, minimum=2)
    alpha = probability("alpha", alpha)
    power = probability("power", power)
    seed = nonnegative_seed("seed", seed)
    if s < 5 * bins:
        raise ParameterError(f"replications must be >= 5 * bins = {5 * bins} for the chi^2 approximation, got {s}")
    gen = make_generator(seed)
    theta, y = model.simulate(s, gen)
    draws = sampler(y, gen)
    if not isinstance(draws, torch.Tensor) or draws.ndim != 2 or draws.shape[0] != s:
        raise ParameterError(f"sampler must return a tensor of shape ({s}, L), got {getattr(draws, 'shape', None)}")
    draws = draws.to(torch.float64)
    if not bool(torch.isfinite(draws).all()):
        raise ParameterError("sampler returned non-finite draws")
    n_draws = draws.shape[1]
    if (n_draws + 1) % bins:
        raise ParameterError(f"bins must divide L + 1 = {n_draws + 1} (L = draws per replication), got bins={bins}")
    ranks = sbc_ranks(theta, draws, gen)
    counts = np.bincount(ranks // ((n_draws + 1) // bins), minlength=bins)
    expected = s / bins
    stat = float(np.sum((counts - expected) ** 2) / expected)
    p = float(scipy.stats.chi2.sf(stat, bins - 1))
    w_obs = math.sqrt(stat / s)
    return CheckResult(
        name="sbc_ranks",
        null_hypothesis="SBC ranks of the true parameter among the posterior draws are uniform",
        statistic=stat,
        p_value=p,
        alpha=alpha,
        n=s,
        detectable_effect=sbc_detectable_effect(s, bins=bins, alpha=alpha, power=power),
        effect_unit="Cohen's w of the binned rank law, sqrt(B * sum (p_i - 1/B)^2)",
        power=power,
        details={
            "statistic_meaning": f"Pearson chi^2 with {bins - 1} dof on {bins} rank bins",
            "rank_counts": counts.tolist(),
            "draws_per_replication": n_draws,
            "observed_w": w_obs,
            "mean_rank_fraction": float(ranks.mean() / n_draws),
            "seed": seed,
        },
    )


def assert_sbc(
    sampler: PosteriorSampler,
    model: ConjugateGaussianModel,
    *,
    replications: int = 1000,
    bins: int = 10,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    power: float = DEFAULT_POWER,
    effect: float | None = None,
) -> CheckResult:
    """Raise CheckFailed unless ``check_sbc`` (H0: uniform SBC ranks) passes at ``alpha``.

    With ``effect`` (Cohen's w), first raise ParameterError if ``replications`` cannot detect it with
    probability ``power``.
    """
    if effect is not None:
        needed = sbc_required_samples(effect, bins=bins, alpha=alpha, power=power)
        if replications < needed:
            raise ParameterError(
                f"replications={replications} is too small for SBC to detect Cohen's w {effect:g} with power "
                f"{power:g}; replications >= {needed} is needed"
            )
    return check_sbc(
        sampler, model, replications=replications, bins=bins, alpha=alpha, seed=seed, power=power
    ).raise_if_rejected()
