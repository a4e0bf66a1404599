"""One way to derive independent seeds from a run's seed: ``derive_seed(seed, *keys)``.

Every stream genbench draws from a run's seed (a GAN run's noise and shuffles, a Langevin grid
cell, a sharded block of chains) gets its own seed from numpy's ``SeedSequence([seed, *keys])``:
streams with different keys are statistically independent, the same keys give the same seed on
every machine and every rank, and nothing depends on the order in which streams are created.
"""

from __future__ import annotations

import numbers

import numpy as np

from genbench._validate import positive_int
from genbench.errors import ParameterError

#: Widths ``derive_seed`` can return: 63 bits (fits a signed 64-bit int, e.g. torch.Generator.manual_seed)
#: or 32 bits (the first 32-bit word of the same SeedSequence, as older genbench grids used).
SEED_BITS = (63, 32)


def derive_seed(seed: int, *keys: int, bits: int = 63) -> int:
    """An independent seed for stream ``keys`` of ``seed`` (numpy SeedSequence), ``bits`` wide (63 or 32)."""
    seed = positive_int("seed", seed, minimum=0)
    for i, k in enumerate(keys):
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
            raise ParameterError(f"keys[{i}] must be an integer >= 0, got {k!r}")
    if bits not in SEED_BITS:
        raise ParameterError(f"bits must be one of {', '.join(map(str, SEED_BITS))}, got {bits!r}")
    ss = np.random.SeedSequence([seed, *(int(k) for k in keys)])
    if bits == 32:
        return int(ss.generate_state(1, np.uint32)[0])
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))
