"""Device, dtype and seeding helpers: explicit parameters, never globals."""

from __future__ import annotations

import torch

from genbench._validate import SEED_LIMIT
from genbench.errors import DeviceError, ParameterError

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(device: str | torch.device | None = "cpu") -> torch.device:
    """Return a torch.device for ``device`` ("cpu", "cuda", "cuda:N"), raising if CUDA is absent."""
    if device is None:
        device = "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("device='cuda' was requested but CUDA is not available here; use device='cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif dev.type != "cpu":
        raise ParameterError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
    return dev


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """Return a floating torch.dtype for ``dtype`` ("float32"/"float64" or a torch dtype)."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ParameterError(f"dtype must be float32 or float64, got {dtype}")
        return dtype
    if dtype not in DTYPES:
        raise ParameterError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """Return a torch.Generator on ``device`` seeded with ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise ParameterError(f"seed must be a non-negative integer below 2**63, got {seed!r}")
    gen = torch.Generator(device=resolve_device(device))
    gen.manual_seed(seed)
    return gen


def synchronize(device: torch.device | str) -> None:
    """Wait for queued kernels on ``device`` (no-op on CPU), so timings cover the work."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def device_name(device: torch.device | str) -> str:
    """Return a human-readable name of ``device`` (GPU model, or "cpu")."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return "cpu"
