"""`genbench langevin` end to end: files written, keys present, bad input -> one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genbench.cli import main
from genbench.langevin import theory
from genbench.targets import seed_target

SUMMARY_KEYS = {
    "steps", "step_size", "chains", "seed", "device", "sampler", "empirical_mean", "empirical_cov",
    "target_mean", "target_cov", "exact_mean", "exact_cov", "stationary_cov", "ess", "elapsed_s",
    "chain_steps_per_s",
}


def test_single_chain_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["langevin", "--steps", "3000", "--step-size", "0.05", "--seed", "3", "--burn-in", "1000",
               "--thin", "2", "--out", str(tmp_path)])
    assert rc == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert SUMMARY_KEYS <= s.keys()
    assert (s["steps"], s["step_size"], s["chains"], s["seed"], s["device"], s["sampler"]) == (3000, 0.05, 1, 3, "cpu", "ula")
    assert s["n_draws"] == 1000 and "trajectory" in s["empirical_basis"]
    law = theory.ula_law(seed_target(), 0.05, 3000)
    np.testing.assert_allclose(s["exact_mean"], law.mean)
    np.testing.assert_allclose(s["exact_cov"], law.cov)
    np.testing.assert_allclose(s["stationary_cov"], law.stationary_cov)
    assert len(s["ess"]) == 2 and all(e > 0 for e in s["ess"])
    assert "ULA: T=3000" in capsys.readouterr().out


def test_many_chains_mala_summary(tmp_path: Path) -> None:
    rc = main(["langevin", "--steps", "200", "--step-size", "0.15", "--chains", "500", "--sampler", "mala",
               "--dtype", "float32", "--out", str(tmp_path)])
    assert rc == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert SUMMARY_KEYS <= s.keys()
    assert s["sampler"] == "mala" and s["chains"] == 500 and s["dtype"] == "float32"
    assert 0 < s["acceptance_rate"] < 1
    assert "across the 500 chains" in s["empirical_basis"] and s["ess"] == [500.0, 500.0]
    assert s["exact_mean"] is None and s["stationary_cov"] == s["target_cov"]


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_grid_writes_png_and_json_with_the_theory_best(tmp_path: Path, capsys) -> None:
    rc = main(["langevin", "grid", "--out", str(tmp_path)])
    assert rc == 0
    png = (tmp_path / "grid.png").read_bytes()
    assert len(png) > 10_000 and not (tmp_path / "target.png").exists()
    g = json.loads((tmp_path / "grid.json").read_text())
    assert len(g["cells"]) == 9 and g["seed"] == 42 and g["method"] == "fast"
    assert (g["theory_best"]["T"], g["theory_best"]["mu"]) == (100000, 0.01)
    assert g["agrees_with_assignment"] == ((g["best"]["T"], g["best"]["mu"]) == (100000, 0.01))
    assert "KL" in g["criterion"] and g["explanation"]
    assert g["target_draws"] == 100000 and len(g["target_draws_mean"]) == 2 and "hists" not in g
    for key in ("kl", "w2", "mean_error", "cov_error_fro", "ess", "predicted_ess", "exact_cov_T", "stationary_cov",
                "mixing_time", "predicted_kl"):
        assert key in g["cells"][0]
    assert "departs from the assignment's: densities" in capsys.readouterr().out


def test_grid_assignment_style_writes_the_assignments_two_figures(tmp_path: Path) -> None:
    rc = main(["langevin", "grid", "--style", "assignment", "--out", str(tmp_path)])
    assert rc == 0
    assert _png_size((tmp_path / "grid.png").read_bytes()) == (1500, 1500)  # figsize 15x15 in at 100 dpi
    assert _png_size((tmp_path / "target.png").read_bytes()) == (640, 480)  # matplotlib's default figure
    assert json.loads((tmp_path / "grid.json").read_text())["target_draws"] == 100000


BAD = [
    (["--steps", "0", "--step-size", "0.1"], "steps"),
    (["--steps", "10", "--step-size", "0"], "--step-size"),
    (["--steps", "10", "--step-size", "-0.5"], "--step-size"),
    (["--steps", "10", "--step-size", "nan"], "--step-size"),
    (["--steps", "10", "--step-size", "0.2"], "0.2"),
    (["--steps", "10", "--step-size", "0.1", "--chains", "0"], "chains"),
    (["--steps", "10", "--step-size", "0.1", "--device", "cuda"], "CUDA"),
    (["--steps", "10", "--step-size", "0.1", "--device", "gpu"], "device"),
    (["--steps", "10", "--step-size", "0.1", "--sampler", "hmc"], "sampler"),
    (["--steps", "10", "--step-size", "0.1", "--burn-in", "10"], "--burn-in"),
    (["--steps", "10", "--step-size", "0.1", "--thin", "0"], "thin"),
    (["--steps", "10", "--step-size", "0.1", "--dtype", "int8"], "dtype"),
    (["--steps", "10", "--step-size", "0.1", "--seed", "-1"], "seed"),
    (["--steps", "ten", "--step-size", "0.1"], "--steps"),
    (["--step-size", "0.1"], "--steps"),
    (["--steps", "10"], "--step-size"),
    (["grid"], "--out"),
    (["grid", "--method", "slow"], "method"),
    (["grid", "--style", "pretty"], "style"),
]


@pytest.mark.parametrize("argv,name", BAD)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], name: str) -> None:
    full = ["langevin", *argv]
    if "--out" not in argv and argv != ["grid"]:
        full += ["--out", str(tmp_path / "o")]
    if argv[:1] == ["grid"] and argv != ["grid"]:
        full += ["--out", str(tmp_path / "o")]
    try:
        rc = main(full)
    except SystemExit as exc:  # argparse usage errors exit from inside parse_args
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "Traceback" not in err and name in err
    assert not (tmp_path / "o" / "summary.json").exists()


def test_out_is_an_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["langevin", "--steps", "10", "--step-size", "0.1", "--out", str(f)]) == 2
    assert "--out '" in capsys.readouterr().err  # the flag, not the Python parameter


def test_subprocess_error_has_no_traceback(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "genbench", "langevin", "--steps", "10", "--step-size", "0.3",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "Traceback" not in p.stderr
    assert "--step-size must be < 0.2" in p.stderr
