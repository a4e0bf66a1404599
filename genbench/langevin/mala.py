"""Metropolis-adjusted Langevin algorithm (MALA): the ULA proposal plus an accept/reject step.

The proposal y = x + μ∇log π(x) + √(2μ) n has density q(y | x) = N(x + μ∇log π(x), 2μI); accepting
with probability min(1, π(y) q(x | y) / (π(x) q(y | x))) makes π exactly invariant, so MALA has
no step-size bias: it is the bias-free reference against which ULA's O(μ) bias is measured.
Each step draws (d, chains) standard normals, then (chains,) uniforms, from the run's generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from genbench._runtime import resolve_device, resolve_dtype
from genbench._validate import positive_int
from genbench.errors import ParameterError
from genbench.langevin.ula import (
    CHECK_EVERY,
    LangevinRun,
    _drive,
    _finish,
    _generator,
    _initial_state,
    _Stepper,
    _step_size_arg,
    _target_on,
    _validate_run,
)
from genbench.targets import Gaussian, Target


@dataclass(frozen=True)
class MALAState:
    """A batch of MALA states with their cached log-density (chains,) and score (chains, d)."""

    x: torch.Tensor
    log_prob: torch.Tensor
    score: torch.Tensor


def mala_init(target: Target, x: torch.Tensor) -> MALAState:
    """The MALA state at positions ``x`` (chains, d)."""
    return MALAState(x, target.log_prob(x), target.score(x))


def mala_step(
    target: Target,
    state: MALAState,
    step_size: float | torch.Tensor,
    noise: torch.Tensor,
    log_uniform: torch.Tensor,
) -> tuple[MALAState, torch.Tensor]:
    """One MALA transition given standard-normal ``noise`` (chains, d) and log-uniforms (chains,).

    Returns the new state and the boolean acceptance of each chain. ``step_size`` is a scalar or
    a (chains, 1) tensor. Proposals with a non-finite log-density are rejected.
    """
    mu = step_size
    sqrt2mu = torch.sqrt(2.0 * mu) if isinstance(mu, torch.Tensor) else math.sqrt(2.0 * mu)
    mu_row = mu.reshape(-1) if isinstance(mu, torch.Tensor) else mu
    y = state.x + mu * state.score + sqrt2mu * noise
    logp_y = target.log_prob(y)
    score_y = target.score(y)
    # log q(y|x) = −|y − x − μ s(x)|² / (4μ) = −|n|²/2 ; log q(x|y) = −|x − y − μ s(y)|² / (4μ).
    log_q_fwd = -0.5 * (noise * noise).sum(-1)
    back = state.x - y - mu * score_y
    log_q_bwd = -(back * back).sum(-1) / (4.0 * mu_row)
    log_alpha = logp_y - state.log_prob + log_q_bwd - log_q_fwd
    # NaN compares False, so a proposal with an undefined ratio is rejected.
    accept = log_uniform < log_alpha
    a = accept.unsqueeze(-1)
    new = MALAState(
        x=torch.where(a, y, state.x),
        log_prob=torch.where(accept, logp_y, state.log_prob),
        score=torch.where(a, score_y, state.score),
    )
    return new, accept


class _MALAStepper(_Stepper):
    """Draws noise and uniforms and applies :func:`mala_step`; counts acceptances on the device."""

    def __init__(self, target: Target, mu: float | torch.Tensor, gen: torch.Generator, xt: torch.Tensor):
        d, chains = xt.shape
        self.target, self.gen = target, gen
        self.mu = mu.reshape(-1, 1) if isinstance(mu, torch.Tensor) else mu
        self.noise = torch.empty(d, chains, device=xt.device, dtype=xt.dtype)
        self.u = torch.empty(chains, device=xt.device, dtype=xt.dtype)
        self.accepted = torch.zeros((), device=xt.device, dtype=torch.float64)
        self.state = mala_init(target, xt.T)
        self.state_ptr = xt.data_ptr()

    def __call__(self, xt: torch.Tensor) -> torch.Tensor:
        if xt.data_ptr() != self.state_ptr:  # a replay from a checkpoint: recompute the cache
            self.state = mala_init(self.target, xt.T)
        torch.randn(self.noise.shape, generator=self.gen, out=self.noise)
        torch.rand(self.u.shape, generator=self.gen, out=self.u)
        self.state, accept = mala_step(self.target, self.state, self.mu, self.noise.T, torch.log(self.u))
        self.accepted += accept.sum()
        out = self.state.x.T.contiguous()
        self.state = MALAState(out.T, self.state.log_prob, self.state.score)
        self.state_ptr = out.data_ptr()
        return out


def sample_mala(
    target: Target,
    steps: int,
    step_size: float | torch.Tensor,
    *,
    chains: int = 1,
    x0: Any = None,
    seed: int = 0,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = torch.float64,
    burn_in: int = 0,
    thin: int = 1,
    keep: str = "final",
    check_every: int = CHECK_EVERY,
) -> LangevinRun:
    """Run MALA on ``chains`` independent chains; same arguments and result as :func:`sample_ula`.

    MALA is unbiased for any step size, so no stability bound applies; ``acceptance_rate`` is
    reported over all chains and steps.
    """
    steps, chains, burn_in, thin, keep = _validate_run(steps, chains, burn_in, thin, keep)
    check_every = positive_int("check_every", check_every)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    target = _target_on(target, dev, dt)
    mu = _step_size_arg(step_size, chains, dev, dt)
    gen = _generator(seed, generator, dev)
    xt = _initial_state(x0, chains, target.dim, dev, dt)
    stepper = _MALAStepper(target, mu, gen, xt)
    if not bool(torch.isfinite(stepper.state.log_prob).all()):
        raise ParameterError("x0 must lie where the target's log-density is finite")
    centre = target.mean if isinstance(target, Gaussian) else xt.mean(dim=1)
    final_t, trace, moments, n_kept, elapsed = _drive(
        "MALA", stepper, xt, steps=steps, burn_in=burn_in, thin=thin, keep=keep, gen=gen,
        step_size=mu, bound=None, centre=centre, check_every=check_every,
    )
    rate = float(stepper.accepted) / (chains * steps)
    return _finish("mala", final_t, trace, moments, n_kept, elapsed, steps=steps, step_size=mu, chains=chains,
                   burn_in=burn_in, thin=thin, keep=keep, seed=None if generator is not None else seed,
                   device=dev, dtype=dt, acceptance_rate=rate)
