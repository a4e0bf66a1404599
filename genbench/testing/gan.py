"""Public assertions for generative image models: each ``check_*`` returns a CheckResult stating H0,
alpha, the statistic, the p-value and the effect detectable at its sample size; each ``assert_*``
raises CheckFailed when H0 is rejected.

    from genbench.testing.gan import assert_indistinguishable, assert_not_mode_collapsed
    assert_indistinguishable(real_images, generated_images, alpha=0.05, seed=0)
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import scipy.optimize
import scipy.stats
import torch

from genbench import _validate
from genbench.errors import ParameterError
from genbench.gan import quality
from genbench.testing._result import CheckResult

__all__ = [
    "assert_diverse",
    "assert_indistinguishable",
    "assert_kid_consistent_with_zero",
    "assert_not_memorised",
    "assert_not_mode_collapsed",
    "check_c2st",
    "check_class_balance",
    "check_diversity",
    "check_kid",
    "check_not_memorised",
    "chi2_detectable_w",
]


def check_c2st(
    real: Any,
    fake: Any,
    *,
    alpha: float = 0.05,
    epsilon: float | None = None,
    power: float = 0.8,
    n_test: int | None = None,
    classifier: str = "cnn",
    epochs: int = 10,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> CheckResult:
    """C2ST of H0 "real and fake images have the same law": exact binomial test of held-out accuracy > 1/2.

    The test-set size is planned so that an accuracy of 1/2 + ``epsilon`` (default 0.05) is detected
    with probability ``power``; an explicit ``n_test`` with an ``epsilon`` it cannot detect with
    that power raises ParameterError.
    """
    r = quality.c2st(
        real, fake, epsilon=epsilon, alpha=alpha, power=power, n_test=n_test,
        classifier=classifier, epochs=epochs, seed=seed, device=device,
    )
    return CheckResult(
        name="c2st",
        null_hypothesis=r.null_hypothesis,
        statistic=r.accuracy,
        p_value=r.p_value,
        alpha=r.alpha,
        n=r.n_test,
        detectable_effect=r.detectable_epsilon,
        effect_unit="C2ST accuracy above 1/2",
        power=r.power,
        details=r.to_dict(),
    )


def assert_indistinguishable(real: Any, fake: Any, **kwargs: Any) -> CheckResult:
    """Raise CheckFailed when the C2ST (``check_c2st``) tells ``fake`` from ``real`` at level alpha."""
    return check_c2st(real, fake, **kwargs).raise_if_rejected()


@lru_cache(maxsize=256)
def _chi2_lambda(dof: int, alpha: float, power: float) -> float:
    crit = scipy.stats.chi2.isf(alpha, dof)
    f = lambda lam: scipy.stats.ncx2.sf(crit, dof, lam) - power
    hi = 1.0
    while f(hi) < 0:
        hi *= 2
    return float(scipy.optimize.brentq(f, 1e-9, hi, xtol=1e-10))


def chi2_detectable_w(n: int, k: int, alpha: float, power: float = 0.8) -> float:
    """Cohen's w = sqrt(sum (p1-p0)^2/p0) that a chi^2 test over k classes detects with ``power`` from n draws."""
    n = _validate.positive_int("n", n)
    k = _validate.positive_int("k", k, minimum=2)
    # Under the alternative the statistic is noncentral chi^2_{k-1} with noncentrality n w^2.
    return math.sqrt(_chi2_lambda(k - 1, _validate.probability("alpha", alpha), _validate.probability("power", power)) / n)


def check_class_balance(
    classes: Any, *, expected: Any = None, alpha: float = 0.01, num_classes: int = 10, power: float = 0.8
) -> CheckResult:
    """chi^2 test of H0 "predicted classes follow ``expected`` frequencies (uniform by default)".

    ``classes`` is an (N, K) tensor of class probabilities or an (N,) tensor of class indices.
    Rejected for a generator that collapsed onto some digits.
    """
    alpha = _validate.probability("alpha", alpha)
    c = torch.as_tensor(classes)
    if c.ndim == 1:
        if c.dtype.is_floating_point or (c.numel() and (c.min() < 0 or c.max() >= num_classes)):
            raise ParameterError(f"classes must be integer class indices in [0, {num_classes}) or (N, K) probabilities")
        probs = torch.nn.functional.one_hot(c.long(), num_classes).double()
    else:
        probs = c
    h = quality.class_histogram(probs, expected=expected)
    k = len(h["counts"])
    return CheckResult(
        name="class_balance",
        null_hypothesis="generated digits' classes follow the expected class frequencies",
        statistic=h["chi2"],
        p_value=h["p_value"],
        alpha=alpha,
        n=h["n"],
        detectable_effect=chi2_detectable_w(h["n"], k, alpha, power),
        effect_unit="Cohen's w of the class frequencies",
        power=power,
        details=h,
    )


