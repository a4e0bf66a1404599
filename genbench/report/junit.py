"""Reading pytest's JUnit XML into typed results: counts, failures with messages, recorded statistical checks.

Statistical tests record ``check.<name>.statistic|p_value|alpha|n|passed|detectable_effect`` as
JUnit properties (fixture ``record_check`` in tests/conftest.py); they are collected here.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbench.errors import DataError

__all__ = ["JUnitRun", "RecordedCheck", "TestCase", "TestCounts", "parse_junit"]

_MAX_MESSAGE = 4000  # a failure's text is cut here: the report must stay readable


def _value(v: str) -> Any:
    """Property values are strings in the XML; recover numbers and booleans."""
    if v in ("True", "False"):
        return v == "True"
    if v in ("None", ""):
        return None
    try:
        i = int(v)
        return i
    except ValueError:
        pass
    try:
        f = float(v)
        return f if math.isfinite(f) else None
    except ValueError:
        return v


def _nodeid(tc: ET.Element, cls: str, name: str) -> str:
    """pytest's node id (file::Class::name) from xunit1's file attribute, or from the classname."""
    f = tc.get("file")
    if f:
        module = f[:-3].replace("/", ".") if f.endswith(".py") else f
        inner = cls[len(module) + 1:] if cls.startswith(module + ".") else ""
        return "::".join(p for p in (f, inner, name) if p)
    return f"{cls}::{name}" if cls else name


@dataclass(frozen=True)
class TestCounts:
    """How many test cases ended each way."""

    __test__ = False  # not a pytest test class
    total: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0

    @property
    def bad(self) -> int:
        """Failures plus errors."""
        return self.failed + self.errors


@dataclass(frozen=True)
class TestCase:
    """One test case: pytest node id, outcome ("passed", "failed", "errors", "skipped"), time, message."""

    __test__ = False
    test: str
    outcome: str
    time_s: float
    message: str = ""


@dataclass(frozen=True)
class RecordedCheck:
    """A statistical check a test recorded as JUnit properties (``check.<name>.<field>``)."""

    test: str
    check: str
    outcome: str  # the test's outcome
    statistic: Any = None
    p_value: Any = None
    alpha: Any = None
    n: Any = None
    passed: bool | None = None  # H0 not rejected (None: not recorded)
    detectable_effect: Any = None


@dataclass(frozen=True)
class JUnitRun:
    """A parsed JUnit XML file: counts, total time, every case, the failed ones and the recorded checks."""

    counts: TestCounts
    time_s: float
    cases: list[TestCase] = field(default_factory=list)
    failures: list[TestCase] = field(default_factory=list)
    checks: list[RecordedCheck] = field(default_factory=list)
    # genbench's pytest plugin: declared statistical assertions and their total alpha (None: not recorded)
    statistical_assertions: int | None = None
    total_alpha: float | None = None


_CHECK_FIELDS = ("statistic", "p_value", "alpha", "n", "passed", "detectable_effect")


def parse_junit(path: str | os.PathLike[str]) -> JUnitRun:
    """Read a JUnit XML file (pytest's xunit1 or xunit2) into a ``JUnitRun``."""
    p = Path(path)
    try:
        root = ET.parse(p).getroot()
    except FileNotFoundError as exc:
        raise DataError(f"tests_junit={os.fspath(p)!r} does not exist") from exc
    except (ET.ParseError, OSError) as exc:
        raise DataError(f"tests_junit={os.fspath(p)!r} is not readable JUnit XML: {exc}") from exc
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    if root.tag not in ("testsuite", "testsuites"):
        raise DataError(f"tests_junit={os.fspath(p)!r}: root element <{root.tag}> is not <testsuite(s)>")
    counts = {"total": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    cases, failures, checks = [], [], []
    time_s = 0.0
    n_stat, total_alpha = None, None
    for suite in suites:
        time_s += float(suite.get("time", 0) or 0)
        for prop in suite.findall("properties/property"):
            name, value = prop.get("name", ""), _value(prop.get("value", ""))
            if name == "genbench.statistical_assertions" and isinstance(value, int):
                n_stat = (n_stat or 0) + value
            elif name == "genbench.total_alpha" and isinstance(value, (int, float)):
                total_alpha = (total_alpha or 0.0) + float(value)
        for tc in suite.iter("testcase"):
            name = tc.get("name", "")
            cls = tc.get("classname", "")
            nodeid = _nodeid(tc, cls, name)
            outcome, message = "passed", ""
            for tag, label in (("failure", "failed"), ("error", "errors"), ("skipped", "skipped")):
                el = tc.find(tag)
                if el is not None:
                    outcome = label
                    message = (el.get("message") or "").strip()
                    text = (el.text or "").strip()
                    if label != "skipped" and text:  # the summary line first, then the traceback
                        message = f"{message}\n\n{text}" if message else text
                    break
            counts["total"] += 1
            counts[outcome] += 1
            case = TestCase(test=nodeid, outcome=outcome, time_s=float(tc.get("time", 0) or 0),
                            message=message[:_MAX_MESSAGE])
            cases.append(case)
            if outcome in ("failed", "errors"):
                failures.append(case)
            props = {}
            for prop in tc.iter("property"):
                props[prop.get("name", "")] = _value(prop.get("value", ""))
            by_check: dict[str, dict[str, Any]] = {}
            for key, val in props.items():
                if key.startswith("check.") and key.count(".") >= 2:
                    cname, field = key[len("check."):].rsplit(".", 1)
                    by_check.setdefault(cname, {})[field] = val
            for cname, fields in by_check.items():
                known = {k: v for k, v in fields.items() if k in _CHECK_FIELDS}
                if "passed" in known and not isinstance(known["passed"], bool):
                    known["passed"] = None
                checks.append(RecordedCheck(test=nodeid, check=cname, outcome=outcome, **known))
    return JUnitRun(counts=TestCounts(**counts), time_s=time_s, cases=cases, failures=failures, checks=checks,
                    statistical_assertions=n_stat, total_alpha=total_alpha)
