"""`genbench langevin`: one Langevin run (summary.json) or, as `genbench langevin grid`, the 3x3 study."""

from __future__ import annotations

import argparse
import math
import os
import sys

from genbench.cli.options import add_checks, add_overwrite, at_least, positive, prepare_output, seed
from genbench.errors import ParameterError

#: What each form writes into --out (an earlier run's are refused without --overwrite).
RUN_OUTPUTS = ("summary.json",)
GRID_OUTPUTS = ("grid.png", "grid.json", "target.png")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `langevin` subcommand (with the optional `grid` sub-subcommand)."""
    from genbench.cli import OneLineParser

    p = subparsers.add_parser(
        "langevin",
        help="run ULA/MALA on the 2-D Gaussian target, or the 3x3 grid study",
        description=(
            "Run ULA or MALA on N((1,1), [[1,.9],[.9,1]]) from x0 = 0 and write OUT/summary.json, "
            "or `genbench langevin grid --out DIR` for the assignment's 3x3 (T x step size) study."
        ),
    )
    p.add_argument("--steps", type=int, metavar="T", help="number of Langevin steps T >= 1 (required)")
    p.add_argument("--step-size", type=float, metavar="MU", dest="step_size", help="step size mu > 0 (required)")
    p.add_argument("--chains", type=int, default=1, help="independent chains (default 1: summarise the trajectory)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--sampler", default="ula", help="ula or mala (default ula)")
    p.add_argument("--burn-in", type=int, default=0, dest="burn_in", help="steps dropped before summarising one chain")
    p.add_argument("--thin", type=int, default=1, help="keep every K-th iterate of one chain (default 1)")
    p.add_argument("--dtype", default="float64", help="float32 or float64 (default float64)")
    p.add_argument("--out", metavar="DIR", help="output folder for summary.json (required)")
    p.add_argument("--distributed", action="store_true",
                   help="under torchrun: split the chains across ranks, merge the moments, rank 0 writes summary.json")
    p.add_argument("--block-size", type=int, default=None, dest="block_size", metavar="B",
                   help="with --distributed: chains per seeded block (default 65536; the result depends on it, not on the ranks)")
    p.add_argument("--allow-unstable", action="store_true", dest="allow_unstable",
                   help="ULA: run a step size at or above the target's stability bound (the chain then diverges)")
    add_overwrite(p)
    add_checks(p, steps=at_least(1), step_size=positive, chains=at_least(1), seed=seed, burn_in=at_least(0),
               thin=at_least(1), block_size=at_least(1))
    p.set_defaults(func=run, langevin_command=None)
    sub = p.add_subparsers(dest="langevin_command", metavar="{grid}", parser_class=OneLineParser)
    g = sub.add_parser(
        "grid",
        help="the 3x3 (T x mu) study with histograms, diagnostics and the best cell",
        description=(
            "Reproduce the assignment's 3x3 study: OUT/grid.png and OUT/grid.json. --style assignment draws the "
            "assignment's figures exactly (raw counts, each panel on its own scale, 15x15 in, and the target in "
            "OUT/target.png); the default figure shows densities on one shared scale with the target beside the "
            "grid, and its caption lists each departure."
        ),
    )
    g.add_argument("--out", metavar="DIR", required=True, help="output folder for grid.png and grid.json")
    g.add_argument("--seed", type=int, default=42, help="grid seed (default 42, the assignment's)")
    g.add_argument("--method", default="fast", help="fast (exact eigenbasis filter, default) or reference (the plain loop)")
    g.add_argument("--style", default="default", choices=("default", "assignment"),
                   help="figure style: default (densities, shared scale, target beside the grid) or assignment "
                        "(the assignment's two figures: grid.png and target.png)")
    add_overwrite(g)
    # `genbench langevin`'s own flags (with their defaults): given before `grid`, they would be parsed, then ignored.
    grid_dests = {a.dest for a in g._actions}
    run_only = {a.dest: a.default for a in p._actions if a.option_strings and a.dest not in grid_dests}
    g.set_defaults(func=run_grid_command, _arg_checks={"seed": seed}, _run_only=run_only)


def run(args: argparse.Namespace) -> int:
    """Run one Langevin configuration and write OUT/summary.json."""
    if getattr(args, "distributed", False):
        from genbench.cli.distributed import run_langevin

        return run_langevin(args)
    if args.block_size is not None:
        raise ParameterError("--block-size applies only with --distributed (it sizes the seeded blocks of chains "
                             "that the ranks share)")
    missing = [flag for flag, v in (("--steps", args.steps), ("--step-size", args.step_size), ("--out", args.out)) if v is None]
    if missing:
        raise ParameterError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required "
                             "(or use `genbench langevin grid --out DIR`)")
    if not math.isfinite(args.step_size):
        raise ParameterError(f"step_size must be a finite number > 0, got {args.step_size}")
    from genbench._io import write_json
    from genbench.cli.summary import print_summary
    from genbench.langevin.experiments import run_chain, summarize_run

    out = prepare_output(args.out, RUN_OUTPUTS, overwrite=args.overwrite)
    run_ = run_chain(args.steps, args.step_size, chains=args.chains, seed=args.seed, device=args.device,
                     sampler=args.sampler, burn_in=args.burn_in, thin=args.thin, dtype=args.dtype,
                     allow_unstable=args.allow_unstable)
    if args.allow_unstable:
        # A diverging chain's moments overflow to inf (the summary says so); numpy's warnings about it are noise.
        import warnings

        import numpy as np

        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary = summarize_run(run_)
    else:
        summary = summarize_run(run_)
    path = write_json(out / "summary.json", summary)
    print_summary(summary, path)
    return 0


def run_grid_command(args: argparse.Namespace) -> int:
    """Run the 3x3 grid and write OUT/grid.png (and OUT/target.png with --style assignment) and OUT/grid.json."""
    given = ["--" + dest.replace("_", "-") for dest, default in args._run_only.items() if getattr(args, dest, default) != default]
    if given:
        raise ParameterError(f"{', '.join(given)} belong{'s' if len(given) == 1 else ''} to `genbench langevin`, not to "
                             "`genbench langevin grid` (the grid's T and step sizes are the assignment's); drop "
                             f"{'it' if len(given) == 1 else 'them'}")
    import numpy as np

    from genbench._io import write_bytes, write_json
    from genbench.cli.summary import fmt
    from genbench.langevin.experiments import run_grid
    from genbench.report.figures import GRID_DEPARTURES, assignment_grid_figures, langevin_grid_figure

    out = prepare_output(args.out, GRID_OUTPUTS, overwrite=args.overwrite)
    g = run_grid(seed=args.seed, method=args.method)
    if args.style == "assignment":
        grid_png, target_png = assignment_grid_figures(g.steps, g.step_sizes, g.hists, g.x_edges, g.y_edges, g.target_hist)
        figures = {"grid.png": grid_png, "target.png": target_png}
    else:
        dens = [[g.density(i, j) for j in range(len(g.step_sizes))] for i in range(len(g.steps))]
        figures = {"grid.png": langevin_grid_figure(
            g.steps, g.step_sizes, dens, g.x_edges, g.y_edges, g.target_density(),
            best=(g.best["T"], g.best["mu"]), target_label=f"Target: {g.target_draws:,} exact draws",
            title=f"ULA from x0 = 0, one chain per cell (seed {g.seed}, {g.method} method) vs the target",
        )}
    for name, png in figures.items():
        write_bytes(out / name, png)
    write_json(out / "grid.json", g.to_dict(arrays=False))  # the arrays are drawn; the JSON keeps the numbers
    written = ", ".join(os.fspath(out / n) for n in (*figures, "grid.json"))
    print(f"grid ({g.method}, seed {g.seed}, {args.style} style) in {g.elapsed_s:.2f} s -> {written}")
    if args.style != "assignment":
        print("figure departs from the assignment's: " + "; ".join(GRID_DEPARTURES)
              + " (--style assignment draws the assignment's figures)")
    print(f"target: {g.target_draws} exact draws, mean {fmt(g.target_draws_mean)}, cov {fmt(g.target_draws_cov)}")
    print(f"{'T':>7} {'mu':>6} {'KL':>9} {'pred KL':>9} {'|mean-m|':>9} {'|cov-S|F':>9} {'ESS min':>8}")
    for c in g.cells:
        print(f"{c.T:>7} {c.mu:>6g} {c.kl:>9.4f} {c.predicted_kl:>9.4f} {c.mean_error:>9.4f} "
              f"{c.cov_error_fro:>9.4f} {float(np.min(c.ess)):>8.0f}")
    print(f"best: T={g.best['T']}, mu={g.best['mu']:g} "
          f"({'agrees' if g.agrees_with_assignment else 'DISAGREES'} with the assignment's T=100000, mu=0.01; "
          f"theory ranking {'agrees' if g.theory_ranking_agrees else 'DISAGREES'})")
    print(g.explanation, file=sys.stdout)
    return 0
