"""Typed results of the calibration study: trials, rate rows, the family verdict, and the study itself.

Every class is a frozen dataclass with ``to_dict()`` (the plain-JSON form written to
``calibration.json``); ``CalibrationStudy.from_dict`` reads that file back, so the report and any
other reader use attributes, never string keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from genbench.calibration.registry import Profile, Scenario

OUTCOMES = ("passed", "rejected", "diverged", "error")


@dataclass(frozen=True)
class Trial:
    """One run of one check on one input with one seed.

    ``outcome`` is "passed" (H0 kept), "rejected" (H0 rejected at alpha: the check's alarm),
    "diverged" (the sampler's divergence guard stopped the run before the check saw it) or "error"
    (the check refused the input, e.g. a singular sample covariance). Only "rejected" is the check's
    own detection; the other two are counted apart.
    """

    check: str
    mutant: str | None
    seed: int
    outcome: str
    p_value: float | None = None
    statistic: float | None = None
    note: str = ""

    @property
    def tested(self) -> bool:
        """True when the check ran to a verdict (passed or rejected)."""
        return self.outcome in ("passed", "rejected")


@dataclass(frozen=True)
class RateRow:
    """One check on one input over its seeds: outcome counts, the rejection rate and the row's test.

    ``rate`` is rejections / tested runs (runs stopped by the divergence guard or refused by the
    check are not tested). ``p_value`` is the exact one-sided binomial p-value of the row's H0 (see
    the subclasses), ``row_level`` the Holm level at its rank in the study's family; ``flagged``
    means Holm rejected it at the family level.
    ``smoke`` marks rows with too few seeds to calibrate (see ``genbench.calibration.summary``).
    """

    n: int
    passed: int
    rejected: int
    diverged: int
    errored: int
    ci_low: float | None
    ci_high: float | None
    notes: tuple[str, ...]
    p_value: float | None
    row_level: float | None
    flagged: bool
    verdict: str
    smoke: bool

    @property
    def tested(self) -> int:
        """Runs that reached the check's verdict."""
        return self.passed + self.rejected

    @property
    def rate(self) -> float | None:
        """Rejections per tested run (None when no run was tested)."""
        return self.rejected / self.tested if self.tested else None

    def _common(self) -> dict[str, Any]:
        return {
            "n": self.n, "tested": self.tested, "alarms": self.rejected, "rate": self.rate,
            "ci_low": self.ci_low, "ci_high": self.ci_high, "diverged": self.diverged, "errored": self.errored,
            "outcomes": {"passed": self.passed, "rejected": self.rejected, "diverged": self.diverged,
                         "error": self.errored},
            "notes": list(self.notes), "p_value": self.p_value, "row_level": self.row_level, "flagged": self.flagged, "verdict": self.verdict, "smoke": self.smoke,
        }

    @staticmethod
    def _common_from(d: Mapping[str, Any]) -> dict[str, Any]:
        out = d.get("outcomes") or {}
        passed = out.get("passed", d["n"] - d["alarms"])
        return {
            "n": d["n"], "passed": passed, "rejected": out.get("rejected", d["alarms"]),
            "diverged": out.get("diverged", 0), "errored": out.get("error", 0),
            "ci_low": d.get("ci_low"), "ci_high": d.get("ci_high"), "notes": tuple(d.get("notes") or ()),
            "p_value": d.get("p_value"), "row_level": d.get("row_level"),
            "flagged": bool(d.get("flagged", False)), "verdict": str(d.get("verdict", "")),
            "smoke": bool(d.get("smoke", False)),
        }


@dataclass(frozen=True)
class FalseAlarmRow(RateRow):
    """The check on its correct input: H0 "false-alarm rate <= alpha" (exact binomial, upper tail).

    ``power_at_2alpha``: the probability that this row is flagged when the true rate is 2 alpha
    (at Holm's first-step level, a lower bound).
    """

    alpha: float
    power_at_2alpha: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {**self._common(), "alpha": self.alpha, "power_at_2alpha": self.power_at_2alpha}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], alpha: float) -> FalseAlarmRow:
        """Inverse of ``to_dict``."""
        return cls(**cls._common_from(d), alpha=d.get("alpha", alpha), power_at_2alpha=d.get("power_at_2alpha"))


@dataclass(frozen=True)
class DetectionRow(RateRow):
    """The check on one mutant; with a claim, H0 "detection rate >= claim" (exact binomial, lower tail)."""

    mutant: str
    claim: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the mutant is the key in the check's ``detections``)."""
        return {**self._common(), "claim": self.claim}

    @classmethod
    def from_dict(cls, mutant: str, d: Mapping[str, Any]) -> DetectionRow:
        """Inverse of ``to_dict``."""
        return cls(**cls._common_from(d), mutant=mutant, claim=d.get("claim"))


