"""Public statistical assertions for testing samplers and generative models (see submodules)."""

from genbench.testing._result import CheckResult

__all__ = ["CheckResult"]
