"""`genbench check-sampler`: run the conformance battery on a sampler named as MODULE:FACTORY."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from genbench.cli.options import add_checks, add_overwrite, open_unit, prepare_output, seed
from genbench.errors import ParameterError

# Kept here so that building the parser imports no torch; tests/test_cli.py checks them against
# genbench.conformance.plan (KINDS, DEFAULT_EFFECT) and genbench.conformance.targets.
KINDS = ("ula", "exact", "unknown")
DEFAULT_EFFECT = {"mean": 0.1, "cov": 0.25, "shape": 0.05}
DEFAULT_TARGETS = ("gauss1d", "gauss2d", "diag10", "mixture2d")
ALL_TARGETS = ("gauss1d", "gauss2d", "diag10", "dense50", "mixture2d")
OUTPUTS = ("conformance.json",)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `check-sampler` subcommand."""
    p = subparsers.add_parser(
        "check-sampler",
        help="judge a sampler (any framework, through the adapter protocol) with the conformance battery",
        description=(
            "Import FACTORY from MODULE (the current folder is searched first), call factory(target) -> "
            "run(x0, steps, step_size, seed) for each target, and run the battery for --kind: exact ULA laws "
            "(ula), invariance and convergence (exact), or kernel Stein and shape checks (unknown). Every test's "
            "sample size is planned for the effect and power; the verdict holds family-wise alpha (Holm). "
            "Writes DIR/conformance.json and prints the table. Exit 0 when every test passes, 1 when one "
            "rejects, 2 on bad input (unimportable module, a factory or run that raises, wrong output shape, "
            "non-finite output)."
        ),
    )
    p.add_argument("factory", metavar="MODULE:FACTORY", help="e.g. genbench.conformance.adapters:blackjax_mala")
    p.add_argument("--kind", required=True, choices=KINDS, help="what the sampler claims to be")
    p.add_argument("--targets", default="default", metavar="NAMES",
                   help=f"'default' ({', '.join(DEFAULT_TARGETS)}), 'all' ({', '.join(ALL_TARGETS)}) "
                        "or a comma-separated list of names")
    p.add_argument("--alpha", type=float, default=0.01, metavar="A",
                   help="family-wise level of the verdict (default 0.01)")
    p.add_argument("--power", type=float, default=0.9, metavar="P",
                   help="power each test is planned for at its effect (default 0.9)")
    p.add_argument("--effect", default=None, metavar="KEY=V,...",
                   help="effects to detect, e.g. mean=0.1,cov=0.25,shape=0.05 (default "
                        + ",".join(f"{k}={v:g}" for k, v in DEFAULT_EFFECT.items()) + ")")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="battery seed (default 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for conformance.json")
    p.add_argument("--sequential", action="store_true",
                   help="decide each run in Gandy-Scott stages on fresh chains (Bonferroni shares of alpha): "
                        "about 20-30%% fewer chains for a correct sampler")
    p.add_argument("--fail-fast", action="store_true",
                   help="cheapest runs first; stop at the first test rejected at Holm's first level (the verdict "
                        "is then final)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    add_overwrite(p)
    add_checks(p, alpha=open_unit, power=open_unit, seed=seed)
    p.set_defaults(func=run)


def _effect(text: str | None) -> dict[str, float] | None:
    if text is None:
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise ParameterError(f"effect must look like mean=0.1,cov=0.25,shape=0.05, got {text!r}") from None
    return out


def load_factory(spec: str) -> Any:
    """Import ``MODULE:FACTORY`` (the current folder first on the path); ParameterError on any failure."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ParameterError(f"factory must be MODULE:FACTORY (e.g. mypkg.samplers:my_factory), got {spec!r}")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # an import that fails in any way (sys.exit included) is the user's input
        raise ParameterError(f"cannot import module {module_name!r}: {type(exc).__name__}: {_one_line(exc)}") from None
    finally:
        if added:
            sys.path.remove(cwd)
    obj: Any = module
    try:
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ParameterError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise ParameterError(f"{spec} must be a callable factory(target) -> run, got {type(obj).__name__}")
    return obj


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def run(args: argparse.Namespace) -> int:
    """Run the battery, write conformance.json, print the table; 0 pass, 1 reject."""
    from genbench._io import write_json
    from genbench.conformance import check_sampler

    folder = prepare_output(args.out, OUTPUTS, overwrite=args.overwrite)  # fail before the runs, not after
    factory = load_factory(args.factory)
    progress = None if args.quiet else (lambda msg: print(f"  {msg}", file=sys.stderr, flush=True))
    try:
        report = check_sampler(factory, args.kind, targets=args.targets, alpha=args.alpha, effect=_effect(args.effect),
                               power=args.power, seed=args.seed, sequential=args.sequential,
                               fail_fast=args.fail_fast,
                               progress=progress)
    except SystemExit as exc:  # an adapter that exits must not read as a verdict (exit 0 would look like a pass)
        raise ParameterError(f"the sampler {args.factory} called sys.exit({exc.code!r}) during the battery; "
                             "a factory and its runs must return, not exit") from None
    data = report.to_dict()
    data["sampler"] = args.factory
    path = write_json(folder / "conformance.json", data)
    print(report.table().replace(report.sampler, args.factory))
    print(f"wrote {path}")
    return 0 if report.passed else 1