@dataclass(frozen=True)
class CheckRow:
    """One check's block of the table: what it tests, where, its seeds, false alarms and detections."""

    check: str
    domain: str
    function: str
    null_hypothesis: str
    scenario: Scenario
    why: str
    seeds: tuple[int, ...]
    false_alarm: FalseAlarmRow | None
    detections: tuple[DetectionRow, ...]

    def detection(self, mutant: str) -> DetectionRow | None:
        """The row of ``mutant``, or None if it was not run."""
        return next((d for d in self.detections if d.mutant == mutant), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (``detections`` keyed by mutant, in catalogue order)."""
        out: dict[str, Any] = {"check": self.check, "domain": self.domain, "function": self.function,
                               "null_hypothesis": self.null_hypothesis, "scenario": self.scenario.to_dict(),
                               "why": self.why}
        if self.false_alarm is not None:
            out["seeds"] = list(self.seeds)
            out["false_alarm"] = self.false_alarm.to_dict()
        out["detections"] = {d.mutant: d.to_dict() for d in self.detections}
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], alpha: float) -> CheckRow:
        """Inverse of ``to_dict``."""
        fa = d.get("false_alarm")
        return cls(check=d["check"], domain=d.get("domain", ""), function=d.get("function", ""),
                   null_hypothesis=d.get("null_hypothesis", ""), scenario=Scenario.from_dict(d.get("scenario") or {}),
                   why=d.get("why", ""), seeds=tuple(d.get("seeds") or ()),
                   false_alarm=None if fa is None else FalseAlarmRow.from_dict(fa, alpha),
                   detections=tuple(DetectionRow.from_dict(m, x) for m, x in (d.get("detections") or {}).items()))


@dataclass(frozen=True)
class CoverageRow:
    """One catalogue entry: the checks that flag it in at least half of their tested runs, and the best one.

    ``stopped_by_guard``: checks whose sampler's divergence guard stopped at least half of the runs
    on this mutant (the bug is caught, but not by the check).
    """

    mutant: str
    bug: str
    detected_by: tuple[str, ...]
    best_check: str | None
    best_rate: float | None
    stopped_by_guard: tuple[str, ...] = ()
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the mutant is the key in the study's ``coverage``)."""
        out: dict[str, Any] = {"bug": self.bug, "detected_by": list(self.detected_by), "best_check": self.best_check,
                               "best_rate": self.best_rate, "stopped_by_guard": list(self.stopped_by_guard)}
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def from_dict(cls, mutant: str, d: Mapping[str, Any]) -> CoverageRow:
        """Inverse of ``to_dict``."""
        return cls(mutant=mutant, bug=d.get("bug", ""), detected_by=tuple(d.get("detected_by") or ()),
                   best_check=d.get("best_check"), best_rate=d.get("best_rate"),
                   stopped_by_guard=tuple(d.get("stopped_by_guard") or ()), note=d.get("note", ""))


@dataclass(frozen=True)
class FamilyVerdict:
    """The study's verdict: Holm's step-down procedure over every row test, at family-wise level ``level``.

    ``tests``: rows in the family (false-alarm rows and claimed detections that ran);
    ``flagged``: the rows Holm rejects, as "check: input"; ``planned_seeds``: the seeds a correct
    input needs to flag a false-alarm rate of ``2 alpha`` with power ``planned_power`` at this family's
    first Holm level (exact binomial); rows with fewer seeds are smoke checks.
    """

    level: float
    tests: int
    flagged: tuple[str, ...]
    planned_seeds: int
    planned_power: float
    method: str = "holm"

    @property
    def passed(self) -> bool:
        """True when Holm flags no row."""
        return not self.flagged

    @property
    def first_level(self) -> float:
        """Holm's smallest per-row level (the Bonferroni level): level / tests."""
        return self.level / max(self.tests, 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"method": self.method, "level": self.level, "tests": self.tests, "first_level": self.first_level,
                "flagged": list(self.flagged), "passed": self.passed, "planned_seeds": self.planned_seeds,
                "planned_power": self.planned_power}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FamilyVerdict:
        """Inverse of ``to_dict``."""
        return cls(level=d["level"], tests=d["tests"], flagged=tuple(d.get("flagged") or ()),
                   planned_seeds=d.get("planned_seeds", 0), planned_power=d.get("planned_power", 0.8),
                   method=d.get("method", "holm"))


@dataclass(frozen=True)
class Provenance:
    """What decides whether a stored study may stand in for a new one: same code, profile, seeds and checks.

    ``code_version`` hashes the source of every genbench module the study imports
    (``genbench.calibration.study.code_version``); ``seeds`` is the requested count (None: the profile's).
    """

    genbench_version: str
    code_version: str
    profile: str
    seed: int
    seeds: int | None
    checks: tuple[str, ...]
    family_level: float
    data: str

    def matches(self, other: Provenance) -> bool:
        """True when ``other`` describes the same study made by the same code."""
        return self == other

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"genbench_version": self.genbench_version, "code_version": self.code_version, "profile": self.profile,
                "seed": self.seed, "seeds": self.seeds, "checks": list(self.checks),
                "family_level": self.family_level, "data": self.data}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Provenance:
        """Inverse of ``to_dict``."""
        return cls(genbench_version=d["genbench_version"], code_version=d["code_version"], profile=d["profile"],
                   seed=d["seed"], seeds=d.get("seeds"), checks=tuple(d["checks"]), family_level=d["family_level"],
                   data=d["data"])


