"""genbench.conformance: targets, plan, adapter validation, CLI, and the battery on correct and broken samplers.

Budget (default run, conformance share <= 0.002): must-not-reject batteries at alpha 2e-4 (CLI pass,
genbench ULA, genbench MALA) and 1e-4 (the pytest-usage run, the sequential run), plus must-reject runs whose power is
computed from genbench's planners for the mutant's exact effect and declared at run time
(``record_check.declare(power=...)``, ~1 - 1e-30 each). The BlackJAX tests live in
tests/test_conformance_peers.py (skipped without jax).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from genbench.cli import main
from genbench.conformance import (
    AdapterError,
    catalogue,
    check_sampler,
    gaussian,
    plan_battery,
)
from genbench.conformance import adapters
from genbench.conformance.plan import (
    BIAS_TOLERANCE,
    MIN_ACCEPTANCE,
    NEAR_STATIONARY_TOL,
    burn_in,
    chains_for,
    step_sizes,
)
from genbench.conformance.result import holm
from genbench.conformance.targets import resolve_targets
from genbench.errors import ParameterError
from genbench.testing import offset_seed
from genbench.testing.power import cov_power_for_eigenvalues, power, required_samples
from genbench.testing.shape import gaussian_shape_required_samples

# ------------------------------------------------------------------------------------ helpers


def iid_exact(target):
    """An exact sampler with no Markov chain at all: fresh target draws (any steps, any start)."""

    def run(x0, steps, step_size, seed):
        return target.sample(x0.shape[0], np.random.default_rng(seed))

    return run


def iid_inflated(target):
    """Exact draws with the covariance inflated by 1.5 (a broken 'exact' sampler, numpy only)."""

    def run(x0, steps, step_size, seed):
        x = target.sample(x0.shape[0], np.random.default_rng(seed))
        return target.mean + math.sqrt(1.5) * (x - target.mean)

    return run


# ------------------------------------------------------------------------------------ targets


def test_catalogue_targets_have_the_promised_structure() -> None:
    cat = catalogue()
    assert set(cat) == {"gauss1d", "gauss2d", "diag10", "dense50", "mixture2d"}
    g2 = cat["gauss2d"]
    np.testing.assert_array_equal(g2.mean, [1.0, 1.0])
    np.testing.assert_array_equal(g2.cov, [[1.0, 0.9], [0.9, 1.0]])
    for name, cond in (("diag10", 1e2), ("dense50", 1e3)):
        ev = np.linalg.eigvalsh(cat[name].cov)
        assert ev.max() / ev.min() == pytest.approx(cond, rel=1e-9)
    dense = cat["dense50"].cov
    assert np.abs(dense - np.diag(np.diag(dense))).max() > 0.05  # rotated, not diagonal
    assert cat["dense50"].dim == 50 and cat["diag10"].dim == 10 and cat["gauss1d"].dim == 1
    assert not cat["mixture2d"].is_gaussian
    # The catalogue is deterministic (fixed-seed rotation).
    assert np.array_equal(catalogue()["dense50"].cov, dense)


@pytest.mark.parametrize("name", ["gauss1d", "gauss2d", "diag10", "dense50", "mixture2d"])
def test_target_score_is_the_gradient_of_log_prob(name: str) -> None:
    t = catalogue()[name]
    x = t.mean + np.linspace(-1, 1, 3 * t.dim).reshape(3, t.dim) * np.sqrt(np.diag(t.cov))
    h = 1e-6
    fd = np.stack(
        [(t.log_prob(x + h * e) - t.log_prob(x - h * e)) / (2 * h) for e in np.eye(t.dim)], axis=1
    )
    np.testing.assert_allclose(t.score(x), fd, rtol=1e-5, atol=1e-5 * np.abs(fd).max())


def test_mixture_moments_and_log_prob_are_exact() -> None:
    t = catalogue()["mixture2d"]
    w, mu, cov = t.weights, t.means, t.covs
    m = w @ mu
    second = sum(w[k] * (cov[k] + np.outer(mu[k], mu[k])) for k in range(2))
    np.testing.assert_allclose(t.mean, m, rtol=1e-14)
    np.testing.assert_allclose(t.cov, second - np.outer(m, m), rtol=1e-13, atol=1e-14)
    torch_t = t.to_torch()
    import torch

    x = np.array([[0.3, -0.2], [2.0, 1.0]])
    np.testing.assert_allclose(t.log_prob(x), torch_t.log_prob(torch.as_tensor(x)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(t.score(x), torch_t.score(torch.as_tensor(x)).numpy(), rtol=1e-10)


def test_marginal_cdf_matches_the_projected_components() -> None:
    t = catalogue()["mixture2d"]
    u = np.array([0.6, 0.8])
    tt = np.array([-2.0, 0.0, 1.5])
    import scipy.stats

    expect = sum(
        t.weights[k] * scipy.stats.norm.cdf(tt, t.means[k] @ u, math.sqrt(u @ t.covs[k] @ u)) for k in range(2)
    )
    np.testing.assert_allclose(t.marginal_cdf(u, tt), expect, rtol=1e-14)


def test_bad_targets_are_refused_with_the_parameter_named() -> None:
    with pytest.raises(ParameterError, match="cov must be positive definite"):
        gaussian([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ParameterError, match="cov must be symmetric"):
        gaussian([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ParameterError, match=r"cov must have shape \(2, 2\)"):
        gaussian([0.0, 0.0], [[1.0]])
    with pytest.raises(ParameterError, match="unknown target 'nope'"):
        resolve_targets("gauss2d,nope")
    with pytest.raises(ParameterError, match="targets entries"):
        resolve_targets([3.0])


def test_user_targets_from_genbench_gaussians_and_names() -> None:
    from genbench.targets import Gaussian

    ts = resolve_targets([Gaussian([0.0, 1.0], [[2.0, 0.3], [0.3, 1.0]]), "gauss1d", gaussian([1.0], [[2.0]])])
    assert [t.dim for t in ts] == [2, 1, 1]
    np.testing.assert_allclose(ts[0].cov, [[2.0, 0.3], [0.3, 1.0]])
    assert len({t.name for t in ts}) == 3
    assert [t.name for t in resolve_targets("default")] == ["gauss1d", "gauss2d", "diag10", "mixture2d"]
    assert "dense50" in [t.name for t in resolve_targets("all")]


# ------------------------------------------------------------------------------------ plan


def test_holm_step_down_levels_and_rejections() -> None:
    levels, rej = holm([0.001, 0.2, 0.004, 0.03], 0.05)
    # Ranks: 0.001 (a/4), 0.004 (a/3), 0.03 (a/2 = 0.025: stop), 0.2 (a/1).
    assert levels == pytest.approx([0.0125, 0.05, 0.05 / 3, 0.025])
    assert rej == [True, False, True, False]
    assert holm([0.5, 0.5], 0.01)[1] == [False, False]


@pytest.mark.parametrize("kind", ["ula", "exact", "unknown"])
def test_every_run_has_the_planned_sample_size(kind: str) -> None:
    targets = resolve_targets("default")
    plan = plan_battery(targets, kind, alpha=0.01, effect=None, power=0.9)
    assert plan.tests == sum(len(r.tests) for r in plan.runs)
    assert plan.planning_alpha == pytest.approx(0.01 / plan.tests)
    for run in plan.runs:
        d = run.target.dim
        for test in run.tests:
            if test == "mean":
                need = required_samples("mean", plan.effect["mean"], alpha=plan.planning_alpha, power=0.9, d=d)
            elif test == "cov":
                need = required_samples("cov", plan.effect["cov"], alpha=plan.planning_alpha, power=0.9, d=d)
            elif test in ("shape", "ksd"):
                need = gaussian_shape_required_samples(plan.effect["shape"], alpha=plan.planning_alpha, power=0.9,
                                              projections=1 if d == 1 else 16)
            else:
                need = 1
            assert run.chains >= need, (run, test)
        assert run.chains == chains_for(run.tests, d, plan.effect, plan.planning_alpha, 0.9)


def test_ula_step_sizes_are_below_the_stability_bound_and_near_stationary_is_reached() -> None:
    from genbench.langevin.theory import stability_bound

    plan = plan_battery(resolve_targets("all"), "ula", alpha=0.01, effect=None, power=0.9)
    for run in plan.runs:
        t = run.target
        assert run.step_size < stability_bound(t.to_torch())
        lam = 1.0 / np.linalg.eigvalsh(t.cov)
        slow = float(np.max(np.abs(1.0 - run.step_size * lam)))
        if run.steps > 2:  # the near-stationary count: the slowest direction keeps <= 5% of its offset
            assert slow**run.steps <= NEAR_STATIONARY_TOL < slow ** (run.steps - 1)
    assert {r.steps for r in plan.runs if r.target.name == "gauss2d"} >= {1}


@pytest.mark.parametrize("name", ["gauss2d", "diag10", "dense50"])
def test_burn_in_is_the_smallest_count_meeting_the_residual_bias_bound(name: str) -> None:
    t = catalogue()[name]
    mu, _ = step_sizes(t)
    n = 5000
    x0 = np.zeros(t.dim)
    b = burn_in(t, mu, n, x0)
    var, vecs = np.linalg.eigh(t.cov)
    c = vecs.T @ (x0 - t.mean) / np.sqrt(var)
    rho = 1.0 - MIN_ACCEPTANCE * mu / var
    tol = BIAS_TOLERANCE / math.sqrt(n)

    def residual(steps: int) -> tuple[float, float]:
        return math.sqrt(np.sum(c**2 * rho ** (2 * steps))), float(rho.max() ** (2 * steps))

    assert max(residual(b)) <= tol
    assert max(residual(b - 1)) > tol


def test_effect_and_kind_are_validated() -> None:
    t = resolve_targets("gauss1d")
    with pytest.raises(ParameterError, match="kind must be one of ula, exact, unknown"):
        plan_battery(t, "mala", alpha=0.01, effect=None, power=0.9)
    with pytest.raises(ParameterError, match="effect keys"):
        plan_battery(t, "exact", alpha=0.01, effect={"variance": 0.1}, power=0.9)
    with pytest.raises(ParameterError, match=r"effect\['shape'\] must be in \(0, 1\)"):
        plan_battery(t, "exact", alpha=0.01, effect={"shape": 2.0}, power=0.9)
    with pytest.raises(ParameterError, match="ula needs a Gaussian"):
        plan_battery(resolve_targets("mixture2d"), "ula", alpha=0.01, effect=None, power=0.9)
    with pytest.raises(ParameterError, match="alpha"):
        check_sampler(iid_exact, "exact", targets="gauss1d", alpha=1.5)


def test_sequential_plan_meets_power_with_fewer_first_stage_chains() -> None:
    from genbench.conformance.plan import SEQUENTIAL_STAGES, test_power
    from genbench.testing.sequential import sequential_thresholds

    targets = resolve_targets("gauss2d,diag10,mixture2d")
    single = plan_battery(targets, "exact", alpha=0.01, effect=None, power=0.9)
    seq = plan_battery(targets, "exact", alpha=0.01, effect=None, power=0.9, sequential=True)
    assert sum(r.alpha_run for r in seq.runs) == pytest.approx(0.01)  # Bonferroni shares of alpha
    for a, b in zip(single.runs, seq.runs):
        assert b.stage_chains == tuple(b.chains * 2**j for j in range(SEQUENTIAL_STAGES))
        assert b.chains < a.chains
        r = len(b.tests)
        th = sequential_thresholds(b.alpha_run, SEQUENTIAL_STAGES)
        for test in b.tests:
            if test == "movement":
                continue
            miss = sum(1 - test_power(test, b.target.dim, seq.effect, n, (beta if j == 2 else min(acc, 0.5)) / r)
                       for j, ((beta, acc), n) in enumerate(zip(th, b.stage_chains)))
            assert 1 - miss >= 0.9, (b.target.name, b.check, test)


def test_larger_effects_need_fewer_chains() -> None:
    t = resolve_targets("gauss2d")
    small = plan_battery(t, "exact", alpha=0.01, effect={"mean": 0.05, "cov": 0.1, "shape": 0.03}, power=0.9)
    big = plan_battery(t, "exact", alpha=0.01, effect={"mean": 0.3, "cov": 0.5, "shape": 0.1}, power=0.9)
    assert all(s.chains > b.chains for s, b in zip(small.runs, big.runs))


# ------------------------------------------------------------------------------------ adapter errors


def _raising(target):
    raise RuntimeError("no sampler\nfor you")


def _wrong_shape(target):
    return lambda x0, steps, step_size, seed: np.zeros((x0.shape[0], x0.shape[1] + 1))


def _nan(target):
    def run(x0, steps, step_size, seed):
        x = x0.copy()
        x[3] = np.nan
        return x

    return run


def _run_raises(target):
    def run(x0, steps, step_size, seed):
        raise ValueError("bad step")

    return run


@pytest.mark.parametrize(
    "factory, pattern",
    [
        (_raising, r"factory\(target='gauss2d'\) raised RuntimeError: no sampler for you"),
        (_wrong_shape, r"target 'gauss2d': run\(x0=<array \d+x2>, steps=10, step_size=0\.1, seed=\d+\) "
                       r"returned shape \(\d+, 3\); expected \(\d+, 2\)"),
        (_nan, r"target 'gauss2d': run\(.*\) returned 2 non-finite values in 1 of \d+ chains"),
        (_run_raises, r"target 'gauss2d': run\(.*\) raised ValueError: bad step"),
        (lambda target: 42, r"must return a callable run"),
    ],
)
def test_bad_adapters_raise_adapter_error_naming_target_and_call(factory, pattern) -> None:
    with pytest.raises(AdapterError, match=pattern):
        check_sampler(factory, "exact", targets="gauss2d")


def test_torch_outputs_are_accepted() -> None:
    import torch

    def torch_factory(target):
        inner = iid_exact(target)
        return lambda *a: torch.as_tensor(inner(*a), dtype=torch.float32).requires_grad_(True)

    plan_runs = len(plan_battery(resolve_targets("gauss1d"), "exact", alpha=0.01, effect=None, power=0.9).runs)
    seen = []

    def counting(target):
        run = torch_factory(target)

        def wrapped(x0, steps, step_size, seed):
            seen.append((x0.dtype, x0.shape, type(steps), type(step_size), type(seed)))
            return run(x0, steps, step_size, seed)

        return wrapped

    check_sampler(counting, "exact", targets="gauss1d")  # verdict not asserted: this tests the plumbing
    assert len(seen) == plan_runs
    assert all(s[0] == np.float64 and s[2] is int and s[3] is float and s[4] is int for s in seen)


# ------------------------------------------------------------------------------------ CLI


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("genbench.conformance.adapters:nope", "has no attribute 'nope'"),
        ("genbench.conformance.adapters", "factory must be MODULE:FACTORY"),
        ("tests.test_conformance:_raising", "factory(target='gauss1d') raised RuntimeError"),
        ("tests.test_conformance:_nan", "non-finite values"),
        ("tests.test_conformance:_wrong_shape", "returned shape"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(capsys, tmp_path, spec: str, message: str) -> None:
    code, out, err = _cli(capsys, "check-sampler", spec, "--kind", "exact", "--targets", "gauss1d",
                          "--out", str(tmp_path / "o"), "--quiet")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genbench: error:") and message in lines[0], err
    assert not (tmp_path / "o" / "conformance.json").exists()


def test_cli_rejects_bad_options(capsys, tmp_path) -> None:
    code, _, err = _cli(capsys, "check-sampler", "tests.test_conformance:iid_exact", "--kind", "exact",
                        "--effect", "mean", "--out", str(tmp_path))
    assert code == 2 and "effect must look like" in err
    with pytest.raises(SystemExit) as exc:
        main(["check-sampler", "tests.test_conformance:iid_exact", "--kind", "mcmc", "--out", str(tmp_path)])
    assert exc.value.code == 2


@pytest.mark.statistical(alpha=2e-4)
def test_cli_exit_0_writes_conformance_json_for_a_correct_sampler(capsys, tmp_path) -> None:
    seed = offset_seed(11)
    code, out, _ = _cli(capsys, "check-sampler", "tests.test_conformance:iid_exact", "--kind", "exact",
                        "--targets", "gauss1d,mixture2d", "--alpha", "2e-4", "--seed", str(seed),
                        "--out", str(tmp_path), "--quiet")
    assert code == 0, out
    data = json.loads((tmp_path / "conformance.json").read_text())
    assert data["passed"] is True and data["alpha"] == 2e-4 and data["seed"] == seed
    assert data["sampler"] == "tests.test_conformance:iid_exact"
    assert "Holm" in data["family_wise"]
    row = data["rows"][0]
    for key in ("target", "check", "test", "null_hypothesis", "statistic", "p_value", "alpha", "n",
                "detectable_effect", "passed"):
        assert key in row
    assert {r["target"] for r in data["rows"]} == {"gauss1d", "mixture2d"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conformance.json"]  # atomic: no temp left
    assert "PASSED" in out and "p-value" in out


def _mutant_power(report, test: str, eigen: list[float] | None = None, shift: float | None = None) -> float:
    """Power, at Holm's first level alpha/m, of the row that must catch a mutant's exact effect."""
    level = report.rows[0].details["planning_alpha"]
    rows = [r for r in report.rows if r.test == test]
    n = rows[0].n
    d = len(eigen) if eigen is not None else 2
    if eigen is not None:
        return cov_power_for_eigenvalues(eigen, n, alpha=level)
    assert shift is not None
    return power("mean", shift, n, alpha=level, d=d)


def test_cli_exit_1_for_a_broken_sampler(capsys, tmp_path, record_check) -> None:
    """Must reject: H0 "x_T follows ULA's exact law" for a ULA whose noise is √μ, not √(2μ); the CLI exits 1."""
    seed = offset_seed(12)
    code, out, _ = _cli(capsys, "check-sampler", "genbench.conformance.adapters:mutant_noise_sqrt_mu",
                        "--kind", "ula", "--targets", "gauss2d", "--seed", str(seed), "--out", str(tmp_path), "--fail-fast",
                        "--quiet")
    data = json.loads((tmp_path / "conformance.json").read_text())
    # One step of the mutant has covariance mu*I where ULA's is 2*mu*I: eigenvalues 1/2, 1/2 whitened.
    level = data["rows"][0]["details"]["planning_alpha"]
    n = data["rows"][0]["n"]
    record_check.declare(power=cov_power_for_eigenvalues([0.5, 0.5], n, alpha=level))
    assert code == 1
    assert data["passed"] is False
    assert any(r["test"] == "cov" and r["steps"] == 1 and not r["passed"] for r in data["rows"])
    assert "REJECT" in out


# ------------------------------------------------------------------------------------ batteries


@pytest.mark.statistical(alpha=2e-4)
def test_genbench_ula_passes_the_ula_battery() -> None:
    """H0: genbench's ULA follows its exact law on the 1-D and 2-D Gaussians; family-wise alpha 2e-4, seed offset_seed(13)."""
    rep = check_sampler(adapters.genbench_ula, "ula", targets="gauss1d,gauss2d", alpha=2e-4, seed=offset_seed(13))
    assert rep.passed, rep.message()
    assert {r.check for r in rep.rows} == {"ula_law"}
    assert len({r.steps for r in rep.rows if r.target == "gauss2d"}) == 3  # T = 1 and two near-stationary


