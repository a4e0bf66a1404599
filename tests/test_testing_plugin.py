"""Tests of genbench's pytest plugin (genbench/pytest_plugin.py) and of ``offset_seed``.

Each test runs a small throw-away project through pytester: the plugin is loaded there as in any
project, through its ``pytest11`` entry point. Nothing here is random.
"""

from __future__ import annotations

import importlib.metadata
import xml.etree.ElementTree as ET

import pytest

import genbench.pytest_plugin as plugin
from genbench.errors import ParameterError
from genbench.testing import offset_seed

PROJECT = """
import pytest

@pytest.mark.statistical(alpha=1e-3)
def test_one():
    pass

@pytest.mark.statistical(alpha=[1e-3, 2e-3], power=0.99)
def test_three():
    pass

@pytest.mark.statistical(power=[0.999, 1.0])
def test_fails():
    assert False

@pytest.mark.statistical(alpha=0.25)
def test_skipped():
    pytest.skip("not run")

@pytest.mark.statistical(alpha=0.5)
@pytest.mark.slow
def test_deselected():
    pass

@pytest.mark.statistical(alpha=1e-4)
@pytest.mark.parametrize("k", [1, 2])
def test_param(k):
    pass

def test_plain(record_check):
    pass
"""
# Ran: one + three(3) + fails(2) + param(2 x 1) = 8 assertions; 1e-3 + 3e-3 + 0.01 + 0.001 + 0 + 2e-4.
EXPECTED_LINE = "genbench: 8 statistical assertions, total alpha 0.0152"


# Other installed plugins stay out of the throw-away runs: pytester re-imports whatever a run imports,
# and hypothesis alone takes seconds to import on a loaded machine.
QUIET = ("-p", "no:hypothesispytest", "-p", "no:benchmark")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in-process on the throw-away project, without unrelated plugins."""
    return pytester.runpytest(*QUIET, *args)


def run_subprocess(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in a fresh interpreter (plugins loaded from entry points, as in any project)."""
    return pytester.runpytest_subprocess(*QUIET, *args)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n")
    pytester.makepyfile(test_project=PROJECT)
    return pytester


def test_entry_point_names_the_plugin_module() -> None:
    """The wheel's metadata registers genbench.pytest_plugin under pytest11 as 'genbench'."""
    eps = [ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.name == "genbench"]
    assert [ep.value for ep in eps] == ["genbench.pytest_plugin"]


def test_summary_line_sums_alpha_and_one_minus_power_of_tests_that_ran(project: pytest.Pytester) -> None:
    """Skipped and deselected tests count nothing; a failing test counts; parametrized cases count each."""
    res = run_subprocess(project, "-m", "not slow", "--junitxml=out.xml")
    res.assert_outcomes(passed=5, failed=1, skipped=1, deselected=1)
    lines = [ln for ln in res.outlines if ln.startswith("genbench: ") and "statistical" in ln]
    assert lines == [EXPECTED_LINE]
    props = {p.get("name"): p.get("value") for p in ET.parse(project.path / "out.xml").getroot().iter("property")}
    assert props[plugin.PROP_COUNT] == "8"
    assert props[plugin.PROP_ALPHA] == "0.0152"
    shares = {case.get("name"): [p.get("value") for p in case.iter("property") if p.get("name") == plugin.PROP_TEST_ALPHA]
              for case in ET.parse(project.path / "out.xml").getroot().iter("testcase")}
    assert shares["test_three"] == ["0.013"] and shares["test_fails"] == ["0.001"] and shares["test_plain"] == []


def test_summary_is_the_same_under_xdist(project: pytest.Pytester) -> None:
    """Workers' declarations reach the controller on the reports: the same line with -n 2."""
    pytest.importorskip("xdist")
    res = run_subprocess(project, "-m", "not slow", "-n", "2")
    assert EXPECTED_LINE in res.outlines


