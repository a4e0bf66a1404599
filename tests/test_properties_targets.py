"""Properties of the targets' scores (genbench.targets), with tolerances from rounding-error bounds.

Hypothesis draws Gaussians N(m, Σ) with d = 1..8, float32 and float64, condition numbers κ(Σ) up to
1e6, and points x = m + L z (L = chol Σ, z in [−5, 5]^d). The score must be

* the autograd gradient of ``log_prob`` (the two meet only through rounding: the score is one product
  −(x − m)ᵀΣ⁻¹, the gradient goes through two triangular solves, so the bound carries κ(Σ));
* zero at the mean, exactly; affine: score(x) − score(y) = −Σ⁻¹(x − y) (against an independent LU solve);
* the same batched as point by point; equal to central finite differences of ``log_prob`` (exact in
  exact arithmetic for a quadratic log-density, so only rounding remains);
* for mixtures and ``from_log_prob`` targets, the autograd gradient of their ``log_prob``.

Every invalid input (asymmetric or non-SPD covariance, NaN/inf, wrong shape, wrong dtype) raises
ParameterError naming the parameter, as the class docstrings say. The bounds themselves are in
tests/property_strategies.py; at κ = 1e6 in float32 they are honest and loose (float32 keeps no
digit of Σ⁻¹v there), which is why the mutation tests below find their counterexamples elsewhere.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from genbench.errors import ParameterError
from genbench.targets import Gaussian, GaussianMixture, from_log_prob
from property_strategies import (
    condition_number,
    falsify,
    gamma,
    gaussian_params,
    points,
    product_tolerance,
    solve_tolerance,
    spd_matrices,
    unit_roundoff,
)

pytestmark = pytest.mark.property

F64 = torch.float64


def _build(params, make=Gaussian):  # type: ignore[no-untyped-def]
    mean, cov, dtype = params
    target = make(mean, cov, dtype=dtype)
    # The stored (dtype-rounded) parameters, in float64: every reference is computed from them.
    m = target.mean.double().numpy()
    c = target.cov.double().numpy()
    return target, m, c, dtype


def _points(target: Gaussian, z: np.ndarray) -> torch.Tensor:
    chol = np.linalg.cholesky(target.cov.double().numpy())
    x = target.mean.double().numpy() + z @ chol.T
    return torch.as_tensor(x, dtype=target.dtype)


def _autograd_score(log_prob, x: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
    xg = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(log_prob(xg).sum(), xg)
    return g


def _solve_bound(target, c: np.ndarray, v: np.ndarray, dtype: torch.dtype) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Per-point norm bound of |Σ⁻¹v computed two ways|: product error + two-solve error (module docstring)."""
    d = c.shape[0]
    p = np.linalg.inv(c)
    norm_p = np.linalg.norm(p, 2)
    vnorm = np.linalg.norm(v, axis=-1)
    prod = np.linalg.norm(product_tolerance(p, v, dtype), axis=-1)
    return prod + solve_tolerance(d, dtype, condition_number(c)) * norm_p * vnorm


# ------------------------------------------------------------------------- Gaussian score properties


def score_is_autograd_property(make=Gaussian):  # type: ignore[no-untyped-def]
    """score(x) = ∇ log_prob(x) (autograd), and score(mean) = 0 exactly."""

    @given(gaussian_params(), st.data())
    def prop(params, data) -> None:  # type: ignore[no-untyped-def]
        target, m, c, dtype = _build(params, make)
        z = data.draw(points(target.dim))
        x = _points(target, z)
        s = target.score(x)
        g = _autograd_score(target.log_prob, x)
        assert s.dtype == dtype and s.shape == x.shape
        v = x.double().numpy() - m
        err = np.linalg.norm((s - g).double().numpy(), axis=-1)
        bound = 2.0 * _solve_bound(target, c, v, dtype)  # both sides err: the product and the two solves
        assert np.all(err <= bound), (err, bound)
        assert bool((target.score(target.mean) == 0).all())

    return prop


