"""The batched Langevin driver shared by ULA and MALA: validation, the random stream, blocks, keeping.

States are (d, chains) contiguous tensors. An *engine* advances them through a block of steps
given the block's standard normals (and, for MALA, log-uniforms) from the run's random stream
(``_noise.py``); the driver draws the blocks, keeps the draws that ``keep`` asks for, checks for
divergence after every block and names the first non-finite step.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from genbench._runtime import make_generator, synchronize
from genbench._validate import choice, positive_int
from genbench.errors import DivergenceError, ParameterError
from genbench.langevin import theory
from genbench.langevin._noise import NoiseStream
from genbench.targets import Gaussian, Target

KEEP_MODES = ("final", "trace", "stats")
#: Steps between divergence checks (also the longest block). A non-finite value never becomes
#: finite again under ULA, so a check per block catches every divergence; the failing block is
#: then replayed step by step to name the exact step. Long blocks amortise the ~40 us a block
#: costs in Python when chains are few (on the CPU, noise blocks are also capped at 512 KiB).
CHECK_EVERY = 1024


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
        numbers by streaming (sums of the draws shifted by a fixed centre, accumulated in float64),
        storing no draws.
      * keep="final": over the chains' final states x_T (N = chains); ``cov`` is None if chains < 2.
    ``acceptance_rate`` (MALA only) is the fraction of accepted proposals over all chains and all
    steps, burn-in included; None for ULA. ``extra["engine"]`` names the engine that ran.
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
# Validation shared by ULA and MALA
# ---------------------------------------------------------------------------------------------


def validate_run(steps: object, chains: object, burn_in: object, thin: object, keep: object) -> tuple[int, int, int, int, str]:
    """Check the run-length arguments; returns them as ints (and keep as one of KEEP_MODES)."""
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


def step_size_arg(step_size: object, chains: int, device: torch.device, dtype: torch.dtype) -> float | torch.Tensor:
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


def max_step(step_size: float | torch.Tensor) -> float:
    """The largest step size (the scalar itself, or the largest per-chain one)."""
    return float(step_size.max()) if isinstance(step_size, torch.Tensor) else float(step_size)


def check_stability(target: Target, step_size: float | torch.Tensor, allow_unstable: bool) -> float | None:
    """Return the stability bound (Gaussian targets), raising if the step size reaches it."""
    if not isinstance(target, Gaussian):
        return None
    bound = theory.stability_bound(target)
    mu = max_step(step_size)
    if mu >= bound and not allow_unstable:
        raise ParameterError(
            f"step_size must be < {bound:.6g} (ULA stability bound 2/lambda_max(inverse cov) for this target), "
            f"got {mu:g}; pass allow_unstable=True to run it anyway"
        )
    return bound


def target_on(target: Target, device: torch.device, dtype: torch.dtype) -> Target:
    """Move a Gaussian target to the run's device/dtype; other targets must already match."""
    if not isinstance(target, Target):
        raise ParameterError(f"target must implement log_prob and score (genbench.targets.Target), got {type(target).__name__}")
    if isinstance(target, Gaussian) and (target.device != device or target.dtype != dtype):
        return target.to(device=device, dtype=dtype)
    return target


