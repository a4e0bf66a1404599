"""Target distributions: batched ``log_prob`` and ``score`` (gradient of log-density) on (..., d) tensors."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from genbench._runtime import resolve_device, resolve_dtype
from genbench._validate import positive_float, positive_int
from genbench.errors import ParameterError

ArrayLike = torch.Tensor | Sequence[float] | Sequence[Sequence[float]]


@runtime_checkable
class Target(Protocol):
    """A differentiable density on R^d: ``log_prob`` is (...,) and ``score`` is (..., d)."""

    dim: int

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-density (up to nothing: normalised where the target knows its constant)."""
        ...

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Gradient of ``log_prob`` with respect to ``x``."""
        ...


def _check_points(x: torch.Tensor, dim: int, name: str = "x") -> None:
    # Finiteness is not checked here: it would cost a device sync in every sampler step, and the
    # samplers check their states for divergence themselves (NaN in gives NaN out).
    if not isinstance(x, torch.Tensor):
        raise ParameterError(f"{name} must be a torch.Tensor of shape (..., {dim}), got {type(x).__name__}")
    if not x.is_floating_point():
        raise ParameterError(f"{name} must be a real floating-point tensor (float32 or float64), got dtype {x.dtype}")
    if x.ndim < 1 or x.shape[-1] != dim:
        raise ParameterError(f"{name} must have shape (..., {dim}), got {tuple(x.shape)}")


def _as_tensor(name: str, value: ArrayLike, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if isinstance(value, np.ndarray) and not value.flags.writeable:
        value = value.copy()  # torch warns on read-only arrays (e.g. np.diag views) even when it copies
    try:
        t = torch.as_tensor(value, dtype=dtype, device=device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ParameterError(f"{name} must be numeric, got {value!r}") from exc
    if not torch.isfinite(t).all():
        raise ParameterError(f"{name} must be finite, got {value!r}")
    return t


class Gaussian:
    """Multivariate normal N(mean, cov); validated at construction, precision precomputed once.

    Raises ParameterError naming the parameter when ``mean`` or ``cov`` is not numeric or not finite,
    ``mean`` is not a non-empty vector, ``cov`` is not (d, d), not symmetric or not positive definite,
    or ``dtype`` is not float32/float64; ``log_prob`` and ``score`` raise it for points that are not a
    real floating-point tensor of shape (..., d).
    """

    def __init__(
        self,
        mean: ArrayLike,
        cov: ArrayLike,
        *,
        dtype: str | torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        dtype = resolve_dtype(dtype)
        device = resolve_device(device)
        m = _as_tensor("mean", mean, dtype, device)
        c = _as_tensor("cov", cov, dtype, device)
        if m.ndim != 1 or m.numel() < 1:
            raise ParameterError(f"mean must be a 1-D vector of length d >= 1, got shape {tuple(m.shape)}")
        d = m.shape[0]
        if c.shape != (d, d):
            raise ParameterError(f"cov must have shape ({d}, {d}) to match mean, got {tuple(c.shape)}")
        tol = 1e-6 if dtype == torch.float32 else 1e-10
        scale = c.abs().max().clamp_min(1.0)
        if not torch.allclose(c, c.T, rtol=0.0, atol=tol * float(scale)):
            raise ParameterError("cov must be symmetric (cov == cov.T)")
        # Cholesky in float64 decides positive-definiteness independently of the working dtype.
        chol64, info = torch.linalg.cholesky_ex(c.to(torch.float64))
        if int(info) != 0:
            raise ParameterError("cov must be positive definite (its Cholesky factorisation failed)")
        prec64 = torch.cholesky_inverse(chol64)
        self.dim = d
        self.mean = m
        self.cov = c
        self.dtype = dtype
        self.device = device
        self.chol = chol64.to(dtype)
        # The score is a d x d matmul in the hot loop; the precision is formed once here from the
        # Cholesky factor (never by inverting cov) so each step costs one small matmul.
        self.precision = ((prec64 + prec64.T) / 2).to(dtype)
        self._log_norm = -0.5 * d * math.log(2 * math.pi) - float(torch.log(torch.diagonal(chol64)).sum())

    def __repr__(self) -> str:
        return f"Gaussian(mean={self.mean.tolist()}, cov={self.cov.tolist()})"

    def to(self, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None) -> Gaussian:
        """Return a copy of this target on ``device`` with ``dtype``."""
        return Gaussian(
            self.mean.to(torch.float64),
            self.cov.to(torch.float64),
            dtype=self.dtype if dtype is None else dtype,
            device=self.device if device is None else device,
        )

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised log-density at ``x`` of shape (..., d)."""
        _check_points(x, self.dim)
        diff = x - self.mean
        z = torch.linalg.solve_triangular(self.chol, diff.reshape(-1, self.dim).T, upper=False)
        maha = (z * z).sum(0).reshape(diff.shape[:-1])
        return self._log_norm - 0.5 * maha

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """−Σ⁻¹(x − m) at ``x`` of shape (..., d)."""
        _check_points(x, self.dim)
        return (self.mean - x) @ self.precision  # precision is symmetric, so row-vector form is exact

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` exact samples, shape (n, d)."""
        z = torch.randn(n, self.dim, generator=generator, dtype=self.dtype, device=self.device)
        return self.mean + z @ self.chol.T


class GaussianMixture:
    """Mixture of Gaussians with analytic log-density and score (via log-sum-exp responsibilities).

    Raises ParameterError for weights that are not positive or do not sum to 1, ``means`` not (k, d),
    ``covs`` not (k, d, d), and for any component that ``Gaussian`` refuses.
    """

    def __init__(
        self,
        weights: ArrayLike,
        means: ArrayLike,
        covs: ArrayLike,
        *,
        dtype: str | torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        dtype = resolve_dtype(dtype)
        device = resolve_device(device)
        w = _as_tensor("weights", weights, dtype, device)
        mu = _as_tensor("means", means, dtype, device)
        if w.ndim != 1 or w.numel() < 1 or bool((w <= 0).any()):
            raise ParameterError("weights must be a 1-D vector of positive numbers")
        if not math.isclose(float(w.sum()), 1.0, rel_tol=0, abs_tol=1e-6):
            raise ParameterError(f"weights must sum to 1, got {float(w.sum()):.6g}")
        if mu.ndim != 2 or mu.shape[0] != w.shape[0]:
            raise ParameterError(f"means must have shape ({w.shape[0]}, d), got {tuple(mu.shape)}")
        c = _as_tensor("covs", covs, dtype, device)
        k, d = mu.shape
        if c.shape != (k, d, d):
            raise ParameterError(f"covs must have shape ({k}, {d}, {d}), got {tuple(c.shape)}")
        self.components = [Gaussian(mu[i], c[i], dtype=dtype, device=device) for i in range(k)]
        self.dim = d
        self.weights = w
        self.log_weights = torch.log(w)
        self.means = mu
        self.covs = c
        self.dtype = dtype
        self.device = device

    def _component_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([g.log_prob(x) for g in self.components], dim=-1) + self.log_weights

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-density at ``x`` of shape (..., d)."""
        _check_points(x, self.dim)
        return torch.logsumexp(self._component_log_probs(x), dim=-1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Responsibility-weighted component scores at ``x`` of shape (..., d)."""
        _check_points(x, self.dim)
        resp = torch.softmax(self._component_log_probs(x), dim=-1)
        scores = torch.stack([g.score(x) for g in self.components], dim=-2)  # (..., k, d)
        return (resp.unsqueeze(-1) * scores).sum(-2)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` exact samples, shape (n, d)."""
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=self.dtype, device=self.device)
        chols = torch.stack([g.chol for g in self.components])
        return self.means[idx] + torch.einsum("nij,nj->ni", chols[idx], z)


class LogDensityTarget:
    """A target from a user's log-density; the score comes from autograd.

    Raises ParameterError when ``log_prob`` is not callable, ``dim`` is not an integer >= 1, points are
    not a real floating-point tensor of shape (..., dim), or ``log_prob`` returns the wrong shape.
    """

    def __init__(self, log_prob: Callable[[torch.Tensor], torch.Tensor], dim: int) -> None:
        if not callable(log_prob):
            raise ParameterError("log_prob must be callable: a function of a (..., d) tensor returning (...,)")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ParameterError(f"dim must be an integer >= 1, got {dim!r}")
        self._log_prob = log_prob
        self.dim = dim

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """The user's log-density at ``x``."""
        _check_points(x, self.dim)
        return self._log_prob(x)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Autograd gradient of the user's log-density at ``x``."""
        _check_points(x, self.dim)
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            lp = self._log_prob(xg)
            if lp.shape != x.shape[:-1]:
                raise ParameterError(f"log_prob must return shape {tuple(x.shape[:-1])}, got {tuple(lp.shape)}")
            (grad,) = torch.autograd.grad(lp.sum(), xg)
        return grad


