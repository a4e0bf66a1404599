"""Running genbench on ``torch.distributed`` (launched by ``torchrun``): environment, process group,
per-rank random streams and exact merges of statistics across ranks.

The launcher (``torchrun`` / ``python -m torch.distributed.run``) sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in every worker; :func:`launcher_env` reads them
and :func:`process_group` opens the group (``nccl`` for CUDA, ``gloo`` for CPU) and always closes it.
Every failure is a one-line :class:`DistributedError` that names the rank it happened on:
a missing launcher environment, a collective that timed out or lost a peer, an error raised on one
rank (see :func:`run_on_ranks`).

Merges: :func:`allreduce_moments` is the parallel Welford / Chan et al. merge of per-rank
(count, mean, M2) by all-reduce, exact in float64 up to rounding; :func:`merge_moments` is the same
formula applied pairwise in a fixed order, which makes a merge bit-identical whatever the number
of ranks when the parts themselves do not depend on it (see ``genbench.langevin.sharded``).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from genbench._runtime import resolve_device
from genbench._validate import positive_int
from genbench.errors import DistributedError, GenbenchError
from genbench.seeding import derive_seed

T = TypeVar("T")

#: Environment variables torchrun sets in every worker; the first four are required.
LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
#: Seconds a collective (barrier, all-reduce) may wait for the slowest rank before it fails.
#: Long enough for a rank that loads MNIST or compiles a step, short enough that a dead peer is
#: reported within minutes rather than after PyTorch's 30-minute default. Override with
#: ``GENBENCH_DIST_TIMEOUT`` (seconds) or the ``timeout_s`` argument.
DEFAULT_TIMEOUT_S = 300.0
BACKENDS = ("gloo", "nccl")


# ---------------------------------------------------------------------------------------------
# Launcher environment
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LauncherEnv:
    """What torchrun told this worker: its global rank, the world size, its rank on this node."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    master_addr: str
    master_port: int


def _int_var(env: dict[str, str] | os._Environ[str], name: str, minimum: int) -> int:
    raw = env.get(name, "")
    try:
        v = int(raw)
    except ValueError:
        raise DistributedError(f"launcher variable {name}={raw!r} is not an integer >= {minimum}; launch with torchrun") from None
    if v < minimum:
        raise DistributedError(f"launcher variable {name}={v} must be >= {minimum}; launch with torchrun")
    return v


def launcher_env(environ: dict[str, str] | None = None) -> LauncherEnv:
    """Read and check torchrun's RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT (LOCAL_RANK defaults to RANK)."""
    env = os.environ if environ is None else environ
    missing = [v for v in LAUNCHER_VARS[:4] if not env.get(v)]
    if missing:
        raise DistributedError(
            f"--distributed needs the launcher environment ({', '.join(missing)} not set); run it under torchrun, "
            "e.g. `torchrun --nproc-per-node 2 -m genbench ... --distributed`"
        )
    world = _int_var(env, "WORLD_SIZE", 1)
    rank = _int_var(env, "RANK", 0)
    if rank >= world:
        raise DistributedError(f"launcher variables RANK={rank} and WORLD_SIZE={world} disagree (need RANK < WORLD_SIZE)")
    local_rank = _int_var(env, "LOCAL_RANK", 0) if env.get("LOCAL_RANK") else rank
    local_world = _int_var(env, "LOCAL_WORLD_SIZE", 1) if env.get("LOCAL_WORLD_SIZE") else world
    port = _int_var(env, "MASTER_PORT", 1)
    return LauncherEnv(rank, world, local_rank, local_world, env["MASTER_ADDR"], port)