def initial_state(x0: object, chains: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
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


def resolve_generator(seed: int, generator: torch.Generator | None, device: torch.device) -> torch.Generator:
    """The run's generator: ``generator`` if given (checked), else a new one seeded with ``seed``."""
    if generator is None:
        return make_generator(seed, device)
    if not isinstance(generator, torch.Generator):
        raise ParameterError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if torch.device(generator.device).type != device.type:
        raise ParameterError(f"generator is on {generator.device} but device={device}; they must match")
    return generator


def step_size_record(step_size: float | torch.Tensor) -> float | np.ndarray:
    """The step size as stored in a LangevinRun: a float, or a float64 array of per-chain values."""
    return step_size.detach().cpu().double().numpy() if isinstance(step_size, torch.Tensor) else float(step_size)


# ---------------------------------------------------------------------------------------------
# Keeping draws
# ---------------------------------------------------------------------------------------------


class Recorder:
    """Keeps the states after steps burn_in + thin, burn_in + 2·thin, …: a trace, or running moments.

    Per-step engines call :meth:`step`; block engines ask :meth:`plan` where a block's kept steps
    fall and write the trace rows or per-chunk float64 sums (:meth:`chunk_sums`) themselves.
    """

    def __init__(self, keep: str, steps: int, burn_in: int, thin: int, d: int, chains: int,
                 device: torch.device, dtype: torch.dtype, centre: torch.Tensor):
        self.keep, self.burn_in, self.thin, self.d, self.chains = keep, burn_in, thin, d, chains
        self.n_kept = (steps - burn_in) // thin
        self.trace = None
        if keep == "trace":
            try:
                self.trace = torch.empty(self.n_kept, chains, d, device=device, dtype=dtype)
            except RuntimeError as exc:
                raise ParameterError(
                    f"keep='trace' needs {self.n_kept}x{chains}x{d} values, which do not fit in memory; use keep='stats'"
                ) from exc
        self.centre = centre.reshape(d, 1).to(device=device, dtype=dtype).contiguous()
        self.s1 = torch.zeros(d, dtype=torch.float64, device=device)
        self.s2 = torch.zeros(d, d, dtype=torch.float64, device=device)
        self.chunks: torch.Tensor | None = None
        self.n = 0

    def plan(self, t0: int, k: int) -> tuple[int, int]:
        """(index in the block of its first kept step, or k if none; that step's trace slot)."""
        first = self.burn_in + self.thin
        if self.keep == "final" or t0 + k < first:
            return k, 0
        j = max(first, t0 + 1 + (-(t0 + 1 - self.burn_in) % self.thin))
        if j > t0 + k:
            return k, 0
        return j - t0 - 1, (j - self.burn_in) // self.thin - 1

    def kept_in(self, t0: int, k: int) -> int:
        """How many kept steps fall in steps t0+1 .. t0+k."""
        if self.keep == "final":
            return 0
        done = lambda t: max(0, min(self.n_kept, (t - self.burn_in) // self.thin))  # noqa: E731
        return done(t0 + k) - done(t0)

    def chunk_sums(self, chunk: int, lanes: int) -> torch.Tensor:
        """The float64 sums a block engine adds its kept draws to (keep="stats"): for each ``chunk``
        consecutive chains, the d rows of Σz then the d(d+1)/2 rows of Σ z_i z_j (i ≤ j), z = x − centre,
        each as ``lanes`` partial sums."""
        if self.chunks is None:
            rows = self.d + self.d * (self.d + 1) // 2
            self.chunks = torch.zeros(-(-self.chains // chunk), rows, lanes, dtype=torch.float64)
        return self.chunks

    def step(self, t: int, x: torch.Tensor) -> None:
        """Record state x (d, chains) after step t (1-based) if t is kept."""
        if self.keep == "final" or t <= self.burn_in or (t - self.burn_in) % self.thin:
            return
        slot = (t - self.burn_in) // self.thin - 1
        if slot >= self.n_kept:
            return
        if self.trace is not None:
            self.trace[slot].copy_(x.T)
        else:
            z = (x - self.centre).to(torch.float64)
            self.s1 += z.sum(dim=1)
            self.s2 += z @ z.T
            self.n += self.chains

    def moments(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Pooled mean and (N − 1)-denominator covariance of the kept draws (keep="stats")."""
        s1, s2, n = self.s1.cpu(), self.s2.cpu(), self.n
        if self.chunks is not None:
            tot = torch.from_numpy(self.chunks.numpy().sum(axis=(0, 2)))  # numpy: a fixed summation order
            iu = torch.triu_indices(self.d, self.d)
            upper = torch.zeros(self.d, self.d, dtype=torch.float64)
            upper[iu[0], iu[1]] = tot[self.d :]
            s1, s2 = s1 + tot[: self.d], s2 + upper + upper.T - torch.diag(upper.diagonal())
            n = self.n_kept * self.chains
        mz = s1 / n
        mean = (self.centre.reshape(-1).cpu().to(torch.float64) + mz).numpy()
        if n < 2:
            return mean, None
        cov = ((s2 - n * torch.outer(mz, mz)) / (n - 1)).numpy()
        return mean, (cov + cov.T) / 2


def pooled_moments(draws: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean and (N − 1)-denominator covariance of draws (..., d) pooled over all leading axes, in float64."""
    flat = draws.reshape(-1, draws.shape[-1]).to(torch.float64)
    mean = flat.mean(0)
    if flat.shape[0] < 2:
        return mean.cpu().numpy(), None
    z = flat - mean
    cov = (z.T @ z / (flat.shape[0] - 1)).cpu().numpy()
    return mean.cpu().numpy(), (cov + cov.T) / 2


# ---------------------------------------------------------------------------------------------
# Engines and the loop
# ---------------------------------------------------------------------------------------------


class Engine(Protocol):
    """Advances (d, chains) states through blocks of steps given each block's normals.

    An engine with ``keyed = True`` is handed each block's per-step keys instead and makes the
    normals itself: ``block_keyed(x, keys, t0, rec)``, and ``locate_keyed(x, keys)`` to replay.
    """

    name: str

    def block(self, x: torch.Tensor, noise: torch.Tensor, log_u: torch.Tensor | None, t0: int,
              rec: Recorder) -> tuple[torch.Tensor, bool]:
        """States after the block's steps (t0+1 .. t0+k), and whether they are all finite."""

    def locate(self, x: torch.Tensor, noise: torch.Tensor, log_u: torch.Tensor | None) -> int | None:
        """Replay a block from x: the 1-based index of its first non-finite step, None if it cannot tell."""


def diverged(sampler: str, t_lo: int, t_hi: int, exact: bool, steps: int, step_size: float | torch.Tensor,
             bound: float | None) -> DivergenceError:
    """The DivergenceError naming the step (or the window of steps) where the run left the finite numbers."""
    where = f"at step {t_hi}" if exact else f"between steps {t_lo + 1} and {t_hi}"
    mu = max_step(step_size)
    mu_s = f"step_size={mu:g}" if not isinstance(step_size, torch.Tensor) else f"max per-chain step_size={mu:g}"
    if bound is not None:
        hint = f"the ULA stability bound for this target is step_size < {bound:.6g}"
    else:
        hint = "no stability bound is known for this target; try a smaller step_size"
    return DivergenceError(f"{sampler} produced non-finite values {where} (of {steps}) with {mu_s}; {hint}")


def drive(sampler: str, engine: Engine, xt: torch.Tensor, stream: NoiseStream, rec: Recorder, *, steps: int,
          step_size: float | torch.Tensor, bound: float | None) -> tuple[torch.Tensor, float]:
    """Run ``steps`` transitions block by block; returns (final state (d, chains), seconds)."""
    synchronize(xt.device)
    t0 = time.perf_counter()
    t = 0
    keyed = getattr(engine, "keyed", False)
    while t < steps:
        k = min(stream.block, steps - t)
        if keyed:  # the engine makes each step's normals from its key
            keys = stream.draw_keys(k)
            x_new, finite = engine.block_keyed(xt, keys, t, rec)
        else:
            noise, log_u = stream.draw(k)
            x_new, finite = engine.block(xt, noise, log_u, t, rec)
        if not finite:
            bad = engine.locate_keyed(xt, keys) if keyed else engine.locate(xt, noise, log_u)
            if bad is None:  # a stateful kernel may not replay identically: report the window honestly
                raise diverged(sampler, t, t + k, False, steps, step_size, bound)
            raise diverged(sampler, t + bad - 1, t + bad, True, steps, step_size, bound)
        xt, t = x_new, t + k
    synchronize(xt.device)
    return xt, time.perf_counter() - t0


def finish(sampler: str, final_t: torch.Tensor, rec: Recorder, elapsed: float, *, steps: int,
           step_size: float | torch.Tensor, chains: int, seed: int | None, device: torch.device,
           dtype: torch.dtype, engine: str, acceptance_rate: float | None = None) -> LangevinRun:
    """Assemble the LangevinRun of a finished drive."""
    final = final_t.T.contiguous()
    n_kept = rec.n_kept
    if rec.keep == "trace":
        mean, cov = pooled_moments(rec.trace)  # type: ignore[arg-type]
        n_draws = n_kept * chains
    elif rec.keep == "stats":
        mean, cov = rec.moments()
        n_draws = n_kept * chains
    else:
        mean, cov = pooled_moments(final)
        n_draws, n_kept = chains, 1
    return LangevinRun(
        sampler=sampler, final=final, trace=rec.trace, mean=mean, cov=cov, n_draws=n_draws, n_kept=n_kept,
        steps=steps, step_size=step_size_record(step_size), chains=chains, burn_in=rec.burn_in, thin=rec.thin,
        keep=rec.keep, seed=seed, device=str(device), dtype=str(dtype).replace("torch.", ""), elapsed_s=elapsed,
        chain_steps_per_s=chains * steps / elapsed if elapsed > 0 else float("inf"),
        acceptance_rate=acceptance_rate, extra={"engine": engine},
    )
