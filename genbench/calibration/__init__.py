"""The calibration and mutation study behind ``genbench calibrate``.

The catalogue of deliberately broken Langevin kernels and corrupted real-image sets it runs lives in
``genbench.testing.mutants`` (the conformance kit uses it too; re-exported here). ``registry``: profiles, scenarios and the registry of checks; ``langevin_checks`` and
``gan_checks``: one registration per check; ``study``: plan, run (a pure trial function, a process
pool) and write; ``summary``: binomial rates, Holm's family verdict, seed planning and the table;
``results``: the typed rows and the study, as written to calibration.json.
"""

# The check modules register their checks on import, Langevin first (table order is registration
# order): importing them here makes the registry complete whenever anything in the package is imported.
from genbench.calibration import langevin_checks  # noqa: F401, I001
from genbench.calibration import gan_checks  # noqa: F401, I001
from genbench.testing.mutants import IMAGE_MUTANTS, KERNEL_MUTANTS, ImageMutant, KernelMutant, image_mutant, kernel_mutant
from genbench.calibration.registry import PROFILES, Check, Profile, Scenario, calibration_check, checks, get_check, register
from genbench.calibration.results import CalibrationStudy, CheckRow, DetectionRow, FalseAlarmRow, FamilyVerdict, Trial
from genbench.calibration.study import code_version, plan, read_study, run_study, run_trial, write_study
from genbench.calibration.summary import FAMILY_LEVEL, format_table, planned_false_alarm_seeds

__all__ = [
    "FAMILY_LEVEL", "IMAGE_MUTANTS", "KERNEL_MUTANTS", "PROFILES", "CalibrationStudy", "Check", "CheckRow",
    "DetectionRow", "FalseAlarmRow", "FamilyVerdict", "ImageMutant", "KernelMutant", "Profile", "Scenario", "Trial",
    "calibration_check", "checks", "code_version", "format_table", "get_check", "image_mutant", "kernel_mutant", "plan",
    "planned_false_alarm_seeds", "read_study", "register", "run_study", "run_trial", "write_study",
]