def score_is_affine_property(make=Gaussian):  # type: ignore[no-untyped-def]
    """score(x) − score(y) = −Σ⁻¹(x − y), Σ⁻¹ from an independent float64 LU solve."""

    @given(gaussian_params(), st.data())
    def prop(params, data) -> None:  # type: ignore[no-untyped-def]
        target, m, c, dtype = _build(params, make)
        d = target.dim
        x = _points(target, data.draw(points(d, n=3)))
        y = _points(target, data.draw(points(d, n=3)))
        lhs = (target.score(x) - target.score(y)).double().numpy()
        xd, yd = x.double().numpy(), y.double().numpy()
        rhs = -np.linalg.solve(c, (xd - yd).T).T
        p = np.linalg.inv(c)
        # Each score rounds to γ_{d+2}|Σ⁻¹||x − m| (componentwise) plus the dtype rounding of the stored
        # precision (u|Σ⁻¹|); the difference adds u|lhs|; the LU reference errs by the solve bound.
        mag = np.abs(xd - m) + np.abs(yd - m)
        bound = (gamma(d + 3, dtype) + unit_roundoff(dtype)) * (mag @ np.abs(p)) + unit_roundoff(dtype) * np.abs(lhs)
        bound_norm = np.linalg.norm(bound, axis=-1) + solve_tolerance(d, F64, condition_number(c)) * np.linalg.norm(
            p, 2
        ) * np.linalg.norm(xd - yd, axis=-1)
        err = np.linalg.norm(lhs - rhs, axis=-1)
        assert np.all(err <= bound_norm), (err, bound_norm)

    return prop


def batched_equals_looped_property(make=Gaussian):  # type: ignore[no-untyped-def]
    """score and log_prob of a (2, 3, d) batch equal those of each point alone (shape (d,))."""

    @given(gaussian_params(), st.data())
    def prop(params, data) -> None:  # type: ignore[no-untyped-def]
        target, m, c, dtype = _build(params, make)
        d = target.dim
        z = data.draw(points(d, n=6))
        x = _points(target, z).reshape(2, 3, d)
        s = target.score(x)
        lp = target.log_prob(x)
        assert s.shape == (2, 3, d) and lp.shape == (2, 3)
        p = target.precision.double().numpy()
        kappa = condition_number(c)
        for i in range(2):
            for j in range(3):
                xi = x[i, j]
                si = target.score(xi)
                v = xi.double().numpy() - m
                # Two evaluations of one product: each within γ_{d+2}|P||v| of the exact value.
                tol = 2.0 * product_tolerance(p, v, dtype)
                assert np.all(np.abs((s[i, j] - si).double().numpy()) <= tol)
                lpi = float(target.log_prob(xi))
                maha = float(v @ np.linalg.solve(c, v))
                lp_tol = 2.0 * (solve_tolerance(d, dtype, math.sqrt(kappa)) * maha + gamma(d + 2, dtype) * abs(lpi))
                assert abs(float(lp[i, j]) - lpi) <= lp_tol

    return prop


def _log_prob_error(c: np.ndarray, v: np.ndarray, log_norm: float) -> float:
    """Bound on the float64 rounding of log_prob = log_norm − ½‖L⁻¹v‖² (one triangular solve, κ₂(L) = √κ)."""
    d = c.shape[0]
    maha = float(v @ np.linalg.solve(c, v))
    return solve_tolerance(d, F64, math.sqrt(condition_number(c))) * maha + gamma(d + 2, F64) * abs(log_norm)


def finite_difference_property(make=Gaussian):  # type: ignore[no-untyped-def]
    """Central differences of log_prob along a whitened direction w = L e equal score·w (float64)."""

    @given(gaussian_params(dtypes=(F64,)), st.data())
    def prop(params, data) -> None:  # type: ignore[no-untyped-def]
        target, m, c, _ = _build(params, make)
        d = target.dim
        x = _points(target, data.draw(points(d, n=1)))[0]
        e = np.asarray(data.draw(st.lists(st.floats(-1, 1), min_size=d, max_size=d)))
        assume(np.linalg.norm(e) > 0.1)
        e = e / np.linalg.norm(e)
        w = torch.as_tensor(np.linalg.cholesky(c) @ e)
        h = 0.1  # whitened units: log_prob is quadratic, so the difference quotient has no truncation error
        xp, xm = x + h * w, x - h * w
        fd = (float(target.log_prob(xp)) - float(target.log_prob(xm))) / (2 * h)
        exact = float(target.score(x) @ w)
        log_norm = float(target.log_prob(target.mean))
        err_f = sum(_log_prob_error(c, pt.numpy() - m, log_norm) for pt in (xp, xm))
        # Rounding x ± hw moves each point by ≤ u(|x| + h|w|), changing log_prob by ≤ |score|·that.
        u = unit_roundoff(F64)
        shift = sum(float(np.abs(target.score(pt).numpy()) @ (u * (np.abs(x.numpy()) + h * np.abs(w.numpy()))))
                    for pt in (xp, xm))
        bound = (err_f + shift) / (2 * h) + float(np.abs(target.score(x).numpy()) @ product_tolerance(
            np.eye(d), w.numpy(), F64))
        bound += float(np.linalg.norm(product_tolerance(target.precision.numpy(), x.numpy() - m, F64))) * np.linalg.norm(
            w.numpy())
        assert abs(fd - exact) <= bound, (fd, exact, bound)

    return prop