def assert_not_mode_collapsed(classes: Any, **kwargs: Any) -> CheckResult:
    """Raise CheckFailed when the class histogram departs from the expected frequencies at level alpha."""
    return check_class_balance(classes, **kwargs).raise_if_rejected()


def check_kid(
    feat_real: Any, feat_fake: Any, *, alpha: float = 0.01, n_subsets: int = 10, seed: int = 0
) -> CheckResult:
    """One-sided t-test of H0 "KID (MMD^2) = 0" from the mean and s.e. over disjoint subsets.

    The subset estimates are independent and unbiased; their mean over B subsets is treated as
    Student-t with B-1 degrees of freedom (normal approximation of each subset's estimate).
    """
    alpha = _validate.probability("alpha", alpha)
    k = quality.kernel_inception_distance(feat_real, feat_fake, n_subsets=n_subsets, seed=seed)
    dof = k["n_subsets"] - 1
    if k["se"] > 0:
        t = k["kid"] / k["se"]
        p = float(scipy.stats.t.sf(t, dof))
        detectable = float(k["se"] * (scipy.stats.t.isf(alpha, dof) + scipy.stats.t.ppf(0.8, dof)))
    else:
        t, p, detectable = (math.inf if k["kid"] > 0 else 0.0), (0.0 if k["kid"] > 0 else 1.0), None
    return CheckResult(
        name="kid",
        null_hypothesis="MMD^2 between real and generated feature laws is 0 (same law)",
        statistic=k["kid"],
        p_value=p,
        alpha=alpha,
        n=k["n_subsets"] * k["subset_size"],
        detectable_effect=detectable,
        effect_unit="KID (approximate, from the observed s.e.)",
        power=0.8,
        details={**k, "t": t, "dof": dof},
    )


def assert_kid_consistent_with_zero(feat_real: Any, feat_fake: Any, **kwargs: Any) -> CheckResult:
    """Raise CheckFailed when KID is significantly above 0 at level alpha."""
    return check_kid(feat_real, feat_fake, **kwargs).raise_if_rejected()


def check_not_memorised(fake: Any, train: Any, heldout: Any, *, alpha: float = 0.01, seed: int = 0) -> CheckResult:
    """Mann-Whitney test of H0 "generated images are no nearer to the training set than held-out real ones".

    Compares each generated image's distance to its nearest training digit with the same distance
    for held-out real digits; a generator that copies training images is rejected, noise is not.
    """
    alpha = _validate.probability("alpha", alpha)
    m = quality.memorisation(fake, train, heldout, seed=seed)
    n1, n2 = int(m["n"]), int(m["n_heldout"])
    # Effect: P(nearer) - 1/2. Normal approximation of U's law: its s.e. under H0 is
    # sqrt((n1+n2+1)/(12 n1 n2)); a shift of (z_{1-alpha} + z_{0.8}) s.e. is detected with power 0.8.
    se = math.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2))
    det = float((scipy.stats.norm.isf(alpha) + scipy.stats.norm.ppf(0.8)) * se)
    return CheckResult(
        name="memorisation",
        null_hypothesis=m["null_hypothesis"],
        statistic=m["fraction_nearer_train"],
        p_value=m["p_value"],
        alpha=alpha,
        n=n1,
        detectable_effect=det,
        effect_unit="P(generated nearer the training set than held-out real) above 1/2",
        power=0.8,
        details=m,
    )


def assert_not_memorised(fake: Any, train: Any, heldout: Any, **kwargs: Any) -> CheckResult:
    """Raise CheckFailed when generated images sit significantly nearer the training set at level alpha."""
    return check_not_memorised(fake, train, heldout, **kwargs).raise_if_rejected()


def check_diversity(
    fake: Any, real: Any, *, alpha: float = 0.05, power: float = 0.8, n_permutations: int = 999, seed: int = 0
) -> CheckResult:
    """Permutation test of H0 "generated images are exchangeable with real ones" against "less diverse".

    The statistic is the drop of the mean within-set nearest-neighbour distance (pixel L2) from the
    real set to the generated set: duplicates and a mode collapsed onto a few images make it large,
    even when the class histogram is intact. The p-value is exact under H0 (a permutation test).
    """
    alpha = _validate.probability("alpha", alpha)
    d = quality.diversity(fake, real, n_permutations=n_permutations, alpha=alpha, power=power, seed=seed)
    return CheckResult(
        name="diversity",
        null_hypothesis=d["null_hypothesis"],
        statistic=d["relative_reduction"],
        p_value=d["p_value"],
        alpha=alpha,
        n=d["n"],
        detectable_effect=d["detectable_relative_reduction"],
        effect_unit="relative reduction of the mean within-set nearest-neighbour distance (approximate)",
        power=power,
        details=d,
    )


def assert_diverse(fake: Any, real: Any, **kwargs: Any) -> CheckResult:
    """Raise CheckFailed when generated images are significantly nearer to each other than real ones at level alpha."""
    return check_diversity(fake, real, **kwargs).raise_if_rejected()
