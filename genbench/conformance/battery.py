"""``check_sampler``: run the planned battery on a sampler given by the adapter protocol, then judge it.

The adapter protocol (fixed, so anyone can write one):

* a *factory* ``factory(target) -> run``, called once per target, ``target`` a
  :class:`genbench.conformance.Target`;
* ``run(x0, steps, step_size, seed)`` with ``x0`` a float64 numpy array (N, d) of independent
  starting points, ``steps`` an int, ``step_size`` a float (the Langevin step μ of
  x + μ·score(x) + √(2μ)·ξ; an adapter for another parameterisation converts it), ``seed`` an int;
  it returns the N chains' states after ``steps`` steps as anything ``numpy.asarray`` accepts
  (numpy, torch on CPU, JAX arrays). The chains must be independent of each other.

Each run's output is checked (shape (N, d), finite) before any statistic is computed; a factory or
run that raises, or returns the wrong shape or non-finite values, raises :class:`AdapterError`
naming the target and the call. Every test's p-value then enters Holm's step-down procedure at the
family-wise level ``alpha``: the probability that a correct sampler fails the battery is at most
``alpha``, whatever the dependence between the tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.stats

from genbench._validate import probability
from genbench.conformance import plan as _plan
from genbench.conformance.result import AdapterError, ConformanceReport, ConformanceRow, holm
from genbench.conformance.targets import Target, resolve_targets
from genbench.errors import ParameterError
from genbench.testing import check_cov, check_gaussian_shape, check_ksd, check_mean
from genbench.testing._result import CheckResult
from genbench.testing.sequential import sequential_thresholds
from genbench.testing.shape import gaussian_shape_detectable_effect

__all__ = ["check_sampler", "Factory", "RunFn"]

RunFn = Callable[[np.ndarray, int, float, int], Any]
Factory = Callable[[Target], RunFn]

SEED_BITS = 31  # sampler seeds below 2**31: accepted by numpy, torch and jax.random.key alike


def _seeds(seed: int, index: int, stage: int = 0) -> tuple[int, int]:
    """(sampler seed, kit seed) for run ``index`` (and sequential ``stage``): independent streams from one seed."""
    key = [seed, index, 0x636F6E66] + ([stage] if stage else [])
    state = np.random.SeedSequence(key).generate_state(2, dtype=np.uint32)
    return int(state[0]) >> (32 - SEED_BITS), int(state[1])


def _name(factory: Any) -> str:
    mod = getattr(factory, "__module__", None)
    qual = getattr(factory, "__qualname__", None) or type(factory).__name__
    return f"{mod}:{qual}" if mod else str(qual)


def _call_factory(factory: Factory, target: Target) -> RunFn:
    try:
        run = factory(target)
    except Exception as exc:  # the user's code: any failure is reported as bad input
        raise AdapterError(f"factory(target={target.name!r}) raised {type(exc).__name__}: {_one_line(exc)}") from exc
    if not callable(run):
        raise AdapterError(
            f"factory(target={target.name!r}) must return a callable run(x0, steps, step_size, seed), "
            f"got {type(run).__name__}"
        )
    return run


def _one_line(exc: BaseException) -> str:
    # CLI errors are one line: the user's exception text may span several.
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _as_array(out: Any) -> np.ndarray:
    if hasattr(out, "detach") and hasattr(out, "cpu"):  # torch tensor (possibly requiring grad / on GPU)
        out = out.detach().cpu().double().numpy()
    # A copy: outputs may be read-only views (JAX) or alias the sampler's buffers.
    return np.array(out, dtype=np.float64)


def _call_run(run: RunFn, target: Target, x0: np.ndarray, steps: int, step_size: float, seed: int) -> np.ndarray:
    call = f"run(x0=<array {x0.shape[0]}x{x0.shape[1]}>, steps={steps}, step_size={step_size:.6g}, seed={seed})"
    where = f"target {target.name!r}: {call}"
    try:
        out = run(x0.copy(), steps, step_size, seed)
    except Exception as exc:
        raise AdapterError(f"{where} raised {type(exc).__name__}: {_one_line(exc)}") from exc
    try:
        arr = _as_array(out)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise AdapterError(f"{where} returned {type(out).__name__}, not convertible to a float64 array: {_one_line(exc)}") from exc
    if arr.shape != x0.shape:
        raise AdapterError(f"{where} returned shape {arr.shape}; expected {x0.shape} (chains, d)")
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        rows = int(np.count_nonzero(~np.isfinite(arr).all(axis=1)))
        raise AdapterError(f"{where} returned {bad} non-finite values in {rows} of {arr.shape[0]} chains")
    return arr


# ---------------------------------------------------------------------------------------------- tests


def _movement(x0: np.ndarray, x: np.ndarray, alpha: float) -> CheckResult:
    """H0: each chain moves with probability >= MIN_MOVED (one-sided exact binomial)."""
    n = x.shape[0]
    moved = int(np.count_nonzero((x != x0).any(axis=1)))
    return CheckResult(
        name="movement",
        null_hypothesis=f"each chain moves within the run with probability >= {_plan.MIN_MOVED:g}",
        statistic=moved / n,
        p_value=float(scipy.stats.binom.cdf(moved, n, _plan.MIN_MOVED)),
        alpha=alpha,
        n=n,
        details={"moved": moved, "statistic_meaning": "fraction of chains that moved"},
    )


def _projections(x: np.ndarray, target: Target, alpha: float, power: float, seed: int) -> CheckResult:
    """H0: x are i.i.d. from ``target``: KS on K random projections and the mode axis vs exact marginals."""
    n, d = x.shape
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((_plan.PROJECTIONS, d))
    dirs = [v / np.linalg.norm(v) for v in u]
    if target.weights.size > 1:  # the axis through the two heaviest modes sees the mode weights
        top = np.argsort(target.weights)[-2:]
        axis = target.means[top[1]] - target.means[top[0]]
        if np.linalg.norm(axis) > 0:
            dirs.append(axis / np.linalg.norm(axis))
    tests = len(dirs)
    res = [scipy.stats.kstest(x @ v, lambda t, v=v: target.marginal_cdf(v, t)) for v in dirs]
    pvals = [float(r.pvalue) for r in res]
    stats = [float(r.statistic) for r in res]
    return CheckResult(
        name="projections_ks",
        null_hypothesis="samples are i.i.d. from the target (KS on 1-D projections against its exact marginals)",
        statistic=max(stats),
        p_value=min(1.0, tests * min(pvals)),
        alpha=alpha,
        n=n,
        detectable_effect=gaussian_shape_detectable_effect(n, alpha=alpha, power=power, projections=tests - 1),
        effect_unit="KS distance of one 1-D projection",
        power=power,
        details={"correction": f"Bonferroni over {tests} KS tests", "projection_ks": stats,
                 "projection_p_values": pvals},
    )


def _law(run: _plan.Run, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact law (mean, cov) the run's output after ``steps`` steps must follow under H0."""
    t = run.target
    if run.check == "ula_law":
        from genbench.langevin.theory import ula_law

        law = ula_law(t.to_torch(), run.step_size, steps, run.x0)
        return law.mean, law.cov
    return t.mean, t.cov


