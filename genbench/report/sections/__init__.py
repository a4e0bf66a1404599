"""The report's sections, one module each: ``run(config, profile, work)`` measures and returns typed
data; ``render(data)`` turns that data into the page model (``genbench.report.model``) and figures.

``stage(config, work)`` is ``render(run(...))`` for the report's build; tests and other front ends
call ``run`` and ``render`` apart (render never runs an experiment).
"""

from __future__ import annotations

from genbench.report.sections import bench, calibration, gan, langevin, samplers, tests

__all__ = ["SECTIONS", "bench", "calibration", "gan", "langevin", "samplers", "tests"]

# Report order: the assignment's two methods, the samplers judged by the conformance kit, then the
# suite's own health (tests, benchmarks, calibration).
SECTIONS = (langevin, gan, samplers, tests, bench, calibration)
