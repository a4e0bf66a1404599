"""Metropolis-adjusted Langevin algorithm (MALA): the ULA proposal plus an accept/reject step.

The proposal y = x + μ∇log π(x) + √(2μ) n has density q(y | x) = N(x + μ∇log π(x), 2μI); accepting
with probability min(1, π(y) q(x | y) / (π(x) q(y | x))) makes π exactly invariant, so MALA has
no step-size bias: it is the bias-free reference against which ULA's O(μ) bias is measured.
Each step takes the noise and one log-uniform per chain from the run's stream (``_noise.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from genbench._runtime import resolve_device, resolve_dtype
from genbench._validate import positive_int
from genbench.errors import ParameterError
from genbench.langevin._driver import (
    CHECK_EVERY,
    LangevinRun,
    Recorder,
    drive,
    finish,
    initial_state,
    resolve_generator,
    step_size_arg,
    target_on,
    validate_run,
)
from genbench.langevin._fused import GaussianMALA
from genbench.langevin._noise import NoiseStream
from genbench.targets import Gaussian, Target

__all__ = ["MALAState", "mala_init", "mala_step", "sample_mala"]


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


class MALAEngine:
    """:func:`mala_step` for any target, one step at a time; counts acceptances on the device."""

    name = "torch"

    def __init__(self, target: Target, mu: float | torch.Tensor, xt: torch.Tensor):
        self.target = target
        self.mu = mu.reshape(-1, 1) if isinstance(mu, torch.Tensor) else mu
        self.state = mala_init(target, xt.T)
        self.accepted_t = torch.zeros((), device=xt.device, dtype=torch.int64)

    def _step(self, state: MALAState, n: torch.Tensor, log_u: torch.Tensor) -> MALAState:
        new, accept = mala_step(self.target, state, self.mu, n.T, log_u)
        self.accepted_t += accept.sum()
        return new

    def block(self, x: torch.Tensor, noise: torch.Tensor, log_u: torch.Tensor | None, t0: int,
              rec: Recorder) -> tuple[torch.Tensor, bool]:
        """Run the block's steps from the cached state, recording kept states."""
        assert log_u is not None
        d, chains = x.shape
        state = self.state
        for j in range(noise.shape[0]):
            state = self._step(state, noise[j, : d * chains].view(d, chains), log_u[j])
            rec.step(t0 + j + 1, state.x.T)
        self.state = state
        return state.x.T.contiguous(), bool(torch.isfinite(state.x).all())

    def locate(self, x: torch.Tensor, noise: torch.Tensor, log_u: torch.Tensor | None) -> int | None:  # pragma: no cover
        """Replay the block from x and return the first non-finite step."""
        assert log_u is not None
        d, chains = x.shape
        state = mala_init(self.target, x.T)
        for j in range(noise.shape[0]):
            state = self._step(state, noise[j, : d * chains].view(d, chains), log_u[j])
            if not bool(torch.isfinite(state.x).all()):
                return j + 1
        return None

    def total_accepted(self) -> int:
        """Accepted proposals over all chains and steps so far."""
        return int(self.accepted_t)


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
    steps, chains, burn_in, thin, keep = validate_run(steps, chains, burn_in, thin, keep)
    check_every = positive_int("check_every", check_every)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    target = target_on(target, dev, dt)
    mu = step_size_arg(step_size, chains, dev, dt)
    gen = resolve_generator(seed, generator, dev)
    xt = initial_state(x0, chains, target.dim, dev, dt)
    if isinstance(target, Gaussian) and not isinstance(mu, torch.Tensor) and target.dim <= 8:
        engine: Any = GaussianMALA(target, mu, xt)
        log_p0 = engine.lp
    else:
        engine = MALAEngine(target, mu, xt)
        log_p0 = engine.state.log_prob
    stream = NoiseStream(gen, target.dim, chains, dev, dt, check_every=check_every, uniforms=True,
                         keyed=getattr(engine, "keyed", False))
    if not bool(torch.isfinite(log_p0).all()):
        raise ParameterError("x0 must lie where the target's log-density is finite")
    centre = target.mean if isinstance(target, Gaussian) else xt.mean(dim=1)
    rec = Recorder(keep, steps, burn_in, thin, target.dim, chains, dev, dt, centre)
    final_t, elapsed = drive("MALA", engine, xt, stream, rec, steps=steps, step_size=mu, bound=None)
    rate = engine.total_accepted() / (chains * steps)
    return finish("mala", final_t, rec, elapsed, steps=steps, step_size=mu, chains=chains,
                  seed=None if generator is not None else seed, device=dev, dtype=dt, engine=engine.name,
                  acceptance_rate=rate)
