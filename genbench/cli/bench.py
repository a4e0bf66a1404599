"""`genbench bench`: run the pytest-benchmark suite and print a table; `genbench bench gate`: CI gating."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from genbench.bench.profiles import PROFILES
from genbench.cli.options import add_checks, at_least, open_unit
from genbench.errors import ParameterError

THREADS_ENV = "GENBENCH_BENCH_THREADS"

# The parser's choices and defaults, kept here so that building it imports no numpy, scipy or torch;
# tests/test_cli.py checks they equal the library's (bench.suite.DEVICES/TIMERS, bench.gate.MIN_ROUNDS_BASELINE).
DEVICES = ("all", "cpu", "cuda")
TIMERS = ("wall", "cpu")
MIN_ROUNDS_BASELINE = 7


def fraction(text: str) -> float:
    """Parse ``20%`` or ``0.2`` into 0.2 (argparse type)."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a percentage like 20% or a fraction like 0.2, got {text!r}") from None
    if not (0.0 < value < 10.0):
        raise argparse.ArgumentTypeError(f"must be > 0 and < 1000% (e.g. 20% or 0.2), got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `bench` subcommand and its `gate` subcommand."""
    p = subparsers.add_parser(
        "bench",
        help="run the pytest-benchmark suite (CPU and CUDA) and print throughput and speedups",
        description=(
            "Run benchmarks/ through pytest-benchmark in a fresh interpreter, keep its JSON, and print "
            "workload x device median throughput with its interquartile range, the speedup over the "
            "assignment's code measured in the same run, and CUDA over CPU when a GPU is present."
        ),
    )
    p.add_argument("--profile", choices=tuple(PROFILES), default="quick", help="quick (<= 5 min on 2 cores) or full")
    p.add_argument("--json", metavar="PATH", help="write pytest-benchmark's JSON here (default: a temporary file); "
                   "an existing file is refused without --overwrite")
    p.add_argument("--overwrite", action="store_true", help="replace the file given to --json if it exists")
    p.add_argument("--device", choices=DEVICES, default="all", help="run only CPU or CUDA variants (default all)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,  # then $GENBENCH_BENCH_THREADS, read when the suite runs (not by `bench gate`)
        metavar="N",
        help="CPU threads for torch and BLAS in the suite (default $GENBENCH_BENCH_THREADS or 0: one per core); "
        "1 on a shared, oversubscribed runner",
    )
    p.add_argument(
        "--timer",
        choices=TIMERS,
        default="wall",
        help="wall (default) or cpu: CPU-seconds of the process, with --threads 1; it does not count time spent "
        "waiting for a core, so ratios hold on a shared, oversubscribed machine",
    )
    p.add_argument("-k", dest="keyword", metavar="EXPR", help="pytest -k expression selecting benchmarks")
    p.add_argument("--suite", metavar="DIR", help="benchmark folder (default: benchmarks/ in the current folder or its nearest parent that has one)")
    p.add_argument("--verbose", action="store_true", help="show pytest's full output")
    add_checks(p, threads=at_least(0))
    p.set_defaults(func=run_bench)

    sub = p.add_subparsers(dest="bench_command", metavar="gate")
    g = sub.add_parser(
        "gate",
        help="judge a benchmark JSON: same-run ratio gates, and regressions against a baseline",
        description=(
            "Exit 1 with a table when a ratio gate fails (its whole interval below the declared minimum) "
            "or a benchmark regressed against the baseline (slowdown of medians > --max-slowdown and > the "
            "run-to-run spread, and a one-sided Mann-Whitney U test at --alpha); 0 otherwise. Verdicts the "
            "samples cannot decide are reported as inconclusive (exit 0 unless --strict)."
        ),
    )
    g.add_argument("current", metavar="CURRENT.json", help="pytest-benchmark JSON of the run to judge")
    g.add_argument("--baseline", metavar="BASELINE.json", help="earlier run on the same machine to compare with")
    g.add_argument("--max-slowdown", type=fraction, default=0.20, metavar="PCT", help="allowed slowdown (default 20%%)")
    g.add_argument("--alpha", type=float, default=0.01, help="rank-test significance level (default 0.01)")
    g.add_argument(
        "--min-rounds", type=int, default=MIN_ROUNDS_BASELINE, help="rounds a side for a baseline verdict (default 7)"
    )
    g.add_argument("--gates", metavar="FILE", default=None,
                   help="ratio-gate declarations (TOML; default: benchmarks/gates.toml in the current folder if present, "
                        "else genbench's own, shipped in the package)")
    g.add_argument("--strict", action="store_true", help="also exit 1 when any verdict is inconclusive")
    g.set_defaults(func=run_bench_gate, _arg_checks={"alpha": open_unit})


def run_bench(args: argparse.Namespace) -> int:
    """Run the suite, print the table; exit 1 if any benchmark errored."""
    from genbench.bench.suite import run_suite
    from genbench.bench.table import format_suite

    if args.threads is None:
        env = os.environ.get(THREADS_ENV, "0")
        try:
            args.threads = at_least(0)(THREADS_ENV, int(env))
        except ValueError:
            raise ParameterError(f"{THREADS_ENV} must be an integer >= 0, got {env!r}") from None
    if args.json:
        # Refuse before minutes of benchmarking, not after: an earlier run's JSON is often a baseline.
        if Path(args.json).is_file() and not args.overwrite:
            raise ParameterError(f"--json {args.json!r} already exists (an earlier run's results); pass --overwrite to "
                                 "replace it, or choose another path")
        outcome = run_suite(
            args.json, profile=args.profile, device=args.device, keyword=args.keyword, suite=args.suite, quiet=not args.verbose,
            threads=args.threads, timer=args.timer,
        )
    else:
        with tempfile.TemporaryDirectory(prefix="genbench-bench-") as tmp:
            outcome = run_suite(
                Path(tmp) / "bench.json",
                profile=args.profile,
                device=args.device,
                keyword=args.keyword,
                suite=args.suite,
                quiet=not args.verbose,
                threads=args.threads,
                timer=args.timer,
            )
    print()
    print(format_suite(outcome.run))
    if args.json:
        print(f"\npytest-benchmark JSON: {args.json}  (gate it: genbench bench gate {args.json})")
    if outcome.pytest_status != 0:
        print("genbench bench: some benchmarks failed (see pytest's output above)")
        return 1
    return 0


def run_bench_gate(args: argparse.Namespace) -> int:
    """Judge a run; print the verdict table; exit 1 on a failed gate or a regression."""
    from genbench.bench.gate import DEFAULT_GATES, run_gate
    from genbench.bench.table import format_gate

    for flag, path in (("CURRENT.json", args.current), ("--baseline", args.baseline)):
        if path is not None and not Path(path).is_file():
            raise ParameterError(f"{flag} {path!r} does not exist or is not a file")
    gates = args.gates
    if gates is None:  # the project's own gates beside its benchmarks (as `genbench report` reads them)
        local = Path.cwd() / "benchmarks" / "gates.toml"
        gates = local if local.is_file() else DEFAULT_GATES
    report = run_gate(
        args.current,
        baseline=args.baseline,
        gates=gates,
        max_slowdown=args.max_slowdown,
        alpha=args.alpha,
        min_rounds=args.min_rounds,
    )
    print(format_gate(report))
    return report.exit_code(strict=args.strict)
