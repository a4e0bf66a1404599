"""The targets a sampler under test is given: Gaussian mixtures with exact answers, in numpy.

Every target is a finite Gaussian mixture (a Gaussian is the one-component case), so each has
exact draws, an exact mean and covariance, a closed-form ``log_prob`` and ``score``, and exact
one-dimensional marginals along any direction (a 1-D Gaussian mixture). An adapter sees a
:class:`Target`; its documented attributes are

==================  ========================================================================
``name``            short identifier used in the report (``"gauss2d"``)
``dim``             d, an int
``mean``            (d,) float64 numpy array: the target's exact mean
``cov``             (d, d) float64 numpy array: the target's exact covariance
``precision``       (d, d) float64 inverse of ``cov`` (Gaussian targets; None for mixtures)
``weights``         (k,) float64 mixture weights (``[1.0]`` for a Gaussian)
``means``           (k, d) float64 component means
``covs``            (k, d, d) float64 component covariances
``is_gaussian``     True when k == 1
``log_prob(x)``     (N, d) float64 array -> (N,) normalised log-density
``score(x)``        (N, d) float64 array -> (N, d) gradient of ``log_prob``
``sample(n, rng)``  n exact draws (n, d) from a ``numpy.random.Generator``
==================  ========================================================================

The components are exposed so an adapter can rebuild the log-density in its own framework (JAX,
PyTorch, Stan) instead of calling back into numpy: see ``genbench.conformance.adapters``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
import scipy.special
import scipy.stats

from genbench.errors import ParameterError

__all__ = [
    "Target",
    "gaussian",
    "mixture",
    "catalogue",
    "DEFAULT_TARGETS",
    "ALL_TARGETS",
    "resolve_targets",
]


def _spd(name: str, value: Any, d: int) -> tuple[np.ndarray, np.ndarray]:
    """(symmetrised float64 matrix, lower Cholesky factor); raise ParameterError unless SPD (d, d)."""
    try:
        c = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be a numeric ({d}, {d}) matrix, got {value!r}") from exc
    if c.shape != (d, d):
        raise ParameterError(f"{name} must have shape ({d}, {d}), got {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ParameterError(f"{name} must be finite")
    scale = max(1.0, float(np.abs(c).max()))
    if not np.allclose(c, c.T, rtol=0.0, atol=1e-10 * scale):
        raise ParameterError(f"{name} must be symmetric")
    c = (c + c.T) / 2
    try:
        chol = scipy.linalg.cholesky(c, lower=True)
    except np.linalg.LinAlgError as exc:
        raise ParameterError(f"{name} must be positive definite (Cholesky failed)") from exc
    return c, chol


@dataclass(frozen=True, eq=False)
class Target:
    """A Gaussian mixture target in numpy float64 (see the module docstring for the adapter contract)."""

    name: str
    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray
    description: str = ""
    # Derived in __post_init__ (not constructor arguments).
    dim: int = field(init=False)
    mean: np.ndarray = field(init=False)
    cov: np.ndarray = field(init=False)
    precision: np.ndarray | None = field(init=False)
    _chols: np.ndarray = field(init=False, repr=False)
    _precs: np.ndarray = field(init=False, repr=False)
    _log_norms: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.float64).reshape(-1)
        mu = np.asarray(self.means, dtype=np.float64)
        k = w.size
        if k < 1 or not np.all(np.isfinite(w)) or np.any(w <= 0) or not math.isclose(float(w.sum()), 1.0, abs_tol=1e-9):
            raise ParameterError(f"weights must be positive and sum to 1, got {w.tolist()}")
        if mu.ndim != 2 or mu.shape[0] != k or mu.shape[1] < 1 or not np.all(np.isfinite(mu)):
            raise ParameterError(f"means must be a finite ({k}, d) array, got shape {mu.shape}")
        d = mu.shape[1]
        raw = np.asarray(self.covs, dtype=np.float64)
        if raw.shape != (k, d, d):
            raise ParameterError(f"covs must have shape ({k}, {d}, {d}), got {raw.shape}")
        covs, chols = zip(*(_spd(f"covs[{i}]" if k > 1 else "cov", raw[i], d) for i in range(k)))
        covs_a, chols_a = np.stack(covs), np.stack(chols)
        precs = np.stack([scipy.linalg.cho_solve((ch, True), np.eye(d)) for ch in chols_a])
        precs = (precs + np.swapaxes(precs, 1, 2)) / 2
        log_norms = -0.5 * d * math.log(2 * math.pi) - np.log(np.diagonal(chols_a, axis1=1, axis2=2)).sum(axis=1)
        mean = w @ mu
        centred = mu - mean
        cov = np.einsum("k,kij->ij", w, covs_a) + np.einsum("k,ki,kj->ij", w, centred, centred)
        for name, value in (
            ("weights", w / w.sum()),
            ("means", mu),
            ("covs", covs_a),
            ("dim", d),
            ("mean", mean),
            ("cov", (cov + cov.T) / 2),
            ("precision", precs[0] if k == 1 else None),
            ("_chols", chols_a),
            ("_precs", precs),
            ("_log_norms", log_norms),
        ):
            if isinstance(value, np.ndarray):
                value = value.copy()
                value.setflags(write=False)
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        kind = "Gaussian" if self.is_gaussian else f"{self.weights.size}-component Gaussian mixture"
        return f"Target({self.name!r}: {kind} in {self.dim} dimensions)"

    @property
    def is_gaussian(self) -> bool:
        """True for a single Gaussian (exact ULA law and Gaussian moment tests apply)."""
        return self.weights.size == 1

    # ---------------------------------------------------------------------------- density

    def _points(self, x: Any) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ParameterError(f"x must have shape (N, {self.dim}), got {arr.shape}")
        return arr

    def _component_terms(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log w_k + log N_k(x), shape (N, k); Σ_k⁻¹(x − m_k), shape (N, k, d))."""
        diff = x[:, None, :] - self.means[None, :, :]
        white = np.einsum("kij,nkj->nki", self._precs, diff)
        maha = np.einsum("nki,nki->nk", diff, white)
        return np.log(self.weights) + self._log_norms - 0.5 * maha, white

    def log_prob(self, x: Any) -> np.ndarray:
        """Normalised log-density at the rows of ``x`` (N, d), shape (N,)."""
        terms, _ = self._component_terms(self._points(x))
        return scipy.special.logsumexp(terms, axis=1)

    def score(self, x: Any) -> np.ndarray:
        """Gradient of ``log_prob`` at the rows of ``x`` (N, d), shape (N, d)."""
        terms, white = self._component_terms(self._points(x))
        resp = scipy.special.softmax(terms, axis=1)
        return -np.einsum("nk,nki->ni", resp, white)

    # ---------------------------------------------------------------------------- exact answers

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` exact draws, shape (n, d), by Cholesky from standard normals."""
        if not isinstance(rng, np.random.Generator):
            raise ParameterError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        z = rng.standard_normal((n, self.dim))
        if self.is_gaussian:
            return self.means[0] + z @ self._chols[0].T
        idx = rng.choice(self.weights.size, size=n, p=self.weights)
        return self.means[idx] + np.einsum("nij,nj->ni", self._chols[idx], z)

    def marginal_cdf(self, direction: Any, t: Any) -> np.ndarray:
        """Exact CDF of uᵀx at ``t`` for x ~ target and a direction ``u`` (d,): a 1-D Gaussian mixture."""
        u = np.asarray(direction, dtype=np.float64).reshape(self.dim)
        loc = self.means @ u
        scale = np.sqrt(np.einsum("i,kij,j->k", u, self.covs, u))
        tt = np.asarray(t, dtype=np.float64)[..., None]
        return (self.weights * scipy.stats.norm.cdf((tt - loc) / scale)).sum(axis=-1)

    def spectrum(self) -> tuple[float, float]:
        """(λ_min, λ_max) of the precision Σ⁻¹ of ``cov`` (of each component's, for a mixture: the extremes)."""
        lam = np.concatenate([np.linalg.eigvalsh(p) for p in self._precs] + [1.0 / np.linalg.eigvalsh(self.cov)])
        return float(lam.min()), float(lam.max())

    def to_torch(self) -> Any:
        """The same target as a ``genbench.targets.Gaussian`` or ``GaussianMixture`` (float64, CPU)."""
        from genbench.targets import Gaussian, GaussianMixture

        if self.is_gaussian:
            return Gaussian(self.means[0].copy(), self.covs[0].copy())
        return GaussianMixture(self.weights.copy(), self.means.copy(), self.covs.copy())


def gaussian(mean: Any, cov: Any, *, name: str | None = None, description: str = "") -> Target:
    """A Gaussian target N(mean, cov) (users pass these to ``check_sampler(targets=[...])``)."""
    try:
        m = np.array(mean, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"mean must be a numeric vector, got {mean!r}") from exc
    if m.size < 1:
        raise ParameterError("mean must have at least one entry")
    c, _ = _spd("cov", cov, m.size)
    return Target(name or f"gaussian{m.size}d", np.ones(1), m[None, :], c[None, :, :], description)


def mixture(weights: Any, means: Any, covs: Any, *, name: str = "mixture", description: str = "") -> Target:
    """A Gaussian-mixture target (exact draws and marginals; no exact ULA law)."""
    return Target(name, np.asarray(weights, dtype=np.float64), np.asarray(means, dtype=np.float64),
                  np.asarray(covs, dtype=np.float64), description)


def _rotated(d: int, condition: float, seed: int) -> np.ndarray:
    """Q diag(s) Qᵀ with Q a fixed-seed Haar rotation and s log-spaced from 1 down to 1/condition."""
    q = scipy.stats.special_ortho_group.rvs(d, random_state=np.random.default_rng(seed))
    s = np.logspace(0.0, -math.log10(condition), d)
    c = (q * s) @ q.T
    return (c + c.T) / 2


def _build_catalogue() -> dict[str, Target]:
    """The fixed catalogue (deterministic: the 50-D rotation comes from a fixed seed)."""
    var10 = np.logspace(0.0, -2.0, 10)
    sd10 = np.sqrt(var10)
    cov50 = _rotated(50, 1e3, seed=0x67656E)
    # Mean at Mahalanobis distance 3 from the origin, the fixed start of the convergence checks.
    u50 = np.random.default_rng(0x6D65616E).standard_normal(50)
    mean50 = scipy.linalg.cholesky(cov50, lower=True) @ (3.0 * u50 / np.linalg.norm(u50))
    entries = [
        gaussian([1.5], [[0.5]], name="gauss1d", description="1-D N(1.5, 0.5)"),
        gaussian([1.0, 1.0], [[1.0, 0.9], [0.9, 1.0]], name="gauss2d",
                 description="the assignment's N((1, 1), [[1, 0.9], [0.9, 1]]) (condition number 19)"),
        gaussian(sd10 * (-1.0) ** np.arange(10), np.diag(var10), name="diag10",
                 description="10-D diagonal, variances log-spaced 1 .. 0.01 (condition number 100)"),
        gaussian(mean50, cov50, name="dense50",
                 description="50-D dense: a fixed random rotation of variances log-spaced 1 .. 1e-3 (condition number 1000)"),
        mixture([0.3, 0.7], [[-1.5, 0.0], [1.5, 0.5]], [[[0.5, 0.2], [0.2, 0.5]], [[1.0, -0.3], [-0.3, 0.6]]],
                name="mixture2d",
                description="2-D two-component mixture, weights (0.3, 0.7), overlapping modes (not Gaussian)"),
    ]
    return {t.name: t for t in entries}


_CATALOGUE: dict[str, Target] | None = None

# The default battery's targets (the minute-scale CI run) and every catalogue target. dense50 is
# opt-in because its convergence checks need ~10^4 steps per chain (condition number 1000).
DEFAULT_TARGETS = ("gauss1d", "gauss2d", "diag10", "mixture2d")
ALL_TARGETS = ("gauss1d", "gauss2d", "diag10", "dense50", "mixture2d")


def catalogue() -> dict[str, Target]:
    """Every catalogue target by name (built once)."""
    global _CATALOGUE
    if _CATALOGUE is None:
        _CATALOGUE = _build_catalogue()
    return dict(_CATALOGUE)


def _one(spec: Any) -> Target:
    if isinstance(spec, Target):
        return spec
    if isinstance(spec, str):
        cat = catalogue()
        if spec not in cat:
            raise ParameterError(f"targets: unknown target {spec!r}; catalogue targets are {', '.join(ALL_TARGETS)}")
        return cat[spec]
    from genbench.targets import Gaussian as TorchGaussian

    if isinstance(spec, TorchGaussian):
        m = spec.mean.detach().cpu().double().numpy()
        return gaussian(m, spec.cov.detach().cpu().double().numpy(), name=f"user_gaussian{m.size}d")
    raise ParameterError(
        "targets entries must be catalogue names, genbench.conformance.gaussian(...) targets or "
        f"genbench.targets.Gaussian objects, got {type(spec).__name__}"
    )


def resolve_targets(targets: str | Target | Iterable[Any]) -> list[Target]:
    """Targets from ``"default"``, ``"all"``, a name, a comma-separated list of names, or a sequence of targets."""
    if isinstance(targets, str):
        if targets == "default":
            names: Sequence[Any] = DEFAULT_TARGETS
        elif targets == "all":
            names = ALL_TARGETS
        else:
            names = [s.strip() for s in targets.split(",") if s.strip()]
        out = [_one(n) for n in names]
    elif isinstance(targets, Target):
        out = [targets]
    else:
        try:
            out = [_one(t) for t in targets]
        except TypeError:
            raise ParameterError(f"targets must be 'default', 'all', names or targets, got {targets!r}") from None
    if not out:
        raise ParameterError("targets must name at least one target")
    seen: set[str] = set()
    for i, t in enumerate(out):
        if t.name in seen:  # distinct names keep report rows unambiguous
            out[i] = Target(f"{t.name}_{i}", t.weights, t.means, t.covs, t.description)
        seen.add(out[i].name)
    return out
