"""Langevin samplers (reference loop, batched ULA, MALA, exact fast Gaussian chain), exact theory and experiments."""

from genbench.langevin.fast import gaussian_chain
from genbench.langevin.mala import MALAState, mala_init, mala_step, sample_mala
from genbench.langevin.reference import reference_langevin
from genbench.langevin.ula import Kernel, LangevinRun, sample_ula, ula_kernel, ula_step

__all__ = [
    "Kernel",
    "LangevinRun",
    "MALAState",
    "gaussian_chain",
    "mala_init",
    "mala_step",
    "reference_langevin",
    "sample_mala",
    "sample_ula",
    "ula_kernel",
    "ula_step",
]
