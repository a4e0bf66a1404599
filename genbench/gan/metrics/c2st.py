"""Classifier two-sample test (Lopez-Paz & Oquab 2017): images -> a fresh classifier's held-out
accuracy -> an exact binomial test.

A classifier (a small CNN by default; the seed's D architecture, an MLP, as an option) is trained
on part of the real and generated images; its accuracy on the rest is the statistic. Under H0
"generated and real images have the same law" the number of correct test predictions is
Binomial(n, 1/2) (with a balanced test set, less spread: Hoeffding 1956), so the exact one-sided
binomial p-value is valid. The test size comes from the exact binomial power for a stated accuracy
excess epsilon. The CNN is the default because the calibration study measured the MLP, trained on
~850 images, blind to sigma = 0.3 pixel noise that the CNN always detects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F
from torch import nn

from genbench import _validate
from genbench._runtime import make_generator, resolve_device
from genbench.errors import DivergenceError, ParameterError
from genbench.gan.metrics.base import EvaluationInputs, HypothesisResult, as_images, seeded_module
from genbench.gan.models import Discriminator
from genbench import planning as _power

C2ST_CLASSIFIERS = ("mlp", "cnn")
MIN_TRAIN_PER_SIDE = 16  # fewer training images per side cannot fit a classifier at all


class SmallCNN(nn.Module):
    """C2ST classifier: conv5x5(16)-pool-conv3x3(32)-pool-fc64-fc1, sigmoid output like the seed's D."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2),
            nn.LeakyReLU(0.2),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 64),
            nn.LeakyReLU(0.2),
            nn.Linear(64, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probability (B, 1) that each image is real."""
        return self.net(x)


@dataclass(frozen=True)
class C2STResult(HypothesisResult):
    """Outcome of one classifier two-sample test (accuracy on held-out test points)."""

    accuracy: float
    ci_low: float  # Clopper-Pearson 95% interval of the accuracy
    ci_high: float
    p_value: float  # exact one-sided binomial, H1: accuracy > 1/2
    auc: float  # area under the ROC curve of the classifier's scores on the test points
    log_loss: float  # mean binary cross-entropy (nats) on the test points; ln 2 = chance
    n_correct: int
    n_test: int  # test points (half real, half generated)
    n_train: int  # training points (half real, half generated)
    epsilon: float | None  # accuracy excess the test size was planned for (None: n_test given)
    alpha: float
    power: float  # planned power at epsilon
    detectable_epsilon: float | None  # accuracy excess detected with probability `power` at n_test
    classifier: str
    epochs: int
    seed: int
    null_hypothesis: str = "real and generated images have the same law (C2ST accuracy = 1/2)"

    def summary_line(self) -> str:
        """One line for the printed summary."""
        det = f"{self.detectable_epsilon:.3f}" if self.detectable_epsilon is not None else "n/a"
        return (f"C2ST ({self.classifier}): accuracy {self.accuracy:.4f} [95% CI {self.ci_low:.4f}, {self.ci_high:.4f}], "
                f"p={self.p_value:.3g}, AUC {self.auc:.4f}, n_test={self.n_test} (detects accuracy >= 0.5+{det} "
                f"with power {self.power:g} at alpha {self.alpha:g})")


def c2st_test_size(epsilon: float = 0.05, alpha: float = 0.01, power: float = 0.8) -> int:
    """Test points (even) at which C2ST detects accuracy 1/2 + ``epsilon`` with probability ``power``."""
    n = _power.required_samples("c2st", epsilon, alpha=alpha, power=power)
    # Balanced test set (half real, half generated): the smallest even n reaching the power (the
    # exact binomial power is a sawtooth in n, so n + 1 may fall just short).
    while n % 2 or _power.power("c2st", epsilon, n, alpha=alpha) < power:
        n += 1
    return n


def c2st_detectable_epsilon(n_test: int, alpha: float = 0.01, power: float = 0.8) -> float | None:
    """Accuracy excess over 1/2 detected with probability ``power`` from ``n_test`` points (None: not even 1/2)."""
    try:
        return _power.detectable_effect("c2st", n_test, alpha=alpha, power=power)
    except ParameterError:
        return None  # so few test points that even a perfect classifier is not detected with this power


def _auc(scores_real: np.ndarray, scores_fake: np.ndarray) -> float:
    # Mann-Whitney U / (n1 n0) is the AUC, ties counted one half.
    u = scipy.stats.mannwhitneyu(scores_real, scores_fake, alternative="two-sided").statistic
    return float(u / (len(scores_real) * len(scores_fake)))


def c2st(
    real: Any,
    fake: Any,
    *,
    epsilon: float | None = None,
    alpha: float = 0.01,
    power: float = 0.8,
    n_test: int | None = None,
    classifier: str = "cnn",
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> C2STResult:
    """Classifier two-sample test of ``real`` vs ``fake`` images with a freshly trained classifier.

    ``n_test`` defaults to the size at which accuracy 1/2 + ``epsilon`` (default 0.05) is detected
    with probability ``power``; an explicit ``n_test`` together with an ``epsilon`` it cannot detect
    with that power is an error.
    """
    x_real, x_fake = as_images("real", real), as_images("fake", fake)
    classifier = _validate.choice("classifier", classifier, C2ST_CLASSIFIERS)
    alpha = _validate.probability("alpha", alpha)
    power = _validate.probability("power", power)
    epochs = _validate.positive_int("epochs", epochs)
    batch_size = _validate.positive_int("batch_size", batch_size)
    lr = _validate.positive_float("lr", lr)
    dev = resolve_device(device)
    if n_test is None:
        epsilon = 0.05 if epsilon is None else epsilon
        n_test = c2st_test_size(epsilon, alpha, power)
    else:
        n_test = _validate.positive_int("n_test", n_test, minimum=2)
        n_test += n_test % 2
        if epsilon is not None and _power.power("c2st", epsilon, n_test, alpha=alpha) < power:
            need = c2st_test_size(epsilon, alpha, power)
            raise ParameterError(
                f"n_test={n_test} is too small to detect epsilon={epsilon:g} with power {power:g} at "
                f"alpha={alpha:g}; it needs n_test >= {need} (or omit n_test to plan it)"
            )
    half = n_test // 2
    m = min(len(x_real), len(x_fake))
    n_train_half = m - half
    if n_train_half < MIN_TRAIN_PER_SIDE:
        raise ParameterError(
            f"C2ST needs more images: {n_test} test points (alpha={alpha:g}, epsilon={epsilon}, "
            f"power={power:g}) plus >= {MIN_TRAIN_PER_SIDE} training images per class, i.e. >= "
            f"{half + MIN_TRAIN_PER_SIDE} real and generated images each; got {len(x_real)} real and {len(x_fake)} generated"
        )
    gen = make_generator(seed)
    pr = torch.randperm(len(x_real), generator=gen)[:m]
    pf = torch.randperm(len(x_fake), generator=gen)[:m]
    test_x = torch.cat([x_real[pr[:half]], x_fake[pf[:half]]])
    test_y = torch.cat([torch.ones(half), torch.zeros(half)])
    train_x = torch.cat([x_real[pr[half:]], x_fake[pf[half:]]]).to(dev)
    train_y = torch.cat([torch.ones(n_train_half), torch.zeros(n_train_half)]).to(dev)

    model = seeded_module(seed, Discriminator if classifier == "mlp" else SmallCNN).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(train_x), generator=gen).to(dev)
        for idx in perm.split(batch_size):
            p = model(train_x[idx]).squeeze(1)
            loss = F.binary_cross_entropy(p, train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        scores = torch.cat([model(c.to(dev)).squeeze(1).cpu() for c in test_x.split(1000)]).double()
    if not torch.isfinite(scores).all():
        raise DivergenceError("C2ST classifier produced non-finite outputs")
    correct = int(((scores > 0.5) == test_y.bool()).sum())
    test = scipy.stats.binomtest(correct, n_test, 0.5, alternative="greater")
    ci = scipy.stats.binomtest(correct, n_test, 0.5).proportion_ci(0.95, method="exact")
    eps_p = 1e-7  # keeps the log-loss finite when the sigmoid saturates in float32
    yd = test_y.double()
    ll = -(yd * torch.log(scores.clamp(eps_p, 1)) + (1 - yd) * torch.log((1 - scores).clamp(eps_p, 1))).mean()
    s = scores.numpy()
    return C2STResult(
        accuracy=correct / n_test,
        ci_low=float(ci.low),
        ci_high=float(ci.high),
        p_value=float(test.pvalue),
        auc=_auc(s[:half], s[half:]),
        log_loss=float(ll),
        n_correct=correct,
        n_test=n_test,
        n_train=2 * n_train_half,
        epsilon=None if epsilon is None else float(epsilon),
        alpha=alpha,
        power=power,
        detectable_epsilon=c2st_detectable_epsilon(n_test, alpha, power),
        classifier=classifier,
        epochs=epochs,
        seed=seed,
    )


def evaluate(inputs: EvaluationInputs) -> C2STResult:
    """C2ST of the generated images against the first held-out real set.

    The test size is planned for ``inputs.epsilon``; when the images cannot hold that many test
    points beside an equal number of training points, half of each set is the test set and the
    result states the accuracy excess detectable at that size.
    """
    eps = 0.05 if inputs.epsilon is None else inputs.epsilon
    planned = c2st_test_size(eps, inputs.alpha, inputs.power)
    n_test = min(planned, inputs.n - inputs.n % 2)
    return c2st(
        inputs.real, inputs.fake, epsilon=eps if n_test == planned else None, n_test=n_test, alpha=inputs.alpha,
        power=inputs.power, classifier=inputs.c2st_classifier, epochs=inputs.c2st_epochs, seed=inputs.seed,
        device=inputs.device,
    )