def test_header_states_the_seed_offset(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's header says which seeds were used, so a red nightly run can be reproduced."""
    monkeypatch.setenv("GENBENCH_SEED_OFFSET", "3")
    res = run(project, "-m", "not slow")
    res.stdout.fnmatch_lines(["genbench: seed offset 3 (GENBENCH_SEED_OFFSET)*"])


@pytest.mark.parametrize(
    "marker, message",
    [
        ("statistical", "declares nothing"),
        ("statistical(alpha=0)", "alpha must be in (0, 1)"),
        ("statistical(alpha=1.5)", "alpha must be in (0, 1)"),
        ("statistical(power=[])", "non-empty list"),
        ("statistical(power=1.01)", "power must be in (0, 1]"),
        ("statistical(alpha='0.1')", "alpha must be a number"),
        ("statistical(0.01)", "keywords alpha= and power= only"),
        ("statistical(beta=0.1)", "alpha= and power= only, got beta"),
    ],
)
def test_bad_marker_is_a_usage_error(pytester: pytest.Pytester, marker: str, message: str) -> None:
    """A statistical marker must declare at least one valid alpha or power; otherwise the run stops."""
    pytester.makepyfile(f"import pytest\n@pytest.mark.{marker}\ndef test_x():\n    pass\n")
    res = run(pytester)
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert message in res.stderr.str()


def test_undeclared_marker_only_warns_when_configured(pytester: pytest.Pytester) -> None:
    """Projects with their own 'statistical' marker opt into a warning instead of the usage error."""
    pytester.makeini("[pytest]\ngenbench_undeclared_statistical = warn\n")
    pytester.makepyfile("import pytest\n@pytest.mark.statistical\ndef test_x():\n    pass\n")
    res = run(pytester)
    res.assert_outcomes(passed=1, warnings=1)
    res.stdout.fnmatch_lines(["*GenbenchMarkerWarning: statistical marker declares nothing*",
                              "genbench: 0 statistical assertions, total alpha 0"])


def test_record_check_records_and_declares(pytester: pytest.Pytester) -> None:
    """record_check writes the result into the JUnit testcase and counts it when asked to."""
    pytester.makepyfile(
        """
        from types import SimpleNamespace as R

        def result(alpha):
            return R(name="c", statistic=1.0, p_value=0.5, alpha=alpha, n=10, passed=True, detectable_effect=None)

        def test_declares(record_check):
            record_check(result(0.001), declare=True)
            record_check(result(0.01), power=0.999)
            record_check(result(0.2))               # recorded, not counted
            record_check.declare(alpha=[1e-4, 1e-4])
        """
    )
    res = run(pytester, "--junitxml=out.xml", "-o", "junit_family=xunit1")
    res.assert_outcomes(passed=1)
    res.stdout.fnmatch_lines(["genbench: 4 statistical assertions, total alpha 0.0022"])
    names = [p.get("name") for p in ET.parse(pytester.path / "out.xml").getroot().iter("property")]
    assert names.count("check.c.p_value") == 3


def test_declare_current_counts_for_the_running_test_only(pytester: pytest.Pytester) -> None:
    """declare_current() (for library code without the fixture) counts for the test whose body runs;
    outside a test body it declares nothing and says so."""
    pytester.makepyfile(
        """
        import pytest
        from genbench.pytest_plugin import declare_current

        assert declare_current(alpha=0.5) is False   # at import: no test is running

        @pytest.fixture
        def fx():
            assert declare_current(alpha=0.25) is False   # setup is not the body
            yield

        def test_a(fx):
            assert declare_current(alpha=1e-3, power=0.999) is True

        def test_b():
            pass
        """
    )
    res = run(pytester, "--junitxml=out.xml")
    res.assert_outcomes(passed=2)
    res.stdout.fnmatch_lines(["genbench: 2 statistical assertions, total alpha 0.002"])


def test_record_check_declare_rejects_bad_values(pytester: pytest.Pytester) -> None:
    """record_check.declare() validates like the marker and names itself in the error."""
    pytester.makepyfile(
        """
        import pytest
        from genbench.errors import ParameterError

        def test_bad(record_check):
            with pytest.raises(ParameterError, match="record_check.declare: alpha must be in"):
                record_check.declare(alpha=2.0)
            with pytest.raises(ParameterError, match="declares nothing"):
                record_check.declare()
        """
    )
    run(pytester).assert_outcomes(passed=1)


def test_plugin_is_registered_once_in_this_suite(pytestconfig: pytest.Config) -> None:
    """genbench's own suite gets the plugin from the entry point only (no second registration by conftest)."""
    pm = pytestconfig.pluginmanager
    assert pm.get_plugin("genbench") is plugin
    assert [p for p in pm.get_plugins() if p is plugin] == [plugin]
    assert pm.has_plugin(plugin._BUDGET_NAME)


def test_loads_by_name_when_autoload_is_disabled(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 with '-p genbench' (the entry point's name) loads it once."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    res = run_subprocess(project, "-p", "genbench", "-m", "not slow")
    assert EXPECTED_LINE in res.outlines


# ----------------------------------------------------------------------------- seed offset


def test_offset_seed_shifts_by_k_strides(monkeypatch: pytest.MonkeyPatch) -> None:
    """K = 0 keeps the seed; each K moves every base seed by K * 100 000, so offsets never collide."""
    monkeypatch.delenv("GENBENCH_SEED_OFFSET", raising=False)
    assert offset_seed(42) == 42
    seen = set()
    for k in range(4):
        monkeypatch.setenv("GENBENCH_SEED_OFFSET", str(k))
        seeds = {offset_seed(b) for b in (0, 1, 42, 99_999)}
        assert offset_seed(7) == 7 + k * 100_000
        assert not seeds & seen
        seen |= seeds
    monkeypatch.setenv("GENBENCH_SEED_OFFSET", str((2**32 - 100_000) // 100_000))
    assert offset_seed(99_999) < 2**32


@pytest.mark.parametrize("raw", ["-1", "1.5", "x", "1e3", "99999999", "٣"])
def test_bad_seed_offset_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    """GENBENCH_SEED_OFFSET must be a decimal integer in range; the error names the variable."""
    monkeypatch.setenv("GENBENCH_SEED_OFFSET", raw)
    with pytest.raises(ParameterError, match="GENBENCH_SEED_OFFSET must be"):
        offset_seed(0)


@pytest.mark.parametrize("base", [-1, 100_000, 1.0, True, "3"])
def test_bad_base_seed_is_a_clear_error(base: object) -> None:
    """Base seeds lie in [0, 100 000): larger ones could collide with another offset's seeds."""
    with pytest.raises(ParameterError, match=r"base must be an integer seed in \[0, 100000\)"):
        offset_seed(base)  # type: ignore[arg-type]


def test_bad_seed_offset_stops_the_run_at_start(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mistyped offset is one usage error before any test runs, not a failure in every test."""
    monkeypatch.setenv("GENBENCH_SEED_OFFSET", "one")
    res = run(project)
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert "GENBENCH_SEED_OFFSET must be a non-negative integer" in res.stderr.str()


# ----------------------------------------------------------------------------- required resources

RESOURCE_PROJECT = """
from genbench.pytest_plugin import missing_resource, require_module

def test_data():
    missing_resource("no digits here")

def test_module():
    require_module("genbench_no_such_module")

def test_present():
    assert require_module("json").dumps(1) == "1"
"""


def test_missing_resource_skips_by_default(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without GENBENCH_REQUIRE_DATA an absent resource is a skip with its reason."""
    monkeypatch.delenv("GENBENCH_REQUIRE_DATA", raising=False)
    pytester.makepyfile(RESOURCE_PROJECT)
    res = run(pytester, "-rs")
    res.assert_outcomes(passed=1, skipped=2)
    res.stdout.fnmatch_lines(["*no digits here*"])


def test_missing_resource_fails_when_required(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """GENBENCH_REQUIRE_DATA=1 (CI) turns each missing-resource skip into a failure naming the resource."""
    monkeypatch.setenv("GENBENCH_REQUIRE_DATA", "1")
    pytester.makepyfile(RESOURCE_PROJECT)
    res = run(pytester)
    res.assert_outcomes(passed=1, failed=2)
    res.stdout.fnmatch_lines(["*no digits here (GENBENCH_REQUIRE_DATA=1: a missing resource fails*",
                              "*genbench_no_such_module*"])


def test_bad_require_data_value_is_a_usage_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only 0, 1 or unset: 'yes' or 'true' are refused rather than silently read as 'skip'."""
    monkeypatch.setenv("GENBENCH_REQUIRE_DATA", "yes")
    pytester.makepyfile(RESOURCE_PROJECT)
    res = run(pytester)
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert "GENBENCH_REQUIRE_DATA must be 0 or 1" in res.stderr.str()
