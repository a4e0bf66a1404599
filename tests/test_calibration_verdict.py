"""The calibration study's own verdict: Holm's family test holds its level, and flags what it must.

H0 of the study's verdict: every check's false-alarm rate is at most its alpha and every claimed
detection rate is at least its claim. These tests prove, exactly where possible and by simulating
the production functions otherwise, that the verdict fails a correct genbench with probability at
most the family level (for the quick, --seeds 20 and full shapes of the study), that the old
per-row 95% intervals did not, and that a doubled false-alarm rate is flagged with the planned power.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from genbench import stats
from genbench.calibration import summary as sm
from genbench.calibration.registry import checks, get_check
from genbench.calibration.results import Trial
from genbench.calibration.study import family_rows, family_size
from genbench.testing import offset_seed

ALPHA = 0.05
ALL = [c.name for c in checks()]


def _shape(profile: str, seeds: int | None) -> list[tuple[int, float, str]]:
    """The study's family as (n, H0-boundary rate, side) rows, from its real plan."""
    return family_rows(profile, seeds=seeds, checks_=ALL)


SHAPES = {"quick": ("quick", None), "quick --seeds 20": ("quick", 20), "full": ("full", None)}


def _old_row_error(n: int, rate: float, side: str) -> float:
    """P(the old per-row rule flags the row) at its H0 boundary: 95% Clopper-Pearson interval beyond the rate.

    The interval lies above p0 exactly when P(Bin(n, p0) >= k) < 0.025 (and below it when P(Bin(n, p0) <= k) < 0.025).
    """
    ks = np.arange(n + 1)
    tail = sm.false_alarm_p_value(ks, n, rate) if side == "upper" else sm.detection_p_value(ks, n, rate)
    return float(scipy.stats.binom.pmf(ks, n, rate)[tail < 0.025].sum())


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("level", [0.01, 0.0005])
def test_exact_family_error_under_h0_is_within_the_level(shape: str, level: float) -> None:
    """Exact, rows independent, every row at its H0 boundary: the verdict's error is <= the family level."""
    rows = _shape(*SHAPES[shape])
    assert len(rows) == family_size(SHAPES[shape][0], ALL)
    err = sm.null_family_error(rows, level)
    assert 0 <= err <= level


def test_old_uncorrected_verdict_failed_a_correct_suite_often() -> None:
    """The per-row 95% rule, for --seeds 20: its error was far above any stated level (issue: '4/20 false alarms')."""
    rows = _shape("quick", 20)
    old = 1 - np.prod([1 - _old_row_error(*r) for r in rows])
    assert old > 0.1
    assert sm.null_family_error(rows, 0.01) < old / 10


def _simulate(rows: list[tuple[int, float, str]], rates: list[float], level: float, reps: int, seed: int) -> np.ndarray:
    return sm.simulate_family(rows, rates, level, reps, seed)


@pytest.mark.statistical(alpha=1e-5)
@pytest.mark.parametrize("shape", ["quick --seeds 20", "full"])
def test_simulated_verdict_holds_the_family_level(shape: str) -> None:
    """H0: the simulated failure rate equals the exact one (two-sided binomial test at 1e-5); and the exact one <= level."""
    rows = _shape(*SHAPES[shape])
    level, reps = 0.05, 100_000  # a large level so that failures are counted in thousands
    failed = int(_simulate(rows, [r for _, r, _ in rows], level, reps, offset_seed(1)).any(-1).sum())
    exact = sm.null_family_error(rows, level)
    assert exact <= level
    assert scipy.stats.binomtest(failed, reps, exact).pvalue > 1e-5, (failed / reps, exact)


@pytest.mark.statistical(power=0.999999)
def test_simulated_verdict_flags_a_doubled_false_alarm_rate_at_the_planned_seeds() -> None:
    """One check at 2 alpha, planned seeds, full family: flagged in >= 80% of studies (planned power, Holm >= Bonferroni)."""
    rows = _shape("full", None)
    m = len(rows)
    planned = sm.planned_false_alarm_seeds(ALPHA, 0.01 / m)
    assert rows[0] == (planned, ALPHA, "upper")
    exact_power = sm.false_alarm_power(planned, ALPHA, 0.01 / m)
    assert exact_power >= sm.PLANNED_POWER
    reps = 20_000
    rates = [2 * ALPHA] + [r for _, r, _ in rows[1:]]
    flagged = _simulate(rows, rates, 0.01, reps, offset_seed(2))[:, 0].sum()
    # P(Bin(20000, 0.8) < 15600) < 1e-6: a correct verdict passes this whatever the seed.
    assert flagged >= 15_600, flagged / reps


@pytest.mark.statistical(power=0.999999)
def test_simulated_verdict_flags_a_grossly_inflated_check_in_a_smoke_study() -> None:
    """A check that rejects half of its correct inputs is flagged even at --seeds 20 (exact power 0.94)."""
    rows = _shape("quick", 20)
    rates = [0.5] + [r for _, r, _ in rows[1:]]
    reps = 20_000
    flagged = _simulate(rows, rates, 0.01, reps, offset_seed(3))[:, 0].mean()
    exact = sm.false_alarm_power(20, ALPHA, 0.01 / len(rows), ratio=0.5 / ALPHA)
    assert exact > 0.9
    assert flagged >= exact - 0.02, (flagged, exact)  # 0.02 is > 7 binomial standard errors


