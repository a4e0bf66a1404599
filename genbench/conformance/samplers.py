"""The conformance verdicts on known samplers: genbench's own ULA and MALA, and BlackJAX's when installed.

``sampler_verdicts()`` returns typed rows (data only) for a report's "Samplers" section; the full
per-test table of each stays in ``SamplerVerdict.report``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from genbench.conformance import adapters
from genbench.conformance.battery import check_sampler
from genbench.conformance.result import ConformanceReport

__all__ = ["KnownSampler", "SamplerVerdict", "known_samplers", "sampler_verdicts"]


@dataclass(frozen=True)
class KnownSampler:
    """A sampler the kit knows how to drive: its name, library, kind and adapter factory."""

    name: str
    library: str
    kind: str
    factory: Callable[..., Any]
    adapter: str


@dataclass(frozen=True)
class SamplerVerdict:
    """One sampler's battery verdict, summarised for a table row."""

    name: str
    library: str
    version: str
    kind: str
    adapter: str
    passed: bool
    tests: int
    rejected: int
    smallest_p: float
    targets: list[str]
    seconds: float
    report: ConformanceReport

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the full report under ``report``)."""
        return {
            "name": self.name, "library": self.library, "version": self.version, "kind": self.kind,
            "adapter": self.adapter, "passed": self.passed, "tests": self.tests, "rejected": self.rejected,
            "smallest_p": self.smallest_p, "targets": self.targets, "seconds": self.seconds,
            "report": self.report.to_dict(),
        }


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def known_samplers(*, peers: bool | None = None) -> list[KnownSampler]:
    """genbench's ULA and MALA, plus BlackJAX's MALA and SGLD when ``peers`` (default: when installed)."""
    out = [
        KnownSampler("ULA", "genbench", "ula", adapters.genbench_ula, "genbench.conformance.adapters:genbench_ula"),
        KnownSampler("MALA", "genbench", "exact", adapters.genbench_mala,
                     "genbench.conformance.adapters:genbench_mala"),
    ]
    if peers is None:
        peers = adapters.peers_available()
    if peers:
        out += [
            KnownSampler("SGLD (full-batch gradient = ULA)", "blackjax", "ula", adapters.blackjax_sgld,
                         "genbench.conformance.adapters:blackjax_sgld"),
            KnownSampler("MALA", "blackjax", "exact", adapters.blackjax_mala,
                         "genbench.conformance.adapters:blackjax_mala"),
        ]
    return out


def sampler_verdicts(
    samplers: Iterable[KnownSampler] | None = None,
    *,
    targets: str | Iterable[Any] = "default",
    alpha: float = 0.01,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[SamplerVerdict]:
    """Run the battery on each known sampler (default: ``known_samplers()``) and return one row each."""
    rows = []
    for s in known_samplers() if samplers is None else samplers:
        t0 = time.perf_counter()
        rep = check_sampler(s.factory, s.kind, targets=targets, alpha=alpha, seed=seed, progress=progress)
        rows.append(SamplerVerdict(
            name=s.name,
            library=s.library,
            version=_version(s.library),
            kind=s.kind,
            adapter=s.adapter,
            passed=rep.passed,
            tests=len(rep.rows),
            rejected=len(rep.failed_rows),
            smallest_p=min(r.p_value for r in rep.rows),
            targets=[t["name"] for t in rep.targets],
            seconds=time.perf_counter() - t0,
            report=rep,
        ))
    return rows
