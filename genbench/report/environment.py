"""Facts about where and how a report was produced (versions, device, git commit)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["environment", "git_commit"]


def git_commit(repo: str | os.PathLike[str] | None = None) -> str:
    """Return ``<sha>`` (``+dirty`` when tracked files changed) of the project in ``repo`` (default: the current folder)."""
    cwd = Path(repo) if repo else Path.cwd()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return sha + ("+dirty" if dirty else "")


def environment(device: str) -> dict[str, Any]:
    """Python, platform, CPU count, torch/numpy versions, CUDA device (or none), the project's git commit."""
    import numpy
    import torch

    from genbench import __version__

    if torch.cuda.is_available():
        cuda = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}, {torch.cuda.device_count()} device(s))"
    else:
        cuda = "none"
    return {
        "genbench": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda_device": cuda,
        "device": device,
        "git_commit": git_commit(),  # of the project the report ran in (its tests and benchmarks)
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
