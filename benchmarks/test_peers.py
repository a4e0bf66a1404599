"""genbench beside BlackJAX on identical Langevin workloads (skipped without jax and blackjax).

Both run the same workload: the assignment's target N((1,1), [[1,.9],[.9,1]]), step size 0.01,
x_0 = 0, the same chains, steps and dtype, keeping only the final states. genbench is timed
through ``sample_ula`` / ``sample_mala`` as a user calls them (validation included). BlackJAX runs
as its documentation shows for many chains: ``jax.vmap`` of the kernel over per-chain keys inside
``jax.lax.scan``, under ``jax.jit``; ULA is BlackJAX's overdamped Langevin integrator
(``blackjax.mcmc.diffusions.overdamped_langevin``, the same Euler step), MALA is ``blackjax.mala``.
Its compilation runs before the timed rounds and is reported apart; every call ends with
``block_until_ready``. float32 runs with jax's default precision, float64 under
``jax.enable_x64``. Install the peers with ``pip install -e ".[test,peers]"``.

On CUDA, genbench runs on torch's GPU and BlackJAX on jax's (``jax[cuda12]`` or ``jax[cuda13]``), at
the CPU's chain counts and at 1e6 and 1e7; the CUDA variants skip when either has no GPU. Each side
is pinned to its device (``jax.default_device``): with a GPU plugin installed jax would otherwise
put the CPU rows on the GPU too.

Each workload's pair runs back to back, and ``genbench bench`` shows genbench/BlackJAX with its
interval; ``genbench/bench/gates.toml`` requires the ratio to be at least 1 on each.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from genbench.bench.profiles import Profile
from genbench.bench.timing import Workload, count_label, time_once
from genbench.langevin import sample_mala, sample_ula
from genbench.targets import SEED_COV, SEED_MEAN, seed_target

jax = pytest.importorskip("jax", reason="the peers benchmark needs jax and blackjax (pip install genbench[peers])")
blackjax = pytest.importorskip("blackjax", reason="the peers benchmark needs blackjax (pip install genbench[peers])")
jnp = jax.numpy

STEP_SIZE = 0.01
CHAINS = (1, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)  # the last two on CUDA only


def jax_device(device: torch.device) -> Any:
    """The jax device that runs BlackJAX beside genbench on ``device``; skips when jax has none of that kind."""
    platform = "cpu" if device.type == "cpu" else "gpu"
    try:
        found = jax.devices(platform)
    except RuntimeError:  # jax raises for a backend it has no plugin or device for
        pytest.skip(f"jax has no {platform} backend here (on a GPU machine: pip install 'jax[cuda13]')")
    index = 0 if platform == "cpu" else device.index or 0
    if index >= len(found):
        pytest.skip(f"jax sees {len(found)} GPU(s); torch's {device} has no counterpart there")
    return found[index]


def _x64(enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """jax's float64 switch as a context (jax.enable_x64 since 0.6, jax.experimental before)."""
    ctx = getattr(jax, "enable_x64", None)
    if ctx is None:  # pragma: no cover - older jax
        from jax.experimental import enable_x64 as ctx
    return ctx(enabled)


def blackjax_runner(sampler: str, chains: int, steps: int, dtype: str) -> Callable[[Any], Any]:
    """A jitted ``run(key) -> final positions (chains, 2)`` of BlackJAX's ULA or MALA on the seed target."""
    from blackjax.mcmc import diffusions

    dt = jnp.float64 if dtype == "float64" else jnp.float32
    m = jnp.asarray(np.asarray(SEED_MEAN), dt)
    prec = jnp.asarray(np.linalg.inv(np.asarray(SEED_COV)), dt)
    mu = jnp.asarray(STEP_SIZE, dt)  # a Python float would be promoted to float64 under x64

    def logdensity(x: Any) -> Any:
        z = x - m
        return -0.5 * z @ prec @ z

    if sampler == "mala":
        algorithm = blackjax.mala(logdensity, mu)
        init, step = algorithm.init, algorithm.step
    else:
        integrator = diffusions.overdamped_langevin(jax.value_and_grad(logdensity))

        def init(x: Any) -> Any:
            value, grad = jax.value_and_grad(logdensity)(x)
            return diffusions.DiffusionState(x, value, grad)

        def step(key: Any, state: Any) -> tuple[Any, None]:
            return integrator(key, state, mu), None

    @jax.jit
    def run(key: Any) -> Any:
        states = jax.vmap(init)(jnp.zeros((chains, 2), dt))

        def one_step(state: Any, k: Any) -> tuple[Any, None]:
            state, _ = jax.vmap(step)(jax.random.split(k, chains), state)
            return state, None

        final, _ = jax.lax.scan(one_step, states, jax.random.split(key, steps))
        return final.position

    return run


@pytest.mark.parametrize("impl", ["genbench", "blackjax"])
@pytest.mark.parametrize("chains", CHAINS, ids=count_label)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sampler", ["ula", "mala"])
def test_langevin_vs_blackjax(run: Any, device: torch.device, profile: Profile, sampler: str, dtype: str,
                              chains: int, impl: str) -> None:
    """ULA or MALA, genbench or BlackJAX, on ``chains`` chains in ``dtype`` (final states only)."""
    steps = (profile.peer_steps if device.type == "cpu" else profile.cuda_peer_steps).get(chains)
    if steps is None:
        pytest.skip(f"{count_label(chains)} chains is not a {device.type} peers size in the {profile.name} profile")
    jdev = jax_device(device)
    variant = f"{dtype},chains={count_label(chains)}"
    work = Workload(
        f"peers.{sampler}",
        "chain-steps/s",
        chains * steps,
        variant=f"{variant},{impl}",
        size={"chains": chains, "steps": steps, "dtype": dtype, "step_size": STEP_SIZE},
    )
    extra: dict[str, Any] = {"impl": impl, "jax": jax.__version__, "blackjax": blackjax.__version__}
    if impl == "genbench":
        target = seed_target(dtype=getattr(torch, dtype))
        fn = sample_ula if sampler == "ula" else sample_mala
        extra["peer"] = f"peers.{sampler}[{variant},blackjax]"  # the table divides by this record
        run(lambda: fn(target, steps, STEP_SIZE, chains=chains, seed=0, dtype=dtype, device=device), work, device, extra=extra)
        return
    x64 = dtype == "float64"
    extra["jax_device"] = str(jdev)
    with _x64(x64), jax.default_device(jdev):
        runner = blackjax_runner(sampler, chains, steps, dtype)
        key = jax.random.key(0)
        extra["compile_s"] = time_once(lambda: runner(key).block_until_ready(), device)
        out = runner(key)
        assert str(out.dtype) == dtype and out.devices() == {jdev}, (out.dtype, out.devices())

    def call() -> None:
        with _x64(x64), jax.default_device(jdev):
            runner(key).block_until_ready()

    run(call, work, device, extra=extra)
