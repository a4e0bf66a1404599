"""The assignment's GAN training step: G and D built from a seed, their Adam optimisers, and one
G-then-D step run eagerly, on two CPU threads, compiled (``torch.compile``) or replayed as a CUDA graph.

The step is the seed's (its bugs fixed): G step first, BCE of D(G(z)) against "real" labels; then
the D step, BCE of D on the real batch against ones plus BCE of D on the *same* step's fakes against
zeros. Adam(2e-4, betas (0.5, 0.999)) for both.

Both halves of a step start from the same point: the G step changes only G, and the D step uses
fakes made before it. So D's forward on the fakes serves both halves, and the two halves' backward
passes and updates can run side by side (``mode="parallel"``) as long as D's weights change only
after G's backward pass has read them. Every mode but ``compile`` computes the same operations on
the same inputs as the serial step and gives bit-identical weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

from genbench._runtime import resolve_device
from genbench._validate import choice, positive_int
from genbench.errors import ParameterError
from genbench.gan.models import LATENT_DIM, Discriminator, Generator

#: Per-step statistics, in the order train_step returns them.
STATS = ("d_loss", "g_loss", "d_real", "d_fake")
#: "auto" resolves per device (see resolve_step_mode); the others are what make_step runs.
STEP_MODES = ("auto", "eager", "parallel", "compile", "cuda_graph")

StepFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def build_models(seed: int, device: str | torch.device = "cpu") -> tuple[Generator, Discriminator]:
    """G and D initialised from ``seed`` (on CPU, so every device starts from the same weights)."""
    seed = positive_int("seed", seed, minimum=0)
    # nn.Linear draws from the global RNG; fork it so the caller's global state is left untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen, disc = Generator(), Discriminator()
    dev = resolve_device(device)
    return gen.to(dev), disc.to(dev)


def build_optimizers(
    gen: Generator, disc: Discriminator, lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999), *, capturable: bool = False
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for G and for D with the assignment's settings; ``capturable`` for CUDA-graph capture."""
    # The fused Adam kernel (CPU and CUDA) is the same update as the per-parameter loop and the
    # fastest of the three on CPU (benchmarks/test_gan.py::test_step_knobs); CUDA-graph capture uses
    # the capturable (foreach) variant instead.
    kw: dict[str, Any] = {"lr": lr, "betas": tuple(betas)}
    kw.update({"capturable": True} if capturable else {"fused": True})
    return torch.optim.Adam(gen.parameters(), **kw), torch.optim.Adam(disc.parameters(), **kw)


def _params(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in opt.param_groups for p in group["params"]]


