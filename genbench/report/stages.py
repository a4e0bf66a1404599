"""The report's stages: each runs (or reads) one part of the suite and returns a plain section.

Each stage calls the one implementation its owner built (experiments, training, quality, the
benchmark runner, calibration), converts the result to the report model (numbers, tables, checks)
and draws its figures with ``genbench.report.figures``. Imports of those modules are local, so a
part that is not installed shows as "not run" instead of breaking the report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from genbench.report import figures as F
from genbench.report.junit import parse_junit
from genbench.report.model import SectionResult, check, figure, not_run, section, table

__all__ = ["langevin", "gan", "tests", "bench", "calibration", "tests_section_from_junit", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[2]
# Set in the environment of the pytest that the report launches: a report built inside that run
# (a test of the report, say) must not launch pytest again.
CHILD_ENV = "GENBENCH_REPORT_CHILD"

# Test selection per profile. The quick report must fit 5 minutes on 2 cores with everything else,
# so it runs the statistical tests only; the full profile runs the default suite.
TEST_SELECTION = {
    "quick": "statistical and not slow and not cuda_heavy",
    "full": "not slow and not cuda_heavy",
}
TEST_TIMEOUT_S = {"quick": 240, "full": 1800}


# --------------------------------------------------------------------------------------------- tests
def tests_section_from_junit(junit_path: str | os.PathLike[str], *, how: str) -> SectionResult:
    """The test-suite section from a JUnit XML file (counts, failures, recorded statistical checks)."""
    j = parse_junit(junit_path)
    s = section("tests", "Test suite")
    c = j["counts"]
    s["paragraphs"].append(how)
    s["details"].update({"counts": c, "time_s": j["time_s"], "junit": os.fspath(junit_path)})
    s["tables"].append(table("test-counts", "Counts", ["total", "passed", "failed", "errors", "skipped", "time [s]"],
                             [[c["total"], c["passed"], c["failed"], c["errors"], c["skipped"], round(j["time_s"], 1)]]))
    bad = c["failed"] + c["errors"]
    s["checks"].append(check("test suite: no failures or errors", bad == 0, statistic=bad,
                             null_hypothesis="every selected test passes",
                             detail=f"{c['passed']} passed, {c['failed']} failed, {c['errors']} errors, "
                                    f"{c['skipped']} skipped of {c['total']}"))
    if j["failures"]:
        s["tables"].append(table("test-failures", f"Failures ({len(j['failures'])})", ["test", "outcome", "message"],
                                 [[f["test"], f["outcome"], f["message"]] for f in j["failures"]]))
    if j["checks"]:
        rows = []
        for ck in j["checks"]:
            h0 = ck.get("passed")
            h0_text = "H0 not rejected" if h0 is True else "H0 rejected" if h0 is False else "H0 verdict not recorded"
            rows.append([ck["test"], ck["check"], ck.get("statistic"), ck.get("p_value"), ck.get("alpha"),
                         ck.get("n"), ck.get("detectable_effect"), h0_text, ck["outcome"]])
            # The report's verdict for a recorded check is the test's outcome: a test that must
            # REJECT a deliberately broken sampler passes exactly when H0 is rejected.
            s["checks"].append(check(f"{ck['check']}", ck["outcome"] == "passed", statistic=ck.get("statistic"),
                                     p_value=ck.get("p_value"), alpha=ck.get("alpha"),
                                     detail=f"{h0_text} (n={ck.get('n')}); test {ck['test']} {ck['outcome']}"))
        s["tables"].append(table(
            "test-statistical", "Statistical tests (recorded by the tests with record_check)",
            ["test", "check", "statistic", "p-value", "α", "n", "detectable effect", "H0", "test outcome"], rows,
            note="A test expecting rejection (a deliberately broken input) passes when H0 is rejected."))
    slowest = sorted(j["cases"], key=lambda x: -x["time_s"])[:10]
    if slowest:
        s["tables"].append(table("test-slowest", "Slowest tests", ["test", "outcome", "time [s]"],
                                 [[x["test"], x["outcome"], round(x["time_s"], 2)] for x in slowest]))
    return SectionResult(s)


def tests(config: Any, work: Path) -> SectionResult:
    """Run pytest with a JUnit XML result (or read the one given) and summarise it."""
    if config.tests_junit:
        return tests_section_from_junit(config.tests_junit, how=f"Read from the given JUnit file {config.tests_junit}.")
    if not config.run_tests:
        return not_run("tests", "Test suite", "disabled (--no-tests); pass --tests-junit FILE to include a run")
    if os.environ.get(CHILD_ENV):
        return not_run("tests", "Test suite", "this report was built inside the pytest run that genbench report "
                                              "launched; not recursing")
    tests_dir = REPO_ROOT / "tests"
    if not tests_dir.is_dir():
        return not_run("tests", "Test suite", f"no tests/ folder beside the package ({tests_dir}); "
                                              "pass --tests-junit FILE")
    junit = work / "junit.xml"
    marker = TEST_SELECTION[config.profile]
    cmd = [sys.executable, "-m", "pytest", os.fspath(tests_dir), "-m", marker, f"--junitxml={junit}", "-q",
           "-p", "no:cacheprovider", "--no-header", "-o", "junit_family=xunit1"]
    env = dict(os.environ, **{CHILD_ENV: "1"})
    try:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                              timeout=TEST_TIMEOUT_S[config.profile])
    except subprocess.TimeoutExpired as exc:
        res = not_run("tests", "Test suite", f"pytest -m {marker!r} exceeded {exc.timeout:.0f} s and was stopped",
                      status="failed")
        return res
    if not junit.is_file():
        res = not_run("tests", "Test suite", f"pytest exited with status {proc.returncode} without a JUnit file",
                      status="failed")
        res.section["log"] = (proc.stdout + proc.stderr)[-8000:]
        return res
    res = tests_section_from_junit(
        junit, how=f"Ran: pytest tests -m \"{marker}\" (profile {config.profile}); exit status {proc.returncode}."
        + (" The quick profile runs the statistical tests only, to fit its time budget; the full profile runs "
           "the default suite." if config.profile == "quick" else ""))
    res.section["details"]["junit"] = f"artifacts/{work.name}/junit.xml"  # relative to the run folder
    res.section["details"]["pytest_exit_status"] = proc.returncode
    res.section["details"]["selection"] = marker
    res.section["log"] = proc.stdout[-6000:]
    return res


# -------------------------------------------------------------------------------------- placeholders
def langevin(config: Any, work: Path) -> SectionResult:
    """Langevin 3x3 study and convergence study."""
    from genbench.langevin import experiments  # noqa: F401

    return not_run("langevin", "Langevin sampling", "integration pending")


def gan(config: Any, work: Path) -> SectionResult:
    """GAN training and quality evaluation."""
    from genbench.gan import quality, train  # noqa: F401

    return not_run("gan", "MNIST GAN", "integration pending")


def bench(config: Any, work: Path) -> SectionResult:
    """Quick benchmarks and the gate verdict."""
    from genbench.bench import gate  # noqa: F401

    return not_run("bench", "Benchmarks", "integration pending")


def calibration(config: Any, work: Path) -> SectionResult:
    """Calibration table from calibration.json."""
    if not config.calibration_json:
        return not_run("calibration", "Calibration", "no calibration.json given (--calibration-json)")
    return not_run("calibration", "Calibration", "integration pending")
