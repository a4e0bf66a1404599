"""The outcome of one statistical check, shared by every ``check_*`` / ``assert_*`` in genbench.testing."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from genbench.errors import CheckFailed


@dataclass(frozen=True)
class CheckResult:
    """A hypothesis test's verdict: H0, statistic, p-value, alpha and (when known) the detectable effect.

    ``passed`` means "H0 not rejected at ``alpha``". ``detectable_effect`` is the smallest effect
    (in ``effect_unit``) detected with probability ``power`` at this sample size, when the check
    can compute it.
    """

    name: str
    null_hypothesis: str
    statistic: float
    p_value: float
    alpha: float
    n: int
    detectable_effect: float | None = None
    effect_unit: str = ""
    power: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when H0 is not rejected at level alpha."""
        return not (self.p_value < self.alpha)

    def message(self) -> str:
        """One paragraph stating the verdict with statistic, p-value, alpha and detectable effect."""
        verdict = "not rejected" if self.passed else "REJECTED"
        msg = (
            f"{self.name}: H0 ({self.null_hypothesis}) {verdict} at alpha={self.alpha:g}: "
            f"statistic={self.statistic:.6g}, p-value={self.p_value:.3g}, n={self.n}"
        )
        if self.detectable_effect is not None:
            msg += (
                f"; at this n the check detects {self.effect_unit or 'an effect'} >= "
                f"{self.detectable_effect:.3g} with power {self.power if self.power is not None else 0.8:g}"
            )
        return msg

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (for reports and calibration tables)."""
        d = asdict(self)
        d["passed"] = self.passed
        return d

    def raise_if_rejected(self) -> CheckResult:
        """Raise CheckFailed with ``message()`` if H0 was rejected; return self otherwise."""
        if not self.passed:
            raise CheckFailed(self.message())
        return self
