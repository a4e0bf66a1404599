"""genbench's pytest plugin: the false-failure budget of a test run, and resources a run must have.

Installed with genbench (entry point ``pytest11``, name ``genbench``), so any project gets it:

* ``@pytest.mark.statistical(alpha=..., power=...)`` declares the assertions of a test whose outcome
  is random under a correct implementation: ``alpha`` (a float or a list) for each must-not-reject
  assertion, ``power`` (a float or a list) for each must-reject assertion, which counts ``1 - power``.
  A ``statistical`` marker that declares neither is a usage error.
* The ``record_check`` fixture writes a genbench ``CheckResult`` into the JUnit XML and can declare
  it instead of the marker: ``record_check(res, declare=True)`` counts ``res.alpha``,
  ``record_check(res, power=p)`` counts ``1 - p``; ``record_check.declare(alpha=..., power=...)``
  declares without a result.
* ``declare_current(alpha=..., power=...)`` declares for the test whose body is running, from library
  code that has no fixture (``genbench.conformance``'s ``report.raise_if_failed()`` counts its alpha so).
* At the end of the session one terminal-summary line, ``genbench: N statistical assertions, total
  alpha A``, and the same figures as JUnit ``<testsuite>`` properties (each test's own share is a
  ``<testcase>`` property, ``genbench.alpha``). N counts the declared
  assertions of the tests that ran (skipped and deselected tests count nothing); A is the sum of
  their alphas and of ``1 - power``: by the union bound, an upper bound on the probability that a
  correct implementation fails the run.
* ``GENBENCH_SEED_OFFSET=K`` re-rolls the fixed seeds of tests that use
  ``genbench.testing.offset_seed``; the header shows K and a bad value stops the run at start.
* ``missing_resource(reason)`` skips a test whose data or optional package is absent, and fails it
  instead when ``GENBENCH_REQUIRE_DATA=1`` (set it in CI, where nothing may be silently skipped).

Projects that already use a marker named ``statistical`` for something else set the ini option
``genbench_undeclared_statistical = warn`` to get a warning instead of the usage error.

This module imports only pytest and the standard library (it loads in every pytest session of every
project that has genbench installed).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from typing import Any, NoReturn

import pytest

from genbench._seed_offset import SEED_OFFSET_ENV, seed_offset
from genbench.errors import ParameterError

__all__ = ["REQUIRE_DATA_ENV", "declare_current", "missing_resource", "require_data", "require_module", "summary_line"]

REQUIRE_DATA_ENV = "GENBENCH_REQUIRE_DATA"
MARKER = "statistical"
UNDECLARED_INI = "genbench_undeclared_statistical"
# JUnit <testsuite> property names.
PROP_COUNT = "genbench.statistical_assertions"
PROP_ALPHA = "genbench.total_alpha"
PROP_TEST_ALPHA = "genbench.alpha"  # per <testcase>: the alpha this test declared
# The declarations travel on the call-phase TestReport under this attribute (pytest-xdist serialises
# a report's extra attributes, so the controller sums what the workers ran).
REPORT_ATTR = "genbench_statistical"

Declaration = tuple[str, float]  # ("alpha", a) counts a; ("power", p) counts 1 - p
_MARKED = pytest.StashKey[list[Declaration]]()
_RUNTIME = pytest.StashKey[list[Declaration]]()
# The items whose call phase is running, as a stack: each session pushes None while it runs, so a
# nested session (pytester's in-process runs) never declares into the outer session's running test.
_CURRENT: list[pytest.Item | None] = []


class GenbenchMarkerWarning(pytest.PytestWarning):
    """A ``statistical`` marker declares nothing (only under ``genbench_undeclared_statistical = warn``)."""


def summary_line(count: int, total_alpha: float) -> str:
    """The plugin's terminal-summary line for ``count`` assertions of total alpha ``total_alpha``."""
    return f"genbench: {count} statistical assertions, total alpha {total_alpha:.6g}"


# ----------------------------------------------------------------------------- declarations


def _values(name: str, value: Any, *, closed_at_one: bool) -> list[float]:
    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items:
        raise ParameterError(f"statistical marker: {name} must be a number or a non-empty list of numbers")
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
            raise ParameterError(f"statistical marker: {name} must be a number in (0, 1), got {v!r}")
        ok = 0.0 < float(v) <= 1.0 if closed_at_one else 0.0 < float(v) < 1.0
        if not ok:
            allowed = "(0, 1]" if closed_at_one else "(0, 1)"
            raise ParameterError(f"statistical marker: {name} must be in {allowed}, got {v!r}")
        out.append(float(v))
    return out