def _evaluate(run: _plan.Run, steps: int, x0: np.ndarray, x: np.ndarray, level: float, power: float,
              kit_seed: int) -> list[tuple[str, CheckResult]]:
    t = run.target
    out: list[tuple[str, CheckResult]] = []
    mean, cov = _law(run, steps) if t.is_gaussian else (t.mean, t.cov)
    for test in run.tests:
        if test == "mean":
            r = check_mean(x, mean, cov, alpha=level, power=power)
        elif test == "cov":
            r = check_cov(x, cov, alpha=level, power=power)
        elif test == "shape":
            r = check_gaussian_shape(x, mean, cov, alpha=level, projections=_plan.shape_projections(t.dim),
                                     seed=kit_seed, power=power)
        elif test == "projections":
            r = _projections(x, t, level, power, kit_seed)
        elif test == "movement":
            r = _movement(x0, x, level)
        elif test == "ksd":
            # The bootstrap p-value's resolution must reach the row's level.
            n_boot = max(999, math.ceil(2.0 / level))
            r = check_ksd(x, t.to_torch(), alpha=level, seed=kit_seed, n_boot=n_boot)
        else:  # pragma: no cover - plan and evaluation are kept in step
            raise AssertionError(test)
        out.append((test, r))
    return out


_H0 = {
    "ula_law": "x_T ~ the exact ULA law N(mean_T, cov_T) from the fixed start",
    "invariance": "chains started from exact target draws still follow the target after T steps",
    "convergence": "after the planned burn-in T from the fixed start, chains follow the target",
    "stein": "after the planned burn-in T from the fixed start, chains follow the target",
}


