"""Benchmarks section: the profile's benchmarks (or a given pytest-benchmark JSON) and the ratio gates."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbench.report import figures as F
from genbench.report.model import SectionResult, check, figure, not_run, section, table
from genbench.report.profiles import ReportProfile, get_profile

__all__ = ["ID", "TITLE", "BenchData", "find_benchmarks_dir", "run", "render", "stage"]

ID, TITLE = "bench", "Benchmarks"


@dataclass(frozen=True)
class BenchData:
    """A benchmark run (``BenchRun``), its gate verdicts (``GateReport`` or None) and how it was obtained."""

    run: Any
    gate: Any | None
    how: str
    pytest_status: int = 0
    log: str = ""


def find_benchmarks_dir(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The benchmark suite: ``explicit`` (--benchmarks), else ``benchmarks/`` in the current folder, else None."""
    if explicit is not None:
        return Path(explicit).resolve()
    here = Path.cwd() / "benchmarks"
    return here.resolve() if (here / "conftest.py").is_file() else None


def _gate(config: Any, json_path: Any, suite: Path | None) -> Any:
    from genbench.bench.gate import run_gate

    gates = config.bench_gates
    if gates is None and suite is not None and (suite / "gates.toml").is_file():
        gates = suite / "gates.toml"  # the project's own gates beside its benchmarks
    return run_gate(json_path, **({"gates": gates} if gates else {}))


def run(config: Any, profile: ReportProfile, work: Path) -> BenchData | SectionResult:
    """Run the profile's benchmarks (one thread per process) or read the given JSON; gate the result."""
    from genbench.bench.results import load_run

    if config.bench_json:
        suite = find_benchmarks_dir(getattr(config, "benchmarks_dir", None))
        return BenchData(load_run(config.bench_json), _gate(config, config.bench_json, suite),
                         f"Read from the given pytest-benchmark JSON {config.bench_json}.")
    if not config.run_bench:
        return not_run(ID, TITLE, "disabled (--no-bench); pass --bench-json FILE to include a run")
    suite = find_benchmarks_dir(getattr(config, "benchmarks_dir", None))
    if suite is None:
        return not_run(ID, TITLE, f"no benchmarks/ folder in the current folder ({Path.cwd()}); run genbench report "
                                  "from the project's root, or pass --benchmarks DIR or --bench-json FILE")
    from genbench.bench.suite import run_suite

    json_path = work / "bench.json"
    device = "all" if config.device.startswith("cuda") else "cpu"
    log = work / "bench.log"
    with _fd_redirect(log):  # pytest-benchmark's tables go to the log, not between the progress lines
        # One thread per process: the ratio gates compare a single-threaded Python loop with torch
        # code, and a second OpenMP thread waiting on a busy core skews them (tens of times when the
        # machine is shared). `genbench bench --threads 1` is what CI gating runs too.
        outcome = run_suite(json_path, profile=profile.bench_profile, device=device, keyword=profile.bench_keyword,
                            suite=suite, threads=1)
    how = (f"Ran: genbench bench --profile {profile.bench_profile} --device {device} --threads 1"
           + (f" -k \"{profile.bench_keyword}\"" if profile.bench_keyword else "")
           + f" on {suite} (pytest exit status {outcome.pytest_status}); JSON in artifacts/{work.name}/bench.json.")
    return BenchData(outcome.run, _gate(config, json_path, suite), how, pytest_status=outcome.pytest_status,
                     log=log.read_text(encoding="utf-8", errors="replace")[-6000:])


