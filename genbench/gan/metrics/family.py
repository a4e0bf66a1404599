"""The family verdict of several checks on one generator: Holm's step-down procedure at a stated
family-wise level.

``evaluate_generator`` runs m checks. Reading each at level alpha would reject a perfect generator
with probability up to m * alpha; Holm (1979) rejects check (i) (p-values sorted ascending) while
p_(i) <= alpha / (m - i + 1), which keeps the probability of rejecting any true H0 <= alpha for any
dependence between the checks. The overall verdict "some check rejects" is then a test of "every
H0 holds" at level alpha. Each check keeps its own p-value; the Holm-adjusted p-values are reported
beside them. The procedure is ``genbench.stats.holm`` (shared with ``genbench check-sampler``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from genbench import _validate
from genbench.errors import ParameterError
from genbench.stats import holm as holm_levels


@dataclass(frozen=True)
class FamilyVerdict:
    """Holm's procedure over named p-values at family-wise level ``alpha``."""

    alpha: float
    names: tuple[str, ...]
    p_values: tuple[float, ...]
    adjusted_p_values: tuple[float, ...]  # Holm-adjusted: check i is rejected iff adjusted_i <= alpha
    rejected: tuple[bool, ...]
    method: str = "Holm step-down"
    null_hypothesis: str = "every check's H0 holds (the generated images are indistinguishable on every check)"

    @property
    def any_rejected(self) -> bool:
        """True when the family H0 is rejected at ``alpha``."""
        return any(self.rejected)

    @property
    def p_value(self) -> float:
        """p-value of the family H0: the smallest adjusted p-value."""
        return min(self.adjusted_p_values, default=1.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        d = asdict(self)
        d["any_rejected"] = self.any_rejected
        d["p_value"] = self.p_value
        return d

    def summary_line(self) -> str:
        """One line for the printed summary."""
        names = [n for n, r in zip(self.names, self.rejected) if r]
        verdict = f"REJECTED by {', '.join(names)}" if names else "not rejected"
        return (f"verdict at family-wise level {self.alpha:g} ({self.method} over {len(self.names)} checks): "
                f"{verdict} (family p={self.p_value:.3g})")


def holm(names: tuple[str, ...] | list[str], p_values: Any, alpha: float) -> FamilyVerdict:
    """Holm's step-down procedure: which of the named checks are rejected at family-wise level ``alpha``."""
    alpha = _validate.probability("alpha", alpha)
    p = np.asarray(p_values, dtype=np.float64)
    names = tuple(names)
    if p.ndim != 1 or len(p) != len(names) or len(p) == 0:
        raise ParameterError(f"p_values must be one p-value per name ({len(names)}), got shape {p.shape}")
    if not np.all((p >= 0) & (p <= 1)):
        raise ParameterError(f"p_values must lie in [0, 1], got {p.tolist()}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    # Adjusted p of the i-th smallest: max over j <= i of (m - j + 1) p_(j), capped at 1.
    adj_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = adj_sorted
    _, rejected = holm_levels(p.tolist(), alpha)
    return FamilyVerdict(
        alpha=alpha,
        names=names,
        p_values=tuple(float(x) for x in p),
        adjusted_p_values=tuple(float(x) for x in adjusted),
        rejected=tuple(rejected),
    )
