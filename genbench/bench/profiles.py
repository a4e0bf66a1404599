"""Benchmark profiles: how many rounds, and how big each workload's timed call is.

``quick`` finishes in <= 5 minutes on 2 CPU cores (pytest start-up included) and still runs
7 timed rounds per benchmark, the fewest at which a baseline rank test can decide (asv's floor).
``full`` uses more rounds and the assignment's full problem sizes. Sizes are chosen so that one
timed call lasts roughly 0.05-1 s on 2 CPU cores: long enough to swamp timer and Python overhead,
short enough for many rounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genbench._validate import choice


@dataclass(frozen=True)
class Profile:
    """Rounds and per-workload sizes of one benchmark profile."""

    name: str
    rounds: int  # timed rounds per benchmark
    warmup_rounds: int  # untimed rounds first (allocator, caches, lazy init)
    reference_steps: int  # steps of the assignment's Python loop per call
    ula_steps: dict[int, int] = field(default_factory=dict)  # chains -> steps per call (CPU)
    cuda_ula_steps: dict[int, int] = field(default_factory=dict)  # chains -> steps per call (CUDA)
    mala_chains: int = 100_000
    mala_steps: int = 20
    peer_steps: dict[int, int] = field(default_factory=dict)  # chains -> steps, genbench beside BlackJAX
    cuda_peer_steps: dict[int, int] = field(default_factory=dict)  # the same on the GPU (jax's GPU backend)
    fast_steps: int = 100_000  # single Gaussian chain of 10^5 steps
    grid_steps: tuple[int, ...] = (1_000, 10_000, 100_000)  # the seed's T values
    grid_step_sizes: tuple[float, ...] = (0.001, 0.01, 0.15)  # the seed's mu values
    grid_rounds: int = 7  # the reference grid is the slowest workload (no warm-up round for it)
    gan_steps: int = 10  # training steps per timed call
    gan_compile_steps: int = 200  # compiled / CUDA-graph steps per timed call (CUDA only)
    mnist_limit: int | None = None
    quality_images: int = 2_000

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.warmup_rounds < 0:
            raise ValueError("rounds must be >= 1 and warmup_rounds >= 0")


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        rounds=7,
        warmup_rounds=1,
        reference_steps=2_000,
        ula_steps={1_000: 500, 100_000: 20, 1_000_000: 3},
        cuda_ula_steps={1_000: 1_000, 100_000: 1_000, 1_000_000: 200, 10_000_000: 20},
        mala_chains=100_000,
        mala_steps=5,
        # One size beside BlackJAX (the one where eager stepping used to lose); full has all five.
        peer_steps={1_000: 500},
        cuda_peer_steps={1_000: 1_000},
        fast_steps=100_000,
        # The seed's full 3x3 grid (its 10x speed target is for it): the loop takes ~25 s a round on
        # 2 cores, so 3 rounds -- enough for the ratio gate, too few for a baseline rank test.
        grid_steps=(1_000, 10_000, 100_000),
        grid_rounds=3,
        gan_steps=10,
        gan_compile_steps=200,
        quality_images=500,
    ),
    "full": Profile(
        name="full",
        rounds=20,
        warmup_rounds=2,
        reference_steps=10_000,
        ula_steps={1_000: 1_000, 100_000: 100, 1_000_000: 10},
        cuda_ula_steps={1_000: 5_000, 100_000: 5_000, 1_000_000: 1_000, 10_000_000: 100},
        mala_chains=100_000,
        mala_steps=50,
        peer_steps={1: 50_000, 100: 5_000, 1_000: 2_000, 10_000: 200, 100_000: 50},
        # The CPU's chain counts and the GPU's own sizes (1e6, 1e7); a call lasts ~25-250 ms when a step
        # costs 25-250 us, so the whole GPU table (56 benchmarks) takes about 2 minutes.
        cuda_peer_steps={1: 1_000, 100: 1_000, 1_000: 1_000, 10_000: 1_000, 100_000: 500, 1_000_000: 100,
                         10_000_000: 20},
        fast_steps=100_000,
        grid_steps=(1_000, 10_000, 100_000),
        grid_rounds=7,
        gan_steps=50,
        gan_compile_steps=1_000,
        quality_images=2_000,  # evaluate_generator default; needs 2n held-out test digits
    ),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name`` ("quick" or "full")."""
    return PROFILES[choice("profile", name, tuple(PROFILES))]
