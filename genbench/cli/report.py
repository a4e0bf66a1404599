"""`genbench report`: run the whole suite and write one self-contained HTML report."""

from __future__ import annotations

import argparse

STAGES = ("langevin", "gan", "samplers", "tests", "bench", "calibration")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `report` subcommand."""
    p = subparsers.add_parser(
        "report",
        help="run the whole suite and write one self-contained HTML report",
        description="Run the Langevin studies, GAN training and evaluation, the sampler conformance battery, the "
                    "project's test suite and benchmarks, and the calibration study, then write "
                    "OUT/<run-id>/index.html and report.json (atomically) and update OUT/index.html and OUT/latest. "
                    "Run it from the project's root (tests/ and benchmarks/ are taken from the current folder) or "
                    "pass --tests / --benchmarks. Exit status: 0 all checks pass, 1 a check or stage failed, "
                    "2 bad input.",
    )
    p.add_argument("--profile", default="quick", choices=("quick", "full"),
                   help="quick: minutes on a laptop (a 3-minute GAN budget, statistical tests only); "
                        "full: the assignment's 30 GAN epochs and the default test suite (default: quick)")
    p.add_argument("--out", default="reports", help="folder holding the runs and their index (default: reports)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] for sampling and training (default: cpu)")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="MNIST source: a torchvision root or IDX folder (default: auto, offline fallback)")
    p.add_argument("--tests", default=None, metavar="DIR", dest="tests_dir",
                   help="the test folder to run with pytest (default: tests/ in the current folder)")
    p.add_argument("--tests-junit", default=None, metavar="PATH",
                   help="read this JUnit XML instead of running pytest")
    p.add_argument("--no-tests", action="store_true", help="do not run pytest (the tests section says so)")
    p.add_argument("--benchmarks", default=None, metavar="DIR", dest="benchmarks_dir",
                   help="the benchmark suite to run (default: benchmarks/ in the current folder)")
    p.add_argument("--bench-json", default=None, metavar="PATH",
                   help="read this pytest-benchmark JSON instead of running the benchmarks")
    p.add_argument("--no-bench", action="store_true", help="do not run the benchmarks (the section says so)")
    p.add_argument("--calibration-json", default=None, metavar="PATH",
                   help="calibration.json from `genbench calibrate` to include (default: OUT/calibration/"
                        "calibration.json when made by this code with the same profile and seed, else run the study)")
    p.add_argument("--only", default=None, metavar="STAGES",
                   help=f"comma-separated stages to run ({','.join(STAGES)}); others are skipped")
    p.add_argument("--seed", type=int, default=42, help="seed of every stage (default: 42)")
    p.set_defaults(func=run)


def _check_inputs(args: argparse.Namespace) -> None:
    """Given result files and folders must exist and parse: bad input (exit 2) before any stage runs."""
    import importlib
    from pathlib import Path

    from genbench.errors import DataError, ParameterError

    for flag, path in (("--tests-junit", args.tests_junit), ("--bench-json", args.bench_json),
                       ("--calibration-json", args.calibration_json)):
        if path is not None and not Path(path).is_file():
            raise ParameterError(f"{flag} {path!r} is not an existing file")
    for flag, path in (("--tests", args.tests_dir), ("--benchmarks", args.benchmarks_dir)):
        if path is not None and not Path(path).is_dir():
            raise ParameterError(f"{flag} {path!r} is not an existing folder")
    readers = (("--tests-junit", args.tests_junit, "genbench.report.junit", "parse_junit"),
               ("--bench-json", args.bench_json, "genbench.bench.results", "load_run"),
               ("--calibration-json", args.calibration_json, "genbench.calibration.study", "read_study"))
    for flag, path, module, reader in readers:
        if path is None:
            continue
        try:
            getattr(importlib.import_module(module), reader)(path)
        except DataError as exc:
            first = str(exc).splitlines()[0]
            named = f"{flag[2:].replace('-', '_')}=" in first  # becomes the flag in cli_message: do not say it twice
            raise ParameterError(first if named else f"{flag}: {first}") from None
        except Exception as exc:  # valid JSON of another shape: still bad input, said in one line
            raise ParameterError(f"{flag}: {path!r} does not hold what it should ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else 'unexpected content'})") from None


def run(args: argparse.Namespace) -> int:
    """Build the report; 0 when every check passes, 1 when a check or stage failed."""
    from genbench.errors import ParameterError
    from genbench.report.build import ReportConfig, build_report
    from genbench.report.html import VERDICT_FAIL

    only = None
    if args.only is not None:
        only = tuple(s.strip() for s in args.only.split(",") if s.strip())
        bad = [s for s in only if s not in STAGES]
        if bad or not only:
            raise ParameterError(f"--only must list stages among {', '.join(STAGES)}; got {args.only!r}")
    _check_inputs(args)
    config = ReportConfig(
        profile=args.profile, out=args.out, device=args.device, data=args.data, tests_junit=args.tests_junit,
        bench_json=args.bench_json, calibration_json=args.calibration_json, seed=args.seed,
        run_tests=not args.no_tests, run_bench=not args.no_bench, only=only, tests_dir=args.tests_dir,
        benchmarks_dir=args.benchmarks_dir,
    )
    _, report = build_report(config)
    return 1 if report["verdict"] == VERDICT_FAIL else 0
