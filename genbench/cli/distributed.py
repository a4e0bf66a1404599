"""The ``--distributed`` variants of CLI commands (not a command itself): run under torchrun.

``genbench langevin ... --distributed`` and ``genbench gan train ... --distributed`` dispatch
here. Each opens the process group from torchrun's environment (gloo on CPU, nccl on CUDA), runs
the library function collectively, lets rank 0 alone write and print, and closes the group.
Errors are one line naming the rank (``genbench.distributed.run_on_ranks``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from genbench._io import write_json
from genbench.cli.options import prepare_output
from genbench.distributed import process_group, run_on_ranks
from genbench.errors import ParameterError


def run_langevin(args: argparse.Namespace) -> int:
    """`genbench langevin --distributed`: sharded chains, merged moments, rank 0 writes OUT/summary.json."""
    from genbench.cli.summary import print_summary
    from genbench.langevin.sharded import DEFAULT_BLOCK_SIZE, sample_sharded, summarize_sharded

    missing = [flag for flag, v in (("--steps", args.steps), ("--step-size", args.step_size), ("--out", args.out)) if v is None]
    if missing:
        raise ParameterError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required")
    if not math.isfinite(args.step_size):
        raise ParameterError(f"step_size must be a finite number > 0, got {args.step_size}")
    if args.chains < 2:
        raise ParameterError(f"--distributed splits chains across ranks: chains must be >= 2, got {args.chains}")
    if args.burn_in or args.thin != 1:
        raise ParameterError("--burn-in and --thin apply to one chain's trajectory; --distributed summarises x_T across chains")
    block = getattr(args, "block_size", None) or DEFAULT_BLOCK_SIZE

    with process_group(args.device) as ctx:

        def work() -> int:
            out = prepare_output(args.out, ("summary.json",), overwrite=args.overwrite) if ctx.is_main else None
            run = sample_sharded(args.steps, args.step_size, chains=args.chains, seed=args.seed, sampler=args.sampler,
                                 device=ctx.device, dtype=args.dtype, block_size=block, ctx=ctx)
            if ctx.is_main:
                summary = summarize_sharded(run)
                path = write_json(out / "summary.json", summary)  # type: ignore[operator]
                print_summary(summary, path)
                print(f"  {ctx.world_size} ranks ({ctx.backend}), {run.blocks} blocks of <= {run.block_size} chains; "
                      f"per rank: " + ", ".join(f"{r['chains']} chains {r['elapsed_s']:.3g} s" for r in run.per_rank))
            return 0

        return run_on_ranks(ctx, work)


def run_gan_train(args: argparse.Namespace) -> int:
    """`genbench gan train --distributed`: DDP over torchrun's ranks; rank 0 writes checkpoint and history."""
    from genbench.gan.ddp import train_gan_ddp
    from genbench.gan.train import TrainConfig

    cfg = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
        data=args.data, max_steps=args.max_steps, subset=args.subset, step_mode=args.step_mode, shuffle=args.shuffle,
    )
    with process_group(args.device) as ctx:

        def work() -> int:
            res = train_gan_ddp(cfg, args.out, ctx, resume=args.resume, overwrite=args.overwrite, quiet=args.quiet,
                                sample_every=args.sample_every)
            if ctx.is_main and not args.quiet:
                fin = res.final
                print(f"data: {res.data_source}")
                print(f"trained {res.steps} steps ({res.epochs_completed} full epochs) on {res.world_size} ranks "
                      f"({ctx.backend}, {res.history['device']}), batch {res.per_rank_batch} per rank = {res.effective_batch} effective: "
                      f"D loss {fin['d_loss']:.4f}, G loss {fin['g_loss']:.4f}, D(x) {fin['d_real']:.3f}, D(G(z)) {fin['d_fake']:.3f}; "
                      f"{res.steps_per_s:.1f} it/s this run")
                print(f"wrote {res.checkpoint}, {res.history_path} and the sample images in {res.out_dir}")
            return 0

        return run_on_ranks(ctx, work)


def run_calibrate(args: argparse.Namespace, kwargs: dict, folder: Path) -> int:
    """`genbench calibrate --distributed`: trials spread over torchrun's ranks (gloo); rank 0 writes and prints."""
    from genbench.calibration.study import run_study, write_study
    from genbench.calibration.summary import format_table
    from genbench.distributed import rank_map

    if getattr(args, "workers", 1) != 1:
        raise ParameterError("--workers and --distributed are alternatives: under torchrun each rank is one worker")
    with process_group("cpu") as ctx:  # trials run on the CPU; gloo carries their results
        study = run_on_ranks(ctx, lambda: run_study(args.profile, map_fn=rank_map(ctx), **kwargs))
        study = study.with_distributed({**ctx.describe(),
                                        "map": "trial i on rank i mod world_size; results gathered in plan order"})
        if ctx.is_main:
            path = write_study(study, folder)
            print(format_table(study))
            print(f"\nwrote {path} ({ctx.world_size} ranks)")
            if study.problems:
                print(f"calibration problems: {'; '.join(study.problems)}", file=sys.stderr)
        return 1 if study.problems else 0
