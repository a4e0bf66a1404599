"""Benchmarking: CUDA-synchronised timing helpers, the suite runner, and the regression gate.

Measurements (:mod:`~genbench.bench.timing`, :mod:`~genbench.bench.results`,
:mod:`~genbench.bench.gate`) are kept apart from presentation (:mod:`~genbench.bench.table`).
"""
