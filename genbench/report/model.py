"""The report's data model: plain JSON-able sections, checks and tables, plus figure bytes.

``report.json`` is exactly the ``report`` dict below and the HTML is rendered from that same dict
(figures aside), so every number in the page is the number in the JSON.

A section is a dict::

    {"id", "title", "status": "ok" | "not run" | "failed", "reason", "elapsed_s",
     "paragraphs": [str], "checks": [check], "tables": [table], "figures": [figure], "details": {}}

a check ``{"name", "passed": bool | None, "statistic", "p_value", "ci": [lo, hi] | None, "alpha",
"null_hypothesis", "detail"}``, a table ``{"id", "title", "columns": [str], "rows": [[cell]], "note", "folded"}``
and a figure ``{"id", "caption", "alt"}`` whose PNG bytes live in ``SectionResult.figures[id]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

STATUS_OK, STATUS_NOT_RUN, STATUS_FAILED = "ok", "not run", "failed"


@dataclass
class SectionResult:
    """One report section (JSON-able dict) and the PNG bytes of its figures, keyed by figure id."""

    section: dict[str, Any]
    figures: dict[str, bytes] = field(default_factory=dict)


def section(sid: str, title: str, *, status: str = STATUS_OK, reason: str | None = None) -> dict[str, Any]:
    """Return an empty section dict with the given id, title and status."""
    return {"id": sid, "title": title, "status": status, "reason": reason, "elapsed_s": None,
            "paragraphs": [], "checks": [], "tables": [], "figures": [], "details": {}}


def not_run(sid: str, title: str, reason: str, *, status: str = STATUS_NOT_RUN) -> SectionResult:
    """A section that did not run (or failed), stating why."""
    return SectionResult(section(sid, title, status=status, reason=reason))


def check(name: str, passed: bool | None, *, statistic: Any = None, p_value: Any = None,
          ci: Any = None, alpha: Any = None, null_hypothesis: str = "", detail: str = "",
          label: str | None = None) -> dict[str, Any]:
    """Return a check dict (``passed`` None means "no verdict": a measurement, shown with ``label``)."""
    return {"name": name, "passed": None if passed is None else bool(passed), "statistic": _num(statistic),
            "p_value": _num(p_value), "ci": None if ci is None else [_num(ci[0]), _num(ci[1])],
            "alpha": _num(alpha), "null_hypothesis": null_hypothesis, "detail": detail,
            "label": label}


def table(tid: str, title: str, columns: list[str], rows: list[list[Any]], note: str = "", *,
          folded: bool = False) -> dict[str, Any]:
    """Return a table dict; cells are numbers, strings, booleans or None. ``folded``: shown closed (long details)."""
    return {"id": tid, "title": title, "columns": list(columns),
            "rows": [[_cell(c) for c in r] for r in rows], "note": note, "folded": folded}


def figure(fid: str, caption: str, alt: str | None = None, *, after: str | None = None,
           pixel: bool = False) -> dict[str, Any]:
    """Return a figure reference (its PNG bytes go in ``SectionResult.figures[fid]``).

    ``after``: place it right after the table with that id; ``pixel``: upscale without smoothing
    (small raw images such as 28x28 digits).
    """
    return {"id": fid, "caption": caption, "alt": alt or caption, "after": after, "pixel": pixel}


def _num(x: Any) -> Any:
    """Plain float/int/bool/None for JSON; non-finite floats become None (JSON has no NaN)."""
    if x is None or isinstance(x, (bool, str)):
        return x
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, int):
        return x
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    return f if math.isfinite(f) else None


def _cell(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return [_cell(v) for v in x]
    return _num(x)


def fmt(x: Any) -> str:
    """The one way a value is printed in the HTML (tests compare the page to report.json with it)."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if x == 0:
            return "0"
        if x.is_integer() and abs(x) < 1e9:
            return str(int(x))
        a = abs(x)
        if 1e-3 <= a < 1e5:
            return f"{x:.4g}"
        return f"{x:.3e}"
    if isinstance(x, list):
        return "[" + ", ".join(fmt(v) for v in x) + "]"
    return str(x)


def rounded(x: Any, nd: int = 1) -> Any:
    """``x`` rounded to ``nd`` decimals when it is a number, else unchanged (for sentences)."""
    return round(float(x), nd) if isinstance(x, (int, float)) and not isinstance(x, bool) else x
