"""The assignment's GAN training step: G and D built from a seed, their Adam optimisers, and one
G-then-D step run eagerly, on two CPU threads (autograd's operations, or ``fused``: the step's
matrix products written out and shared between its halves), compiled (``torch.compile``) or replayed
as a CUDA graph.

The step is the seed's (its bugs fixed): G step first, BCE of D(G(z)) against "real" labels; then
the D step, BCE of D on the real batch against ones plus BCE of D on the *same* step's fakes against
zeros. Adam(2e-4, betas (0.5, 0.999)) for both.

Both halves of a step start from the same point: the G step changes only G, and the D step uses
fakes made before it. So D's forward on the fakes serves both halves, and the two halves' backward
passes and updates can run side by side (``mode="parallel"``) as long as D's weights change only
after G's backward pass has read them. Every mode but ``compile`` computes the same operations on
the same inputs as the serial step and gives bit-identical weights, except ``fused`` (the same
arithmetic grouped differently: agrees with ``eager`` to float32 rounding, see _fused_step).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import optimizer as torch_optimizer

from genbench._runtime import resolve_device
from genbench._validate import choice, positive_int
from genbench.errors import ParameterError
from genbench.gan.models import LATENT_DIM, LEAKY_SLOPE, Discriminator, Generator

#: Per-step statistics, in the order train_step returns them.
STATS = ("d_loss", "g_loss", "d_real", "d_fake")
#: "auto" resolves per device (see resolve_step_mode); the others are what make_step runs.
STEP_MODES = ("auto", "eager", "parallel", "fused", "compile", "cuda_graph")

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


def _has_step_hooks(opt: torch.optim.Optimizer) -> bool:
    """Whether ``opt.step()`` would run hooks (also when this torch keeps them elsewhere: then assume it would)."""
    hooks = [getattr(opt, "_optimizer_step_pre_hooks", None), getattr(opt, "_optimizer_step_post_hooks", None),
             getattr(torch_optimizer, "_global_optimizer_pre_hooks", None), getattr(torch_optimizer, "_global_optimizer_post_hooks", None)]
    return any(h is None or len(h) > 0 for h in hooks)


class _AdamCall:
    """``opt.step()`` for one fixed subset of an Adam's parameters, as one ``torch._fused_adam_`` call.

    Optimizer.step spends ~0.2 ms of Python a call (hooks, grouping tensors, state checks): 3 calls
    in a ~6 ms fused step, holding the GIL the other thread needs (benchmarks/test_gan.py::
    test_step_knobs, "fused_step_two_threads,adam=optimizer_step"). This is the call that
    Adam(fused=True) itself ends in, on the same state tensors, so the update is bit-identical. The
    first step (Adam builds its state), other Adam options and step hooks go through ``opt.step()``;
    a state or param group replaced by load_state_dict is read afresh.
    """

    def __init__(self, opt: torch.optim.Optimizer, params: Sequence[torch.Tensor]) -> None:
        self.opt, self.params = opt, list(params)
        self.states: list[dict[str, Any]] = []
        self.lists: tuple[list[torch.Tensor], ...] = ()

    def _group(self) -> dict[str, Any] | None:
        """The one param group holding all of ``params`` (looked up each call: load_state_dict replaces groups)."""
        groups = [g for g in self.opt.param_groups if any(p is q for q in g["params"] for p in self.params)]
        if len(groups) != 1 or not all(any(p is q for q in groups[0]["params"]) for p in self.params):
            return None
        return groups[0]

    def _direct(self, g: dict[str, Any] | None) -> bool:
        if (g is None or not isinstance(self.opt, torch.optim.Adam) or not g.get("fused") or g.get("amsgrad")
                or g.get("maximize") or g.get("weight_decay") or g.get("decoupled_weight_decay") or g.get("capturable")
                or g.get("differentiable") or torch.is_tensor(g["lr"])
                or _has_step_hooks(self.opt)):
            return False
        state = self.opt.state
        if len(self.states) != len(self.params) or any(state.get(p) is not s for p, s in zip(self.params, self.states)):
            states = [state.get(p) for p in self.params]
            if not all(s and {"step", "exp_avg", "exp_avg_sq"} <= s.keys() for s in states):
                return False  # the first step: Adam builds the state
            self.states = states  # type: ignore[assignment]
            self.lists = tuple([s[k] for s in self.states] for k in ("exp_avg", "exp_avg_sq", "step"))
        return True

    def __call__(self, grads: Sequence[torch.Tensor]) -> None:
        """Apply one Adam update to ``params`` with ``grads``."""
        g = self._group()
        if not self._direct(g):
            others = [p for group in self.opt.param_groups for p in group["params"] if all(p is not q for q in self.params)]
            saved = [p.grad for p in others]
            _set_grads(others, [None] * len(others))  # type: ignore[list-item]
            _set_grads(self.params, grads)
            try:
                self.opt.step()
            finally:
                _set_grads(self.params, [None] * len(self.params))  # type: ignore[list-item]
                _set_grads(others, saved)
            return
        assert g is not None
        exp_avgs, exp_avg_sqs, steps = self.lists
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(self.params, list(grads), exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=float(g["lr"]),
                           beta1=float(g["betas"][0]), beta2=float(g["betas"][1]), weight_decay=0.0, eps=float(g["eps"]),
                           maximize=False, grad_scale=None, found_inf=None)


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
    """The step mode ``mode`` stands for on ``device``: "auto" is "fused" on a CPU, "eager" elsewhere."""
    mode = choice("step_mode", mode, STEP_MODES)
    if mode != "auto":
        return mode
    # "fused" on any CPU thread count: it runs the same operations inline on one thread, so a run's
    # numbers do not depend on how many threads the machine allowed.
    return "fused" if device.type == "cpu" else "eager"


def make_step(
    gen: Generator,
    disc: Discriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    *,
    mode: str = "eager",
    batch_size: int = 64,
) -> StepFn:
    """A callable ``step(real, z) -> stats`` running ``train_step`` eagerly, on two threads, fused, compiled, or as a CUDA graph."""
    dev = next(gen.parameters()).device
    mode = resolve_step_mode(choice("mode", mode, STEP_MODES), dev)

    def eager(real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return train_step(gen, disc, opt_g, opt_d, real, z)

    if mode == "eager":
        return eager
    if mode == "parallel":
        return _parallel_step(gen, disc, opt_g, opt_d)
    if mode == "fused":
        return _fused_step(gen, disc, opt_g, opt_d)
    if mode == "compile":
        # dynamic=False: an epoch's smaller last batch gets a graph of its own. A dynamic-shape graph
        # donates buffers to its backward, which autograd.grad(retain_graph=True) then refuses.
        compiled = torch.compile(train_step, mode="reduce-overhead" if dev.type == "cuda" else "default", dynamic=False)

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


class _Inline:
    """A stand-in for a one-worker executor that runs each task when it is submitted (one-thread CPUs)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever reads the future, as an executor does
            fut.set_exception(exc)
        return fut


