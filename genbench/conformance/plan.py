"""The battery's plan: which runs each kind gets on each target, their step sizes, step counts and chains.

Everything here is computed from the target's spectrum and the requested (alpha, effect, power),
before the sampler is called, so the plan is printed in the report and reproducible from it.

Step sizes are Langevin step sizes μ (proposal x + μ·score(x) + √(2μ)·ξ), set from the largest
eigenvalue κ of the target's precision: the ULA stability bound is 2/κ.

* ``ula``: μ ∈ {1/κ, 1/(4κ)} (half and an eighth of the stability bound); at each, the exact law of
  x_T from the fixed start x0 = 0 after T = 1 step (transient: the noise law and the drift at x0)
  and after the near-stationary T at which the slowest direction keeps ≤ 5% of its start offset
  (``genbench.langevin.theory.mixing_time``). Tests: mean (χ²), covariance (likelihood ratio),
  shape (KS on radii and projections), each against N(mean_T, cov_T). Plus a resolution probe: one
  step from x0 = mean at μ = ``RESOLUTION_STEP``/κ, exact law N(mean, 2μI): noise of 1.4% of the
  smallest standard deviation, which a state kept in half precision (bfloat16/float16 autocast)
  rounds away next to the mean, while float32 resolves it for any target scale up to ~10⁵.
* ``exact``: invariance at μ ∈ {1/κ, 1/(4κ)}: chains start from exact target draws and must still
  follow the target after ``INVARIANCE_STEPS`` steps (mean, covariance, shape; the mixture: KS on
  projections against its exact marginals), and must move. Convergence (Gaussian targets): from
  x0 = 0 at μ = 1/κ, after a burn-in B planned from the spectrum (below), mean, covariance, shape.
* ``unknown``: from x0 = 0 at μ = 1/κ after the planned burn-in: kernel Stein discrepancy and shape.

Burn-in: a Langevin-type sampler contracts each eigen-direction of the target (precision
eigenvalue λ) by about 1 − a·μ·λ per step, a its acceptance rate. B is the smallest step count at
which, with a = ``MIN_ACCEPTANCE``, the remaining start offset (in Mahalanobis units, summed over
directions) and the remaining covariance deficit of the slowest direction are both below
``BIAS_TOLERANCE``/√n: a residual bias that raises a test's noncentrality by at most
``BIAS_TOLERANCE``² = 0.09, negligible against the planned effects. A sampler that mixes more
slowly than that fails the convergence check (MALA's acceptance at μ = 1/κ is 0.57-0.97 on the
catalogue targets).

Sequential mode (``sequential=True``): each run gets the share alpha·r/m of the family's level (r
its tests, Bonferroni across runs) and is decided in up to ``SEQUENTIAL_STAGES`` stages on fresh
chains (Gandy & Scott 2020, ``genbench.testing.sequential_thresholds``; n doubles each stage); its
stage-1 chains are the fewest at which a union lower bound on the whole procedure's power reaches
``power`` for every test (``sequential_chains``). A correct sampler mostly stops after stage 1.

Chains per run: the largest sample size any of its tests needs to detect the requested effect with
the requested power at the planning level alpha/m (m tests in the whole battery: Holm's first,
strictest level), from genbench's planners.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from genbench._validate import choice, probability
from genbench.conformance.targets import Target
from genbench.errors import ParameterError
from genbench.planning import power as planned_power
from genbench.planning import required_samples
from genbench.testing.sequential import sequential_thresholds
from genbench.testing.shape import gaussian_shape_required_samples

__all__ = [
    "KINDS",
    "DEFAULT_EFFECT",
    "Run",
    "Plan",
    "plan_battery",
    "burn_in",
    "step_sizes",
]

KINDS = ("ula", "exact", "unknown")
# Mahalanobis mean shift, relative covariance error of one whitened direction, KS distance.
DEFAULT_EFFECT: dict[str, float] = {"mean": 0.1, "cov": 0.25, "shape": 0.05}
EFFECT_KEYS = ("mean", "cov", "shape")
INVARIANCE_STEPS = 10
# Movement: under a correct exact sampler each chain moves within INVARIANCE_STEPS steps with
# probability >= MIN_MOVED (a per-step acceptance above 6.7% suffices). An identity kernel moves none.
MIN_MOVED = 0.5
NEAR_STATIONARY_TOL = 0.05
MIN_ACCEPTANCE = 0.5
BIAS_TOLERANCE = 0.3
PROJECTIONS = 16
MIN_CHAINS = 500
RESOLUTION_STEP = 1e-4  # the resolution probe's μ·κ (see the module docstring)
SEQUENTIAL_STAGES = 3
SEQUENTIAL_GROWTH = 2


@dataclass(frozen=True)
class Run:
    """One call of the sampler: ``chains`` chains from ``start`` for ``steps`` steps of size ``step_size``."""

    target: Target
    check: str  # "ula_law", "invariance", "convergence", "stein"
    tests: tuple[str, ...]  # "mean", "cov", "shape", "projections", "movement", "ksd"
    step_size: float
    steps: int
    start: str  # "fixed" (every chain at x0) or "exact" (exact target draws)
    x0: np.ndarray | None
    chains: int
    index: int  # position in the battery (seeds derive from it)
    note: str = ""
    # Sequential mode only: the run's share of alpha and each stage's chains and steps.
    alpha_run: float | None = None
    stage_chains: tuple[int, ...] = ()
    stage_steps: tuple[int, ...] = ()

    @property
    def start_label(self) -> str:
        """Human-readable start: 'x0=0' or 'exact draws'."""
        if self.start == "exact":
            return "exact draws"
        assert self.x0 is not None
        if not np.any(self.x0):
            return "x0=0"
        if np.array_equal(self.x0, self.target.mean):
            return "x0=mean"
        return f"x0={np.array2string(self.x0, precision=3)}"


@dataclass(frozen=True)
class Plan:
    """Every run of the battery and the planning level each test was sized at."""

    kind: str
    alpha: float
    power: float
    effect: dict[str, float]
    runs: list[Run]
    planning_alpha: float
    tests: int
    notes: list[str]
    sequential: bool = False

    @property
    def correction(self) -> str:
        """How the family-wise level is held, in words."""
        if self.sequential:
            return (f"Bonferroni over runs (alpha*r/m each, m = {self.tests} tests), Gandy-Scott sequential "
                    f"within each run ({SEQUENTIAL_STAGES} stages, n x{SEQUENTIAL_GROWTH} per stage)")
        return f"Holm step-down over {self.tests} tests (planned at alpha/m = {self.planning_alpha:.3g})"


def validate_effect(effect: Mapping[str, float] | None) -> dict[str, float]:
    """The effect mapping with defaults filled in; ParameterError for unknown keys or bad values."""
    out = dict(DEFAULT_EFFECT)
    if effect is None:
        return out
    if not isinstance(effect, Mapping):
        raise ParameterError(
            f"effect must be a mapping with keys among {', '.join(EFFECT_KEYS)} "
            f"(e.g. {{'mean': 0.1, 'cov': 0.25, 'shape': 0.05}}), got {effect!r}"
        )
    for key, value in effect.items():
        if key not in EFFECT_KEYS:
            raise ParameterError(f"effect keys must be among {', '.join(EFFECT_KEYS)}, got {key!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            raise ParameterError(f"effect[{key!r}] must be a finite number, got {value!r}")
        v = float(value)
        if key == "mean" and v <= 0 or key == "cov" and (v <= 0) or key == "shape" and not 0 < v < 1:
            allowed = "in (0, 1)" if key == "shape" else "> 0"
            raise ParameterError(f"effect[{key!r}] must be {allowed}, got {value!r}")
        out[key] = v
    return out


def step_sizes(target: Target) -> tuple[float, float]:
    """(large, small) Langevin step sizes for a target: 1/κ and 1/(4κ), κ = λ_max of its precision."""
    _, kappa = target.spectrum()
    return 1.0 / kappa, 0.25 / kappa


def burn_in(target: Target, step_size: float, chains: int, x0: np.ndarray) -> int:
    """Planned burn-in B from the fixed start ``x0`` (see the module docstring).

    Per eigen-direction i of the target's covariance (precision eigenvalue λ_i, start offset c_i in
    standard deviations), the planned contraction is ρ_i = 1 − a·μ·λ_i; B is the smallest step count
    with √(Σ c_i² ρ_i^{2B}) ≤ tol (mean) and ρ_min^{2B} ≤ tol (covariance), tol = BIAS_TOLERANCE/√n.
    """
    var, vecs = np.linalg.eigh(target.cov)
    lam = 1.0 / var
    offset = (vecs.T @ (x0 - target.mean)) / np.sqrt(var)
    rho = np.clip(1.0 - MIN_ACCEPTANCE * step_size * lam, 0.0, None)
    tol = BIAS_TOLERANCE / math.sqrt(chains)
    rate = -math.log(float(rho.max()))

    def ok(b: int) -> bool:
        return math.sqrt(float(np.sum(offset**2 * rho ** (2 * b)))) <= tol and 2 * b * rate >= math.log(1.0 / tol)

    hi = 1
    while not ok(hi):
        hi *= 2
    lo = hi // 2
    while hi - lo > 1:  # the residual is decreasing in B: bisect
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def near_stationary_steps(target: Target, step_size: float) -> int:
    """ULA steps after which the slowest direction keeps <= 5% of its start offset."""
    from genbench.langevin.theory import mixing_time

    return max(2, mixing_time(target.to_torch(), step_size, tol=NEAR_STATIONARY_TOL))


def shape_projections(d: int) -> int:
    """Random projections the shape test uses in ``d`` dimensions."""
    # In 1-D the radius test and one projection (the axis) already see the whole law.
    return 1 if d == 1 else PROJECTIONS


def chains_for(tests: tuple[str, ...], d: int, effect: dict[str, float], level: float, power: float) -> int:
    """Chains a run needs so each of its tests detects its effect with ``power`` at ``level``."""
    need = [MIN_CHAINS]
    for t in tests:
        if t == "mean":
            need.append(required_samples("mean", effect["mean"], alpha=level, power=power, d=d))
        elif t == "cov":
            need.append(required_samples("cov", effect["cov"], alpha=level, power=power, d=d))
        elif t in ("shape", "projections", "ksd"):
            # KSD has no closed-form power: it gets the shape check's sample size.
            k = shape_projections(d) if t != "projections" else PROJECTIONS + 1
            need.append(gaussian_shape_required_samples(effect["shape"], alpha=level, power=power, projections=k))
    return max(need)


def test_power(test: str, d: int, effect: dict[str, float], n: int, level: float) -> float:
    """Power (a lower bound for the KS tests) of one test at n chains and ``level``; 1 for unplanned tests."""
    if test == "mean":
        return planned_power("mean", effect["mean"], n, alpha=level, d=d)
    if test == "cov":
        return planned_power("cov", effect["cov"], n, alpha=level, d=d) if n >= d + 2 else 0.0
    if test in ("shape", "projections", "ksd"):
        k = (shape_projections(d) if test != "projections" else PROJECTIONS + 1) + 1
        # The DKWM guarantee of genbench.testing.shape: detected w.p. >= 1 - 2exp(-2n(D - t)^2).
        gap = effect["shape"] - math.sqrt(math.log(2.0 * k / level) / (2.0 * n))
        return 0.0 if gap <= 0 else max(0.0, 1.0 - 2.0 * math.exp(-2.0 * n * gap * gap))
    return 1.0


def sequential_chains(tests: tuple[str, ...], d: int, effect: dict[str, float], alpha_run: float,
                      power: float) -> int:
    """Stage-1 chains at which the sequential run detects each test's effect with prob >= ``power``.

    Union bound: P(reject) >= 1 − Σ_{j<K} P(accept at stage j) − P(not reject at stage K), with
    P(accept at j) <= 1 − power_j(level (γ + β_j)/r) and stage j's n = n1·growth^(j−1).
    """
    r = len(tests)
    th = sequential_thresholds(alpha_run, SEQUENTIAL_STAGES)

    def bound(n1: int, test: str) -> float:
        miss = 0.0
        for j, (beta, accept_above) in enumerate(th):
            nj = n1 * SEQUENTIAL_GROWTH**j
            last = j == len(th) - 1
            miss += 1.0 - test_power(test, d, effect, nj, (beta if last else min(accept_above, 0.5)) / r)
        return 1.0 - miss

    need = MIN_CHAINS
    for test in tests:
        if test == "movement":
            continue
        hi = need
        while bound(hi, test) < power:
            hi *= 2
        lo = hi // 2 if hi > need else need - 1
        while hi - lo > max(1, hi // 200):  # ~0.5% precision: the Monte Carlo power is that noisy anyway
            mid = (lo + hi) // 2
            if bound(mid, test) >= power:
                hi = mid
            else:
                lo = mid
        need = max(need, hi)
    return need


def plan_battery(
    targets: list[Target],
    kind: str,
    *,
    alpha: float,
    effect: Mapping[str, float] | None,
    power: float,
    sequential: bool = False,
) -> Plan:
    """Every run of the battery for ``kind`` on ``targets``, sized for (alpha, effect, power)."""
    kind = choice("kind", kind, KINDS)
    alpha = probability("alpha", alpha)
    power = probability("power", power)
    eff = validate_effect(effect)
    if sequential and kind == "unknown":
        # The kernel Stein test's bootstrap would need ~2r/β₁ replicates to reach stage 1's level.
        raise ParameterError("sequential applies to kinds 'ula' and 'exact' only (not 'unknown')")
    notes: list[str] = []
    # First pass: the runs' shapes (tests per run), to count the battery's m before sizing anything.
    specs: list[dict[str, Any]] = []
    for t in targets:
        big, small = step_sizes(t)
        x0 = np.zeros(t.dim)
        if kind == "ula":
            if not t.is_gaussian:
                notes.append(f"{t.name}: skipped for kind 'ula' (ULA has an exact law on Gaussian targets only)")
                continue
            for mu in (big, small):
                for steps in (1, near_stationary_steps(t, mu)):
                    specs.append(dict(target=t, check="ula_law", tests=("mean", "cov", "shape"), step_size=mu,
                                      steps=steps, start="fixed", x0=x0))
            specs.append(dict(target=t, check="ula_law", tests=("mean", "cov", "shape"),
                              step_size=RESOLUTION_STEP * big, steps=1, start="fixed", x0=t.mean.copy()))
        elif kind == "exact":
            tests = ("mean", "cov", "shape", "movement") if t.is_gaussian else ("projections", "movement")
            for mu in (big, small):
                specs.append(dict(target=t, check="invariance", tests=tests, step_size=mu, steps=INVARIANCE_STEPS,
                                  start="exact", x0=None))
            if t.is_gaussian:
                specs.append(dict(target=t, check="convergence", tests=("mean", "cov", "shape"), step_size=big,
                                  steps=None, start="fixed", x0=x0))
            else:
                notes.append(
                    f"{t.name}: no convergence check (a multimodal target has no burn-in bound from its spectrum); "
                    "invariance from exact draws judges its law"
                )
        else:
            tests = ("ksd", "shape") if t.is_gaussian else ("ksd", "projections")
            specs.append(dict(target=t, check="stein", tests=tests, step_size=big, steps=None, start="fixed", x0=x0))
    if not specs:
        raise ParameterError(f"targets: none of the chosen targets applies to kind {kind!r} (ula needs a Gaussian)")
    m = sum(len(s["tests"]) for s in specs)
    level = alpha / m
    runs = []
    for i, s in enumerate(specs):
        t: Target = s["target"]
        extra: dict[str, Any] = {}
        if sequential:
            a_run = alpha * len(s["tests"]) / m
            n1 = sequential_chains(s["tests"], t.dim, eff, a_run, power)
            stage_chains = tuple(n1 * SEQUENTIAL_GROWTH**j for j in range(SEQUENTIAL_STAGES))
            extra = {"alpha_run": a_run, "stage_chains": stage_chains}
            chains = n1
        else:
            stage_chains = ()
            chains = chains_for(s["tests"], t.dim, eff, level, power)
        note = ""
        if s["steps"] is None:
            # The burn-in's residual bias is planned against each stage's own n.
            stage_steps = tuple(burn_in(t, s["step_size"], n, s["x0"]) for n in (stage_chains or (chains,)))
            note = f"burn-in planned for acceptance >= {MIN_ACCEPTANCE:g} (see genbench.conformance.plan)"
        else:
            stage_steps = tuple(s["steps"] for _ in (stage_chains or (chains,)))
        if sequential:
            extra["stage_steps"] = stage_steps
        runs.append(Run(index=i, chains=chains, note=note, **{**s, "steps": stage_steps[0]}, **extra))
    return Plan(kind=kind, alpha=alpha, power=power, effect=eff, runs=runs, planning_alpha=level, tests=m,
                notes=notes, sequential=sequential)
