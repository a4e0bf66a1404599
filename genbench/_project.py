"""Where the current project's folders are: genbench's own files ship inside the package, while a
project's benchmark suite and tests are found from the current folder (or given explicitly).

An installed genbench (a wheel, as tox installs it) has no checkout beside it, so nothing here
looks relative to the package's own source files.
"""

from __future__ import annotations

import os
from pathlib import Path

from genbench.errors import DataError


def find_project_folder(name: str, marker: str, *, hint: str, start: str | os.PathLike[str] | None = None) -> Path:
    """The folder ``name`` holding ``marker`` in the current folder or its nearest parent that has one.

    Raises DataError naming the folder searched from and ``hint`` (how to give the folder explicitly).
    """
    here = Path(start if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / name
        if (candidate / marker).is_file():
            return candidate
    raise DataError(
        f"no {name}/ folder with {marker} in the current folder ({os.fspath(here)}) or its parents; "
        f"run from the project's checkout or {hint}"
    )
