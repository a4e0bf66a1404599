"""Shared fixtures: repository paths, offline MNIST location, CUDA skipping.

``record_check``, the ``statistical`` marker and the α budget come from genbench's pytest plugin
(``genbench/pytest_plugin.py``, loaded through its ``pytest11`` entry point when genbench is installed).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genbench.gan.data import default_roots, find_test_root
from genbench.pytest_plugin import missing_resource

# pytester: the plugin's own tests run throw-away projects (tests/test_testing_plugin.py).
pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mnist_test_root() -> Path:
    """Root folder holding MNIST/raw/t10k-*; a missing resource (skip, or fail with GENBENCH_REQUIRE_DATA=1)."""
    root = find_test_root()  # genbench.gan.data's one search order: $GENBENCH_DATA, else ./data, the cache
    if root is None:
        searched = ", ".join(str(r) for r in default_roots())
        missing_resource(f"real MNIST test split (MNIST/raw/t10k-*) not found in {searched}; set GENBENCH_DATA")
    return root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``cuda`` with a reason when no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none is present")
    for item in items:
        if "cuda" in item.keywords or "cuda_heavy" in item.keywords:
            item.add_marker(skip)
