"""Sharded batched Langevin: chains split across torch.distributed ranks, moments merged exactly.

Reproducibility whatever the number of ranks: the ``chains`` chains are cut into fixed-size
*blocks* of ``block_size`` consecutive chains (the last one smaller); block b draws all its noise
from its own ``torch.Generator`` seeded by ``SeedSequence([seed, b])``
(:func:`genbench.seeding.derive_seed`), and each rank runs whole blocks (contiguous ranges of
blocks, balanced by count). A chain's path therefore depends on (seed, block_size) only, never on
the number of ranks, and one process running every block (``ctx=None``) computes the very same
chains. Each block is reduced to its (count, mean, M2) in float64; the per-block table is assembled
on every rank by one all-reduce of a zero-padded table (exact: each row is written by one rank),
then merged with Chan's formula in block order. The merged mean and covariance are thus
bit-identical for 1, 2 or N ranks, and equal to the mean and covariance of all the chains' draws
pooled in one array up to float rounding (tested).

This is a different random stream from ``sample_ula(..., chains=C, seed=S)`` (one generator for all
chains): same law, different numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from genbench._runtime import resolve_device, resolve_dtype
from genbench._validate import choice, positive_int
from genbench.distributed import DistContext, Moments, agree_on_error, allgather_rows, merge_moments, split_range, stream_generator
from genbench.errors import GenbenchError
from genbench.langevin.mala import sample_mala
from genbench.langevin.ula import sample_ula
from genbench.targets import SEED_COV, SEED_MEAN, Gaussian, Target

#: Chains per block. At 2^16 chains a block amortises the samplers' per-call overhead (their fused
#: CPU kernels step whole blocks of chains) and its (2, chains) float64 buffers (1 MiB each) stay
#: cache-resident.
DEFAULT_BLOCK_SIZE = 1 << 16
SAMPLERS = ("ula", "mala")
KEEP = ("final", "stats")


@dataclass
class ShardedRun:
    """Merged outcome of a sharded run (moments over all chains; no draws are kept).

    keep="final": the chains' states x_T (N = chains). keep="stats": every kept step after
    ``burn_in`` with ``thin`` of every chain, pooled (N = chains·n_kept), streamed per block.
    ``elapsed_s`` is the slowest rank's sampling time (the makespan); ``chain_steps_per_s`` is
    chains·steps over it. ``per_rank`` lists each rank's blocks, chains and time.
    """

    sampler: str
    steps: int
    step_size: float
    chains: int
    seed: int
    device: str
    dtype: str
    keep: str
    burn_in: int
    thin: int
    block_size: int
    blocks: int
    moments: Moments
    world_size: int
    backend: str | None
    elapsed_s: float
    chain_steps_per_s: float
    per_rank: list[dict[str, Any]] = field(default_factory=list)
    acceptance_rate: float | None = None

    @property
    def mean(self) -> np.ndarray:
        """Merged mean (d,), float64."""
        return self.moments.mean

    @property
    def cov(self) -> np.ndarray | None:
        """Merged (N − 1)-denominator covariance (d, d), float64; None if N < 2."""
        return self.moments.cov()


def block_ranges(chains: int, block_size: int) -> list[range]:
    """The chain index ranges of every block: consecutive, ``block_size`` each, the last one smaller."""
    chains = positive_int("chains", chains)
    block_size = positive_int("block_size", block_size)
    return [range(s, min(s + block_size, chains)) for s in range(0, chains, block_size)]


def _run_block(fn: Any, target: Target, steps: int, step_size: float, n: int, b: int, *, seed: int, x0: Any,
               dev: torch.device, dt: torch.dtype, keep: str, burn_in: int, thin: int) -> tuple[np.ndarray, float | None]:
    """One block's row [n, mean (d), M2 (d·d), accepted] from its own generator."""
    gen = stream_generator(seed, b, device=dev)
    run = fn(target, steps, step_size, chains=n, x0=x0, generator=gen, device=dev, dtype=dt,
             burn_in=burn_in, thin=thin, keep=keep)
    if keep == "final":
        m = Moments.of(run.final)
    else:  # streamed moments of the kept steps: M2 = cov·(N − 1)
        cov = run.cov if run.cov is not None else np.zeros((target.dim, target.dim))
        m = Moments(run.n_draws, np.asarray(run.mean, dtype=np.float64), np.asarray(cov, dtype=np.float64) * (run.n_draws - 1))
    acc = run.acceptance_rate
    row = np.concatenate([[float(m.n)], m.mean, m.m2.reshape(-1), [np.nan if acc is None else acc]])
    return row, acc


