"""The metrics ``evaluate_generator`` runs, in order: one registration line per metric.

Adding a metric: write ``genbench/gan/metrics/<name>.py`` with a frozen result dataclass (``to_dict``
and ``summary_line``; ``p_value``, ``alpha`` and ``null_hypothesis`` when it is a test) and an
``evaluate(inputs: EvaluationInputs)`` function, then add one ``register(...)`` line below. The
metric then appears in ``QualityReport`` (as ``report.<name>``), in ``quality.json``, in the printed
summary and, when ``test=True``, in the family verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genbench.errors import ParameterError
from genbench.gan.metrics import c2st, class_balance, diversity, frechet, kid, memorisation
from genbench.gan.metrics.base import EvaluationInputs


@dataclass(frozen=True)
class Metric:
    """One registered metric: its name in reports and how to compute it from the evaluation inputs."""

    name: str
    evaluate: Callable[[EvaluationInputs], Any]
    test: bool  # True: its result carries a p-value that joins the family verdict


_REGISTRY: dict[str, Metric] = {}


def register(name: str, evaluate: Callable[[EvaluationInputs], Any], *, test: bool) -> Metric:
    """Add a metric to those ``evaluate_generator`` runs (after the ones already registered)."""
    if not name.isidentifier() or name in _REGISTRY:
        raise ParameterError(f"metric name must be a new Python identifier, got {name!r}")
    _REGISTRY[name] = Metric(name, evaluate, test)
    return _REGISTRY[name]


def metrics() -> tuple[Metric, ...]:
    """The registered metrics, in registration order."""
    return tuple(_REGISTRY.values())


def tests() -> tuple[Metric, ...]:
    """The registered metrics that are hypothesis tests (the members of the family verdict)."""
    return tuple(m for m in _REGISTRY.values() if m.test)


register("c2st", c2st.evaluate, test=True)
register("frechet", frechet.evaluate, test=False)
register("kid", kid.evaluate, test=True)
register("class_balance", class_balance.evaluate, test=True)
register("memorisation", memorisation.evaluate, test=True)
register("diversity", diversity.evaluate, test=True)
