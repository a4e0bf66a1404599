"""Reading pytest-benchmark JSON into plain records (measurements only; no formatting here).

The JSON format is pytest-benchmark's own (``--benchmark-json``); genbench's benchmarks add
their identity and work accounting to each benchmark's ``extra_info`` (see
:mod:`genbench.bench.timing`), and the suite's conftest adds torch/CUDA facts to ``machine_info``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genbench.errors import DataError


@dataclass(frozen=True)
class BenchRecord:
    """One benchmark of one run: per-round times (seconds per call) and the work one call does."""

    fullname: str
    key: str  # workload[variant], device-free: what gates and tables refer to
    device: str  # "cpu", "cuda", or "-" for benchmarks that did not record one
    unit: str  # throughput unit, e.g. "chain-steps/s"
    work_per_call: float  # units of work done by one timed call
    rounds: int
    median_s: float
    q1_s: float
    q3_s: float
    times: tuple[float, ...] | None  # raw per-round seconds per call, when the JSON holds them
    baseline: str | None  # key of the assignment's workload this one is compared with
    extra: dict[str, Any] = field(default_factory=dict)
    timer: str = ""  # pytest-benchmark's timer, e.g. "time.perf_counter" or "time.process_time" (CPU-seconds)

    @property
    def label(self) -> str:
        """``key@device``: the selector used by gates."""
        return f"{self.key}@{self.device}"

    @property
    def throughput(self) -> float:
        """Median throughput (work per second)."""
        return self.work_per_call / self.median_s

    @property
    def throughput_q1(self) -> float:
        """Lower quartile of throughput (from the upper quartile of time)."""
        return self.work_per_call / self.q3_s

    @property
    def throughput_q3(self) -> float:
        """Upper quartile of throughput (from the lower quartile of time)."""
        return self.work_per_call / self.q1_s

    @property
    def relative_iqr(self) -> float:
        """Interquartile range of the per-round times over their median: the run's own noise."""
        return (self.q3_s - self.q1_s) / self.median_s

    def throughput_samples(self) -> np.ndarray | None:
        """Per-round throughputs, or None when the JSON did not keep raw samples."""
        if self.times is None:
            return None
        return self.work_per_call / np.asarray(self.times, dtype=float)


@dataclass(frozen=True)
class BenchRun:
    """A whole pytest-benchmark JSON file: machine facts plus its records."""

    path: str
    machine_info: dict[str, Any]
    records: tuple[BenchRecord, ...]
    datetime: str = ""
    genbench: dict[str, Any] = field(default_factory=dict)

    def find(self, key: str, device: str) -> BenchRecord | None:
        """The record with this workload key on this device, or None if it was not measured."""
        for rec in self.records:
            if rec.key == key and rec.device == device:
                return rec
        return None

    def by_fullname(self) -> dict[str, BenchRecord]:
        """Records indexed by pytest node id (what baseline comparison pairs on)."""
        return {rec.fullname: rec for rec in self.records}


def _positive(value: Any, what: str, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise DataError(f"{path}: {what} must be a positive number, got {value!r}")
    return float(value)


def _record(raw: Any, path: str) -> BenchRecord:
    if not isinstance(raw, dict) or "stats" not in raw or not isinstance(raw["stats"], dict):
        raise DataError(f"{path}: each entry of 'benchmarks' must be an object with 'stats'")
    name = str(raw.get("fullname") or raw.get("name") or "")
    if not name:
        raise DataError(f"{path}: a benchmark has neither 'fullname' nor 'name'")
    stats = raw["stats"]
    extra = raw.get("extra_info") or {}
    if not isinstance(extra, dict):
        raise DataError(f"{path}: {name}: 'extra_info' must be an object")
    where = f"{name}: stats"
    median = _positive(stats.get("median"), f"{where}.median", path)
    q1 = _positive(stats.get("q1", median), f"{where}.q1", path)
    q3 = _positive(stats.get("q3", median), f"{where}.q3", path)
    rounds = stats.get("rounds")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise DataError(f"{path}: {where}.rounds must be an integer >= 1, got {rounds!r}")
    data = stats.get("data")
    times: tuple[float, ...] | None = None
    if data is not None:
        if not isinstance(data, list) or not data:
            raise DataError(f"{path}: {where}.data must be a non-empty list of seconds")
        times = tuple(_positive(t, f"{where}.data[]", path) for t in data)
    # Benchmarks written without genbench's helper still load: one call = one unit of work.
    work = _positive(extra.get("work_per_call", 1.0), f"{name}: extra_info.work_per_call", path)
    return BenchRecord(
        fullname=name,
        key=str(extra.get("key") or raw.get("name") or name),
        device=str(extra.get("device") or "-"),
        unit=str(extra.get("unit") or "calls/s"),
        work_per_call=work,
        rounds=rounds,
        median_s=median,
        q1_s=q1,
        q3_s=q3,
        times=times,
        baseline=extra.get("baseline") or None,
        extra=dict(extra),
        timer=str((raw.get("options") or {}).get("timer") or ""),
    )


def _companion(rec: BenchRecord, path: str) -> BenchRecord | None:
    """The record timed interleaved with ``rec``, round by round (extra_info["companion"]; timing.measure), if any."""
    comp = rec.extra.get("companion")
    if comp is None:
        return None
    where = f"{rec.fullname}: extra_info.companion"
    if not isinstance(comp, dict) or not comp.get("key") or not isinstance(comp.get("times"), list) or not comp["times"]:
        raise DataError(f"{path}: {where} must be an object with a 'key' and a non-empty 'times' list of seconds")
    times = tuple(_positive(t, f"{where}.times[]", path) for t in comp["times"])
    # Linear-interpolation quartiles (pytest-benchmark's own differ slightly; gates use the raw times).
    q1, median, q3 = (float(q) for q in np.quantile(times, [0.25, 0.5, 0.75]))
    return BenchRecord(
        fullname=f"{rec.fullname}::companion",
        key=str(comp["key"]),
        device=rec.device,
        unit=str(comp.get("unit") or rec.unit),
        work_per_call=_positive(comp.get("work_per_call", 1.0), f"{where}.work_per_call", path),
        rounds=len(times),
        median_s=median,
        q1_s=q1,
        q3_s=q3,
        times=times,
        baseline=comp.get("baseline") or None,
        extra={k: v for k, v in comp.items() if k != "times"} | {"device": rec.device, "companion_of": rec.key},
        timer=rec.timer,
    )


def load_run(path: str | os.PathLike[str]) -> BenchRun:
    """Load a pytest-benchmark JSON file; DataError (one line) if it is missing or malformed."""
    p = Path(path)
    shown = os.fspath(p)
    if not p.is_file():
        raise DataError(f"benchmark JSON {shown!r} does not exist or is not a file")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"benchmark JSON {shown!r} is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"benchmark JSON {shown!r} is malformed: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise DataError(f"benchmark JSON {shown!r} has no 'benchmarks' list (is it pytest-benchmark output?)")
    machine = doc.get("machine_info") or {}
    if not isinstance(machine, dict):
        raise DataError(f"benchmark JSON {shown!r}: 'machine_info' must be an object")
    main = [_record(raw, shown) for raw in doc["benchmarks"]]
    records = tuple(r for rec in main for r in (rec, _companion(rec, shown)) if r is not None)
    gb = doc.get("genbench") or {}
    return BenchRun(
        path=shown,
        machine_info=machine,
        records=records,
        datetime=str(doc.get("datetime") or ""),
        genbench=gb if isinstance(gb, dict) else {},
    )
