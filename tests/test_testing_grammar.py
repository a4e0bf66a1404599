"""The naming grammar of genbench.testing, enforced (deterministic: no statistical assertion here).

For every check X in ``genbench.testing.CHECKS`` and ``genbench.testing.gan.CHECKS``: ``check_X``,
``assert_X``, ``X_required_samples`` and ``X_detectable_effect`` exist under those names, are callable,
take no ``**kwargs``, and default ``alpha`` to the one ``DEFAULT_ALPHA``; a check without planners
says why. The names of the previous release warn and return what their replacement returns; the API
table of docs/testing.md lists every check with its four names.
"""

from __future__ import annotations

import ast
import functools
import inspect
import pathlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import genbench.testing as gt
import genbench.testing.gan as gtg
from genbench import planning
from genbench.errors import CheckFailed
from genbench.testing import CHECKS, DEFAULT_ALPHA, CheckResult, CheckSpec

ROOT = pathlib.Path(__file__).resolve().parents[1]
REGISTRIES = {"genbench.testing": (gt, CHECKS), "genbench.testing.gan": (gtg, gtg.CHECKS)}
SPECS = [(mod, spec) for mod, (_, reg) in REGISTRIES.items() for spec in reg.values()]
IDS = [f"{mod}:{spec.name}" for mod, spec in SPECS]


def _names(spec: CheckSpec) -> dict[str, Callable[..., Any] | None]:
    x = spec.name
    return {
        f"check_{x}": spec.check,
        f"assert_{x}": spec.assert_,
        f"{x}_required_samples": spec.required_samples,
        f"{x}_detectable_effect": spec.detectable_effect,
    }


@pytest.mark.parametrize(("module", "spec"), SPECS, ids=IDS)
def test_each_check_has_its_four_names(module: str, spec: CheckSpec) -> None:
    """check_X / assert_X / X_required_samples / X_detectable_effect are the module's functions of those names."""
    mod = REGISTRIES[module][0]
    for name, fn in _names(spec).items():
        if fn is None:  # only the planners may be absent, and then the registry says why
            assert name.endswith(("_required_samples", "_detectable_effect")), name
            assert spec.no_planner, f"{spec.name}: no planner and no reason"
            assert not hasattr(mod, name), f"{module}.{name} exists but is not registered"
            continue
        assert callable(fn), name
        assert fn.__name__ == name, f"{module}: registered {fn.__name__} as {name}"
        assert getattr(mod, name) is fn, f"{module}.{name} is not the registered function"
        if module == "genbench.testing":
            assert name in gt.__all__, f"{name} missing from genbench.testing.__all__"


@pytest.mark.parametrize(("module", "spec"), SPECS, ids=IDS)
def test_no_kwargs_and_one_default_alpha(module: str, spec: CheckSpec) -> None:
    """No public function of a check takes **kwargs; every alpha defaults to DEFAULT_ALPHA, keyword-usable."""
    for name, fn in _names(spec).items():
        if fn is None:
            continue
        params = inspect.signature(fn).parameters
        kinds = {p.name: p.kind for p in params.values()}
        assert inspect.Parameter.VAR_KEYWORD not in kinds.values(), f"{module}.{name} takes **kwargs"
        assert inspect.Parameter.VAR_POSITIONAL not in kinds.values(), f"{module}.{name} takes *args"
        assert "alpha" in params, f"{module}.{name} has no alpha"
        assert params["alpha"].kind is not inspect.Parameter.POSITIONAL_ONLY
        assert params["alpha"].default == DEFAULT_ALPHA, f"{module}.{name}: alpha={params['alpha'].default}"
        if name.endswith(("_required_samples", "_detectable_effect")):
            assert "power" in params and params["power"].kind is inspect.Parameter.KEYWORD_ONLY, name
            assert params["alpha"].kind is inspect.Parameter.KEYWORD_ONLY, name


