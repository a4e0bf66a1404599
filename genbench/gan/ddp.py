"""Data-parallel training of the assignment's GAN on torch.distributed (DistributedDataParallel).

Each rank holds the preloaded training tensors, G and D wrapped in ``DistributedDataParallel``
(gradients averaged over ranks by all-reduce) and its own Adam optimisers (identical on every
rank, since they see identical averaged gradients).

Split: every epoch all ranks draw the *same* seeded permutation (``train.epoch_permutation``, as a
single-process run does) and split it exactly like ``torch.utils.data.DistributedSampler``
(drop_last=False): padded to a multiple of the world size W by repeating its start, rank r taking
positions r, r + W, r + 2W, ...; each rank then cuts its share into batches of ``batch_size``
(the *per-rank* batch). All ranks have the same number of equal-size batches, so the averaged
gradient is the gradient of the loss on the concatenated global batch of W·batch_size images
(the *effective* batch). Noise: every rank draws the global batch's noise (W·b, 100) from the run's
noise generator and takes its slice, so the generator state is the same everywhere (rank 0
checkpoints it) and W = 1 reproduces ``train.train_gan`` exactly.

Rank 0 alone writes the checkpoint (atomically, the ``train`` format plus a ``distributed``
record), ``history.json`` and the sample grids. ``resume`` needs the same world size: the split and
the noise slices depend on it.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from genbench._io import atomic_path, output_dir, write_json
from genbench._runtime import device_name, synchronize
from genbench.distributed import DistContext, agree_on_error, check_agreement
from genbench.errors import DivergenceError, GenbenchError, ParameterError
from genbench.gan.data import MnistData, load_mnist
from genbench.gan.models import Discriminator, Generator, sample_noise
from genbench.gan.train import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    GRID_NAME,
    HISTORY_NAME,
    SAMPLES_NAME,
    STATS,
    TrainConfig,
    _epoch_records,
    build_models,
    build_optimizers,
    data_fingerprint,
    epoch_permutation,
    generate,
    load_checkpoint,
    history_record,
    noise_generator,
    restore_training_state,
    save_images,
)


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
                 start: int = 0) -> Iterator[torch.Tensor]:
    """This rank's real batches of epoch ``epoch`` from batch index ``start`` on (W = 1: ``train.epoch_batches``)."""
    idx = rank_indices(epoch_permutation(seed, epoch, images.shape[0], images.device), rank, world_size)
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
    all-reduces) G's gradients only, as ``train_step``'s ``autograd.grad`` does.
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


def _rank0_checkpoint(ctx: DistContext, ckpt_path: Path, out: Path, resume: bool, overwrite: bool) -> dict[str, Any] | None:
    """Rank 0 reads the checkpoint (or decides there is none) and broadcasts it: no shared filesystem needed."""
    import torch.distributed as dist

    box: list[Any] = [None]
    if ctx.rank == 0:
        try:
            if out.exists() and not out.is_dir():
                raise ParameterError(f"out={os.fspath(out)!r} is an existing file, not a folder")
            if resume and ckpt_path.exists():
                box[0] = ("ckpt", load_checkpoint(ckpt_path))
            elif ckpt_path.exists() and not overwrite:
                raise ParameterError(f"out={os.fspath(out)!r} already holds {CHECKPOINT_NAME}; pass resume (--resume) to continue it "
                                     "or overwrite (--overwrite) to start again")
            else:
                box[0] = ("none", None)
        except GenbenchError as exc:
            box[0] = ("error", exc)
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        if ctx.rank == 0:
            raise value
        raise type(value)(f"rank 0 of {ctx.world_size}: {value}")
    return value


