"""The study's statistics: binomial rates, Holm's family verdict, seed planning, coverage and the table.

Each row of the study is a binomial experiment: K runs of one check on one input. Two kinds of
rows are *tested*, each by an exact one-sided binomial test:

* a false-alarm row (correct input): H0 "the check's false-alarm rate <= alpha", p-value
  P(Bin(n, alpha) >= k) for k rejections in n tested runs;
* a claimed detection row (a mutant the check claims to catch at rate c): H0 "detection rate >= c",
  p-value P(Bin(n, c) <= k).

The study's verdict applies Holm's step-down procedure to all of them at the family-wise level
(1% by default): the probability that a correct genbench (every check at most at its alpha, every
claim true) fails the study is at most that level, for any number of seeds and any first seed,
whatever the dependence between rows (the rows share seeds). Rows with too few seeds to see a
doubled false-alarm rate with power 0.8 are labelled smoke checks.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import scipy.stats

from genbench import stats
from genbench._validate import positive_int, probability
from genbench.testing.mutants import IMAGE_MUTANTS, KERNEL_MUTANTS
from genbench.calibration.registry import Check
from genbench.calibration.results import (
    CalibrationStudy,
    CheckRow,
    CoverageRow,
    DetectionRow,
    FalseAlarmRow,
    FamilyVerdict,
    Trial,
)
from genbench.errors import ParameterError

CONFIDENCE = 0.95  # of every Clopper–Pearson interval in the table (descriptive; the verdict is Holm's)
FAMILY_LEVEL = 0.01  # default family-wise error level of the study's verdict
PLANNED_RATIO = 2.0  # the full profile plans its correct-input seeds to see a false-alarm rate of 2 alpha ...
PLANNED_POWER = 0.8  # ... with this power


# ----- binomial building blocks ---------------------------------------------------------------


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval for a binomial proportion k/n."""
    ci = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def false_alarm_p_value(k: np.ndarray | int, n: np.ndarray | int, alpha: float) -> np.ndarray:
    """Exact one-sided p-value of H0 "rejection rate <= alpha" for k rejections in n runs: P(Bin(n, alpha) >= k)."""
    return np.asarray(scipy.stats.binom.sf(np.asarray(k) - 1, n, alpha), dtype=float)


def detection_p_value(k: np.ndarray | int, n: np.ndarray | int, claim: float) -> np.ndarray:
    """Exact one-sided p-value of H0 "detection rate >= claim" for k detections in n runs: P(Bin(n, claim) <= k)."""
    return np.asarray(scipy.stats.binom.cdf(k, n, claim), dtype=float)


def _critical_count(n: int, alpha: float, level: float) -> int:
    """Smallest k with P(Bin(n, alpha) >= k) <= level (n + 1 when none)."""
    sf = false_alarm_p_value(np.arange(n + 2), n, alpha)
    return int(np.argmax(sf <= level)) if bool((sf <= level).any()) else n + 1


def false_alarm_power(n: int, alpha: float, level: float, ratio: float = PLANNED_RATIO) -> float:
    """Probability that a false-alarm row of n runs is rejected at ``level`` when the true rate is ``ratio * alpha``."""
    positive_int("n", n)
    c = _critical_count(n, alpha, level)
    return float(false_alarm_p_value(c, n, min(1.0, ratio * alpha)))


@functools.lru_cache(maxsize=64)
def planned_false_alarm_seeds(alpha: float, level: float, *, ratio: float = PLANNED_RATIO,
                              power: float = PLANNED_POWER) -> int:
    """Seeds per correct input to flag a false-alarm rate of ``ratio * alpha`` with ``power`` at ``level`` (exact binomial).

    Exact binomial power is a saw-tooth in n: this is the n from which it stays >= ``power``
    (checked up to twice the answer), not merely the first n that reaches it.
    """
    probability("alpha", alpha)
    probability("level", level)
    probability("power", power)
    if not (1 < ratio and ratio * alpha < 1):
        raise ParameterError(f"ratio must be > 1 with ratio * alpha < 1; got ratio={ratio}, alpha={alpha}")
    n_max = 64
    while True:
        ok = np.array([false_alarm_power(n, alpha, level, ratio) >= power for n in range(1, n_max + 1)])
        below = np.flatnonzero(~ok)
        planned = int(below[-1]) + 2 if below.size else 1
        if 2 * planned <= n_max:
            return planned
        n_max *= 2