def choose_backend(device: str | torch.device) -> str:
    """The collective backend for ``device``: nccl for CUDA, gloo for CPU."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def _timeout_s(timeout_s: float | None) -> float:
    if timeout_s is None:
        raw = os.environ.get("GENBENCH_DIST_TIMEOUT")
        if raw is None:
            return DEFAULT_TIMEOUT_S
        try:
            timeout_s = float(raw)
        except ValueError:
            raise DistributedError(f"GENBENCH_DIST_TIMEOUT={raw!r} must be a number of seconds > 0") from None
    if not timeout_s > 0:
        raise DistributedError(f"timeout_s must be a number of seconds > 0, got {timeout_s!r}")
    return float(timeout_s)


# ---------------------------------------------------------------------------------------------
# The process group
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistContext:
    """An open process group as one worker sees it."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str
    timeout_s: float

    @property
    def is_main(self) -> bool:
        """True on rank 0, the rank that writes outputs."""
        return self.rank == 0

    def describe(self) -> dict[str, Any]:
        """Plain-JSON facts recorded in every distributed output."""
        return {"world_size": self.world_size, "backend": self.backend, "device_type": self.device.type,
                "timeout_s": self.timeout_s}


def rank_device(device: str | torch.device, local_rank: int) -> torch.device:
    """This worker's device: CPU, or the CUDA device of its local rank ("cuda" -> cuda:LOCAL_RANK)."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return resolve_device(dev)
    if dev.index is not None:
        raise DistributedError(f"device={str(dev)!r}: under torchrun give device='cuda'; each rank uses cuda:LOCAL_RANK")
    if not torch.cuda.is_available():
        resolve_device("cuda")  # raises the usual DeviceError
    n = torch.cuda.device_count()
    if local_rank >= n:
        raise DistributedError(f"rank with LOCAL_RANK={local_rank} has no GPU: this node has {n} CUDA device(s); "
                               f"use --nproc-per-node <= {n}")
    return resolve_device(f"cuda:{local_rank}")


@contextlib.contextmanager
def process_group(device: str | torch.device = "cpu", *, timeout_s: float | None = None,
                  environ: dict[str, str] | None = None) -> Iterator[DistContext]:
    """Open the torch.distributed group from torchrun's environment (nccl on CUDA, gloo on CPU) and close it on exit."""
    import torch.distributed as dist

    if not dist.is_available():
        raise DistributedError("this PyTorch build has no torch.distributed support")
    env = launcher_env(environ)
    if dist.is_initialized():
        raise DistributedError("a torch.distributed process group is already open in this process")
    dev = rank_device(device, env.local_rank)
    backend = choose_backend(dev)
    if backend == "nccl" and not dist.is_nccl_available():
        raise DistributedError("device is CUDA but this PyTorch build has no NCCL backend")
    seconds = _timeout_s(timeout_s)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    kwargs: dict[str, Any] = {}
    if dev.type == "cuda":
        kwargs["device_id"] = dev  # binds the NCCL communicator to this rank's GPU eagerly
    try:
        dist.init_process_group(backend=backend, init_method=f"tcp://{_host(env.master_addr)}:{env.master_port}", rank=env.rank, world_size=env.world_size,
                                timeout=datetime.timedelta(seconds=seconds), **kwargs)
    except (RuntimeError, ValueError) as exc:
        raise DistributedError(f"rank {env.rank} of {env.world_size}: could not join the process group at "
                               f"{env.master_addr}:{env.master_port} ({_first_line(exc)})") from exc
    ctx = DistContext(env.rank, env.world_size, env.local_rank, dev, backend, seconds)
    try:
        yield ctx
    finally:
        with contextlib.suppress(Exception):  # teardown must not mask the error that got us here
            dist.destroy_process_group()


def _host(addr: str) -> str:
    """An address usable in a tcp:// URL (IPv6 literals in brackets)."""
    return f"[{addr}]" if ":" in addr and not addr.startswith("[") else addr


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


def _is_collective_failure(exc: BaseException) -> bool:
    import torch.distributed as dist

    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(k in text for k in ("Gloo", "gloo", "NCCL", "nccl", "Timed out", "timed out", "Connection closed", "Broken pipe"))


