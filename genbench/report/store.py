"""Writing report runs atomically and keeping the index of runs.

A run is built in a hidden temporary folder beside its final place and renamed into
``OUT/<run-id>`` only once complete, so an interrupted or failing build leaves earlier reports (and
the index) exactly as they were. ``OUT/index.html`` / ``OUT/index.json`` list every complete run,
newest first, and ``OUT/latest`` points at the newest one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from genbench._io import current_umask, output_dir, to_jsonable, write_bytes, write_json, write_text
from genbench.errors import ParameterError
from genbench.report.html import render_html, render_index

__all__ = ["new_run_id", "staged_run", "write_contents", "write_run", "update_index", "list_runs"]

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def new_run_id(out_root: str | os.PathLike[str], profile: str, seed: int, now: float | None = None) -> str:
    """Return a fresh run id ``YYYYmmdd-HHMMSS-<profile>-s<seed>`` not yet used under ``out_root``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = f"{stamp}-{profile}-s{seed}"
    rid, k = base, 1
    while (Path(out_root) / rid).exists():
        k += 1
        rid = f"{base}-{k}"
    return rid


@contextlib.contextmanager
def staged_run(out_root: str | os.PathLike[str], run_id: str) -> Iterator[Path]:
    """Yield a hidden temporary run folder; on success rename it to ``OUT/<run_id>`` and update the
    index, on any exception delete it (earlier runs and the index are left untouched)."""
    if not _RUN_ID.match(run_id):
        raise ParameterError(f"run_id must be letters, digits, '.', '_' or '-', got {run_id!r}")
    root = output_dir(out_root, "out")
    final = root / run_id
    if final.exists():
        raise ParameterError(f"run_id={run_id!r}: {final} already exists")
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}.", suffix=".partial", dir=root))
    try:
        yield tmp
        _make_readable(tmp)
        os.rename(tmp, final)  # atomic on one filesystem: the run appears complete or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    update_index(root)


def write_contents(run_dir: Path, report: Mapping[str, Any], figures: Mapping[str, bytes]) -> None:
    """Write report.json, figures/*.png and index.html (rendered from the same JSON) into ``run_dir``."""
    report_plain = to_jsonable(report)
    write_json(run_dir / "report.json", report_plain)
    figdir = run_dir / "figures"
    figdir.mkdir(exist_ok=True)
    for fid, png in figures.items():
        write_bytes(figdir / f"{_safe_name(fid)}.png", png)
    write_text(run_dir / "index.html", render_html(report_plain, figures))


def write_run(out_root: str | os.PathLike[str], run_id: str, report: Mapping[str, Any],
              figures: Mapping[str, bytes]) -> Path:
    """Write ``OUT/<run_id>/{index.html, report.json, figures/*.png}`` atomically; update the index."""
    with staged_run(out_root, run_id) as tmp:
        write_contents(tmp, report, figures)
    return Path(out_root) / run_id


def _make_readable(run_dir: Path) -> None:
    """mkdtemp creates an owner-only folder; a report is meant to be shared, so apply the umask."""
    umask = current_umask()
    for p in [run_dir, *run_dir.rglob("*")]:
        if not p.is_symlink():
            p.chmod((0o777 if p.is_dir() else 0o666) & ~umask)


def _safe_name(fid: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", fid) or "figure"


def list_runs(out_root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Summaries of every complete run under ``out_root`` (folders holding a readable report.json), newest first."""
    runs = []
    root = Path(out_root)
    if not root.is_dir():
        return runs
    for d in root.iterdir():
        if d.name.startswith(".") or d.name == "latest" or d.is_symlink() or not d.is_dir():
            continue
        try:
            rep = json.loads((d / "report.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not a report run (or unreadable): left out of the index rather than failing
        env = rep.get("environment", {})
        checks = [c for s in rep.get("sections", []) for c in s.get("checks", [])]
        runs.append({
            "run_id": d.name,
            "created": rep.get("created", ""),
            "profile": env.get("profile", ""),
            "verdict": rep.get("verdict", ""),
            "checks_passed": sum(c.get("passed") is True for c in checks),
            "checks_failed": sum(c.get("passed") is False for c in checks),
            "wall_time_s": env.get("wall_time_s"),
            "git_commit": env.get("git_commit", ""),
        })
    runs.sort(key=lambda r: (str(r["created"]), r["run_id"]), reverse=True)
    return runs


def update_index(out_root: str | os.PathLike[str]) -> None:
    """Rewrite ``OUT/index.html`` and ``OUT/index.json`` and point ``OUT/latest`` at the newest run."""
    root = Path(out_root)
    runs = list_runs(root)
    write_json(root / "index.json", {"runs": runs})
    write_text(root / "index.html", render_index(runs))
    if runs:
        _point_latest(root, runs[0]["run_id"])


def _point_latest(root: Path, run_id: str) -> None:
    """Atomically replace the ``latest`` symlink (relative, so the folder can be moved)."""
    link = root / "latest"
    tmp = root / f".latest.{os.getpid()}.tmp"
    try:
        tmp.unlink(missing_ok=True)
        os.symlink(run_id, tmp, target_is_directory=True)
        if link.exists() and not link.is_symlink():
            raise OSError("latest exists and is not a symlink")
        os.replace(tmp, link)
    except OSError:
        # Filesystems without symlinks: fall back to a small text file naming the run.
        tmp.unlink(missing_ok=True)
        write_text(root / "latest.txt", run_id + "\n")
