"""Public assertions for generative image models, one grammar per check X: ``check_X`` returns a
CheckResult (H0, alpha, statistic, p-value, the effect detectable at its sample size), ``assert_X``
raises CheckFailed when H0 is rejected, ``X_required_samples`` and ``X_detectable_effect`` plan it.

====================  ======================================================  ===========================
X                     H0                                                      effect unit
====================  ======================================================  ===========================
``c2st``              real and generated images have the same law             C2ST accuracy above 1/2
``class_balance``     generated and real digits' predicted classes agree      Cohen's w of class frequencies
``kid``               KID (MMD^2 in classifier features) is 0                 KID
``memorisation``      generated images no nearer the training set than real   P(nearer) above 1/2
``diversity``         generated images no nearer to each other than real      relative drop of NN distance
====================  ======================================================  ===========================

    from genbench.testing.gan import assert_c2st, assert_diversity
    assert_c2st(real_images, generated_images, alpha=0.01, seed=0)

KID and diversity have no closed-form law for their statistic before seeing data: their planners
take a pilot result (a CheckResult of the same check on data of the same kind) and scale it.
The names of the previous release (``assert_indistinguishable``, ``assert_not_mode_collapsed``,
``assert_kid_consistent_with_zero``, ``check_not_memorised``, ``assert_not_memorised``,
``assert_diverse``, ``chi2_detectable_w``) still work and warn.
"""

from __future__ import annotations

import math
from typing import Any

import scipy.stats
import torch

from genbench import _validate
from genbench.errors import ParameterError
from genbench.gan.metrics import c2st as _c2st
from genbench.gan.metrics import class_balance as _cb
from genbench.gan.metrics import diversity as _div
from genbench.gan.metrics import kid as _kid
from genbench.gan.metrics import memorisation as _mem
from genbench.planning import DEFAULT_ALPHA
from genbench.testing._grammar import CheckSpec, deprecated_alias, warn_renamed
from genbench.testing._result import CheckResult

__all__ = [
    "CHECKS",
    "assert_c2st",
    "assert_class_balance",
    "assert_diversity",
    "assert_kid",
    "assert_memorisation",
    "c2st_detectable_effect",
    "c2st_required_samples",
    "check_c2st",
    "check_class_balance",
    "check_diversity",
    "check_kid",
    "check_memorisation",
    "class_balance_detectable_effect",
    "class_balance_required_samples",
    "diversity_detectable_effect",
    "diversity_required_samples",
    "kid_detectable_effect",
    "kid_required_samples",
    "memorisation_detectable_effect",
    "memorisation_required_samples",
]

ALPHA = DEFAULT_ALPHA  # the default level of every check in genbench.testing


# ------------------------------------------------------------------------------------------- C2ST