def run_on_ranks(ctx: DistContext, fn: Callable[[], T]) -> T:
    """Run ``fn`` on this rank, turning its errors into one-line errors that name the rank.

    A ``GenbenchError`` keeps its class, prefixed by "rank R of W:". A failed or timed-out
    collective (a peer died or hung) becomes a DistributedError saying so; torchrun then stops the
    other ranks and its summary names the first failed rank.
    """
    where = f"rank {ctx.rank} of {ctx.world_size}"
    try:
        return fn()
    except GenbenchError as exc:
        if str(exc).startswith("rank "):
            raise
        try:
            new = type(exc)(f"{where}: {exc}")
        except TypeError:  # pragma: no cover - a subclass with another constructor
            new = DistributedError(f"{where}: {type(exc).__name__}: {exc}")
        raise new from exc
    except Exception as exc:
        if _is_collective_failure(exc):
            raise DistributedError(
                f"{where}: a collective failed or timed out after {ctx.timeout_s:g} s (another rank died, hung or "
                f"diverged from this one; see its message): {_first_line(exc)}"
            ) from exc
        raise


def check_agreement(ctx: DistContext, what: str, value: Any) -> None:
    """Raise on every rank unless all ranks hold the same ``value`` (a config, a data fingerprint, a step)."""
    import torch.distributed as dist

    values: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(values, value)
    bad = [r for r, v in enumerate(values) if v != values[0]]
    if bad:
        raise DistributedError(f"ranks disagree on {what}: rank 0 has {values[0]!r}, rank {bad[0]} has {values[bad[0]]!r}")


def agree_on_error(ctx: DistContext, error: BaseException | None) -> None:
    """Collective: if any rank failed a local phase, raise on every rank with the first failing rank's message."""
    import torch.distributed as dist

    msgs: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(msgs, None if error is None else f"{type(error).__name__}: {error}")
    for r, m in enumerate(msgs):
        if m is not None:
            if r == ctx.rank and isinstance(error, GenbenchError):
                raise error
            raise DistributedError(f"rank {r} of {ctx.world_size} failed: {m}")


# ---------------------------------------------------------------------------------------------
# Work split and random streams
# ---------------------------------------------------------------------------------------------


def split_range(n: int, world_size: int, rank: int) -> range:
    """The contiguous share of range(n) owned by ``rank``: sizes differ by at most one, low ranks larger."""
    n = positive_int("n", n, minimum=0)
    world_size = positive_int("world_size", world_size)
    rank = positive_int("rank", rank, minimum=0)
    if rank >= world_size:
        raise DistributedError(f"rank must be < world_size ({world_size}), got {rank}")
    q, r = divmod(n, world_size)
    start = rank * q + min(rank, r)
    return range(start, start + q + (1 if rank < r else 0))


def stream_generator(seed: int, *keys: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator on ``device`` for stream ``keys`` of ``seed`` (e.g. keys=(block,) or (rank,))."""
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(derive_seed(seed, *keys))  # same on every rank
    return gen


# ---------------------------------------------------------------------------------------------
# Exact merges of streaming moments
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moments:
    """Count, mean (d,) and M2 = Σ (x − mean)(x − mean)ᵀ (d, d) of a set of draws, in float64."""

    n: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def of(cls, x: torch.Tensor | np.ndarray) -> Moments:
        """The moments of draws ``x`` of shape (N, d), computed in float64 (two-pass)."""
        t = torch.as_tensor(x).detach().to("cpu", torch.float64)
        if t.ndim != 2:
            raise DistributedError(f"draws must have shape (N, d), got {tuple(t.shape)}")
        n = int(t.shape[0])
        if n == 0:
            return cls.empty(int(t.shape[1]))
        mean = t.mean(0)
        z = t - mean
        return cls(n, mean.numpy(), (z.T @ z).numpy())

    @classmethod
    def empty(cls, d: int) -> Moments:
        """No draws (the identity of the merge)."""
        return cls(0, np.zeros(d), np.zeros((d, d)))

    def cov(self) -> np.ndarray | None:
        """The (N − 1)-denominator covariance, or None when N < 2."""
        if self.n < 2:
            return None
        c = self.m2 / (self.n - 1)
        return (c + c.T) / 2


def merge_two(a: Moments, b: Moments) -> Moments:
    """Chan, Golub & LeVeque's pairwise merge: n = na + nb, δ = mb − ma, M2 = M2a + M2b + δδᵀ na nb / n."""
    if a.n == 0:
        return b
    if b.n == 0:
        return a
    n = a.n + b.n
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.n / n)
    m2 = a.m2 + b.m2 + np.outer(delta, delta) * (a.n * b.n / n)
    return Moments(n, mean, m2)


