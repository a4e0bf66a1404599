"""Planning-call latency of genbench.testing.power (closed form or cached: <= 10 ms a call).

"cold" clears every planning cache before each round (the first call for new arguments, including
the fixed-seed Wishart draws of the covariance test); "warm" repeats a call already made.
"""

from __future__ import annotations

from typing import Any

import pytest

from genbench.testing import power as pw

CASES = [
    ("required_samples", "mean", 0.1),
    ("required_samples", "mean_hotelling", 0.1),
    ("required_samples", "cov", 0.2),
    ("required_samples", "c2st", 0.05),
    ("required_samples", "ks_projection", 0.05),
    ("detectable_effect", "mean", 2000),
    ("detectable_effect", "mean_hotelling", 2000),
    ("detectable_effect", "cov", 2000),
    ("detectable_effect", "c2st", 2000),
    ("detectable_effect", "ks_projection", 2000),
]


def _clear() -> None:
    pw.clear_caches()


def _call(kind: str, check: str, arg: float) -> Any:
    if kind == "required_samples":
        return pw.required_samples(check, arg, alpha=0.01, power=0.8, d=2)
    return pw.detectable_effect(check, int(arg), alpha=0.01, power=0.8, d=2)


@pytest.mark.parametrize("kind,check,arg", CASES, ids=[f"{k}-{c}" for k, c, _ in CASES])
def test_planning_cold(benchmark: Any, kind: str, check: str, arg: float) -> None:
    """First call for new arguments (all planning caches cleared before each round)."""
    benchmark.group = "testing.planning.cold"
    benchmark.pedantic(_call, args=(kind, check, arg), setup=_clear, rounds=15, iterations=1)


@pytest.mark.parametrize("kind,check,arg", CASES, ids=[f"{k}-{c}" for k, c, _ in CASES])
def test_planning_warm(benchmark: Any, kind: str, check: str, arg: float) -> None:
    """A repeated call (served from the cache)."""
    benchmark.group = "testing.planning.warm"
    _call(kind, check, arg)
    benchmark(_call, kind, check, arg)
