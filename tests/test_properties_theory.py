"""Properties of ULA's exact Gaussian law (genbench.langevin.theory), and regressions at tiny step sizes.

Hypothesis draws targets (d = 1..8, condition numbers up to 1e6), step sizes μ = f·2/λ_max with
f ∈ [1e-12, 0.999] (μ = 1e-9 included) and T up to 1e8, and checks the closed forms against the
recursions that define them:

* ula_cov(t+1) = A ula_cov(t) Aᵀ + 2μI and ula_mean(t+1) = m + A(ula_mean(t) − m), A = I − μΣ⁻¹;
* stationary_cov S solves A S Aᵀ + 2μI = S, and S − ula_cov(t) = Q diag(s_i ρ_i^{2t}) Qᵀ → 0;
* mixing_time is the smallest t with max|ρ_i|ᵗ ≤ tol; the thinned IACT is the lag-h AR(1) sum.

Tolerances (see tests/property_strategies.py): the closed forms are exact for the precision's
computed eigendecomposition P̂ = P + E, ‖E‖ ≤ γ_d‖P‖; one recursion step with P instead of P̂ moves
the result by μ‖E‖‖C‖ ≤ 2γ_d‖C‖ (μ‖P‖ < 2), and forming A C Aᵀ costs 2γ_d‖C‖, so every recursion
residual is bounded by 8γ_d relative to the norm of the matrices involved: no condition number enters.

The regressions compare with a 50-digit ``decimal`` evaluation of the same geometric sums (no
mpmath), on the eigenvalues numpy computed, so they measure the closed forms' rounding alone; the
trajectory average's law (whose closed form cancels) against a 120-digit one, for every T up to 1e8.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from genbench.errors import ParameterError
from genbench.langevin import theory
from genbench.targets import Gaussian, seed_target
from property_strategies import (
    MAX_STEPS,
    condition_number,
    falsify,
    gamma,
    gaussian_params,
    spectral_tolerance,
    step_counts,
    step_fractions,
)

pytestmark = pytest.mark.property

F64 = torch.float64


def _setup(params, f: float) -> tuple[Gaussian, float, np.ndarray, np.ndarray]:
    mean, cov, _ = params
    target = Gaussian(mean, cov, dtype=F64)
    prec = target.precision.double().numpy()
    mu = f * theory.stability_bound(target)
    a = np.eye(target.dim) - mu * prec
    return target, mu, prec, a


def _rtol(d: int) -> float:
    return 8.0 * gamma(d + 2, F64)


def _assert_normwise(actual: np.ndarray, desired: np.ndarray, atol: float) -> None:
    """‖actual − desired‖ ≤ atol: rounding bounds are norm-wise (an off-diagonal entry far below the
    diagonal carries the diagonal's absolute error, not its own relative one)."""
    err = float(np.linalg.norm(np.asarray(actual) - np.asarray(desired)))
    assert err <= atol, (err, atol, actual, desired)


# ------------------------------------------------------------------------- properties (parameterised by
# the implementation so that the mutation tests below can run the very same property on a broken one)


def cov_recursion_property(ula_cov=theory.ula_cov):  # type: ignore[no-untyped-def]
    """ula_cov(0) = 0 (x_0 is fixed) and ula_cov(t+1) = A ula_cov(t) Aᵀ + 2μI."""

    @given(gaussian_params(dtypes=(F64,)), step_fractions(), step_counts(MAX_STEPS - 1))
    def prop(params, f: float, t: int) -> None:
        target, mu, _, a = _setup(params, f)
        d = target.dim
        assert np.all(ula_cov(target, mu, 0) == 0.0)
        c_t, c_next = ula_cov(target, mu, t), ula_cov(target, mu, t + 1)
        rhs = a @ c_t @ a.T + 2.0 * mu * np.eye(d)
        scale = np.linalg.norm(c_next) + np.linalg.norm(rhs)
        assert np.linalg.norm(c_next - rhs) <= _rtol(d) * scale, (t, mu, c_next, rhs)

    return prop


def mean_recursion_property(ula_mean=theory.ula_mean):  # type: ignore[no-untyped-def]
    """ula_mean(0) = x_0 and ula_mean(t+1) = m + A(ula_mean(t) − m)."""

    @given(
        gaussian_params(dtypes=(F64,)),
        step_fractions(),
        step_counts(MAX_STEPS - 1),
        st.lists(st.floats(-20.0, 20.0), min_size=8, max_size=8),
    )
    def prop(params, f: float, t: int, x0_all: list[float]) -> None:
        target, mu, _, a = _setup(params, f)
        d = target.dim
        m = params[0]
        x0 = np.asarray(x0_all[:d])
        m_t, m_next = ula_mean(target, mu, t, x0), ula_mean(target, mu, t + 1, x0)
        rhs = m + a @ (m_t - m)
        scale = np.linalg.norm(m) + np.linalg.norm(x0 - m)
        assert np.linalg.norm(ula_mean(target, mu, 0, x0) - x0) <= _rtol(d) * scale
        assert np.linalg.norm(m_next - rhs) <= _rtol(d) * scale, (t, mu, m_next, rhs)

    return prop


def stationary_property(stationary_cov=theory.stationary_cov):  # type: ignore[no-untyped-def]
    """S = stationary_cov solves A S Aᵀ + 2μI = S."""

    @given(gaussian_params(dtypes=(F64,)), step_fractions())
    def prop(params, f: float) -> None:
        target, mu, _, a = _setup(params, f)
        d = target.dim
        s = stationary_cov(target, mu)
        residual = a @ s @ a.T + 2.0 * mu * np.eye(d) - s
        assert np.linalg.norm(residual) <= _rtol(d) * np.linalg.norm(s), (mu, residual)

    return prop


def convergence_property(ula_cov=theory.ula_cov, stationary_cov=theory.stationary_cov):  # type: ignore[no-untyped-def]
    """S − ula_cov(t) = Q diag(s_i ρ_i^{2t}) Qᵀ: positive semidefinite, of norm max_i s_i ρ_i^{2t} → 0."""

    @given(gaussian_params(dtypes=(F64,)), step_fractions(), step_counts())
    def prop(params, f: float, t: int) -> None:
        target, mu, prec, _ = _setup(params, f)
        d = target.dim
        lam = np.linalg.eigvalsh(prec)
        u = mu * lam
        s_i = 2.0 * mu / (u * (2.0 - u))
        with np.errstate(under="ignore", divide="ignore", invalid="ignore"):
            logr = np.where(u < 1, np.log1p(-u), np.log(np.abs(u - 1)))
            gap_exact = float(np.max(s_i * np.exp(2.0 * t * logr)))
        s = stationary_cov(target, mu)
        gap = s - ula_cov(target, mu, t)
        ev = np.linalg.eigvalsh(gap)
        tol = _rtol(d) * np.linalg.norm(s)
        assert ev[0] >= -tol, ("S - cov_t not PSD", t, mu, ev)
        # gap_exact comes from this test's own eigenvalues of P, each off by γ_d·λ_max (Weyl): a
        # relative error (λ_max/λ_i)·γ_d, which s_i = 2/(λ_i(2 − u_i)) amplifies by 2/(2 − u_i) near the
        # stability bound. Hence the spectral tolerance at that effective condition number.
        kappa_eff = float(np.max((lam[-1] / lam) * 2.0 / (2.0 - u)))
        spectral = spectral_tolerance(d, kappa_eff) * np.linalg.norm(s)
        assert abs(ev[-1] - gap_exact) <= tol + spectral, (t, mu, ev[-1], gap_exact)

    return prop


def test_ula_cov_satisfies_the_one_step_recursion() -> None:
    cov_recursion_property()()


def test_ula_mean_satisfies_the_one_step_recursion() -> None:
    mean_recursion_property()()


def test_stationary_cov_solves_the_stein_equation() -> None:
    stationary_property()()


def test_law_tends_to_the_stationary_law_at_rate_rho_squared() -> None:
    convergence_property()()


@given(gaussian_params(dtypes=(F64,)), step_fractions(), st.sampled_from([1e-8, 0.01, 0.5]))
def test_mixing_time_is_the_smallest_t_with_memory_below_tol(params, f: float, tol: float) -> None:
    target, mu, prec, _ = _setup(params, f)
    lam = np.linalg.eigvalsh(prec)
    t = theory.mixing_time(target, mu, tol)
    # log max|ρ| from u = μλ without forming 1 − u. The slowest direction's λ carries eigh's error
    # γ_d‖P‖, a relative (λ_max/λ)·γ_d, which log|1 − u| amplifies by |u/((1 − u) log|1 − u|)| (1 for
    # small u, 2/(2 − u) near the stability bound): t·log|ρ| is known to spectral_tolerance at that
    # effective condition number, and the defining inequalities of the integer t get that margin.
    u = mu * lam
    with np.errstate(invalid="ignore", divide="ignore"):
        logs = np.where(u < 1, np.log1p(-u), np.log(np.abs(u - 1)))
    slow = int(np.argmax(logs))
    logr = float(logs[slow])
    if logr == -np.inf:
        assert t == 1
        return
    kappa_eff = (lam[-1] / lam[slow]) * abs(u[slow] / ((1.0 - u[slow]) * logr))
    slack = spectral_tolerance(target.dim, kappa_eff) * abs(t * logr)
    assert t * logr <= np.log(tol) + slack
    assert t == 1 or (t - 1) * logr > np.log(tol) - slack


@given(gaussian_params(dtypes=(F64,)), step_fractions(), st.integers(1, 10_000))
def test_thinned_iact_is_the_lag_h_ar1_sum_and_ess_uses_it(params, f: float, h: int) -> None:
    target, mu, prec, _ = _setup(params, f)
    d = target.dim
    lam, q = np.linalg.eigh(prec)
    u = mu * lam
    s_i = 2.0 / (lam * (2.0 - u))
    with np.errstate(invalid="ignore", divide="ignore"):
        logr = np.where(u < 1, np.log1p(-u), np.log(np.abs(u - 1)))
    sign = np.where((u > 1) & (h % 2 == 1), -1.0, 1.0)
    rho_h = sign * np.exp(h * logr)
    one_minus = np.where(sign > 0, -np.expm1(h * logr), 1.0 + np.exp(h * logr))
    w = q**2 * s_i
    expected = (w @ ((1.0 + rho_h) / one_minus)) / w.sum(axis=1)
    tau = theory.integrated_autocorrelation_time(target, mu, thin=h)
    np.testing.assert_allclose(tau, expected, rtol=_rtol(d))
    assert np.all(tau > 0)
    ess = theory.predicted_ess(target, mu, 1000, thin=h)
    np.testing.assert_allclose(ess * tau, 1000.0, rtol=_rtol(d))
    np.testing.assert_allclose(theory.autocorrelation(target, mu, lag=h), rho_h, rtol=_rtol(d), atol=1e-300)


# ------------------------------------------------------------------------- regressions at tiny step sizes

DIGITS = 50  # decimal digits of the reference: far beyond float64's 16, so its rounding is negligible


def _decimal_geometric(u: float, t: int) -> Decimal:
    """Σ_{k<t} (1 − u)^{2k} in 50-digit decimal arithmetic from the float64 u (exact conversion)."""
    with localcontext() as ctx:
        ctx.prec = DIGITS
        r2 = (Decimal(1) - Decimal(u)) ** 2
        if r2 == 1:
            return Decimal(t)
        return (Decimal(1) - r2**t) / (Decimal(1) - r2)


def _decimal_cov(target: Gaussian, mu: float, t: int) -> np.ndarray:
    lam, q = np.linalg.eigh(target.precision.double().numpy())
    geo = np.array([float(_decimal_geometric(mu * float(x), t)) for x in lam])
    c = (q * (2.0 * mu * geo)) @ q.T
    return (c + c.T) / 2


TINY = [(5e-6, 10**6), (1e-9, 10**8), (1e-9, 1000), (5e-6, 1), (1e-7, 10**8), (1e-3, 10**5), (0.15, 10**8)]


@pytest.mark.parametrize(("mu", "t"), TINY)
def test_ula_cov_at_tiny_step_sizes_matches_a_50_digit_reference(mu: float, t: int) -> None:
    target = seed_target()
    ref = _decimal_cov(target, mu, t)
    _assert_normwise(theory.ula_cov(target, mu, t), ref, _rtol(2) * np.linalg.norm(ref))


def test_issue_example_mu_5e_6_T_1e6_is_near_sigma_not_five_sigma() -> None:
    cov = theory.ula_cov(seed_target(), 5e-6, 10**6)
    # Exact law: the direction of Σ's eigenvalue 1.9 has forgotten x0 up to ρ^{2T} = e^{-5.26}: 0.995, 0.895.
    np.testing.assert_allclose(cov, [[0.995083, 0.895080], [0.895080, 0.995083]], rtol=1e-5)


@pytest.mark.parametrize("mu", [1e-12, 1e-9, 5e-6, 0.01, 0.15])
def test_mean_iact_and_mixing_time_at_tiny_step_sizes_match_a_50_digit_reference(mu: float) -> None:
    with localcontext() as ctx:
        ctx.prec = DIGITS
        _check_mean_iact_mixing(mu)


def _check_mean_iact_mixing(mu: float) -> None:
    target = seed_target()
    lam, q = np.linalg.eigh(target.precision.double().numpy())
    x0 = np.array([-3.0, 2.0])
    m = target.mean.double().numpy()
    for t in (1, 10**4, 10**8):
        rho_t = np.array([float((Decimal(1) - Decimal(mu * float(x))) ** t) for x in lam])
        ref = m + q @ (rho_t * (q.T @ (x0 - m)))
        _assert_normwise(theory.ula_mean(target, mu, t, x0), ref, _rtol(2) * (np.linalg.norm(m) + np.linalg.norm(x0 - m)))
    for h in (1, 7, 1000):
        ratio = []
        for x in lam:
            r_h = (Decimal(1) - Decimal(mu * float(x))) ** h
            ratio.append(float((1 + r_h) / (1 - r_h)))
        s_i = 2.0 / (lam * (2.0 - mu * lam))
        w = q**2 * s_i
        ref_tau = (w @ np.asarray(ratio)) / w.sum(axis=1)
        np.testing.assert_allclose(theory.integrated_autocorrelation_time(target, mu, thin=h), ref_tau, rtol=_rtol(2))
    tol = Decimal("0.01")
    slow = max(abs(Decimal(1) - Decimal(mu * float(x))) for x in lam)
    t_mix = theory.mixing_time(target, mu, 0.01)
    assert slow**t_mix <= tol < slow ** (t_mix - 1)


def test_predicted_ess_of_a_thinned_chain_counts_tau_at_lag_h() -> None:
    target = seed_target()
    # Thinning by h: n draws h steps apart; with h >> τ the draws are nearly independent.
    per_step = theory.predicted_ess(target, 0.01, 1000)
    thinned = theory.predicted_ess(target, 0.01, 1000, thin=10)
    far = theory.predicted_ess(target, 0.01, 1000, thin=10**6)
    assert np.all(per_step < thinned) and np.all(thinned < far)
    np.testing.assert_allclose(far, 1000.0, rtol=1e-12)
    with pytest.raises(ParameterError, match="thin"):
        theory.predicted_ess(target, 0.01, 1000, thin=0)


def _decimal_trajectory_law(target: Gaussian, mu: float, steps: int, x0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the trajectory average from the closed-form AR(1) sums in 120-digit decimals.

    The closed form cancels to O(u²T³) from terms of order T, and an error ε in ρ = 1 − u becomes a
    relative error ~ε/u³ in the variance: float64 cannot afford it (the reason theory composes the
    recursion instead). 120 digits can: u ≥ 2e-18 here (f ≥ 1e-12 of the bound, condition ≤ 1e6).
    """
    lam, q = np.linalg.eigh(target.precision.double().numpy())
    m = target.mean.double().numpy()
    y0 = q.T @ (x0 - m)
    mean_y, var_y = [], []
    with localcontext() as ctx:
        ctx.prec = 120
        big_t = Decimal(steps)
        for x in lam:
            u = Decimal(mu * float(x))  # the same float64 product theory forms
            rho = Decimal(1) - u
            s1 = rho * (1 - rho**steps) / u  # Σ_{t≤T} ρᵗ
            s2 = rho**2 * (1 - rho ** (2 * steps)) / (u * (2 - u))  # Σ_{t≤T} ρ²ᵗ
            mean_y.append(float(s1 / big_t))
            var_y.append(float(2 * Decimal(mu) * (big_t - 2 * s1 + s2) / (u * u * big_t * big_t)))
    cov = (q * np.asarray(var_y)) @ q.T
    return m + q @ (np.asarray(mean_y) * y0), (cov + cov.T) / 2


def trajectory_law_property(law=theory.trajectory_mean_law):  # type: ignore[no-untyped-def]
    """trajectory_mean_law equals the 120-digit closed form for every stable μ (down to 1e-12 of the bound) and T."""

    @given(
        gaussian_params(dtypes=(F64,)),
        step_fractions(),
        step_counts(MAX_STEPS),
        st.lists(st.floats(-20.0, 20.0), min_size=8, max_size=8),
    )
    def prop(params, f: float, t: int, x0_all: list[float]) -> None:
        target, mu, _, _ = _setup(params, f)
        d = target.dim
        t = max(t, 1)
        x0 = np.asarray(x0_all[:d])
        ref_mean, ref_cov = _decimal_trajectory_law(target, mu, t, x0)
        mean, cov = law(target, mu, t, x0)
        m = target.mean.double().numpy()
        _assert_normwise(cov, ref_cov, _rtol(d) * np.linalg.norm(ref_cov))
        _assert_normwise(mean, ref_mean, _rtol(d) * (np.linalg.norm(m) + np.linalg.norm(x0 - m)))

    return prop


def test_trajectory_average_law_matches_a_120_digit_reference() -> None:
    trajectory_law_property()()


@pytest.mark.parametrize(("mu", "t"), [(1e-8, 3), (1e-7, 100), (1e-6, 10), (1e-9, 10**8), (0.1999, 64)])
def test_trajectory_average_law_at_tiny_step_sizes(mu: float, t: int) -> None:
    """The cases where the float64 closed form was 2000x, 3.4x and 6.6 % off (and not positive definite at 1e-8)."""
    target, x0 = seed_target(), np.array([2.0, -1.0])
    ref_mean, ref_cov = _decimal_trajectory_law(target, mu, t, x0)
    mean, cov = theory.trajectory_mean_law(target, mu, t, x0)
    _assert_normwise(cov, ref_cov, _rtol(2) * np.linalg.norm(ref_cov))
    _assert_normwise(mean, ref_mean, _rtol(2) * 4.0)
    assert np.all(np.linalg.eigvalsh(cov) > 0)


# ------------------------------------------------------------------------- mutation evidence


def _old_ula_cov(target: Gaussian, step_size: float, t: int) -> np.ndarray:
    """The geometric sum as it was before this fix: ρ² 'close to 1' (rtol 1e-5) taken as 1, geo = t."""
    lam, q = np.linalg.eigh(target.precision.double().numpy())
    r2 = (1.0 - step_size * lam) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        geo = np.where(np.isclose(r2, 1.0), float(t), (1.0 - r2**t) / (1.0 - r2))
    cov = (q * (2.0 * step_size * geo)) @ q.T
    return (cov + cov.T) / 2


def test_old_geometric_sum_fails_the_recursion_and_convergence_properties() -> None:
    falsify(cov_recursion_property(_old_ula_cov))
    falsify(convergence_property(ula_cov=_old_ula_cov))
    with pytest.raises(AssertionError):
        ref = _decimal_cov(seed_target(), 5e-6, 10**6)
        _assert_normwise(_old_ula_cov(seed_target(), 5e-6, 10**6), ref, _rtol(2) * np.linalg.norm(ref))


def _closed_form_trajectory_law(target: Gaussian, step_size: float, steps: int, x0=None):  # type: ignore[no-untyped-def]
    """The trajectory-average law as it was before the fix: the float64 closed form in ρ = 1 − μλ."""
    lam, q = np.linalg.eigh(target.precision.double().numpy())
    rho = 1.0 - step_size * lam
    m = target.mean.double().numpy()
    y0 = q.T @ (np.asarray(x0, float) - m)
    T = float(steps)
    mean_y = y0 * rho * (1 - rho**steps) / (T * (1 - rho))
    sum_sq = T - 2 * rho * (1 - rho**steps) / (1 - rho) + rho**2 * (1 - rho ** (2 * steps)) / (1 - rho**2)
    return m + q @ mean_y, (q * (2 * step_size * sum_sq / (T**2 * (1 - rho) ** 2))) @ q.T


def test_the_float64_closed_form_fails_the_trajectory_law_property() -> None:
    falsify(trajectory_law_property(_closed_form_trajectory_law))


def test_wrong_stationary_and_mean_laws_fail_their_properties() -> None:
    def sigma_not_s_mu(target: Gaussian, step_size: float) -> np.ndarray:
        return target.cov.double().numpy()  # the target's Σ in place of ULA's S_μ

    def mean_one_step_late(target: Gaussian, step_size: float, t: int, x0=None) -> np.ndarray:  # type: ignore[no-untyped-def]
        return theory.ula_mean(target, step_size, t + 1, x0)

    falsify(stationary_property(sigma_not_s_mu))
    falsify(mean_recursion_property(mean_one_step_late))
