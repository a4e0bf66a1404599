"""The ``genbench`` command: argument parsing only; every command calls a library function.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds a parser
whose ``func`` default takes the parsed arguments and returns an exit status. Building the parser
imports no heavy module (torch, numpy, scipy, matplotlib): a command imports what it needs when it
runs, so ``--help`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import sys
from collections.abc import Sequence

from genbench import __version__
from genbench.cli.options import check_arguments
from genbench.errors import GenbenchError

COMMANDS = ("langevin", "gan", "calibrate", "bench", "report", "check_sampler")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are a single line on stderr, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Exit with status 2 after one line naming the problem and pointing to --help."""
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


# ------------------------------------------------------------------------------------ unknown flags
def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _values_taken(action: argparse.Action, following: Sequence[str]) -> int:
    """How many of the tokens after an option argparse gives to it (without '=')."""
    nargs = action.nargs
    if nargs == 0 or isinstance(action, (argparse._StoreConstAction, argparse._HelpAction, argparse._VersionAction)):
        return 0
    if nargs is None:
        return 1
    if isinstance(nargs, int):
        return nargs
    taken = 0
    for tok in following:
        if tok.startswith("-") and not _NUMBER.match(tok):
            break
        taken += 1
        if nargs == "?":
            break
    return taken


_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+([eE][-+]?\d+)?$|^-\d+[eE][-+]?\d+$")


def unknown_option(parser: argparse.ArgumentParser, argv: Sequence[str]) -> tuple[argparse.ArgumentParser, str] | None:
    """The first option in ``argv`` that the (sub)command it follows does not define, with that parser.

    argparse itself reports a mistyped flag followed by a value (``langevin --step_size 0.01``) as an
    invalid subcommand choice ('0.01'); walking the tokens as argparse does finds the flag instead.
    """
    current = parser
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if tok == "--":
            return None
        if tok.startswith("-") and tok != "-" and not _NUMBER.match(tok):
            name, has_value, _ = tok.partition("=")
            known = current._option_string_actions
            action = known.get(name)
            if action is None and name.startswith("--"):
                prefixed = [o for o in known if o.startswith(name)]
                action = known[prefixed[0]] if len(prefixed) == 1 else None
            if action is None and not name.startswith("--") and len(name) > 2:
                action = known.get(name[:2])  # -kEXPR: a short option with its value attached
                has_value = has_value or bool(action)
            if action is None:
                return current, name
            if not has_value:
                i += _values_taken(action, argv[i:])
            continue
        sub = _subparsers(current)
        if tok in sub:
            current = sub[tok]
    return None


def _suggest(parser: argparse.ArgumentParser, flag: str) -> str:
    """'; did you mean --x?' for the closest flag, or a flag whose value is named like ``flag`` (--mu: MU)."""
    bare = flag.lstrip("-").replace("_", "-").lower()
    by_metavar = [a.option_strings[-1] for a in parser._actions
                  if a.option_strings and isinstance(a.metavar, str) and a.metavar.lower() == bare]
    options = [o for o in parser._option_string_actions if o.startswith("--")]
    match = by_metavar or difflib.get_close_matches(f"--{bare}", options, n=1, cutoff=0.7)
    return f"; did you mean {match[0]}?" if match else ""


# ------------------------------------------------------------------------------ errors in CLI terms
def _flags_of(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Python parameter name -> the command's flag that sets it (e.g. step_size -> --step-size)."""
    out: dict[str, str] = {}
    for action in parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and action.dest not in (argparse.SUPPRESS, "help"):
            out.setdefault(action.dest, longs[0])
    return out


def cli_message(message: str, parser: argparse.ArgumentParser | None) -> str:
    """Rewrite a library error's Python parameter names as the command's flags."""
    if parser is None:
        return message
    for dest, flag in sorted(_flags_of(parser).items(), key=lambda kv: -len(kv[0])):
        if f"{dest}=True" in message:
            message = re.sub(rf"(?<![\w.-]){re.escape(dest)}=True", flag, message)
        message = re.sub(rf"(?<![\w.-]){re.escape(dest)}=(?=\S)", f"{flag} ", message)
        message = re.sub(rf"(^|[:;(,] ){re.escape(dest)}(?= (?:must|is|are|needs|should)\b)", rf"\g<1>{flag}", message)
        message = re.sub(rf"^{re.escape(dest)}:", f"{flag}:", message)  # "targets: unknown target ..."
        message = re.sub(rf"(?<![\w.-]){re.escape(dest)}\[(['\"])([\w-]+)\1\]", rf"{flag} \2", message)  # effect['mean']
    return message


def _command_parser(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.ArgumentParser:
    """The innermost (sub)command parser that ``argv`` selects."""
    current = parser
    for tok in argv:
        sub = _subparsers(current)
        if tok in sub:
            current = sub[tok]
    return current


# ------------------------------------------------------------------------------------------ torchrun
def launched_rank() -> str | None:
    """'rank R of W' when this process was started by torchrun (or another launcher setting RANK), else None."""
    rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if rank is None or world is None or world.strip() in ("", "1"):
        return None  # one process: nothing would run twice
    return f"rank {rank} of {world}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line and return 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    rank = launched_rank()

    def fail(message: str) -> int:
        if rank and not message.startswith("rank "):
            message = f"{rank}: {message}"
        print(f"genbench: error: {message}", file=sys.stderr)
        return 2

    unknown = unknown_option(parser, argv)
    if unknown is not None:
        sub, flag = unknown
        return fail(f"{sub.prog}: unknown option {flag}{_suggest(sub, flag)} (see '{sub.prog} --help')")
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        return fail(f"a command is required: {', '.join(c.replace('_', '-') for c in COMMANDS)} (see 'genbench --help')")
    command = _command_parser(parser, argv)
    try:  # range checks that need no heavy module: bad numbers answer at once
        check_arguments(args, _flags_of(command))
    except GenbenchError as exc:
        return fail(str(exc))
    if rank is not None and not getattr(args, "distributed", False):
        how = ("add --distributed to split the work across the ranks" if "--distributed" in command._option_string_actions
               else "it has no --distributed mode; run it without torchrun")
        return fail(f"{command.prog} was launched by torchrun ({rank}) without --distributed: every rank would "
                    f"repeat the whole job; {how}")
    try:
        return int(args.func(args) or 0)
    except GenbenchError as exc:
        return fail(cli_message(" ".join(str(exc).split("\n")), command))
    except KeyboardInterrupt:
        print("genbench: interrupted; finished outputs were kept, partial ones discarded", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as exc:
        if not _out_of_memory(exc):
            raise
        found = re.search(r"can't allocate memory[^.]*|out of memory[^.]*", str(exc), re.IGNORECASE)
        return fail(f"{command.prog}: out of memory ({found.group(0) if found else type(exc).__name__}); ask for less "
                    "(fewer --chains, --steps, images or a smaller batch)")


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure (CPU or CUDA): too large a request is the user's input."""
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text