def from_log_prob(log_prob: Callable[[torch.Tensor], torch.Tensor], dim: int) -> LogDensityTarget:
    """Build a target from a log-density function; its score is computed by autograd."""
    return LogDensityTarget(log_prob, dim)


# Conjugate normal model: its posteriors are known exactly (used by simulation-based calibration).


class BatchedNormalPosterior:
    """S independent 1-D normal posteriors N(mean_i, sd²) as one Target on (S, 1) tensors (chain i ↔ data set i)."""

    def __init__(self, mean: torch.Tensor, sd: float) -> None:
        self.dim = 1
        self.mean = mean.reshape(-1, 1).to(torch.float64)
        self.var = float(sd) ** 2
        self.dtype = torch.float64
        self.device = self.mean.device
        self._log_norm = -0.5 * math.log(2.0 * math.pi * self.var)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-density of chain i's posterior at x[i], shape (S,)."""
        return self._log_norm - 0.5 * ((x - self.mean) ** 2).sum(-1) / self.var

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """−(x − mean_i)/sd², shape (S, 1)."""
        return (self.mean - x) / self.var


@dataclass(frozen=True)
class ConjugateGaussianModel:
    """θ ~ N(prior_mean, prior_sd²), y_j | θ ~ N(θ, noise_sd²), j = 1..n_obs: the posterior is normal."""

    prior_mean: float = 0.0
    prior_sd: float = 1.0
    noise_sd: float = 1.0
    n_obs: int = 5

    def __post_init__(self) -> None:
        if not math.isfinite(float(self.prior_mean)):
            raise ParameterError(f"prior_mean must be finite, got {self.prior_mean!r}")
        positive_float("prior_sd", self.prior_sd)
        positive_float("noise_sd", self.noise_sd)
        positive_int("n_obs", self.n_obs)

    @property
    def posterior_sd(self) -> float:
        """σ_n = (1/τ² + m/s²)^{-1/2} (the same for every data set)."""
        return 1.0 / math.sqrt(1.0 / self.prior_sd**2 + self.n_obs / self.noise_sd**2)

    def simulate(self, replications: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw θ ~ prior (S,) and data y | θ (S, n_obs)."""
        s = positive_int("replications", replications)
        theta = self.prior_mean + self.prior_sd * torch.randn(s, generator=generator, dtype=torch.float64)
        y = theta[:, None] + self.noise_sd * torch.randn(s, self.n_obs, generator=generator, dtype=torch.float64)
        return theta, y

    def posterior_mean(self, y: torch.Tensor) -> torch.Tensor:
        """μ_n for each data set, shape (S,)."""
        if y.ndim != 2 or y.shape[1] != self.n_obs:
            raise ParameterError(f"y must have shape (S, {self.n_obs}), got {tuple(y.shape)}")
        v = self.posterior_sd**2
        return v * (self.prior_mean / self.prior_sd**2 + y.sum(1) / self.noise_sd**2)

    def posterior(self, y: torch.Tensor) -> BatchedNormalPosterior:
        """The S posteriors as one batched target."""
        return BatchedNormalPosterior(self.posterior_mean(y), self.posterior_sd)


SEED_MEAN = (1.0, 1.0)
SEED_COV = ((1.0, 0.9), (0.9, 1.0))


def seed_target(*, dtype: str | torch.dtype = torch.float64, device: str | torch.device = "cpu") -> Gaussian:
    """The assignment's target: N((1, 1), [[1, 0.9], [0.9, 1]])."""
    return Gaussian(SEED_MEAN, SEED_COV, dtype=dtype, device=device)