@pytest.mark.statistical(alpha=2e-4)
def test_genbench_mala_passes_the_exact_battery() -> None:
    """H0: genbench's MALA leaves the 2-D Gaussian invariant and converges to it; family-wise alpha 2e-4, seed offset_seed(14)."""
    rep = check_sampler(adapters.genbench_mala, "exact", targets="gauss2d", alpha=2e-4,
                        seed=offset_seed(14))
    assert rep.passed, rep.message()
    assert {r.check for r in rep.rows} == {"invariance", "convergence"}
    assert rep.timing["sampler_seconds"] > 0 and rep.timing["kit_seconds"] > 0


@pytest.mark.statistical(alpha=1e-4)
def test_sequential_battery_passes_a_correct_sampler_and_stops_early() -> None:
    """H0: an iid exact sampler draws from each target (sequential battery, family-wise alpha 1e-4, seed offset_seed(18))."""
    rep = check_sampler(iid_exact, "exact", targets="gauss1d,gauss2d,mixture2d", alpha=1e-4, sequential=True,
                        seed=offset_seed(18))
    assert rep.passed, rep.message()
    assert "Gandy-Scott" in rep.correction
    stages = [r.details["stages"] for r in rep.rows]
    assert all(s[-1]["decision"] == "accept" for s in stages)
    assert all(r.alpha == r.details["stages"][-1]["reject_at_or_below"] for r in rep.rows)


