"""Re-rollable fixed seeds: ``GENBENCH_SEED_OFFSET=K`` shifts every seed a statistical test fixes.

Kept free of torch, numpy and pytest so the pytest plugin can import it in any project's session.
Public name: ``genbench.testing.offset_seed``.
"""

from __future__ import annotations

import numbers
import os

from genbench.errors import ParameterError

SEED_OFFSET_ENV = "GENBENCH_SEED_OFFSET"
# Seeds of different offsets are SEED_STRIDE apart, so base seeds below the stride never collide
# across offsets, and a test's own derived seeds (base + i for small i) stay far from the next K.
SEED_STRIDE = 100_000
# Keeps every offset seed below 2**32: the widest range that numpy's legacy RandomState, scikit-learn
# and 32-bit seed consumers accept. A nightly job may use the day number since 1970 (~20 500 now).
MAX_SEED_OFFSET = (2**32 - SEED_STRIDE) // SEED_STRIDE


def seed_offset() -> int:
    """The offset K read from ``GENBENCH_SEED_OFFSET`` (0 when unset or empty)."""
    raw = os.environ.get(SEED_OFFSET_ENV, "").strip()
    if raw == "":
        return 0
    if not raw.isdigit() or not raw.isascii():
        raise ParameterError(
            f"{SEED_OFFSET_ENV} must be a non-negative integer (0 to {MAX_SEED_OFFSET}), got {raw!r}"
        )
    k = int(raw)
    if k > MAX_SEED_OFFSET:
        raise ParameterError(f"{SEED_OFFSET_ENV} must be at most {MAX_SEED_OFFSET} (seeds stay below 2**32), got {k}")
    return k


def offset_seed(base: int) -> int:
    """The fixed seed ``base`` shifted by ``GENBENCH_SEED_OFFSET=K``: ``base + K * 100 000``."""
    if isinstance(base, bool) or not isinstance(base, numbers.Integral) or not 0 <= base < SEED_STRIDE:
        raise ParameterError(
            f"base must be an integer seed in [0, {SEED_STRIDE}) so that offsets never collide, got {base!r}"
        )
    return int(base) + seed_offset() * SEED_STRIDE
