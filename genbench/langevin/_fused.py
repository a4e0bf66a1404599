"""Fused Gaussian-target engines for ULA and MALA: the C kernels, and the same arithmetic in torch.

On N(m, Σ) with scalar step size μ, ULA is the affine map x ↦ A x + c + σ n (A = I − μΣ⁻¹,
c = μΣ⁻¹m, σ = √(2μ)), and MALA proposes with the same map and accepts with the exact
Metropolis–Hastings ratio, written with h = Σ⁻¹(y − m) (the negative score at the proposal):

    log π(y) = −½ Σ_i (y − m)_i h_i,   log q(y|x) = −½ |n|²,   log q(x|y) = −|x − y + μ h|² / (4μ).

:class:`GaussianULA` and :class:`GaussianMALA` run a whole block of steps per call in the C
kernels of ``_kernels.c`` (CPU, d ≤ 8; they make each step's normals and log-uniforms themselves
from the step's key) or, without them (no compiler, CUDA), one step at a time in elementwise torch
operations written in the kernels' order of operations. Every operation
rounds once in both, so the two produce bit-identical states, trace and accept decisions
(tested); only keep="stats" sums differ in the last bits (the kernels sum per chunk of chains).
"""

from __future__ import annotations

import math

import torch

from genbench.langevin._native import LANES, MAX_DIM, library, run_parallel, split, stat_chunk
from genbench.langevin._driver import Recorder
from genbench.targets import Gaussian