def test_score_is_the_autograd_gradient_of_log_prob_and_zero_at_the_mean() -> None:
    score_is_autograd_property()()


def test_score_differences_are_minus_precision_times_differences() -> None:
    score_is_affine_property()()


def test_batched_score_and_log_prob_equal_looped() -> None:
    batched_equals_looped_property()()


def test_score_equals_central_finite_differences() -> None:
    finite_difference_property()()


# ------------------------------------------------------------------------- mixtures and from_log_prob


@st.composite
def mixture_params(draw: st.DrawFn, dtypes=(torch.float32, F64)):  # type: ignore[no-untyped-def]
    """k = 1..3 components in d = 1..4, condition ≤ 1e4, weights summing to 1 to rounding."""
    d = draw(st.integers(1, 4))
    k = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from(dtypes))
    raw = np.asarray(draw(st.lists(st.floats(0.05, 1.0), min_size=k, max_size=k)))
    weights = raw / raw.sum()
    means = np.asarray(draw(st.lists(st.floats(-5.0, 5.0), min_size=k * d, max_size=k * d))).reshape(k, d)
    covs = np.stack([draw(spd_matrices(d, max_log10_condition=4.0, scale=(-1, 1))) for _ in range(k)])
    return weights, means, covs, dtype


def mixture_property(make=GaussianMixture):  # type: ignore[no-untyped-def]
    """GaussianMixture.score = ∇ log_prob (autograd of the log-sum-exp density)."""

    @given(mixture_params(), st.lists(st.floats(-8.0, 8.0), min_size=4, max_size=4))
    def prop(params, xs: list[float]) -> None:  # type: ignore[no-untyped-def]
        weights, means, covs, dtype = params
        mix = make(weights, means, covs, dtype=dtype)
        d = mix.dim
        x = torch.as_tensor(np.asarray(xs[:d]), dtype=dtype)[None]
        s = mix.score(x)
        g = _autograd_score(mix.log_prob, x)
        xd = x.double().numpy()
        comp_lp = np.array([float(comp.log_prob(x)) for comp in mix.components]) + np.log(weights)
        lse = np.logaddexp.reduce(comp_lp)
        r = np.exp(comp_lp - lse)
        bound = 0.0
        for comp, rk, lk in zip(mix.components, r, comp_lp):
            c = comp.cov.double().numpy()
            v = xd - comp.mean.double().numpy()
            sk = np.linalg.norm(np.linalg.solve(c, v[0]))
            # Component k: its score error (product vs two solves), plus its responsibility's relative
            # error exp(δ) − 1 with δ the rounding of ℓ_k − lse (≤ 4u(|ℓ_k| + |lse|) + log_prob's own error).
            lp_err = solve_tolerance(d, dtype, math.sqrt(condition_number(c))) * float(v[0] @ np.linalg.solve(c, v[0]))
            resp = 4.0 * unit_roundoff(dtype) * (abs(lk) + abs(lse)) + 2.0 * lp_err
            bound += rk * (2.0 * float(_solve_bound(comp, c, v, dtype)[0]) + math.expm1(resp) * sk * 2.0)
        err = float(np.linalg.norm((s - g).double().numpy()))
        assert err <= bound, (err, bound)

    return prop


def test_mixture_score_is_the_autograd_gradient_of_its_log_prob() -> None:
    mixture_property()()


@given(gaussian_params(), st.data())
def test_from_log_prob_score_equals_the_analytic_score(params, data) -> None:  # type: ignore[no-untyped-def]
    target, m, c, dtype = _build(params)
    x = _points(target, data.draw(points(target.dim)))
    wrapped = from_log_prob(target.log_prob, target.dim)
    err = np.linalg.norm((wrapped.score(x) - target.score(x)).double().numpy(), axis=-1)
    assert np.all(err <= 2.0 * _solve_bound(target, c, x.double().numpy() - m, dtype))


