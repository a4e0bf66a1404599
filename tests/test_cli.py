"""The command line as a user meets it: fast help, unknown flags named with a suggestion, errors in
terms of flags, outputs never clobbered silently, torchrun without --distributed refused, and the
parser's copies of library constants in step with the library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genbench.cli import build_parser, cli_message, main, unknown_option

HEAVY = ("torch", "numpy", "scipy", "matplotlib")


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "genbench", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=300)


def test_building_the_parser_imports_no_heavy_module() -> None:
    """`genbench --help` and argument errors must not wait for torch (seconds) to import."""
    code = ("import sys; from genbench.cli import build_parser; build_parser(); "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "", f"building the parser imported {proc.stdout.strip()}"


@pytest.mark.parametrize("argv", [["--help"], ["langevin", "--help"], ["gan", "evaluate", "--help"],
                                  ["langevin", "--step_size", "0.01"], ["bench", "gate", "--nope"]])
def test_help_and_argument_errors_import_no_torch(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "genbench", *argv], capture_output=True, text=True)
    imported = {ln.split("|")[-1].strip() for ln in proc.stderr.splitlines() if ln.startswith("import time:")}
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


@pytest.mark.parametrize("argv, flag, hint", [
    (["langevin", "--step_size", "0.01"], "--step_size", "--step-size"),
    (["langevin", "--mu", "0.01"], "--mu", "--step-size"),  # named like the value (MU) of --step-size
    (["langevin", "--steps", "10", "--chians", "5", "--out", "x"], "--chians", "--chains"),
    (["langevin", "grid", "--outt", "x"], "--outt", "--out"),
    (["bench", "--thraeds", "1"], "--thraeds", "--threads"),
    (["bench", "--nonsense", "1"], "--nonsense", None),
    (["calibrate", "--checks", "c2st"], "--checks", "--check"),
    (["gan", "train", "--out", "x", "--batchsize", "8"], "--batchsize", "--batch-size"),
    (["check-sampler", "m:f", "--kind", "ula", "--out", "x", "--alfa", "0.1"], "--alfa", "--alpha"),
])
def test_unknown_flag_is_named_with_a_suggestion(argv: list[str], flag: str, hint: str | None,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"unknown option {flag}" in err and "invalid choice" not in err
    if hint:
        assert f"did you mean {hint}?" in err


def test_values_and_subcommand_names_are_not_mistaken_for_flags() -> None:
    parser = build_parser()
    assert unknown_option(parser, ["langevin", "--out", "grid", "--steps", "10", "--step-size", "-0.5"]) is None
    assert unknown_option(parser, ["bench", "-kpeers", "--json=x.json"]) is None
    assert unknown_option(parser, ["langevin", "grid", "--out", "x", "--seed", "1"]) is None
    assert unknown_option(parser, ["bench", "--profile", "quick", "gate", "x.json", "--max-slowdown", "20%"]) is None
    sub, flag = unknown_option(parser, ["bench", "gate", "x.json", "--threads", "1"])  # a `bench` flag after `gate`
    assert flag == "--threads" and sub.prog == "genbench bench gate"


def test_library_errors_name_the_flags() -> None:
    p = build_parser()._subparsers._group_actions[0].choices["langevin"]
    assert cli_message("step_size must be < 0.2, got 5; pass allow_unstable=True to run it anyway", p) == \
        "--step-size must be < 0.2, got 5; pass --allow-unstable to run it anyway"
    assert cli_message("out='/x' is an existing file, not a folder", p) == "--out '/x' is an existing file, not a folder"
    assert cli_message("the seed must be >= 0", p) == "the seed must be >= 0"  # prose is left alone
    cs = build_parser()._subparsers._group_actions[0].choices["check-sampler"]
    assert cli_message("targets: unknown target 'x'", cs) == "--targets: unknown target 'x'"
    assert cli_message("effect['mean'] must be > 0, got 0.0", cs) == "--effect mean must be > 0, got 0.0"


def test_unstable_step_names_the_flag_that_allows_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["langevin", "--steps", "5", "--step-size", "5", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--allow-unstable" in err and "allow_unstable=True" not in err and "--step-size must be" in err


def test_existing_output_is_refused_then_replaced_with_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["langevin", "--steps", "20", "--step-size", "0.01", "--chains", "4", "--out", str(out)]
    assert main(argv) == 0
    first = (out / "summary.json").read_text()
    assert main([*argv[:-2], "--seed", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already holds summary.json" in err and "--overwrite" in err
    assert (out / "summary.json").read_text() == first  # untouched
    assert main([*argv, "--seed", "1", "--overwrite"]) == 0
    assert json.loads((out / "summary.json").read_text())["seed"] == 1


def test_every_command_writing_a_folder_has_the_one_overwrite_flag() -> None:
    subs = build_parser()._subparsers._group_actions[0].choices
    folders = [subs["langevin"], subs["langevin"]._subparsers._group_actions[0].choices["grid"],
               subs["calibrate"], subs["check-sampler"]]
    gan = subs["gan"]._subparsers._group_actions[0].choices
    folders += [gan["train"], gan["evaluate"]]
    for p in folders:
        assert "--out" in p._option_string_actions and "--overwrite" in p._option_string_actions, p.prog


def test_torchrun_without_distributed_is_refused(tmp_path: Path) -> None:
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    proc = _run("langevin", "--steps", "10", "--step-size", "0.01", "--out", str(tmp_path / "o"), env=env)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "rank 1 of 2" in proc.stderr and "--distributed" in proc.stderr
    assert not (tmp_path / "o").exists()
    proc = _run("bench", "gate", str(tmp_path / "none.json"), env=env)
    assert proc.returncode == 2 and "no --distributed mode" in proc.stderr and "rank 1 of 2" in proc.stderr


def test_parser_constants_agree_with_the_library() -> None:
    """The CLI keeps copies of a few constants so that parsing imports no torch; they must not drift."""
    from genbench.bench import gate, suite
    from genbench.calibration import registry, summary
    from genbench.cli import bench, calibrate, check_sampler, gan, gan_evaluate
    from genbench.conformance import plan, targets
    from genbench.gan import data, step
    from genbench.gan.state import TrainConfig

    assert bench.DEVICES == suite.DEVICES and bench.TIMERS == tuple(suite.TIMERS)
    assert bench.MIN_ROUNDS_BASELINE == gate.MIN_ROUNDS_BASELINE
    assert calibrate.PROFILES == tuple(registry.PROFILES) and calibrate.FAMILY_LEVEL == summary.FAMILY_LEVEL
    assert check_sampler.KINDS == plan.KINDS and check_sampler.DEFAULT_EFFECT == plan.DEFAULT_EFFECT
    assert (check_sampler.DEFAULT_TARGETS, check_sampler.ALL_TARGETS) == (targets.DEFAULT_TARGETS, targets.ALL_TARGETS)
    assert gan.STEP_MODES == step.STEP_MODES and gan_evaluate.HOLDOUT_DIGITS == data.HOLDOUT_DIGITS
    from genbench.gan import quality
    assert gan_evaluate.MIN_N == quality.MIN_EVAL_N
    cfg = TrainConfig()
    assert {k: getattr(cfg, k) for k in vars(gan._DEFAULTS)} == vars(gan._DEFAULTS)


def test_corrupt_checkpoint_is_one_line_without_torchs_advice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import random

    bad = tmp_path / "checkpoint.pt"
    rng = random.Random(0)
    bad.write_bytes(bytes(rng.randrange(256) for _ in range(3000)))  # torch.load's error asks to "file an issue"
    assert main(["gan", "evaluate", "--checkpoint", str(bad), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is corrupt or not a torch checkpoint" in err
    assert "file an issue" not in err.lower() and "weights_only" not in err


# ------------------------------------------------------------------ range errors, conflicts and odd inputs
@pytest.mark.parametrize(("argv", "message"), [
    (["langevin", "--steps", "-1", "--step-size", "0.01"], "--steps must be an integer >= 1, got -1"),
    (["langevin", "--steps", "10", "--step-size", "nan"], "--step-size must be a finite number > 0"),
    (["langevin", "--steps", "10", "--step-size", "0.01", "--seed", str(2**70)], "--seed must be an integer >= 0 and < 2**63"),
    (["langevin", "grid", "--seed", "-3"], "--seed must be an integer >= 0"),
    (["gan", "train", "--epochs", "0"], "--epochs must be an integer >= 1"),
    (["gan", "evaluate", "--checkpoint", "c.pt", "--n", "20"], "--n must be an integer >= 32, got 20"),
    (["gan", "evaluate", "--checkpoint", "c.pt", "--epsilon", "0.7"], "--epsilon must be in (0, 0.5]"),
    (["check-sampler", "m:f", "--kind", "ula", "--alpha", "0"], "--alpha must be in (0, 1)"),
    (["calibrate", "--workers", "0"], "--workers must be an integer >= 1"),
    (["bench", "--threads", "-1"], "--threads must be an integer >= 0"),
    (["bench", "gate", "x.json", "--alpha", "2"], "--alpha must be in (0, 1)"),
])
def test_out_of_range_values_are_refused_before_any_heavy_import(tmp_path: Path, argv: list[str], message: str) -> None:
    """One line, exit 2, the flag and what it allows; no torch imported, so the answer is immediate; no folder made."""
    out = [] if argv[0] == "bench" else ["--out", str(tmp_path / "o")]
    code = ("import sys; from genbench.cli import main; rc = main(sys.argv[1:]); "
            f"print(rc, ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code, *argv, *out], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["2"], proc.stdout  # exit 2 and no heavy module
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("genbench: error:") and message in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("argv", "message"), [
    ([], "a command is required: langevin, gan"),
    (["gan"], "genbench gan needs a subcommand: train or evaluate"),
    (["langevin", "--steps", "10", "--step-size", "0.01", "--out", ""], "--out must name a folder, got an empty path"),
    (["langevin", "--steps", "10", "--step-size", "0.01", "--block-size", "5", "--out", "o"], "--block-size applies only with --distributed"),
    (["gan", "train", "--resume", "--overwrite", "--out", "o"], "--resume and --overwrite contradict each other"),
    (["bench", "gate", "none.json"], "CURRENT.json 'none.json' does not exist"),
    (["langevin", "--steps", "10", "grid", "--out", "o"], "--steps belongs to `genbench langevin`, not to `genbench langevin grid`"),
])
def test_missing_commands_and_contradictions_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "o").exists() and list(tmp_path.iterdir()) == []


def test_bench_threads_from_the_environment_do_not_touch_bench_gate(tmp_path: Path) -> None:
    """A bad $GENBENCH_BENCH_THREADS is the suite's business, named as such; `bench gate` never reads it."""
    proc = _run("bench", "gate", str(tmp_path / "none.json"), env={"GENBENCH_BENCH_THREADS": "abc"})
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "--threads" not in proc.stderr
    proc = _run("bench", "-k", "nothing", env={"GENBENCH_BENCH_THREADS": "abc"}, cwd=tmp_path)
    assert proc.returncode == 2 and "GENBENCH_BENCH_THREADS must be an integer >= 0, got 'abc'" in proc.stderr


