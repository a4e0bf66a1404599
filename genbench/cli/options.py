"""Argument helpers shared by the commands (light: building a parser imports no heavy module)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path

from genbench.errors import ParameterError

OVERWRITE_HELP = "replace the outputs of an earlier run in --out (without it, an existing output is refused)"


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    """Add ``--overwrite``: the one flag with which a command replaces outputs already in its folder."""
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def prepare_output(folder: str | os.PathLike[str], outputs: Iterable[str], *, overwrite: bool) -> Path:
    """Create the output folder; refuse (ParameterError) if it already holds one of ``outputs`` and not ``overwrite``."""
    from genbench._io import output_dir

    path = output_dir(folder, "out")
    present = [name for name in outputs if (path / name).exists()]
    if present and not overwrite:
        raise ParameterError(
            f"--out {os.fspath(path)!r} already holds {', '.join(present)} from an earlier run; pass --overwrite to "
            "replace it, or choose another --out"
        )
    return path
