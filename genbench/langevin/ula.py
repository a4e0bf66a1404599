"""Batched unadjusted Langevin algorithm (ULA): a pure step, transition kernels, and the sampler.

ULA is  x_{t+1} = x_t + μ ∇log π(x_t) + √(2μ) n_t  with n_t ~ N(0, I). A *kernel* is a
``Callable[[x, noise], x_next]`` on (chains, d) tensors that performs one transition given the
standard-normal ``noise`` (same shape as ``x``); kernels never modify their arguments.
:func:`sample_ula` runs any kernel (the default one, or a deliberately broken one from the
calibration study) on ``chains`` independent chains and keeps the final state, the kept trace, or
only streaming moments. On a Gaussian target with one step size it runs the fused engine of
``_fused.py`` (a compiled block of steps per call on the CPU). The random stream is described in
``_noise.py``: for a seed the numbers do not depend on the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from genbench._runtime import resolve_device, resolve_dtype
from genbench._validate import positive_int
from genbench.errors import ParameterError
from genbench.langevin._driver import (
    CHECK_EVERY,
    LangevinRun,
    Recorder,
    check_stability,
    drive,
    finish,
    initial_state,
    resolve_generator,
    step_size_arg,
    target_on,
    validate_run,
)
from genbench.langevin._fused import GaussianULA
from genbench.langevin._noise import NoiseStream
from genbench.targets import Gaussian, Target

Kernel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["Kernel", "LangevinRun", "sample_ula", "ula_kernel", "ula_step"]


def ula_step(
    x: torch.Tensor, score_x: torch.Tensor, step_size: float | torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """One ULA update x + μ·score + √(2μ)·noise (μ a scalar or a (chains, 1) tensor)."""
    if isinstance(step_size, torch.Tensor):
        return x + step_size * score_x + torch.sqrt(2.0 * step_size) * noise
    return x + step_size * score_x + math.sqrt(2.0 * step_size) * noise


def _column_step(step_size: float | torch.Tensor, ref: torch.Tensor) -> float | torch.Tensor:
    """A per-chain step size as a (chains, 1) tensor on ``ref``'s device/dtype; scalars pass through."""
    if isinstance(step_size, torch.Tensor):
        return step_size.to(device=ref.device, dtype=ref.dtype).reshape(-1, 1)
    return float(step_size)