def test_an_adapter_that_exits_is_bad_input_not_a_pass(tmp_path: Path) -> None:
    """sys.exit(0) while importing the adapter, or inside the factory, must not read as a passing battery."""
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(0)\n")
    (tmp_path / "exits_in_factory.py").write_text("import sys\ndef factory(target):\n    sys.exit(0)\n")
    for spec in ("exits_on_import:factory", "exits_in_factory:factory"):
        proc = _run("check-sampler", spec, "--kind", "ula", "--targets", "gauss1d", "--out", str(tmp_path / "o"), cwd=tmp_path)
        err = proc.stderr.strip()
        assert proc.returncode == 2 and len(err.splitlines()) == 1 and "exit" in err, (spec, err)
        assert not (tmp_path / "o" / "conformance.json").exists()


def test_report_refuses_a_json_that_is_not_a_calibration_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "bench.json"
    other.write_text('{"benchmarks": []}')
    assert main(["report", "--calibration-json", str(other), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not written by `genbench calibrate`" in err
    assert err.count("--calibration-json") == 1
    assert not (tmp_path / "r").exists()


def test_allow_unstable_runs_ula_and_says_there_is_no_stationary_law(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["langevin", "--steps", "20", "--step-size", "0.5", "--allow-unstable", "--chains", "10",
                 "--out", str(tmp_path / "u")]) == 0
    captured = capsys.readouterr()
    assert "stationary cov none" in captured.out and captured.err == ""
    summary = json.loads((tmp_path / "u" / "summary.json").read_text())
    assert summary["stationary_cov"] is None and summary["exact_cov"] is not None