def declarations(alpha: Any = None, power: Any = None) -> list[Declaration]:
    """The assertions declared by ``alpha=`` and ``power=`` (each a number or a list of numbers)."""
    if alpha is None and power is None:
        raise ParameterError(
            "statistical marker declares nothing: give alpha= (must-not-reject assertions) "
            "and/or power= (must-reject assertions), e.g. @pytest.mark.statistical(alpha=1e-4)"
        )
    out: list[Declaration] = []
    if alpha is not None:
        out += [("alpha", a) for a in _values("alpha", alpha, closed_at_one=False)]
    if power is not None:
        # power 1 is allowed: a planned power that rounds to 1 in double precision costs nothing.
        out += [("power", p) for p in _values("power", power, closed_at_one=True)]
    return out


def _marker_declarations(item: pytest.Item) -> list[Declaration]:
    out: list[Declaration] = []
    for marker in item.iter_markers(MARKER):
        if marker.args:
            raise ParameterError(
                f"statistical marker takes keywords alpha= and power= only, got positional {marker.args!r}"
            )
        unknown = set(marker.kwargs) - {"alpha", "power"}
        if unknown:
            raise ParameterError(f"statistical marker takes alpha= and power= only, got {', '.join(sorted(unknown))}")
        if not marker.kwargs:
            continue  # a bare marker: judged below, once for the item
        out += declarations(**marker.kwargs)
    return out