def ula_kernel(target: Target, step_size: float | torch.Tensor) -> Kernel:
    """The ULA transition for ``target`` (fused affine map for a Gaussian, ``target.score`` otherwise)."""
    if isinstance(target, Gaussian):
        return _gaussian_kernel(target, step_size)
    mu = step_size

    def kernel(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return ula_step(x, target.score(x), _column_step(mu, x), noise)

    return kernel


def _gaussian_kernel(target: Gaussian, step_size: float | torch.Tensor) -> Kernel:
    """ULA on N(m, Σ) is the affine map x ↦ A x + c + √(2μ) n with A = I − μΣ⁻¹, c = μΣ⁻¹m."""
    prec, m = target.precision, target.mean
    if isinstance(step_size, torch.Tensor):
        mu = step_size.to(device=m.device, dtype=m.dtype).reshape(-1, 1)
        sigma = torch.sqrt(2.0 * mu)

        def per_chain(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
            # Per-chain A differs by chain, so no single matrix: x − μ (x − m) Σ⁻¹ + σ n, row-wise.
            return torch.addcmul(x - mu * ((x - m) @ prec), sigma, noise)

        return per_chain
    mu_f = float(step_size)
    a_t, c = _affine(target, mu_f)
    sig = math.sqrt(2.0 * mu_f)

    def affine(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        # addmm(c, x, Aᵀ) = c + x Aᵀ for row-vector states; one fused call plus one axpy.
        return torch.addmm(c, x, a_t).add_(noise, alpha=sig)

    return affine


def _affine(target: Gaussian, mu: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(Aᵀ, c) of the Gaussian ULA map, formed in float64 then cast to the target's dtype."""
    prec = target.precision.to(torch.float64)
    m = target.mean.to(torch.float64)
    a = torch.eye(target.dim, dtype=torch.float64, device=prec.device) - mu * prec
    c = mu * (prec @ m)
    return a.T.contiguous().to(target.dtype), c.to(target.dtype)


class KernelEngine:
    """Any kernel, one step at a time on the (chains, d) views of the state and the noise."""

    def __init__(self, kernel: Kernel, dim: int, chains: int):
        self.kernel, self.shape, self.name = kernel, (chains, dim), "torch"

    def step(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """One transition of (d, chains) states; the result is a fresh contiguous (d, chains) tensor."""
        y = self.kernel(x.T, noise.T)
        if not isinstance(y, torch.Tensor) or tuple(y.shape) != self.shape:
            raise ParameterError(f"kernel must return a tensor of shape {self.shape}, got {getattr(y, 'shape', type(y))}")
        yt = y.T
        if not yt.is_contiguous() or yt.data_ptr() in (x.data_ptr(), noise.data_ptr()):
            yt = yt.contiguous() if not yt.is_contiguous() else yt.clone()
        return yt

    def block(self, x: torch.Tensor, noise: torch.Tensor, log_u: torch.Tensor | None, t0: int,
              rec: Recorder) -> tuple[torch.Tensor, bool]:
        """Run the block's steps, recording kept states; finite is checked once at the end."""
        d, chains = x.shape
        for j in range(noise.shape[0]):
            x = self.step(x, noise[j, : d * chains].view(d, chains))
            rec.step(t0 + j + 1, x)
        return x, bool(torch.isfinite(x).all())

    def locate(self, x: torch.Tensor, noise: torch.Tensor, log_u: torch.Tensor | None) -> int | None:
        """Replay the block from x and return the first non-finite step (None if the replay stays finite)."""
        d, chains = x.shape
        for j in range(noise.shape[0]):
            x = self.step(x, noise[j, : d * chains].view(d, chains))
            if not bool(torch.isfinite(x).all()):
                return j + 1
        return None


def sample_ula(
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
    kernel: Kernel | None = None,
    allow_unstable: bool = False,
    check_every: int = CHECK_EVERY,
) -> LangevinRun:
    """Run ULA on ``chains`` independent chains for ``steps`` steps (or any plugged-in ``kernel``).

    ``x0`` defaults to 0 (the assignment's start); ``generator`` overrides ``seed``. With a Gaussian
    target a step size at or above the stability bound raises ParameterError unless
    ``allow_unstable``. Non-finite states raise DivergenceError naming the first bad step.
    """
    steps, chains, burn_in, thin, keep = validate_run(steps, chains, burn_in, thin, keep)
    check_every = positive_int("check_every", check_every)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    target = target_on(target, dev, dt)
    mu = step_size_arg(step_size, chains, dev, dt)
    bound = check_stability(target, mu, allow_unstable)
    gen = resolve_generator(seed, generator, dev)
    xt = initial_state(x0, chains, target.dim, dev, dt)
    sampler = "ula"
    if kernel is not None:
        if not callable(kernel):
            raise ParameterError(f"kernel must be callable as kernel(x, noise) -> x_next, got {type(kernel).__name__}")
        engine: Any = KernelEngine(kernel, target.dim, chains)
        sampler = f"custom:{getattr(kernel, '__name__', type(kernel).__name__)}"
    elif isinstance(target, Gaussian) and not isinstance(mu, torch.Tensor) and target.dim <= 8:
        engine = GaussianULA(target, mu, xt)
    else:
        engine = KernelEngine(ula_kernel(target, mu), target.dim, chains)
    centre = target.mean if isinstance(target, Gaussian) else xt.mean(dim=1)
    stream = NoiseStream(gen, target.dim, chains, dev, dt, check_every=check_every, keyed=getattr(engine, "keyed", False))
    rec = Recorder(keep, steps, burn_in, thin, target.dim, chains, dev, dt, centre)
    final_t, elapsed = drive("ULA", engine, xt, stream, rec, steps=steps, step_size=mu, bound=bound)
    return finish(sampler, final_t, rec, elapsed, steps=steps, step_size=mu, chains=chains,
                  seed=None if generator is not None else seed, device=dev, dtype=dt, engine=engine.name)
