"""Run time of the conformance battery (issue 13: <= 60 s on the 2-D target and <= 5 min on the 50-D
target for BlackJAX's MALA on 2 CPU cores), and the time the kit itself adds over the sampler's own.

One timed call is one whole ``check_sampler`` battery at its default settings (alpha 0.01, power 0.9,
default effects), JIT compilation included, as a CI job would see it. Throughput is in chains/s over
the whole battery; ``extra_info`` splits the time into the sampler's (inside ``run`` calls) and the
kit's (planning, exact draws, statistics), with ``kit_chains_per_second`` the rate at which the kit
alone processes chains.

``quick`` profile: the kit's overhead with an i.i.d. exact "sampler" (no Markov chain) on gauss2d.
``full`` profile: BlackJAX's MALA (single-stage and sequential) and SGLD and genbench's MALA on
gauss2d, and BlackJAX's MALA on dense50 (about 2-5 minutes by itself), one round each.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from genbench.bench.timing import Workload
from genbench.conformance import adapters, check_sampler

# Budgets from issue 13 (exact kind, BlackJAX MALA, 2 CPU cores); recorded, not asserted (the
# coordinator's idle-machine run is the measurement; a loaded machine only slows it).
BUDGET_S = {"gauss2d": 60.0, "dense50": 300.0}


def iid_exact(target: Any) -> Any:
    """Exact draws, no chain: the battery's time is then the kit's own."""

    def run(x0: np.ndarray, steps: int, step_size: float, seed: int) -> np.ndarray:
        return target.sample(x0.shape[0], np.random.default_rng(seed))

    return run


CASES = [
    # (sampler name, factory, kind, targets, sequential, profiles it runs in, needs jax)
    ("iid_exact", iid_exact, "exact", "gauss2d", False, ("quick", "full"), False),
    ("blackjax_mala", adapters.blackjax_mala, "exact", "gauss2d", False, ("full",), True),
    ("blackjax_mala", adapters.blackjax_mala, "exact", "gauss2d", True, ("full",), True),
    ("blackjax_sgld", adapters.blackjax_sgld, "ula", "gauss2d", False, ("full",), True),
    ("genbench_mala", adapters.genbench_mala, "exact", "gauss2d", False, ("full",), False),
    ("blackjax_mala", adapters.blackjax_mala, "exact", "dense50", False, ("full",), True),
]


@pytest.mark.parametrize(
    "name, factory, kind, targets, sequential, profiles, needs_jax", CASES,
    ids=[f"{c[0]}-{c[3]}{'-sequential' if c[4] else ''}" for c in CASES],
)
def test_conformance_battery(run: Any, profile: Any, name: str, factory: Any, kind: str, targets: str,
                             sequential: bool, profiles: tuple[str, ...], needs_jax: bool, benchmark: Any) -> None:
    """One default battery on one target: total time, sampler time, kit time."""
    if profile.name not in profiles:
        pytest.skip(f"runs in the {'/'.join(profiles)} profile (this is {profile.name})")
    if needs_jax and not adapters.peers_available():
        pytest.skip("needs the optional extra genbench[peers] (jax, blackjax)")
    benchmark.group = "conformance.battery"
    reports = []

    def battery() -> None:
        reports.append(check_sampler(factory, kind, targets=targets, seed=0, sequential=sequential))

    # Work per call: the chains of a correct sampler's battery (stage 1 only in sequential mode).
    workload = Workload(workload="conformance.battery", unit="chains/s",
                        work_per_call=_planned_chains(kind, targets, sequential),
                        variant=f"{name},{kind},{targets}{',sequential' if sequential else ''}",
                        size={"targets": targets, "kind": kind, "sequential": sequential})
    rounds = 3 if name == "iid_exact" else 1
    run(battery, workload, "cpu", rounds=rounds, warmup_rounds=0)
    rep = reports[-1]
    t = rep.timing
    benchmark.extra_info.update(
        passed=rep.passed,
        tests=len(rep.rows),
        total_seconds=t["total_seconds"],
        sampler_seconds=t["sampler_seconds"],
        kit_seconds=t["kit_seconds"],
        chains=t["chains"],
        chain_steps=t["chain_steps"],
        kit_chains_per_second=t["kit_chains_per_second"],
        sampler_chain_steps_per_second=t["chain_steps"] / max(t["sampler_seconds"], 1e-9),
        budget_seconds=BUDGET_S.get(targets),
    )


def _planned_chains(kind: str, targets: str, sequential: bool) -> float:
    from genbench.conformance import plan_battery
    from genbench.conformance.targets import resolve_targets

    plan = plan_battery(resolve_targets(targets), kind, alpha=0.01, effect=None, power=0.9, sequential=sequential)
    return float(sum(r.chains for r in plan.runs))
