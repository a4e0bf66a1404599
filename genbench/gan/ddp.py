"""Data-parallel training of the assignment's GAN on torch.distributed (DistributedDataParallel).

Each rank holds the preloaded training tensors, G and D wrapped in ``DistributedDataParallel``
(gradients averaged over ranks by all-reduce) and its own Adam optimisers (identical on every
rank, since they see identical averaged gradients). The epoch loop is ``train.run_epochs``; this
module supplies its hooks: each rank's batches and noise, the all-reduce of an epoch's statistics,
and rank 0's checkpoint.

Split: every epoch all ranks take the *same* order (``train.epoch_order``: the stored order, or the
seeded shuffle with ``shuffle=True``, as a single-process run does) and split it exactly like
``torch.utils.data.DistributedSampler`` (drop_last=False): padded to a multiple of the world size W
by repeating its start, rank r taking positions r, r + W, r + 2W, ...; each rank then cuts its
share into batches of ``batch_size`` (the *per-rank* batch). All ranks have the same number of
equal-size batches, so the averaged gradient is the gradient of the loss on the concatenated global
batch of W·batch_size images (the *effective* batch). Noise: every rank draws the global batch's
noise (W·b, 100) from the run's noise generator and takes its slice, so the generator state is the
same everywhere (rank 0 checkpoints it) and W = 1 reproduces ``train.train_gan`` exactly.

Rank 0 alone writes the checkpoint (atomically, the ``train`` format plus a ``distributed``
record), ``history.json`` and the sample images. ``resume`` needs the same world size: the split and
the noise slices depend on it.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from genbench._io import output_dir
from genbench._runtime import device_name
from genbench._validate import positive_int
from genbench.distributed import DistContext, agree_on_error, check_agreement
from genbench.errors import GenbenchError, ParameterError
from genbench.gan.checkpoint import CHECKPOINT_NAME, data_fingerprint, save_checkpoint
from genbench.gan.data import MnistData, load_mnist
from genbench.gan.models import sample_noise
from genbench.gan.outputs import HISTORY_NAME, save_epoch_grid, write_run_outputs
from genbench.gan.state import TrainConfig, history_record
from genbench.gan.step import STATS
from genbench.gan.train import LoopHooks, class_sorted, epoch_line, epoch_order, existing_checkpoint, prepare_trainee, run_epochs, sorted_data_note


@dataclass
class DDPResult:
    """What a distributed training run produced (paths are rank 0's outputs; same on every rank)."""

    out_dir: Path
    checkpoint: Path
    history_path: Path
    config: TrainConfig
    data_source: str
    world_size: int
    per_rank_batch: int
    effective_batch: int
    steps: int
    epochs_completed: int
    steps_per_s: float  # this invocation's training loop, global optimiser steps per second
    resumed: bool
    history: dict[str, Any] = field(repr=False)

    @property
    def final(self) -> dict[str, float]:
        """Mean D loss, G loss, D(x), D(G(z)) over the last epoch (averaged over ranks)."""
        return {k: self.history["epochs"][-1][k] for k in STATS} if self.history["epochs"] else {}


# --------------------------------------------------------------------------------------------
# The split and the step
# --------------------------------------------------------------------------------------------


def rank_indices(perm: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """DistributedSampler's share of ``perm`` for ``rank`` (drop_last=False: pad by repeating the start)."""
    n = perm.shape[0]
    per_rank = math.ceil(n / world_size)
    total = per_rank * world_size
    if total > n:
        reps = math.ceil((total - n) / n)
        perm = torch.cat([perm, perm.repeat(reps)[: total - n]])
    return perm[rank:total:world_size]


def steps_per_epoch(n: int, batch_size: int, world_size: int) -> int:
    """Optimiser steps per epoch: ceil(ceil(n / W) / batch_size), the same on every rank."""
    return math.ceil(math.ceil(n / world_size) / batch_size)


def rank_batches(images: torch.Tensor, seed: int, epoch: int, batch_size: int, rank: int, world_size: int,
                 start: int = 0, *, shuffle: bool = False) -> Iterator[torch.Tensor]:
    """This rank's real batches of epoch ``epoch`` from batch index ``start`` on (W = 1: ``train.epoch_batches``)."""
    order = epoch_order(seed, epoch, images.shape[0], shuffle=shuffle, device=images.device)
    idx = rank_indices(order, rank, world_size)
    for i in range(start, math.ceil(idx.shape[0] / batch_size)):
        yield images.index_select(0, idx[i * batch_size : (i + 1) * batch_size])


def rank_noise(noise: torch.Generator, batch: int, rank: int, world_size: int, device: torch.device) -> torch.Tensor:
    """This rank's slice of the global batch's noise (W·batch, 100); advances ``noise`` identically on every rank."""
    z = sample_noise(batch * world_size, noise, device)
    return z[rank * batch : (rank + 1) * batch]


def ddp_train_step(gen: torch.nn.Module, disc: torch.nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                   real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``train.train_step`` with G and D wrapped in DDP: same losses, gradients averaged over ranks.

    The G step runs D's bare module with its weights frozen, so G's backward fills (and DDP
    all-reduces) G's gradients only, as ``train_step``'s ``autograd.grad`` does. The D step runs
    D's DDP wrapper again on the fakes (DDP's reducer needs its own forward before each backward).
    """
    d_bare = disc.module if hasattr(disc, "module") else disc
    fake = gen(z)
    frozen = [p for p in d_bare.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        d_on_fake = d_bare(fake)
        g_loss = F.binary_cross_entropy(d_on_fake, torch.ones_like(d_on_fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
    finally:
        for p in frozen:
            p.requires_grad_(True)
    opt_g.step()
    opt_d.zero_grad(set_to_none=True)
    d_real = disc(real)
    d_fake = disc(fake.detach())
    d_loss = F.binary_cross_entropy(d_real, torch.ones_like(d_real)) + F.binary_cross_entropy(d_fake, torch.zeros_like(d_fake))
    d_loss.backward()
    opt_d.step()
    return torch.stack([d_loss.detach(), g_loss.detach(), d_real.detach().mean(), d_fake.detach().mean()])


def wrap_ddp(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` in DistributedDataParallel on this rank's device."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(module, device_ids=ids, output_device=device.index if device.type == "cuda" else None)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _load_data(ctx: DistContext, cfg: TrainConfig, data: MnistData | None) -> MnistData:
    """Rank 0 loads (and may download) first; then the others read what it found; errors reach every rank."""
    loaded: MnistData | None = None
    for turn in (0, 1):
        error = None
        if (ctx.rank == 0) == (turn == 0):
            try:
                if data is None:
                    loaded = load_mnist(cfg.data, split="train", device=ctx.device)
                else:
                    loaded = MnistData(data.images.to(ctx.device), data.labels.to(ctx.device), data.source, data.split,
                                       data.pixels, data.files)
            except GenbenchError as exc:
                error = exc
        agree_on_error(ctx, error)
    assert loaded is not None
    return loaded.subset(cfg.subset, seed=cfg.seed) if cfg.subset is not None else loaded


def _rank0_checkpoint(ctx: DistContext, out: Path, resume: bool, overwrite: bool) -> dict[str, Any] | None:
    """Rank 0 reads the checkpoint (or decides there is none) and broadcasts it: no shared filesystem needed."""
    box: list[Any] = [None]
    if ctx.rank == 0:
        try:
            box[0] = ("ckpt", existing_checkpoint(out, resume, overwrite))
        except GenbenchError as exc:
            box[0] = ("error", exc)
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        if ctx.rank == 0:
            raise value
        raise type(value)(f"rank 0 of {ctx.world_size}: {value}")
    return value


def _allreduce_epoch(ctx: DistContext, per_rank_seconds: list[float]) -> Callable[[torch.Tensor, float], tuple[torch.Tensor, float]]:
    """The loop's ``reduce`` hook: rank-averaged per-step statistics and every rank's seconds in one all-reduce."""
    def reduce(block: torch.Tensor, seconds: float) -> tuple[torch.Tensor, float]:
        world = ctx.world_size
        # Equal batch sizes on every rank: the average is the concatenated (effective) batch's mean.
        packed = torch.cat([block.reshape(-1).to(torch.float64), torch.zeros(world, dtype=torch.float64, device=block.device)])
        packed[block.numel() + ctx.rank] = seconds
        dist.all_reduce(packed)
        rank_dt = packed[block.numel():].cpu().tolist()
        for r, dt in enumerate(rank_dt):
            per_rank_seconds[r] += dt
        return (packed[: block.numel()].reshape(block.shape) / world).to(torch.float32), max(rank_dt)

    return reduce


def train_gan_ddp(
    config: TrainConfig,
    out_dir: str | os.PathLike[str],
    ctx: DistContext,
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    data: MnistData | None = None,
    sample_every: int | None = None,
) -> DDPResult:
    """Collective: train (or resume) the seed's GAN with DDP over ``ctx``'s ranks; rank 0 writes the outputs.

    ``config.batch_size`` is the per-rank batch; the effective batch is ``batch_size * world_size``.
    ``config.device`` is ignored: each rank uses ``ctx.device``.
    """
    cfg = TrainConfig(**{**config.to_dict(), "betas": tuple(config.betas), "device": str(ctx.device)}).validated()
    if cfg.step_mode not in ("auto", "eager"):
        raise ParameterError(f"step_mode={cfg.step_mode!r} is not supported with --distributed; use eager")
    sample_every = None if sample_every is None else positive_int("sample_every", sample_every)
    # Each rank has its own device (cuda:LOCAL_RANK), so the device is left out of the comparison.
    check_agreement(ctx, "the training config", {k: v for k, v in cfg.to_dict().items() if k != "device"})
    dev, world, rank = ctx.device, ctx.world_size, ctx.rank
    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT_NAME
    ckpt = _rank0_checkpoint(ctx, out, resume, overwrite)
    data = _load_data(ctx, cfg, data)
    fingerprint = data_fingerprint(data)
    check_agreement(ctx, "the training data (MD5 of digits and labels)", fingerprint)
    n = len(data)
    spe = steps_per_epoch(n, cfg.batch_size, world)
    total = cfg.epochs * spe if cfg.max_steps is None else min(cfg.epochs * spe, cfg.max_steps)
    dist_record = {
        "world_size": world, "backend": ctx.backend, "per_rank_batch": cfg.batch_size,
        "effective_batch": cfg.batch_size * world, "steps_per_epoch": spe,
        "split": "DistributedSampler-equivalent (drop_last=False) of the epoch's order",
    }
    run = prepare_trainee(cfg, dev, ckpt, ckpt_path, fingerprint, world_size=world)
    if rank == 0 and not quiet:
        if ckpt is None and resume:
            print(f"no {CHECKPOINT_NAME} in {os.fspath(out)}; starting from scratch", file=sys.stderr)
        if not cfg.shuffle and class_sorted(data):
            print(sorted_data_note(data), file=sys.stderr)
    if rank == 0:
        out = output_dir(out, "out")
    g_ddp, d_ddp = wrap_ddp(run.gen, dev), wrap_ddp(run.disc, dev)
    state, start_step = run.state, run.state.step
    state.open_segment(device=device_name(dev), step_mode="eager", world_size=world)
    per_rank_seconds = [0.0] * world

    def after_epoch(epoch: int) -> None:
        if rank == 0:
            save_checkpoint(ckpt_path, run.gen, run.disc, run.opt_g, run.opt_d, cfg=cfg, state=state, steps_per_epoch=spe,
                            noise=run.noise, data_source=data.source, fingerprint=fingerprint, distributed=dist_record)
            if sample_every and state.step % spe == 0 and (epoch + 1) % sample_every == 0:
                save_epoch_grid(out, run.gen, epoch + 1)
            if not quiet:
                print(epoch_line(state, spe, epoch, cfg.epochs, f", {world} ranks x batch {cfg.batch_size}"), flush=True)
        dist.barrier()  # every rank leaves the epoch only once its checkpoint is on disk

    hooks = LoopHooks(
        batches=lambda epoch, start: rank_batches(data.images, cfg.seed, epoch, cfg.batch_size, rank, world, start, shuffle=cfg.shuffle),
        noise=lambda b: rank_noise(run.noise, b, rank, world, dev),
        step=lambda real, z: ddp_train_step(g_ddp, d_ddp, run.opt_g, run.opt_d, real, z),
        after_epoch=after_epoch,
        reduce=_allreduce_epoch(ctx, per_rank_seconds),
    )
    run.gen.train()
    run.disc.train()
    t_start = time.perf_counter()
    loop_time = run_epochs(state, total, spe, cfg.epochs, hooks, dev)
    ran = state.step - start_step
    it_s = ran / loop_time if loop_time > 0 else None
    history = history_record(
        cfg, state, data_source=data.source, fingerprint=fingerprint, n_train=n, steps_per_epoch=spe, device=dev,
        this_run={"steps": ran, "seconds": loop_time, "it_per_s": it_s,
                  "images_per_s": it_s * cfg.batch_size * world if it_s else None,
                  "per_rank_seconds": per_rank_seconds, "total_seconds": time.perf_counter() - t_start},
    )
    history["distributed"] = dist_record
    history["per_step_note"] = f"per-step statistics are averaged over the {world} ranks (the effective batch's means)"
    if rank == 0:
        write_run_outputs(out, run.gen, history)
    dist.barrier()
    return DDPResult(
        out_dir=out, checkpoint=ckpt_path, history_path=out / HISTORY_NAME, config=cfg, data_source=data.source, world_size=world,
        per_rank_batch=cfg.batch_size, effective_batch=cfg.batch_size * world, steps=state.step, epochs_completed=state.step // spe,
        steps_per_s=it_s if it_s is not None else float("nan"), resumed=ckpt is not None, history=history,
    )
