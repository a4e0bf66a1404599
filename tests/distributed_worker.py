"""Worker bodies for tests/test_distributed.py, run on every rank by torch.multiprocessing.spawn (gloo, CPU).

Each scenario writes what rank 0 saw into the test's tmp folder; the test process checks it
against single-process computations. Not a test module itself.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch


def env(rank: int, world: int, port: int) -> dict[str, str]:
    """The launcher variables torchrun would set."""
    return {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}


def synthetic_digits(n: int = 192, seed: int = 0):  # type: ignore[no-untyped-def]
    """A small fixed MnistData (random pixels) so the GAN scenarios need no files."""
    from genbench.gan.data import MnistData, normalize

    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g)
    return MnistData(images=normalize(pixels), labels=labels, source="synthetic test digits", split="train", pixels=pixels)


def global_batch(batch: int, world: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The concatenated (W·batch) real images and noise of step ``step`` (same on every rank)."""
    g = torch.Generator().manual_seed(1000 + step)
    real = torch.rand(batch * world, 1, 28, 28, generator=g) * 2 - 1
    z = torch.randn(batch * world, 100, generator=g)
    return real, z


DDP_STEPS = 3
CAL_CHECK = "ula_law_mean@transient"
CAL_SEEDS = 4
DDP_BATCH = 8


def main(rank: int, world: int, port: int, tmp: str) -> None:
    """Every scenario, in order, on one rank of a ``world``-rank gloo group."""
    torch.set_num_threads(1)
    from genbench.distributed import (
        DistributedError,
        Moments,
        agree_on_error,
        allreduce_moments,
        process_group,
        rank_map,
        run_on_ranks,
    )
    from genbench.errors import DataError
    from genbench.gan.ddp import ddp_train_step, train_gan_ddp, wrap_ddp
    from genbench.gan.train import TrainConfig, build_models, build_optimizers

    out = Path(tmp)
    with process_group("cpu", environ=env(rank, world, port), timeout_s=20) as ctx:
        # (a) exact Chan merge by all-reduce of ranks holding different numbers of draws
        g = torch.Generator().manual_seed(rank)
        x = torch.randn(37 + 13 * rank, 3, generator=g, dtype=torch.float64) * (1 + rank) + 5 * rank
        merged = allreduce_moments(Moments.of(x), ctx)
        if ctx.is_main:
            np.savez(out / "moments.npz", n=merged.n, mean=merged.mean, m2=merged.m2)

        # (b) rank_map equals the serial map, in order
        res = rank_map(ctx)(lambda t: (t, t * t, os.getpid()), list(range(11)))
        if ctx.is_main:
            (out / "rank_map.json").write_text(json.dumps([[a, b] for a, b, _ in res]))
            (out / "rank_map_pids.json").write_text(json.dumps(sorted({p for *_, p in res})))

        # (b2) the calibration study's trials over the ranks: the same table as the serial run
        from genbench.calibration.study import run_study

        study = run_study("quick", seeds=CAL_SEEDS, checks_=[CAL_CHECK], map_fn=rank_map(ctx))
        if ctx.is_main:
            (out / "calibration.json").write_text(json.dumps(study.to_dict()["checks"]))

        # (c) DDP steps on per-rank slices vs one process on the concatenated batch (checked by the test)
        gen, disc = build_models(7)
        opt_g, opt_d = build_optimizers(gen, disc)
        g_ddp, d_ddp = wrap_ddp(gen, ctx.device), wrap_ddp(disc, ctx.device)
        stats = []
        for s in range(DDP_STEPS):
            real, z = global_batch(DDP_BATCH, world, s)
            sl = slice(rank * DDP_BATCH, (rank + 1) * DDP_BATCH)
            st = ddp_train_step(g_ddp, d_ddp, opt_g, opt_d, real[sl], z[sl])
            torch.distributed.all_reduce(st)
            stats.append((st / world).tolist())
        if ctx.is_main:
            torch.save({"generator": gen.state_dict(), "discriminator": disc.state_dict(), "stats": stats}, out / "ddp_step.pt")

        # (d) distributed training: uninterrupted vs interrupted (max_steps) then resumed
        data = synthetic_digits()
        cfg = TrainConfig(epochs=2, batch_size=16, seed=3, data="synthetic")
        train_gan_ddp(cfg, out / "full", ctx, quiet=True, data=data)
        train_gan_ddp(TrainConfig(**{**cfg.to_dict(), "betas": tuple(cfg.betas), "max_steps": 5}), out / "cut", ctx, quiet=True, data=data)
        train_gan_ddp(cfg, out / "cut", ctx, resume=True, quiet=True, data=data)

        # (e) an error on one rank reaches every rank, naming it
        err = DataError("digits file is truncated") if rank == 1 else None
        try:
            agree_on_error(ctx, err)
        except Exception as exc:  # noqa: BLE001 - recorded for the test
            (out / f"agree_rank{rank}.txt").write_text(f"{type(exc).__name__}: {exc}")

        # (f) a collective a peer never joins fails with a one-line error after the (short) timeout
        import dataclasses
        import datetime

        short = torch.distributed.new_group(ranks=list(range(world)), timeout=datetime.timedelta(seconds=2))
        if rank == 0:
            try:
                run_on_ranks(dataclasses.replace(ctx, timeout_s=2), lambda: torch.distributed.barrier(group=short))
            except DistributedError as exc:
                (out / "timeout_rank0.txt").write_text(str(exc))
        else:
            time.sleep(3.5)  # alive but absent: rank 0 times out rather than losing its peer