def null_family_error(rows: Sequence[tuple[int, float, str]], level: float) -> float:
    """Exact probability that the Holm verdict flags some row when every row sits exactly at its H0 boundary.

    ``rows``: (n, rate, side) with side "upper" (false-alarm row at rate alpha) or "lower" (claim
    row at its claimed rate), rows independent. Under this complete null Holm rejects something iff
    the smallest p-value is <= level / m, so the error is 1 - prod P(p_i > level / m); it is at most
    ``level`` (Bonferroni) under any dependence.
    """
    m = len(rows)
    keep = 1.0
    for n, rate, side in rows:
        ks = np.arange(n + 1)
        pmf = scipy.stats.binom.pmf(ks, n, rate)
        p = false_alarm_p_value(ks, n, rate) if side == "upper" else detection_p_value(ks, n, rate)
        keep *= 1.0 - float(pmf[p <= level / m].sum())
    return 1.0 - keep


def simulate_family(rows: Sequence[tuple[int, float, str]], rates: Sequence[float], level: float, reps: int,
                    seed: int) -> np.ndarray:
    """Rows flagged in ``reps`` simulated studies (reps, m): k ~ Bin(n, rate) per row, then the study's p-values and Holm.

    ``rows`` as in ``null_family_error``; ``rates`` the true rate of each row (its boundary for H0).
    """
    positive_int("reps", reps)
    rng = np.random.default_rng(seed)
    p = np.empty((reps, len(rows)))
    for j, ((n, boundary, side), rate) in enumerate(zip(rows, rates, strict=True)):
        ks = np.arange(n + 1)  # the p-value of every possible count, looked up per draw
        table = false_alarm_p_value(ks, n, boundary) if side == "upper" else detection_p_value(ks, n, boundary)
        p[:, j] = table[rng.binomial(n, rate, size=reps)]
    # Only studies whose smallest p-value reaches Holm's first level can flag anything: the
    # production procedure runs on those, the others flag nothing.
    flagged = np.zeros(p.shape, dtype=bool)
    for i in np.flatnonzero(p.min(axis=1) <= level / max(len(rows), 1)):
        flagged[i] = stats.holm(p[i].tolist(), level)[1]
    return flagged


# ----- verdict words (descriptive beside the family test) ---------------------------------------


def false_alarm_verdict(k: int, n: int, alpha: float, flagged: bool = False, confidence: float = CONFIDENCE) -> str:
    """'too many false alarms' when the family test flags the row; else where the interval lies against alpha."""
    if n == 0:
        return "not measured (no run reached the check)"
    if flagged:
        return "too many false alarms"
    lo, hi = clopper_pearson(k, n, confidence)
    if hi < alpha:
        return "conservative"
    if lo > alpha:
        return "above alpha, within the family level"
    return "consistent"


def detection_verdict(k: int, n: int, claim: float | None, flagged: bool = False,
                      confidence: float = CONFIDENCE) -> str:
    """Against a claim: 'BELOW CLAIM' when the family test flags it; without one, just the measurement."""
    if n == 0:
        return "not measured (no run reached the check)"
    lo, hi = clopper_pearson(k, n, confidence)
    if claim is None:
        if lo > 0.5:
            return "detected (no claim)"
        if hi < 0.5:
            return "blind or weak (no claim)"
        return "partial (no claim)"
    if flagged:
        return "BELOW CLAIM"
    return "as claimed" if hi >= claim else "below claim, within the family level"


# ----- from trials to the typed table -----------------------------------------------------------


def _tally(trials: list[Trial], confidence: float) -> dict[str, Any]:
    counts = {o: sum(t.outcome == o for t in trials) for o in ("passed", "rejected", "diverged", "error")}
    tested = counts["passed"] + counts["rejected"]
    lo, hi = clopper_pearson(counts["rejected"], tested, confidence) if tested else (None, None)
    return {"n": len(trials), "passed": counts["passed"], "rejected": counts["rejected"],
            "diverged": counts["diverged"], "errored": counts["error"], "ci_low": lo, "ci_high": hi,
            "notes": tuple(sorted({t.note for t in trials if t.note})[:3])}