@given(
    st.sampled_from([torch.float32, F64]),
    st.lists(st.floats(0.1, 3.0), min_size=1, max_size=8),
    st.data(),
)
def test_from_log_prob_score_of_a_non_gaussian_density_is_its_gradient(dtype, a: list[float], data) -> None:  # type: ignore[no-untyped-def]
    d = len(a)
    av = torch.as_tensor(a, dtype=dtype)

    def log_prob(x: torch.Tensor) -> torch.Tensor:  # ∝ Π sech(x_i)^{a_i}: log-concave, heavier tails than normal
        return -(av * torch.log(torch.cosh(x))).sum(-1)

    x = torch.as_tensor(np.asarray(data.draw(st.lists(st.floats(-8, 8), min_size=d, max_size=d))), dtype=dtype)
    s = from_log_prob(log_prob, d).score(x[None])[0]
    exact = -av.double() * torch.tanh(x.double())
    # d/dx log cosh x = sinh/cosh, a few correctly rounded operations: 8u relative to a_i.
    assert torch.all((s.double() - exact).abs() <= 8 * unit_roundoff(dtype) * av.double())


# ------------------------------------------------------------------------- invalid input


@st.composite
def invalid_gaussian_inputs(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    """(kind, kwargs, parameter named in the error) for one kind of invalid Gaussian input."""
    mean, cov, dtype = draw(gaussian_params(max_dim=6))
    d = mean.shape[0]
    kind = draw(st.sampled_from(["asymmetric", "not_spd", "singular", "nonfinite", "shape", "dtype"]))
    if kind == "asymmetric":
        assume(d >= 2)
        i, j = draw(st.sampled_from([(i, j) for i in range(d) for j in range(d) if i != j]))
        bad = cov.copy()
        # Beyond float32's symmetry tolerance (1e-6 of the largest entry): 1e-4 to 1 of it.
        bad[i, j] += draw(st.floats(1e-4, 1.0)) * np.abs(cov).max()
        return kind, {"mean": mean, "cov": bad, "dtype": dtype}, "cov"
    if kind == "not_spd":
        ev, q = np.linalg.eigh(cov)
        ev[0] = -draw(st.floats(1e-3, 1.0)) * ev[-1]  # one clearly negative eigenvalue
        bad = (q * ev) @ q.T
        return kind, {"mean": mean, "cov": (bad + bad.T) / 2, "dtype": dtype}, "cov"
    if kind == "singular":
        assume(d >= 2)
        v = np.asarray(draw(st.lists(st.integers(-3, 3), min_size=d, max_size=d)), dtype=np.float64)
        assume(np.any(v != 0))
        return kind, {"mean": mean, "cov": np.outer(v, v), "dtype": dtype}, "cov"  # rank 1, exact zero pivots
    if kind == "nonfinite":
        value = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        which = draw(st.sampled_from(["mean", "cov"]))
        bad_mean, bad_cov = mean.copy(), cov.copy()
        if which == "mean":
            bad_mean[draw(st.integers(0, d - 1))] = value
        else:
            bad_cov[draw(st.integers(0, d - 1)), draw(st.integers(0, d - 1))] = value
        return kind, {"mean": bad_mean, "cov": bad_cov, "dtype": dtype}, which
    if kind == "shape":
        case = draw(st.sampled_from(["mean_2d", "mean_empty", "cov_rect", "cov_other_d", "cov_1d"]))
        if case == "mean_2d":
            return kind, {"mean": mean[None, :], "cov": cov, "dtype": dtype}, "mean"
        if case == "mean_empty":
            return kind, {"mean": np.zeros(0), "cov": cov, "dtype": dtype}, "mean"
        if case == "cov_rect":
            return kind, {"mean": mean, "cov": np.hstack([cov, np.zeros((d, 1))]), "dtype": dtype}, "cov"
        if case == "cov_other_d":
            return kind, {"mean": mean, "cov": np.eye(d + 1), "dtype": dtype}, "cov"
        return kind, {"mean": mean, "cov": np.diag(cov), "dtype": dtype}, "cov"
    bad_dtype = draw(st.sampled_from([torch.float16, torch.bfloat16, torch.int64, torch.complex128, "int32", "float"]))
    return kind, {"mean": mean, "cov": cov, "dtype": bad_dtype}, "dtype"


def invalid_input_property(make=Gaussian):  # type: ignore[no-untyped-def]
    """Every invalid Gaussian input raises ParameterError naming the parameter."""

    @given(invalid_gaussian_inputs())
    def prop(case) -> None:  # type: ignore[no-untyped-def]
        kind, kwargs, name = case
        try:
            make(**kwargs)
        except ParameterError as exc:
            assert name in str(exc), (kind, name, str(exc))
        else:
            raise AssertionError(f"{kind} input was accepted: {kwargs}")

    return prop


def test_every_invalid_gaussian_input_raises_parameter_error_naming_it() -> None:
    invalid_input_property()()


@given(gaussian_params(max_dim=4), st.sampled_from(["int", "complex", "bool", "numpy", "last_dim", "scalar"]))
def test_invalid_points_raise_parameter_error_naming_x(params, kind: str) -> None:  # type: ignore[no-untyped-def]
    target, _, _, dtype = _build(params)
    d = target.dim
    bad = {
        "int": torch.zeros(3, d, dtype=torch.int64),
        "complex": torch.zeros(3, d, dtype=torch.complex128),
        "bool": torch.zeros(3, d, dtype=torch.bool),
        "numpy": np.zeros((3, d)),
        "last_dim": torch.zeros(3, d + 1, dtype=dtype),
        "scalar": torch.tensor(0.0, dtype=dtype),
    }[kind]
    for fn in (target.score, target.log_prob, from_log_prob(target.log_prob, d).score):
        with pytest.raises(ParameterError, match="x must"):
            fn(bad)


@given(mixture_params(dtypes=(F64,)), st.sampled_from(["negative", "sum", "means_shape", "covs_shape", "cov_nan"]))
def test_invalid_mixture_inputs_raise_parameter_error(params, kind: str) -> None:  # type: ignore[no-untyped-def]
    weights, means, covs, dtype = params
    k, d = means.shape
    w, mu, c = weights.copy(), means.copy(), covs.copy()
    if kind == "negative":
        w[0] = -w[0]
        name = "weights"
    elif kind == "sum":
        w = w * 1.01
        name = "weights"
    elif kind == "means_shape":
        mu = mu[:, None, :]
        name = "means"
    elif kind == "covs_shape":
        c = c[:, :, :1] if d > 1 else c[:, 0, :]
        name = "covs"
    else:
        c[0, 0, 0] = math.nan
        name = "covs"
    with pytest.raises(ParameterError, match=name):
        GaussianMixture(w, mu, c, dtype=dtype)


def test_from_log_prob_refuses_bad_arguments_and_a_wrong_output_shape() -> None:
    with pytest.raises(ParameterError, match="log_prob"):
        from_log_prob("not callable", 2)  # type: ignore[arg-type]
    for dim in (0, -1, 2.0, True):
        with pytest.raises(ParameterError, match="dim"):
            from_log_prob(lambda x: x.sum(-1), dim)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="log_prob must return"):
        from_log_prob(lambda x: x, 2).score(torch.zeros(3, 2))


