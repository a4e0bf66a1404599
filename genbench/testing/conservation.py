"""One-step conservation checks (Geweke / Gandy–Scott / TFP style) for Langevin kernels.

Start n chains from EXACT draws x ~ π = N(m, Σ), apply one kernel step, and test the output
against the law it must have:

* an exact MCMC kernel (MALA) leaves π invariant, so x' ~ N(m, Σ);
* one ULA step is linear-Gaussian: x' = x + μΣ⁻¹(m − x) + √(2μ)ξ = A x + μPm + √(2μ)ξ with
  A = I − μP, P = Σ⁻¹. From x ~ N(a, C): x' ~ N(A a + μPm, A C Aᵀ + 2μI). From the target itself
  (a = m, C = Σ, A symmetric and commuting with Σ): A Σ A = Σ − 2μI + μ²P, so x' ~ N(m, Σ + μ²P):
  one ULA step inflates the covariance by exactly μ²Σ⁻¹ — the one-step version of its O(μ) bias.

An identity kernel conserves every law, so distribution tests alone pass it; a movement test is
part of the check: H0 also says that at least ``min_move_fraction`` of the chains moved.

The composite check (see ``check_one_step``) runs four tests and combines them by Bonferroni
(each at α/4, reported p-value = min(1, 4·min pᵢ)); with z = L⁻¹(x' − m') whitened by the
expected law, under H0 z is i.i.d. N(0, I_d) and

1. gaussian:  ``genbench.testing.gaussian.check_gaussian`` (mean χ²_d + Wishart likelihood-ratio
               covariance test, its own Bonferroni);
2. scale:     Σᵢ‖zᵢ‖² ~ χ²_{nd} exactly (two-sided): sees covariance inflation such as ULA's μ²P;
3. shape:     ``check_gaussian_shape`` (KS on χ²_d radii + random projections, its own Bonferroni);
4. movement:  #moved ~ Binomial(n, q) with q ≥ ``min_move_fraction``; one-sided exact binomial p.

The detectable effect reported comes from the power of the scale test alone (a lower bound for the
Bonferroni family): the relative inflation δ = E‖z‖²/d − 1 detected with probability ``power``. It is
exact for isotropic inflation z ~ √(1+δ)·N(0, I); for anisotropic inflation with eigenvalues cᵢ and the
same mean trace (ULA's I + μ²P² in whitened form) the statistic has the same mean and a variance larger by
2n·Σ(cᵢ − c̄)², a small correction at the n this check needs (e.g. 1% of the sd for μ = 0.05).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize
import scipy.stats
import torch

from genbench._runtime import make_generator
from genbench._validate import nonnegative_seed, positive_float, positive_int, probability
from genbench.errors import ParameterError
from genbench.planning import DEFAULT_ALPHA, DEFAULT_POWER
from genbench.targets import Gaussian
from genbench.testing._grammar import warn_renamed
from genbench.testing._result import CheckResult
from genbench.testing.gaussian import check_gaussian
from genbench.testing.shape import check_gaussian_shape, whiten

__all__ = [
    "Kernel",
    "ula_one_step_law",
    "ula_one_step_inflation",
    "check_one_step",
    "assert_one_step",
    "one_step_required_samples",
    "one_step_detectable_effect",
    "check_ula_one_step",
    "assert_ula_one_step",
    "ula_one_step_required_samples",
    "ula_one_step_detectable_effect",
]

Kernel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""A Langevin kernel: ``kernel(x, noise) -> x_next`` on (chains, d) tensors, noise ~ N(0, I)."""

_COMPONENTS = 4  # gaussian (mean + covariance), scale, shape, movement


def _gaussian_target(target: object) -> Gaussian:
    if not isinstance(target, Gaussian):
        raise ParameterError(
            f"target must be a genbench.targets.Gaussian (the one-step law is known only for Gaussian targets), "
            f"got {type(target).__name__}"
        )
    return target


