"""Self-contained HTML page from the report dict: inline CSS, images as base64 data: URIs, no JS.

Every piece of text that comes from outside (paths, test names, failure messages, check names) goes
through ``esc`` (``html.escape`` with quotes), so a hostile string shows as text and never runs.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from typing import Any

from genbench.report.model import STATUS_FAILED, STATUS_NOT_RUN, STATUS_OK, fmt

__all__ = ["esc", "render_html", "render_index", "overall_verdict"]

VERDICT_PASS, VERDICT_FAIL, VERDICT_INCOMPLETE = "PASS", "FAIL", "INCOMPLETE"
SUMMARY_OPEN_MAX = 15  # sections with more checks than this start folded in the summary (unless one fails)

_CSS = """
:root { --ok:#1a7f37; --bad:#c62828; --na:#8a6d00; --muted:#555; --line:#d0d7de; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1f2328;
       line-height: 1.45; font-size: 15px; }
header { background: #24292f; color: #fff; padding: 16px 28px; }
header h1 { margin: 0 0 4px 0; font-size: 24px; }
header .meta { color: #c9d1d9; font-size: 13px; }
nav { background: var(--bg); border-bottom: 1px solid var(--line); padding: 8px 28px; font-size: 14px; }
nav a { margin-right: 16px; color: #0550ae; text-decoration: none; }
main { padding: 8px 28px 40px 28px; max-width: 1500px; }
h2 { border-bottom: 2px solid var(--line); padding-bottom: 4px; margin-top: 34px; }
h3 { margin-bottom: 6px; }
table { border-collapse: collapse; margin: 8px 0 14px 0; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
td.long { white-space: pre-wrap; word-break: break-word; max-width: 900px; font-size: 12px; }
td.num, .badge { white-space: nowrap; }
th { background: var(--bg); }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: ui-monospace, Menlo, Consolas, monospace; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: 600; font-size: 13px;
         color: #fff; }
.badge.pass, .badge.ok { background: var(--ok); }
.badge.fail, .badge.failed { background: var(--bad); }
.badge.incomplete, .badge.notrun, .badge.info { background: var(--na); }
header .badge { font-size: 16px; vertical-align: middle; margin-left: 10px; }
tr.fail td { background: #ffebe9; }
.note { color: var(--muted); font-size: 13px; }
.reason { border-left: 4px solid var(--na); background: #fff8c5; padding: 8px 12px; }
.reason.failed { border-left-color: var(--bad); background: #ffebe9; }
figure { margin: 12px 0 20px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
figure img.pixel { image-rendering: pixelated; width: 100%; max-width: 640px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; max-width: 1100px; }
pre { background: var(--bg); border: 1px solid var(--line); padding: 8px; overflow-x: auto; font-size: 12px;
      white-space: pre-wrap; word-break: break-word; max-height: 320px; }
details summary { cursor: pointer; }
#summary details { margin: 6px 0; }
#summary summary { padding: 4px 0; }
"""


def esc(x: Any) -> str:
    """HTML-escape any value's text (quotes included), after formatting numbers with ``fmt``."""
    return html.escape(x if isinstance(x, str) else fmt(x), quote=True)


def overall_verdict(report: Mapping[str, Any]) -> str:
    """FAIL if any check failed or stage failed; INCOMPLETE if a stage did not run; else PASS."""
    sections = report.get("sections", [])
    if any(s["status"] == STATUS_FAILED for s in sections):
        return VERDICT_FAIL
    if any(c.get("passed") is False for s in sections for c in s.get("checks", [])):
        return VERDICT_FAIL
    if any(s["status"] == STATUS_NOT_RUN and not s.get("optional") for s in sections):
        return VERDICT_INCOMPLETE
    return VERDICT_PASS


def _badge(passed: bool | None, label: str | None = None) -> str:
    if passed is None:
        return f'<span class="badge info">{esc(label or "info")}</span>'
    return '<span class="badge pass">pass</span>' if passed else '<span class="badge fail">FAIL</span>'


def _status_badge(status: str) -> str:
    cls = {STATUS_OK: "ok", STATUS_FAILED: "failed", STATUS_NOT_RUN: "notrun"}.get(status, "info")
    return f'<span class="badge {cls}">{esc(status)}</span>'


def _td(x: Any) -> str:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        cls = ' class="num"'
    elif isinstance(x, str) and (len(x) > 120 or "\n" in x):  # messages, tracebacks: keep their lines
        cls = ' class="long"'
    else:
        cls = ""
    return f"<td{cls}>{esc(x)}</td>"


def _table(t: Mapping[str, Any]) -> str:
    out = []
    folded = bool(t.get("folded"))
    if folded:  # long detail tables start closed: the page stays readable, every row is still there
        out.append(f"<details><summary><b>{esc(t.get('title') or t['id'])}</b> ({len(t['rows'])} rows)</summary>")
    elif t.get("title"):
        out.append(f"<h3>{esc(t['title'])}</h3>")
    out.append(f'<table data-table="{esc(t["id"])}"><thead><tr>')
    out.extend(f"<th>{esc(c)}</th>" for c in t["columns"])
    out.append("</tr></thead><tbody>")
    for row in t["rows"]:
        out.append("<tr>" + "".join(_td(c) for c in row) + "</tr>")
    out.append("</tbody></table>")
    if t.get("note"):
        out.append(f'<p class="note">{esc(t["note"])}</p>')
    if folded:
        out.append("</details>")
    return "".join(out)


def _img(fid: str, png: bytes | None, alt: str, pixel: bool = False) -> str:
    if png is None:
        return f'<p class="reason">figure {esc(fid)} missing</p>'
    data = base64.b64encode(png).decode("ascii")
    cls = ' class="pixel"' if pixel else ""
    return f'<img{cls} id="fig-{esc(fid)}" alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def _checks_table(checks: list[Mapping[str, Any]], with_section: bool = False, table_id: str = "checks") -> str:
    cols = (["Section"] if with_section else []) + ["Check", "Verdict", "Statistic", "p-value", "95% CI", "α",
                                                   "Null hypothesis / detail"]
    out = [f'<table data-table="{esc(table_id)}"><thead><tr>' + "".join(f"<th>{esc(c)}</th>" for c in cols)
           + "</tr></thead><tbody>"]
    for c in checks:
        cls = ' class="fail"' if c.get("passed") is False else ""
        h0 = c.get("null_hypothesis") or ""
        detail = c.get("detail") or ""
        text = esc(h0) + ("<br>" if h0 and detail else "") + (f'<span class="note">{esc(detail)}</span>' if detail else "")
        out.append(f"<tr{cls}>" + (f"<td>{esc(c.get('section', ''))}</td>" if with_section else "")
                   + f"<td>{esc(c['name'])}</td><td>{_badge(c.get('passed'), c.get('label'))}</td>"
                   + _td(c.get("statistic")) + _td(c.get("p_value"))
                   + f'<td class="num">{esc(c["ci"]) if c.get("ci") else esc(None)}</td>'
                   + _td(c.get("alpha")) + f"<td>{text}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _section(s: Mapping[str, Any], figures: Mapping[str, bytes]) -> str:
    out = [f'<section id="{esc(s["id"])}"><h2>{esc(s["title"])} {_status_badge(s["status"])}']
    if s.get("elapsed_s") is not None:
        out.append(f' <span class="note">({esc(s["elapsed_s"])} s)</span>')
    out.append("</h2>")
    if s["status"] != STATUS_OK:
        cls = "reason failed" if s["status"] == STATUS_FAILED else "reason"
        out.append(f'<p class="{cls}">{esc(s["status"])}: {esc(s.get("reason") or "no reason given")}</p>')
    for p in s.get("paragraphs", []):
        out.append(f"<p>{esc(p)}</p>")
    if s.get("checks"):
        out.append("<h3>Checks</h3>" + _checks_table(s["checks"]))
    # Figures without an anchor come first (the headline pictures); the others follow their table.
    for f in s.get("figures", []):
        if not f.get("after"):
            out.append(_figure(f, figures))
    placed = {f["id"] for f in s.get("figures", []) if not f.get("after")}
    figs = {f["id"]: f for f in s.get("figures", [])}
    for t in s.get("tables", []):
        # A figure listed with "after": table id is placed right after that table.
        out.append(_table(t))
        for f in s.get("figures", []):
            if f.get("after") == t["id"]:
                out.append(_figure(f, figures))
                placed.add(f["id"])
    for fid, f in figs.items():
        if fid not in placed:
            out.append(_figure(f, figures))
    if s.get("log"):
        out.append(f"<details><summary>log</summary><pre>{esc(s['log'])}</pre></details>")
    out.append("</section>")
    return "".join(out)


def _figure(f: Mapping[str, Any], figures: Mapping[str, bytes]) -> str:
    return (f"<figure>{_img(f['id'], figures.get(f['id']), f.get('alt') or f['caption'], bool(f.get('pixel')))}"
            f"<figcaption>{esc(f['caption'])}</figcaption></figure>")


def render_html(report: Mapping[str, Any], figures: Mapping[str, bytes]) -> str:
    """Return the whole report page as one self-contained HTML string."""
    verdict = report.get("verdict") or overall_verdict(report)
    sections = report.get("sections", [])
    env = report.get("environment", {})
    all_checks = [dict(c, section=s["title"]) for s in sections for c in s.get("checks", [])]
    n_pass = sum(c.get("passed") is True for c in all_checks)
    n_fail = sum(c.get("passed") is False for c in all_checks)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No network: forbid every external fetch; data: images only.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        '<link rel="icon" href="data:,">',  # no favicon request (it would be a CSP violation offline)
        f"<title>genbench report {esc(report.get('run_id', ''))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<header><h1>genbench report <span class="badge {esc(verdict.lower())}">{esc(verdict)}</span></h1>',
        f'<div class="meta">run {esc(report.get("run_id", ""))} · profile {esc(env.get("profile", ""))} · '
        f'started {esc(report.get("created", ""))} · wall time {esc(env.get("wall_time_s"))} s</div></header>',
        '<nav><a href="#summary">Verdict</a><a href="#environment">Environment</a>'
        + "".join(f'<a href="#{esc(s["id"])}">{esc(s["title"])}</a>' for s in sections) + "</nav>",
        "<main>",
        '<section id="summary"><h2>Verdict summary</h2>',
        f"<p>{n_pass} check(s) passed, {n_fail} failed, "
        f"{sum(c.get('passed') is None for c in all_checks)} informational; "
        f"{sum(s['status'] == STATUS_OK for s in sections)} of {len(sections)} stage(s) ran. "
        "A check passes when its null hypothesis is not rejected at its α (or its gate holds).</p>",
    ]
    stage_rows = "".join(
        f"<tr><td><a href=\"#{esc(s['id'])}\">{esc(s['title'])}</a></td><td>{_status_badge(s['status'])}</td>"
        + _td(s.get("elapsed_s")) + _td(s.get("cpu_s")) + f"<td>{esc(s.get('reason') or '')}</td></tr>"
        for s in sections)
    parts.append('<table data-table="stages"><thead><tr><th>Stage</th><th>Status</th><th>Wall time [s]</th>'
                 f"<th>CPU time [s]</th><th>Reason</th></tr></thead><tbody>{stage_rows}</tbody></table>")
    if not all_checks:
        parts.append("<p>No checks ran.</p>")
    for s in sections:
        cs = s.get("checks", [])
        if not cs:
            continue
        npass = sum(c.get("passed") is True for c in cs)
        nfail = sum(c.get("passed") is False for c in cs)
        ninfo = len(cs) - npass - nfail
        # Every check is listed; a long all-green list (the test suite's) starts folded.
        opened = " open" if nfail or len(cs) <= SUMMARY_OPEN_MAX else ""
        badge = _badge(False) if nfail else _badge(True) if npass else _badge(None)
        parts.append(f"<details{opened}><summary><b>{esc(s['title'])}</b> {badge} {npass} passed, {nfail} failed"
                     + (f", {ninfo} informational" if ninfo else "") + "</summary>"
                     + _checks_table(cs, table_id="summary-checks") + "</details>")
    parts.append("</section>")
    env_rows = "".join(f"<tr><th>{esc(k)}</th>{_td(v)}</tr>" for k, v in env.items())
    parts.append(f'<section id="environment"><h2>Environment</h2><table data-table="environment">'
                 f"<tbody>{env_rows}</tbody></table></section>")
    parts.extend(_section(s, figures) for s in sections)
    parts.append('<p class="note">Generated by genbench; self-contained (no network needed). '
                 "The same numbers are in report.json beside this file.</p></main></body></html>")
    return "\n".join(parts)


def render_index(runs: list[Mapping[str, Any]]) -> str:
    """Return the HTML index of report runs (newest first): link, date, profile, verdict, counts."""
    rows = []
    for r in runs:
        v = str(r.get("verdict", ""))
        rid = str(r.get("run_id", ""))
        rows.append(f'<tr><td><a href="{esc(rid)}/index.html">{esc(rid)}</a></td><td>{esc(r.get("created", ""))}</td>'
                    f'<td>{esc(r.get("profile", ""))}</td><td><span class="badge {esc(v.lower())}">{esc(v)}</span></td>'
                    + _td(r.get("checks_passed")) + _td(r.get("checks_failed")) + _td(r.get("wall_time_s"))
                    + f"<td>{esc(r.get('git_commit', ''))}</td></tr>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>genbench reports</title><style>{_CSS}</style></head><body>"
            "<header><h1>genbench reports</h1><div class=\"meta\">newest first; "
            "<a style=\"color:#fff\" href=\"latest/index.html\">latest</a></div></header><main>"
            "<table data-table=\"runs\"><thead><tr><th>Run</th><th>Started</th><th>Profile</th><th>Verdict</th>"
            "<th>Checks passed</th><th>Checks failed</th><th>Wall time [s]</th><th>Git commit</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></main></body></html>")