def merge_moments(parts: Sequence[Moments]) -> Moments:
    """Merge moments in the given order (deterministic: same parts in the same order -> same bits)."""
    if not parts:
        raise DistributedError("merge_moments needs at least one part")
    out = parts[0]
    for p in parts[1:]:
        out = merge_two(out, p)
    return out


def allreduce_moments(local: Moments, ctx: DistContext | None = None) -> Moments:
    """Collective: merge every rank's (count, mean, M2) exactly by all-reduce (float64), same result on all ranks.

    The k-way form of Chan's formula: N = Σ n_r, mean = Σ n_r mean_r / N,
    M2 = Σ [M2_r + n_r (mean_r − mean)(mean_r − mean)ᵀ]; two all-reduces.
    """
    import torch.distributed as dist

    dev = ctx.device if ctx is not None and ctx.backend == "nccl" else torch.device("cpu")
    d = local.mean.shape[0]
    head = torch.zeros(1 + d, dtype=torch.float64, device=dev)
    head[0] = float(local.n)
    head[1:] = torch.as_tensor(local.mean * local.n, dtype=torch.float64, device=dev)
    dist.all_reduce(head)
    n = int(round(float(head[0])))
    if n == 0:
        return Moments.empty(d)
    mean = (head[1:] / head[0]).cpu().numpy()
    delta = local.mean - mean
    m2 = torch.as_tensor(local.m2 + local.n * np.outer(delta, delta), dtype=torch.float64, device=dev)
    dist.all_reduce(m2)
    return Moments(n, mean, m2.cpu().numpy())


def allgather_rows(rows: np.ndarray, owned: Sequence[int], total: int, ctx: DistContext | None = None) -> np.ndarray:
    """Collective: assemble a (total, k) float64 table whose row i is filled by the rank owning i.

    Done by one all-reduce (sum) of a zero table in which each rank wrote only its own rows; adding
    zeros is exact, so every rank gets the exact rows, in order, whatever the number of ranks.
    """
    import torch.distributed as dist

    rows = np.asarray(rows, dtype=np.float64)
    if rows.shape[0] != len(owned):
        raise DistributedError(f"{rows.shape[0]} rows given for {len(owned)} owned indices")
    dev = ctx.device if ctx is not None and ctx.backend == "nccl" else torch.device("cpu")
    k = rows.shape[1] if rows.ndim == 2 else 0
    table = torch.zeros(total, k, dtype=torch.float64, device=dev)
    if len(owned):
        table[torch.as_tensor(list(owned), device=dev)] = torch.as_tensor(rows, dtype=torch.float64, device=dev)
    dist.all_reduce(table)
    return table.cpu().numpy()


def rank_map(ctx: DistContext) -> Callable[[Callable[[Any], T], list[Any]], list[T]]:
    """A ``map_fn(fn, tasks)`` spreading tasks over the ranks (task i on rank i mod W); every rank gets all results in order.

    For pure per-task functions (e.g. ``genbench.calibration.study.run_trial``) the result equals
    the serial ``list(map(fn, tasks))``. Results travel by ``all_gather_object`` (pickled).
    """
    import torch.distributed as dist

    def map_fn(fn: Callable[[Any], T], tasks: list[Any]) -> list[T]:
        tasks = list(tasks)
        mine: list[tuple[int, Any]] = []
        error: BaseException | None = None
        for i in range(ctx.rank, len(tasks), ctx.world_size):
            try:
                mine.append((i, fn(tasks[i])))
            except Exception as exc:  # reported by every rank below, with the task and rank
                error = DistributedError(f"task {i} ({tasks[i]!r}) failed: {type(exc).__name__}: {_first_line(exc)}")
                break
        agree_on_error(ctx, error)
        gathered: list[Any] = [None] * ctx.world_size
        dist.all_gather_object(gathered, mine)
        out: list[Any] = [None] * len(tasks)
        for part in gathered:
            for i, r in part:
                out[i] = r
        return out

    return map_fn
