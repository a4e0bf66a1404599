"""Test-suite section: run pytest on the project's tests/ (or read a JUnit file) and show counts,
failures, the statistical checks the tests recorded and the slowest tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbench.report.junit import JUnitRun, parse_junit
from genbench.report.model import SectionResult, check, not_run, section, table
from genbench.report.profiles import ReportProfile, get_profile

__all__ = ["ID", "TITLE", "CHILD_ENV", "TestsData", "find_tests_dir", "run", "render", "stage"]

ID, TITLE = "tests", "Test suite"
# Set in the environment of the pytest that the report launches: a report built inside that run
# (a test of the report, say) must not launch pytest again.
CHILD_ENV = "GENBENCH_REPORT_CHILD"


@dataclass(frozen=True)
class TestsData:
    """A test run's parsed JUnit result and how it was obtained."""

    __test__ = False  # not a pytest test class
    junit: JUnitRun
    how: str
    junit_path: str
    exit_status: int | None = None
    selection: str | None = None
    log: str = ""


def find_tests_dir(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The test folder: ``explicit`` (--tests), else ``tests/`` in the current folder, else None."""
    if explicit is not None:
        return Path(explicit).resolve()
    here = Path.cwd() / "tests"
    return here.resolve() if here.is_dir() else None


def run(config: Any, profile: ReportProfile, work: Path) -> TestsData | SectionResult:
    """Run pytest with a JUnit XML result (or read the given file); a "not run" section when it cannot."""
    if config.tests_junit:
        return TestsData(parse_junit(config.tests_junit), f"Read from the given JUnit file {config.tests_junit}.",
                         junit_path=os.fspath(config.tests_junit))
    if not config.run_tests:
        return not_run(ID, TITLE, "disabled (--no-tests); pass --tests-junit FILE to include a run")
    if os.environ.get(CHILD_ENV):
        return not_run(ID, TITLE, "this report was built inside the pytest run that genbench report launched; "
                                  "not recursing")
    tests_dir = find_tests_dir(getattr(config, "tests_dir", None))
    if tests_dir is None:
        return not_run(ID, TITLE, f"no tests/ folder in the current folder ({Path.cwd()}); run genbench report "
                                  "from the project's root, or pass --tests DIR or --tests-junit FILE")
    if not tests_dir.is_dir():
        return not_run(ID, TITLE, f"the test folder {tests_dir} does not exist; pass --tests DIR or --tests-junit FILE",
                       status="failed")
    root = tests_dir.parent  # pytest runs from the project root, so its configuration and conftest apply
    junit = work / "junit.xml"
    marker = profile.test_selection
    files = sorted({os.fspath(p.relative_to(root)) for pat in profile.test_files for p in tests_dir.glob(pat)}) \
        or [tests_dir.name]
    cmd = [sys.executable, "-m", "pytest", *files, "-m", marker, f"--junitxml={junit}", "-q",
           "-p", "no:cacheprovider", "--no-header", "-o", "junit_family=xunit1"]
    env = dict(os.environ, **{CHILD_ENV: "1"})
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=profile.test_timeout_s)
    except subprocess.TimeoutExpired as exc:
        return not_run(ID, TITLE, f"pytest -m {marker!r} exceeded {exc.timeout:.0f} s and was stopped",
                       status="failed")
    if not junit.is_file():
        res = not_run(ID, TITLE, f"pytest exited with status {proc.returncode} without a JUnit file", status="failed")
        res.section["log"] = (proc.stdout + proc.stderr)[-8000:]
        return res
    how = (f"Ran: pytest {' '.join(files)} -m \"{marker}\" in {root} (profile {profile.name}); exit status "
           f"{proc.returncode}.")
    if profile.test_files:
        how += (" To fit its time budget this profile runs the statistical tests of the samplers and of "
                "genbench.testing only (the GAN-quality and calibration tests repeat the GAN and calibration "
                f"sections); `genbench report --profile full` runs the default suite (pytest -m \"{get_profile('full').test_selection}\").")
    return TestsData(parse_junit(junit), how, junit_path=f"artifacts/{work.name}/junit.xml",
                     exit_status=proc.returncode, selection=marker, log=proc.stdout[-6000:])


def render(data: TestsData) -> SectionResult:
    """The section: counts, a no-failure check, failures, recorded statistical checks, slowest tests."""
    j = data.junit
    c = j.counts
    s = section(ID, TITLE)
    s["paragraphs"].append(data.how)
    s["details"].update({"counts": {"total": c.total, "passed": c.passed, "failed": c.failed, "errors": c.errors,
                                    "skipped": c.skipped},
                         "time_s": j.time_s, "junit": data.junit_path})
    if data.exit_status is not None:
        s["details"]["pytest_exit_status"] = data.exit_status
    if data.selection is not None:
        s["details"]["selection"] = data.selection
    s["tables"].append(table("test-counts", "Counts", ["total", "passed", "failed", "errors", "skipped", "time [s]"],
                             [[c.total, c.passed, c.failed, c.errors, c.skipped, round(j.time_s, 1)]]))
    s["checks"].append(check("test suite: no failures or errors", c.bad == 0, statistic=c.bad,
                             null_hypothesis="every selected test passes",
                             detail=f"{c.passed} passed, {c.failed} failed, {c.errors} errors, "
                                    f"{c.skipped} skipped of {c.total}"))
    if j.total_alpha is not None:
        s["paragraphs"].append(
            f"Error budget of this run (genbench's pytest plugin): {j.statistical_assertions} statistical assertions, "
            f"total alpha {j.total_alpha:.3g} — the probability that a correct genbench fails one of them by chance "
            "is at most that.")
        s["checks"].append(check("test suite: false-failure budget", None, statistic=j.total_alpha,
                                 label=f"α ≤ {j.total_alpha:.2g}",
                                 null_hypothesis="the sum of the declared α of the must-not-reject assertions and "
                                                 "1 − power of the must-reject ones",
                                 detail=f"{j.statistical_assertions} statistical assertions"))
    if j.failures:
        s["tables"].append(table("test-failures", f"Failures ({len(j.failures)})", ["test", "outcome", "message"],
                                 [[f.test, f.outcome, f.message] for f in j.failures]))
    if j.checks:
        rows = []
        for ck in j.checks:
            h0 = ("H0 not rejected" if ck.passed is True else "H0 rejected" if ck.passed is False
                  else "H0 verdict not recorded")
            rows.append([ck.test, ck.check, ck.statistic, ck.p_value, ck.alpha, ck.n, ck.detectable_effect, h0,
                         ck.outcome])
            # The verdict of a recorded check is the test's outcome: a test that must REJECT a
            # deliberately broken sampler passes exactly when H0 is rejected.
            s["checks"].append(check(ck.check, ck.outcome == "passed", statistic=ck.statistic, p_value=ck.p_value,
                                     alpha=ck.alpha,
                                     detail=h0 + (f" (n={ck.n})" if ck.n is not None else "")
                                            + f"; test {ck.test} {ck.outcome}"))
        s["tables"].append(table(
            "test-statistical", "Statistical tests (recorded by the tests with record_check)",
            ["test", "check", "statistic", "p-value", "α", "n", "detectable effect", "H0", "test outcome"], rows,
            note="A test expecting rejection (a deliberately broken input) passes when H0 is rejected."))
    slowest = sorted(j.cases, key=lambda x: -x.time_s)[:10]
    if slowest:
        s["tables"].append(table("test-slowest", "Slowest tests", ["test", "outcome", "time [s]"],
                                 [[x.test, x.outcome, round(x.time_s, 2)] for x in slowest]))
    if data.log:
        s["log"] = data.log
    return SectionResult(s)


def stage(config: Any, work: Path) -> SectionResult:
    """Run and render (the report's build calls this)."""
    data = run(config, get_profile(config.profile), work)
    return data if isinstance(data, SectionResult) else render(data)
