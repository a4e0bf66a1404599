"""Shared fixtures: repository paths, offline MNIST location, CUDA skipping.

``record_check``, the ``statistical`` marker and the α budget come from genbench's pytest plugin
(``genbench/pytest_plugin.py``, loaded through its ``pytest11`` entry point when genbench is installed).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from genbench.pytest_plugin import missing_resource

# pytester: the plugin's own tests run throw-away projects (tests/test_testing_plugin.py).
pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parents[1]
# The real 10 000-image MNIST test split lies beside the checkout on the project's machines;
# GENBENCH_MNIST_TEST overrides the location elsewhere.
MNIST_TEST_ROOT = Path(os.environ.get("GENBENCH_MNIST_TEST", ROOT.parent / "shared" / "data" / "mnist"))


@pytest.fixture(scope="session")
def mnist_test_root() -> Path:
    """Root folder holding MNIST/raw/t10k-*; skips when the offline copy is absent."""
    if not (MNIST_TEST_ROOT / "MNIST" / "raw").is_dir():
        missing_resource(f"real MNIST test split not found at {MNIST_TEST_ROOT} (set GENBENCH_MNIST_TEST)")
    return MNIST_TEST_ROOT


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``cuda`` with a reason when no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none is present")
    for item in items:
        if "cuda" in item.keywords or "cuda_heavy" in item.keywords:
            item.add_marker(skip)
