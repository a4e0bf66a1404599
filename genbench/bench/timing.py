"""Timing helpers for the pytest-benchmark suite: CUDA-synchronised calls and work accounting.

Correct by construction on CUDA: every call handed to the timer ends with a device
synchronisation, and so does every setup, so the timer starts on an idle device and stops only
when the call's kernels have finished. One-off costs (compilation, CUDA-graph capture) are timed
separately with :func:`time_once` and stored apart from the per-step rounds.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from genbench._runtime import device_name, synchronize
from genbench._validate import positive_int

#: extra_info schema version written by :func:`measure`.
SCHEMA = 1


@dataclass(frozen=True)
class Workload:
    """What a benchmark measures: identity, units of work done by one timed call, and its unit."""

    workload: str  # e.g. "langevin.ula"
    unit: str  # throughput unit, e.g. "chain-steps/s", "images/s", "it/s"
    work_per_call: float  # units of work (chain-steps, images, iterations) done by one call
    variant: str = ""  # e.g. "chains=1e5"
    size: dict[str, Any] = field(default_factory=dict)  # problem size, for the JSON and the table
    baseline: str | None = None  # key of the assignment's workload this one is compared with

    @property
    def key(self) -> str:
        """``workload[variant]``: the device-free name tables and gates use."""
        return f"{self.workload}[{self.variant}]" if self.variant else self.workload

    def record(self) -> dict[str, Any]:
        """The fields a benchmark's extra_info holds for this workload (genbench.bench.results reads them)."""
        return {"key": self.key, "workload": self.workload, "variant": self.variant, "unit": self.unit,
                "work_per_call": float(self.work_per_call), "size": dict(self.size), "baseline": self.baseline}


def count_label(n: int) -> str:
    """Compact label for a problem size: 1000 -> "1e3", 100000 -> "1e5", 2500 -> "2500"."""
    n = int(n)
    if n >= 1000 and str(n).rstrip("0") == "1":
        return f"1e{len(str(n)) - 1}"
    return str(n)


def synced(fn: Callable[[], Any], device: torch.device | str) -> Callable[[], Any]:
    """Wrap ``fn`` so that each call waits for the device to finish (no-op on CPU)."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return fn

    def call() -> Any:
        out = fn()
        synchronize(dev)
        return out

    return call


def time_once(fn: Callable[[], Any], device: torch.device | str) -> float:
    """Wall seconds of one call of ``fn`` on an idle device, including its device work."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def environment(device: torch.device | str) -> dict[str, Any]:
    """Device name, torch and Python versions: stored with every benchmark."""
    return {
        "device_name": device_name(device) if torch.device(device).type == "cuda" else cpu_name(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
    }


def measure(
    benchmark: Any,
    fn: Callable[[], Any],
    workload: Workload,
    *,
    device: torch.device | str,
    rounds: int,
    warmup_rounds: int,
    iterations: int = 1,
    profile: str = "",
    setup: Callable[[], Any] | None = None,
    extra: dict[str, Any] | None = None,
    companion: tuple[Workload, Callable[[], Any]] | None = None,
) -> Any:
    """Time ``fn`` with pytest-benchmark's ``pedantic`` and record throughput and context in extra_info.

    ``warmup_rounds`` untimed rounds run first (explicit, never pytest-benchmark's calibration).
    ``companion`` (workload, fn): a call of that fn, timed with the same timer (after an untimed
    one), just before each round of ``fn``; stored in ``extra_info["companion"]`` and loaded as a
    record of its own (genbench.bench.results). A ratio gate between the two compares rounds made
    side by side, which the machine's drift slows alike, where two benchmarks run one after the
    other can differ by more than the effect gated. Returns what the last call of ``fn`` returned.
    """
    rounds = positive_int("rounds", rounds)
    warmup_rounds = positive_int("warmup_rounds", warmup_rounds, minimum=0)
    iterations = positive_int("iterations", iterations)
    dev = torch.device(device)
    info = benchmark.extra_info
    info.update(
        schema=SCHEMA,
        **workload.record(),
        device=dev.type,
        profile=profile,
        warmup_rounds=warmup_rounds,
        **environment(dev),
    )
    if extra:
        info.update(extra)
    if companion is not None:
        setup = _with_companion(benchmark, info, companion, dev, iterations, setup)
    result = benchmark.pedantic(
        synced(fn, dev),
        setup=None if setup is None else synced(setup, dev),
        rounds=rounds,
        warmup_rounds=warmup_rounds,
        iterations=iterations,
    )
    if companion is not None:
        times = info["companion"]["times"]
        del times[: max(0, len(times) - rounds)]  # the warm-up rounds' calls
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is not None and stats.median > 0:  # None under --benchmark-disable
        info["throughput"] = workload.work_per_call / stats.median
        info["throughput_q1"] = workload.work_per_call / stats.q3
        info["throughput_q3"] = workload.work_per_call / stats.q1
    return result


def _with_companion(benchmark: Any, info: dict[str, Any], companion: tuple[Workload, Callable[[], Any]],
                    dev: torch.device, iterations: int, setup: Callable[[], Any] | None) -> Callable[[], Any]:
    """A setup that calls the companion's fn once, times ``iterations`` more calls, then runs ``setup``; times to extra_info."""
    work, fn = companion
    timer = getattr(benchmark, "_timer", time.perf_counter)  # pytest-benchmark's own (--timer cpu: CPU-seconds)
    times: list[float] = []
    info["companion"] = {**work.record(), "times": times}

    def run() -> None:
        # One untimed call first: the round's first call after the timer's bookkeeping ran up to 10%
        # slower here, which would favour whichever of the pair is timed second.
        fn()
        synchronize(dev)
        start = timer()
        for _ in range(iterations):
            fn()
        synchronize(dev)
        times.append((timer() - start) / iterations)
        if setup is not None:
            setup()

    return run
