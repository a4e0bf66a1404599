"""GAN checkpoints: one format for plain and data-parallel training, written atomically, read
safely (``weights_only``), and restored in place for an exact resume."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import torch

from genbench._io import atomic_path
from genbench._runtime import resolve_device
from genbench.errors import CheckpointError, DistributedError
from genbench.gan.data import MnistData
from genbench.gan.models import Discriminator, Generator
from genbench.gan.state import RESUME_MUST_MATCH, TrainConfig, TrainState
from genbench.gan.step import STATS

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "genbench.gan.checkpoint/1"
#: What a config saved before ``shuffle`` existed meant: genbench then always shuffled.
_LEGACY_CONFIG = {"shuffle": True}


def data_fingerprint(data: MnistData) -> str:
    """MD5 of the digits and labels a run trains on (a resumed run must use the same)."""
    h = hashlib.md5(usedforsecurity=False)
    h.update(data.pixels.contiguous().numpy().tobytes())
    h.update(data.labels.cpu().numpy().astype("<i8").tobytes())
    return h.hexdigest()


def save_checkpoint(
    path: Path,
    gen: torch.nn.Module,
    disc: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    *,
    cfg: TrainConfig,
    state: TrainState,
    steps_per_epoch: int,
    noise: torch.Generator,
    data_source: str,
    fingerprint: str,
    distributed: dict[str, Any] | None = None,
) -> None:
    """Write the whole training state to ``path`` atomically (``distributed``: the DDP launch record)."""
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "generator": gen.state_dict(),
        "discriminator": disc.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "step": state.step,
        "epoch": state.step // steps_per_epoch,
        "config": cfg.to_dict(),
        "data_source": data_source,
        "data_fingerprint_md5": fingerprint,
        # The data order needs no state (seeded per epoch); the noise generator's state is all there is.
        "rng": {"noise": noise.get_state(), "noise_device": str(noise.device)},
        "history": {
            "steps": state.per_step.clone(), "wall_time_s": state.wall_time_s, "segments": state.all_segments(),
            "epoch_times": {str(k): [float(x) for x in v] for k, v in state.epoch_times.items()},
        },
        "torch_version": str(torch.__version__),
    }
    if distributed is not None:
        ckpt["distributed"] = distributed
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a genbench GAN checkpoint safely (weights_only) onto the CPU, checking its format."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {os.fspath(p)!r} does not exist" if not p.exists() else f"checkpoint {os.fspath(p)!r} is not a file")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError/... for damaged files
        raise CheckpointError(f"checkpoint {os.fspath(p)!r} is corrupt or not a torch checkpoint ({_reason(exc)})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {os.fspath(p)!r} is not a genbench GAN checkpoint (format {CHECKPOINT_FORMAT})")
    missing = [k for k in ("generator", "discriminator", "opt_g", "opt_d", "step", "config", "rng", "history") if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {os.fspath(p)!r} lacks {', '.join(missing)}")
    return ckpt


#: Lines of torch.load's own advice (about weights_only, filing an issue): not about the file.
_TORCH_ADVICE = ("Weights only load failed", "Please file an issue", "Check the documentation", "Re-running",
                 "weights_only")


def _reason(exc: BaseException) -> str:
    """The informative line of a (often multi-line) torch.load error, without torch's advice or ANSI codes."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in str(exc).splitlines() if ln.strip()]
    informative = [ln for ln in lines if not any(a in ln for a in _TORCH_ADVICE)]
    pick = informative[-1] if informative else ""
    return f"{type(exc).__name__}: {pick.split('. ')[0][:200]}" if pick else type(exc).__name__


def _load_state(module: torch.nn.Module, state: Any, path: Path, what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, KeyError, AttributeError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"checkpoint {os.fspath(path)!r}: the {what} does not match the assignment's architecture ({detail})") from exc


def _load_trained(checkpoint: str | os.PathLike[str], device: str | torch.device, module: torch.nn.Module, key: str) -> Any:
    dev = resolve_device(device)
    _load_state(module, load_checkpoint(checkpoint)[key], Path(checkpoint), key)
    return module.to(dev).eval()


def load_generator(checkpoint: str | os.PathLike[str], device: str | torch.device = "cpu") -> Generator:
    """The trained generator of a checkpoint, on ``device``, in eval mode."""
    return _load_trained(checkpoint, device, Generator(), "generator")


def load_discriminator(checkpoint: str | os.PathLike[str], device: str | torch.device = "cpu") -> Discriminator:
    """The trained discriminator of a checkpoint, on ``device``, in eval mode."""
    return _load_trained(checkpoint, device, Discriminator(), "discriminator")


