"""Sequential testing (Gandy & Scott 2020, "Unit testing for MCMC and other Monte Carlo methods", §3).

A check is run in up to k stages, each on FRESH samples (stage i uses its own seed), so the stage
p-values p₁, p₂, … are independent and each is super-uniform under H0. With overall level α:

    β₁ = α/k,   γ = (α/k)^{1/k};
    stage i: if pᵢ ≤ βᵢ reject H0 and stop; if pᵢ > γ + βᵢ accept and stop;
             otherwise continue with β_{i+1} = βᵢ/γ and a larger sample size;
    at stage k (βₖ = γ): reject iff pₖ ≤ βₖ.

How α is spent: under H0, P(continue past stage j) ≤ P(βⱼ < pⱼ ≤ γ + βⱼ) ≤ γ and
P(reject at stage i) ≤ γ^{i−1}·βᵢ = γ^{i−1}·(α/k)/γ^{i−1} = α/k, so P(reject) ≤ k·α/k = α:
exactly α/k is spent at each stage, whatever the sample sizes. Clear cases stop at stage 1:
a grossly wrong sampler has p₁ ≤ α/k, and a correct one has p₁ > γ + α/k with probability
≈ 1 − γ − α/k (0.85 for α = 0.01, k = 3).

Sample sizes: Gandy & Scott's Algorithm (and MCMCTesting.jl ``seqmcmctest``) multiply n by Δ once,
after stage 1 (``schedule="paper"``: n, Δn, Δn, …); ``schedule="doubling"`` (default) multiplies by
Δ at every stage (n, Δn, Δ²n, …), as "double n until decided" suggests. Both keep P(reject) ≤ α,
since the bound above never uses the sample sizes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from genbench._validate import choice, nonnegative_seed, positive_float, positive_int, probability
from genbench.errors import ParameterError
from genbench.planning import DEFAULT_ALPHA, DEFAULT_POWER
from genbench.testing._grammar import deprecated_alias
from genbench.testing._result import CheckResult

__all__ = [
    "Stage",
    "SequentialResult",
    "sequential_thresholds",
    "check_sequential",
    "assert_sequential",
    "sequential_required_samples",
    "sequential_detectable_effect",
]

StageCheck = Callable[[int, int], CheckResult]
"""``check(n, seed) -> CheckResult``: runs the check on n FRESH samples drawn from ``seed``."""


@dataclass(frozen=True)
class Stage:
    """One stage: its sample size, seed, p-value, the reject threshold β and the accept threshold γ + β."""

    index: int
    n: int
    seed: int
    p_value: float
    reject_below: float
    accept_above: float
    decision: str  # "reject", "accept" or "continue"


@dataclass(frozen=True)
class SequentialResult:
    """The overall verdict (a CheckResult at the overall alpha) and the stages actually taken."""

    result: CheckResult
    stages: list[Stage] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when the sequential test did not reject H0."""
        return self.result.passed

    @property
    def total_samples(self) -> int:
        """Samples used over all stages taken."""
        return sum(s.n for s in self.stages)


def sequential_thresholds(alpha: float, max_stages: int) -> list[tuple[float, float]]:
    """(βᵢ, γ + βᵢ) for stages i = 1..k: reject if pᵢ ≤ βᵢ, accept if pᵢ > γ + βᵢ (k-th: accept otherwise)."""
    alpha = probability("alpha", alpha)
    k = positive_int("max_stages", max_stages)
    beta = alpha / k
    gamma = beta ** (1.0 / k)
    out = []
    for _ in range(k):
        out.append((beta, gamma + beta))
        beta /= gamma
    return out


def _stage_seeds(seed: int, k: int) -> list[int]:
    # Independent, reproducible stage seeds (numpy SeedSequence spawning), so the stages use fresh samples.
    return [int(ss.generate_state(1, dtype=np.uint32)[0]) for ss in np.random.SeedSequence(seed).spawn(k)]