def _set_grads(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> None:
    for p, g in zip(params, grads):
        p.grad = g


def train_step(
    gen: Generator,
    disc: Discriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
) -> torch.Tensor:
    """One seed-faithful G-then-D step; returns detached (d_loss, g_loss, mean D(x), mean D(G(z)))."""
    fake = gen(z)
    # The G step changes only G, so D's output on this step's fakes is the same in the G step and in
    # the D step: one forward serves both, bit-identical to the seed's two forwards and a tenth less
    # arithmetic per step.
    d_fake = disc(fake)
    # G step: fool D, BCE against "real" labels. autograd.grad rather than backward(): G's step needs
    # no gradients for D's weights. The graph is kept for D's step, which backpropagates through it.
    g_loss = F.binary_cross_entropy(d_fake, torch.ones_like(d_fake))
    g_params = _params(opt_g)
    _set_grads(g_params, torch.autograd.grad(g_loss, g_params, retain_graph=True))
    opt_g.step()
    # D step: the real batch against ones, this step's fakes (made before G's update) against zeros.
    # Gradients for D's weights only, so nothing flows back into G (the seed's fake.detach()).
    d_real = disc(real)
    d_loss = F.binary_cross_entropy(d_real, torch.ones_like(d_real)) + F.binary_cross_entropy(d_fake, torch.zeros_like(d_fake))
    d_params = _params(opt_d)
    _set_grads(d_params, torch.autograd.grad(d_loss, d_params))
    opt_d.step()
    return torch.stack([d_loss.detach(), g_loss.detach(), d_real.detach().mean(), d_fake.detach().mean()])


def resolve_step_mode(mode: str, device: torch.device) -> str:
    """The step mode ``mode`` stands for on ``device``: "auto" is "parallel" on a CPU with >= 2 torch threads, else "eager"."""
    mode = choice("step_mode", mode, STEP_MODES)
    if mode != "auto":
        return mode
    return "parallel" if device.type == "cpu" and torch.get_num_threads() >= 2 else "eager"


def make_step(
    gen: Generator,
    disc: Discriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    *,
    mode: str = "eager",
    batch_size: int = 64,
) -> StepFn:
    """A callable ``step(real, z) -> stats`` running ``train_step`` eagerly, on two threads, compiled, or as a CUDA graph."""
    dev = next(gen.parameters()).device
    mode = resolve_step_mode(choice("mode", mode, STEP_MODES), dev)

    def eager(real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return train_step(gen, disc, opt_g, opt_d, real, z)

    if mode == "eager":
        return eager
    if mode == "parallel":
        return _parallel_step(gen, disc, opt_g, opt_d)
    if mode == "compile":
        compiled = torch.compile(train_step, mode="reduce-overhead" if dev.type == "cuda" else "default")

        def step(real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
            # clone: with CUDA graphs the output buffer is overwritten by the next replay.
            return compiled(gen, disc, opt_g, opt_d, real, z).clone()

        return step
    return _cuda_graph_step(gen, disc, opt_g, opt_d, positive_int("batch_size", batch_size), eager)


def _parallel_step(gen: Generator, disc: Discriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer) -> StepFn:
    """``train_step`` with D's half on a second thread: bit-identical results, about 1.5x the steps per second on two cores.

    Run it with one intra-op thread per half (``torch.set_num_threads(cores // 2)``): two coarse
    tasks per step keep both cores busy where OpenMP's per-operation threads wait on each other.
    """
    # Thread-level rather than intra-op parallelism: one sync point per half instead of one per
    # operation, which also survives a shared, oversubscribed machine (where 2 intra-op threads ran
    # 15x slower than 1 here; benchmarks/test_gan.py::test_step_knobs).
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genbench-gan-d")
    g_params, d_params = _params(opt_g), _params(opt_d)
    labels: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # batch size -> (ones, zeros), made once

    def step(real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        on_real = worker.submit(disc, real)  # D on the real batch while G makes the fakes
        b = real.shape[0]
        if b not in labels:
            labels[b] = (torch.ones(b, 1, device=real.device), torch.zeros(b, 1, device=real.device))
        ones, zeros = labels[b]
        fake = gen(z)
        d_fake = disc(fake)
        g_loss = F.binary_cross_entropy(d_fake, ones)
        d_real = on_real.result()
        d_loss = F.binary_cross_entropy(d_real, ones) + F.binary_cross_entropy(d_fake, zeros)
        g_read_d = threading.Event()

        def d_half() -> None:
            _set_grads(d_params, torch.autograd.grad(d_loss, d_params, retain_graph=True))
            g_read_d.wait()  # G's backward pass reads D's weights: update them only after it
            opt_d.step()

        d_done = worker.submit(d_half)
        try:
            (grad_fake,) = torch.autograd.grad(g_loss, fake, retain_graph=True)
        finally:
            g_read_d.set()  # also on error, so the worker never waits forever
        try:
            _set_grads(g_params, torch.autograd.grad(fake, g_params, grad_fake))
            opt_g.step()
        finally:
            d_done.result()
        return torch.stack([d_loss.detach(), g_loss.detach(), d_real.detach().mean(), d_fake.detach().mean()])

    return step


@contextlib.contextmanager
def step_threads(mode: str) -> Iterator[None]:
    """Within the block, give each half of a "parallel" step half of torch's intra-op threads (restored after)."""
    before = torch.get_num_threads()
    if mode == "parallel":
        torch.set_num_threads(max(1, before // 2))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _opt_tensors(opt: torch.optim.Optimizer) -> list[tuple[dict[str, Any], str, torch.Tensor | None]]:
    out = []
    for group in opt.param_groups:
        for p in group["params"]:
            st = opt.state.get(p, {})
            for k in ("step", "exp_avg", "exp_avg_sq"):
                out.append((st, k, st[k].detach().clone() if k in st else None))
            out.append(({"p": p}, "p", p.detach().clone()))
    return out


def _cuda_graph_step(
    gen: Generator, disc: Discriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, batch_size: int, eager: StepFn
) -> StepFn:
    """Capture one whole training step in a CUDA graph (PyTorch's "whole-network capture" recipe)."""
    dev = next(gen.parameters()).device
    if dev.type != "cuda":
        raise ParameterError("step mode 'cuda_graph' needs the models on a CUDA device")
    for opt in (opt_g, opt_d):
        if not all(g.get("capturable", False) for g in opt.param_groups):
            raise ParameterError("step mode 'cuda_graph' needs optimisers built with capturable=True")
    static_real = torch.zeros(batch_size, 1, 28, 28, device=dev)
    static_z = torch.zeros(batch_size, LATENT_DIM, device=dev)
    # Warm-up steps (needed before capture) really update weights and Adam moments: snapshot the
    # state first and put it back in place afterwards, so capturing changes nothing.
    opt_g.zero_grad(set_to_none=True)
    opt_d.zero_grad(set_to_none=True)
    before = [(st, k, v) for opt in (opt_g, opt_d) for st, k, v in _opt_tensors(opt)]
    side = torch.cuda.Stream(dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):
        for _ in range(3):
            train_step(gen, disc, opt_g, opt_d, static_real, static_z)
    torch.cuda.current_stream(dev).wait_stream(side)
    opt_g.zero_grad(set_to_none=True)
    opt_d.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = train_step(gen, disc, opt_g, opt_d, static_real, static_z)
    with torch.no_grad():
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                for p in group["params"]:
                    st = opt.state[p]
                    for k in ("step", "exp_avg", "exp_avg_sq"):
                        st[k].zero_()  # a fresh Adam state, unless the snapshot below had one
        for st, k, v in before:
            if v is not None:
                st[k].copy_(v)
    torch.cuda.synchronize(dev)

    def step(real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if real.shape[0] != batch_size:  # the last, smaller batch of an epoch runs eagerly
            return eager(real, z)
        static_real.copy_(real)
        static_z.copy_(z)
        graph.replay()
        return static_out.clone()

    return step
