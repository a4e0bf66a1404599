"""Shared fixtures: repository paths, offline MNIST location, CUDA skipping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# The real 10 000-image MNIST test split lies beside the checkout on the project's machines;
# GENBENCH_MNIST_TEST overrides the location elsewhere.
MNIST_TEST_ROOT = Path(os.environ.get("GENBENCH_MNIST_TEST", ROOT.parent / "shared" / "data" / "mnist"))


@pytest.fixture(scope="session")
def mnist_test_root() -> Path:
    """Root folder holding MNIST/raw/t10k-*; skips when the offline copy is absent."""
    if not (MNIST_TEST_ROOT / "MNIST" / "raw").is_dir():
        pytest.skip(f"real MNIST test split not found at {MNIST_TEST_ROOT} (set GENBENCH_MNIST_TEST)")
    return MNIST_TEST_ROOT


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``cuda`` with a reason when no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none is present")
    for item in items:
        if "cuda" in item.keywords or "cuda_heavy" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def record_check(record_property):  # type: ignore[no-untyped-def]
    """Record a CheckResult's statistic, p-value, alpha and verdict in the JUnit XML (for the report)."""

    def _record(result):  # type: ignore[no-untyped-def]
        prefix = f"check.{result.name}"
        record_property(f"{prefix}.statistic", result.statistic)
        record_property(f"{prefix}.p_value", result.p_value)
        record_property(f"{prefix}.alpha", result.alpha)
        record_property(f"{prefix}.n", result.n)
        record_property(f"{prefix}.passed", result.passed)
        if result.detectable_effect is not None:
            record_property(f"{prefix}.detectable_effect", result.detectable_effect)
        return result

    return _record