def summarise(
    trials: Iterable[Trial],
    checks: Sequence[Check],
    *,
    alpha: float,
    family_level: float = FAMILY_LEVEL,
    confidence: float = CONFIDENCE,
) -> tuple[tuple[CheckRow, ...], FamilyVerdict, tuple[str, ...]]:
    """Group trials into typed per-check rows, apply Holm to the tested rows; return (rows, verdict, problems)."""
    by: dict[tuple[str, str | None], list[Trial]] = {}
    for t in trials:
        by.setdefault((t.check, t.mutant), []).append(t)
    present = [c for c in checks if any(key[0] == c.name for key in by)]
    tallies = {key: _tally(ts, confidence) for key, ts in by.items()}
    # The family: every false-alarm row and every claimed detection that reached the check.
    family: list[tuple[str, str | None]] = []
    p_values: list[float] = []
    for c in present:
        for m in (None, *c.mutants):
            tl = tallies.get((c.name, m))
            if tl is None or tl["passed"] + tl["rejected"] == 0 or (m is not None and m not in c.claims):
                continue
            tested = tl["passed"] + tl["rejected"]
            p = (false_alarm_p_value(tl["rejected"], tested, alpha) if m is None
                 else detection_p_value(tl["rejected"], tested, c.claims[m]))
            family.append((c.name, m))
            p_values.append(float(p))
    levels, rejected = stats.holm(p_values, family_level)
    tests = {key: (p_values[i], levels[i], rejected[i]) for i, key in enumerate(family)}
    first_level = family_level / max(len(family), 1)
    planned = planned_false_alarm_seeds(alpha, first_level)

    rows, problems = [], []
    for c in present:
        fa_row, smoke = None, False
        if (c.name, None) in tallies:
            tl = tallies[(c.name, None)]
            p, lvl, flag = tests.get((c.name, None), (None, None, False))
            tested = tl["passed"] + tl["rejected"]
            power2 = false_alarm_power(tested, alpha, first_level) if tested else 0.0
            smoke = power2 < PLANNED_POWER
            fa_row = FalseAlarmRow(**tl, p_value=p, row_level=lvl, flagged=flag,
                                   verdict=false_alarm_verdict(tl["rejected"], tested, alpha, flag, confidence),
                                   smoke=smoke, alpha=alpha, power_at_2alpha=power2)
            if flag:
                problems.append(f"{c.name}: {tl['rejected']}/{tested} false alarms at alpha {alpha:g} "
                                f"(p = {p:.2g} <= its Holm level {lvl:.2g}, family level {family_level:g})")
            if tl["diverged"] or tl["errored"]:
                problems.append(f"{c.name}: {tl['diverged']} diverged and {tl['errored']} refused of "
                                f"{tl['n']} runs on correct inputs")
        detections = []
        for m in c.mutants:
            if (c.name, m) not in tallies:
                continue
            tl = tallies[(c.name, m)]
            tested = tl["passed"] + tl["rejected"]
            claim = c.claims.get(m)
            p, lvl, flag = tests.get((c.name, m), (None, None, False))
            detections.append(DetectionRow(**tl, p_value=p, row_level=lvl, flagged=flag,
                                           verdict=detection_verdict(tl["rejected"], tested, claim, flag, confidence),
                                           smoke=smoke, mutant=m, claim=claim))
            if flag:
                problems.append(f"{c.name} detects {m} in {tl['rejected']}/{tested} runs, claim {claim:g} "
                                f"(p = {p:.2g} <= its Holm level {lvl:.2g}, family level {family_level:g})")
            elif claim is not None and tested == 0:
                problems.append(f"{c.name}: claim on {m} not measured ({tl['diverged']} diverged, "
                                f"{tl['errored']} refused of {tl['n']} runs)")
        seeds = tuple(sorted(t.seed for t in by.get((c.name, None), [])))
        rows.append(CheckRow(check=c.name, domain=c.domain, function=c.function, null_hypothesis=c.null_hypothesis,
                             scenario=c.scenario, why=c.why, seeds=seeds, false_alarm=fa_row,
                             detections=tuple(detections)))
    flagged = tuple(f"{c}: {'correct input' if m is None else m}" for (c, m) in family if tests[(c, m)][2])
    verdict = FamilyVerdict(level=family_level, tests=len(family), flagged=flagged, planned_seeds=planned,
                            planned_power=PLANNED_POWER)
    return tuple(rows), verdict, tuple(problems)