def check_c2st(
    real: Any,
    fake: Any,
    *,
    alpha: float = ALPHA,
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
    r = _c2st.c2st(real, fake, epsilon=epsilon, alpha=alpha, power=power, n_test=n_test, classifier=classifier,
                   epochs=epochs, seed=seed, device=device)
    return CheckResult(
        name="c2st", null_hypothesis=r.null_hypothesis, statistic=r.accuracy, p_value=r.p_value, alpha=r.alpha,
        n=r.n_test, detectable_effect=r.detectable_epsilon, effect_unit="C2ST accuracy above 1/2", power=r.power,
        details=r.to_dict(),
    )


def assert_c2st(
    real: Any,
    fake: Any,
    *,
    alpha: float = ALPHA,
    epsilon: float | None = None,
    power: float = 0.8,
    n_test: int | None = None,
    classifier: str = "cnn",
    epochs: int = 10,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> CheckResult:
    """Raise CheckFailed when the C2ST (``check_c2st``) tells ``fake`` from ``real`` at level alpha."""
    return check_c2st(real, fake, alpha=alpha, epsilon=epsilon, power=power, n_test=n_test, classifier=classifier,
                      epochs=epochs, seed=seed, device=device).raise_if_rejected()


def c2st_required_samples(effect: float, *, alpha: float = ALPHA, power: float = 0.8) -> int:
    """Test points (half real, half generated) at which accuracy 1/2 + ``effect`` is detected with ``power``."""
    return _c2st.c2st_test_size(effect, _validate.probability("alpha", alpha), _validate.probability("power", power))


def c2st_detectable_effect(n_test: int, *, alpha: float = ALPHA, power: float = 0.8) -> float:
    """Accuracy excess over 1/2 that ``n_test`` test points detect with ``power``."""
    n_test = _validate.positive_int("n_test", n_test, minimum=2)
    eps = _c2st.c2st_detectable_epsilon(n_test, _validate.probability("alpha", alpha),
                                        _validate.probability("power", power))
    if eps is None:
        raise ParameterError(f"n_test={n_test} cannot detect even a perfect classifier with power {power:g} at alpha={alpha:g}")
    return eps


# ----------------------------------------------------------------------------------- class balance


def check_class_balance(
    classes: Any,
    reference: Any = None,
    *,
    expected: Any = None,
    alpha: float = ALPHA,
    power: float = 0.8,
    num_classes: int = 10,
) -> CheckResult:
    """chi^2 test that the predicted classes of generated digits have the law of ``reference``'s.

    ``classes`` and ``reference`` are (N, K) class probabilities or (N,) class indices, from the same
    classifier. With ``reference`` (the right null for a classifier that errs): the two-sample 2 x K
    contingency test. Without it: goodness of fit to ``expected`` frequencies (uniform by default).
    """
    if reference is not None:
        if expected is not None:
            raise ParameterError("give reference (real digits' classes) or expected (frequencies), not both")
        r = _cb.class_balance(classes, reference, alpha=alpha, power=power, num_classes=num_classes)
    else:
        r = _cb.class_histogram(classes, expected, alpha=alpha, power=power, num_classes=num_classes)
    return CheckResult(
        name="class_balance", null_hypothesis=r.null_hypothesis, statistic=r.chi2, p_value=r.p_value, alpha=r.alpha,
        n=r.n, detectable_effect=r.detectable_w, effect_unit="Cohen's w of the generated vs real class frequencies",
        power=r.power, details=r.to_dict(),
    )


def assert_class_balance(
    classes: Any,
    reference: Any = None,
    *,
    expected: Any = None,
    alpha: float = ALPHA,
    power: float = 0.8,
    num_classes: int = 10,
) -> CheckResult:
    """Raise CheckFailed when the generated digits' class law differs from the reference at level alpha."""
    return check_class_balance(classes, reference, expected=expected, alpha=alpha, power=power,
                               num_classes=num_classes).raise_if_rejected()


def class_balance_detectable_effect(
    n: int, *, n_reference: int | None = None, alpha: float = ALPHA, power: float = 0.8, num_classes: int = 10,
    two_sample: bool = True,
) -> float:
    """Cohen's w = sqrt(sum (p - q)^2 / q) detected with ``power`` from ``n`` generated digits.

    Two-sample (default): against ``n_reference`` real digits (default ``n``); else goodness of fit.
    """
    n = _validate.positive_int("n", n)
    k = _validate.positive_int("num_classes", num_classes, minimum=2)
    m = (n if n_reference is None else _validate.positive_int("n_reference", n_reference)) if two_sample else None
    lam = _cb.chi2_noncentrality(k - 1, _validate.probability("alpha", alpha), _validate.probability("power", power))
    return math.sqrt(lam / _cb.effective_size(n, m))


def class_balance_required_samples(
    effect: float, *, alpha: float = ALPHA, power: float = 0.8, num_classes: int = 10, two_sample: bool = True
) -> int:
    """Generated digits (and as many real ones, two-sample) at which Cohen's w = ``effect`` is detected with ``power``."""
    w = _validate.positive_float("effect", effect)
    k = _validate.positive_int("num_classes", num_classes, minimum=2)
    lam = _cb.chi2_noncentrality(k - 1, _validate.probability("alpha", alpha), _validate.probability("power", power))
    # effective size n (goodness of fit) or n/2 (two equal samples) must reach lam / w^2
    return math.ceil(lam / w**2 * (2 if two_sample else 1))


# -------------------------------------------------------------------------------------------- KID


def check_kid(
    feat_real: Any, feat_fake: Any, *, alpha: float = ALPHA, power: float = 0.8, n_subsets: int = 10, seed: int = 0
) -> CheckResult:
    """One-sided t-test of H0 "KID (MMD^2) = 0" from the mean and s.e. over disjoint subsets.

    The subset estimates are independent and unbiased; their mean over B subsets is treated as
    Student-t with B-1 degrees of freedom (normal approximation of each subset's estimate).
    """
    k = _kid.kernel_inception_distance(feat_real, feat_fake, n_subsets=n_subsets, seed=seed, alpha=alpha, power=power)
    return CheckResult(
        name="kid", null_hypothesis=k.null_hypothesis, statistic=k.kid, p_value=k.p_value, alpha=k.alpha,
        n=k.n_subsets * k.subset_size, detectable_effect=k.detectable_kid,
        effect_unit="KID (noncentral t, from the observed s.e.)", power=k.power, details=k.to_dict(),
    )


def assert_kid(
    feat_real: Any, feat_fake: Any, *, alpha: float = ALPHA, power: float = 0.8, n_subsets: int = 10, seed: int = 0
) -> CheckResult:
    """Raise CheckFailed when KID is significantly above 0 at level alpha."""
    return check_kid(feat_real, feat_fake, alpha=alpha, power=power, n_subsets=n_subsets, seed=seed).raise_if_rejected()


def _pilot(pilot: CheckResult, name: str) -> CheckResult:
    if not isinstance(pilot, CheckResult) or pilot.name != name:
        raise ParameterError(f"pilot must be a CheckResult of check_{name} on data of the same kind")
    return pilot


def kid_detectable_effect(
    n: int, *, pilot: CheckResult, alpha: float = ALPHA, power: float = 0.8, n_subsets: int = 10
) -> float:
    """KID detected with ``power`` from ``n`` images per side, scaled from a ``pilot`` check_kid result.

    The s.e. of an unbiased MMD^2 estimate on subsets of size m falls like 1/m near H0 (a degenerate
    U-statistic), so the pilot's s.e. is scaled by its subset size over n / n_subsets.
    """
    p = _pilot(pilot, "kid")
    b = _validate.positive_int("n_subsets", n_subsets, minimum=2)
    m = _validate.positive_int("n", n, minimum=2 * b) // b
    se = p.details["se"] * p.details["subset_size"] / m * math.sqrt(p.details["n_subsets"] / b)
    nc = _kid.noncentrality_for_power(b - 1, _validate.probability("alpha", alpha), _validate.probability("power", power))
    return float(se * nc)


def kid_required_samples(
    effect: float, *, pilot: CheckResult, alpha: float = ALPHA, power: float = 0.8, n_subsets: int = 10
) -> int:
    """Images per side at which KID = ``effect`` is detected with ``power`` (scaled from a ``pilot``)."""
    effect = _validate.positive_float("effect", effect)
    b = _validate.positive_int("n_subsets", n_subsets, minimum=2)
    # The detectable KID is C / m for subsets of size m = n / n_subsets; m = 2 gives C.
    c = 2 * kid_detectable_effect(2 * b, pilot=pilot, alpha=alpha, power=power, n_subsets=b)
    return b * max(2, math.ceil(c / effect))


# ----------------------------------------------------------------------------------- memorisation


def check_memorisation(
    fake: Any, train: Any, heldout: Any, *, alpha: float = ALPHA, power: float = 0.8
) -> CheckResult:
    """Mann-Whitney test of H0 "generated images are no nearer to the training set than held-out real ones".

    Compares each generated image's distance to its nearest training digit with the same distance
    for held-out real digits; a generator that copies training images is rejected, noise is not.
    """
    m = _mem.memorisation(fake, train, heldout, alpha=alpha, power=power)
    return CheckResult(
        name="memorisation", null_hypothesis=m.null_hypothesis, statistic=m.fraction_nearer_train, p_value=m.p_value,
        alpha=m.alpha, n=m.n, detectable_effect=m.detectable_effect,
        effect_unit="P(generated nearer the training set than held-out real) above 1/2", power=m.power,
        details=m.to_dict(),
    )


def assert_memorisation(
    fake: Any, train: Any, heldout: Any, *, alpha: float = ALPHA, power: float = 0.8
) -> CheckResult:
    """Raise CheckFailed when generated images sit significantly nearer the training set at level alpha."""
    return check_memorisation(fake, train, heldout, alpha=alpha, power=power).raise_if_rejected()


def memorisation_detectable_effect(
    n: int, *, n_heldout: int | None = None, alpha: float = ALPHA, power: float = 0.8
) -> float:
    """Excess of P(nearer the training set) over 1/2 detected with ``power`` (normal approximation of U)."""
    return _mem.memorisation_detectable_effect(n, n_heldout, alpha=alpha, power=power)


def memorisation_required_samples(effect: float, *, alpha: float = ALPHA, power: float = 0.8) -> int:
    """Generated images (with as many held-out ones) at which an excess ``effect`` is detected with ``power``."""
    effect = _validate.positive_float("effect", effect, upper=0.5, upper_name="1/2")
    z = scipy.stats.norm.isf(_validate.probability("alpha", alpha)) + scipy.stats.norm.ppf(
        _validate.probability("power", power))
    n = max(2, math.ceil((z / effect) ** 2 / 6))  # s.e. sqrt((2n+1)/(12 n^2)) ~ 1/sqrt(6n)
    while memorisation_detectable_effect(n, alpha=alpha, power=power) > effect:
        n += 1
    return n


# -------------------------------------------------------------------------------------- diversity


def check_diversity(
    fake: Any, real: Any, *, alpha: float = ALPHA, power: float = 0.8, n_permutations: int = 999, seed: int = 0
) -> CheckResult:
    """Permutation test of H0 "generated images are exchangeable with real ones" against "less diverse".

    The statistic is the drop of the mean within-set nearest-neighbour distance (pixel L2) from the
    real set to the generated set: duplicates and a mode collapsed onto a few images make it large,
    even when the class histogram is intact. The p-value is exact under H0 (a permutation test).
    """
    d = _div.diversity(fake, real, n_permutations=n_permutations, alpha=alpha, power=power, seed=seed)
    return CheckResult(
        name="diversity", null_hypothesis=d.null_hypothesis, statistic=d.relative_reduction, p_value=d.p_value,
        alpha=d.alpha, n=d.n, detectable_effect=d.detectable_relative_reduction,
        effect_unit="relative reduction of the mean within-set nearest-neighbour distance (approximate)",
        power=d.power, details=d.to_dict(),
    )


def assert_diversity(
    fake: Any, real: Any, *, alpha: float = ALPHA, power: float = 0.8, n_permutations: int = 999, seed: int = 0
) -> CheckResult:
    """Raise CheckFailed when generated images are significantly nearer to each other than real ones."""
    return check_diversity(fake, real, alpha=alpha, power=power, n_permutations=n_permutations,
                           seed=seed).raise_if_rejected()


def diversity_detectable_effect(n: int, *, pilot: CheckResult, alpha: float = ALPHA, power: float = 0.8) -> float:
    """Relative NN-distance reduction detected with ``power`` from ``n`` images, scaled from a ``pilot``.

    The permutation law's spread of a mean over n points falls like 1/sqrt(n); the pilot's
    detectable effect is rescaled to ``n``, ``alpha`` and ``power`` (normal approximation).
    """
    p = _pilot(pilot, "diversity")
    n = _validate.positive_int("n", n, minimum=2)
    z = lambda a, pw: scipy.stats.norm.isf(a) + scipy.stats.norm.ppf(pw)  # noqa: E731
    per_z = p.detectable_effect / z(p.alpha, p.power)
    return float(per_z * math.sqrt(p.n / n) * z(_validate.probability("alpha", alpha),
                                                _validate.probability("power", power)))


def diversity_required_samples(effect: float, *, pilot: CheckResult, alpha: float = ALPHA, power: float = 0.8) -> int:
    """Generated images (with as many real ones) at which a relative reduction ``effect`` is detected (from a pilot)."""
    effect = _validate.positive_float("effect", effect)
    at_one = diversity_detectable_effect(1, pilot=pilot, alpha=alpha, power=power)
    return max(2, math.ceil((at_one / effect) ** 2))


# ---------------------------------------------------------------------------- deprecated names

assert_indistinguishable = deprecated_alias(__name__, "assert_indistinguishable", assert_c2st)
assert_not_mode_collapsed = deprecated_alias(__name__, "assert_not_mode_collapsed", assert_class_balance)
assert_kid_consistent_with_zero = deprecated_alias(__name__, "assert_kid_consistent_with_zero", assert_kid)
assert_diverse = deprecated_alias(__name__, "assert_diverse", assert_diversity)


def check_not_memorised(fake: Any, train: Any, heldout: Any, *, alpha: float = ALPHA, seed: int = 0) -> CheckResult:
    """Deprecated name of ``check_memorisation`` (``seed`` was never used)."""
    warn_renamed(__name__, "check_not_memorised", "check_memorisation")
    del seed
    return check_memorisation(fake, train, heldout, alpha=alpha)


def assert_not_memorised(fake: Any, train: Any, heldout: Any, *, alpha: float = ALPHA, seed: int = 0) -> CheckResult:
    """Deprecated name of ``assert_memorisation`` (``seed`` was never used)."""
    warn_renamed(__name__, "assert_not_memorised", "assert_memorisation")
    del seed
    return assert_memorisation(fake, train, heldout, alpha=alpha)


def chi2_detectable_w(n: int, k: int, alpha: float, power: float = 0.8) -> float:
    """Deprecated: ``class_balance_detectable_effect(n, num_classes=k, two_sample=False, ...)``."""
    warn_renamed(__name__, "chi2_detectable_w", "class_balance_detectable_effect")
    return class_balance_detectable_effect(n, alpha=alpha, power=power, num_classes=k, two_sample=False)


# ---------------------------------------------------------------------------------- the registry

CHECKS: dict[str, CheckSpec] = {
    spec.name: spec
    for spec in (
        CheckSpec("c2st", check_c2st, assert_c2st, c2st_required_samples, c2st_detectable_effect,
                  null_hypothesis="real and generated images have the same law",
                  statistic="held-out accuracy of a classifier, exact binomial vs 1/2",
                  effect_unit="C2ST accuracy above 1/2"),
        CheckSpec("class_balance", check_class_balance, assert_class_balance, class_balance_required_samples,
                  class_balance_detectable_effect,
                  null_hypothesis="generated and real digits' predicted classes have the same law",
                  statistic="Pearson chi^2 (2 x K contingency, or goodness of fit)",
                  effect_unit="Cohen's w of class frequencies"),
        CheckSpec("kid", check_kid, assert_kid, kid_required_samples, kid_detectable_effect,
                  null_hypothesis="KID (MMD^2 in classifier features) is 0",
                  statistic="mean KID over disjoint subsets, one-sided t", effect_unit="KID (planners take a pilot)"),
        CheckSpec("memorisation", check_memorisation, assert_memorisation, memorisation_required_samples,
                  memorisation_detectable_effect,
                  null_hypothesis="generated images are no nearer the training set than held-out real ones",
                  statistic="Mann-Whitney U on nearest-training-digit distances",
                  effect_unit="P(nearer the training set) above 1/2"),
        CheckSpec("diversity", check_diversity, assert_diversity, diversity_required_samples,
                  diversity_detectable_effect,
                  null_hypothesis="generated images are exchangeable with real ones (not less diverse)",
                  statistic="drop of mean within-set nearest-neighbour distance, permutation test",
                  effect_unit="relative NN-distance reduction (planners take a pilot)"),
    )
}
"""Every GAN check of genbench.testing.gan: name X -> its CheckSpec (check_X, assert_X and the two planners)."""
