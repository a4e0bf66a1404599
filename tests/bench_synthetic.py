"""Synthetic pytest-benchmark JSON for the gate tests: real ``pytest_benchmark.stats.Stats`` numbers,
seeded log-normal per-round times, genbench's extra_info and machine_info fields."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
from pytest_benchmark.stats import Stats

MACHINE: dict[str, Any] = {
    "node": "ci-runner-1",
    "machine": "x86_64",
    "system": "Linux",
    "python_implementation": "CPython",
    "python_version": "3.11.7",
    "cpu": {"brand_raw": "Intel(R) Xeon(R) Processor", "count": 2, "hz_actual": [2600000000, 0]},
    "genbench": {"torch": "2.14.1", "cpu_count": 2, "cuda_devices": []},
}


def machine(**changes: Any) -> dict[str, Any]:
    """MACHINE with nested changes, e.g. machine(cpu={"hz_actual": [2.1e9, 0]})."""
    m = copy.deepcopy(MACHINE)
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(m.get(k), dict):
            m[k].update(v)
        else:
            m[k] = v
    return m


def times(median: float, rounds: int, *, sigma: float, seed: int) -> list[float]:
    """``rounds`` seeded log-normal per-round times with the given median and log-spread."""
    rng = np.random.default_rng(seed)
    return list(median * np.exp(sigma * rng.standard_normal(rounds)))


def bench(
    key: str,
    device: str,
    work: float,
    data: list[float],
    *,
    unit: str = "chain-steps/s",
    baseline: str | None = None,
    keep_data: bool = True,
    fullname: str | None = None,
) -> dict[str, Any]:
    """One benchmark entry as pytest-benchmark writes it (stats from its own Stats class)."""
    s = Stats()
    for t in data:
        s.update(t)
    stats = s.as_dict()
    if keep_data:
        stats["data"] = list(data)
    stats["iterations"] = 1
    name = fullname or f"benchmarks/test_x.py::test_{key}[{device}]"
    return {
        "group": None,
        "name": name.split("::")[-1],
        "fullname": name,
        "params": {"device": device},
        "param": device,
        "extra_info": {
            "key": key,
            "device": device,
            "unit": unit,
            "work_per_call": work,
            "baseline": baseline,
        },
        "options": {},
        "stats": stats,
    }


def write(path: Path, benchmarks: list[dict[str, Any]], machine_info: dict[str, Any] | None = None) -> Path:
    """Write a pytest-benchmark JSON document."""
    doc = {
        "machine_info": machine_info or MACHINE,
        "commit_info": {},
        "benchmarks": benchmarks,
        "datetime": "2026-11-26T15:00:00",
        "version": "5.3.1",
        "genbench": {"schema": 1, "profile": "quick"},
    }
    path.write_text(json.dumps(doc))
    return path


def suite(
    *,
    seed: int,
    rounds: int = 9,
    sigma: float = 0.03,
    ula_speed: float = 1e8,
    ref_speed: float = 5e5,
    slow: dict[str, float] | None = None,
    keep_data: bool = True,
) -> list[dict[str, Any]]:
    """A small Langevin + GAN run: throughputs as given, ``slow`` multiplies chosen keys' times."""
    slow = slow or {}
    spec = [
        ("langevin.reference", 2_000, ref_speed, "langevin.reference", "chain-steps/s"),
        ("langevin.ula[chains=1e5]", 2_000_000, ula_speed, "langevin.reference", "chain-steps/s"),
        ("gan.step[dataloader]", 10, 80.0, "gan.step[dataloader]", "it/s"),
        ("gan.step[preloaded]", 10, 130.0, "gan.step[dataloader]", "it/s"),
    ]
    out = []
    for i, (key, work, speed, base, unit) in enumerate(spec):
        median = work / speed * slow.get(key, 1.0)
        data = times(median, rounds, sigma=sigma, seed=seed * 100 + i)
        out.append(bench(key, "cpu", work, data, unit=unit, baseline=base, keep_data=keep_data))
    return out