def _no_grad(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with autograd off: grad mode is per thread, and the step's pieces touch leaf parameters."""
    with torch.no_grad():
        return fn()


def _assignment_layers(gen: Generator, disc: Discriminator) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """G's and D's (weight, bias) tensors in layer order; ParameterError unless the models are the assignment's."""
    g_kinds = (nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear, nn.Tanh)
    d_kinds = (nn.Flatten, nn.Linear, nn.LeakyReLU, nn.Linear, nn.LeakyReLU, nn.Linear, nn.Sigmoid)
    g_net, d_net = getattr(gen, "net", ()), getattr(disc, "net", ())
    ok = (len(g_net) == len(g_kinds) and all(type(m) is k for m, k in zip(g_net, g_kinds))
          and len(d_net) == len(d_kinds) and all(type(m) is k for m, k in zip(d_net, d_kinds))
          and d_net[2].negative_slope == d_net[4].negative_slope == LEAKY_SLOPE)
    if not ok:
        raise ParameterError("step mode 'fused' needs the assignment's Generator and Discriminator (genbench.gan.models); "
                             "use step mode 'eager' or 'parallel' for other models")
    g = [t for i in (0, 2, 4) for t in (g_net[i].weight, g_net[i].bias)]
    d = [t for i in (1, 3, 5) for t in (d_net[i].weight, d_net[i].bias)]
    return g, d


def _fused_step(gen: Generator, disc: Discriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer) -> StepFn:
    """``train_step`` as explicit matrix products over two threads: the same losses, gradients and Adam updates.

    Autograd cannot do two things this step does (why it is written out rather than differentiated):
    - D's backward pass on the fakes is shared by both halves. D ends in one logit, so for every sample
      the gradient of either loss at any layer of D is that sample's d(logit)/d(layer) times a scalar,
      the loss's gradient at the logit. One backward pass with unit output gradients serves G's loss
      and D's loss on the fakes: 16.8 of 586 MFLOP a step fewer.
    - The work is cut into pieces balanced over two threads (D on the real batch while G runs
      forward; D's weight gradients, G's last layer's gradient and D's Adam update while G runs
      backward), with one sync per hand-over instead of one per operation.
    Elementwise backward steps use autograd's own kernels (aten.*_backward), so the only difference to
    ``eager`` is the grouping of products (relative 1e-6 per step; tests/test_gan_train.py checks it).
    Each Adam is stepped on disjoint parameter subsets, one ``_AdamCall`` each: the same
    per-parameter update, moments and step counts as one ``opt.step()``.
    """
    if next(gen.parameters()).device.type != "cpu":
        raise ParameterError("step mode 'fused' runs on CPU; on CUDA use step mode 'eager', 'compile' or 'cuda_graph'")
    (W1, b1, W2, b2, W3, b3), (V1, c1, V2, c2, V3, c3) = _assignment_layers(gen, disc)
    g_first, g_last, d_params = [W1, b1, W2, b2], [W3, b3], [V1, c1, V2, c2, V3, c3]
    aten = torch.ops.aten
    mean = 1  # torch's Reduction::Mean, as F.binary_cross_entropy(..., reduction="mean") passes it
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genbench-gan-fused") if torch.get_num_threads() >= 2 else None
    labels: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}  # batch size -> (ones, zeros, 1.0)
    adam_d, adam_g_last, adam_g_first = _AdamCall(opt_d, d_params), _AdamCall(opt_g, g_last), _AdamCall(opt_g, g_first)

    def logit_grad(p: torch.Tensor, target: torch.Tensor, one: torch.Tensor) -> torch.Tensor:
        """d BCE(sigmoid(a), target) / da per sample, as autograd computes it (BCE's clamp included)."""
        return aten.sigmoid_backward(aten.binary_cross_entropy_backward(one, p, target, None, mean), p)

    def d_forward(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        a1 = torch.addmm(c1, x, V1.t())
        e1 = F.leaky_relu(a1, LEAKY_SLOPE)
        a2 = torch.addmm(c2, e1, V2.t())
        e2 = F.leaky_relu(a2, LEAKY_SLOPE)
        return a1, e1, a2, e2, torch.sigmoid(torch.addmm(c3, e2, V3.t()))

    def leaky_back(grad: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return aten.leaky_relu_backward(grad, a, LEAKY_SLOPE, False)

    @torch.no_grad()
    def step(real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        b = real.shape[0]
        if b not in labels:
            labels[b] = (torch.ones(b, 1), torch.zeros(b, 1), torch.ones(()))
        ones, zeros, one = labels[b]
        x_real = real.reshape(b, -1)
        pool = worker if worker is not None else _Inline()
        pending: list[Future[Any]] = []

        def real_half() -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
            # D's loss on the real batch, and its gradient for D's weights (independent of the fakes).
            a1, e1, a2, e2, p = d_forward(x_real)
            loss = F.binary_cross_entropy(p, ones)  # raises on a NaN probability before any update, as eager does
            s = logit_grad(p, ones, one)
            g_a2 = leaky_back(s * V3, a2)
            g_a1 = leaky_back(g_a2 @ V2, a1)
            return p, loss, [g_a1.t() @ x_real, g_a1.sum(0), g_a2.t() @ e1, g_a2.sum(0), s.t() @ e2, s.sum(0)]

        try:
            pending.append(on_real := pool.submit(_no_grad, real_half))
            h1 = torch.addmm(b1, z, W1.t()).relu_()
            h2 = torch.addmm(b2, h1, W2.t()).relu_()
            x = torch.addmm(b3, h2, W3.t()).tanh_()
            a1, e1, a2, e2, p = d_forward(x)
            g_loss, fake_loss = F.binary_cross_entropy(p, ones), F.binary_cross_entropy(p, zeros)
            s_g, s_d = logit_grad(p, ones, one), logit_grad(p, zeros, one)
            # d(logit)/d(a2) and d(logit)/d(a1) per sample: the backward pass both losses share.
            v_a2 = leaky_back(V3.expand(b, -1), a2)
            v_a1 = leaky_back(v_a2 @ V2, a1)
            p_real, real_loss, d_grads = on_real.result()

            def fake_part() -> None:  # D's loss on the fakes: its gradient for D's weights, added in place
                g_a1, g_a2 = s_d * v_a1, s_d * v_a2
                d_grads[0].addmm_(g_a1.t(), x)
                d_grads[1].add_(g_a1.sum(0))
                d_grads[2].addmm_(g_a2.t(), e1)
                d_grads[3].add_(g_a2.sum(0))
                d_grads[4].addmm_(s_d.t(), e2)
                d_grads[5].add_(s_d.sum(0))

            pending.append(pool.submit(_no_grad, fake_part))
            v_x = v_a1 @ V1  # the last read of D's weights by G's half: D's update may follow
            g_a3 = aten.tanh_backward(s_g * v_x, x)

            # G's last layer's gradient goes to the worker first (the worker runs its tasks in order): main
            # finishes G's backward pass meanwhile and then makes both of G's Adam updates.
            pending.append(last_grads := pool.submit(_no_grad, lambda: [g_a3.t() @ h2, g_a3.sum(0)]))

            def d_update() -> torch.Tensor:
                adam_d(d_grads)
                d_loss = real_loss + fake_loss
                return torch.stack([d_loss, g_loss, p_real.mean(), p.mean()])

            pending.append(stats := pool.submit(_no_grad, d_update))
            g_h2 = aten.threshold_backward(g_a3 @ W3, h2, 0)  # the last read of W3: its update may follow
            g_first_grads = [g_h2.t() @ h1, g_h2.sum(0)]
            g_h1 = aten.threshold_backward(g_h2 @ W2, h1, 0)
            adam_g_first([g_h1.t() @ z, g_h1.sum(0), *g_first_grads])  # W1, b1, W2, b2 only
            adam_g_last(last_grads.result())  # W3 and b3 only
            return stats.result()
        finally:
            for fut in pending:  # nothing of this step may still run once it has returned or raised
                fut.exception()  # waits; an exception of its own was already raised by .result() above

    return step


@contextlib.contextmanager
def step_threads(mode: str) -> Iterator[None]:
    """Within the block, give each half of a "parallel" or "fused" step half of torch's intra-op threads (restored after)."""
    before = torch.get_num_threads()
    if mode in ("parallel", "fused"):
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
