"""Run every stage of the suite and write one report: the orchestration behind `genbench report`.

Each stage is a function ``(ReportConfig, work_dir) -> SectionResult``: a section module's ``stage``
(``genbench.report.sections``), which runs its part and renders it.
A stage whose module is not installed shows as "not run: <reason>"; a stage that raises shows as
"failed: <error>" with its traceback in the section log; neither stops the other stages. Writing
the run itself is atomic (``genbench.report.store``).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from genbench._runtime import resolve_device
from genbench._validate import choice, positive_int
from genbench.errors import GenbenchError, ParameterError
from genbench.report.environment import environment
from genbench.report.html import overall_verdict
from genbench.report.model import STATUS_FAILED, SectionResult, not_run
from genbench.report.profiles import PROFILES, get_profile
from genbench.report.store import new_run_id, staged_run, write_contents

__all__ = ["ReportConfig", "Stage", "build_report", "default_stages", "stage_ids", "PROFILES"]


@dataclass
class ReportConfig:
    """What `genbench report` runs and where it writes (see the CLI help for each field)."""

    profile: str = "quick"
    out: str = "reports"
    device: str = "cpu"
    data: str | None = None
    tests_junit: str | None = None
    bench_json: str | None = None
    calibration_json: str | None = None
    bench_gates: str | None = None  # ratio-gates TOML (default: gates.toml beside the benchmarks, else genbench's)
    tests_dir: str | None = None  # the test folder pytest runs (default: ./tests)
    benchmarks_dir: str | None = None  # the benchmark suite (default: ./benchmarks)
    seed: int = 42
    run_tests: bool = True
    run_bench: bool = True
    only: tuple[str, ...] | None = None  # stage ids to run; the others show as "not run (skipped)"
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> ReportConfig:
        """Check every field; ParameterError naming the field otherwise."""
        choice("profile", self.profile, tuple(PROFILES))
        resolve_device(self.device)
        positive_int("seed", self.seed, minimum=0)
        for name in ("tests_junit", "bench_json", "calibration_json", "bench_gates"):
            p = getattr(self, name)
            if p is not None and not Path(p).is_file():
                raise ParameterError(f"{name}={p!r} is not an existing file")
        for name in ("tests_dir", "benchmarks_dir"):
            p = getattr(self, name)
            if p is not None and not Path(p).is_dir():
                raise ParameterError(f"{name}={p!r} is not an existing folder")
        if self.data is not None and self.data != "auto" and not Path(self.data).exists():
            raise ParameterError(f"data={self.data!r} does not exist (give a torchvision root or IDX folder, or 'auto')")
        return self


@dataclass(frozen=True)
class Stage:
    """One report stage: id, title shown in progress and report, and its function."""

    id: str
    title: str
    run: Callable[[ReportConfig, Path], SectionResult]


def default_stages() -> list[Stage]:
    """The suite's stages in report order (one per section module)."""
    from genbench.report.sections import SECTIONS

    return [Stage(m.ID, m.TITLE, m.stage) for m in SECTIONS]


def stage_ids() -> tuple[str, ...]:
    """The ids of the default stages, in report order (what --only accepts)."""
    from genbench.report.sections import SECTIONS

    return tuple(m.ID for m in SECTIONS)


def _run_stage(stage: Stage, config: ReportConfig, work: Path) -> SectionResult:
    """Run one stage, turning a missing module or an error into a section that says so."""
    if config.only is not None and stage.id not in config.only:
        return not_run(stage.id, stage.title, "skipped (not selected with --only)")
    try:
        res = stage.run(config, work)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("genbench"):
            return not_run(stage.id, stage.title, f"module {exc.name} is not available in this checkout")
        res = _failed(stage, exc)
    except GenbenchError as exc:
        res = not_run(stage.id, stage.title, str(exc), status=STATUS_FAILED)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a bug in a stage must not hide the others' results: report it, loudly
        res = _failed(stage, exc)
    return res