def test_sequential_battery_rejects_a_broken_sampler(record_check) -> None:
    """Must reject: H0 "x_T follows ULA's exact law" for a ULA with √μ noise, at the first look (seed offset_seed(19))."""
    rep = check_sampler(adapters.mutant("noise_sqrt_mu"), "ula", targets="gauss2d", sequential=True, fail_fast=True,
                        seed=offset_seed(19))
    first = rep.rows[0]  # T = 1 at mu = 1/kappa: the mutant's covariance is half the law's
    record_check.declare(power=cov_power_for_eigenvalues([0.5, 0.5], first.n, alpha=first.alpha))
    assert not rep.passed
    assert any(r.details["decision"] == "reject" and r.details["stages"][0]["decision"] == "reject"
               for r in rep.failed_rows)


def test_unknown_kind_runs_stein_and_shape_and_rejects_a_wrong_scale(record_check) -> None:
    """'unknown': KSD and shape after the planned burn-in; draws at twice the target's scale must fail."""
    import scipy.stats

    def doubled(target):
        def run(x0, steps, step_size, seed):
            x = target.sample(x0.shape[0], np.random.default_rng(seed))
            return target.mean + 2.0 * (x - target.mean)

        return run

    rep = check_sampler(doubled, "unknown", targets="gauss1d", seed=offset_seed(20), fail_fast=True)
    shape = next(r for r in rep.rows if r.test == "shape")
    # Whitened, the draws are N(0, 4): KS distance D to N(0, 1); shape's DKWM guarantee at its level
    # (Bonferroni over the radius test and one projection) is 1 - 2 exp(-2n (D - t)^2).
    grid = np.linspace(-5, 5, 20001)
    dist = float(np.max(np.abs(scipy.stats.norm.cdf(grid / 2.0) - scipy.stats.norm.cdf(grid))))
    t = math.sqrt(math.log(2 * 2 / shape.details["planning_alpha"]) / (2 * shape.n))
    record_check.declare(power=1 - 2 * math.exp(-2 * shape.n * (dist - t) ** 2))
    assert not rep.passed
    assert {r.test for r in rep.rows} == {"ksd", "shape"} and {r.check for r in rep.rows} == {"stein"}
    with pytest.raises(ParameterError, match="sequential applies to kinds"):
        check_sampler(doubled, "unknown", targets="gauss1d", sequential=True)


