"""Test anyone's sampler: the adapter protocol, the target catalogue and ``check_sampler``.

Example (in any test file; genbench's pytest plugin counts the battery's alpha)::

    from genbench.conformance import check_sampler

    def my_factory(target):                      # target: genbench.conformance.Target
        def run(x0, steps, step_size, seed):     # x0: (N, d) float64; returns (N, d)
            ...
        return run

    def test_my_sampler():
        check_sampler(my_factory, kind="exact").raise_if_failed()

See docs/conformance.md for the protocol, the battery and its measured error rates.
"""

from genbench.conformance.battery import check_sampler
from genbench.conformance.plan import DEFAULT_EFFECT, KINDS, Plan, Run, plan_battery
from genbench.conformance.result import AdapterError, ConformanceReport, ConformanceRow
from genbench.conformance.targets import ALL_TARGETS, DEFAULT_TARGETS, Target, catalogue, gaussian, mixture
from genbench.errors import CheckFailed

__all__ = [
    "ALL_TARGETS",
    "AdapterError",
    "CheckFailed",
    "ConformanceReport",
    "ConformanceRow",
    "DEFAULT_EFFECT",
    "DEFAULT_TARGETS",
    "KINDS",
    "Plan",
    "Run",
    "Target",
    "catalogue",
    "check_sampler",
    "gaussian",
    "mixture",
    "plan_battery",
]
