"""Hypothesis strategies, settings profiles and rounding-error tolerances for the property tests.

Profiles (select with the environment variable ``HYPOTHESIS_PROFILE``; ``ci`` is loaded by default):

* ``ci``:  ``derandomize=True`` (the examples are a fixed function of each test and of the source
  tree, so a run is reproducible and is not a random trial: these tests are deterministic, not
  ``statistical``; Hypothesis also mixes literal constants found in the project's imported modules
  into generation, so running one file alone can try other examples than the default run does),
  ``max_examples=CI_EXAMPLES`` (40) per property, no example database, no deadline (the shared
  2-core machine makes per-example timings meaningless);
* ``dev``: random exploration with ``max_examples=DEV_EXAMPLES`` (1000) per property and the local
  example database, for ``HYPOTHESIS_PROFILE=dev pytest -m property``.

Tolerances are bounds on floating-point error, never fitted numbers. With u the unit roundoff of
the dtype (2⁻²⁴ for float32, 2⁻⁵³ for float64) and γ_n = n·u/(1 − n·u) (Higham 2002, §3.1):

* a matrix-vector product y = M v in any summation order has |ŷ − y| ≤ γ_n |M||v| componentwise
  (Higham Thm 3.5), independent of any condition number (``product_tolerance``);
* a triangular solve has backward error γ_n |L| (Higham Thm 8.5), so its relative forward error is
  at most γ_n·√n·κ₂(L); two solves with the Cholesky factor of Σ (κ₂(L)² = κ₂(Σ)) plus rounding of
  L, of x − m and of the product give ``solve_tolerance`` = 4·γ_{n+2}·√n·κ₂(Σ) relative to
  ‖Σ⁻¹‖‖x − m‖ (4: two solves, the stored factor, the final product);
* a matrix function f(P) formed from an eigendecomposition of a symmetric P inherits eigenvalue
  errors of u·‖P‖ (Weyl), i.e. a relative error u·κ(P) in the smallest eigenvalue, so closed forms of
  ULA's law are compared with ``spectral_tolerance`` = c·n·u·κ(P) relative to their norm.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

CI_EXAMPLES = 40
DEV_EXAMPLES = 1000

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=CI_EXAMPLES,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=DEV_EXAMPLES,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)

MAX_DIM = 8
MAX_LOG10_CONDITION = 6.0
MAX_STEPS = 10**8
DTYPES = (torch.float32, torch.float64)


def unit_roundoff(dtype: torch.dtype) -> float:
    """u = eps/2 of ``dtype`` (2⁻²⁴ for float32, 2⁻⁵³ for float64)."""
    return torch.finfo(dtype).eps / 2


def gamma(n: int, dtype: torch.dtype) -> float:
    """Higham's γ_n = n·u/(1 − n·u): the relative error bound of an n-term floating-point sum or product."""
    nu = n * unit_roundoff(dtype)
    return nu / (1.0 - nu)


def condition_number(matrix: np.ndarray) -> float:
    """2-norm condition number of a symmetric positive definite matrix (float64 eigenvalues)."""
    ev = np.linalg.eigvalsh(np.asarray(matrix, dtype=np.float64))
    return float(ev[-1] / ev[0])


def product_tolerance(mat: np.ndarray, vec: np.ndarray, dtype: torch.dtype, extra_terms: int = 2) -> np.ndarray:
    """Componentwise bound on the rounding error of ``vec @ mat`` computed in ``dtype``: γ_{d+k} (|vec| @ |mat|)."""
    d = mat.shape[0]
    return gamma(d + extra_terms, dtype) * (np.abs(vec) @ np.abs(mat))


def solve_tolerance(d: int, dtype: torch.dtype, kappa: float) -> float:
    """Relative forward-error bound of Σ⁻¹v computed by two Cholesky solves in ``dtype`` (module docstring)."""
    return 4.0 * gamma(d + 2, dtype) * math.sqrt(d) * kappa


def spectral_tolerance(d: int, kappa: float, dtype: torch.dtype = torch.float64) -> float:
    """Relative bound for a matrix function of a symmetric d×d matrix of condition ``kappa`` via eigh.

    Weyl: eigh's eigenvalues err by ≲ γ_d‖P‖, a relative κ·γ_d in the smallest one; the
    reconstruction Q f(Λ) Qᵀ and the comparison's own products add a few γ_d. Factor 8 covers the
    eigenvalue error of both sides plus the products (each ≤ γ_d κ).
    """
    return 8.0 * gamma(d, dtype) * max(kappa, 1.0)


