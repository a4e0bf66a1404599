"""User-facing errors: each is one line that names the parameter or thing at fault.

The CLI prints ``GenbenchError`` messages on one line and exits with status 2; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class GenbenchError(Exception):
    """Base class of errors caused by the user's input, data or environment."""


class ParameterError(GenbenchError, ValueError):
    """A parameter has a value outside what is allowed."""


class DeviceError(GenbenchError, RuntimeError):
    """The requested device is not available."""


class DivergenceError(GenbenchError, FloatingPointError):
    """A sampler or training run produced non-finite values."""


class DistributedError(GenbenchError, RuntimeError):
    """The distributed launch or a collective failed (names the rank and what to do)."""


class DataError(GenbenchError, OSError):
    """Input data is missing, truncated or corrupt."""


class CheckpointError(GenbenchError, OSError):
    """A checkpoint is missing, corrupt or does not match the model."""


class CheckFailed(AssertionError):
    """A statistical check rejected its null hypothesis (raised by ``genbench.testing``)."""
