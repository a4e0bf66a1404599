"""Small argument validators shared by every layer; each raises ParameterError naming the parameter."""

from __future__ import annotations

import math
import numbers

from genbench.errors import ParameterError

#: Seeds are below this: torch's and numpy's generators take them, and derived seeds are 63-bit (seeding.derive_seed).
SEED_LIMIT = 2**63


def positive_int(name: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def positive_float(name: str, value: object, *, upper: float | None = None, upper_name: str = "") -> float:
    """Return ``value`` as a finite float > 0 (and < ``upper`` if given), or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name} must be a finite number > 0, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ParameterError(f"{name} must be a finite number > 0, got {value}")
    if upper is not None and v >= upper:
        extra = f" ({upper_name})" if upper_name else ""
        raise ParameterError(f"{name} must be < {upper:g}{extra}, got {v:g}")
    return v


def probability(name: str, value: object, *, open_interval: bool = True) -> float:
    """Return ``value`` as a float in (0, 1) (or [0, 1] when ``open_interval`` is False), or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ParameterError(f"{name} must be a number in (0, 1), got {value!r}")
    v = float(value)
    ok = 0.0 < v < 1.0 if open_interval else 0.0 <= v <= 1.0
    if not ok:
        interval = "(0, 1)" if open_interval else "[0, 1]"
        raise ParameterError(f"{name} must be in {interval}, got {v:g}")
    return v


def choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise listing the allowed values."""
    if value not in allowed:
        raise ParameterError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def nonnegative_seed(name: str, value: object) -> int:
    """Return ``value`` (an int or numpy integer) as an int seed, or raise if it is not a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ParameterError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)