def sample_sharded(
    steps: int,
    step_size: float,
    *,
    chains: int,
    seed: int = 0,
    x0: Any = 0.0,
    target: Gaussian | None = None,
    sampler: str = "ula",
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float64",
    keep: str = "final",
    burn_in: int = 0,
    thin: int = 1,
    block_size: int = DEFAULT_BLOCK_SIZE,
    ctx: DistContext | None = None,
) -> ShardedRun:
    """Run ``chains`` ULA/MALA chains cut into seeded blocks, this rank's blocks only, and merge moments over all ranks.

    ``ctx=None`` runs every block in this process (the single-process equivalent). Collective
    when ``ctx`` is given: every rank must call it with the same arguments.
    """
    sampler = choice("sampler", sampler, SAMPLERS)
    keep = choice("keep", keep, KEEP)
    steps = positive_int("steps", steps)
    chains = positive_int("chains", chains, minimum=2 if keep == "final" else 1)
    seed = positive_int("seed", seed, minimum=0)
    blocks = block_ranges(chains, block_size)
    world, rank = (1, 0) if ctx is None else (ctx.world_size, ctx.rank)
    dev = resolve_device(device) if ctx is None else ctx.device
    dt = resolve_dtype(dtype)
    tgt = target if target is not None else Gaussian(SEED_MEAN, SEED_COV, dtype=dt, device=dev)
    fn = sample_ula if sampler == "ula" else sample_mala
    mine = list(split_range(len(blocks), world, rank))
    d = tgt.dim
    rows = np.zeros((len(mine), 2 + d + d * d))
    error: BaseException | None = None
    t0 = time.perf_counter()
    try:
        for i, b in enumerate(mine):
            rows[i], _ = _run_block(fn, tgt, steps, step_size, len(blocks[b]), b, seed=seed, x0=x0, dev=dev, dt=dt,
                                    keep=keep, burn_in=burn_in, thin=thin)
    except GenbenchError as exc:  # e.g. a divergence: every rank must learn of it before the merge
        error = exc
        if ctx is None:
            raise
    elapsed = time.perf_counter() - t0
    my_chains = sum(len(blocks[b]) for b in mine)
    if ctx is not None:
        agree_on_error(ctx, error)
        table = allgather_rows(rows, mine, len(blocks), ctx)
        timing = allgather_rows(np.array([[elapsed, my_chains, mine[0] if mine else -1, mine[-1] if mine else -1]]),
                                [rank], world, ctx)
    else:
        table = rows
        timing = np.array([[elapsed, my_chains, 0, len(blocks) - 1]])
    parts = [Moments(int(r[0]), r[1:1 + d].copy(), r[1 + d:1 + d + d * d].reshape(d, d).copy()) for r in table]
    merged = merge_moments(parts)
    acc = None
    if sampler == "mala":  # chain-weighted mean of the blocks' acceptance rates (same number of steps each)
        sizes = np.array([len(b) for b in blocks], dtype=np.float64)
        acc = float(np.sum(table[:, -1] * sizes) / np.sum(sizes))
    makespan = float(timing[:, 0].max())
    per_rank = [
        {"rank": r, "chains": int(t[1]), "blocks": [int(t[2]), int(t[3])] if t[1] > 0 else [],
         "elapsed_s": float(t[0]), "chain_steps_per_s": float(t[1] * steps / t[0]) if t[0] > 0 else None}
        for r, t in enumerate(timing)
    ]
    return ShardedRun(
        sampler=sampler, steps=steps, step_size=float(step_size), chains=chains, seed=seed, device=str(dev),
        dtype=str(dt).replace("torch.", ""), keep=keep, burn_in=burn_in, thin=thin, block_size=int(block_size),
        blocks=len(blocks), moments=merged, world_size=world, backend=None if ctx is None else ctx.backend,
        elapsed_s=makespan, chain_steps_per_s=chains * steps / makespan if makespan > 0 else float("inf"),
        per_rank=per_rank, acceptance_rate=acc,
    )


def block_final_states(steps: int, step_size: float, *, chains: int, seed: int = 0, x0: Any = 0.0,
                       sampler: str = "ula", block_size: int = DEFAULT_BLOCK_SIZE, dtype: str = "float64") -> torch.Tensor:
    """All chains' x_T (chains, d) of the sharded scheme, computed in one process (for checks; needs the memory)."""
    tgt = Gaussian(SEED_MEAN, SEED_COV, dtype=resolve_dtype(dtype))
    fn = sample_ula if choice("sampler", sampler, SAMPLERS) == "ula" else sample_mala
    outs = []
    for b, r in enumerate(block_ranges(chains, block_size)):
        outs.append(fn(tgt, steps, step_size, chains=len(r), x0=x0, generator=stream_generator(seed, b),
                       dtype=tgt.dtype, keep="final").final)
    return torch.cat(outs)


def summarize_sharded(run: ShardedRun, target: Gaussian | None = None, x0: Any = 0.0) -> dict[str, Any]:
    """The ``summary.json`` dict of a sharded run: the keys of ``summarize_run`` plus a ``distributed`` record."""
    from genbench.langevin.experiments import summary_record

    tgt = target if target is not None else Gaussian(SEED_MEAN, SEED_COV)
    if run.keep == "final":
        basis = f"across the {run.chains} chains at step T={run.steps} (N-1 denominator), merged over {run.blocks} blocks"
        ess: list[float] | None = [float(run.chains)] * tgt.dim
        ess_note = "independent chains: the draws at step T are independent, so ESS = chains"
    else:
        basis = (f"pooled over the {run.chains} chains and their kept steps after burn_in={run.burn_in}, thin={run.thin} "
                 f"(N-1 denominator), streamed per block and merged")
        ess, ess_note = None, "not computed for pooled streamed moments (draws along a chain are correlated)"
    summary = summary_record(run, tgt, x0, emp_mean=run.mean, emp_cov=run.cov, basis=basis, n_draws=run.moments.n,
                             ess=ess, ess_note=ess_note, compare_exact=run.keep == "final")
    summary["predicted_ess"] = None  # chains > 1: no single-trajectory ESS prediction
    summary["distributed"] = {
        "world_size": run.world_size,
        "backend": run.backend,
        "block_size": run.block_size,
        "blocks": run.blocks,
        "keep": run.keep,
        "per_rank": run.per_rank,
        "stream_rule": ("block b (chains b*block_size ...) draws from torch.Generator seeded by "
                        "numpy SeedSequence([seed, b]); ranks own contiguous whole blocks, so the chains "
                        "do not depend on the number of ranks"),
        "merge": ("per-block (count, mean, M2) in float64, gathered by an exact all-reduce of a zero-padded "
                  "table and merged with Chan's formula in block order: bit-identical for any number of ranks"),
        "elapsed_note": "elapsed_s is the slowest rank's sampling time; chain_steps_per_s = chains*steps/elapsed_s",
    }
    return summary