# ------------------------------------------------------------------------- strategies


@st.composite
def orthogonal(draw: st.DrawFn, d: int) -> np.ndarray:
    """A d×d orthogonal matrix: Q of the QR factorisation of a matrix of drawn entries."""
    entries = draw(st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=d * d, max_size=d * d))
    a = np.asarray(entries, dtype=np.float64).reshape(d, d) + 1e-3 * np.eye(d)  # avoid an all-zero matrix
    q, r = np.linalg.qr(a)
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


@st.composite
def spd_matrices(
    draw: st.DrawFn, d: int, *, max_log10_condition: float = MAX_LOG10_CONDITION, scale: tuple[float, float] = (-2, 2)
) -> np.ndarray:
    """An SPD d×d matrix Q diag(λ) Qᵀ with condition number exactly 10^c, c ∈ [0, max_log10_condition].

    Eigenvalues: the extremes fix the condition number, the rest are log-uniform between them; an
    overall scale 10^s, s ∈ ``scale``, keeps absolute sizes varied too.
    """
    c = draw(st.floats(0.0, max_log10_condition))
    s = draw(st.floats(*scale))
    inner = draw(st.lists(st.floats(0.0, 1.0), min_size=max(d - 2, 0), max_size=max(d - 2, 0)))
    logs = [0.0, -c][:d] + [-c * f for f in inner]
    ev = 10.0 ** (s + np.asarray(logs))
    q = draw(orthogonal(d))
    m = (q * ev) @ q.T
    return (m + m.T) / 2


@st.composite
def gaussian_params(
    draw: st.DrawFn,
    *,
    max_dim: int = MAX_DIM,
    dtypes: tuple[torch.dtype, ...] = DTYPES,
    max_log10_condition: float = MAX_LOG10_CONDITION,
) -> tuple[np.ndarray, np.ndarray, torch.dtype]:
    """(mean, cov, dtype): d ∈ 1..max_dim, mean in [−10, 10]^d, SPD cov of condition ≤ 10^max_log10_condition."""
    d = draw(st.integers(1, max_dim))
    dtype = draw(st.sampled_from(dtypes))
    mean = np.asarray(draw(st.lists(st.floats(-10.0, 10.0), min_size=d, max_size=d)), dtype=np.float64)
    cov = draw(spd_matrices(d, max_log10_condition=max_log10_condition))
    return mean, cov, dtype


@st.composite
def points(draw: st.DrawFn, d: int, *, n: int | None = None, radius: float = 5.0) -> np.ndarray:
    """(n, d) standard-normal-scale coordinates z in [−radius, radius] (mapped to x = m + L z by the tests)."""
    n = draw(st.integers(1, 6)) if n is None else n
    z = draw(st.lists(st.floats(-radius, radius), min_size=n * d, max_size=n * d))
    return np.asarray(z, dtype=np.float64).reshape(n, d)


@st.composite
def step_fractions(draw: st.DrawFn) -> float:
    """μ as a fraction f of the stability bound 2/λ_max, f ∈ (0, 0.999]: log-uniform down to 1e-12, plus edge values."""
    return draw(
        st.one_of(
            st.sampled_from([1e-12, 1e-9, 1e-6, 0.5, 0.999]),
            st.floats(-12.0, math.log10(0.999)).map(lambda e: 10.0**e),
        )
    )


@st.composite
def step_counts(draw: st.DrawFn, max_steps: int = MAX_STEPS) -> int:
    """T ∈ {0, …, 10⁸}: small values and a log-uniform spread up to ``max_steps``."""
    return draw(
        st.one_of(
            st.integers(0, 20),
            st.sampled_from([max_steps - 1, max_steps]),
            st.floats(0.0, math.log10(max_steps)).map(lambda e: min(int(10.0**e), max_steps)),
        )
    )


def falsify(prop) -> AssertionError:  # type: ignore[no-untyped-def]
    """Run a property (a ``@given`` function) that must fail and return its AssertionError.

    Used to show a property catches a broken implementation. Shrinking is skipped (the verdict, not
    the minimal example, is the point, and shrinking a mutant's failure costs tens of seconds) and a
    single failure is reported, so the caller sees one AssertionError; passing raises ``Failed``.
    """
    import pytest
    from hypothesis import Phase

    quick = settings(
        settings.default, phases=(Phase.explicit, Phase.reuse, Phase.generate), report_multiple_bugs=False
    )(prop)
    with pytest.raises(AssertionError) as info:
        quick()
    return info.value
