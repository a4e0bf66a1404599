"""Argument helpers shared by the commands (light: building a parser imports no heavy module)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from genbench import _validate
from genbench.errors import ParameterError

#: A range check of one parsed argument: (flag, value) -> None, or ParameterError naming the flag.
ArgCheck = Callable[[str, Any], object]


def at_least(minimum: int) -> ArgCheck:
    """An integer >= ``minimum``."""
    return lambda flag, value: _validate.positive_int(flag, value, minimum=minimum)


def positive(flag: str, value: Any) -> None:
    """A finite number > 0."""
    _validate.positive_float(flag, value)


def open_unit(flag: str, value: Any) -> None:
    """A number in (0, 1)."""
    _validate.probability(flag, value)


def seed(flag: str, value: Any) -> None:
    """An integer seed in [0, 2**63)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _validate.SEED_LIMIT:
        raise ParameterError(f"{flag} must be an integer >= 0 and < 2**63, got {value!r}")


def add_checks(parser: argparse.ArgumentParser, **checks: ArgCheck) -> None:
    """Declare range checks of ``parser``'s arguments (by dest), run by ``check_arguments`` before any heavy import."""
    parser.set_defaults(_arg_checks={**(parser.get_default("_arg_checks") or {}), **checks})


def check_arguments(args: argparse.Namespace, flags: Mapping[str, str]) -> None:
    """Run the declared checks on the arguments given (None: not given); ParameterError names the flag."""
    for dest, check in (getattr(args, "_arg_checks", None) or {}).items():
        value = getattr(args, dest, None)
        if value is not None:
            check(flags.get(dest, "--" + dest.replace("_", "-")), value)

OVERWRITE_HELP = "replace the outputs of an earlier run in --out (without it, an existing output is refused)"


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    """Add ``--overwrite``: the one flag with which a command replaces outputs already in its folder."""
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def prepare_output(folder: str | os.PathLike[str], outputs: Iterable[str], *, overwrite: bool) -> Path:
    """Check the output folder before any work: refuse (ParameterError) a path that cannot become a folder, or one
    already holding one of ``outputs`` without ``overwrite``. The folder itself is made by the first write, so a
    command that fails leaves none behind."""
    from genbench._io import check_output_dir  # numpy: not at parse time

    path = check_output_dir(folder, "out")
    present = [name for name in outputs if (path / name).exists()]
    if present and not overwrite:
        raise ParameterError(
            f"--out {os.fspath(path)!r} already holds {', '.join(present)} from an earlier run; pass --overwrite to "
            "replace it, or choose another --out"
        )
    return path
