"""Running the pytest-benchmark suite (``benchmarks/``) in a fresh interpreter and loading its JSON."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from genbench._io import atomic_path
from genbench._project import find_project_folder
from genbench._runtime import resolve_device
from genbench._validate import choice, positive_int
from genbench.bench.profiles import PROFILES
from genbench.bench.results import BenchRun, load_run
from genbench.errors import DataError, ParameterError

DEVICES = ("all", "cpu", "cuda")
#: How rounds are timed: wall-clock seconds, or CPU-seconds of the process (meaningful with one
#: thread: it does not count time spent waiting for a core, so it survives a shared machine).
TIMERS = {"wall": "time.perf_counter", "cpu": "time.process_time"}
#: The suite's folder name, looked up from the current folder (see genbench._project).
SUITE_FOLDER = "benchmarks"


def default_suite() -> Path:
    """The current project's ``benchmarks/`` (this folder or the nearest parent holding one)."""
    return find_project_folder(SUITE_FOLDER, "conftest.py", hint="pass --suite DIR")


@dataclass(frozen=True)
class SuiteOutcome:
    """The run's records and pytest's exit status (non-zero when a benchmark errored)."""

    run: BenchRun
    pytest_status: int
    command: tuple[str, ...]


def pytest_command(
    json_path: str | os.PathLike[str],
    *,
    profile: str = "quick",
    device: str = "all",
    keyword: str | None = None,
    suite: str | os.PathLike[str] = SUITE_FOLDER,
    quiet: bool = True,
    threads: int = 0,
    timer: str = "wall",
) -> list[str]:
    """The ``python -m pytest`` command line that runs the suite and writes pytest-benchmark JSON."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        os.fspath(suite),
        f"--benchmark-json={os.fspath(json_path)}",
        f"--genbench-profile={profile}",
        f"--genbench-device={device}",
        f"--genbench-threads={threads}",
        f"--benchmark-timer={TIMERS[choice('timer', timer, tuple(TIMERS))]}",
        "--benchmark-sort=fullname",
        "--benchmark-columns=median,iqr,rounds",
        "-p",
        "no:cacheprovider",
    ]
    if quiet:
        cmd.append("-q")
    if keyword:
        cmd += ["-k", keyword]
    return cmd


def run_suite(
    json_path: str | os.PathLike[str],
    *,
    profile: str = "quick",
    device: str = "all",
    keyword: str | None = None,
    suite: str | os.PathLike[str] | None = None,
    quiet: bool = True,
    threads: int = 0,
    timer: str = "wall",
) -> SuiteOutcome:
    """Run the benchmark suite with ``profile`` on ``device`` and return what it measured.

    The suite runs in a fresh interpreter (clean allocator, thread pools and CUDA context), its
    output streams to this terminal, and the JSON lands atomically at ``json_path``.
    """
    profile = choice("profile", profile, tuple(PROFILES))
    device = choice("device", device, DEVICES)
    threads = positive_int("threads", threads, minimum=0)
    timer = choice("timer", timer, tuple(TIMERS))
    if timer == "cpu" and threads != 1:
        raise ParameterError(f"timer='cpu' counts the CPU-seconds of all threads; use it with threads=1, got threads={threads}")
    if device == "cuda":
        resolve_device("cuda")  # DeviceError, one line, when CUDA is absent
    suite_path = default_suite() if suite is None else Path(suite)
    if not (suite_path / "conftest.py").is_file():
        raise DataError(f"benchmark suite {os.fspath(suite_path)!r} has no conftest.py (pass --suite DIR: a benchmarks/ folder)")
    target = Path(json_path)
    if target.exists() and target.is_dir():
        raise ParameterError(f"json={os.fspath(target)!r} is a folder; give a file path")
    with atomic_path(target) as tmp:
        cmd = pytest_command(tmp, profile=profile, device=device, keyword=keyword, suite=suite_path, quiet=quiet,
                             threads=threads, timer=timer)
        env = dict(os.environ)
        if threads:
            # BLAS/OpenMP pools size themselves at import: set them before the interpreter starts.
            env.update({k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
        status = subprocess.run(cmd, cwd=suite_path.parent, env=env, check=False).returncode
        if status == 5:
            raise DataError(f"no benchmark was selected (pytest collected nothing; keyword={keyword!r})")
        if status not in (0, 1) or tmp.stat().st_size == 0:
            raise DataError(f"the benchmark run did not finish (pytest exit status {status}); no JSON written")
        run = load_run(tmp)
    run = BenchRun(os.fspath(target), run.machine_info, run.records, run.datetime, run.genbench)
    return SuiteOutcome(run=run, pytest_status=status, command=tuple(cmd))
