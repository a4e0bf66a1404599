"""Standard MNIST IDX files: finding a split's two files in a folder, and reading each one after
verifying its IDX header, its exact length and the MD5 of its content against the published checksums
(``.gz`` files against torchvision's ``MNIST.resources``; a re-compressed ``.gz`` is accepted when its
decompressed content matches the published MD5 of the uncompressed file).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

from genbench.errors import DataError

PREFIX = {"train": "train", "test": "t10k"}
COUNT = {"train": 60_000, "test": 10_000}

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


def md5(data: bytes) -> str:
    """MD5 hex digest of ``data`` (a checksum, not security)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def parse_idx(data: bytes, name: str, path: Path) -> np.ndarray:
    """The array in IDX bytes ``data`` of the standard file ``name``, read from ``path``; DataError if malformed."""
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
    want_dims = (COUNT[split], 28, 28) if want_ndim == 3 else (COUNT[split],)
    if dims != want_dims:
        raise DataError(f"MNIST file {path} has dimensions {dims} in its IDX header, expected {want_dims}")
    expected = header + int(np.prod(dims))
    if len(data) < expected:
        raise DataError(f"MNIST file {path} is truncated: {len(data)} bytes of content, expected {expected}")
    if len(data) > expected:
        raise DataError(f"MNIST file {path} has {len(data) - expected} unexpected trailing bytes (expected {expected})")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


@functools.lru_cache(maxsize=8)
def read_verified(path_str: str, size: int, mtime_ns: int) -> tuple[np.ndarray, str]:
    """(array, how it was verified) of one standard MNIST file, cached by (path, size, mtime)."""
    # Cached so that repeated loads in one process (tests, evaluate) parse each file once.
    path = Path(path_str)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise DataError(f"MNIST file {path} cannot be read: {exc.strerror}") from exc
    if path.name.endswith(".gz"):
        name = path.name[: -len(".gz")]
        gz_ok = md5(blob) == GZ_MD5[path.name]
        try:
            data = gzip.decompress(blob)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(f"MNIST file {path} is a corrupt or truncated gzip file ({exc})") from exc
        arr = parse_idx(data, name, path)
        if gz_ok:
            how = "md5 of .gz verified"
        elif md5(data) == RAW_MD5[name]:
            how = "md5 of decompressed content verified"
        else:
            raise DataError(
                f"MNIST file {path} fails its MD5 check (expected {GZ_MD5[path.name]}): corrupt or not the published file"
            )
    else:
        name = path.name
        arr = parse_idx(blob, name, path)
        if md5(blob) != RAW_MD5[name]:
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
    return verified(Path(path))[0]


def verified(path: Path) -> tuple[np.ndarray, str]:
    """(array, how it was verified) of one standard MNIST file: the name must be a published one."""
    p = path.resolve()
    if p.name not in GZ_MD5 and p.name not in RAW_MD5:
        known = ", ".join(sorted(RAW_MD5))
        raise DataError(f"{p} is not a standard MNIST file name (known: {known}, optionally .gz)")
    try:
        st = p.stat()
    except OSError as exc:
        raise DataError(f"MNIST file {p} cannot be read: {exc.strerror}") from exc
    return read_verified(str(p), st.st_size, st.st_mtime_ns)


def idx_folders(path: Path) -> list[Path]:
    """Folders under ``path`` that may hold the IDX files: the path itself, ./raw, ./MNIST/raw."""
    return [p for p in (path / "MNIST" / "raw", path / "raw", path) if p.is_dir()]


def known_files(folder: Path) -> list[str]:
    """The standard MNIST file names present in ``folder``."""
    return sorted(f for f in (*GZ_MD5, *RAW_MD5) if (folder / f).is_file())


def find_split(path: Path, split: str) -> tuple[Path, Path] | None:
    """The (images, labels) files for ``split`` under ``path``, uncompressed preferred; None if absent."""
    prefix = PREFIX[split]
    for folder in idx_folders(path):
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


def present(path: Path) -> str:
    """The standard MNIST files under ``path``, for error messages."""
    files = [f for folder in idx_folders(path) for f in known_files(folder)]
    return ", ".join(files) if files else "no MNIST IDX files"