@dataclass(frozen=True)
class CalibrationStudy:
    """A whole study: its profile and seeds, one row block per check, coverage, and the family verdict.

    ``problems`` lists what fails the study (rows Holm flags, correct inputs that diverged or
    were refused, claims that could not be measured); empty means the verdict is PASS.
    """

    profile: Profile
    seed: int
    seed_rule: str
    elapsed_s: float
    trials: int
    confidence: float
    checks: tuple[CheckRow, ...]
    coverage: tuple[CoverageRow, ...]
    family: FamilyVerdict | None
    problems: tuple[str, ...]
    provenance: Provenance | None
    unavailable_checks: Mapping[str, str] = field(default_factory=dict)
    gan_data: str | None = None
    catalogue: Mapping[str, Any] = field(default_factory=dict)
    distributed: Mapping[str, Any] | None = None

    @property
    def alpha(self) -> float:
        """The α every check runs at."""
        return self.profile.alpha

    @property
    def passed(self) -> bool:
        """True when nothing fails the study."""
        return not self.problems

    @property
    def smoke(self) -> bool:
        """True when some check has too few seeds to calibrate (its rows are smoke checks)."""
        return any(r.false_alarm is not None and r.false_alarm.smoke for r in self.checks)

    @property
    def seeds_per_check(self) -> dict[str, int]:
        """Seeds on each check's correct input."""
        return {r.check: len(r.seeds) for r in self.checks}

    def check(self, name: str) -> CheckRow:
        """The row block of check ``name``."""
        for r in self.checks:
            if r.check == name:
                return r
        raise KeyError(name)

    def with_distributed(self, info: Mapping[str, Any]) -> CalibrationStudy:
        """This study with how it was spread over ranks recorded."""
        return replace(self, distributed=dict(info))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: the content of calibration.json."""
        out: dict[str, Any] = {
            "profile": self.profile.to_dict(), "alpha": self.alpha, "seed": self.seed,
            "seeds_per_check": self.seeds_per_check, "seed_rule": self.seed_rule, "elapsed_s": self.elapsed_s,
            "trials": self.trials, "confidence": self.confidence, "smoke": self.smoke,
            "family": None if self.family is None else self.family.to_dict(),
            "provenance": None if self.provenance is None else self.provenance.to_dict(),
            "checks": [r.to_dict() for r in self.checks],
            "coverage": {c.mutant: c.to_dict() for c in self.coverage},
            "unavailable_checks": dict(self.unavailable_checks), "gan_data": self.gan_data,
            "problems": list(self.problems), "catalogue": dict(self.catalogue),
        }
        if self.distributed is not None:
            out["distributed"] = dict(self.distributed)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CalibrationStudy:
        """Read a study back from its ``to_dict`` form (fields an older file lacks are left empty)."""
        profile = Profile.from_dict(d.get("profile") or {})
        alpha = d.get("alpha", profile.alpha)
        if alpha != profile.alpha:
            profile = replace(profile, alpha=alpha)
        return cls(
            profile=profile, seed=d.get("seed", 0), seed_rule=d.get("seed_rule", ""),
            elapsed_s=d.get("elapsed_s", 0.0), trials=d.get("trials", 0), confidence=d.get("confidence", 0.95),
            checks=tuple(CheckRow.from_dict(r, alpha) for r in d.get("checks") or ()),
            coverage=tuple(CoverageRow.from_dict(m, c) for m, c in (d.get("coverage") or {}).items()),
            family=FamilyVerdict.from_dict(d["family"]) if d.get("family") else None,
            problems=tuple(d.get("problems") or ()),
            provenance=Provenance.from_dict(d["provenance"]) if d.get("provenance") else None,
            unavailable_checks=dict(d.get("unavailable_checks") or {}), gan_data=d.get("gan_data"),
            catalogue=dict(d.get("catalogue") or {}), distributed=d.get("distributed"),
        )
