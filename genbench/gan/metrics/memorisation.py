"""Memorisation: images -> pixel-L2 distance to the nearest training digit -> a one-sided
Mann-Whitney test against the same distances of held-out real digits (the global form of Meehan
et al. 2020's C_T).

H0: generated images are no nearer to the training set than unseen real digits are. The test is
exact under exchangeability when the "generated" images are themselves unseen real digits. Noise or
blobs far from every digit are not memorisation and are not flagged (their distances are larger).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import scipy.stats
import torch

from genbench import _validate
from genbench.gan.metrics.base import EvaluationInputs, HypothesisResult, as_images

NULL_HYPOTHESIS = "generated images are no nearer to the training images than held-out real digits are"


@dataclass(frozen=True)
class MemorisationResult(HypothesisResult):
    """Nearest-training-digit distances of generated vs held-out real images, and the U test."""

    fraction_nearer_train: float  # P(generated nearer its nearest training digit than a held-out one), U/(n m)
    n_nearer_train: int  # generated images nearer than the held-out median
    n: int
    n_heldout: int
    p_value: float
    alpha: float
    power: float
    detectable_effect: float  # excess of fraction_nearer_train over 1/2 detected with `power`
    median_nn_train: float
    median_nn_heldout: float
    near_copies: int  # generated images within 1% of the held-out median distance of a training digit
    reference_size: int
    metric: str = "pixel L2 distance to the nearest training digit"
    null_hypothesis: str = NULL_HYPOTHESIS

    def summary_line(self) -> str:
        """One line for the printed summary."""
        return (f"memorisation: P(generated nearer train than held-out real) = {self.fraction_nearer_train:.3f}, "
                f"p={self.p_value:.3g}, near copies {self.near_copies}")


def nearest_distances(query: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Pixel-L2 distance (float64) of each query image to its nearest reference image."""
    q = query.flatten(1).double()
    r = reference.flatten(1).double()
    return torch.cat([torch.cdist(c, r).min(dim=1).values for c in q.split(500)])


def memorisation_detectable_effect(n: int, n_heldout: int | None = None, *, alpha: float = 0.01,
                                   power: float = 0.8) -> float:
    """Excess of P(nearer) over 1/2 detected with ``power`` by the U test of ``n`` vs ``n_heldout`` images."""
    n = _validate.positive_int("n", n)
    m = _validate.positive_int("n_heldout", n if n_heldout is None else n_heldout)
    alpha, power = _validate.probability("alpha", alpha), _validate.probability("power", power)
    # Normal approximation of U's law: its s.e. under H0 is sqrt((n+m+1)/(12 n m)).
    return float((scipy.stats.norm.isf(alpha) + scipy.stats.norm.ppf(power)) * math.sqrt((n + m + 1) / (12.0 * n * m)))


def memorisation(fake: Any, train: Any, heldout: Any, *, alpha: float = 0.01, power: float = 0.8,
                 seed: int = 0) -> MemorisationResult:
    """Are generated images nearer (pixel L2) to the training set than held-out real images are?

    ``seed`` is accepted so that every metric takes one; this test draws nothing at random.
    """
    x_fake, x_train, x_held = as_images("fake", fake), as_images("train", train), as_images("heldout", heldout)
    alpha, power = _validate.probability("alpha", alpha), _validate.probability("power", power)
    del seed
    d_fake, d_held = nearest_distances(x_fake, x_train), nearest_distances(x_held, x_train)
    mw = scipy.stats.mannwhitneyu(d_fake.numpy(), d_held.numpy(), alternative="less", method="asymptotic")
    # scipy's U counts pairs with d_fake > d_held (ties 1/2), so 1 - U/(n1 n2) estimates
    # P(d_fake < d_held): 1/2 under H0, -> 1 for copies, -> 0 for images far from every digit.
    prob = 1.0 - float(mw.statistic / (len(d_fake) * len(d_held)))
    # A generated image within 1% of the median held-out distance is a near copy of a training digit.
    copy_tol = 0.01 * float(d_held.median())
    return MemorisationResult(
        fraction_nearer_train=prob,
        n_nearer_train=int((d_fake < d_held.median()).sum()),
        n=len(d_fake),
        n_heldout=len(d_held),
        p_value=float(mw.pvalue),
        alpha=alpha,
        power=power,
        detectable_effect=memorisation_detectable_effect(len(d_fake), len(d_held), alpha=alpha, power=power),
        median_nn_train=float(d_fake.median()),
        median_nn_heldout=float(d_held.median()),
        near_copies=int((d_fake < copy_tol).sum()),
        reference_size=len(x_train),
    )


def evaluate(inputs: EvaluationInputs) -> MemorisationResult:
    """Generated images against the second held-out real set, distances to the training digits."""
    return memorisation(inputs.fake, inputs.train, inputs.real_floor, alpha=inputs.alpha, power=inputs.power)