@contextlib.contextmanager
def _fd_redirect(path: Path) -> Iterator[None]:
    """Send this process's (and its children's) stdout and stderr to ``path`` for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def render(data: BenchData) -> SectionResult:
    """The section: throughput table and chart, gate verdicts, baseline comparison."""
    from genbench.bench.gate import FAIL, PASS, SKIPPED
    from genbench.bench.table import suite_rows

    run, gate = data.run, data.gate
    s = section(ID, TITLE)
    s["paragraphs"].append(data.how)
    rows, chart = [], []
    for r in suite_rows(run):
        rec = r.record
        vs = ((("(assignment)" if rec.key.startswith(("langevin.", "gan.")) else "(baseline)"))
              if rec.baseline and rec.key == rec.baseline else r.vs_assignment)
        rows.append([rec.key, rec.device, rec.throughput, rec.unit, rec.throughput_q1, rec.throughput_q3, rec.rounds,
                     vs, r.cuda_over_cpu, rec.extra.get("compile_s")])
        chart.append({"workload": rec.key, "device": rec.device, "throughput": rec.throughput, "unit": rec.unit})
    s["tables"].append(table(
        "bench-suite", "Throughput (median of rounds) and same-run speedups",
        ["workload", "device", "median throughput", "unit", "q1", "q3", "rounds", "× assignment", "CUDA / CPU",
         "compile [s]"], rows,
        note="× assignment: median throughput over the assignment's code for the same workload, measured in this run; "
             "CUDA / CPU: over the same workload on CPU. Compile/capture time is one-off and not in the step time."))
    devices = sorted({str(x["device"]) for x in chart})
    s["figures"].append(figure("bench-throughput", "Median throughput per workload and device (log scale). "
                               + ("Devices measured: " + ", ".join(devices) + "." if devices else ""),
                               after="bench-suite"))
    figs = {"bench-throughput": F.bench_figure(chart)} if chart else {}
    if gate is not None:
        grows, unmeasured = [], []
        for v in gate.ratios:
            est = v.estimate
            why = (v.note + (" — " if v.note and v.gate.why else "") + v.gate.why).strip()
            if v.verdict == SKIPPED:  # its workloads are not in this run (another profile or device)
                unmeasured.append([v.gate.name, v.gate.numerator, v.gate.denominator, v.gate.minimum, v.gate.why])
                continue
            grows.append([v.gate.name, v.gate.numerator, v.gate.denominator, None if est is None else est.ratio,
                          None if est is None else est.low, None if est is None else est.high, v.gate.minimum,
                          v.verdict, why])
            passed = True if v.verdict == PASS else False if v.verdict == FAIL else None
            s["checks"].append(check(
                f"gate: {v.gate.name}", passed, label=v.verdict, statistic=None if est is None else est.ratio,
                ci=None if est is None else [est.low, est.high],
                null_hypothesis=f"throughput {v.gate.numerator} / {v.gate.denominator} >= {v.gate.minimum:g}",
                detail=f"{v.verdict}" + (f" ({est.method} interval)" if est is not None else "")
                       + (f": {v.note}" if v.note else "")))
        s["tables"].append(table("bench-gates", f"Ratio gates ({gate.gates_path})",
                                 ["gate", "numerator", "denominator", "ratio", "low", "high", "required ≥", "verdict",
                                  "note"], grows,
                                 note="Pass when the whole interval of the ratio of medians is at or above the "
                                      "requirement, fail when wholly below, inconclusive otherwise."))
        if unmeasured:
            s["tables"].append(table(
                "bench-gates-unmeasured", "Gates not measured in this run",
                ["gate", "numerator", "denominator", "required ≥", "why"], unmeasured,
                note="Their workloads are not in this run's benchmark selection (another profile, the CUDA device, "
                     "or the optional BlackJAX peers): `genbench bench --profile full` measures them.", folded=True))
        cmp = gate.baseline
        if cmp is not None:
            if cmp.skipped_reason:
                s["paragraphs"].append(f"Baseline comparison with {cmp.baseline_path} skipped: {cmp.skipped_reason}")
            else:
                s["tables"].append(table(
                    "bench-baseline", f"Against baseline {cmp.baseline_path}",
                    ["benchmark", "slowdown", "upper", "spread", "p-value", "verdict", "note"],
                    [[r.label, r.slowdown, r.slowdown_high, r.spread, r.p_value, r.verdict, r.note] for r in cmp.rows]))
                for r in cmp.rows:
                    if r.verdict in (PASS, FAIL):
                        s["checks"].append(check(f"no regression: {r.label}", r.verdict == PASS,
                                                 statistic=r.slowdown, p_value=r.p_value, alpha=cmp.alpha,
                                                 null_hypothesis="current not slower than baseline"))
        verdict = "REGRESSION" if gate.failures else "ok"
        s["paragraphs"].append(f"Gate verdict: {verdict} — {len(grows)} gates measured: {gate.failures} failed, "
                               f"{gate.inconclusive} inconclusive; {len(unmeasured)} not measured in this run.")
        s["details"]["gate"] = {"verdict": verdict, "failures": gate.failures, "inconclusive": gate.inconclusive}
    s["details"]["machine_info"] = {k: run.machine_info.get(k) for k in ("node", "processor", "machine", "system",
                                                                          "python_version") if k in run.machine_info}
    s["details"]["genbench"] = run.genbench
    if data.log:
        s["log"] = data.log
    if data.pytest_status != 0:
        s["checks"].append(check("benchmarks ran without error", False, statistic=data.pytest_status,
                                 detail="pytest-benchmark exited non-zero: a benchmark errored"))
    return SectionResult(s, figs)


def stage(config: Any, work: Path) -> SectionResult:
    """Run and render (the report's build calls this)."""
    data = run(config, get_profile(config.profile), work)
    return data if isinstance(data, SectionResult) else render(data)
