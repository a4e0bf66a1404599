"""Posterior samplers for the conjugate normal model: genbench's ULA and MALA, one chain per data set.

A ``PosteriorSampler`` maps S data sets y (S, m) and a generator to S rows of L posterior draws; the
simulation-based calibration check (``genbench.testing.sbc``) ranks the true parameter among them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from genbench._validate import positive_float, positive_int
from genbench.langevin.mala import sample_mala
from genbench.langevin.ula import sample_ula
from genbench.targets import ConjugateGaussianModel

__all__ = ["PosteriorSampler", "mala_posterior_sampler", "ula_posterior_sampler"]

PosteriorSampler = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
"""``sampler(y, generator) -> draws``: y (S, m) data sets, draws (S, L) posterior draws for each."""


def _langevin_posterior_sampler(
    which: str, model: ConjugateGaussianModel, step_size: float, draws: int, thin: int, burn_in: int
) -> PosteriorSampler:
    step_size = positive_float("step_size", step_size)
    draws = positive_int("draws", draws)
    thin = positive_int("thin", thin)
    burn_in = positive_int("burn_in", burn_in, minimum=0)

    def sampler(y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        post = model.posterior(y)
        # Start at an exact draw of this model's posterior: the chain is stationary from step 0.
        x0 = post.mean + model.posterior_sd * torch.randn(post.mean.shape, generator=generator, dtype=torch.float64)
        run_fn = sample_mala if which == "mala" else sample_ula
        run = run_fn(
            post, burn_in + draws * thin, step_size, chains=y.shape[0], x0=x0, generator=generator,
            burn_in=burn_in, thin=thin, keep="trace",
        )
        assert run.trace is not None
        return run.trace[..., 0].T.contiguous()  # (n_kept, S, 1) -> (S, L)

    return sampler


def mala_posterior_sampler(
    model: ConjugateGaussianModel, step_size: float, *, draws: int = 99, thin: int = 10, burn_in: int = 0
) -> PosteriorSampler:
    """A ``PosteriorSampler`` running genbench's MALA on ``model``'s posteriors (one chain per data set)."""
    return _langevin_posterior_sampler("mala", model, step_size, draws, thin, burn_in)


def ula_posterior_sampler(
    model: ConjugateGaussianModel, step_size: float, *, draws: int = 99, thin: int = 10, burn_in: int = 0
) -> PosteriorSampler:
    """A ``PosteriorSampler`` running genbench's ULA (biased by O(step_size)) on ``model``'s posteriors."""
    return _langevin_posterior_sampler("ula", model, step_size, draws, thin, burn_in)
