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