def ula_one_step_law(
    target: Gaussian, step_size: float, mean: Any = None, cov: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact law (mean, cov) of one ULA step from x ~ N(mean, cov) (default: the target itself), float64."""
    target = _gaussian_target(target)
    mu = positive_float("step_size", step_size)
    d = target.dim
    m = target.mean.detach().cpu().double().numpy()
    prec = target.precision.detach().cpu().double().numpy()
    a = m if mean is None else np.asarray(mean, dtype=np.float64).reshape(d)
    c = target.cov.detach().cpu().double().numpy() if cov is None else np.asarray(cov, dtype=np.float64)
    if c.shape != (d, d):
        raise ParameterError(f"cov must have shape ({d}, {d}), got {c.shape}")
    amat = np.eye(d) - mu * prec
    new_mean = amat @ a + mu * (prec @ m)
    new_cov = amat @ c @ amat.T + 2.0 * mu * np.eye(d)
    return new_mean, (new_cov + new_cov.T) / 2


def ula_one_step_inflation(target: Gaussian, step_size: float) -> float:
    """Relative inflation δ = tr(Σ⁻¹(Σ + μ²P))/d − 1 = μ² tr(P²)/d of one ULA step from the target."""
    target = _gaussian_target(target)
    mu = positive_float("step_size", step_size)
    prec = target.precision.detach().cpu().double().numpy()
    return float(mu**2 * np.sum(prec * prec) / target.dim)


def _scale_power(delta: float, n: int, d: int, level: float) -> float:
    """Exact power of the two-sided χ²_{nd} scale test at ``level`` when z ~ √(1+δ)N(0, I)."""
    dof = n * d
    hi = scipy.stats.chi2.isf(level / 2, dof)
    lo = scipy.stats.chi2.ppf(level / 2, dof)
    s = 1.0 + delta
    return float(scipy.stats.chi2.sf(hi / s, dof) + scipy.stats.chi2.cdf(lo / s, dof))


@functools.lru_cache(maxsize=4096)  # planning calls must be cheap when repeated
def _detectable_inflation(n: int, d: int, alpha: float, power: float) -> float:
    n = positive_int("n", n)
    d = positive_int("d", d)
    alpha = probability("alpha", alpha)
    power = probability("power", power)
    level = alpha / _COMPONENTS
    if _scale_power(1e6, n, d, level) < power:  # pragma: no cover - only for absurdly small n
        return math.inf
    return float(scipy.optimize.brentq(lambda t: _scale_power(t, n, d, level) - power, 0.0, 1e6, xtol=1e-10))


@functools.lru_cache(maxsize=4096)  # planning calls must be cheap when repeated
def _required_chains(effect: float, d: int, alpha: float, power: float) -> int:
    effect = positive_float("effect", effect)
    d = positive_int("d", d)
    alpha = probability("alpha", alpha)
    power = probability("power", power)
    level = alpha / _COMPONENTS
    lo, hi = 1, 2
    while _scale_power(effect, hi, d, level) < power:
        lo, hi = hi, hi * 2
        if hi > 2**40:  # pragma: no cover - effect ~ 1e-12
            raise ParameterError(f"effect={effect:g} is too small to plan for (needs more than 2^40 chains)")
    while hi - lo > 1:  # power is increasing in n: bisect on the integers
        mid = (lo + hi) // 2
        if _scale_power(effect, mid, d, level) >= power:
            hi = mid
        else:
            lo = mid
    return hi


def one_step_detectable_effect(
    n: int, *, d: int = 2, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER
) -> float:
    """Smallest relative covariance inflation δ (E‖z‖²/d − 1) ``check_one_step`` detects with prob ``power``."""
    return _detectable_inflation(n, d, alpha, power)


def one_step_required_samples(
    effect: float, *, d: int = 2, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER
) -> int:
    """Chains n at which ``check_one_step`` detects a relative covariance inflation ``effect`` w.p. ``power``."""
    return _required_chains(effect, d, alpha, power)


def ula_one_step_detectable_effect(
    n: int, *, d: int = 2, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER
) -> float:
    """Relative covariance inflation ``check_ula_one_step`` detects with prob ``power`` (as ``check_one_step``)."""
    return _detectable_inflation(n, d, alpha, power)


def ula_one_step_required_samples(
    effect: float, *, d: int = 2, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER
) -> int:
    """Chains n at which ``check_ula_one_step`` detects an inflation ``effect`` w.p. ``power`` (as ``check_one_step``)."""
    return _required_chains(effect, d, alpha, power)


def conservation_detectable_effect(
    n: int, d: int, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER
) -> float:
    """Deprecated name of ``one_step_detectable_effect`` (removed in the next release)."""
    warn_renamed(__name__, "conservation_detectable_effect", "one_step_detectable_effect")
    return one_step_detectable_effect(n, d=d, alpha=alpha, power=power)


def conservation_required_samples(
    effect: float, d: int, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER
) -> int:
    """Deprecated name of ``one_step_required_samples`` (removed in the next release)."""
    warn_renamed(__name__, "conservation_required_samples", "one_step_required_samples")
    return one_step_required_samples(effect, d=d, alpha=alpha, power=power)


def check_one_step(
    kernel: Kernel,
    target: Gaussian,
    *,
    n: int = 20_000,
    expected_mean: Any = None,
    expected_cov: Any = None,
    min_move_fraction: float = 0.05,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    projections: int = 8,
    power: float = DEFAULT_POWER,
) -> CheckResult:
    """Test H0: from x ~ target, x' = kernel(x, noise) ~ N(expected_mean, expected_cov) and chains move.

    H0: for x_i i.i.d. ~ ``target`` and noise_i ~ N(0, I), x'_i = kernel(x_i, noise_i) are i.i.d.
    N(expected_mean, expected_cov) (default: the target, i.e. the kernel leaves it invariant) AND
    each chain moves (x' ≠ x) with probability ≥ ``min_move_fraction``. Level ``alpha`` overall,
    Bonferroni over 4 tests (mean χ²_d + covariance LR, scale χ²_{nd}, shape, movement binomial), each at α/4.
    ``seed`` draws the start points and the noise (and the shape check's directions).
    """
    target = _gaussian_target(target)
    n = positive_int("n", n, minimum=2)
    alpha = probability("alpha", alpha)
    power = probability("power", power)
    min_move = probability("min_move_fraction", min_move_fraction)
    seed = nonnegative_seed("seed", seed)
    if not callable(kernel):
        raise ParameterError("kernel must be callable as kernel(x, noise) -> x_next on (chains, d) tensors")
    d = target.dim
    mean = target.mean.detach().cpu().double().numpy() if expected_mean is None else expected_mean
    cov = target.cov.detach().cpu().double().numpy() if expected_cov is None else expected_cov

    gen = make_generator(seed, target.device)
    x0 = target.sample(n, generator=gen)
    noise = torch.randn(x0.shape, generator=gen, dtype=x0.dtype, device=x0.device)
    with torch.no_grad():
        x1 = kernel(x0.clone(), noise)
    if not isinstance(x1, torch.Tensor) or x1.shape != x0.shape:
        raise ParameterError(
            f"kernel must return a tensor of shape {tuple(x0.shape)}, got {getattr(x1, 'shape', type(x1).__name__)}"
        )
    if not bool(torch.isfinite(x1).all()):
        raise ParameterError("kernel returned non-finite values from exact target draws (NaN or inf)")

    z = whiten(x1, mean, cov)
    level = alpha / _COMPONENTS

    moments = check_gaussian(x1.detach().cpu().double().numpy(), mean, cov, alpha=level, power=power)

    scale_stat = float(np.sum(z * z))
    dof = n * d
    p_scale = float(min(1.0, 2.0 * min(scipy.stats.chi2.sf(scale_stat, dof), scipy.stats.chi2.cdf(scale_stat, dof))))

    shape = check_gaussian_shape(x1, mean, cov, alpha=level, projections=projections, seed=seed, power=power)

    moved = int((x1 != x0).any(dim=-1).sum())
    p_move = float(scipy.stats.binom.cdf(moved, n, min_move))
    jump = float(((x1 - x0) ** 2).sum(-1).mean())

    pvals = {"gaussian": moments.p_value, "scale": p_scale, "shape": shape.p_value, "movement": p_move}
    worst = min(pvals, key=pvals.__getitem__)
    return CheckResult(
        name="one_step_conservation",
        null_hypothesis=(
            "one kernel step from exact target draws has law N(expected_mean, expected_cov) "
            f"and moves each chain with probability >= {min_move:g}"
        ),
        statistic=scale_stat / dof - 1.0,
        p_value=min(1.0, _COMPONENTS * min(pvals.values())),
        alpha=alpha,
        n=n,
        detectable_effect=_detectable_inflation(n, d, alpha, power),
        effect_unit="relative covariance inflation E||z||^2/d - 1 (z whitened by the expected law)",
        power=power,
        details={
            "statistic_meaning": "observed relative inflation sum||z||^2/(n d) - 1",
            "correction": f"Bonferroni over {_COMPONENTS} tests, each at alpha/{_COMPONENTS} = {level:.3g}",
            "p_values": pvals,
            "worst_test": worst,
            "gaussian_decided_by": moments.details.get("decided_by"),
            "scale_chi2": scale_stat,
            "shape_ks": shape.statistic,
            "moved_fraction": moved / n,
            "mean_squared_jump": jump,
            "seed": seed,
        },
    )


def _require_chains(n: int, alpha: float, power: float, effect: float | None, d: int) -> None:
    if effect is None:
        return
    needed = _required_chains(effect, d, alpha, power)
    if n < needed:
        raise ParameterError(
            f"n={n} chains is too small for the one-step check to detect a relative covariance inflation "
            f"{effect:g} with power {power:g} at alpha={alpha:g}; n >= {needed} is needed"
        )


def assert_one_step(
    kernel: Kernel,
    target: Gaussian,
    *,
    n: int = 20_000,
    expected_mean: Any = None,
    expected_cov: Any = None,
    min_move_fraction: float = 0.05,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    projections: int = 8,
    power: float = DEFAULT_POWER,
    effect: float | None = None,
) -> CheckResult:
    """Raise CheckFailed unless ``check_one_step`` (H0: invariance + movement) passes at ``alpha``.

    With ``effect`` (relative covariance inflation), first raise ParameterError if ``n`` cannot detect
    it with probability ``power``.
    """
    _require_chains(n, alpha, power, effect, _gaussian_target(target).dim)
    return check_one_step(
        kernel, target, n=n, expected_mean=expected_mean, expected_cov=expected_cov,
        min_move_fraction=min_move_fraction, alpha=alpha, seed=seed, projections=projections, power=power,
    ).raise_if_rejected()


def check_ula_one_step(
    kernel: Kernel,
    target: Gaussian,
    step_size: float,
    *,
    n: int = 20_000,
    min_move_fraction: float = 0.99,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    projections: int = 8,
    power: float = DEFAULT_POWER,
) -> CheckResult:
    """Test H0: one step of ``kernel`` from exact target draws has ULA's exact law N(m, Σ + μ²Σ⁻¹).

    Same tests, level and seed handling as ``check_one_step`` (Bonferroni over 4 tests at ``alpha``),
    with the expected law from ``ula_one_step_law``; ULA always moves, so ``min_move_fraction``
    defaults to 0.99.
    """
    mean, cov = ula_one_step_law(target, step_size)
    result = check_one_step(
        kernel, target, n=n, expected_mean=mean, expected_cov=cov, min_move_fraction=min_move_fraction,
        alpha=alpha, seed=seed, projections=projections, power=power,
    )
    return CheckResult(**{**result.__dict__, "name": "ula_one_step_law"})


def assert_ula_one_step(
    kernel: Kernel,
    target: Gaussian,
    step_size: float,
    *,
    n: int = 20_000,
    min_move_fraction: float = 0.99,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    projections: int = 8,
    power: float = DEFAULT_POWER,
    effect: float | None = None,
) -> CheckResult:
    """Raise CheckFailed unless ``check_ula_one_step`` (H0: ULA's exact one-step law) passes.

    With ``effect`` (relative covariance inflation), first raise ParameterError if ``n`` is too small.
    """
    _require_chains(n, alpha, power, effect, _gaussian_target(target).dim)
    return check_ula_one_step(
        kernel, target, step_size, n=n, min_move_fraction=min_move_fraction, alpha=alpha, seed=seed,
        projections=projections, power=power,
    ).raise_if_rejected()
