"""Batched unadjusted Langevin algorithm (ULA): a pure step, transition kernels, and a driver.

ULA is  x_{t+1} = x_t + μ ∇log π(x_t) + √(2μ) n_t  with n_t ~ N(0, I). A *kernel* is a
``Callable[[x, noise], x_next]`` on (chains, d) tensors that performs one transition given the
standard-normal ``noise`` (same shape as ``x``); kernels never modify their arguments.
:func:`sample_ula` runs any kernel (the default one, or a deliberately broken one from the
calibration study) on ``chains`` independent chains and keeps the final state, the kept trace, or
only streaming moments.

Noise layout (fixes the random stream for a seed): each step draws one ``torch.randn`` block of
shape (d, chains) from the run's generator and hands the kernel its transpose. With chains == 1
this is exactly one ``randn(d)`` per step, the same stream as the reference loop
(:func:`genbench.langevin.reference.reference_langevin`) given the same seed.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from genbench._runtime import make_generator, resolve_device, resolve_dtype, synchronize
from genbench._validate import choice, positive_int
from genbench.errors import DivergenceError, ParameterError
from genbench.langevin import theory
from genbench.targets import Gaussian, Target

Kernel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

KEEP_MODES = ("final", "trace", "stats")
# How often (in steps) the driver checks the state for NaN/inf. Each check is one host sync on
# CUDA; a non-finite value never becomes finite again under these recursions, so a check every
# CHECK_EVERY steps catches every divergence, and the failing window is then replayed step by step
# to name the exact step.
CHECK_EVERY = 128


# ---------------------------------------------------------------------------------------------
# Pure step and kernels
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------------------------


@dataclass
class LangevinRun:
    """Outcome of a batched Langevin run.

    ``final`` is x_T for every chain, shape (chains, d), on the run's device and dtype. ``trace``
    (keep="trace" only) holds the kept iterates, shape (n_kept, chains, d): the states after steps
    ``burn_in + thin, burn_in + 2·thin, …`` (1-based step numbers, x_t after t updates).

    ``mean`` (d,) and ``cov`` (d, d) are float64 numpy:
      * keep="trace" or "stats": over all kept draws pooled over chains and kept steps,
        N = chains·n_kept draws, covariance with denominator N − 1. "stats" computes the same
        numbers by streaming (per kept step the chains are reduced in the working dtype, and the
        sums, shifted by a fixed centre, are accumulated in float64), storing no draws.
      * keep="final": over the chains' final states x_T (N = chains); ``cov`` is None if chains < 2.
    ``acceptance_rate`` (MALA only) is the fraction of accepted proposals over all chains and all
    steps, burn-in included; None for ULA.
    """

    sampler: str
    final: torch.Tensor
    trace: torch.Tensor | None
    mean: np.ndarray
    cov: np.ndarray | None
    n_draws: int
    n_kept: int
    steps: int
    step_size: float | np.ndarray
    chains: int
    burn_in: int
    thin: int
    keep: str
    seed: int | None
    device: str
    dtype: str
    elapsed_s: float
    chain_steps_per_s: float
    acceptance_rate: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Validation helpers shared by ULA and MALA
# ---------------------------------------------------------------------------------------------


def _step_size_arg(step_size: object, chains: int, device: torch.device, dtype: torch.dtype) -> float | torch.Tensor:
    """Validate a step size: a finite float > 0, or a per-chain tensor/sequence of shape (chains,)."""
    if isinstance(step_size, numbers.Real) and not isinstance(step_size, bool):
        v = float(step_size)
        if not math.isfinite(v) or v <= 0:
            raise ParameterError(f"step_size must be a finite number > 0, got {step_size}")
        return v
    if isinstance(step_size, bool) or not isinstance(step_size, (torch.Tensor, np.ndarray, list, tuple)):
        raise ParameterError(f"step_size must be a number > 0 or a per-chain tensor of shape ({chains},), got {step_size!r}")
    t = torch.as_tensor(step_size, dtype=torch.float64)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 1 or t.shape[0] != chains:
        raise ParameterError(f"step_size as a tensor must have shape ({chains},) (one per chain), got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
        raise ParameterError("step_size must be finite and > 0 for every chain")
    return t.to(device=device, dtype=dtype)


def _max_step(step_size: float | torch.Tensor) -> float:
    return float(step_size.max()) if isinstance(step_size, torch.Tensor) else float(step_size)


def _check_stability(target: Target, step_size: float | torch.Tensor, allow_unstable: bool) -> float | None:
    """Return the stability bound (Gaussian targets), raising if the step size reaches it."""
    if not isinstance(target, Gaussian):
        return None
    bound = theory.stability_bound(target)
    mu = _max_step(step_size)
    if mu >= bound and not allow_unstable:
        raise ParameterError(
            f"step_size must be < {bound:.6g} (ULA stability bound 2/lambda_max(inverse cov) for this target), "
            f"got {mu:g}; pass allow_unstable=True to run it anyway"
        )
    return bound


def _target_on(target: Target, device: torch.device, dtype: torch.dtype) -> Target:
    """Move a Gaussian target to the run's device/dtype; other targets must already match."""
    if not isinstance(target, Target):
        raise ParameterError(f"target must implement log_prob and score (genbench.targets.Target), got {type(target).__name__}")
    if isinstance(target, Gaussian) and (target.device != device or target.dtype != dtype):
        return target.to(device=device, dtype=dtype)
    return target


