"""`genbench report`: run the whole suite and write one self-contained HTML report."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `report` subcommand."""
    p = subparsers.add_parser(
        "report",
        help="run the whole suite and write one self-contained HTML report",
        description="Run the Langevin studies, GAN training and evaluation, the test suite and the quick "
                    "benchmarks, then write OUT/<run-id>/index.html and report.json (atomically) and update "
                    "OUT/index.html and OUT/latest. Exit status: 0 all checks pass, 1 a check or stage failed, "
                    "2 bad input.",
    )
    p.add_argument("--profile", default="quick", choices=("quick", "full"),
                   help="quick: minutes on a laptop (a 3-minute GAN budget, statistical tests only); "
                        "full: the assignment's 30 GAN epochs and the default test suite (default: quick)")
    p.add_argument("--out", default="reports", help="folder holding the runs and their index (default: reports)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] for sampling and training (default: cpu)")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="MNIST source: a torchvision root or IDX folder (default: auto, offline fallback)")
    p.add_argument("--tests-junit", default=None, metavar="PATH",
                   help="read this JUnit XML instead of running pytest")
    p.add_argument("--no-tests", action="store_true", help="do not run pytest (the tests section says so)")
    p.add_argument("--bench-json", default=None, metavar="PATH",
                   help="read this pytest-benchmark JSON instead of running the quick benchmarks")
    p.add_argument("--no-bench", action="store_true", help="do not run the benchmarks (the section says so)")
    p.add_argument("--calibration-json", default=None, metavar="PATH",
                   help="calibration.json from `genbench calibrate` to include")
    p.add_argument("--only", default=None, metavar="STAGES",
                   help="comma-separated stages to run (langevin,gan,tests,bench,calibration); others are skipped")
    p.add_argument("--seed", type=int, default=42, help="seed of every stage (default: 42)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the report; 0 when every check passes, 1 when a check or stage failed."""
    from genbench.errors import ParameterError
    from genbench.report.build import ReportConfig, build_report
    from genbench.report.html import VERDICT_FAIL

    stage_ids = ("langevin", "gan", "tests", "bench", "calibration")
    only = None
    if args.only is not None:
        only = tuple(s.strip() for s in args.only.split(",") if s.strip())
        bad = [s for s in only if s not in stage_ids]
        if bad or not only:
            raise ParameterError(f"only must list stages among {', '.join(stage_ids)}; got {args.only!r}")
    config = ReportConfig(
        profile=args.profile, out=args.out, device=args.device, data=args.data, tests_junit=args.tests_junit,
        bench_json=args.bench_json, calibration_json=args.calibration_json, seed=args.seed,
        run_tests=not args.no_tests, run_bench=not args.no_bench, only=only,
    )
    _, report = build_report(config)
    return 1 if report["verdict"] == VERDICT_FAIL else 0
