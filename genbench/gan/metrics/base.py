"""What every GAN quality metric shares: input validation, the classifier features of one image set,
the inputs ``evaluate_generator`` hands to each registered metric, and the result protocols.

The layout follows torch-fidelity (one metric per module, features -> statistics -> metric): a
metric module computes its statistic from images or features, returns a frozen result dataclass
with ``to_dict()`` and ``summary_line()``, and offers ``evaluate(inputs)`` for the registry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from genbench.errors import DataError, DivergenceError, ParameterError
from genbench.gan.classifier import TrainedClassifier


def as_images(name: str, x: Any) -> torch.Tensor:
    """``x`` (a tensor or anything with ``.images``) as float32 CPU images (N, 1, 28, 28), N >= 2."""
    if hasattr(x, "images"):
        x = x.images
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{name} must be images of shape (N, 1, 28, 28), got {type(x).__name__}")
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise DataError(f"{name} must be images of shape (N, 1, 28, 28), got {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise DataError(f"{name} holds {x.shape[0]} image(s); at least 2 are needed")
    x = x.detach().to("cpu", torch.float32)
    if not torch.isfinite(x).all():
        raise DataError(f"{name} contains non-finite pixel values")
    return x


def as_features(name: str, x: Any) -> np.ndarray:
    """``x`` (a tensor or array of shape (N, d)) as a finite float64 array."""
    a = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    if a.ndim != 2:
        raise ParameterError(f"{name} must be an (N, d) array of features, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise DivergenceError(f"{name} contains non-finite values")
    return a


def labels_of(x: Any) -> torch.Tensor | None:
    """The labels ``x`` carries (an ``MnistData``), or None for a bare tensor."""
    return x.labels.detach().cpu().long() if hasattr(x, "labels") else None


def source_of(x: Any) -> str:
    """Where ``x`` came from, as its ``source`` attribute says."""
    return str(getattr(x, "source", "in-memory tensor"))


def seeded_module(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """A module built with its weights initialised from ``seed``, leaving the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


@dataclass(frozen=True)
class FeatureSet:
    """The reference classifier's view of one image set: penultimate features and class probabilities."""

    features: torch.Tensor  # (N, 128) float32, CPU
    probabilities: torch.Tensor  # (N, 10) float32, CPU

    @property
    def classes(self) -> torch.Tensor:
        """Predicted class of each image (N,)."""
        return self.probabilities.argmax(1)


def extract_features(classifier: TrainedClassifier, images: torch.Tensor) -> FeatureSet:
    """Features and class probabilities of ``images`` under the reference classifier."""
    feats, probs = classifier.features_and_probabilities(images)
    return FeatureSet(feats, probs)


@dataclass(frozen=True)
class EvaluationInputs:
    """What ``evaluate_generator`` gives every registered metric (images on the CPU, float32).

    ``real`` is compared with ``fake``; ``real_floor`` is a second, disjoint held-out set of the
    same size for real-vs-real references; ``alpha`` is each check's own level (the family level
    divided by the number of checks).
    """

    fake: torch.Tensor
    real: torch.Tensor
    real_floor: torch.Tensor
    train: torch.Tensor
    classifier: TrainedClassifier
    seed: int
    alpha: float
    power: float
    device: torch.device
    epsilon: float | None = 0.05
    c2st_classifier: str = "cnn"
    c2st_epochs: int = 10
    kid_subsets: int = 10

    @property
    def n(self) -> int:
        """Generated images (and real images per held-out set)."""
        return len(self.fake)

    @functools.cached_property
    def fake_features(self) -> FeatureSet:
        """Reference-classifier view of the generated images (computed once)."""
        return extract_features(self.classifier, self.fake)

    @functools.cached_property
    def real_features(self) -> FeatureSet:
        """Reference-classifier view of the held-out real set compared with the generated one."""
        return extract_features(self.classifier, self.real)

    @functools.cached_property
    def floor_features(self) -> FeatureSet:
        """Reference-classifier view of the second held-out real set (the real-vs-real floor)."""
        return extract_features(self.classifier, self.real_floor)


@runtime_checkable
class MetricResult(Protocol):
    """What every metric returns: a frozen dataclass with a JSON form and a one-line summary."""

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""

    def summary_line(self) -> str:
        """One line for the printed summary."""


class HypothesisResult:
    """Mixin of a frozen result dataclass that is a hypothesis test: ``rejected`` and ``to_dict()``."""

    p_value: float
    alpha: float
    null_hypothesis: str

    @property
    def rejected(self) -> bool:
        """True when H0 is rejected at ``alpha``."""
        return self.p_value < self.alpha

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, with the verdict."""
        d = asdict(self)  # type: ignore[call-overload]
        d["rejected"] = self.rejected
        return d
