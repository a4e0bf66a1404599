"""Plain-text tables for `genbench bench` and `genbench bench gate` (presentation only)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from genbench.bench.gate import GateReport, RatioEstimate, ratio_of_medians
from genbench.bench.results import BenchRecord, BenchRun

_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si(value: float | None, digits: int = 3) -> str:
    """``value`` with an SI prefix and ``digits`` significant digits (``1.23e8`` -> ``123 M``)."""
    if value is None or not math.isfinite(value):
        return "-"
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix}"
    return f"{value:.{digits}g}"


def times(value: float | None) -> str:
    """A speed ratio such as ``123x`` (``-`` when unknown)."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.3g}x"


def render(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned fixed-width text table with a rule under the header."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


@dataclass(frozen=True)
class SuiteRow:
    """One line of the suite table: a record and the same-run speedups derived from it."""

    record: BenchRecord
    vs_assignment: float | None
    assignment_device: str | None
    cuda_over_cpu: float | None
    #: throughput over the same workload run by another library (``extra["peer"]``), with its interval
    vs_peer: RatioEstimate | None = None
    peer: str | None = None


def _peer_ratio(run: BenchRun, rec: BenchRecord) -> tuple[RatioEstimate | None, str | None]:
    key = rec.extra.get("peer")
    other = run.find(key, rec.device) if key else None
    if other is None or other.unit != rec.unit:
        return None, None
    return ratio_of_medians(rec, other, confidence=0.95, seed=0), str(other.extra.get("impl") or key)


def suite_rows(run: BenchRun) -> list[SuiteRow]:
    """Each record with its speedup over the assignment's workload, over a peer library's run of the same
    workload, and, on CUDA, over its CPU twin."""
    rows = []
    for rec in run.records:
        vs, vs_dev = None, None
        if rec.baseline:
            base = run.find(rec.baseline, rec.device) or run.find(rec.baseline, "cpu")
            if base is not None and base.unit == rec.unit:
                vs, vs_dev = rec.throughput / base.throughput, base.device
        cuda = None
        if rec.device == "cuda":
            twin = run.find(rec.key, "cpu")
            if twin is not None:
                cuda = rec.throughput / twin.throughput
        rows.append(SuiteRow(rec, vs, vs_dev, cuda, *_peer_ratio(run, rec)))
    return rows


def format_suite(run: BenchRun) -> str:
    """Workload x device table: median throughput, IQR, rounds, speedup over the assignment, CUDA/CPU."""
    rows = []
    notes = []
    for row in suite_rows(run):
        rec = row.record
        vs = times(row.vs_assignment)
        if row.vs_assignment is not None and row.assignment_device != rec.device:
            vs += f" (vs {row.assignment_device})"
        if rec.key == rec.baseline:
            # Each workload's baseline is the assignment's code, except the scaling rows (1 rank).
            vs = "(assignment)" if rec.key.startswith(("langevin.", "gan.")) else "(baseline)"
        rows.append(
            [
                rec.key,
                rec.device,
                f"{si(rec.throughput)} {rec.unit}",
                f"{si(rec.throughput_q1)} - {si(rec.throughput_q3)}",
                str(rec.rounds),
                vs,
                times(row.cuda_over_cpu),
                _peer_cell(row),
            ]
        )
        if rec.extra.get("compile_s") is not None:
            notes.append(f"{rec.label}: one-off compile/capture {rec.extra['compile_s']:.3g} s (not in step time)")
    headers = ["workload", "device", "median throughput", "IQR", "rounds", "vs baseline", "CUDA/CPU", "vs peer (95% interval)"]
    if not any(row[-1] != "-" for row in rows):  # no peer library measured: no empty column
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    text = render(headers, rows)
    gb = run.genbench
    head = f"genbench bench: {len(run.records)} benchmarks"
    if gb.get("profile"):
        head += f", profile {gb['profile']}"
    if gb.get("torch_threads"):
        head += f", {gb['torch_threads']} torch threads"
    if any("process_time" in rec.timer for rec in run.records):
        head += ", timed in CPU-seconds (--timer cpu)"
    if gb.get("loadavg_start") and gb.get("loadavg_end"):
        head += f"; 1-min load average {gb['loadavg_start'][0]:g} at start, {gb['loadavg_end'][0]:g} at end"
        cores = (run.machine_info.get("genbench") or {}).get("cpu_count")
        if cores and max(gb["loadavg_start"][0], gb["loadavg_end"][0]) > cores:
            head += f" (> {cores} cores: other work shared the CPU)"
    return "\n".join([head, text, *notes])


def _peer_cell(row: SuiteRow) -> str:
    if row.vs_peer is not None:
        est = row.vs_peer
        return f"{times(est.ratio)} ({times(est.low)} - {times(est.high)}) vs {row.peer}"
    if row.record.extra.get("impl") and not row.record.extra.get("peer"):
        return f"(peer: {row.record.extra['impl']})"
    return "-"


def format_gate(report: GateReport) -> str:
    """Ratio gates and baseline rows with verdicts, then a one-line summary."""
    out = [f"ratio gates ({report.gates_path}), same run {report.current_path}:"]
    rows = []
    for v in report.ratios:
        est = v.estimate
        rows.append(
            [
                v.gate.name,
                "-" if est is None else times(est.ratio),
                "-" if est is None else f"{times(est.low)} - {times(est.high)} ({est.method})",
                f">= {v.gate.minimum:g}x",
                v.verdict,
                v.note,
            ]
        )
    out.append(render(["gate", "ratio", "interval", "required", "verdict", "note"], rows) if rows else "(no gates declared)")
    cmp = report.baseline
    if cmp is not None:
        out.append("")
        if cmp.skipped_reason:
            out.append(f"baseline comparison with {cmp.baseline_path} skipped: {cmp.skipped_reason}")
        else:
            out.append(
                f"baseline {cmp.baseline_path}: regression = slowdown > {cmp.max_slowdown:.0%} and > spread "
                f"and Mann-Whitney U p < {cmp.alpha:g} (H0: current not slower)"
            )
            brows = [
                [
                    r.label,
                    _pct(r.slowdown),
                    _pct(r.slowdown_high),
                    _pct(r.spread, signed=False),
                    "-" if r.p_value is None else f"{r.p_value:.2g}",
                    r.verdict,
                    r.note,
                ]
                for r in cmp.rows
            ]
            out.append(render(["benchmark", "slowdown", "upper", "spread", "p", "verdict", "note"], brows))
    verdict = "REGRESSION" if report.failures else "ok"
    out.append("")
    out.append(f"gate: {verdict} — {report.failures} failed, {report.inconclusive} inconclusive")
    return "\n".join(out)


def _pct(x: float | None, signed: bool = True) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:+.1%}" if signed else f"{x:.1%}"

