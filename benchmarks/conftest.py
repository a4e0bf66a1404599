"""pytest-benchmark suite configuration: profile and device options, machine facts, the `run` fixture.

Run it with ``genbench bench`` or directly:
``python -m pytest benchmarks --genbench-profile quick --benchmark-json out.json``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import pytest
import torch

from genbench.bench.profiles import PROFILES, Profile, get_profile
from genbench.bench.timing import Workload, measure

DEVICES = ("cpu", "cuda")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("genbench", "genbench benchmark suite")
    group.addoption(
        "--genbench-profile",
        choices=tuple(PROFILES),
        default=os.environ.get("GENBENCH_BENCH_PROFILE", "quick"),
        help="problem sizes and rounds: quick (<= 5 min on 2 cores) or full (default: $GENBENCH_BENCH_PROFILE or quick)",
    )
    group.addoption(
        "--genbench-device",
        choices=("all", *DEVICES),
        default="all",
        help="which device variants to run (default all; CUDA variants skip with a reason when absent)",
    )
    group.addoption(
        "--genbench-threads",
        type=int,
        default=int(os.environ.get("GENBENCH_BENCH_THREADS", "0")),
        help="torch CPU threads (default 0: torch's default, one per core). On an oversubscribed shared "
        "runner, 1 avoids OpenMP threads waiting on descheduled peers",
    )


def pytest_configure(config: pytest.Config) -> None:
    # torch and jax (the peers benchmark) share a GPU: by default jax takes 75% of its memory when its
    # GPU backend starts, and torch's CUDA workloads would then run out of it.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    threads = config.getoption("--genbench-threads")
    if threads < 0:
        raise pytest.UsageError(f"--genbench-threads must be >= 0 (0 = torch default), got {threads}")
    if threads:
        torch.set_num_threads(threads)
        # jax (the peers benchmark) sizes its CPU pool at import: give it the same number of threads.
        if "jax" not in sys.modules:
            eigen = "false" if threads == 1 else "true"
            flags = f"--xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={threads}"
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()
        try:  # NumPy/SciPy's BLAS pool too (FD, KID, the fast path); threadpoolctl comes with scikit-learn
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=threads)
        except ImportError:  # the runner also sets OMP/OPENBLAS/MKL_NUM_THREADS before start-up
            pass


def pytest_report_header(config: pytest.Config) -> str:
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"genbench profile: {config.getoption('--genbench-profile')}; devices: {config.getoption('--genbench-device')}; "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); CUDA: {cuda}"
    )


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Add the facts a baseline comparison must match: torch version, usable cores, CUDA devices."""
    machine_info["genbench"] = {
        "torch": torch.__version__,
        "cpu_count": _cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else [],
        "cuda_runtime": torch.version.cuda,
    }


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config._genbench_load_start = _loadavg()  # type: ignore[attr-defined]


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not available on this platform
        return None


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    # The load average says whether other work shared the cores while the suite ran.
    output_json["genbench"] = {
        "schema": 1,
        "profile": config.getoption("--genbench-profile"),
        "torch_threads": torch.get_num_threads(),
        "loadavg_start": getattr(config, "_genbench_load_start", None),
        "loadavg_end": _loadavg(),
    }


@pytest.fixture(scope="session")
def profile(pytestconfig: pytest.Config) -> Profile:
    """The selected benchmark profile."""
    return get_profile(pytestconfig.getoption("--genbench-profile"))


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Each device in turn; CUDA skips with a reason when absent or deselected."""
    wanted = request.config.getoption("--genbench-device")
    if wanted not in ("all", request.param):
        pytest.skip(f"--genbench-device={wanted} excludes {request.param}")
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA variant: no CUDA device on this machine")
    return torch.device(request.param)


@pytest.fixture
def cuda_device(request: pytest.FixtureRequest) -> torch.device:
    """The CUDA device for CUDA-only workloads (CUDA graphs, torch.compile reduce-overhead)."""
    if request.config.getoption("--genbench-device") == "cpu":
        pytest.skip("--genbench-device=cpu excludes CUDA-only workloads")
    if not torch.cuda.is_available():
        pytest.skip("CUDA-only workload: no CUDA device on this machine")
    return torch.device("cuda")


@pytest.fixture
def run(benchmark: Any, profile: Profile) -> Callable[..., Any]:
    """``run(fn, workload, device, iterations=1, rounds=None, warmup_rounds=None, setup=None, extra=None, companion=None)``."""

    def _run(
        fn: Callable[[], Any],
        workload: Workload,
        device: torch.device | str,
        *,
        iterations: int = 1,
        rounds: int | None = None,
        warmup_rounds: int | None = None,
        setup: Callable[[], Any] | None = None,
        extra: dict[str, Any] | None = None,
        companion: tuple[Workload, Callable[[], Any]] | None = None,
    ) -> Any:
        return measure(
            benchmark,
            fn,
            workload,
            device=device,
            rounds=rounds or profile.rounds,
            warmup_rounds=profile.warmup_rounds if warmup_rounds is None else warmup_rounds,
            iterations=iterations,
            profile=profile.name,
            setup=setup,
            extra=extra,
            companion=companion,
        )

    return _run
