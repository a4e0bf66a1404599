"""Power planning for genbench's checks: power, required sample size and detectable effect (a leaf module).

Every check in ``genbench.testing`` has a level ``alpha``; this module answers the two questions a
test author must ask before trusting a "pass": *how large a discrepancy does it detect, with what
probability, at the sample size I use?* and *how many samples do I need to detect effect E with
probability 1 − β?*  Effects are in interpretable units:

============== ============================================================================ ==========
check          effect                                                                       n counts
============== ============================================================================ ==========
mean           Mahalanobis mean shift δ = ‖Σ^{-1/2}(m₁ − m₀)‖ (known Σ)                     iid draws
mean_hotelling the same δ, covariance estimated (Hotelling T²)                              iid draws
cov            relative covariance error ε: Σ₀^{-1/2} Σ₁ Σ₀^{-1/2} has one eigenvalue 1 + ε,   iid draws
               the others 1 (one whitened direction's variance off by the factor 1 + ε);
               KL(N(0,Σ₁)‖N(0,Σ₀)) = ½(ε − log(1 + ε))
c2st           classifier accuracy above ½, ε = acc − ½ (Lopez-Paz & Oquab 2017)             test points
ks_projection  KS distance D = sup_t |F₁(t) − F₀(t)| on one 1-D projection                  iid draws
============== ============================================================================ ==========

Power is exact where the alternative law is known in closed form: noncentral χ²_d (``mean``),
noncentral F (``mean_hotelling``), binomial (``c2st``). For ``cov`` the modified likelihood-ratio
statistic under the alternative is simulated exactly from the Bartlett decomposition of the Wishart
matrix with a fixed seed and cached (2¹³ draws: Monte Carlo standard error 0.0044 on a power of
0.8); its critical value is the null's (see ``cov_null_pvalue``). For ``ks_projection`` the
power depends on the shape of the alternative, not only on D, so the value returned is a
*guaranteed lower bound* valid for every alternative at KS distance D (Hoeffding at the point where
|F₁ − F₀| = D, against the DKW–Massart bound on the KS critical value): TFP-style, never optimistic.

All functions are closed form or cached: after the first call for given arguments they take well
under 10 ms (see benchmarks/). ``DEFAULT_ALPHA`` and ``DEFAULT_POWER`` are the defaults of every
check and planner in ``genbench.testing``. This module imports nothing from genbench above
``genbench.wishart`` and the validators, so the checks (``genbench.testing``) and the GAN metrics
(``genbench.gan``) can both plan with it.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np
import scipy.optimize
import scipy.stats

from genbench import wishart
from genbench._validate import choice, positive_int, probability
from genbench.errors import ParameterError

__all__ = [
    "CHECKS",
    "DEFAULT_ALPHA",
    "DEFAULT_POWER",
    "EFFECT_UNITS",
    "MAX_N",
    "power",
    "required_samples",
    "detectable_effect",
    "min_samples",
    "clear_caches",
]

DEFAULT_ALPHA = 0.01
"""Default level of every check and planner in genbench.testing (a false alarm in 100 runs)."""
DEFAULT_POWER = 0.8
"""Default power at which checks report, and planners size, the detectable effect."""

CHECKS = ("mean", "mean_hotelling", "cov", "c2st", "ks_projection")
"""Kinds of the generic planners below (the registry of checks is ``genbench.testing.CHECKS``)."""
EFFECT_UNITS = {
    "mean": "Mahalanobis mean shift",
    "mean_hotelling": "Mahalanobis mean shift",
    "cov": "relative covariance error (one whitened direction's variance x (1+eps))",
    "c2st": "C2ST accuracy above 1/2",
    "ks_projection": "KS distance on a 1-D projection",
}
# Largest sample size planned for; beyond it the effect is called undetectable rather than looping.
MAX_N = 10**9


def _effect_bounds(check: str, effect: float) -> float:
    if isinstance(effect, bool) or not isinstance(effect, int | float | np.floating | np.integer):
        raise ParameterError(f"effect must be a number, got {effect!r}")
    e = float(effect)
    ok = {
        "mean": e > 0 and math.isfinite(e),
        "mean_hotelling": e > 0 and math.isfinite(e),
        "cov": e > -1 and e != 0 and math.isfinite(e),
        "c2st": 0 < e <= 0.5,
        "ks_projection": 0 < e <= 1,
    }[check]
    if not ok:
        allowed = {
            "mean": "> 0",
            "mean_hotelling": "> 0",
            "cov": "> -1 and != 0",
            "c2st": "in (0, 0.5]",
            "ks_projection": "in (0, 1]",
        }[check]
        raise ParameterError(f"effect for check={check!r} ({EFFECT_UNITS[check]}) must be {allowed}, got {effect!r}")
    return e


def _common(check: str, alpha: float, d: int) -> tuple[str, float, int]:
    check = choice("check", check, CHECKS)
    alpha = probability("alpha", alpha)
    d = positive_int("d", d)
    return check, alpha, d


def _target_power(power: float, alpha: float) -> float:
    target = probability("power", power)
    if target <= alpha:
        raise ParameterError(f"power must exceed alpha={alpha:g} (any test has power >= alpha), got {target:g}")
    return target


def _min_n(check: str, d: int) -> int:
    # Hotelling needs n > d for S to be invertible; the covariance test needs k = n - 1 >= d.
    return {"mean": 1, "mean_hotelling": d + 1, "cov": d + 1, "c2st": 1, "ks_projection": 1}[check]


def min_samples(check: str, d: int = 2) -> int:
    """Smallest sample size at which ``check`` is defined in d dimensions (Hotelling and cov need n > d)."""
    return _min_n(choice("check", check, CHECKS), positive_int("d", d))


# ------------------------------------------------------------------------- mean: noncentral chi2 / F


@lru_cache(maxsize=1024)
def _chi2_crit(d: int, alpha: float) -> float:
    return float(scipy.stats.chi2.isf(alpha, d))


@lru_cache(maxsize=1024)
def _ncx2_needed(d: int, alpha: float, target: float) -> float:
    """Noncentrality λ at which P(χ²_d(λ) > crit) = target."""
    crit = _chi2_crit(d, alpha)
    if target <= alpha:
        return 0.0
    f = lambda lam: scipy.stats.ncx2.sf(crit, d, lam) - target  # noqa: E731
    hi = 1.0
    while f(hi) < 0:
        hi *= 2.0
    return float(scipy.optimize.brentq(f, 0.0, hi, xtol=1e-12, rtol=1e-12))


def _power_mean(delta: float, n: int, alpha: float, d: int) -> float:
    return float(scipy.stats.ncx2.sf(_chi2_crit(d, alpha), d, n * delta**2))


def _power_hotelling(delta: float, n: int, alpha: float, d: int) -> float:
    # (n-d)/(d(n-1)) T² ~ F(d, n-d; nδ²) (Anderson 2003, Thm 5.2.2).
    crit = scipy.stats.f.isf(alpha, d, n - d)
    with warnings.catch_warnings():
        # With few denominator degrees of freedom and a tiny alpha the search for a detectable effect
        # doubles δ until Boost's noncentral-beta series gives up (noncentrality ~1e10 and beyond);
        # its "closest value" is then far below the target power, which is all the search needs.
        warnings.filterwarnings("ignore", message=".*Series did not converge", category=RuntimeWarning)
        return float(scipy.stats.ncf.sf(crit, d, n - d, n * delta**2))


# ------------------------------------------------------------------------- c2st: exact binomial


def _c2st_crit(n: np.ndarray | int, alpha: float) -> np.ndarray:
    """Smallest count c with P(Bin(n, ½) ≥ c) ≤ alpha (one-sided exact test of accuracy > ½)."""
    n = np.asarray(n)
    # binom.isf(alpha) is the smallest c' with P(X > c') <= alpha, so reject when X >= c' + 1.
    return scipy.stats.binom.isf(alpha, n, 0.5) + 1


def _power_c2st(eps: float, n: int | np.ndarray, alpha: float) -> np.ndarray | float:
    crit = _c2st_crit(n, alpha)
    return scipy.stats.binom.sf(crit - 1, n, 0.5 + eps)


# ------------------------------------------------------------------------- ks on a projection


def _ks_crit(n: int, alpha: float) -> float:
    """DKW–Massart critical value √(ln(2/α)/(2n)): an upper bound on the exact KS critical value.

    Using it keeps the power *bound* valid for the exact KS test (which rejects at a smaller
    threshold) and for a DKWM test alike, and makes planning closed form; it exceeds scipy's exact
    ``kstwo.isf`` by 1.6% at n = 63 and by 0.004% at n = 10⁵ (α = 0.01).
    """
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * n))


def _power_ks(dist: float, n: int, alpha: float) -> float:
    # At the point t* where |F₁ − F₀| = D, the empirical CDF errs from F₁(t*) by more than D − c with
    # probability <= exp(−2n(D − c)²) (Hoeffding); otherwise sup|F_n − F₀| > c and the test rejects.
    gap = dist - _ks_crit(n, alpha)
    if gap <= 0:
        return 0.0
    return float(1.0 - math.exp(-2.0 * n * gap * gap))


# ------------------------------------------------------------------------- public API


def _power_any(check: str, effect: float, n: int, alpha: float, d: int) -> float:
    if check == "mean":
        return _power_mean(effect, n, alpha, d)
    if check == "mean_hotelling":
        return _power_hotelling(effect, n, alpha, d)
    if check == "cov":
        return wishart.cov_power(effect, n, alpha, d)
    if check == "c2st":
        return float(_power_c2st(effect, n, alpha))
    return _power_ks(effect, n, alpha)


def power(check: str, effect: float, n: int, alpha: float = DEFAULT_ALPHA, d: int = 2) -> float:
    """Probability that ``check`` at level ``alpha`` rejects with ``n`` samples when the effect is ``effect``."""
    check, alpha, d = _common(check, alpha, d)
    effect = _effect_bounds(check, effect)
    n = positive_int("n", n, minimum=_min_n(check, d))
    return _power_cached(check, effect, n, alpha, d)


@lru_cache(maxsize=4096)
def _power_cached(check: str, effect: float, n: int, alpha: float, d: int) -> float:
    return _power_any(check, effect, n, alpha, d)


def _smallest_n(fn, lo: int, hi: int, target: float) -> int:  # type: ignore[no-untyped-def]
    """Smallest n in [lo, hi] with fn(n) >= target, fn (near-)monotone increasing; bisection."""
    while lo < hi:
        mid = (lo + hi) // 2
        if fn(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _bracket_up(fn, start: int, target: float, check: str, effect: float) -> int:  # type: ignore[no-untyped-def]
    hi = max(start, 1)
    while fn(hi) < target:
        hi *= 2
        if hi > MAX_N:
            raise ParameterError(
                f"effect={effect:g} ({EFFECT_UNITS[check]}) is too small: not detectable with n <= {MAX_N:.0e}"
            )
    return hi


def required_samples(
    check: str, effect: float, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER, d: int = 2
) -> int:
    """Smallest n at which ``check`` at level ``alpha`` detects ``effect`` with probability ``power``."""
    check, alpha, d = _common(check, alpha, d)
    effect = _effect_bounds(check, effect)
    return _required_cached(check, effect, alpha, _target_power(power, alpha), d)


@lru_cache(maxsize=4096)
def _required_cached(check: str, effect: float, alpha: float, target: float, d: int) -> int:
    lo = _min_n(check, d)
    if check == "mean":
        lam = _ncx2_needed(d, alpha, target)
        n = max(lo, math.ceil(lam / effect**2 - 1e-9))
        if n > MAX_N:
            raise ParameterError(f"effect={effect:g} ({EFFECT_UNITS[check]}) is too small: needs n = {n:.3g}")
        # Guard against rounding at the boundary: step to the exact smallest n.
        while n > lo and _power_mean(effect, n - 1, alpha, d) >= target:
            n -= 1
        while _power_mean(effect, n, alpha, d) < target:
            n += 1
        return n
    if check == "c2st":
        # Lopez-Paz & Oquab's normal approximation gives the scale; the exact binomial power is
        # evaluated on a vectorised window around it and the smallest n reaching the target returned.
        z = scipy.stats.norm.isf(alpha) / 2 + scipy.stats.norm.ppf(target) * math.sqrt(0.25 - effect**2)
        guess = max(lo, int((z / effect) ** 2))
        # The normal approximation is within a few % of the exact n (sawtooth amplitude of the exact
        # binomial power is ~1e-2); small n are scanned from the minimum.
        start = lo if guess < 400 else int(0.85 * guess)
        while True:
            ns = np.arange(start, int(1.15 * guess) + 64)
            hit = np.nonzero(_power_c2st(effect, ns, alpha) >= target)[0]
            if hit.size:
                return int(ns[hit[0]])
            if start > MAX_N:
                raise ParameterError(f"effect={effect:g} ({EFFECT_UNITS[check]}) is too small to detect")
            start, guess = int(ns[-1]) + 1, int(1.5 * guess) + 64
    if check == "cov":
        # Asymptotics give the scale: the LR statistic is ≈ noncentral χ²_{d(d+1)/2} with
        # noncentrality 2k·KL(N(0,Σ₁)‖N(0,Σ₀)) = k(ε − log(1+ε)); the Monte Carlo power then decides.
        lam = _ncx2_needed(d * (d + 1) // 2, alpha, target)
        guess = max(lo, math.ceil(lam / (effect - math.log1p(effect))) + 1)
        return _search_mc(lambda n: wishart.cov_power(effect, n, alpha, d), lo, guess, target, check, effect)
    if check == "ks_projection":
        # Invert 1 − exp(−2n(D − c(n))²) = power with c(n) = √(ln(2/α)/(2n)): √n·D = a + b.
        root_n = (math.sqrt(math.log(2 / alpha) / 2) + math.sqrt(-math.log(1 - target) / 2)) / effect
        n = max(lo, math.ceil(root_n**2 - 1e-9))
        while n > lo and _power_ks(effect, n - 1, alpha) >= target:  # rounding guard
            n -= 1
        while _power_ks(effect, n, alpha) < target:
            n += 1
        return n
    # mean_hotelling: the known-covariance n is a lower bound (estimating Σ only costs power).
    fn = lambda n: _power_hotelling(effect, n, alpha, d)  # noqa: E731
    start = max(lo, math.ceil(_ncx2_needed(d, alpha, target) / effect**2))
    if fn(start) >= target:
        return start
    hi = _bracket_up(fn, start + 1, target, check, effect)
    return _smallest_n(fn, start, hi, target)


def _search_mc(fn, lo: int, guess: int, target: float, check: str, effect: float) -> int:  # type: ignore[no-untyped-def]
    """Smallest n with Monte Carlo power fn(n) >= target (up to its noise), by bracketing + false position.

    The Monte Carlo power has standard error ~0.003-0.005, worth ~1-2% of n, so n is minimal only up
    to that noise; the search stops at a relative bracket width of 1/256 and returns the upper end
    (where the power was reached).
    """
    a, pa = guess, fn(guess)
    if pa >= target:
        b, pb = a, pa
        while True:
            if a <= lo:
                return lo
            a = max(lo, int(a / 1.25))
            pa = fn(a)
            if pa < target:
                break
            b, pb = a, pa
    else:
        b = a
        while True:
            b = int(b * 1.25) + 1
            if b > MAX_N:
                raise ParameterError(f"effect={effect:g} ({EFFECT_UNITS[check]}) is too small to detect")
            pb = fn(b)
            if pb >= target:
                break
            a, pa = b, pb
    # Invariant: pa < target <= pb. Alternate false position (fast on a smooth curve) with bisection
    # (guaranteed shrinkage when the Monte Carlo curve is locally flat).
    use_secant = True
    while b - a > max(1, b // 256):
        if use_secant and pb > pa:
            m = a + int(round((target - pa) * (b - a) / (pb - pa)))
        else:
            m = (a + b) // 2
        m = min(max(m, a + 1), b - 1)
        pm = fn(m)
        if pm >= target:
            b, pb = m, pm
        else:
            a, pa = m, pm
        use_secant = not use_secant
    return b


def detectable_effect(
    check: str, n: int, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER, d: int = 2
) -> float:
    """Smallest effect that ``check`` at level ``alpha`` detects with probability ``power`` from ``n`` samples."""
    check, alpha, d = _common(check, alpha, d)
    n = positive_int("n", n, minimum=_min_n(check, d))
    return _detectable_cached(check, n, alpha, _target_power(power, alpha), d)


@lru_cache(maxsize=4096)
def _detectable_cached(check: str, n: int, alpha: float, target: float, d: int) -> float:
    if check == "mean":
        return math.sqrt(_ncx2_needed(d, alpha, target) / n)
    if check == "c2st":
        if _power_c2st(0.5, n, alpha) < target:
            raise ParameterError(
                f"n={n} test points are too few: even a perfect classifier is not detected with power "
                f"{target:g} at alpha={alpha:g}"
            )
        return float(
            scipy.optimize.brentq(lambda e: _power_c2st(e, n, alpha) - target, 1e-12, 0.5, xtol=1e-10)
        )
    if check == "ks_projection":
        c = _ks_crit(n, alpha)
        # Invert 1 − exp(−2n(D − c)²) = power in closed form.
        dist = c + math.sqrt(-math.log(1.0 - target) / (2.0 * n))
        if dist > 1.0:
            raise ParameterError(f"n={n} samples are too few: no KS distance <= 1 is detected with power {target:g}")
        return dist
    fn = lambda e: _power_any(check, e, n, alpha, d) - target  # noqa: E731
    hi = 1.0
    while fn(hi) < 0:
        hi *= 2.0
        if hi > 1e12:
            raise ParameterError(f"n={n} samples are too few to detect any {EFFECT_UNITS[check]}")
    if check == "cov":
        # The Monte Carlo power is a step function of ε: bisect to a relative precision of 1e-4.
        lo = 0.0
        while hi - lo > 1e-4 * hi:
            mid = (lo + hi) / 2
            if fn(mid) >= 0:
                hi = mid
            else:
                lo = mid
        return hi
    return float(scipy.optimize.brentq(fn, 1e-12, hi, xtol=1e-12, rtol=1e-10))


def clear_caches() -> None:
    """Drop every cached planning result and Monte Carlo draw (for cold-start timing)."""
    for fn in (_chi2_crit, _ncx2_needed, _power_cached, _required_cached, _detectable_cached):
        fn.cache_clear()
    wishart.clear_caches()
