"""The conformance report: one row per target x check, the family-wise verdict, and its presentation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from genbench.errors import CheckFailed, GenbenchError
from genbench.stats import holm  # noqa: F401 - re-exported: Holm's procedure lives in genbench.stats

__all__ = ["ConformanceRow", "ConformanceReport", "AdapterError", "holm"]  # holm: from genbench.stats


class AdapterError(GenbenchError):
    """The sampler under test could not be run: the factory raised, or ``run`` raised or returned bad output."""


@dataclass(frozen=True)
class ConformanceRow:
    """One statistical test of the battery on one target.

    ``alpha`` is the level after the family-wise correction (Holm's step-down level for this row's
    rank); ``passed`` is False when the correction rejects the row's H0. ``detectable_effect`` is the
    smallest effect (``effect_unit``) the row detects with probability ``power`` at its ``n``, at the
    planning level alpha/m.
    """

    target: str
    check: str
    test: str
    step_size: float
    steps: int
    start: str
    null_hypothesis: str
    statistic: float
    p_value: float
    alpha: float
    n: int
    detectable_effect: float | None
    effect_unit: str
    power: float | None
    passed: bool
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``target/check/test`` identifying the row."""
        return f"{self.target}/{self.check}/{self.test}"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        d = asdict(self)
        d["label"] = self.label
        return d


@dataclass(frozen=True)
class ConformanceReport:
    """The battery's verdict on one sampler (see ``genbench.conformance.check_sampler``)."""

    sampler: str
    kind: str
    alpha: float
    power: float
    effect: dict[str, float]
    seed: int
    correction: str
    targets: list[dict[str, Any]]
    rows: list[ConformanceRow]
    timing: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no row's null hypothesis is rejected at the family-wise level ``alpha``."""
        return all(r.passed for r in self.rows)

    @property
    def failed_rows(self) -> list[ConformanceRow]:
        """The rows whose H0 the family-wise correction rejects."""
        return [r for r in self.rows if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (written by ``genbench check-sampler`` as conformance.json)."""
        from genbench._io import to_jsonable

        return to_jsonable({
            "sampler": self.sampler,
            "kind": self.kind,
            "passed": self.passed,
            "alpha": self.alpha,
            "family_wise": self.correction,
            "power": self.power,
            "effect": dict(self.effect),
            "seed": self.seed,
            "targets": self.targets,
            "rows": [r.to_dict() for r in self.rows],
            "timing": dict(self.timing),
            "notes": list(self.notes),
        })

    def summary(self) -> str:
        """One line: verdict, rejected rows, level and correction."""
        verdict = "PASSED" if self.passed else f"FAILED ({len(self.failed_rows)} of {len(self.rows)} rows rejected)"
        return (
            f"{self.sampler} ({self.kind}): {verdict}; family-wise alpha {self.alpha:g}, "
            f"{len(self.rows)} tests on {len(self.targets)} targets, seed {self.seed}"
        )

    def table(self) -> str:
        """The rows as a fixed-width text table, then the summary line."""
        head = ("target", "check", "test", "step", "T", "n", "statistic", "p-value", "alpha*", "detects", "verdict")
        lines = []
        for r in self.rows:
            lines.append((
                r.target, r.check, r.test, f"{r.step_size:.3g}", str(r.steps), str(r.n), _num(r.statistic),
                f"{r.p_value:.3g}", f"{r.alpha:.2g}",
                "-" if r.detectable_effect is None else f"{r.detectable_effect:.3g}",
                "pass" if r.passed else "REJECT",
            ))
        widths = [max(len(h), *(len(row[i]) for row in lines)) if lines else len(h) for i, h in enumerate(head)]
        fmt = "  ".join(f"{{:{'<' if i < 3 else '>'}{w}}}" for i, w in enumerate(widths))
        out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
        out += [fmt.format(*row) for row in lines]
        out.append(f"alpha*: the test's level after the family-wise correction ({self.correction}); "
                   f"detects: effect detected with power {self.power:g} (units in conformance.json)")
        out.append(self.summary())
        return "\n".join(out)

    def message(self) -> str:
        """The failure message: summary plus one line per rejected row."""
        lines = [self.summary()]
        for r in self.failed_rows:
            lines.append(
                f"  {r.label} (step {r.step_size:.3g}, T={r.steps}, n={r.n}): H0 [{r.null_hypothesis}] rejected, "
                f"p={r.p_value:.3g} <= alpha*={r.alpha:.3g}"
            )
        return "\n".join(lines)

    def raise_if_failed(self) -> ConformanceReport:
        """Raise CheckFailed naming every rejected row; return self when all pass.

        Inside a pytest test, genbench's plugin counts the battery's family-wise alpha as one
        must-not-reject assertion.
        """
        _declare_to_pytest(self.alpha)
        if not self.passed:
            raise CheckFailed(self.message())
        return self


def _num(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.4g}"


def _declare_to_pytest(alpha: float) -> None:
    """Count ``alpha`` in genbench's pytest plugin when called inside a running test (no-op elsewhere)."""
    import sys

    plugin = sys.modules.get("genbench.pytest_plugin")
    declare = getattr(plugin, "declare_current", None) if plugin is not None else None
    if declare is not None:
        declare(alpha=alpha)