def check_sampler(
    factory: Factory,
    kind: str,
    *,
    targets: str | Target | Iterable[Any] = "default",
    alpha: float = 0.01,
    effect: Mapping[str, float] | None = None,
    power: float = 0.9,
    seed: int = 0,
    sequential: bool = False,
    fail_fast: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ConformanceReport:
    """Run the conformance battery for ``kind`` ('ula', 'exact' or 'unknown') on a sampler factory.

    ``targets``: 'default' (gauss1d, gauss2d, diag10, mixture2d), 'all' (adds dense50), names, or
    targets (``genbench.conformance.gaussian(...)``). ``effect``: a mapping overriding
    ``DEFAULT_EFFECT`` (mean: Mahalanobis shift, cov: relative covariance error, shape: KS
    distance) that every test detects with probability ``power`` at its planning level alpha/m.
    The family-wise level of the verdict is ``alpha`` (Holm). ``seed`` fixes every run's seed.
    ``sequential``: decide each run in Gandy-Scott stages on fresh chains (Bonferroni shares of
    alpha across runs; fewer chains for a correct sampler, see ``genbench.conformance.plan``).
    ``fail_fast``: run the cheapest runs first and stop at the first rejection (a p-value at or
    below alpha/m, Holm's first level, or a rejected sequential run): the verdict is then "fail"
    whatever the remaining tests say; the report holds the rows that ran.
    """
    if not callable(factory):
        raise ParameterError(f"factory must be callable as factory(target) -> run, got {type(factory).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    alpha = probability("alpha", alpha)
    power = probability("power", power)
    tlist = resolve_targets(targets)
    plan = _plan.plan_battery(tlist, kind, alpha=alpha, effect=effect, power=power, sequential=bool(sequential))
    say = progress or (lambda _msg: None)

    t_start = time.perf_counter()
    acc = {"sampler_s": 0.0, "chain_steps": 0, "chains": 0}
    runners: dict[str, RunFn] = {}

    def sample(run: _plan.Run, chains: int, steps: int, stage: int) -> tuple[np.ndarray, np.ndarray, int]:
        t = run.target
        if t.name not in runners:
            runners[t.name] = _call_factory(factory, t)
        sampler_seed, kit_seed = _seeds(int(seed), run.index, stage)
        rng = np.random.default_rng(kit_seed)
        if run.start == "exact":
            x0 = t.sample(chains, rng)
        else:
            assert run.x0 is not None
            x0 = np.broadcast_to(run.x0, (chains, t.dim)).copy()
        tag = f" (stage {stage + 1})" if plan.sequential else ""
        say(f"{t.name}: {run.check}{tag} step {run.step_size:.3g}, {steps} steps x {chains} chains")
        t0 = time.perf_counter()
        x = _call_run(runners[t.name], t, x0, steps, run.step_size, sampler_seed)
        acc["sampler_s"] += time.perf_counter() - t0
        acc["chain_steps"] += chains * steps
        acc["chains"] += chains
        return x0, x, kit_seed

    order = sorted(plan.runs, key=lambda r: (r.chains * r.steps, r.index)) if fail_fast else plan.runs
    done: list[_Outcome] = []
    for run in order:
        out = _run_sequential(run, sample, power) if plan.sequential else _run_once(run, sample, plan, power)
        done.append(out)
        if fail_fast and out.rejected(plan):
            break

    done.sort(key=lambda o: o.run.index)  # report order is the plan's, whatever the run order
    n_ran = sum(len(o.results) for o in done)
    if plan.sequential:
        levels = [o.level for o in done for _ in o.results]
        rejected = [o.decision == "reject" and r.p_value <= o.level for o in done for _, r in o.results]
    else:
        levels, rejected = holm([r.p_value for o in done for _, r in o.results], alpha, m=plan.tests)
    rows = []
    k = 0
    for o in done:
        for test, res in o.results:
            rows.append(_row(o, test, res, levels[k], rejected[k], plan))
            k += 1
    total_s = time.perf_counter() - t_start
    timing = {
        "total_seconds": total_s,
        "sampler_seconds": acc["sampler_s"],
        "kit_seconds": total_s - acc["sampler_s"],
        "chains": float(acc["chains"]),
        "chain_steps": float(acc["chain_steps"]),
        "kit_chains_per_second": acc["chains"] / max(total_s - acc["sampler_s"], 1e-9),
    }
    stopped = n_ran < plan.tests
    return ConformanceReport(
        sampler=_name(factory),
        kind=plan.kind,
        alpha=alpha,
        power=power,
        effect=plan.effect,
        seed=int(seed),
        correction=plan.correction,
        targets=[{"name": t.name, "dim": t.dim, "description": t.description,
                  "gaussian": t.is_gaussian} for t in tlist],
        rows=rows,
        timing=timing,
        notes=plan.notes + ([f"fail_fast: stopped after {n_ran} of {plan.tests} tests, at the first rejection"]
                            if stopped else []),
    )


@dataclass
class _Outcome:
    """One run's tests as decided: the last stage's results, its level and the stages taken."""

    run: _plan.Run
    results: list[tuple[str, CheckResult]]
    level: float
    decision: str = ""
    stages: list[dict[str, Any]] = field(default_factory=list)

    def rejected(self, plan: _plan.Plan) -> bool:
        if plan.sequential:
            return self.decision == "reject"
        return any(r.p_value <= plan.planning_alpha for _, r in self.results)


Sampler = Callable[[_plan.Run, int, int, int], tuple[np.ndarray, np.ndarray, int]]


def _run_once(run: _plan.Run, sample: Sampler, plan: _plan.Plan, power: float) -> _Outcome:
    x0, x, kit_seed = sample(run, run.chains, run.steps, 0)
    return _Outcome(run, _evaluate(run, run.steps, x0, x, plan.planning_alpha, power, kit_seed), plan.planning_alpha)


def _run_sequential(run: _plan.Run, sample: Sampler, power: float) -> _Outcome:
    """Gandy & Scott's stages on fresh chains: reject at p <= β_i/r, accept above (γ + β_i)/r."""
    assert run.alpha_run is not None
    r = len(run.tests)
    thresholds = sequential_thresholds(run.alpha_run, len(run.stage_chains))
    stages: list[dict[str, Any]] = []
    for i, ((beta, accept_above), chains, steps) in enumerate(zip(thresholds, run.stage_chains, run.stage_steps)):
        x0, x, kit_seed = sample(run, chains, steps, i)
        level = beta / r
        results = _evaluate(run, steps, x0, x, level, power, kit_seed)
        p_min = min(res.p_value for _, res in results)
        if p_min <= level:
            decision = "reject"
        elif p_min > accept_above / r or i == len(thresholds) - 1:
            decision = "accept"
        else:
            decision = "continue"
        stages.append({"stage": i + 1, "chains": chains, "steps": steps, "min_p": p_min,
                       "reject_at_or_below": level, "accept_above": accept_above / r, "decision": decision})
        if decision != "continue":
            return _Outcome(run, results, level, decision, stages)
    raise AssertionError("unreachable: the last stage always decides")  # pragma: no cover


def _row(o: _Outcome, test: str, res: CheckResult, level: float, rejected: bool, plan: _plan.Plan) -> ConformanceRow:
    run = o.run
    extra: dict[str, Any] = {"check_name": res.name, "planning_alpha": plan.planning_alpha}
    if run.note:
        extra["plan_note"] = run.note
    if o.stages:
        extra.update(alpha_run=run.alpha_run, stages=o.stages, decision=o.decision)
    return ConformanceRow(
        target=run.target.name,
        check=run.check,
        test=test,
        step_size=run.step_size,
        steps=o.stages[-1]["steps"] if o.stages else run.steps,
        start=run.start_label,
        null_hypothesis=f"{_H0[run.check]}: {res.null_hypothesis}",
        statistic=float(res.statistic),
        p_value=float(res.p_value),
        alpha=level,
        n=res.n,
        detectable_effect=res.detectable_effect,
        effect_unit=res.effect_unit,
        power=res.power,
        passed=not rejected,
        details={**{k: v for k, v in res.details.items() if _small(v)}, **extra},
    )


def _small(v: Any) -> bool:
    """Keep scalar and short details in the report (drop long per-projection lists)."""
    if isinstance(v, (list, tuple)):
        return len(v) <= 8
    return not isinstance(v, dict)