def _failed(stage: Stage, exc: BaseException) -> SectionResult:
    res = not_run(stage.id, stage.title, f"{type(exc).__name__}: {exc}", status=STATUS_FAILED)
    res.section["log"] = "".join(traceback.format_exception(exc))
    return res


def _progress(stages: Sequence[Stage], stream: TextIO) -> Any:
    from tqdm import tqdm

    # disable=None: a live bar on a terminal, nothing but the per-stage lines otherwise.
    return tqdm(total=len(stages), desc="genbench report", unit="stage", file=stream, disable=None,
                leave=False, bar_format="{desc}: {n_fmt}/{total_fmt} stages [{elapsed}] {postfix}")


def build_report(config: ReportConfig, *, stages: Sequence[Stage] | None = None,
                 stream: TextIO | None = None) -> tuple[Path, dict[str, Any]]:
    """Run the stages, write ``OUT/<run-id>/`` atomically, update the index; return (run dir, report)."""
    from tqdm import tqdm

    config.validate()
    stream = stream if stream is not None else sys.stderr
    stages = list(stages) if stages is not None else default_stages()
    t0 = time.perf_counter()
    created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    run_id = new_run_id(config.out, config.profile, config.seed)
    env = environment(config.device)
    load_start = _load_average()
    results: list[SectionResult] = []
    with staged_run(config.out, run_id) as tmp:
        work = tmp / "artifacts"
        bar = _progress(stages, stream)
        try:
            for i, stage in enumerate(stages, 1):
                bar.set_postfix_str(stage.title)
                s0, c0 = time.perf_counter(), _cpu_seconds()
                sw = work / stage.id
                sw.mkdir(parents=True, exist_ok=True)
                res = _run_stage(stage, config, sw)
                elapsed = round(time.perf_counter() - s0, 2)
                cpu = round(_cpu_seconds() - c0, 1)
                res.section["elapsed_s"] = elapsed
                res.section["cpu_s"] = cpu
                results.append(res)
                status = res.section["status"]
                why = f" ({res.section['reason']})" if res.section.get("reason") else ""
                tqdm.write(f"[{i}/{len(stages)}] {stage.title:<20} {status:<8} {elapsed:8.1f} s  (cpu {cpu:.1f} s){why}",
                           file=stream)
                bar.update(1)
        finally:
            bar.close()
        for p in sorted(work.rglob("*"), reverse=True):  # drop empty stage folders
            if p.is_dir() and not any(p.iterdir()):
                p.rmdir()
        if work.is_dir() and not any(work.iterdir()):
            work.rmdir()
        env.update({
            "profile": config.profile,
            "seed": config.seed,
            "data_source": _data_source(results, config),
            "wall_time_s": round(time.perf_counter() - t0, 1),
            "cpu_time_s": round(sum(r.section.get("cpu_s") or 0 for r in results), 1),
            "load_average_1min": f"{load_start} at start, {_load_average()} at end"
                                 f" ({os.cpu_count()} cores; above that, other work shared the CPU)",
        })
        report = {
            "schema": "genbench.report/1",
            "run_id": run_id,
            "created": created,
            "config": _config_dict(config),
            "profile": get_profile(config.profile).to_dict(),
            "environment": env,
            "sections": [r.section for r in results],
        }
        report["verdict"] = overall_verdict(report)
        figures: dict[str, bytes] = {}
        for r in results:
            figures.update(r.figures)
        write_contents(tmp, report, figures)
    run_dir = Path(config.out) / run_id
    print(f"report: {run_dir / 'index.html'}  verdict {report['verdict']}  "
          f"({env['wall_time_s']} s)", file=stream)
    return run_dir, report


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children: wall time without contention."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def _data_source(results: list[SectionResult], config: ReportConfig) -> str:
    for r in results:
        src = r.section.get("details", {}).get("data_source")
        if src:
            return str(src)
    return config.data or "auto (not used: no stage loaded MNIST)"


def _config_dict(config: ReportConfig) -> dict[str, Any]:
    d = asdict(config)
    d["only"] = list(config.only) if config.only is not None else None
    d["out"] = os.fspath(config.out)
    return d