def test_issue_2_bugs_are_rejected(record_check) -> None:
    """The three bugs named in issue 2, as ULA adapters on the assignment's target."""
    seed = offset_seed(15)
    t = catalogue()["gauss2d"]
    mu = step_sizes(t)[0]
    score0 = t.score(np.zeros((1, 2)))[0]
    for name, declared in (
        # T = 1 from x0 = 0: covariance mu*I instead of 2*mu*I (whitened eigenvalues 1/2).
        ("noise_sqrt_mu", lambda rep: _mutant_power(rep, "cov", eigen=[0.5, 0.5])),
        # T = 1: the mean moves by -mu*score(0) instead of +mu*score(0): shift 2*mu*|score(0)| / sqrt(2*mu).
        ("score_sign_flipped", lambda rep: _mutant_power(
            rep, "mean", shift=2 * mu * float(np.linalg.norm(score0)) / math.sqrt(2 * mu))),
        # T = 1: drift -Sigma(x0 - m) instead of -P(x0 - m).
        ("cov_for_precision", lambda rep: _mutant_power(
            rep, "mean", shift=mu * float(np.linalg.norm(t.cov @ t.mean - t.precision @ t.mean)) / math.sqrt(2 * mu))),
    ):
        rep = check_sampler(adapters.mutant(name), "ula", targets="gauss2d", seed=seed, fail_fast=True)
        record_check.declare(power=declared(rep))
        assert not rep.passed, name
        # (raise_if_failed() would declare a must-not-reject alpha here; the pytester test covers it.)
        assert "gauss2d/ula_law/" in rep.message() and "rejected" in rep.message()


