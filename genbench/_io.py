"""Atomic file output: every artefact is written to a temporary sibling, then renamed into place,
so an interrupted run never leaves a half-written file behind; and genbench's one cache folder."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from genbench.errors import ParameterError


CACHE_ENV = "GENBENCH_CACHE"  # the one variable naming genbench's cache (data, classifier, compiled kernels)


def cache_root() -> Path:
    """genbench's cache folder: ``$GENBENCH_CACHE`` if set, else ``~/.cache/genbench``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "genbench"


def current_umask() -> int:
    """The process's current umask (reading it requires setting it, so restore at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, else delete it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically write ``data`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Convert numpy/torch values, tuples and paths to plain JSON types; non-finite floats become None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # torch.Tensor without importing torch here
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (numpy and torch values converted)."""
    return write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def check_output_dir(path: str | os.PathLike[str], name: str = "out") -> Path:
    """``path`` as a Path if it is, or can become, a folder we may write in; ParameterError naming ``name`` if not."""
    if not os.fspath(path).strip():
        raise ParameterError(f"{name} must name a folder, got an empty path")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ParameterError(f"{name}={os.fspath(p)!r} is an existing file, not a folder")
    ancestor = p
    while not ancestor.exists():  # the nearest existing ancestor must be a folder we may write in
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise ParameterError(f"{name}={os.fspath(p)!r} cannot be created: {os.fspath(ancestor)!r} is "
                             f"{'not a folder' if not ancestor.is_dir() else 'not writable'}")
    return p


def output_dir(path: str | os.PathLike[str], name: str = "out") -> Path:
    """Create and return the output folder ``path``; raise ParameterError if it is an existing file."""
    p = check_output_dir(path, name)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(f"{name}={os.fspath(p)!r} cannot be created: {exc.strerror}") from exc
    return p
