"""The ``genbench`` command: argument parsing only; every command calls a library function.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds a parser
whose ``func`` default takes the parsed arguments and returns an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from genbench import __version__
from genbench.errors import GenbenchError

COMMANDS = ("langevin", "gan", "calibrate", "bench", "report", "check_sampler")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are a single line on stderr, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    parser = OneLineParser(
        prog="genbench",
        description="Validate and benchmark Langevin samplers and an MNIST GAN on CPU and GPU.",
    )
    parser.add_argument("--version", action="version", version=f"genbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMANDS:
        importlib.import_module(f"genbench.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line and return 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except GenbenchError as exc:
        print(f"genbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genbench: interrupted; finished outputs were kept, partial ones discarded", file=sys.stderr)
        return 130