def test_mala_always_accept_is_rejected_by_invariance(record_check) -> None:
    """MALA that never rejects is ULA: from exact draws, 10 steps inflate the covariance (exact law)."""
    from genbench.langevin.theory import ula_cov

    t = catalogue()["gauss2d"]
    rep = check_sampler(adapters.mutant("mala_always_accept"), "exact", targets="gauss2d", seed=offset_seed(16),
                        fail_fast=True)
    mu = step_sizes(t)[0]
    a = np.eye(2) - mu * t.precision
    a10 = np.linalg.matrix_power(a, 10)
    law = a10 @ t.cov @ a10.T + ula_cov(t.to_torch(), mu, 10)  # ULA's exact law after 10 steps from the target
    eig = np.linalg.eigvals(np.linalg.solve(t.cov, law)).real
    record_check.declare(power=_mutant_power(rep, "cov", eigen=sorted(eig)))
    assert not rep.passed
    assert any(r.check == "invariance" and r.test == "cov" and r.step_size == mu and not r.passed for r in rep.rows)


# The nested run holds one must-not-reject battery at alpha 1e-4; its must-reject twin (a 2x scale) is
# caught with power 1 - 1e-300 by the covariance test at n ~ 5000.
@pytest.mark.statistical(alpha=1e-4)
def test_raise_if_failed_is_counted_by_the_pytest_plugin(pytester: pytest.Pytester) -> None:
    """A user's test file: ``check_sampler(...).raise_if_failed()`` alone declares the battery's alpha."""
    pytester.makepyfile(test_user="""
        import numpy as np
        from genbench.conformance import check_sampler

        def my_factory(target):
            def run(x0, steps, step_size, seed):
                return target.sample(x0.shape[0], np.random.default_rng(seed))
            return run

        def test_my_sampler():
            check_sampler(my_factory, kind="exact", targets="gauss1d", alpha=1e-4, seed=%d).raise_if_failed()

        def test_broken():
            def broken(target):
                return lambda x0, steps, step_size, seed: 2.0 * target.sample(x0.shape[0], np.random.default_rng(seed))
            check_sampler(broken, kind="exact", targets="gauss1d", alpha=1e-4, seed=1).raise_if_failed()
    """ % offset_seed(17))
    res = pytester.runpytest("-p", "no:hypothesispytest", "-p", "no:benchmark")
    res.assert_outcomes(passed=1, failed=1)
    res.stdout.fnmatch_lines(["*CheckFailed*broken (exact): FAILED*", "*gauss1d/invariance/*rejected*"])
    res.stdout.fnmatch_lines(["genbench: 2 statistical assertions, total alpha 0.0002"])



