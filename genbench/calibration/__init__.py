"""The calibration and mutation study behind ``genbench calibrate``.

``mutants``: the catalogue of deliberately broken Langevin kernels and corrupted real-image sets;
``study``: each statistical check run K times on correct inputs (false-alarm rate) and on each
mutant (detection rate), as plain data.
"""

from genbench.calibration.mutants import IMAGE_MUTANTS, KERNEL_MUTANTS, ImageMutant, KernelMutant, image_mutant, kernel_mutant

__all__ = ["IMAGE_MUTANTS", "KERNEL_MUTANTS", "ImageMutant", "KernelMutant", "image_mutant", "kernel_mutant"]
