"""Langevin throughput: the assignment's loop, batched ULA, MALA, the exact fast single chain.

Every benchmark calls the library function the CLI calls (no copies) on the assignment's
target N((1,1), [[1,.9],[.9,1]]) with its chosen step size mu = 0.01, and reports chain-steps/s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from genbench.bench.profiles import Profile
from genbench.bench.timing import Workload, count_label
from genbench.langevin.experiments import run_grid
from genbench.langevin.fast import gaussian_chain
from genbench.langevin.mala import sample_mala
from genbench.langevin.reference import reference_langevin
from genbench.langevin.ula import sample_ula
from genbench.targets import seed_target

STEP_SIZE = 0.01  # the assignment's conclusion: T = 1e5, mu = 0.01
REFERENCE = "langevin.reference"


def _cpu_only(device: torch.device, why: str) -> None:
    if device.type != "cpu":
        pytest.skip(why)


def test_reference_loop(run: Any, device: torch.device, profile: Profile) -> None:
    """The assignment's one-Python-iteration-per-step loop: the speed baseline of every variant."""
    _cpu_only(device, "the assignment's loop is CPU-only (NumPy output per step)")
    steps = profile.reference_steps
    work = Workload(REFERENCE, "chain-steps/s", steps, size={"chains": 1, "steps": steps}, baseline=REFERENCE)
    run(lambda: reference_langevin(steps, STEP_SIZE, seed=0), work, device)


def _ula(device: torch.device, chains: int, steps: int, dtype: torch.dtype, variant: str,
         keep: str = "final") -> tuple[Workload, Callable[[], Any]]:
    """The workload and the call of sample_ula on ``chains`` chains for ``steps`` steps in ``dtype``, keeping ``keep``."""
    target = seed_target(dtype=dtype, device=device)
    work = Workload(
        "langevin.ula",
        "chain-steps/s",
        chains * steps,
        variant=variant,
        size={"chains": chains, "steps": steps, "dtype": str(dtype).removeprefix("torch."), "keep": keep},
        baseline=REFERENCE,
    )
    return work, lambda: sample_ula(target, steps, STEP_SIZE, chains=chains, seed=0, device=device, dtype=dtype, keep=keep)


def _time_ula(run: Any, device: torch.device, chains: int, steps: int, dtype: torch.dtype, variant: str,
              keep: str = "final", companion: tuple[Workload, Callable[[], Any]] | None = None) -> None:
    """Time sample_ula on ``chains`` chains for ``steps`` steps in ``dtype``, keeping what ``keep`` says."""
    work, call = _ula(device, chains, steps, dtype, variant, keep)
    run(call, work, device, companion=companion)


@pytest.mark.parametrize("chains", [1_000, 100_000, 1_000_000, 10_000_000], ids=count_label)
def test_ula_batched(run: Any, device: torch.device, profile: Profile, chains: int) -> None:
    """sample_ula on ``chains`` independent chains, keeping only the final state."""
    sizes = profile.cuda_ula_steps if device.type == "cuda" else profile.ula_steps
    if chains not in sizes:
        pytest.skip(f"{count_label(chains)} chains is not a {device.type} size in the {profile.name} profile")
    _time_ula(run, device, chains, sizes[chains], torch.float64, f"chains={count_label(chains)}")


def test_ula_batched_float32(run: Any, device: torch.device, profile: Profile) -> None:
    """sample_ula at 1e5 chains in float32 (the 100 M chain-steps/s target on 2 CPU cores)."""
    chains = 100_000
    sizes = profile.cuda_ula_steps if device.type == "cuda" else profile.ula_steps
    _time_ula(run, device, chains, sizes[chains], torch.float32, f"chains={count_label(chains)},float32")


def test_ula_streaming_stats(run: Any, device: torch.device, profile: Profile) -> None:
    """sample_ula at 1e5 chains, float64, keep="stats", each round right after a keep="final" call (its companion).

    The streaming-statistics gate divides the two. Interleaved round by round, because on a shared
    machine speed drifts between benchmarks a minute or a second apart by more than the 3-4% that
    the sums cost: with the two as separate benchmarks, even back to back, the quick profile's gate
    failed 1 run in 16 here (2026-11-30).
    """
    chains = 100_000
    steps = (profile.cuda_ula_steps if device.type == "cuda" else profile.ula_steps)[chains]
    label = count_label(chains)
    final = _ula(device, chains, steps, torch.float64, f"chains={label},final")
    _time_ula(run, device, chains, steps, torch.float64, f"chains={label},stats", keep="stats", companion=final)


def test_mala_batched(run: Any, device: torch.device, profile: Profile) -> None:
    """sample_mala (ULA proposal + Metropolis-Hastings correction) on many chains."""
    chains, steps = profile.mala_chains, profile.mala_steps
    target = seed_target(device=device)
    work = Workload(
        "langevin.mala",
        "chain-steps/s",
        chains * steps,
        variant=f"chains={count_label(chains)}",
        size={"chains": chains, "steps": steps, "dtype": "float64"},
        baseline=REFERENCE,
    )
    run(lambda: sample_mala(target, steps, STEP_SIZE, chains=chains, seed=0, device=device), work, device)


def test_fast_gaussian_chain(run: Any, device: torch.device, profile: Profile) -> None:
    """The exact single-chain fast path (AR(1) recursions in scipy.signal.lfilter), 1e5 steps a call."""
    _cpu_only(device, "the fast single-chain path runs in SciPy on the CPU")
    steps = profile.fast_steps
    target = seed_target()
    work = Workload(
        "langevin.fast",
        "chain-steps/s",
        steps,
        variant=f"steps={count_label(steps)}",
        size={"chains": 1, "steps": steps},
        baseline=REFERENCE,
    )
    # One call lasts ~10 ms: 10 calls per round keep the timer's resolution irrelevant.
    run(lambda: gaussian_chain(target, steps, STEP_SIZE, seed=0), work, device, iterations=10)


@pytest.mark.parametrize("method", ["reference", "fast"])
def test_seed_grid(run: Any, device: torch.device, profile: Profile, method: str) -> None:
    """The assignment's whole 3x3 (T x mu) study, run_grid(method=...): its loop vs the fast path."""
    _cpu_only(device, "run_grid runs one chain per cell on the CPU (loop or SciPy filter)")
    steps, mus = profile.grid_steps, profile.grid_step_sizes
    work = Workload(
        "langevin.grid",
        "chain-steps/s",
        sum(steps) * len(mus),
        variant=method,
        size={"steps": list(steps), "step_sizes": list(mus), "cells": len(steps) * len(mus)},
        baseline="langevin.grid[reference]",
    )
    # One reference round is the slowest call of the suite (~25 s on 2 cores): no warm-up round,
    # since the loop has no lazy initialisation to amortise.
    run(
        lambda: run_grid(steps, mus, seed=42, method=method),
        work,
        device,
        rounds=profile.grid_rounds,
        warmup_rounds=0 if method == "reference" else None,
    )
