"""Diversity: images -> within-set nearest-neighbour distances (pixel L2) -> a permutation test of
"generated images are no nearer to each other than real images are".

The statistic is the mean within-set NN distance of the real set minus that of the generated set,
so duplicates or a mode collapsed onto a few images (distance ~0 to a twin) make it large. Under
H0 "generated and real images are exchangeable" the permutation p-value (1 + #{T_perm >= T}) /
(B + 1) is exact at any sample size; group sizes are kept by every permutation. It catches a mode
collapsed to a point inside one class, which the class histogram and KID barely see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import scipy.stats
import torch

from genbench import _validate
from genbench._runtime import make_generator
from genbench.errors import DataError, ParameterError
from genbench.gan.metrics.base import EvaluationInputs, HypothesisResult, as_images

NEIGHBOURS = 12  # sorted neighbours kept per point; the rare rows with no same-group hit (~2^-12) are recomputed exactly
NULL_HYPOTHESIS = "generated and real images are exchangeable (generated images no nearer to each other)"


@dataclass(frozen=True)
class DiversityResult(HypothesisResult):
    """Within-set nearest-neighbour distances of generated vs real images, and the permutation test."""

    statistic: float  # mean NN distance of real minus that of generated
    relative_reduction: float  # statistic / mean NN distance of real
    p_value: float
    mean_nn_generated: float
    mean_nn_real: float
    near_duplicates_generated: int  # images within 1% of the real median NN distance of another one
    near_duplicates_real: int
    detectable_relative_reduction: float  # at `power`, from the normal approximation of the permutation law
    power: float
    alpha: float
    n: int
    n_real: int
    n_permutations: int
    seed: int
    metric: str = "pixel L2 distance to the nearest other image of the same set"
    null_hypothesis: str = NULL_HYPOTHESIS

    def summary_line(self) -> str:
        """One line for the printed summary."""
        return (f"diversity: mean within-set NN distance {self.mean_nn_generated:.3f} generated vs "
                f"{self.mean_nn_real:.3f} real (reduction {self.relative_reduction:+.3f}), p={self.p_value:.3g}, "
                f"near duplicates {self.near_duplicates_generated}")


def _within_group_nn(dist: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour distance of every point within its own group, for a batch of labellings.

    ``dist``/``idx`` (N, K) are each point's K nearest other points, sorted; ``labels`` (B, N) bool.
    The first sorted neighbour sharing the point's label is its within-group NN; a row whose K
    neighbours all lie in the other group (probability about 2^-K) is recomputed from ``z`` exactly.
    """
    same = labels[:, idx] == labels[:, :, None]  # (B, N, K)
    first = same.to(torch.uint8).argmax(-1)  # torch returns the first maximal index
    nn_d = dist.expand(labels.shape[0], -1, -1).gather(-1, first.unsqueeze(-1)).squeeze(-1)
    miss = (~same.any(-1)).nonzero()
    for chunk in miss.split(2048):
        b, i = chunk[:, 0], chunk[:, 1]
        rows = torch.cdist(z[i], z)  # (M, N)
        mask = labels[b] == labels[b, i][:, None]
        mask[torch.arange(len(i)), i] = False
        nn_d[b, i] = rows.masked_fill(~mask, math.inf).min(1).values
    return nn_d


