"""Scaling on torch.distributed: sharded ULA chain-steps/s and DDP GAN it/s against the number of ranks.

The pytest process is rank 0 of a real process group (gloo on CPU, nccl on CUDA with one GPU per
rank); ranks 1..W-1 are helper processes (benchmarks/scaling_worker.py) making the same collective
calls in lockstep. Each timed call is one collective run, so it lasts as long as the slowest rank
plus the merge (the makespan). Every rank uses one CPU thread, so W ranks use W cores.

Parallel efficiency, recorded in extra_info for W > 1 (after the W = 1 variant of the same run):
* Langevin, strong scaling (the same chains, split over W ranks): E = thr(W) / (W · thr(1)).
* GAN, weak scaling (batch 64 per rank, so W·64 images per step): E = images/s(W) / (W · images/s(1))
  = it/s(W) / it/s(1).
On CUDA the variants with more ranks than GPUs skip.
"""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from genbench.bench.profiles import Profile
from genbench.bench.timing import Workload

sys.path.insert(0, str(Path(__file__).parent))
import scaling_worker  # noqa: E402

RANKS = (1, 2)
BLOCK = 1 << 16  # genbench.langevin.sharded's default block size
#: (chains, steps per call) of the Langevin run and (steps per call, per-rank batch) of the GAN, per profile.
#: Chains are whole blocks, 2 per rank at W = 2, so every W divides the work evenly.
SIZES = {
    "quick": {"langevin": {"cpu": (4 * BLOCK, 20), "cuda": (64 * BLOCK, 500)}, "gan": (10, 64)},
    "full": {"langevin": {"cpu": (4 * BLOCK, 200), "cuda": (256 * BLOCK, 1000)}, "gan": (50, 64)},
}
_THROUGHPUT: dict[tuple[str, str], float] = {}  # (workload, device) -> throughput at W = 1, for the efficiency


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _need(device: torch.device, ranks: int) -> None:
    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("this PyTorch build has no torch.distributed")
    if device.type == "cuda":
        if not dist.is_nccl_available():
            pytest.skip("no NCCL backend in this PyTorch build")
        if torch.cuda.device_count() < ranks:
            pytest.skip(f"{ranks} ranks need {ranks} GPUs; {torch.cuda.device_count()} present")
    elif not dist.is_gloo_available():
        pytest.skip("no gloo backend in this PyTorch build")


def _scaling(run: Any, device: torch.device, ranks: int, workload: Workload, name: str, sizes: list[int],
             rounds: int, warmup: int, images_per_call: float | None = None) -> None:
    """Time ``rounds`` collective calls on a ``ranks``-rank group with rank 0 in this process."""
    from genbench.distributed import process_group

    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    helpers = [
        subprocess.Popen([sys.executable, str(Path(scaling_worker.__file__)), name, str(r), str(ranks), str(port),
                          device.type, *map(str, sizes)], env=env)
        for r in range(1, ranks)
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with process_group(device.type, environ=scaling_worker.env(0, ranks, port), timeout_s=120) as ctx:
            call = scaling_worker.make_call(name, ctx, sizes)

            def timed() -> Any:
                scaling_worker.signal(ctx, True)  # all ranks start the call together
                return call()

            extra: dict[str, Any] = {"ranks": ranks, "backend": ctx.backend, "threads_per_rank": 1}
            try:
                run(timed, workload, ctx.device, rounds=rounds, warmup_rounds=warmup, extra=extra)
            finally:
                scaling_worker.signal(ctx, False)
                del call, timed  # DDP modules (and their reducer) go before the process group does
                gc.collect()
    finally:
        torch.set_num_threads(threads)
        for p in helpers:
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
    for p in helpers:
        assert p.returncode == 0, f"helper rank exited with {p.returncode}"


def _record_efficiency(benchmark: Any, key: tuple[str, str], ranks: int, per_rank_scale: float, definition: str) -> None:
    thr = benchmark.extra_info.get("throughput")
    if thr is None:  # --benchmark-disable
        return
    if ranks == 1:
        _THROUGHPUT[key] = thr
        benchmark.extra_info["efficiency"] = 1.0
    elif key in _THROUGHPUT:
        benchmark.extra_info["speedup"] = thr / _THROUGHPUT[key]
        benchmark.extra_info["efficiency"] = thr / (per_rank_scale * ranks * _THROUGHPUT[key])
    benchmark.extra_info["efficiency_definition"] = definition


@pytest.mark.parametrize("ranks", RANKS, ids=lambda r: f"ranks={r}")
def test_langevin_scaling(run: Any, benchmark: Any, device: torch.device, profile: Profile, ranks: int) -> None:
    """Sharded ULA (seeded blocks, exact merge) on a fixed set of chains split over ``ranks`` ranks."""
    _need(device, ranks)
    chains, steps = SIZES[profile.name]["langevin"][device.type]
    work = Workload("distributed.langevin", "chain-steps/s", chains * steps, variant=f"ranks={ranks}",
                    size={"chains": chains, "steps": steps, "block_size": BLOCK, "ranks": ranks, "dtype": "float64"},
                    baseline="distributed.langevin[ranks=1]")
    _scaling(run, device, ranks, work, "langevin", [chains, steps, BLOCK], profile.rounds, profile.warmup_rounds)
    _record_efficiency(benchmark, ("langevin", device.type), ranks, 1.0,
                       "strong scaling: throughput(W) / (W * throughput(1)) on the same chains")


@pytest.mark.parametrize("ranks", RANKS, ids=lambda r: f"ranks={r}")
def test_gan_scaling(run: Any, benchmark: Any, device: torch.device, profile: Profile, ranks: int) -> None:
    """DDP G+D steps, batch 64 per rank (effective 64·W), preloaded offline digits."""
    _need(device, ranks)
    steps, batch = SIZES[profile.name]["gan"]
    work = Workload("distributed.gan", "it/s", steps, variant=f"ranks={ranks}",
                    size={"per_rank_batch": batch, "effective_batch": batch * ranks, "steps_per_call": steps, "ranks": ranks},
                    baseline="distributed.gan[ranks=1]")
    _scaling(run, device, ranks, work, "gan", [steps, batch], profile.rounds, profile.warmup_rounds)
    thr = benchmark.extra_info.get("throughput")
    if thr is not None:
        benchmark.extra_info["images_per_s"] = thr * batch * ranks
    # Weak scaling: W ranks do W times the images per step, so E = it/s(W) / it/s(1).
    _record_efficiency(benchmark, ("gan", device.type), ranks, 1.0 / ranks,
                       "weak scaling (batch 64 per rank): images/s(W) / (W * images/s(1)) = it/s(W) / it/s(1)")
