"""Calibration section: false-alarm and detection rates of genbench's own checks, with the study's family verdict.

The study is reused from ``OUT/calibration/calibration.json`` only when it was made by the same
code (its ``code_version``), profile and seed that this report would run; otherwise it runs now.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbench.report import figures as F
from genbench.report.model import SectionResult, check, figure, rounded, section, table
from genbench.report.profiles import ReportProfile, get_profile

__all__ = ["ID", "TITLE", "CalibrationData", "reuse_problem", "run", "render", "stage"]

ID, TITLE = "calibration", "Calibration"


@dataclass(frozen=True)
class CalibrationData:
    """A calibration study (``CalibrationStudy``) and where it came from (ran now, reused, given)."""

    study: Any
    how: str


def reuse_problem(study: Any, *, profile: str, seed: int) -> str | None:
    """Why a stored study may not stand in for the one this report would run (None: it may)."""
    from genbench.calibration.registry import checks, get_profile as study_profile
    from genbench.calibration.study import code_version
    from genbench.calibration.summary import FAMILY_LEVEL

    p = study.provenance
    if p is None:
        return "it records no provenance (made by an older genbench)"
    wanted = tuple(c.name for c in checks() if c.name not in study_profile(profile).skip)
    problems = []
    if p.code_version != code_version():
        problems.append(f"made by other code ({p.code_version}, this code is {code_version()})")
    if p.profile != profile:
        problems.append(f"profile {p.profile}, not {profile}")
    if p.seed != seed:
        problems.append(f"seed {p.seed}, not {seed}")
    if p.seeds is not None:
        problems.append(f"{p.seeds} seeds per check instead of the profile's")
    if set(p.checks) != set(wanted):
        problems.append(f"{len(p.checks)} of the {len(wanted)} checks")
    if p.family_level != FAMILY_LEVEL:
        problems.append(f"family level {p.family_level:g}, not {FAMILY_LEVEL:g}")
    return "; ".join(problems) or None


def run(config: Any, profile: ReportProfile, work: Path) -> CalibrationData:
    """Read the given calibration.json, reuse OUT/calibration/calibration.json when current, else run the study."""
    from genbench.calibration.study import read_study, run_study, write_study

    prof, seed = profile.calibration_profile, config.seed
    command = f"genbench calibrate --profile {prof} --seed {seed}"
    if config.calibration_json:
        path = Path(config.calibration_json)
        study = read_study(path)
        why = reuse_problem(study, profile=prof, seed=seed)
        return CalibrationData(study, f"Read from the given {os.fspath(path)} (written {_mtime(path)})."
                               + (f" Note: it differs from what this report would run: {why}." if why else ""))
    stored = Path(config.out) / "calibration" / "calibration.json"
    why = f"no {os.fspath(stored)}"
    if stored.is_file():
        try:
            study = read_study(stored)
        except Exception as exc:  # an unreadable leftover is a reason to run the study, not to fail the report
            why = f"{os.fspath(stored)} is unreadable ({type(exc).__name__})"
        else:
            why = reuse_problem(study, profile=prof, seed=seed)
            if why is None:
                return CalibrationData(study, f"Reused {os.fspath(stored)} (written {_mtime(stored)}): made by this "
                                              f"code with profile {prof} and seed {seed}.")
            why = f"{os.fspath(stored)} was not reused: {why}"
    import torch

    threads = torch.get_num_threads()
    # One torch thread: the trials are small, and a second OpenMP thread mostly spin-waits (measured
    # 2 CPU-s with one thread against 69 CPU-s with two for one check on a busy 2-core machine).
    torch.set_num_threads(1)
    try:
        study = run_study(prof, seed=seed)
    finally:
        torch.set_num_threads(threads)
    write_study(study, work)
    return CalibrationData(study, f"Ran the study now ({why}): {command}; calibration.json in artifacts/{work.name}/."
                                  + (" The full study (at least 200 seeds per check) is `genbench calibrate "
                                     "--profile full`." if prof == "quick" else ""))


def _mtime(path: Path) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))


def render(data: CalibrationData) -> SectionResult:
    """The section: false alarms beside α, detection rates, per-row and family levels, coverage."""
    study = data.study
    s = section(ID, TITLE)
    fam = study.family
    s["paragraphs"].append(data.how)
    s["paragraphs"].append(
        f"Profile {study.profile.name}: each check run on correct inputs and on each injected bug; "
        f"{study.trials} trials in {rounded(study.elapsed_s)} s, each run once. "
        f"Seeds: {study.seed_rule or study.seed}. Rates are rejections / runs that reached the check, with exact "
        f"{study.confidence:.0%} Clopper-Pearson intervals; runs stopped by the divergence guard or refused by "
        "the check are counted apart.")
    if fam is not None:
        s["paragraphs"].append(
            f"Study verdict: Holm's procedure over {fam.tests} exact one-sided binomial tests (false-alarm rate ≤ α, "
            f"claimed detection rate ≥ claim) at family-wise level {fam.level:g}; each row's own level (column "
            f"'row level') runs from {fam.first_level:.2g} to {fam.level:g} by its rank. "
            + ("Verdict: PASS (no row flagged)." if fam.passed else f"Verdict: FAIL — flagged: {', '.join(fam.flagged)}."))
    if study.smoke:
        s["paragraphs"].append(
            "Smoke checks: with fewer than "
            f"{fam.planned_seeds if fam is not None else 'the planned'} seeds per correct input, a false-alarm "
            "rate of 2α is detected with power below 0.8, so the rows marked 'smoke check' show that each check "
            "runs and catches gross bugs, not that its false-alarm rate is calibrated (`genbench calibrate "
            "--profile full` plans enough seeds).")
    fa_rows, det_rows, fig_rows = [], [], []
    claims_total, claims_bad = 0, []
    for row in study.checks:
        fa = row.false_alarm
        if fa is not None:
            kind = "smoke check" if fa.smoke else "calibrated"
            fa_rows.append([row.check, row.function, row.null_hypothesis, kind, fa.n, fa.diverged + fa.errored,
                            fa.rejected, fa.rate, fa.ci_low, fa.ci_high, fa.alpha, fa.p_value, fa.row_level,
                            fa.verdict])
            fig_rows.append({"check": row.check, "rate": fa.rate or 0.0, "ci_lo": fa.ci_low or 0.0,
                             "ci_hi": fa.ci_high or 0.0, "alpha": fa.alpha})
            s["checks"].append(check(
                f"false-alarm rate: {row.check}" + (" (smoke check)" if fa.smoke else ""), not fa.flagged,
                statistic=fa.rate, ci=[fa.ci_low, fa.ci_high], alpha=fa.row_level, p_value=fa.p_value,
                null_hypothesis=f"false-alarm rate <= α = {fa.alpha:g} ({row.null_hypothesis})",
                detail=f"{fa.rejected}/{fa.tested} alarms on correct inputs: {fa.verdict}; tested at its Holm row "
                       f"level" + (f" {fa.row_level:.3g}" if fa.row_level is not None else "")
                       + (f" (family {fam.level:g})" if fam is not None else "")))
        for d in row.detections:
            det_rows.append([row.check, d.mutant, d.n, d.diverged, d.errored, d.rejected, d.rate, d.ci_low, d.ci_high,
                             d.claim, d.p_value, d.row_level, d.verdict])
            if d.claim is not None:
                claims_total += 1
                if d.flagged:
                    claims_bad.append(f"{row.check} / {d.mutant}")
    if fa_rows:
        s["tables"].append(table(
            "cal-false-alarm", "False-alarm rates on correct inputs",
            ["check", "function", "H0", "kind", "runs", "diverged or refused", "alarms", "rate", "CI low", "CI high",
             "α", "p", "row level", "verdict"], fa_rows,
            note="p: exact binomial p-value of 'false-alarm rate ≤ α'; row level: the Holm level this row is tested "
                 "at within the study's family" + (f" (family-wise level {fam.level:g})." if fam is not None else ".")))
        s["figures"].append(figure("cal-false-alarm", "False-alarm rate of each check with its Clopper-Pearson "
                                   "interval (blue) against its nominal α (red).", after="cal-false-alarm"))
    if det_rows:
        s["tables"].append(table("cal-detection", "Detection rates of injected bugs",
                                 ["check", "injected bug", "runs", "diverged", "refused", "alarms", "rate", "CI low",
                                  "CI high", "claimed ≥", "p", "row level", "verdict"], det_rows,
                                 note="A claim is stated before measuring; 'BELOW CLAIM' means the family test "
                                      "rejects it. Runs stopped by the divergence guard are not detections.",
                                 folded=len(det_rows) > 30))
    if claims_total:
        s["checks"].append(check("detection rates as claimed", not claims_bad, statistic=len(claims_bad),
                                 null_hypothesis="every claimed detection rate is reached (not rejected by the "
                                                 "family test)",
                                 detail=f"{claims_total - len(claims_bad)} of {claims_total} claims hold"
                                        + (": below claim — " + "; ".join(claims_bad) if claims_bad else "")))
    if study.coverage:
        s["tables"].append(table("cal-coverage", "Coverage: which checks flag each bug in at least half of the runs",
                                 ["injected bug", "what it breaks", "detected by", "best check", "best rate"],
                                 [[c.mutant, c.bug, ", ".join(c.detected_by) or "NONE", c.best_check, c.best_rate]
                                  for c in study.coverage]))
    if study.unavailable_checks:
        s["paragraphs"].append("Checks not run in this profile: " + "; ".join(
            f"{k}: {v}" for k, v in study.unavailable_checks.items()))
    if study.provenance is not None:
        p = study.provenance
        s["details"]["provenance"] = {"code_version": p.code_version, "profile": p.profile, "seed": p.seed,
                                      "genbench_version": p.genbench_version}
    figs = {"cal-false-alarm": F.calibration_figure(fig_rows)} if fig_rows else {}
    return SectionResult(s, figs)


def stage(config: Any, work: Path) -> SectionResult:
    """Run and render (the report's build calls this)."""
    return render(run(config, get_profile(config.profile), work))