def check_sequential(
    check: StageCheck,
    *,
    n: int,
    alpha: float = DEFAULT_ALPHA,
    max_stages: int = 3,
    growth: float = 2.0,
    schedule: str = "doubling",
    seed: int = 0,
) -> SequentialResult:
    """Run ``check(n_i, seed_i)`` in up to ``max_stages`` stages (Gandy & Scott 2020); overall level ``alpha``.

    H0: that of ``check``; each stage must draw fresh samples from its seed (independence of the stage
    p-values is what guarantees P(reject | H0) ≤ ``alpha``; α/k is spent per stage, see module docstring).
    ``seed`` derives the stage seeds. The returned CheckResult has the overall ``alpha``; its
    ``statistic`` is the deciding stage's p-value pᵢ and its ``p_value`` is min(1, pᵢ·α/βᵢ), a rescaling
    that makes ``passed`` reproduce the sequential decision (it is not a p-value of the whole procedure).
    """
    if not callable(check):
        raise ParameterError("check must be callable as check(n, seed) -> CheckResult")
    n = positive_int("n", n)
    alpha = probability("alpha", alpha)
    k = positive_int("max_stages", max_stages)
    growth = positive_float("growth", growth)
    if growth < 1.0:
        raise ParameterError(f"growth must be >= 1 (sample sizes never shrink), got {growth:g}")
    schedule = choice("schedule", schedule, ("doubling", "paper"))
    seed = nonnegative_seed("seed", seed)
    thresholds = sequential_thresholds(alpha, k)
    seeds = _stage_seeds(seed, k)
    stages: list[Stage] = []
    last: CheckResult | None = None
    size = n
    decision = "accept"
    for i, ((beta, accept_above), s_i) in enumerate(zip(thresholds, seeds), start=1):
        last = check(size, s_i)
        if not isinstance(last, CheckResult):
            raise ParameterError(f"check must return a CheckResult, got {type(last).__name__}")
        p = float(last.p_value)
        if not 0.0 <= p <= 1.0 or math.isnan(p):
            raise ParameterError(f"check returned p-value {p!r}, outside [0, 1]")
        if p <= beta:
            decision = "reject"
        elif p > accept_above or i == k:
            decision = "accept"
        else:
            decision = "continue"
        stages.append(Stage(i, size, s_i, p, beta, accept_above, decision))
        if decision != "continue":
            break
        if schedule == "doubling" or i == 1:
            size = math.ceil(size * growth)
    assert last is not None
    final = stages[-1]
    p_scaled = min(1.0, final.p_value * alpha / final.reject_below)
    if decision == "reject":
        p_scaled = min(p_scaled, alpha * (1.0 - 1e-12))  # p ≤ β maps to ≤ α; keep `passed` strictly False
    else:
        p_scaled = max(p_scaled, alpha)
    return SequentialResult(
        result=CheckResult(
            name=f"sequential({last.name})",
            null_hypothesis=last.null_hypothesis,
            statistic=final.p_value,
            p_value=p_scaled,
            alpha=alpha,
            n=sum(s.n for s in stages),
            detectable_effect=last.detectable_effect,
            effect_unit=last.effect_unit,
            power=last.power,
            details={
                "statistic_meaning": "p-value of the deciding stage",
                "p_value_meaning": "deciding stage p-value * alpha / its reject threshold (decision-consistent)",
                "scheme": "Gandy & Scott 2020: beta=alpha/k, gamma=beta^(1/k), alpha/k spent per stage",
                "decision": decision,
                "stages_taken": len(stages),
                "max_stages": k,
                "schedule": schedule,
                "growth": growth,
                "stage_n": [s.n for s in stages],
                "stage_p_values": [s.p_value for s in stages],
                "detectable_effect_at": "the last stage's n",
                "seed": seed,
            },
        ),
        stages=stages,
    )


def assert_sequential(
    check: StageCheck,
    *,
    n: int,
    alpha: float = DEFAULT_ALPHA,
    max_stages: int = 3,
    growth: float = 2.0,
    schedule: str = "doubling",
    seed: int = 0,
) -> SequentialResult:
    """Raise CheckFailed unless ``check_sequential`` accepts H0; return the result with its stages."""
    res = check_sequential(
        check, n=n, alpha=alpha, max_stages=max_stages, growth=growth, schedule=schedule, seed=seed
    )
    res.result.raise_if_rejected()
    return res


# Planning. Stage 1 runs the wrapped check on n samples and rejects when p₁ ≤ β₁ = α/k, so the
# sequential test rejects at least as often as the wrapped check run once at level α/k on n samples:
# the wrapped check's own planner at α/k gives a conservative (never optimistic) plan for stage 1's n.
# Later stages only add power; they are not counted.

RequiredSamples = Callable[..., int]
DetectableEffect = Callable[..., float]


def sequential_required_samples(
    effect: float,
    *,
    planner: RequiredSamples,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    max_stages: int = 3,
) -> int:
    """Stage-1 n at which ``check_sequential`` detects ``effect`` w.p. >= ``power`` (conservative).

    ``planner`` is the wrapped check's ``X_required_samples`` (other arguments bound, e.g. with
    ``functools.partial``); it is called at level alpha / max_stages, stage 1's reject threshold.
    """
    if not callable(planner):
        raise ParameterError("planner must be the wrapped check's X_required_samples(effect, *, alpha, power)")
    alpha = probability("alpha", alpha)
    k = positive_int("max_stages", max_stages)
    return int(planner(effect, alpha=alpha / k, power=power))


def sequential_detectable_effect(
    n: int,
    *,
    planner: DetectableEffect,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    max_stages: int = 3,
) -> float:
    """Effect that ``check_sequential`` with stage-1 size ``n`` detects w.p. >= ``power`` (conservative).

    ``planner`` is the wrapped check's ``X_detectable_effect(n, *, alpha, power)``, called at level
    alpha / max_stages.
    """
    if not callable(planner):
        raise ParameterError("planner must be the wrapped check's X_detectable_effect(n, *, alpha, power)")
    alpha = probability("alpha", alpha)
    k = positive_int("max_stages", max_stages)
    return float(planner(n, alpha=alpha / k, power=power))


sequential_check = deprecated_alias(__name__, "sequential_check", check_sequential)
