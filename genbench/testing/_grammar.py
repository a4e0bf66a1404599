"""The naming grammar of genbench's checks: a registry entry per check and the deprecation of old names.

For each check X a module offers ``check_X`` (returns a CheckResult), ``assert_X`` (raises CheckFailed,
returns the CheckResult), ``X_required_samples(effect, *, alpha, power, ...)`` and
``X_detectable_effect(n, *, alpha, power, ...)``, as TensorFlow Probability's ``statistical_testing``
keeps each assertion beside its planners. ``CheckSpec`` records the four for one check.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CheckSpec:
    """One check's four public names, its null hypothesis and test statistic (a row of the API table)."""

    name: str
    check: Callable[..., Any]
    assert_: Callable[..., Any]
    required_samples: Callable[..., int] | None
    detectable_effect: Callable[..., float] | None
    null_hypothesis: str
    statistic: str
    effect_unit: str
    no_planner: str = ""
    """Why there is no planner (only when ``required_samples``/``detectable_effect`` are None)."""

    def __post_init__(self) -> None:
        if (self.required_samples is None) != (self.detectable_effect is None):
            raise ValueError(f"check {self.name!r}: give both planners or neither")
        if self.required_samples is None and not self.no_planner:
            raise ValueError(f"check {self.name!r}: a check without planners must say why (no_planner=...)")


def deprecated_alias(module: str, old: str, new: _F) -> _F:
    """``new`` under its previous name ``old``: same arguments and result, plus a DeprecationWarning."""

    @functools.wraps(new)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        warn_renamed(module, old, new.__name__)
        return new(*args, **kwargs)

    wrapper.__name__ = wrapper.__qualname__ = old
    wrapper.__doc__ = f"Deprecated name of ``{new.__name__}`` (removed in the next release)."
    return wrapper  # type: ignore[return-value]


def warn_renamed(module: str, old: str, new: str) -> None:
    """Warn (at the caller's caller) that ``module.old`` is deprecated in favour of ``new``."""
    warnings.warn(
        f"{module}.{old} is deprecated and will be removed in the next release; use {module}.{new}",
        DeprecationWarning,
        stacklevel=3,
    )