def _initial_state(x0: object, chains: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """x0 (None -> 0, a scalar, a (d,) vector or a (chains, d) array) as a fresh (d, chains) buffer."""
    if x0 is None:
        return torch.zeros(dim, chains, device=device, dtype=dtype)
    try:
        t = torch.as_tensor(x0, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ParameterError(f"x0 must be numeric (a scalar, a ({dim},) vector or a ({chains}, {dim}) array), got {x0!r}") from exc
    if t.ndim > 2 or (t.ndim >= 1 and t.shape[-1] != dim) or (t.ndim == 2 and t.shape[0] not in (1, chains)):
        raise ParameterError(f"x0 must be a scalar, a ({dim},) vector or a ({chains}, {dim}) array, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ParameterError("x0 must be finite (it contains NaN or inf)")
    return torch.broadcast_to(t, (chains, dim)).T.to(device=device, dtype=dtype).contiguous()


def _generator(seed: int, generator: torch.Generator | None, device: torch.device) -> torch.Generator:
    if generator is None:
        return make_generator(seed, device)
    if not isinstance(generator, torch.Generator):
        raise ParameterError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if torch.device(generator.device).type != device.type:
        raise ParameterError(f"generator is on {generator.device} but device={device}; they must match")
    return generator


# ---------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------


class _Stepper:
    """One transition x -> x_next drawing its own randomness; states are (d, chains) contiguous."""

    def __call__(self, xt: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class _KernelStepper(_Stepper):
    """Draws (d, chains) noise and applies a public kernel on the (chains, d) views."""

    def __init__(self, kernel: Kernel, gen: torch.Generator, dim: int, chains: int, device: torch.device, dtype: torch.dtype):
        self.kernel, self.gen = kernel, gen
        self.noise = torch.empty(dim, chains, device=device, dtype=dtype)
        self.shape = (chains, dim)

    def __call__(self, xt: torch.Tensor) -> torch.Tensor:
        torch.randn(self.noise.shape, generator=self.gen, out=self.noise)
        y = self.kernel(xt.T, self.noise.T)
        if not isinstance(y, torch.Tensor) or tuple(y.shape) != self.shape:
            raise ParameterError(f"kernel must return a tensor of shape {self.shape}, got {getattr(y, 'shape', type(y))}")
        yt = y.T
        if not yt.is_contiguous() or yt.data_ptr() == self.noise.data_ptr():
            yt = yt.contiguous() if not yt.is_contiguous() else yt.clone()
        return yt


class _FusedGaussianStepper(_Stepper):
    """The Gaussian ULA map written in place into ping-pong noise buffers (the hot path).

    For small d and many chains on CPU, each output row is the noise row scaled by √(2μ) plus d
    axpy's of the state rows and the constant: these streaming updates beat a (d, d) x (d, chains)
    GEMM with inner size d (measured ~1.5x at 1e5 chains), while for few chains the fewer calls of
    the GEMM form win (per-call overhead dominates). For larger d, or on CUDA, one addmm does it.
    """

    ROWWISE_MIN_CHAINS = 50_000

    def __init__(self, target: Gaussian, mu: float, gen: torch.Generator, chains: int, device: torch.device, dtype: torch.dtype):
        d = target.dim
        a_t, c = _affine(target, mu)
        self.a = a_t.T.contiguous()  # (d, d): new = A x + c for column states
        self.c_col = c.reshape(d, 1)
        self.a_list = self.a.to("cpu", torch.float64).tolist()
        self.c_list = c.to("cpu", torch.float64).tolist()
        self.sig = math.sqrt(2.0 * mu)
        self.gen = gen
        self.bufs = (torch.empty(d, chains, device=device, dtype=dtype), torch.empty(d, chains, device=device, dtype=dtype))
        self.k = 0
        self.rowwise = device.type == "cpu" and d <= 4 and chains >= self.ROWWISE_MIN_CHAINS
        # Row views of both buffers, made once: creating views costs more than a small axpy.
        self.rows = {b.data_ptr(): list(b) for b in self.bufs}

    def __call__(self, xt: torch.Tensor) -> torch.Tensor:
        out = self.bufs[self.k]
        self.k ^= 1
        if out.data_ptr() == xt.data_ptr():  # never overwrite the current state
            out = self.bufs[self.k]
            self.k ^= 1
        torch.randn(out.shape, generator=self.gen, out=out)
        if self.rowwise:
            out.mul_(self.sig)
            xrows = self.rows.get(xt.data_ptr()) or list(xt)
            for row, arow, ci in zip(self.rows[out.data_ptr()], self.a_list, self.c_list):
                for xj, aij in zip(xrows, arow):
                    if aij != 0.0:
                        row.add_(xj, alpha=aij)
                if ci != 0.0:
                    row.add_(ci)
        else:
            torch.addmm(out, self.a, xt, beta=self.sig, out=out)
            out.add_(self.c_col)
        return out


class _Moments:
    """Streaming pooled mean/covariance: float64 sums of (x − centre) and (x − centre)(x − centre)ᵀ."""

    def __init__(self, centre: torch.Tensor):
        self.centre = centre.reshape(-1, 1)  # (d, 1), working dtype, fixed for the whole run
        d = centre.numel()
        self.s1 = torch.zeros(d, dtype=torch.float64, device=centre.device)
        self.s2 = torch.zeros(d, d, dtype=torch.float64, device=centre.device)
        self.n = 0

    def add(self, xt: torch.Tensor) -> None:
        z = xt - self.centre
        self.s1 += z.sum(dim=1, dtype=torch.float64)
        self.s2 += (z @ z.T).to(torch.float64)
        self.n += xt.shape[1]

    def result(self) -> tuple[np.ndarray, np.ndarray | None]:
        n = self.n
        mz = self.s1 / n
        mean = (self.centre.reshape(-1).to(torch.float64) + mz).cpu().numpy()
        if n < 2:
            return mean, None
        cov = ((self.s2 - n * torch.outer(mz, mz)) / (n - 1)).cpu().numpy()
        return mean, (cov + cov.T) / 2


def _pooled_moments(draws: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean and (N − 1)-denominator covariance of draws (..., d) pooled over all leading axes, in float64."""
    flat = draws.reshape(-1, draws.shape[-1]).to(torch.float64)
    mean = flat.mean(0)
    if flat.shape[0] < 2:
        return mean.cpu().numpy(), None
    z = flat - mean
    cov = (z.T @ z / (flat.shape[0] - 1)).cpu().numpy()
    return mean.cpu().numpy(), (cov + cov.T) / 2


def _diverged(sampler: str, t_lo: int, t_hi: int, exact: bool, steps: int, step_size: float | torch.Tensor, bound: float | None) -> DivergenceError:
    where = f"at step {t_hi}" if exact else f"between steps {t_lo + 1} and {t_hi}"
    mu = _max_step(step_size)
    mu_s = f"step_size={mu:g}" if not isinstance(step_size, torch.Tensor) else f"max per-chain step_size={mu:g}"
    if bound is not None:
        hint = f"the ULA stability bound for this target is step_size < {bound:.6g}"
    else:
        hint = "no stability bound is known for this target; try a smaller step_size"
    return DivergenceError(f"{sampler} produced non-finite values {where} (of {steps}) with {mu_s}; {hint}")


def _drive(
    sampler: str,
    stepper: _Stepper,
    xt: torch.Tensor,
    *,
    steps: int,
    burn_in: int,
    thin: int,
    keep: str,
    gen: torch.Generator,
    step_size: float | torch.Tensor,
    bound: float | None,
    centre: torch.Tensor,
    check_every: int = CHECK_EVERY,
) -> tuple[torch.Tensor, torch.Tensor | None, _Moments | None, int, float]:
    """Run ``steps`` transitions, keeping draws as asked; returns (final, trace, moments, n_kept, seconds)."""
    d, chains = xt.shape
    n_kept = (steps - burn_in) // thin
    trace = None
    if keep == "trace":
        try:
            trace = torch.empty(n_kept, chains, d, device=xt.device, dtype=xt.dtype)
        except RuntimeError as exc:
            raise ParameterError(
                f"keep='trace' needs {n_kept}x{chains}x{d} values, which do not fit in memory; use keep='stats'"
            ) from exc
    moments = _Moments(centre) if keep == "stats" else None
    next_keep = burn_in + thin
    k = 0
    good_x, good_rng, good_t = xt.clone(), gen.get_state(), 0
    synchronize(xt.device)
    t0 = time.perf_counter()
    for t in range(1, steps + 1):
        xt = stepper(xt)
        if t == next_keep and keep != "final":
            if trace is not None:
                trace[k].copy_(xt.T)
            else:
                moments.add(xt)  # type: ignore[union-attr]
            k += 1
            next_keep += thin
        if t % check_every == 0 or t == steps:
            if not bool(torch.isfinite(xt).all()):
                raise _locate_divergence(sampler, stepper, good_x, good_rng, good_t, t, gen, steps, step_size, bound)
            if t < steps:
                good_x, good_rng, good_t = xt.clone(), gen.get_state(), t
    synchronize(xt.device)
    elapsed = time.perf_counter() - t0
    return xt, trace, moments, n_kept, elapsed


def _locate_divergence(sampler, stepper, good_x, good_rng, good_t, bad_t, gen, steps, step_size, bound) -> DivergenceError:  # type: ignore[no-untyped-def]
    """Replay the failing window from the last finite checkpoint to name the first non-finite step."""
    gen.set_state(good_rng)
    xt = good_x
    for t in range(good_t + 1, bad_t + 1):
        xt = stepper(xt)
        if not bool(torch.isfinite(xt).all()):
            return _diverged(sampler, t - 1, t, True, steps, step_size, bound)
    # A stateful kernel may not replay identically: report the window honestly.
    return _diverged(sampler, good_t, bad_t, False, steps, step_size, bound)


def _validate_run(steps: object, chains: object, burn_in: object, thin: object, keep: object) -> tuple[int, int, int, int, str]:
    steps = positive_int("steps", steps)
    chains = positive_int("chains", chains)
    burn_in = positive_int("burn_in", burn_in, minimum=0)
    thin = positive_int("thin", thin)
    keep = choice("keep", keep, KEEP_MODES)
    if burn_in >= steps:
        raise ParameterError(f"burn_in must be < steps ({steps}), got {burn_in}")
    if keep != "final" and (steps - burn_in) // thin < 1:
        raise ParameterError(f"thin must be <= steps - burn_in ({steps - burn_in}) so that at least one draw is kept, got {thin}")
    return steps, chains, burn_in, thin, keep


def _step_size_record(step_size: float | torch.Tensor) -> float | np.ndarray:
    return step_size.detach().cpu().double().numpy() if isinstance(step_size, torch.Tensor) else float(step_size)


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
    steps, chains, burn_in, thin, keep = _validate_run(steps, chains, burn_in, thin, keep)
    check_every = positive_int("check_every", check_every)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    target = _target_on(target, dev, dt)
    mu = _step_size_arg(step_size, chains, dev, dt)
    bound = _check_stability(target, mu, allow_unstable)
    gen = _generator(seed, generator, dev)
    xt = _initial_state(x0, chains, target.dim, dev, dt)
    if kernel is not None:
        if not callable(kernel):
            raise ParameterError(f"kernel must be callable as kernel(x, noise) -> x_next, got {type(kernel).__name__}")
        stepper: _Stepper = _KernelStepper(kernel, gen, target.dim, chains, dev, dt)
        sampler = f"custom:{getattr(kernel, '__name__', type(kernel).__name__)}"
    elif isinstance(target, Gaussian) and not isinstance(mu, torch.Tensor):
        stepper = _FusedGaussianStepper(target, mu, gen, chains, dev, dt)
        sampler = "ula"
    else:
        stepper = _KernelStepper(ula_kernel(target, mu), gen, target.dim, chains, dev, dt)
        sampler = "ula"
    centre = target.mean if isinstance(target, Gaussian) else xt.mean(dim=1)
    final_t, trace, moments, n_kept, elapsed = _drive(
        "ULA", stepper, xt, steps=steps, burn_in=burn_in, thin=thin, keep=keep, gen=gen,
        step_size=mu, bound=bound, centre=centre, check_every=check_every,
    )
    return _finish(sampler, final_t, trace, moments, n_kept, elapsed, steps=steps, step_size=mu, chains=chains,
                   burn_in=burn_in, thin=thin, keep=keep, seed=None if generator is not None else seed,
                   device=dev, dtype=dt)


def _finish(sampler: str, final_t: torch.Tensor, trace: torch.Tensor | None, moments: _Moments | None, n_kept: int,
            elapsed: float, *, steps: int, step_size: float | torch.Tensor, chains: int, burn_in: int, thin: int,
            keep: str, seed: int | None, device: torch.device, dtype: torch.dtype,
            acceptance_rate: float | None = None) -> LangevinRun:
    final = final_t.T.contiguous()
    if keep == "trace":
        mean, cov = _pooled_moments(trace)  # type: ignore[arg-type]
        n_draws = n_kept * chains
    elif keep == "stats":
        mean, cov = moments.result()  # type: ignore[union-attr]
        n_draws = n_kept * chains
    else:
        mean, cov = _pooled_moments(final)
        n_draws, n_kept = chains, 1
    return LangevinRun(
        sampler=sampler, final=final, trace=trace, mean=mean, cov=cov, n_draws=n_draws, n_kept=n_kept,
        steps=steps, step_size=_step_size_record(step_size), chains=chains, burn_in=burn_in, thin=thin,
        keep=keep, seed=seed, device=str(device), dtype=str(dtype).replace("torch.", ""), elapsed_s=elapsed,
        chain_steps_per_s=chains * steps / elapsed if elapsed > 0 else float("inf"),
        acceptance_rate=acceptance_rate,
    )
