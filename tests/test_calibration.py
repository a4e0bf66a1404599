"""The calibration and mutation study: the quick profile in the default suite, the full one behind `slow`.

The quick study runs every check 10 times on correct inputs and on each mutant it claims to detect.
Its assertions are themselves binomial tests, so their levels are stated: a false-alarm rate fails
only when its Clopper-Pearson interval at confidence 1 - 0.05/(number of checks) lies wholly above
alpha (Bonferroni over the checks); a claimed detection rate fails only when its interval at
confidence 1 - 0.05/(number of claims) lies wholly below the claim. Seeds are fixed; nothing is retried.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from genbench.calibration import KERNEL_MUTANTS
from genbench.calibration import study as st
from genbench.cli import main
from genbench.gan.data import find_test_root

pytestmark = pytest.mark.statistical


@pytest.fixture(scope="module")
def gan_data() -> str | None:
    """The real MNIST test split's root, or None (the study then leaves the GAN checks out, saying why).

    The real split is optional here, so its absence is not a missing resource under GENBENCH_REQUIRE_DATA=1.
    """
    root = find_test_root()
    return None if root is None else str(root)


@pytest.fixture(scope="module")
def quick(gan_data: str | None) -> dict:
    """The quick study, run once for this module (the same call as `genbench calibrate`)."""
    return st.run_study("quick", data=gan_data)


def _bonferroni_confidence(count: int) -> float:
    return 1.0 - 0.05 / max(count, 1)


def test_quick_study_states_its_seeds_alpha_and_no_retries(quick: dict) -> None:
    assert quick["profile"]["name"] == "quick"
    assert quick["retries"] == 0
    assert quick["seed"] == 0 and "seed" in quick["seed_rule"]
    assert quick["alpha"] == 0.05
    for row in quick["checks"]:
        assert row["seeds"] == list(range(0, st.PROFILES["quick"].seeds if row["domain"] == "langevin"
                                          else st.PROFILES["quick"].gan_seeds))
        assert row["null_hypothesis"] and row["function"].startswith("genbench.testing.")


def test_quick_study_runs_every_langevin_check_of_genbench_testing(quick: dict) -> None:
    names = {r["check"] for r in quick["checks"]}
    expected = {"ula_law_mean@transient", "ula_law_cov@transient", "ula_law@transient", "gaussian_shape@one_step",
                "ula_stationary", "ula_one_step_law", "mala_invariance", "mala_one_step", "ksd@transient",
                "ksd_mala", "sbc_mala", "sequential_ula_law"}
    assert expected <= names, f"missing: {expected - names}; unavailable: {quick['unavailable_checks']}"


def test_false_alarm_rates_are_consistent_with_alpha(quick: dict) -> None:
    rows = [r for r in quick["checks"] if "false_alarm" in r]
    conf = _bonferroni_confidence(len(rows))
    bad = []
    for r in rows:
        fa = r["false_alarm"]
        lo, _ = st.clopper_pearson(fa["alarms"], fa["n"], conf)
        if lo > quick["alpha"]:
            bad.append(f"{r['check']}: {fa['alarms']}/{fa['n']} (CI low {lo:.3f} > alpha)")
    assert not bad, "; ".join(bad)


def test_every_langevin_mutant_is_detected_at_its_claimed_rate(quick: dict) -> None:
    claims = [(r["check"], m, d) for r in quick["checks"] if r["domain"] == "langevin"
              for m, d in r["detections"].items() if d["claim"] is not None]
    conf = _bonferroni_confidence(len(claims))
    bad = []
    for check, m, d in claims:
        _, hi = st.clopper_pearson(d["alarms"], d["n"], conf)
        if hi < d["claim"]:
            bad.append(f"{check} vs {m}: {d['alarms']}/{d['n']} < claim {d['claim']}")
    assert not bad, "; ".join(bad)


def test_gan_checks_hold_alpha_and_detect_their_claimed_corruptions(quick: dict, gan_data: str | None) -> None:
    if gan_data is None:
        assert all("no real MNIST test split" in why for c, why in quick["unavailable_checks"].items()
                   if c not in ("c2st", "c2st_mlp"))
        pytest.skip("real MNIST test split absent: GAN checks not calibrated here")
    rows = {r["check"]: r for r in quick["checks"] if r["domain"] == "gan"}
    assert set(rows) == {"class_balance", "kid", "memorisation", "diversity"}  # C2ST: full profile / --check c2st
    assert {"c2st", "c2st_mlp"} <= set(quick["unavailable_checks"])
    claims = [(c, m, d) for c, r in rows.items() for m, d in r["detections"].items()]
    assert {(c, m) for c, m, _ in claims} == {("class_balance", "missing_digit"), ("class_balance", "single_class"),
                                             ("kid", "single_class"), ("memorisation", "memorised"),
                                             ("diversity", "collapsed_class"), ("diversity", "single_class"),
                                             ("diversity", "blurred")}
    conf = _bonferroni_confidence(len(claims))
    for c, m, d in claims:
        assert st.clopper_pearson(d["alarms"], d["n"], conf)[1] >= d["claim"], (c, m, d)


def test_every_kernel_mutant_is_caught_by_some_check(quick: dict) -> None:
    """The catalogue as a whole is detected, bfloat16_state included (by the planned stationary test)."""
    cov = quick["coverage"]
    uncaught = {m.name for m in KERNEL_MUTANTS if not cov[m.name]["detected_by"]}
    assert not uncaught, uncaught
    assert "ula_stationary@planned" in cov["bfloat16_state"]["detected_by"]
    assert all(len(cov[m.name]["bug"]) > 30 for m in KERNEL_MUTANTS)


def test_planned_stationary_test_is_sized_for_the_bfloat16_error() -> None:
    """The bfloat16 claim rests on theory: its variance error is at least the effect the chains are planned for."""
    from genbench.testing.power import power

    err = st.bfloat16_variance_error(st.STATIONARY["step_size"])
    assert err >= st.PLANNED_EFFECT
    n = st.planned_stationary_chains(0.05)
    assert power("cov", err, n, alpha=0.025) >= st.PLANNED_POWER
    assert power("cov", st.PLANNED_EFFECT, n - 1, alpha=0.025) < st.PLANNED_POWER


def test_moment_checks_are_honestly_blind_to_moment_preserving_noise(quick: dict) -> None:
    """Uniform/Rademacher noise keep mean and covariance: only the shape check claims them."""
    claimants = {r["check"] for r in quick["checks"] if "uniform_noise" in r["detections"]}
    assert claimants == {"gaussian_shape@one_step"}


def test_calibration_json_is_plain_and_matches_the_table(quick: dict, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = st.write_study(quick, tmp_path / "cal")
    data = json.loads(path.read_text())
    assert data["checks"][0]["check"] == quick["checks"][0]["check"]
    table = st.format_table(quick)
    for r in quick["checks"]:
        assert r["check"] in table
    assert "Clopper-Pearson" in table and "no retries" in table


def test_trials_are_pure_functions_of_their_arguments() -> None:
    """Order and process do not matter: a pool's map gives the serial run's table (issue 8 relies on it)."""
    tasks = st.plan("quick", seeds=2, checks_=["ula_law@transient", "mala_invariance"])
    serial = [st._run_trial_args(t) for t in tasks]
    backwards = [st._run_trial_args(t) for t in reversed(tasks)][::-1]
    assert serial == backwards
    with st.pool_map(2) as map_fn:
        pooled = list(map_fn(st._run_trial_args, tasks))
    assert pooled == serial
    assert st.summarise(pooled) == st.summarise(serial)


def test_run_trial_rejects_a_mutant_that_does_not_apply() -> None:
    with pytest.raises(st.ParameterError, match="does not apply"):
        st.run_trial("mala_one_step", "half_drift", 0)
    with pytest.raises(st.ParameterError, match="check must be one of"):
        st.run_trial("nope", None, 0)
    with pytest.raises(st.ParameterError, match="profile must be one of"):
        st.plan("medium")


def test_clopper_pearson_and_verdicts() -> None:
    lo, hi = st.clopper_pearson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 10))
    lo, hi = st.clopper_pearson(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 10))
    assert st.false_alarm_verdict(10, 200, 0.05) == "consistent"
    assert st.false_alarm_verdict(30, 200, 0.05) == "too many false alarms"
    assert st.false_alarm_verdict(0, 200, 0.05) == "conservative"
    assert st.detection_verdict(10, 10, 0.9) == "as claimed"
    assert st.detection_verdict(3, 10, 0.9) == "BELOW CLAIM"
    assert st.detection_verdict(0, 10, None).startswith("blind")


def test_full_profile_meets_the_issue_minimum() -> None:
    assert st.PROFILES["full"].seeds >= 200 and st.PROFILES["full"].gan_seeds >= 200
    assert not st.PROFILES["full"].claims_only


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["calibrate", "--seeds", "0"], "seeds must be an integer >= 1"),
        (["calibrate", "--seed", "-1"], "seed must be an integer >= 0"),
        (["calibrate", "--workers", "0"], "workers must be an integer >= 1"),
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
    out = tmp_path / "cal"
    proc = subprocess.run(
        [sys.executable, "-m", "genbench", "calibrate", "--seeds", "2", "--seed", "7", "--check", "ula_law@transient",
         "--check", "mala_one_step", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ula_law@transient" in proc.stdout and "wrote" in proc.stdout
    data = json.loads((out / "calibration.json").read_text())
    assert data["seed"] == 7 and [r["check"] for r in data["checks"]] == ["ula_law@transient", "mala_one_step"]
    assert data["checks"][0]["seeds"] == [7, 8]


@pytest.mark.slow
def test_full_calibration_study(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """>= 200 seeds per check and input, every applicable mutant (about an hour on 2 cores)."""
    with st.pool_map(2) as map_fn:
        full = st.run_study("full", map_fn=map_fn)
    st.write_study(full, tmp_path)
    rows = [r for r in full["checks"] if "false_alarm" in r]
    conf = _bonferroni_confidence(len(rows))
    for r in rows:
        fa = r["false_alarm"]
        assert fa["n"] >= 200
        lo, _ = st.clopper_pearson(fa["alarms"], fa["n"], conf)
        assert lo <= full["alpha"], f"{r['check']}: {fa['alarms']}/{fa['n']} false alarms"
    claims = [(r["check"], m, d) for r in full["checks"] for m, d in r["detections"].items() if d["claim"] is not None]
    conf = _bonferroni_confidence(len(claims))
    for check, m, d in claims:
        _, hi = st.clopper_pearson(d["alarms"], d["n"], conf)
        assert hi >= d["claim"], f"{check} vs {m}: {d['alarms']}/{d['n']}"