# ------------------------------------------------------------------------------------ slow: rates over seeds

MUTANT_SEEDS = 10


@pytest.mark.slow
@pytest.mark.statistical(power=0.999)
@pytest.mark.parametrize("name", adapters.mutant_names())
def test_every_kernel_mutant_is_rejected_at_default_settings(name: str) -> None:
    """Every kernel mutant of the calibration catalogue, as an adapter, fails the default battery on every seed.

    fail_fast stops at the first test at or below Holm's first level, where the full battery's verdict
    is already "fail": the verdict is the default battery's, only faster.
    """
    kind = adapters.mutant_kind(name)
    missed = []
    for k in range(MUTANT_SEEDS):
        rep = check_sampler(adapters.mutant(name), kind, seed=offset_seed(2000 + k), fail_fast=True)
        if rep.passed:
            missed.append(offset_seed(2000 + k))
    assert not missed, f"{name} passed the default battery at seeds {missed}"


@pytest.mark.slow
@pytest.mark.statistical(alpha=0.0043)
@pytest.mark.parametrize("sequential", [False, True], ids=["holm", "sequential"])
def test_battery_level_on_exact_draws_over_200_seeds(sequential: bool) -> None:
    """The statistics alone: exact i.i.d. draws as the 'sampler', default exact battery, 200 seeds.

    Fails at 7+ false alarms of 200 (P(Binomial(200, 0.01) >= 7) = 0.0043).
    """
    failures = [k for k in range(200)
                if not check_sampler(iid_exact, "exact", sequential=sequential, seed=offset_seed(4000 + k)).passed]
    assert len(failures) <= 6, failures


def test_sampler_verdicts_give_typed_rows_for_the_report() -> None:
    from genbench.conformance.samplers import KnownSampler, SamplerVerdict, known_samplers, sampler_verdicts

    names = [(s.library, s.name, s.kind) for s in known_samplers(peers=False)]
    assert names == [("genbench", "ULA", "ula"), ("genbench", "MALA", "exact")]
    if adapters.peers_available():
        assert {s.library for s in known_samplers()} == {"genbench", "blackjax"}
    rows = sampler_verdicts([KnownSampler("iid", "genbench", "exact", iid_exact, "tests.test_conformance:iid_exact")],
                            targets="gauss1d", seed=offset_seed(24))
    (row,) = rows
    assert isinstance(row, SamplerVerdict) and row.tests == len(row.report.rows) and row.targets == ["gauss1d"]
    assert row.rejected == len(row.report.failed_rows) and row.passed == row.report.passed  # verdict not asserted
    assert json.loads(json.dumps(row.to_dict()))["report"]["kind"] == "exact"
