"""What ``genbench gan train`` leaves beside its checkpoint: samples from the seed-42 noise (the
assignment's 1×10 matplotlib figure, a 1×10 and a 10×10 image grid), the loss curves drawn from
``history.json``, and optional per-epoch grids. Every file is written atomically."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genbench._io import atomic_path, write_bytes, write_json
from genbench._validate import positive_int
from genbench.gan.models import Generator, sample_noise

HISTORY_NAME = "history.json"
SAMPLES_NAME = "samples.png"
GRID_NAME = "grid.png"
FIGURE_NAME = "samples_figure.png"
LOSSES_NAME = "losses.png"
GRIDS_DIR = "grids"
SAMPLE_SEED = 42  # the seed's samples: torch.Generator().manual_seed(42) -> 10 noise vectors


@dataclass(frozen=True)
class RunOutputs:
    """Paths of the files a training run wrote at its end."""

    history: Path
    samples: Path  # torchvision 1x10 grid of the seed-42 samples
    figure: Path  # the assignment's matplotlib figure of the same 10 samples
    grid: Path  # torchvision 10x10 grid
    losses: Path  # loss curves from history.json


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


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def sample_figure(images: torch.Tensor) -> bytes:
    """The assignment's sample figure as PNG: one row of subplots, 15×2 in, gray, axes off."""
    # matplotlib.figure.Figure, not pyplot: no global figure state and no GUI backend involved.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 2))
    axes = fig.subplots(1, images.shape[0], squeeze=False)[0]
    for ax, img in zip(axes, images):
        ax.imshow(img.squeeze().numpy(), cmap="gray")
        ax.axis("off")
    return _png(fig)


def loss_figure(history: dict[str, Any]) -> bytes:
    """PNG of a ``history.json``: D and G loss per step with per-epoch means, and mean D(x), D(G(z))."""
    from matplotlib.figure import Figure

    per, epochs = history["per_step"], history["epochs"]
    spe = int(history["steps_per_epoch"])
    steps = range(1, len(per["d_loss"]) + 1)
    ends = [(int(e["epoch"]) - 1) * spe + int(e["steps"]) for e in epochs]
    fig = Figure(figsize=(12, 4), layout="tight")
    left, right = fig.subplots(1, 2)
    for ax, keys in ((left, (("d_loss", "D loss"), ("g_loss", "G loss"))), (right, (("d_real", "D(x)"), ("d_fake", "D(G(z))")))):
        for key, label in keys:
            line = ax.plot(steps, per[key], lw=0.6, alpha=0.45, label=f"{label} per step")[0]
            ax.plot(ends, [e[key] for e in epochs], "o-", ms=3, color=line.get_color(), label=f"{label} epoch mean")
        ax.set_xlabel(f"optimiser step (batch {history['config']['batch_size']})")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    left.set_ylabel("BCE loss")
    left.set_title("Discriminator and generator loss")
    right.set_ylabel("mean D output")
    right.set_ylim(-0.02, 1.02)
    right.set_title("D on real digits and on the step's fakes")
    return _png(fig)


def write_run_outputs(out: Path, gen: Generator, history: dict[str, Any]) -> RunOutputs:
    """Write history.json, the seed-42 samples (figure and grids) and losses.png into ``out``."""
    samples = generate(gen, 10)
    return RunOutputs(
        history=write_json(out / HISTORY_NAME, history),
        samples=save_images(samples, out / SAMPLES_NAME, nrow=10),
        figure=write_bytes(out / FIGURE_NAME, sample_figure(samples)),
        grid=save_images(generate(gen, 100), out / GRID_NAME, nrow=10),
        losses=write_bytes(out / LOSSES_NAME, loss_figure(history)),
    )


def save_epoch_grid(out: Path, gen: Generator, epoch: int) -> Path:
    """The 10×10 grid from the seed-42 noise after ``epoch`` (1-based) epochs: OUT/grids/epoch_NNNN.png."""
    return save_images(generate(gen, 100), out / GRIDS_DIR / f"epoch_{epoch:04d}.png", nrow=10)