def coverage(rows: Sequence[CheckRow]) -> tuple[CoverageRow, ...]:
    """Per catalogue entry: the checks that flag it in at least half of the tested runs, and the best one."""
    out = []
    for m in [*KERNEL_MUTANTS, *IMAGE_MUTANTS]:
        runs = [(r.check, d) for r in rows if (d := r.detection(m.name)) is not None]
        tested = [(c, d) for c, d in runs if d.tested]
        guard = tuple(c for c, d in runs if d.diverged * 2 >= d.n)
        if not runs:
            out.append(CoverageRow(m.name, m.bug, (), None, None, note=(
                "not run in this study: the quick profile runs only claimed pairs, --check chooses checks, and "
                "checks without data are left out (the full profile measures every pair)")))
            continue
        best = max(tested, key=lambda cd: cd[1].rate or 0.0) if tested else None
        out.append(CoverageRow(m.name, m.bug, tuple(c for c, d in tested if (d.rate or 0.0) >= 0.5),
                               best[0] if best else None, best[1].rate if best else None, guard))
    return tuple(out)


# ----- the table --------------------------------------------------------------------------------


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def _line(label: str, r: FalseAlarmRow | DetectionRow, against: str) -> str:
    ci = f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]" if r.tested else "-"
    return (f"  {label:32s} {r.rejected:4d}/{r.tested:<4d} {_fmt(r.rate, '.3f'):>6s} {ci:16s} {r.diverged:4d} "
            f"{r.errored:4d}  {_fmt(r.p_value, '.2g'):>7s}  {_fmt(r.row_level, '.2g'):>8s}  {against}{r.verdict}")


def format_table(study: CalibrationStudy) -> str:
    """The study as a plain-text table: one block per check, false alarms first, then each mutant."""
    conf = int(round(study.confidence * 100))
    fam = study.family
    lines = [
        f"genbench calibrate: profile {study.profile.name}, alpha {study.alpha:g} per check, first seed {study.seed}, "
        f"{study.trials} trials in {study.elapsed_s:.1f} s, each run once (no retries)",
    ]
    if study.smoke:
        lines.append("SMOKE CHECK: too few seeds per correct input to calibrate the false-alarm rates (rows marked SMOKE)")
    if fam is not None:
        lines += [
            f"study verdict: Holm over {fam.tests} row tests at family-wise level {fam.level:g}, per-row levels "
            f"{fam.first_level:.2g} .. {fam.level:g} (exact one-sided binomial: false-alarm rate <= alpha; claimed "
            "detection rate >= claim)",
            f"a correct input needs about {fam.planned_seeds} seeds to flag a false-alarm rate of {PLANNED_RATIO:g} x "
            f"alpha with power {fam.planned_power:g} at level {fam.first_level:.2g}; rows with fewer are smoke checks",
        ]
    lines += [
        f"rate = rejections/runs tested, with exact {conf}% Clopper-Pearson intervals; runs stopped by the divergence "
        "guard (div) or refused by the check (err) are counted apart; p = the row's binomial p-value, level = its "
        "Holm level",
        "",
        f"  {'input':32s} {'rej/tested':9s} {'rate':>6s} {str(conf) + '% CI':16s} {'div':>4s} {'err':>4s}  {'p':>7s}  "
        f"{'level':>8s}  verdict",
        "",
    ]
    for row in study.checks:
        smoke = "  SMOKE" if row.false_alarm is not None and row.false_alarm.smoke else ""
        lines.append(f"{row.check}  [{row.function}]{smoke}")
        fa = row.false_alarm
        if fa is not None:
            lines.append(_line("correct input (false alarms)", fa, f"vs alpha {fa.alpha:g}: "))
        for d in row.detections:
            lines.append(_line(d.mutant, d, f"claim >= {d.claim:g}: " if d.claim is not None else ""))
        lines.append("")
    for name, why in study.unavailable_checks.items():
        lines.append(f"{name}: not run: {why}")
    if study.unavailable_checks:
        lines.append("")
    lines.append("coverage (checks flagging the mutant in at least half of the tested runs):")
    for cov in study.coverage:
        if cov.detected_by:
            by = ", ".join(cov.detected_by)
        elif cov.note:
            by = "not run in this study (quick: claimed pairs only; --check chosen; or its checks are unavailable)"
        elif cov.best_check is None:
            by = "never reached a check"
        else:
            by = f"NONE (best: {cov.best_check} at {cov.best_rate:.2f})"
        if cov.stopped_by_guard:
            by += f"; the divergence guard stops it under {', '.join(cov.stopped_by_guard)}"
        lines.append(f"  {cov.mutant:32s} {by}")
    if fam is not None:
        lines.append("")
        verdict = "PASS" if study.passed else "FAIL"
        lines.append(f"study verdict at family level {fam.level:g}: {verdict}"
                     + ("" if study.passed else f" ({len(study.problems)} problem(s), listed on stderr)"))
    return "\n".join(lines)