# ----------------------------------------------------------------------------- hooks


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ini option that says what an undeclared ``statistical`` marker is."""
    parser.addini(
        UNDECLARED_INI,
        "what a 'statistical' marker without alpha= or power= is: 'error' (a usage error) or 'warn'",
        default="error",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``statistical`` marker, check the seed-offset and required-data settings, start the alpha budget."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(alpha=..., power=...): a test whose outcome is random under a correct implementation; "
        "alpha (float or list) per must-not-reject assertion, power (float or list) per must-reject one "
        "(counts 1 - power). Summed by genbench's plugin into the run's total alpha.",
    )
    try:
        seed_offset()
        require_data()
    except ParameterError as exc:
        raise pytest.UsageError(str(exc)) from None
    mode = config.getini(UNDECLARED_INI)
    if mode not in ("error", "warn"):
        raise pytest.UsageError(f"{UNDECLARED_INI} must be 'error' or 'warn', got {mode!r}")
    if not config.pluginmanager.has_plugin(_BUDGET_NAME):
        config.pluginmanager.register(_Budget(config, mode), _BUDGET_NAME)


_BUDGET_NAME = "genbench-budget"


class _Budget:
    """The session's hooks: declarations read at collection, counted as tests run, reported at the end."""

    def __init__(self, config: pytest.Config, mode: str) -> None:
        self.config = config
        self.mode = mode
        self.count = 0
        self.terms: list[float] = []

    @property
    def total_alpha(self) -> float:
        return math.fsum(self.terms)

    def pytest_report_header(self) -> str:
        missing = "fail" if require_data() else "skip"
        return f"genbench: seed offset {seed_offset()} ({SEED_OFFSET_ENV}), missing resources {missing} ({REQUIRE_DATA_ENV})"

    @pytest.hookimpl(trylast=True)  # after -m / -k deselection: judge only the tests that will run
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        errors = []
        for item in items:
            try:
                decl = _marker_declarations(item)
            except ParameterError as exc:
                errors.append(f"{item.nodeid}: {exc}")
                continue
            if not decl and item.get_closest_marker(MARKER) is not None:
                msg = (
                    "statistical marker declares nothing: give alpha= (must-not-reject "
                    "assertions) and/or power= (must-reject assertions)"
                )
                if self.mode == "error":
                    errors.append(f"{item.nodeid}: {msg}")
                else:
                    item.warn(GenbenchMarkerWarning(msg))
            item.stash[_MARKED] = decl
        if errors:
            raise pytest.UsageError("\n".join(errors))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):  # type: ignore[no-untyped-def]
        _CURRENT.append(item)  # for declare_current
        try:
            yield
        finally:
            _CURRENT.pop()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
        outcome = yield
        if call.when == "call":
            decl = item.stash.get(_MARKED, []) + item.stash.get(_RUNTIME, [])
            if decl:
                setattr(outcome.get_result(), REPORT_ATTR, [list(d) for d in decl])
                # The test's own share, as a JUnit <testcase> property (written from the teardown report).
                share = math.fsum(v if k == "alpha" else 1.0 - v for k, v in decl)
                item.user_properties.append((PROP_TEST_ALPHA, f"{share:.6g}"))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        decl = getattr(report, REPORT_ATTR, None)
        if report.when != "call" or report.skipped or not decl:
            return
        for kind, value in decl:
            self.count += 1
            self.terms.append(float(value) if kind == "alpha" else 1.0 - float(value))

    def pytest_sessionstart(self) -> None:
        _CURRENT.append(None)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        if None in _CURRENT:  # this session's marker: drop it and anything a crash left above it
            del _CURRENT[len(_CURRENT) - 1 - _CURRENT[::-1].index(None) :]

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        # tryfirst: before the junitxml plugin's own sessionfinish writes the file.
        try:
            from _pytest.junitxml import xml_key  # pytest's key for its LogXML object (pytest >= 7)
        except ImportError:  # pragma: no cover - such a pytest still gets the terminal line
            return
        xml = self.config.stash.get(xml_key, None)
        if xml is not None:
            xml.add_global_property(PROP_COUNT, self.count)
            xml.add_global_property(PROP_ALPHA, f"{self.total_alpha:.6g}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_line(summary_line(self.count, self.total_alpha))


# ----------------------------------------------------------------------------- fixtures and helpers


class CheckRecorder:
    """Callable given by the ``record_check`` fixture (see the module docstring)."""

    def __init__(self, node: pytest.Item) -> None:
        self._node = node

    def __call__(self, result: Any, *, declare: bool = False, power: float | None = None) -> Any:
        """Record ``result`` in the JUnit XML; with ``declare`` or ``power``, also count it; return it."""
        prefix = f"check.{result.name}"
        props = self._node.user_properties
        props.append((f"{prefix}.statistic", result.statistic))
        props.append((f"{prefix}.p_value", result.p_value))
        props.append((f"{prefix}.alpha", result.alpha))
        props.append((f"{prefix}.n", result.n))
        props.append((f"{prefix}.passed", result.passed))
        if getattr(result, "detectable_effect", None) is not None:
            props.append((f"{prefix}.detectable_effect", result.detectable_effect))
        if power is not None:
            self.declare(power=power)
        elif declare:
            self.declare(alpha=result.alpha)
        return result

    def declare(self, *, alpha: Any = None, power: Any = None) -> None:
        """Count assertions of this test at run time, as the marker's ``alpha=`` / ``power=`` would."""
        try:
            decl = declarations(alpha, power)
        except ParameterError as exc:
            raise ParameterError(str(exc).replace("statistical marker", "record_check.declare")) from None
        self._node.stash.setdefault(_RUNTIME, []).extend(decl)


def declare_current(*, alpha: Any = None, power: Any = None) -> bool:
    """Count assertions for the test whose body is running (as ``record_check.declare``); False outside one."""
    if not _CURRENT or _CURRENT[-1] is None:
        return False
    decl = declarations(alpha, power)
    _CURRENT[-1].stash.setdefault(_RUNTIME, []).extend(decl)
    return True


@pytest.fixture
def record_check(request: pytest.FixtureRequest) -> CheckRecorder:
    """Record a CheckResult's statistic, p-value, alpha, n and verdict in the JUnit XML; optionally declare it."""
    return CheckRecorder(request.node)


def require_data() -> bool:
    """True when ``GENBENCH_REQUIRE_DATA=1``: a missing resource fails the test instead of skipping it."""
    raw = os.environ.get(REQUIRE_DATA_ENV, "").strip()
    if raw not in ("", "0", "1"):
        raise ParameterError(f"{REQUIRE_DATA_ENV} must be 0 or 1 (or unset), got {raw!r}")
    return raw == "1"


def missing_resource(reason: str) -> NoReturn:
    """Skip the current test for an absent resource, or fail it when ``GENBENCH_REQUIRE_DATA=1``."""
    if require_data():
        pytest.fail(f"{reason} ({REQUIRE_DATA_ENV}=1: a missing resource fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def require_module(name: str, reason: str | None = None) -> Any:
    """Import and return module ``name``; a missing one is a ``missing_resource``."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing_resource(reason or f"optional package {name!r} is not installed ({exc})")