def _restore_optimizer(opt: torch.optim.Optimizer, state: Any, path: Path, what: str) -> None:
    # The implementation flags (fused/capturable/foreach) describe the run that saved the state, not
    # this one: keep this run's, and put each "step" counter where this implementation expects it.
    flags = [{k: g.get(k) for k in ("fused", "capturable", "foreach")} for g in opt.param_groups]
    try:
        opt.load_state_dict(state)
    except (ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {os.fspath(path)!r}: the {what} state does not match ({' '.join(str(exc).split())[:200]})") from exc
    for group, keep in zip(opt.param_groups, flags):
        group.update(keep)
        on_device = bool(keep["fused"] or keep["capturable"])
        for p in group["params"]:
            st = opt.state.get(p)
            if st and "step" in st:
                st["step"] = st["step"].to(p.device if on_device else "cpu")


def restore_training_state(
    ckpt: dict[str, Any],
    path: Path,
    cfg: TrainConfig,
    fingerprint: str,
    device: torch.device,
    gen: torch.nn.Module,
    disc: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    noise: torch.Generator,
    *,
    world_size: int | None = None,
) -> TrainState:
    """Load a checkpoint's models, optimisers and noise state in place and return where the run stood.

    ``world_size`` is None for plain training and the launch's process count for DDP training.
    """
    saved_world = int((ckpt.get("distributed") or {}).get("world_size", 1))
    if saved_world != (world_size or 1):
        # The epochs' split of the data depends on the world size: another one would silently
        # continue with another split and wrong epoch numbers.
        if world_size is None:
            raise CheckpointError(
                f"checkpoint {os.fspath(path)!r} was trained with --distributed on {saved_world} processes; "
                "resume it with torchrun ... --distributed"
            )
        raise DistributedError(
            f"checkpoint {os.fspath(path)!r} was trained with world size {saved_world} but this launch has "
            f"{world_size}; resume it with the same total number of processes (e.g. --nproc-per-node {saved_world} on one node)"
        )
    _check_resumable(ckpt, cfg, fingerprint, device, path)
    _load_state(gen, ckpt["generator"], path, "generator")
    _load_state(disc, ckpt["discriminator"], path, "discriminator")
    _restore_optimizer(opt_g, ckpt["opt_g"], path, "generator optimiser")
    _restore_optimizer(opt_d, ckpt["opt_d"], path, "discriminator optimiser")
    try:
        noise.set_state(ckpt["rng"]["noise"])
        hist = ckpt["history"]
        state = TrainState(
            step=int(ckpt["step"]),
            per_step=hist["steps"].to(torch.float32),
            wall_time_s=float(hist["wall_time_s"]),
            segments=list(hist["segments"]),
            epoch_times={int(k): list(v) for k, v in hist.get("epoch_times", {}).items()},
        )
    except (KeyError, TypeError, RuntimeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {os.fspath(path)!r} has damaged training state ({exc})") from exc
    if state.per_step.shape != (state.step, len(STATS)):
        raise CheckpointError(f"checkpoint {os.fspath(path)!r} has a history of {state.per_step.shape[0]} steps but step {state.step}")
    return state


def _check_resumable(ckpt: dict[str, Any], cfg: TrainConfig, fingerprint: str, dev: torch.device, path: Path) -> None:
    saved = ckpt["config"]
    if not isinstance(saved, dict):
        raise CheckpointError(f"checkpoint {os.fspath(path)!r} has no readable config")
    saved = {**_LEGACY_CONFIG, **saved}
    now = cfg.to_dict()
    diffs = [f"{k} {saved.get(k)!r} -> {now[k]!r}" for k in RESUME_MUST_MATCH if saved.get(k) != now[k]]
    if diffs:
        raise CheckpointError(f"checkpoint {os.fspath(path)!r} was trained with a different config: {'; '.join(diffs)} (resume needs the same)")
    if ckpt.get("data_fingerprint_md5") != fingerprint:
        raise CheckpointError(
            f"checkpoint {os.fspath(path)!r} was trained on other data ({ckpt.get('data_source')!r}); resume needs the same data"
        )
    saved_dev = str(ckpt["rng"].get("noise_device", "cpu"))
    if torch.device(saved_dev).type != dev.type:
        raise CheckpointError(f"checkpoint {os.fspath(path)!r} was trained on {saved_dev}; resume it with device={saved_dev!r}")
