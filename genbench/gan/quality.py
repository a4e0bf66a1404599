"""Every quality metric of one generator, and the family verdict over its checks.

``evaluate_generator`` samples ``n`` images, splits the held-out real digits into two disjoint sets
of ``n`` (one compared with the generated images, one for real-vs-real references), trains or
loads the reference classifier, runs every metric registered in ``genbench.gan.metrics.registry``
and controls the family-wise error of the overall verdict by Holm's procedure at ``alpha``: each
check is computed (and its power planned) at ``alpha / m`` for the m checks, keeps its own p-value,
and the verdict "some check rejects" has level ``alpha``.

The metrics, one module each under ``genbench.gan.metrics`` (features -> statistics -> metric):

* ``c2st``: classifier two-sample test (Lopez-Paz & Oquab 2017), exact binomial p-value.
* ``frechet``: Fréchet distance in the reference classifier's features beside the real-vs-real floor.
* ``kid``: unbiased MMD^2 over disjoint subsets, Student-t interval and test of KID = 0.
* ``class_balance``: two-sample chi^2 of generated vs held-out real digits' predicted classes.
* ``memorisation``: one-sided Mann-Whitney test of distances to the nearest training digit.
* ``diversity``: permutation test of within-set nearest-neighbour distances.

The GAN's own discriminator is reported beside them when a checkpoint provides it, not trusted.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from genbench import _validate
from genbench._runtime import make_generator, resolve_device
from genbench.errors import DataError, DivergenceError, ParameterError
from genbench.gan.classifier import ClassifierConfig, ClassifierSummary, TrainedClassifier, reference_classifier
from genbench.gan.metrics import registry
from genbench.gan.metrics.base import EvaluationInputs, as_images, labels_of, source_of
from genbench.gan.metrics.c2st import MIN_TRAIN_PER_SIDE, C2ST_CLASSIFIERS, C2STResult, SmallCNN, c2st, c2st_test_size
from genbench.gan.metrics.class_balance import ClassBalanceResult, class_balance, class_histogram
from genbench.gan.metrics.discriminator import DiscriminatorScores, discriminator_scores
from genbench.gan.metrics.diversity import DiversityResult, diversity
from genbench.gan.metrics.family import FamilyVerdict, holm
from genbench.gan.metrics.frechet import FrechetResult, frechet_distance
from genbench.gan.metrics.kid import KIDResult, kernel_inception_distance
from genbench.gan.metrics.memorisation import MemorisationResult, memorisation
from genbench.gan.models import sample_noise

__all__ = [
    "C2STResult", "C2ST_CLASSIFIERS", "ClassBalanceResult", "DiscriminatorScores", "DiversityResult",
    "FamilyVerdict", "FrechetResult", "KIDResult", "MemorisationResult", "QualityReport", "SmallCNN", "c2st",
    "c2st_test_size", "class_balance", "class_histogram", "discriminator_scores", "diversity",
    "evaluate_generator", "frechet_distance", "kernel_inception_distance", "memorisation", "sample_images",
]


@dataclass(frozen=True)
class QualityReport:
    """Every quality figure of one generator; each metric's typed result is ``report.<metric name>``."""

    n: int
    seed: int
    device: str
    generator: str
    real_test_source: str
    real_train_source: str
    classifier: ClassifierSummary
    metrics: dict[str, Any]  # metric name -> its frozen result dataclass, in registration order
    family: FamilyVerdict
    check_alpha: float  # the level each check is computed at: family alpha / number of checks
    own_discriminator: DiscriminatorScores | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    data_note: str = ""  # where the held-out real digits came from (e.g. a seeded hold-out of training digits)

    def __getattr__(self, name: str) -> Any:
        # Registered metrics read as attributes (report.c2st, report.kid, ...); a metric added by one
        # registration line needs no field here.
        metrics = self.__dict__.get("metrics")
        if metrics is not None and name in metrics:
            return metrics[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or metric {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (each metric under its name)."""
        return {
            "n": self.n,
            "seed": self.seed,
            "device": self.device,
            "generator": self.generator,
            "real_test_source": self.real_test_source,
            "real_train_source": self.real_train_source,
            "data_note": self.data_note,
            "classifier": self.classifier.to_dict(),
            **{name: result.to_dict() for name, result in self.metrics.items()},
            "own_discriminator": self.own_discriminator.to_dict() if self.own_discriminator is not None else None,
            "family": self.family.to_dict(),
            "check_alpha": self.check_alpha,
            "seconds": dict(self.seconds),
        }

    def summary(self) -> str:
        """A one-screen human-readable summary."""
        lines = [f"generator: {self.generator}   n={self.n}  seed={self.seed}  device={self.device}"]
        if self.data_note:
            lines.append(self.data_note)
        lines.append(self.classifier.summary_line())
        lines += [result.summary_line() for result in self.metrics.values()]
        if self.own_discriminator is not None:
            lines.append(self.own_discriminator.summary_line())
        lines.append(self.family.summary_line() + f"; each check alone at alpha {self.check_alpha:g}")
        lines.append(f"time: {self.seconds.get('total', float('nan')):.1f} s")
        return "\n".join(lines)


#: The fewest images per set evaluate_generator works with (the C2ST needs 16 training images per side
#: beside an equal test half); genbench.cli.gan_evaluate.MIN_N repeats it without importing torch.
MIN_EVAL_N = 2 * MIN_TRAIN_PER_SIDE


@torch.no_grad()
def sample_images(generator: nn.Module, n: int, *, seed: int = 0, batch_size: int = 1000) -> torch.Tensor:
    """``n`` images (CPU, float32) from ``generator`` with noise from a seeded torch.Generator on its device."""
    n = _validate.positive_int("n", n)
    dev = next(generator.parameters()).device
    gen = make_generator(seed, dev)
    was = generator.training
    generator.eval()
    try:
        out = []
        for i in range(0, n, batch_size):
            z = sample_noise(min(batch_size, n - i), gen, dev)
            out.append(generator(z).cpu())
    finally:
        generator.train(was)
    imgs = torch.cat(out).float()
    if not torch.isfinite(imgs).all():
        raise DivergenceError("the generator produced non-finite images")
    return imgs


def _generated(generator: Any, n: int, seed: int, dev: torch.device,
               discriminator: nn.Module | None) -> tuple[torch.Tensor, str, nn.Module | None]:
    """(n generated images, a description of the generator, its discriminator if a checkpoint has one)."""
    desc: str | None = None
    if isinstance(generator, (str, os.PathLike)):
        from genbench.gan.train import load_discriminator, load_generator  # training sits below quality

        desc = f"checkpoint {os.fspath(generator)}"
        if discriminator is None:
            discriminator = load_discriminator(generator, dev)
        generator = load_generator(generator, dev)
    if isinstance(generator, torch.Tensor):
        fake = as_images("generated images", generator)
        if len(fake) < n:
            raise ParameterError(f"n={n} but only {len(fake)} generated images were given")
        return fake[:n], desc or f"{n} given images", discriminator
    if isinstance(generator, nn.Module):
        return sample_images(generator.to(dev), n, seed=seed), desc or type(generator).__name__, discriminator
    raise ParameterError(f"generator must be a module, a checkpoint path or an image tensor, got {type(generator).__name__}")


def evaluate_generator(
    generator: nn.Module | str | os.PathLike[str] | torch.Tensor,
    real_test: Any,
    real_train: Any,
    *,
    n: int = 2000,
    seed: int = 0,
    device: str | torch.device = "cpu",
    discriminator: nn.Module | None = None,
    epsilon: float = 0.05,
    alpha: float = 0.05,
    power: float = 0.8,
    c2st_classifier: str = "cnn",
    c2st_epochs: int = 10,
    kid_subsets: int = 10,
    classifier: TrainedClassifier | None = None,
    classifier_config: ClassifierConfig | None = None,
    data_note: str = "",
) -> QualityReport:
    """Every quality metric of a generator (module, checkpoint path, or a tensor of its images).

    ``alpha`` is the family-wise level of the overall verdict (Holm over the registered checks);
    ``real_test`` needs >= 2n held-out real digits with labels (an ``MnistData``).
    """
    t_start = time.perf_counter()
    # The C2ST's test half beside >= MIN_TRAIN_PER_SIDE training images per side, and KID's subsets:
    # checked here, before generating images and training classifiers, rather than deep in the C2ST.
    n = _validate.positive_int("n", n, minimum=max(2 * kid_subsets, MIN_EVAL_N))
    seed = _validate.positive_int("seed", seed, minimum=0)
    alpha = _validate.probability("alpha", alpha)
    c2st_classifier = _validate.choice("c2st_classifier", c2st_classifier, C2ST_CLASSIFIERS)
    dev = resolve_device(device)
    x_test, x_train = as_images("real_test", real_test), as_images("real_train", real_train)
    y_test, y_train = labels_of(real_test), labels_of(real_train)
    if y_train is None or y_test is None:
        raise DataError("real_test and real_train must carry labels (an MnistData from genbench.gan.data.load_mnist)")
    if len(x_test) < 2 * n:
        raise ParameterError(
            f"n={n} needs >= {2 * n} held-out real images (n for the comparison, n for the real-vs-real floor); "
            f"real_test has {len(x_test)}"
        )
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    fake, desc, discriminator = _generated(generator, n, seed, dev, discriminator)
    seconds["generate"] = time.perf_counter() - t0

    # Held-out real: A (compared with the generated images) and B (real-vs-real floor), disjoint.
    perm = torch.randperm(len(x_test), generator=make_generator(seed))
    real_a, real_b = x_test[perm[:n]], x_test[perm[n:2 * n]]

    t0 = time.perf_counter()
    if classifier is None:
        classifier = reference_classifier(x_train, y_train, classifier_config or ClassifierConfig(), device=dev)
    clf = classifier.summary(x_test, y_test)
    seconds["classifier"] = time.perf_counter() - t0

    checks = registry.tests()
    check_alpha = alpha / len(checks)  # Bonferroni share: a check rejected alone is rejected by Holm too
    inputs = EvaluationInputs(
        fake=fake, real=real_a, real_floor=real_b, train=x_train, classifier=classifier, seed=seed,
        alpha=check_alpha, power=_validate.probability("power", power), device=dev, epsilon=epsilon,
        c2st_classifier=c2st_classifier, c2st_epochs=c2st_epochs, kid_subsets=kid_subsets,
    )
    results: dict[str, Any] = {}
    for metric in registry.metrics():
        t0 = time.perf_counter()
        results[metric.name] = metric.evaluate(inputs)
        seconds[metric.name] = time.perf_counter() - t0
    own = discriminator_scores(discriminator.to(dev), real_a, fake) if discriminator is not None else None
    family = holm([m.name for m in checks], [results[m.name].p_value for m in checks], alpha)
    seconds["total"] = time.perf_counter() - t_start
    return QualityReport(
        n=n, seed=seed, device=str(dev), generator=desc, real_test_source=source_of(real_test),
        real_train_source=source_of(real_train), classifier=clf, metrics=results, family=family,
        check_alpha=check_alpha, own_discriminator=own, seconds=seconds, data_note=data_note,
    )
