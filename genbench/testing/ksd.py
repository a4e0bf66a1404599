"""Kernel Stein discrepancy (KSD) with the inverse multiquadric kernel, from the score alone.

For a target p with score s = ∇log p and a kernel k, the Stein kernel is
    u(x, y) = s(x)ᵀs(y) k + s(x)ᵀ∇_y k + s(y)ᵀ∇_x k + tr(∇_x∇_y k),
and KSD²(q, p) = E_{x,y~q} u(x, y) is zero iff q = p (Liu, Lee & Jordan 2016; Chwialkowski,
Strathmann & Gretton 2016). With the IMQ kernel k = (c² + ‖r‖²)^β, r = x − y, β ∈ (−1, 0)
(Gorham & Mackey 2017 use β = −½, c = 1: unlike the Gaussian kernel it detects non-convergence),
writing q = c² + ‖r‖²:
    u = s(x)ᵀs(y) q^β + 2β q^{β−1} (s(y) − s(x))ᵀr − 2βd q^{β−1} − 4β(β−1) q^{β−2} ‖r‖².

It is written out here because no maintained Python package on our dependency list provides a
batched torch KSD with a Markov-chain wild bootstrap. The n×n Stein matrix is never held: rows
are processed in chunks of ``chunk_size`` (memory O(chunk·n)).

Test of H0: samples ~ p (``check_ksd``): the V-statistic n·V_n = (1/n) Σ_ij u_ij against the wild
bootstrap (1/n) Σ_ij W_i W_j u_ij (Chwialkowski et al. 2016). For i.i.d. samples W is i.i.d.
Rademacher; for one correlated chain W is the Markov-chain wild bootstrap: W_1 Rademacher and
W_t = −W_{t−1} with probability a (``flip_prob``), else W_t = W_{t−1}, so corr(W_t, W_{t+k}) =
(1−2a)^k. The Monte Carlo p-value (1 + #{B_b ≥ n V_n})/(1 + B) is exact-valid only asymptotically
(wild bootstrap consistency); the false-alarm rate is measured by the ``slow`` tests. Measured on
MALA chains of the seed target at α = 0.05: with effective sample size ≈ 145 (n = 1000, τ ≈ 7) the
Markov bootstrap holds its level, but with ESS ≈ 30 (τ ≈ 34, unthinned) it rejected 13% of correct
chains (the i.i.d. Rademacher bootstrap 45%): thin or lengthen the chain until its ESS is ≳ 100.
``check_ksd`` refuses a chain whose ESS is below ``MIN_MARKOV_ESS`` = 50 (between 50 and 100 the level
has not been measured).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from genbench._runtime import make_generator
from genbench._validate import choice, nonnegative_seed, positive_float, positive_int, probability
from genbench.errors import ParameterError
from genbench.planning import DEFAULT_ALPHA
from genbench.stats import ess
from genbench.targets import Gaussian, Target
from genbench.testing._result import CheckResult

# Below this Geyer ESS the Markov wild bootstrap is refused: at ESS ~30 it rejected 13% of correct
# chains at alpha = 0.05; at ESS ~140 (5th percentile 100, minimum 79) it held its level.
MIN_MARKOV_ESS = 50.0

__all__ = [
    "KSDEstimate",
    "KSDTrace",
    "kernel_stein_discrepancy",
    "gaussian_ksd_squared",
    "check_ksd",
    "assert_ksd",
    "ksd_step_size_trace",
]


@dataclass(frozen=True)
class KSDEstimate:
    """KSD² estimates from n samples: unbiased U-statistic, V-statistic and the U-statistic's standard error."""

    u_statistic: float
    v_statistic: float
    standard_error: float
    n: int

    @property
    def ksd(self) -> float:
        """KSD from the U-statistic (clipped at 0, since KSD² ≥ 0 while its unbiased estimate may not be)."""
        return math.sqrt(max(self.u_statistic, 0.0))


def _check_kernel_params(c: float, beta: float) -> tuple[float, float]:
    c = positive_float("c", c)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not -1.0 < float(beta) < 0.0:
        raise ParameterError(f"beta must be in (-1, 0) for the IMQ kernel, got {beta!r}")
    return c, float(beta)