def test_default_alpha_is_one_constant() -> None:
    """The public default level is genbench.planning.DEFAULT_ALPHA, and no testing module spells it as a literal."""
    assert gt.DEFAULT_ALPHA is planning.DEFAULT_ALPHA and gtg.ALPHA is planning.DEFAULT_ALPHA
    assert DEFAULT_ALPHA == 0.01
    literal = []
    for path in sorted((ROOT / "genbench" / "testing").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_"):
                args = node.args
                pos = args.posonlyargs + args.args
                pairs = list(zip(pos[len(pos) - len(args.defaults):], args.defaults))
                pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
                literal += [f"{path.name}:{node.name}" for a, d in pairs
                            if a.arg == "alpha" and isinstance(d, ast.Constant)]
    assert not literal, f"alpha defaults written as literals (use DEFAULT_ALPHA): {literal}"


def test_public_api_has_no_kwargs() -> None:
    """No public function of genbench.testing (deprecated aliases aside) takes **kwargs."""
    offenders = []
    for name in gt.__all__:
        obj = getattr(gt, name)
        if inspect.isfunction(obj):
            kinds = {p.kind for p in inspect.signature(obj).parameters.values()}
            if inspect.Parameter.VAR_KEYWORD in kinds:
                offenders.append(name)
    assert not offenders


def test_every_check_of_the_package_is_registered() -> None:
    """Every public check_* of genbench.testing has a registry row (a new check cannot skip the grammar)."""
    checks = {n[len("check_"):] for n in gt.__all__ if n.startswith("check_")}
    assert checks == set(CHECKS)
    gan_checks = {n[len("check_"):] for n in gtg.__all__ if n.startswith("check_")}
    assert gan_checks == set(gtg.CHECKS)


def test_docs_table_lists_every_check_with_its_four_names() -> None:
    """docs/testing.md's API table has one row per registered check naming its four functions (or why not)."""
    text = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    for module, spec in SPECS:
        x = spec.name
        row = [r for r in rows if r.split("|")[1].strip().split(" ")[0] == f"`check_{x}`"]
        assert len(row) == 1, f"docs/testing.md: {len(row)} table rows for check_{x}"
        for name, fn in _names(spec).items():
            assert (f"`{name}`" in row[0]) == (fn is not None), f"docs/testing.md row of {x}: {name}"
        if spec.required_samples is None:
            assert "no planner" in row[0].lower(), f"docs/testing.md row of {x} must say why there is no planner"


# ----------------------------------------------------------------------- planners agree with the checks


def test_joint_planners_match_the_detectable_effect_the_check_reports() -> None:
    """gaussian/ula_law/stationary plan each component at alpha/2, as the check reports it."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 2))
    res = gt.check_gaussian(x, np.zeros(2), np.eye(2), alpha=0.02, power=0.9)
    for planner in (gt.gaussian_detectable_effect, gt.ula_law_detectable_effect, gt.stationary_detectable_effect):
        assert planner(500, alpha=0.02, power=0.9) == res.detectable_effect
    assert gt.gaussian_required_samples(0.2, alpha=0.02, power=0.9) == planning.required_samples(
        "mean", 0.2, alpha=0.01, power=0.9)
    assert gt.gaussian_required_samples(0.3, alpha=0.02, component="cov") == planning.required_samples(
        "cov", 0.3, alpha=0.01)
    assert gt.mean_detectable_effect(500, alpha=0.02, power=0.9) == gt.check_mean(
        x, np.zeros(2), np.eye(2), alpha=0.02, power=0.9).detectable_effect


PLANNED = [(m, spec) for m, spec in SPECS if spec.required_samples is not None and not any(
    p.kind is p.KEYWORD_ONLY and p.default is p.empty for p in inspect.signature(spec.required_samples).parameters.values())]


@pytest.mark.parametrize(("module", "spec"), PLANNED, ids=[f"{m}:{s.name}" for m, s in PLANNED])
def test_each_checks_planners_invert_each_other(module: str, spec: CheckSpec) -> None:
    """X_required_samples(X_detectable_effect(n)) is n up to the planners' rounding (the exact binomial
    sawtooth of c2st, the Monte Carlo power of cov: 3%), and that n detects the effect."""
    assert spec.required_samples is not None and spec.detectable_effect is not None
    n0 = 1000
    eff = spec.detectable_effect(n0)
    n1 = spec.required_samples(eff)
    assert 0.97 * n0 <= n1 <= n0 + 2, (n0, eff, n1)
    assert spec.detectable_effect(n1) <= eff * (1 + 1e-9)


def test_sequential_planner_is_the_wrapped_planner_at_alpha_over_k() -> None:
    """Stage 1 rejects when p <= alpha/k, so the wrapped planner at alpha/k is a conservative plan."""
    plan = functools.partial(gt.mean_required_samples, d=2)
    assert gt.sequential_required_samples(0.1, planner=plan, alpha=0.03, power=0.9, max_stages=3) == (
        gt.mean_required_samples(0.1, alpha=0.01, power=0.9))
    det = functools.partial(gt.mean_detectable_effect, d=2)
    assert gt.sequential_detectable_effect(800, planner=det, alpha=0.02, max_stages=2) == (
        gt.mean_detectable_effect(800, alpha=0.01))


def test_new_asserts_plan_before_testing() -> None:
    """assert_mean / assert_mean_hotelling / assert_cov refuse an n too small for the requested effect."""
    from genbench.errors import ParameterError

    x = np.random.default_rng(1).standard_normal((50, 2))
    with pytest.raises(ParameterError, match="n >= "):
        gt.assert_mean(x, np.zeros(2), np.eye(2), power=0.9, effect=0.1)
    with pytest.raises(ParameterError, match="n >= "):
        gt.assert_mean_hotelling(x, np.zeros(2), power=0.9, effect=0.1)
    with pytest.raises(ParameterError, match="n >= "):
        gt.assert_cov(x, np.eye(2), power=0.9, effect=0.1)
    with pytest.raises(CheckFailed):
        gt.assert_mean_hotelling(x + 5.0, np.zeros(2))


# ----------------------------------------------------------------------- deprecated names


def _stage(n: int, seed: int) -> CheckResult:
    x = np.random.default_rng(seed).standard_normal((n, 2))
    return gt.check_mean(x, np.zeros(2), np.eye(2))


_X = np.random.default_rng(2).standard_normal((300, 2))
# old name -> (call through the old name, call through the new name): same arguments, same result.
OLD_CALLS: dict[str, tuple[Callable[[Callable[..., Any]], Any], str]] = {
    "assert_matches_gaussian": (lambda f: f(_X, np.zeros(2), np.eye(2), 0.01, 0.8, 0.3), "assert_gaussian"),
    "shape_required_samples": (lambda f: f(0.05, alpha=0.01, power=0.9, projections=4),
                               "gaussian_shape_required_samples"),
    "shape_detectable_effect": (lambda f: f(2000, power=0.9), "gaussian_shape_detectable_effect"),
    "conservation_required_samples": (lambda f: f(0.05, 2, alpha=0.01, power=0.9), "one_step_required_samples"),
    "conservation_detectable_effect": (lambda f: f(5000, 2, power=0.9), "one_step_detectable_effect"),
    "sbc_required_replications": (lambda f: f(0.1, bins=10, alpha=0.01, power=0.8), "sbc_required_samples"),
    "sequential_check": (lambda f: f(_stage, n=200, alpha=0.01, seed=3), "check_sequential"),
}


def _new_call(old: str) -> Any:
    call, new = OLD_CALLS[old]
    fn = getattr(gt, new)
    if old.startswith("conservation_"):  # d moved from positional to keyword
        return call(lambda a, d, **kw: fn(a, d=d, **kw))
    if old == "assert_matches_gaussian":  # power and effect became keyword-only
        return call(lambda x, m, c, alpha, power, effect: fn(x, m, c, alpha, power=power, effect=effect))
    return call(fn)


def test_deprecated_names_are_listed() -> None:
    """OLD_CALLS covers every deprecated name of genbench.testing, and none is in __all__."""
    assert set(OLD_CALLS) == set(gt.DEPRECATED)
    assert not set(gt.DEPRECATED) & set(gt.__all__)
    assert all(new in gt.__all__ for new in gt.DEPRECATED.values())


@pytest.mark.parametrize("old", sorted(OLD_CALLS))
def test_old_name_warns_and_returns_the_same_result(old: str) -> None:
    """Each old name raises a DeprecationWarning naming its replacement and returns the new name's result."""
    new = gt.DEPRECATED[old]
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated.*use genbench\.testing\.\w*\.?{new}$"):
        got = OLD_CALLS[old][0](getattr(gt, old))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        want = _new_call(old)
    assert got == want


def test_old_name_warning_points_at_the_caller() -> None:
    """The warning's location is the calling line (stacklevel), so users find what to rename."""
    with pytest.warns(DeprecationWarning) as rec:
        gt.sbc_required_replications(0.1)
    assert rec[0].filename == __file__
