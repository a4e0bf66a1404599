"""Exact Gaussian test data by Cholesky from standard normals (shared by the statistical tests).

numpy's ``Generator.multivariate_normal`` factorises the covariance with an SVD whose output depends
on the LAPACK build, so the same seed gives different draws on different machines; a Cholesky
factor of a fixed SPD matrix times ``standard_normal`` draws is the same everywhere.
"""

from __future__ import annotations

import numpy as np


def gaussian_draws(seed: int, n: int, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """n draws of N(mean, cov) as mean + z Lᵀ, z ~ N(0, I) from ``np.random.default_rng(seed)``."""
    mean = np.asarray(mean, dtype=np.float64)
    chol = np.linalg.cholesky(np.asarray(cov, dtype=np.float64))
    z = np.random.default_rng(seed).standard_normal((n, mean.shape[0]))
    return mean + z @ chol.T