def _save(path: Path, gen: Generator, disc: Discriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, *,
          step: int, spe: int, cfg: TrainConfig, noise: torch.Generator, data: MnistData, fingerprint: str,
          steps_hist: torch.Tensor, wall: float, segments: list[dict[str, Any]], epoch_times: dict[int, list[float]],
          dist_record: dict[str, Any]) -> None:
    """The ``train`` checkpoint format (loadable by ``load_generator`` and ``gan evaluate``) plus ``distributed``."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "generator": gen.state_dict(),
        "discriminator": disc.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "step": step,
        "epoch": step // spe,
        "config": cfg.to_dict(),
        "data_source": data.source,
        "data_fingerprint_md5": fingerprint,
        "rng": {"noise": noise.get_state(), "noise_device": str(noise.device)},
        "history": {
            "steps": steps_hist.clone(), "wall_time_s": wall, "segments": segments,
            "epoch_times": {str(k): [float(x) for x in v] for k, v in epoch_times.items()},
        },
        "distributed": dist_record,
        "torch_version": str(torch.__version__),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train_gan_ddp(
    config: TrainConfig,
    out_dir: str | os.PathLike[str],
    ctx: DistContext,
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    data: MnistData | None = None,
) -> DDPResult:
    """Collective: train (or resume) the seed's GAN with DDP over ``ctx``'s ranks; rank 0 writes the outputs.

    ``config.batch_size`` is the per-rank batch; the effective batch is ``batch_size * world_size``.
    ``config.device`` is ignored: each rank uses ``ctx.device``.
    """
    import torch.distributed as dist

    cfg = TrainConfig(**{**config.to_dict(), "betas": tuple(config.betas), "device": str(ctx.device)}).validated()
    if cfg.step_mode != "eager":
        raise ParameterError(f"step_mode={cfg.step_mode!r} is not supported with --distributed; use eager")
    # Each rank has its own device (cuda:LOCAL_RANK), so the device is left out of the comparison.
    check_agreement(ctx, "the training config", {k: v for k, v in cfg.to_dict().items() if k != "device"})
    dev, world, rank = ctx.device, ctx.world_size, ctx.rank
    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT_NAME
    ckpt = _rank0_checkpoint(ctx, ckpt_path, out, resume, overwrite)
    data = _load_data(ctx, cfg, data)
    fingerprint = data_fingerprint(data)
    check_agreement(ctx, "the training data (MD5 of digits and labels)", fingerprint)
    n = len(data)
    spe = steps_per_epoch(n, cfg.batch_size, world)
    total = cfg.epochs * spe if cfg.max_steps is None else min(cfg.epochs * spe, cfg.max_steps)
    dist_record = {
        "world_size": world, "backend": ctx.backend, "per_rank_batch": cfg.batch_size,
        "effective_batch": cfg.batch_size * world, "steps_per_epoch": spe,
        "split": "DistributedSampler-equivalent (drop_last=False) of the epoch's seeded permutation",
    }

    gen, disc = build_models(cfg.seed, dev)
    opt_g, opt_d = build_optimizers(gen, disc, cfg.lr, cfg.betas)
    noise = noise_generator(cfg.seed, dev)
    step, wall_before = 0, 0.0
    steps_hist = torch.zeros(0, len(STATS))
    segments: list[dict[str, Any]] = []
    epoch_times: dict[int, list[float]] = {}
    if ckpt is not None:
        step, steps_hist, wall_before, segments, epoch_times = restore_training_state(
            ckpt, ckpt_path, cfg, fingerprint, dev, gen, disc, opt_g, opt_d, noise, world_size=world
        )
    elif resume and rank == 0 and not quiet:
        print(f"no {CHECKPOINT_NAME} in {os.fspath(out)}; starting from scratch", file=sys.stderr)
    if rank == 0:
        out = output_dir(out, "out")
    g_ddp, d_ddp = wrap_ddp(gen, dev), wrap_ddp(disc, dev)
    images, start_step = data.images, step
    loop_time = 0.0
    per_rank_seconds = [0.0] * world
    gen.train()
    disc.train()
    while step < total:
        epoch = step // spe
        pos = step - epoch * spe
        end = min(total, (epoch + 1) * spe)
        t0 = time.perf_counter()
        stats = []
        for _, real in zip(range(pos, end - epoch * spe), rank_batches(images, cfg.seed, epoch, cfg.batch_size, rank, world, pos)):
            z = rank_noise(noise, real.shape[0], rank, world, dev)
            try:
                stats.append(ddp_train_step(g_ddp, d_ddp, opt_g, opt_d, real, z))
            except RuntimeError as exc:  # BCE refuses a NaN probability: D's output went non-finite
                if "between 0 and 1" not in str(exc):
                    raise
                raise DivergenceError(f"training produced a non-finite discriminator output at step {step + len(stats) + 1} "
                                      f"(epoch {epoch + 1}); the last checkpoint is kept") from exc
        block = torch.stack(stats)
        synchronize(dev)
        local_dt = time.perf_counter() - t0
        # Rank-averaged per-step statistics (equal batch sizes: the concatenated batch's means) and
        # every rank's loop time, in one all-reduce per epoch.
        packed = torch.cat([block.reshape(-1).to(torch.float64), torch.zeros(world, dtype=torch.float64, device=block.device)])
        packed[block.numel() + rank] = local_dt
        dist.all_reduce(packed)
        block = (packed[: block.numel()].reshape(block.shape) / world).to(torch.float32).cpu()
        rank_dt = packed[block.numel():].cpu().tolist()
        dt = max(rank_dt)
        per_rank_seconds = [a + b for a, b in zip(per_rank_seconds, rank_dt)]
        loop_time += dt
        if not bool(torch.isfinite(block).all()):
            bad = int(torch.nonzero(~torch.isfinite(block).all(1))[0]) + step + 1
            raise DivergenceError(f"training produced a non-finite loss at step {bad} (epoch {epoch + 1}); the last checkpoint is kept")
        step = end
        steps_hist = torch.cat([steps_hist, block])
        epoch_times[epoch] = [dt, block.shape[0] / dt if dt > 0 else float("nan")]
        segment = {"start_step": start_step, "end_step": step, "seconds": loop_time, "device": device_name(dev),
                   "step_mode": cfg.step_mode, "world_size": world}
        if rank == 0:
            _save(ckpt_path, gen, disc, opt_g, opt_d, step=step, spe=spe, cfg=cfg, noise=noise, data=data, fingerprint=fingerprint,
                  steps_hist=steps_hist, wall=wall_before + loop_time, segments=[*segments, segment], epoch_times=epoch_times,
                  dist_record=dist_record)
            if not quiet:
                rec = _epoch_records(steps_hist, spe, {})[epoch]
                print(f"epoch {epoch + 1}/{cfg.epochs} step {step}: D loss {rec['d_loss']:.4f}  G loss {rec['g_loss']:.4f}  "
                      f"D(x) {rec['d_real']:.3f}  D(G(z)) {rec['d_fake']:.3f}  ({epoch_times[epoch][1]:.1f} it/s, "
                      f"{world} ranks x batch {cfg.batch_size})", flush=True)
        dist.barrier()  # every rank leaves the epoch only once its checkpoint is on disk

    ran = step - start_step
    if ran:
        segments.append({"start_step": start_step, "end_step": step, "seconds": loop_time, "device": device_name(dev),
                         "step_mode": cfg.step_mode, "world_size": world})
    it_s = ran / loop_time if loop_time > 0 else None
    history = history_record(
        cfg, data, fingerprint, n, spe, step, wall_before + loop_time, segments, dev, steps_hist, epoch_times,
        this_run={"steps": ran, "seconds": loop_time, "it_per_s": it_s,
                  "images_per_s": it_s * cfg.batch_size * world if it_s else None,
                  "per_rank_seconds": per_rank_seconds},
    )
    history["distributed"] = dist_record
    history["per_step_note"] = f"per-step statistics are averaged over the {world} ranks (the effective batch's means)"
    hist_path = out / HISTORY_NAME
    if rank == 0:
        write_json(hist_path, history)
        save_images(generate(gen, 10), out / SAMPLES_NAME, nrow=10)
        save_images(generate(gen, 100), out / GRID_NAME, nrow=10)
    dist.barrier()
    return DDPResult(
        out_dir=out, checkpoint=ckpt_path, history_path=hist_path, config=cfg, data_source=data.source, world_size=world,
        per_rank_batch=cfg.batch_size, effective_batch=cfg.batch_size * world, steps=step, epochs_completed=step // spe,
        steps_per_s=it_s if it_s is not None else float("nan"), resumed=ckpt is not None, history=history,
    )