class _Terms:
    """A, c, σ (and for MALA m, Σ⁻¹, μ, 1/(4μ)) formed in float64, then rounded once to the run's dtype."""

    def __init__(self, target: Gaussian, mu: float, device: torch.device, dtype: torch.dtype):
        prec = target.precision.detach().to("cpu", torch.float64)
        prec = (prec + prec.T) / 2
        m = target.mean.detach().to("cpu", torch.float64)
        d = m.numel()
        on = lambda t: t.to(dtype).to(device).contiguous()  # noqa: E731
        self.d = d
        self.a = on(torch.eye(d, dtype=torch.float64) - mu * prec)
        self.c = on(mu * (prec @ m)).reshape(d, 1)
        self.m = on(m).reshape(d, 1)
        self.p = on(prec)
        # Scalars as 0-dim tensors of the run's dtype: torch rounds a Python float to the tensor's
        # dtype before multiplying, and the kernels receive the same rounded values.
        f64 = lambda v: on(torch.tensor(v, dtype=torch.float64))  # noqa: E731
        self.sigma = f64(math.sqrt(2.0 * mu))
        self.mu = f64(mu)
        self.inv4mu = f64(1.0 / (4.0 * mu))
        self.half = f64(-0.5)

    def affine(self, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        """(σ n + c) + Σ_j A[:, j] x_j, accumulated over j in order."""
        y = n * self.sigma + self.c
        for j in range(self.d):
            y = y + self.a[:, j : j + 1] * x[j : j + 1]
        return y

    def log_density(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log π(x) up to a constant, h = Σ⁻¹(x − m)) for states x (d, chains)."""
        z = x - self.m
        h = self.p[:, 0:1] * z[0:1]
        for j in range(1, self.d):
            h = h + self.p[:, j : j + 1] * z[j : j + 1]
        lp = z[0] * h[0]
        for i in range(1, self.d):
            lp = lp + z[i] * h[i]
        return lp * self.half, h


def _native_fn(name: str, device: torch.device, dtype: torch.dtype, d: int):  # type: ignore[no-untyped-def]
    """The C kernel ``name`` for this dtype, or None when the torch engine must run."""
    if device.type != "cpu" or d > MAX_DIM:
        return None
    lib = library()
    if lib is None:
        return None
    return getattr(lib, f"{name}_{'f64' if dtype == torch.float64 else 'f32'}")


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


class GaussianULA:
    """ULA on a Gaussian target with a scalar step size (block engine).

    With the C kernels it is ``keyed``: it gets each block's per-step keys and the kernel makes every
    step's normals itself, a tile of chains at a time, so no buffer of normals goes through memory
    and a block runs all its steps per tile (``block_keyed``). Without them, ``block`` takes the
    normals and steps in torch.
    """

    def __init__(self, target: Gaussian, mu: float, xt: torch.Tensor):
        d, chains = xt.shape
        self.t = _Terms(target, mu, xt.device, xt.dtype)
        self.fn = _native_fn("ula_gauss", xt.device, xt.dtype, d)
        self.keyed = self.fn is not None
        self.name = "fused-c" if self.fn is not None else "torch"
        self.spare = torch.empty_like(xt) if self.fn is not None else None

    def step(self, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        """One ULA step in torch (the kernels' arithmetic)."""
        return self.t.affine(x, n)

    def block(self, x: torch.Tensor, noise: torch.Tensor, log_u: torch.Tensor | None, t0: int,
              rec: Recorder) -> tuple[torch.Tensor, bool]:
        """Run the block's steps in torch, step by step, recording kept states (the torch engine)."""
        d, chains = x.shape
        for j in range(noise.shape[0]):
            x = self.step(x, noise[j, : d * chains].view(d, chains))
            rec.step(t0 + j + 1, x)
        return x, bool(torch.isfinite(x).all())

    def block_keyed(self, x: torch.Tensor, keys: torch.Tensor, t0: int, rec: Recorder) -> tuple[torch.Tensor, bool]:
        """Run the steps keyed by ``keys`` (k,) in the C kernel, which makes their normals; records kept states."""
        d, chains = x.shape
        k = keys.shape[0]
        out = self.spare if self.spare is not x else torch.empty_like(x)
        keep0, slot0 = rec.plan(t0, k)
        chunk = stat_chunk()
        acc = rec.chunk_sums(chunk, LANES) if rec.keep == "stats" and keep0 < k else None
        ranges = split(chains, chains * k, chunk if acc is not None else LANES)
        bad = run_parallel(self.fn, ranges, (d, chains), (
            k, keys.data_ptr(), self.t.a.data_ptr(), self.t.c.data_ptr(), float(self.t.sigma), x.data_ptr(),
            out.data_ptr(), keep0, rec.thin, _ptr(rec.trace), slot0, rec.centre.data_ptr(), _ptr(acc),
        ))
        self.spare = x
        return out, bad == 0

    def locate_keyed(self, x: torch.Tensor, keys: torch.Tensor) -> int | None:
        """Replay the keyed block from x one step at a time in the kernel: its first non-finite step."""
        d, chains = x.shape
        nothing = Recorder("final", 1, 0, 1, d, chains, x.device, x.dtype, self.t.m)
        for j in range(keys.shape[0]):
            x, finite = self.block_keyed(x, keys[j : j + 1], 0, nothing)
            if not finite:
                return j + 1
        return None

    def locate(self, x: torch.Tensor, noise: torch.Tensor, log_u: torch.Tensor | None) -> int | None:
        """Replay the block from x in torch (the same arithmetic) to find its first non-finite step."""
        d, chains = x.shape
        for j in range(noise.shape[0]):
            x = self.step(x, noise[j, : d * chains].view(d, chains))
            if not bool(torch.isfinite(x).all()):
                return j + 1
        return None


class GaussianMALA:
    """MALA on a Gaussian target with a scalar step size (block engine); counts acceptances."""

    def __init__(self, target: Gaussian, mu: float, xt: torch.Tensor):
        d, chains = xt.shape
        self.t = _Terms(target, mu, xt.device, xt.dtype)
        self.fn = _native_fn("mala_gauss", xt.device, xt.dtype, d)
        self.keyed = self.fn is not None  # as GaussianULA: the kernel makes the normals and log-uniforms
        self.name = "fused-c" if self.fn is not None else "torch"
        self.lp, _ = self.t.log_density(xt)
        self.lp = self.lp.contiguous()
        self.spare = (torch.empty_like(xt), torch.empty_like(self.lp)) if self.fn is not None else None
        self.accepted = 0
        self.accepted_t = torch.zeros((), dtype=torch.int64, device=xt.device)

    def step(self, x: torch.Tensor, lp: torch.Tensor, n: torch.Tensor, log_u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One MALA step in torch (the kernels' arithmetic); returns the new state and log-density."""
        t = self.t
        y = t.affine(x, n)
        lpy, h = t.log_density(y)
        qf = n[0] * n[0]
        back = (x - y) + t.mu * h
        qb = back[0] * back[0]
        for i in range(1, t.d):
            qf = qf + n[i] * n[i]
            qb = qb + back[i] * back[i]
        log_alpha = (lpy - lp) + ((qb * t.inv4mu).neg() - qf * t.half)
        accept = log_u < log_alpha  # NaN compares False: an undefined ratio is a rejection
        self.accepted_t += accept.sum()
        return torch.where(accept, y, x), torch.where(accept, lpy, lp)

    def block(self, x: torch.Tensor, noise: torch.Tensor, log_u: torch.Tensor | None, t0: int,
              rec: Recorder) -> tuple[torch.Tensor, bool]:
        """Run the block's steps in torch, step by step, recording kept states (the torch engine)."""
        assert log_u is not None
        d, chains = x.shape
        lp = self.lp
        for j in range(noise.shape[0]):
            x, lp = self.step(x, lp, noise[j, : d * chains].view(d, chains), log_u[j])
            rec.step(t0 + j + 1, x)
        self.lp = lp
        return x, True

    def block_keyed(self, x: torch.Tensor, keys: torch.Tensor, t0: int, rec: Recorder) -> tuple[torch.Tensor, bool]:
        """Run the steps keyed by ``keys`` (k,) in the C kernel, which makes their normals and log-uniforms."""
        d, chains = x.shape
        k = keys.shape[0]
        xs, lps = self.spare  # type: ignore[misc]
        if xs is x:
            xs = torch.empty_like(x)
        keep0, slot0 = rec.plan(t0, k)
        chunk = stat_chunk()
        acc = rec.chunk_sums(chunk, LANES) if rec.keep == "stats" and keep0 < k else None
        ranges = split(chains, chains * k, chunk if acc is not None else LANES)
        t = self.t
        self.accepted += run_parallel(self.fn, ranges, (d, chains), (
            k, keys.data_ptr(), t.a.data_ptr(), t.c.data_ptr(), float(t.sigma), t.m.data_ptr(), t.p.data_ptr(),
            float(t.mu), float(t.inv4mu), x.data_ptr(), xs.data_ptr(), self.lp.data_ptr(), lps.data_ptr(),
            keep0, rec.thin, _ptr(rec.trace), slot0, rec.centre.data_ptr(), _ptr(acc),
        ))
        self.spare = (x, self.lp)
        self.lp = lps
        # MALA's state stays finite: a non-finite proposal has an undefined ratio and is rejected.
        return xs, True

    def locate_keyed(self, x: torch.Tensor, keys: torch.Tensor) -> int | None:
        """Never needed: block_keyed() never reports a non-finite state."""
        return None  # pragma: no cover

    def locate(self, x: torch.Tensor, noise: torch.Tensor, log_u: torch.Tensor | None) -> int | None:
        """Never needed: block() never reports a non-finite state."""
        return None  # pragma: no cover

    def total_accepted(self) -> int:
        """Accepted proposals over all chains and steps so far."""
        return self.accepted + int(self.accepted_t)
