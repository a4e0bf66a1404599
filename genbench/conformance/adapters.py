"""Adapters: genbench's own samplers, BlackJAX's, and the calibration catalogue's broken kernels.

Each public factory follows the adapter protocol (``factory(target) -> run``, see
``genbench.conformance.battery``) and can be named on the command line::

    genbench check-sampler genbench.conformance.adapters:blackjax_mala --kind exact --out DIR

* ``genbench_ula`` (kind ``ula``) and ``genbench_mala`` (kind ``exact``): ``genbench.langevin``.
* ``blackjax_mala`` (kind ``exact``): ``blackjax.mala``, one chain per ``jax.vmap`` lane, float64.
* ``blackjax_sgld`` (kind ``ula``): ``blackjax.sgld`` with its own ``grad_estimator`` on a data set of
  one point whose log-likelihood is zero, so every "minibatch" is the full batch and the gradient
  estimate is exact: SGLD's step x + μ·∇log π(x) + √(2μ)·ξ is then ULA.
* ``mutant(name)`` (``ula`` or ``exact`` by the mutant's family): a kernel of
  ``genbench.testing.mutants.KERNEL_MUTANTS`` driven by ``genbench.langevin.sample_ula``.
  The mutants are written for Gaussian targets; on a mixture the adapter runs genbench's correct
  sampler of the same family instead, so those rows must pass and every rejection comes from the bug.
* ``broken_blackjax_mala`` (kind ``exact``): BlackJAX's MALA parts with the acceptance ratio
  inverted (the bug class of BlackJAX PR #653): the deliberately broken adapter of the docs.

BlackJAX adapters need the optional extra ``pip install "genbench[peers]"`` (jax and blackjax on
CPU); without it the factory raises and ``check_sampler`` reports an AdapterError. JAX computes in
float64 inside these adapters only (``jax.enable_x64`` as a context, never a global switch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from genbench.conformance.targets import Target
from genbench.errors import ParameterError

__all__ = [
    "genbench_ula",
    "genbench_mala",
    "blackjax_mala",
    "blackjax_sgld",
    "broken_blackjax_mala",
    "mutant",
    "mutant_names",
    "peers_available",
]

RunFn = Callable[[np.ndarray, int, float, int], np.ndarray]


# --------------------------------------------------------------------------------- genbench's own


def genbench_ula(target: Target) -> RunFn:
    """genbench's batched ULA (``genbench.langevin.sample_ula``) as a conformance adapter (kind 'ula')."""
    from genbench.langevin import sample_ula

    t = target.to_torch()

    def run(x0: np.ndarray, steps: int, step_size: float, seed: int) -> np.ndarray:
        res = sample_ula(t, steps, step_size, chains=x0.shape[0], x0=x0, seed=seed, keep="final")
        return res.final.numpy()

    return run


def genbench_mala(target: Target) -> RunFn:
    """genbench's batched MALA (``genbench.langevin.sample_mala``) as a conformance adapter (kind 'exact')."""
    from genbench.langevin import sample_mala

    t = target.to_torch()

    def run(x0: np.ndarray, steps: int, step_size: float, seed: int) -> np.ndarray:
        res = sample_mala(t, steps, step_size, chains=x0.shape[0], x0=x0, seed=seed, keep="final")
        return res.final.numpy()

    return run


# --------------------------------------------------------------------------------- BlackJAX


def peers_available() -> bool:
    """True when jax and blackjax import (the ``genbench[peers]`` extra)."""
    try:
        import blackjax  # noqa: F401
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def _jax() -> tuple[Any, Any, Any]:
    try:
        import blackjax
        import jax
        import jax.numpy as jnp
    except ImportError as exc:
        raise ImportError(
            f"this adapter needs jax and blackjax: pip install 'genbench[peers]' ({exc})"
        ) from exc
    return jax, jnp, blackjax


def jax_log_prob(target: Target) -> Callable[[Any], Any]:
    """The target's log-density as a JAX function of one point (d,), from its mixture components.

    Call it under ``jax.enable_x64(True)`` for float64 (the adapters here do).
    """
    jax, jnp, _ = _jax()
    with jax.enable_x64(True):
        logw = jnp.asarray(np.log(target.weights))
        means = jnp.asarray(target.means)
        precs = jnp.asarray(target._precs)
        log_norms = jnp.asarray(target._log_norms)

    def log_prob(x: Any) -> Any:
        diff = x[None, :] - means
        maha = jnp.einsum("ki,kij,kj->k", diff, precs, diff)
        return jax.scipy.special.logsumexp(logw + log_norms - 0.5 * maha)

    return log_prob


def _vmapped_runner(step_fn: Callable[..., Any], init_fn: Callable[..., Any], position: Callable[[Any], Any]) -> RunFn:
    """run(x0, steps, step_size, seed) driving ``step_fn(key, state, step_size)`` on every chain (vmap)."""
    jax, jnp, _ = _jax()

    def go(x0: Any, key: Any, steps: Any, step_size: Any) -> Any:
        states = jax.vmap(init_fn)(x0)
        chains = x0.shape[0]

        def body(i: Any, st: Any) -> Any:
            # One key per chain and step: chains are independent, the run reproducible from `seed`.
            keys = jax.random.split(jax.random.fold_in(key, i), chains)
            return jax.vmap(lambda k, s: step_fn(k, s, step_size))(keys, st)

        return position(jax.lax.fori_loop(0, steps, body, states))

    with jax.enable_x64(True):
        compiled = jax.jit(go)  # steps and step_size are traced: one compilation per chain count

    def run(x0: np.ndarray, steps: int, step_size: float, seed: int) -> np.ndarray:
        with jax.enable_x64(True):
            out = compiled(jnp.asarray(x0, dtype=jnp.float64), jax.random.key(seed), int(steps), float(step_size))
            return np.asarray(out)

    return run