def diversity(
    fake: Any, real: Any, *, n_permutations: int = 999, alpha: float = 0.01, power: float = 0.8, seed: int = 0
) -> DiversityResult:
    """Are generated images nearer to each other (pixel L2) than real images are? Permutation test.

    Sets of different sizes are allowed. The detectable effect (relative reduction of the mean NN
    distance at ``power``) uses the normal approximation of the permutation law.
    """
    x_fake, x_real = as_images("fake", fake), as_images("real", real)
    b = _validate.positive_int("n_permutations", n_permutations, minimum=19)
    alpha = _validate.probability("alpha", alpha)
    power = _validate.probability("power", power)
    seed = _validate.positive_int("seed", seed, minimum=0)
    if (b + 1) * alpha < 1:
        raise ParameterError(
            f"n_permutations={b} cannot reach alpha={alpha:g}: the smallest permutation p-value is "
            f"1/(n_permutations+1); use n_permutations >= {math.ceil(1 / alpha) - 1}"
        )
    n_f, n_r = len(x_fake), len(x_real)
    z = torch.cat([x_fake, x_real]).flatten(1).double()
    n = len(z)
    k = min(n - 1, NEIGHBOURS)
    # K nearest other points of every point, in chunks so that N = 4000 needs no N x N x D buffer.
    dists, idxs = [], []
    for c in torch.arange(n).split(500):
        d = torch.cdist(z[c], z)
        d[torch.arange(len(c)), c] = math.inf
        v, i = d.topk(k, dim=1, largest=False, sorted=True)
        dists.append(v)
        idxs.append(i)
    dist, idx = torch.cat(dists), torch.cat(idxs)

    def stat(labels: torch.Tensor) -> torch.Tensor:  # labels (B, N) bool: True = "generated" group
        nn_d = _within_group_nn(dist, idx, labels, z)
        lf = labels.double()
        return (nn_d * (1 - lf)).sum(1) / n_r - (nn_d * lf).sum(1) / n_f

    observed = torch.zeros(1, n, dtype=torch.bool)
    observed[0, :n_f] = True
    nn_obs = _within_group_nn(dist, idx, observed, z)[0]
    t_obs = float(nn_obs[n_f:].mean() - nn_obs[:n_f].mean())
    mean_real = float(nn_obs[n_f:].mean())
    if mean_real <= 0:
        raise DataError("real holds only identical images: its diversity is zero and the test has no scale")
    gen = make_generator(seed)
    perms = []
    for chunk in range(0, b, 256):
        m = min(256, b - chunk)
        order = torch.argsort(torch.rand(m, n, generator=gen, dtype=torch.float64), dim=1)
        lab = torch.zeros(m, n, dtype=torch.bool)
        lab.scatter_(1, order[:, :n_f], True)
        perms.append(stat(lab))
    t_perm = torch.cat(perms)
    # A permutation equal to the observed labelling must count as ">=", though its sums ran in another order.
    p = (1.0 + float((t_perm >= t_obs - 1e-12 * abs(t_obs)).sum())) / (b + 1.0)
    z_sum = float(scipy.stats.norm.isf(alpha) + scipy.stats.norm.ppf(power))
    dup_tol = 0.01 * float(nn_obs[n_f:].median())  # 1% of the real median: a near-duplicate
    return DiversityResult(
        statistic=t_obs,
        relative_reduction=t_obs / mean_real,
        p_value=p,
        mean_nn_generated=float(nn_obs[:n_f].mean()),
        mean_nn_real=mean_real,
        near_duplicates_generated=int((nn_obs[:n_f] < dup_tol).sum()),
        near_duplicates_real=int((nn_obs[n_f:] < dup_tol).sum()),
        detectable_relative_reduction=z_sum * float(t_perm.std()) / mean_real,
        power=power,
        alpha=alpha,
        n=n_f,
        n_real=n_r,
        n_permutations=b,
        seed=seed,
    )


def permutations_for(alpha: float) -> int:
    """Permutations whose smallest p-value, 1/(B+1), is at most alpha/2 (at least 999)."""
    return max(999, math.ceil(2.0 / alpha) - 1)


def evaluate(inputs: EvaluationInputs) -> DiversityResult:
    """Generated images against the first held-out real set, with ``permutations_for(alpha)`` permutations."""
    return diversity(inputs.fake, inputs.real, n_permutations=permutations_for(inputs.alpha), alpha=inputs.alpha,
                     power=inputs.power, seed=inputs.seed)