# ------------------------------------------------------------------------- mutation evidence


class _ScoreOffByOnePercent(Gaussian):
    """A Gaussian whose score is 1.01 × the right one (e.g. a precision scaled by a stray factor)."""

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return 1.01 * super().score(x)


class _ResponsibilitiesWithoutWeights(GaussianMixture):
    """A mixture whose score forgets the log-weights in the responsibilities (a plausible slip)."""

    def score(self, x: torch.Tensor) -> torch.Tensor:
        lp = torch.stack([g.log_prob(x) for g in self.components], dim=-1)
        resp = torch.softmax(lp, dim=-1)
        scores = torch.stack([g.score(x) for g in self.components], dim=-2)
        return (resp.unsqueeze(-1) * scores).sum(-2)


def _lax_gaussian(mean, cov, *, dtype=F64):  # type: ignore[no-untyped-def]
    """A constructor that 'fixes' bad covariances instead of refusing them (symmetrises, clips eigenvalues)."""
    c = np.nan_to_num(np.asarray(cov, dtype=np.float64))
    if c.ndim == 2 and c.shape[0] == c.shape[1]:
        c = (c + c.T) / 2
        ev, q = np.linalg.eigh(c)
        c = (q * np.clip(ev, 1e-6, None)) @ q.T
    return Gaussian(np.nan_to_num(np.asarray(mean, dtype=np.float64)), c, dtype=dtype)


def test_score_off_by_one_percent_fails_the_score_properties() -> None:
    for prop in (score_is_autograd_property, score_is_affine_property, finite_difference_property):
        falsify(prop(_ScoreOffByOnePercent))


def test_mixture_without_log_weights_fails_the_mixture_property() -> None:
    falsify(mixture_property(_ResponsibilitiesWithoutWeights))


def test_constructor_that_repairs_bad_input_fails_the_invalid_input_property() -> None:
    falsify(invalid_input_property(_lax_gaussian))