def _points(samples: Any, target: Target) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(samples, torch.Tensor):
        x = samples.detach().to(torch.float64)
    else:
        try:
            x = torch.as_tensor(np.asarray(samples, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"samples must be a numeric (n, d) array, got {type(samples).__name__}") from exc
    dim = getattr(target, "dim", None)
    if x.ndim != 2 or x.shape[0] < 2 or (dim is not None and x.shape[1] != dim):
        raise ParameterError(f"samples must have shape (n, {dim}) with n >= 2, got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ParameterError("samples must be finite (they contain NaN or inf)")
    tdtype = getattr(target, "dtype", torch.float64)
    tdev = getattr(target, "device", x.device)
    s = target.score(x.to(device=tdev, dtype=tdtype)).to(device=x.device, dtype=torch.float64)
    if not bool(torch.isfinite(s).all()):
        raise ParameterError("target.score returned non-finite values at the samples")
    return x, s


def _stein_pass(
    x: torch.Tensor,
    s: torch.Tensor,
    c: float,
    beta: float,
    chunk_size: int,
    weights: torch.Tensor | None = None,
) -> tuple[float, float, torch.Tensor, torch.Tensor | None]:
    """One chunked pass over the Stein matrix U: (Σ_ij u_ij, Σ_i u_ii, row sums, Σ_ij W_ib u_ij W_jb)."""
    n, d = x.shape
    sq = (x * x).sum(1)
    sx = (s * x).sum(1)  # s_i·x_i
    total = 0.0
    rows = torch.empty(n, dtype=torch.float64, device=x.device)
    boot = None if weights is None else torch.zeros(weights.shape[1], dtype=torch.float64, device=x.device)
    c2 = c * c
    for start in range(0, n, chunk_size):
        sl = slice(start, min(start + chunk_size, n))
        xi, si = x[sl], s[sl]
        # Pairwise quantities from inner products (memory O(chunk·n), no (chunk, n, d) tensor);
        # in-place updates keep the pass at a few full-size temporaries.
        r2 = torch.addmm(sq[None, :], xi, x.T, alpha=-2.0).add_(sq[sl, None]).clamp_min_(0.0)
        # (s_j − s_i)·(x_i − x_j) − d = s_j·x_i + s_i·x_j − s_j·x_j − s_i·x_i − d
        cross = torch.addmm(xi @ s.T, si, x.T).sub_(sx[None, :]).sub_(sx[sl, None] + d)
        q = r2 + c2
        if beta == -0.5:
            qb1 = torch.rsqrt(q).div_(q)  # q^{-3/2} without a general pow (3x faster)
        else:
            qb1 = q.pow(beta - 1.0)
        # u = q^{β−1} [ (s_i·s_j) q + 2β((s_j − s_i)·r − d) − 4β(β−1) ‖r‖²/q ]
        u = (si @ s.T).mul_(q).add_(cross, alpha=2.0 * beta)
        u.add_(r2.div_(q), alpha=-4.0 * beta * (beta - 1.0)).mul_(qb1)
        rows[sl] = u.sum(1)
        if weights is not None and boot is not None:
            boot += (weights[sl] * (u @ weights)).sum(0)
    total = float(rows.sum())
    # Diagonal: r = 0, q = c², cross = 0: u_ii = ‖s_i‖² c^{2β} − 2βd c^{2(β−1)}.
    diag = float(((s * s).sum(1) * c2**beta).sum() - 2.0 * beta * d * c2 ** (beta - 1.0) * n)
    return total, diag, rows, boot


def _require_finite(*values: float) -> None:
    # Far outside the target's scale (|x| ~ 1e99 for a unit-scale target) the Stein kernel's products
    # overflow float64 and inf − inf gives NaN: refuse rather than report a NaN statistic.
    if not all(math.isfinite(v) for v in values):
        raise ParameterError(
            "samples: the kernel Stein discrepancy overflowed float64 (samples or scores too large for the "
            "IMQ Stein kernel); rescale the problem or check the sampler for divergence"
        )


def kernel_stein_discrepancy(
    samples: Any, target: Target, *, c: float = 1.0, beta: float = -0.5, chunk_size: int = 1024
) -> KSDEstimate:
    """IMQ kernel Stein discrepancy² of ``samples`` (n, d) against ``target`` (U- and V-statistics)."""
    c, beta = _check_kernel_params(c, beta)
    chunk_size = positive_int("chunk_size", chunk_size)
    x, s = _points(samples, target)
    n = x.shape[0]
    total, diag, rows, _ = _stein_pass(x, s, c, beta, chunk_size)
    _require_finite(total, diag)
    u_stat = (total - diag) / (n * (n - 1))
    # Hoeffding: Var(U) ≈ 4 Var(h1)/n with h1(x_i) = E_y u(x_i, y), estimated by the off-diagonal row means.
    d = x.shape[1]
    diag_i = (s * s).sum(1) * c**(2 * beta) - 2.0 * beta * d * c ** (2 * (beta - 1.0))
    h1 = (rows - diag_i) / (n - 1)
    se = float(2.0 * h1.std() / math.sqrt(n)) if n > 2 else math.nan
    return KSDEstimate(u_statistic=u_stat, v_statistic=total / n**2, standard_error=se, n=n)


def gaussian_ksd_squared(target: Gaussian, mean: Any, cov: Any, *, c: float = 1.0, beta: float = -0.5) -> float:
    """Exact IMQ KSD²(N(mean, cov), target) for a Gaussian target (one 1-D integral, any d).

    With p = N(m, Σ), P = Σ⁻¹, q = N(m_q, S), δ = m_q − m and x, y ~ q independent, r = x − y ~ N(0, V),
    V = 2S, is independent of (x + y)/2, and E[u | r] = (c₀ − rᵀP²r/4) q^β + 2β q^{β−1}(rᵀPr − d)
    − 4β(β−1) q^{β−2}‖r‖², c₀ = tr(P²S)/2 + δᵀP²δ, q = c² + ‖r‖². Writing q^γ = ∫₀^∞ t^{−γ−1}e^{−tq} dt/Γ(−γ)
    (γ < 0) turns each term into a Gaussian integral: E[e^{−t‖r‖²}] = det(I + 2tV)^{−1/2} =: D(t) and
    E[rᵀAr e^{−t‖r‖²}] = D(t) tr(A V_t), V_t = V(I + 2tV)⁻¹, leaving one integral over t (scipy quad).
    """
    import scipy.integrate
    import scipy.special

    if not isinstance(target, Gaussian):
        raise ParameterError(f"target must be a genbench.targets.Gaussian, got {type(target).__name__}")
    c, beta = _check_kernel_params(c, beta)
    d = target.dim
    m = target.mean.detach().cpu().double().numpy()
    prec = target.precision.detach().cpu().double().numpy()
    mq = np.asarray(mean, dtype=np.float64).reshape(d)
    S = np.asarray(cov, dtype=np.float64).reshape(d, d)
    S = (S + S.T) / 2
    v, qv = np.linalg.eigh(2.0 * S)
    if v[0] <= 0:
        raise ParameterError("cov must be positive definite")
    delta = mq - m
    p2 = prec @ prec
    c0 = 0.5 * float(np.sum(p2 * S)) + float(delta @ p2 @ delta)
    # Diagonals of P and P² in V's eigenbasis: tr(A V_t) = Σ_k A_kk v_k/(1 + 2t v_k).
    p_diag = np.einsum("ik,ij,jk->k", qv, prec, qv)
    p2_diag = np.einsum("ik,ij,jk->k", qv, p2, qv)
    g0, g1, g2 = scipy.special.gamma(-beta), scipy.special.gamma(1.0 - beta), scipy.special.gamma(2.0 - beta)

    def integrand(u: float) -> float:
        # t = u² removes the integrable t^{−β−1} singularity at 0 (dt = 2u du).
        t = u * u
        vt = v / (1.0 + 2.0 * t * v)
        dt = math.exp(-t * c * c) / math.sqrt(float(np.prod(1.0 + 2.0 * t * v)))
        a = t ** (-beta - 1.0) / g0 * (c0 - 0.25 * float(p2_diag @ vt))
        b = t ** (-beta) / g1 * 2.0 * beta * (float(p_diag @ vt) - d)
        e = -(t ** (1.0 - beta)) / g2 * 4.0 * beta * (beta - 1.0) * float(vt.sum())
        return 2.0 * u * dt * (a + b + e)

    val, _ = scipy.integrate.quad(integrand, 0.0, math.inf, epsabs=1e-13, epsrel=1e-10, limit=500)
    return float(max(val, 0.0))


def _wild_weights(
    n: int, n_boot: int, bootstrap: str, flip_prob: float, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    first = torch.randint(0, 2, (1, n_boot), generator=generator, device=device).to(torch.float64) * 2.0 - 1.0
    if bootstrap == "rademacher":
        rest = torch.randint(0, 2, (n - 1, n_boot), generator=generator, device=device).to(torch.float64) * 2.0 - 1.0
        return torch.cat([first, rest], 0)
    flips = torch.rand((n - 1, n_boot), generator=generator, device=device, dtype=torch.float64) < flip_prob
    signs = torch.where(flips, -1.0, 1.0).to(torch.float64)
    return torch.cat([first, first * torch.cumprod(signs, 0)], 0)


def check_ksd(
    samples: Any,
    target: Target,
    *,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    n_boot: int = 999,
    bootstrap: str = "rademacher",
    flip_prob: float | None = None,
    c: float = 1.0,
    beta: float = -0.5,
    chunk_size: int = 1024,
    min_ess: float = MIN_MARKOV_ESS,
) -> CheckResult:
    """Test H0: samples ~ target, by the IMQ KSD V-statistic against a wild bootstrap.

    H0: the rows of ``samples`` are draws from ``target`` — i.i.d. for ``bootstrap="rademacher"``,
    or one stationary, geometrically mixing chain (rows in time order) for ``bootstrap="markov"``
    with sign-flip probability ``flip_prob`` (required; W's lag-k autocorrelation is (1−2a)^k and its
    integrated autocorrelation time (1−a)/a, so a ≈ 1/(1+τ) for a chain with autocorrelation time τ;
    asymptotic: thin until the chain's effective sample size is ≳ 100, see the module docstring).
    A chain whose Geyer ESS (worst coordinate) is below ``min_ess`` is refused with ParameterError
    rather than tested in the regime where the bootstrap is known to over-reject.
    Level ``alpha`` (asymptotically exact); ``seed`` draws the ``n_boot`` bootstrap weight vectors.
    No closed-form power: ``detectable_effect`` is None.
    """
    alpha = probability("alpha", alpha)
    seed = nonnegative_seed("seed", seed)
    n_boot = positive_int("n_boot", n_boot, minimum=19)
    bootstrap = choice("bootstrap", bootstrap, ("rademacher", "markov"))
    if bootstrap == "markov":
        if flip_prob is None:
            raise ParameterError("flip_prob is required with bootstrap='markov' (about 1/(1 + autocorrelation time))")
        flip = probability("flip_prob", flip_prob)
        if isinstance(min_ess, bool) or not isinstance(min_ess, (int, float)) or not 0 <= min_ess < math.inf:
            raise ParameterError(f"min_ess must be a finite number >= 0, got {min_ess!r}")
    else:
        if flip_prob is not None:
            raise ParameterError("flip_prob applies only to bootstrap='markov'")
        flip = 0.5
    c, beta = _check_kernel_params(c, beta)
    chunk_size = positive_int("chunk_size", chunk_size)
    x, s = _points(samples, target)
    n = x.shape[0]
    chain_ess = None
    if bootstrap == "markov":
        chain_ess = float(np.min(ess(x.detach().cpu().double().numpy()[None])))
        if chain_ess < min_ess:
            raise ParameterError(
                f"samples: the chain's effective sample size is {chain_ess:.0f} < min_ess={min_ess:g}; the Markov "
                "wild bootstrap over-rejects there (13% false alarms at alpha=0.05 measured at ESS ~30): run the "
                "chain longer or thin it (or lower min_ess knowingly)"
            )
    gen = make_generator(seed, x.device)
    w = _wild_weights(n, n_boot, bootstrap, flip, gen, x.device)
    total, diag, _, boot = _stein_pass(x, s, c, beta, chunk_size, weights=w)
    assert boot is not None
    _require_finite(total, diag, float(boot.abs().max()))
    stat = total / n  # n·V_n
    boot_stats = boot / n
    exceed = int((boot_stats >= stat).sum())
    p_value = (1 + exceed) / (1 + n_boot)
    return CheckResult(
        name="ksd_imq",
        null_hypothesis=(
            "samples are draws from the target"
            + (" (i.i.d.)" if bootstrap == "rademacher" else " (one stationary chain)")
        ),
        statistic=stat,
        p_value=p_value,
        alpha=alpha,
        n=n,
        detectable_effect=None,
        effect_unit="",
        power=None,
        details={
            "statistic_meaning": "n * V-statistic of IMQ KSD^2",
            "ksd2_u_statistic": (total - diag) / (n * (n - 1)),
            "bootstrap": bootstrap,
            "flip_prob": flip,
            "chain_ess": chain_ess,
            "n_boot": n_boot,
            "kernel": f"IMQ (c^2 + |r|^2)^beta, c={c:g}, beta={beta:g}",
            "seed": seed,
            "p_value_resolution": 1.0 / (1 + n_boot),
        },
    )


def assert_ksd(
    samples: Any,
    target: Target,
    *,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    n_boot: int = 999,
    bootstrap: str = "rademacher",
    flip_prob: float | None = None,
    c: float = 1.0,
    beta: float = -0.5,
    chunk_size: int = 1024,
    min_ess: float = MIN_MARKOV_ESS,
) -> CheckResult:
    """Raise CheckFailed unless ``check_ksd`` (H0: samples ~ target) passes at ``alpha``.

    KSD has no planner (``ksd_required_samples``): the wild-bootstrap null law depends on the data and
    the statistic's law under an alternative has no closed form; plan with a pilot on data of the kind.
    """
    return check_ksd(
        samples, target, alpha=alpha, seed=seed, n_boot=n_boot, bootstrap=bootstrap, flip_prob=flip_prob, c=c,
        beta=beta, chunk_size=chunk_size, min_ess=min_ess,
    ).raise_if_rejected()


@dataclass(frozen=True)
class KSDTrace:
    """ULA's stationary bias in KSD against the step size μ (data only; plotting lives elsewhere)."""

    step_sizes: list[float]
    ksd_exact: list[float]
    ksd2_exact: list[float]
    ksd2_estimate: list[float]
    ksd2_standard_error: list[float]
    n: int
    seed: int
    source: str
    details: dict[str, Any] = field(default_factory=dict)


def ksd_step_size_trace(
    target: Gaussian,
    step_sizes: Sequence[float] = (0.001, 0.01, 0.05, 0.15),
    *,
    n: int = 4000,
    seed: int = 0,
    samples_for: Callable[[float], Any] | None = None,
    c: float = 1.0,
    beta: float = -0.5,
) -> KSDTrace:
    """KSD of ULA's stationary law N(m, S_μ) against the target for each step size μ (exact and estimated).

    ``ksd2_exact`` comes from ``gaussian_ksd_squared`` with S_μ from ``langevin.theory.stationary_cov``.
    ``ksd2_estimate`` is the U-statistic from n draws: exact draws of N(m, S_μ) built from one common
    set of standard normals (seed ``seed``) for every μ, or ``samples_for(μ)`` (e.g. real ULA output).
    """
    from genbench.langevin.theory import stationary_cov  # sampler theory sits below testing

    if not isinstance(target, Gaussian):
        raise ParameterError(f"target must be a genbench.targets.Gaussian, got {type(target).__name__}")
    mus = [positive_float("step_sizes", float(mu)) for mu in step_sizes]
    if not mus:
        raise ParameterError("step_sizes must hold at least one step size")
    n = positive_int("n", n, minimum=2)
    seed = nonnegative_seed("seed", seed)
    m = target.mean.detach().cpu().double().numpy()
    gen = make_generator(seed)
    z = torch.randn(n, target.dim, generator=gen, dtype=torch.float64)  # common random numbers across μ
    exact2, est, se = [], [], []
    for mu in mus:
        s_mu = stationary_cov(target, mu)
        exact2.append(gaussian_ksd_squared(target, m, s_mu, c=c, beta=beta))
        if samples_for is None:
            xs = torch.as_tensor(m) + z @ torch.as_tensor(np.linalg.cholesky(s_mu)).T
        else:
            xs = samples_for(mu)
        e = kernel_stein_discrepancy(xs, target, c=c, beta=beta)
        est.append(e.u_statistic)
        se.append(e.standard_error)
    return KSDTrace(
        step_sizes=mus,
        ksd_exact=[math.sqrt(v) for v in exact2],
        ksd2_exact=exact2,
        ksd2_estimate=est,
        ksd2_standard_error=se,
        n=n,
        seed=seed,
        source="exact stationary-law draws" if samples_for is None else "samples_for(step_size)",
        details={"kernel": f"IMQ c={c:g}, beta={beta:g}"},
    )
