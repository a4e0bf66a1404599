"""Fréchet distance: classifier features -> Gaussian statistics (mean, covariance, float64) -> the
distance between the two fitted Gaussians.

Computed in the reference classifier's features (Inception features mean nothing for 28x28
digits), at a fixed N, beside the real-vs-real floor at the same N: FD is biased upwards at finite
N, so only the comparison with the floor says anything. FD has no null distribution here, so it
reports a number and no p-value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import scipy.linalg

from genbench.errors import DivergenceError, ParameterError
from genbench.gan.metrics.base import EvaluationInputs, as_features


@dataclass(frozen=True, eq=False)
class GaussianStatistics:
    """Mean and covariance (float64) of one feature set."""

    mean: np.ndarray
    cov: np.ndarray
    n: int

    @property
    def dim(self) -> int:
        """Feature dimension."""
        return int(self.mean.shape[0])


@dataclass(frozen=True)
class FrechetResult:
    """Fréchet distance between two feature sets, the covariance ranks, and (from evaluate) the floor."""

    fd: float
    mean_term: float  # |mu_a - mu_b|^2, the part of fd due to the means
    rank_a: int
    rank_b: int
    dim: int
    n_a: int
    n_b: int
    floor: float | None = None  # FD between two disjoint held-out real sets of the same size

    @property
    def n(self) -> int:
        """Images in the first (generated) set."""
        return self.n_a

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)

    def summary_line(self) -> str:
        """One line for the printed summary."""
        floor = f"   real-vs-real floor: {self.floor:.4f}" if self.floor is not None else ""
        return f"Fréchet distance (classifier features, N={self.n_a}): {self.fd:.4f}{floor}"


def gaussian_statistics(features: Any) -> GaussianStatistics:
    """Mean and covariance (float64) of an (N, d) feature set, N >= 2."""
    a = as_features("features", features)
    if len(a) < 2:
        raise ParameterError("Fréchet distance needs at least 2 samples on each side")
    return GaussianStatistics(a.mean(0), np.cov(a, rowvar=False).reshape(a.shape[1], a.shape[1]), len(a))


def _psd_eigs(mat: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of a symmetric PSD matrix with round-off negatives set to 0 (or an error)."""
    w, v = scipy.linalg.eigh((mat + mat.T) / 2)
    tol = max(w.max(initial=0.0), 1.0) * mat.shape[0] * np.finfo(np.float64).eps * 100
    if w.min(initial=0.0) < -tol:
        raise DivergenceError(f"{name} has a negative eigenvalue {w.min():.3g}: not a covariance matrix")
    return np.clip(w, 0.0, None), v


def _rank(w: np.ndarray) -> int:
    return int((w > w.max(initial=0.0) * len(w) * np.finfo(np.float64).eps * 100).sum())


def frechet_from_statistics(a: GaussianStatistics, b: GaussianStatistics) -> FrechetResult:
    """Fréchet distance between the Gaussians N(a.mean, a.cov) and N(b.mean, b.cov)."""
    if a.dim != b.dim:
        raise ParameterError(f"features must have equal dimension, got {a.dim} and {b.dim}")
    # tr sqrt(Σa Σb) = tr sqrt(Σa^½ Σb Σa^½): the right side is symmetric PSD, so its square root
    # comes from eigh and is real even when a covariance is singular (dead ReLU units, N < d), where
    # scipy.linalg.sqrtm(Σa Σb) returns complex values or NaN (bioinf-jku/TTUR #4).
    wa, va = _psd_eigs(a.cov, "covariance of the first set")
    half_a = (va * np.sqrt(wa)) @ va.T
    wm, _ = _psd_eigs(half_a @ b.cov @ half_a, "Σa^½ Σb Σa^½")
    diff = a.mean - b.mean
    fd = float(diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2.0 * float(np.sqrt(wm).sum()))
    wb, _ = _psd_eigs(b.cov, "covariance of the second set")
    return FrechetResult(
        fd=max(fd, 0.0),  # round-off can leave -1e-12 when the two sets coincide
        mean_term=float(diff @ diff),
        rank_a=_rank(wa),
        rank_b=_rank(wb),
        dim=a.dim,
        n_a=a.n,
        n_b=b.n,
    )


def frechet_distance(feat_a: Any, feat_b: Any) -> FrechetResult:
    """Fréchet distance between Gaussians fitted (float64) to two (N, d) feature sets."""
    a, b = as_features("features", feat_a), as_features("features", feat_b)
    if a.shape[1] != b.shape[1]:
        raise ParameterError(f"features must be (N, d) arrays of equal d, got {a.shape} and {b.shape}")
    return frechet_from_statistics(gaussian_statistics(a), gaussian_statistics(b))


def evaluate(inputs: EvaluationInputs) -> FrechetResult:
    """FD of generated vs held-out real features, with the real-vs-real floor at the same N."""
    real = gaussian_statistics(inputs.real_features.features)
    fd = frechet_from_statistics(gaussian_statistics(inputs.fake_features.features), real)
    floor = frechet_from_statistics(gaussian_statistics(inputs.floor_features.features), real)
    return replace(fd, floor=floor.fd)
