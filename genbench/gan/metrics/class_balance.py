"""Class balance (mode collapse): reference-classifier predictions -> class counts -> a chi^2 test.

The right null compares like with like. The reference classifier errs (about 2% of real digits),
and its errors are not uniform over classes, so the predicted classes of perfect generated digits
do not follow the training labels' frequencies: a goodness-of-fit test against label frequencies
rejects a perfect generator once n is large. ``class_balance`` therefore compares the predicted
classes of generated digits with the predicted classes of held-out real digits, by the two-sample
(2 x K contingency) chi^2 test: H0 "both sets' predicted classes have the same law". The
goodness-of-fit form (``class_histogram``, against given frequencies) stays for callers who know the
law of the classifier's predictions.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.optimize
import scipy.stats
import torch

from genbench import _validate
from genbench.errors import ParameterError
from genbench.gan.metrics.base import EvaluationInputs, HypothesisResult

TWO_SAMPLE_H0 = "generated and held-out real digits have the same law of predicted classes"
GOF_H0 = "predicted classes of the generated digits follow the expected class frequencies"


@dataclass(frozen=True)
class ClassBalanceResult(HypothesisResult):
    """Predicted-class counts of generated digits and a chi^2 test of their law."""

    counts: list[int]  # predicted classes of the generated digits
    reference_counts: list[int] | None  # predicted classes of the real digits (two-sample form)
    expected_frequencies: list[float]  # H0 frequencies (two-sample: the pooled frequencies)
    chi2: float
    dof: int
    p_value: float
    alpha: float
    power: float
    detectable_w: float | None  # Cohen's w of the generated vs real class frequencies detected with `power`
    classes_present: int
    mean_confidence: float | None  # mean top-class probability of the generated digits (when given probabilities)
    n: int
    n_reference: int | None
    test: str  # "two-sample contingency chi2" or "goodness-of-fit chi2"
    null_hypothesis: str

    def summary_line(self) -> str:
        """One line for the printed summary."""
        ref = f" vs real {self.reference_counts}" if self.reference_counts is not None else ""
        conf = f", mean confidence {self.mean_confidence:.3f}" if self.mean_confidence is not None else ""
        return (f"classes: {self.counts}{ref}  chi2={self.chi2:.1f} (dof {self.dof}, {self.test}), "
                f"p={self.p_value:.3g}{conf}")


def predicted_classes(classes: Any, num_classes: int = 10) -> tuple[np.ndarray, float | None]:
    """Class counts (K,) from (N, K) probabilities or (N,) class indices, and the mean top-class probability."""
    c = torch.as_tensor(classes).detach().cpu()
    if c.ndim == 2:
        if c.shape[0] < 1 or not c.dtype.is_floating_point:
            raise ParameterError(f"classes must be (N, K) class probabilities or (N,) class indices, got shape {tuple(c.shape)}")
        p = c.double()
        return torch.bincount(p.argmax(1), minlength=p.shape[1]).numpy(), float(p.max(1).values.mean())
    num_classes = _validate.positive_int("num_classes", num_classes, minimum=2)
    if c.ndim != 1 or c.numel() < 1 or c.dtype.is_floating_point or c.min() < 0 or c.max() >= num_classes:
        raise ParameterError(f"classes must be integer class indices in [0, {num_classes}) or (N, K) probabilities")
    return torch.bincount(c.long(), minlength=num_classes).numpy(), None


@functools.lru_cache(maxsize=256)
def chi2_noncentrality(dof: int, alpha: float, power: float) -> float:
    """Noncentrality at which a chi^2 test with ``dof`` degrees of freedom at ``alpha`` has ``power``."""
    crit = scipy.stats.chi2.isf(alpha, dof)
    f = lambda lam: scipy.stats.ncx2.sf(crit, dof, lam) - power  # noqa: E731 - a one-line root function
    hi = 1.0
    while f(hi) < 0:
        hi *= 2
    return float(scipy.optimize.brentq(f, 1e-9, hi, xtol=1e-10))


def effective_size(n: int, n_reference: int | None) -> float:
    """Draws whose noncentrality per unit w^2 the test has: n (goodness of fit) or n m / (n + m) (two-sample).

    For class frequencies p (generated) near q (real), the 2 x K contingency statistic has
    noncentrality ~ n m / (n + m) * sum (p - q)^2 / q; the goodness-of-fit one n * sum (p - q)^2 / q.
    """
    return float(n) if n_reference is None else n * n_reference / (n + n_reference)


def class_histogram(probs: Any, expected: Any = None, *, alpha: float = 0.01, power: float = 0.8,
                    num_classes: int = 10) -> ClassBalanceResult:
    """Goodness-of-fit chi^2 of predicted classes against ``expected`` frequencies (uniform by default).

    ``probs`` is (N, K) class probabilities or (N,) class indices in [0, ``num_classes``).
    """
    counts, conf = predicted_classes(probs, num_classes)
    k = len(counts)
    alpha, power = _validate.probability("alpha", alpha), _validate.probability("power", power)
    if expected is None:
        e = np.full(k, 1.0 / k)
    else:
        e = np.asarray(expected, dtype=np.float64)
        if e.shape != (k,) or (e <= 0).any() or not np.isfinite(e).all():
            raise ParameterError(f"expected must be {k} positive class frequencies, got {expected!r}")
        e = e / e.sum()
    n = int(counts.sum())
    chi = scipy.stats.chisquare(counts, f_exp=n * e)
    return ClassBalanceResult(
        counts=counts.tolist(), reference_counts=None, expected_frequencies=e.tolist(), chi2=float(chi.statistic),
        dof=k - 1, p_value=float(chi.pvalue), alpha=alpha, power=power,
        detectable_w=math.sqrt(chi2_noncentrality(k - 1, alpha, power) / n), classes_present=int((counts > 0).sum()),
        mean_confidence=conf, n=n, n_reference=None, test="goodness-of-fit chi2", null_hypothesis=GOF_H0,
    )


def class_balance(generated: Any, reference: Any, *, alpha: float = 0.01, power: float = 0.8,
                  num_classes: int = 10) -> ClassBalanceResult:
    """Two-sample chi^2 (2 x K contingency table) of generated vs real digits' predicted classes."""
    counts, conf = predicted_classes(generated, num_classes)
    ref, _ = predicted_classes(reference, num_classes)
    alpha, power = _validate.probability("alpha", alpha), _validate.probability("power", power)
    if len(ref) != len(counts):
        raise ParameterError(f"generated and reference have {len(counts)} and {len(ref)} classes")
    table = np.stack([counts, ref]).astype(np.float64)
    used = table.sum(0) > 0  # a class neither set shows has no expected count: it carries no information
    n, m = int(counts.sum()), int(ref.sum())
    dof = int(used.sum()) - 1
    if dof == 0:  # both sets sit in one and the same class: identical laws on what was seen
        chi2, p = 0.0, 1.0
    else:
        res = scipy.stats.chi2_contingency(table[:, used], correction=False)
        chi2, p = float(res.statistic), float(res.pvalue)
    pooled = table.sum(0) / table.sum()
    lam = chi2_noncentrality(max(dof, 1), alpha, power)
    return ClassBalanceResult(
        counts=counts.tolist(), reference_counts=ref.tolist(), expected_frequencies=pooled.tolist(), chi2=chi2,
        dof=dof, p_value=p, alpha=alpha, power=power, detectable_w=math.sqrt(lam / effective_size(n, m)),
        classes_present=int((counts > 0).sum()), mean_confidence=conf, n=n, n_reference=m,
        test="two-sample contingency chi2", null_hypothesis=TWO_SAMPLE_H0,
    )


def evaluate(inputs: EvaluationInputs) -> ClassBalanceResult:
    """Predicted classes of the generated digits against those of both held-out real sets (2n digits)."""
    real = torch.cat([inputs.real_features.classes, inputs.floor_features.classes])
    return class_balance(inputs.fake_features.probabilities, real, alpha=inputs.alpha, power=inputs.power)