def blackjax_mala(target: Target) -> RunFn:
    """BlackJAX's MALA (``blackjax.mala``) on ``target``, float64, chains vmapped (kind 'exact')."""
    jax, _, blackjax = _jax()
    logp = jax_log_prob(target)
    kernel = blackjax.mala.build_kernel()

    def step(key: Any, state: Any, step_size: Any) -> Any:
        new_state, _info = kernel(key, state, logp, step_size)
        return new_state

    return _vmapped_runner(step, lambda x: blackjax.mala.init(x, logp), lambda st: st.position)


def broken_blackjax_mala(target: Target) -> RunFn:
    """BlackJAX's MALA with its acceptance ratio inverted (kind 'exact'): must be rejected.

    Built from BlackJAX's own parts (``diffusions.overdamped_langevin``,
    ``proposal.compute_asymmetric_acceptance_ratio``, ``proposal.static_binomial_sampling``) with the
    current and proposed states swapped in the ratio: the bug class BlackJAX shipped until PR #653.
    """
    jax, _, blackjax = _jax()
    from blackjax.mcmc import diffusions, proposal
    from blackjax.mcmc.mala import MALAState

    logp = jax_log_prob(target)
    grad_fn = jax.value_and_grad(logp)
    integrator = diffusions.overdamped_langevin(grad_fn)

    def transition_energy(state: Any, new_state: Any, step_size: Any) -> Any:
        theta = state.position - new_state.position - step_size * new_state.logdensity_grad
        return -new_state.logdensity + 0.25 * (1.0 / step_size) * (theta * theta).sum()

    ratio = proposal.compute_asymmetric_acceptance_ratio(transition_energy)

    def step(key: Any, state: Any, step_size: Any) -> Any:
        k_int, k_acc = jax.random.split(key)
        new_state = MALAState(*integrator(k_int, state, step_size))
        log_p = ratio(new_state, state, step_size=step_size)  # the bug: arguments swapped
        accepted, _info = proposal.static_binomial_sampling(k_acc, log_p, state, new_state)
        return accepted

    return _vmapped_runner(step, lambda x: blackjax.mala.init(x, logp), lambda st: st.position)


def blackjax_sgld(target: Target) -> RunFn:
    """BlackJAX's SGLD (``blackjax.sgld``) with the full-batch gradient, i.e. ULA (kind 'ula')."""
    jax, jnp, blackjax = _jax()
    logp = jax_log_prob(target)
    # A data set of one point with zero log-likelihood: the estimator's prior term is the target and
    # its likelihood term vanishes, so the full-batch estimate is exactly ∇log π.
    grad_fn = blackjax.sgmcmc.gradients.grad_estimator(logp, lambda position, x: jnp.zeros(()), 1)
    sgld = blackjax.sgld(grad_fn)
    with jax.enable_x64(True):
        batch = jnp.zeros((1, 1))

    def step(key: Any, position: Any, step_size: Any) -> Any:
        return sgld.step(key, position, batch, step_size)

    return _vmapped_runner(step, lambda x: sgld.init(x), lambda pos: pos)


# --------------------------------------------------------------------------------- mutants


def mutant_names() -> list[str]:
    """Names of the calibration catalogue's kernel mutants."""
    from genbench.testing.mutants import KERNEL_MUTANTS

    return [m.name for m in KERNEL_MUTANTS]


def mutant(name: str) -> Callable[[Target], RunFn]:
    """The kernel mutant ``name`` as an adapter factory; its kind is 'ula' or 'exact' (MALA family)."""
    from genbench.testing.mutants import kernel_mutant

    spec = kernel_mutant(name)

    def factory(target: Target) -> RunFn:
        import torch

        from genbench.langevin import sample_ula

        if not target.is_gaussian:
            # The mutants are Gaussian-target kernels: elsewhere run the correct sampler (see module docstring).
            return genbench_ula(target) if spec.family == "ula" else genbench_mala(target)
        t = target.to_torch()

        def run(x0: np.ndarray, steps: int, step_size: float, seed: int) -> np.ndarray:
            gen = torch.Generator().manual_seed(int(seed) + 1)  # the MALA mutants' accept/reject uniforms
            kernel = spec.make(t, step_size, generator=gen)
            res = sample_ula(t, steps, step_size, chains=x0.shape[0], x0=x0, seed=seed, kernel=kernel, keep="final")
            return res.final.numpy()

        return run

    factory.__name__ = factory.__qualname__ = f"mutant_{name}"
    factory.kind = "ula" if spec.family == "ula" else "exact"  # type: ignore[attr-defined]
    return factory


def mutant_kind(name: str) -> str:
    """The conformance kind a mutant impersonates: 'ula' for ULA kernels, 'exact' for MALA ones."""
    from genbench.testing.mutants import kernel_mutant

    return "ula" if kernel_mutant(name).family == "ula" else "exact"


def __getattr__(name: str) -> Any:
    # ``genbench.conformance.adapters:mutant_noise_sqrt_mu`` works on the command line.
    if name.startswith("mutant_"):
        try:
            return mutant(name[len("mutant_"):])
        except ParameterError as exc:
            raise AttributeError(str(exc)) from None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