def test_binomial_p_values_are_the_exact_tails() -> None:
    assert sm.false_alarm_p_value(0, 10, ALPHA) == 1.0
    assert sm.false_alarm_p_value(10, 10, ALPHA) == pytest.approx(ALPHA**10)
    assert sm.false_alarm_p_value(4, 20, ALPHA) == pytest.approx(scipy.stats.binomtest(4, 20, ALPHA, "greater").pvalue)
    assert sm.detection_p_value(10, 10, 0.9) == 1.0
    assert sm.detection_p_value(0, 10, 0.9) == pytest.approx(0.1**10)


def test_planned_seeds_reach_the_power_and_stay_there() -> None:
    """The exact planner: power >= 0.8 from the planned n on (saw-tooth included), below it just before."""
    level = 0.01 / 98
    n = sm.planned_false_alarm_seeds(ALPHA, level)
    powers = [sm.false_alarm_power(k, ALPHA, level) for k in range(n, 2 * n + 1)]
    assert min(powers) >= 0.8
    assert sm.false_alarm_power(n - 1, ALPHA, level) < 0.8
    # Smaller families need fewer seeds; the study's full shape plans between 400 and 700.
    assert sm.planned_false_alarm_seeds(ALPHA, 0.01) < n and 400 <= n <= 700
    with pytest.raises(sm.ParameterError, match="ratio"):
        sm.planned_false_alarm_seeds(0.6, 0.01)


def _trials(check: str, mutant: str | None, rejected: int, n: int, diverged: int = 0) -> list[Trial]:
    out = [Trial(check, mutant, s, "rejected") for s in range(rejected)]
    out += [Trial(check, mutant, s, "diverged", note="stopped") for s in range(rejected, rejected + diverged)]
    return out + [Trial(check, mutant, s, "passed") for s in range(rejected + diverged, n)]


def test_study_summary_flags_exactly_what_holm_flags() -> None:
    """summarise uses the same p-values and Holm: an inflated check and a missed claim fail; the rest pass."""
    c = get_check("ula_law@transient")
    claims = list(c.claims)
    trials = _trials(c.name, None, 15, 20)  # 15/20 false alarms: p ~ 1e-15
    trials += _trials(c.name, claims[0], 2, 20)  # 2/20 against a 0.9 claim
    trials += [t for m in claims[1:] for t in _trials(c.name, m, 20, 20)]
    trials += _trials(c.name, "uniform_noise", 1, 20)  # no claim: measured, never flagged
    rows, fam, problems = sm.summarise(trials, [c], alpha=ALPHA, family_level=0.01)
    (row,) = rows
    assert fam.tests == 1 + len(claims) and set(fam.flagged) == {f"{c.name}: correct input", f"{c.name}: {claims[0]}"}
    assert row.false_alarm.flagged and row.false_alarm.verdict == "too many false alarms"
    assert row.detection(claims[0]).verdict == "BELOW CLAIM"
    assert row.detection("uniform_noise").p_value is None and not row.detection("uniform_noise").flagged
    assert len(problems) == 2 and all(f"{c.name}" in p for p in problems)
    assert row.false_alarm.smoke and row.false_alarm.power_at_2alpha < 0.8
    tested = [row.false_alarm, *(d for d in row.detections if d.p_value is not None)]
    levels, rejected = stats.holm([r.p_value for r in tested], 0.01)
    assert [r.row_level for r in tested] == levels and [r.flagged for r in tested] == rejected


def test_divergence_and_refusals_are_counted_apart_from_rejections() -> None:
    c = get_check("ula_stationary")
    trials = _trials(c.name, None, 1, 10) + _trials(c.name, "score_sign_flipped", 0, 10, diverged=10)
    trials += _trials(c.name, "noise_sqrt_mu", 6, 10, diverged=4)
    rows, fam, problems = sm.summarise(trials, [c], alpha=ALPHA, family_level=0.01)
    d = rows[0].detection("score_sign_flipped")
    assert (d.rejected, d.diverged, d.tested, d.rate) == (0, 10, 0, None)
    assert d.verdict.startswith("not measured") and d.p_value is None
    d = rows[0].detection("noise_sqrt_mu")
    assert (d.rejected, d.diverged, d.tested, d.rate) == (6, 4, 6, 1.0)
    cov = {r.mutant: r for r in sm.coverage(rows)}
    assert cov["score_sign_flipped"].stopped_by_guard == (c.name,) and cov["score_sign_flipped"].detected_by == ()
    # A correct input stopped by the guard is a defect of the study, not a false alarm.
    _, _, problems = sm.summarise(_trials(c.name, None, 0, 10, diverged=1), [c], alpha=ALPHA)
    assert problems and "1 diverged" in problems[0]


def test_rows_with_planned_seeds_are_calibration_rows_not_smoke() -> None:
    c = get_check("mala_one_step")
    m = 1 + len(c.claims)
    n = sm.planned_false_alarm_seeds(ALPHA, 0.01 / m)
    trials = _trials(c.name, None, 2, n) + [t for x in c.claims for t in _trials(c.name, x, 200, 200)]
    rows, fam, _ = sm.summarise(trials, [c], alpha=ALPHA, family_level=0.01)
    assert fam.planned_seeds == n and not rows[0].false_alarm.smoke
    assert rows[0].false_alarm.power_at_2alpha >= 0.8
