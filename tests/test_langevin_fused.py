"""The fused engines and the random stream: C kernels and torch agree bit for bit; the stream is as documented.

Deterministic tests (no hypothesis test here): equalities that hold exactly for a correct
implementation whatever the seed.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from genbench.langevin import _native, _noise, mala_init, mala_step, sample_mala, sample_ula
from genbench.langevin._fused import GaussianMALA, _Terms
from genbench.targets import Gaussian, seed_target
from genbench.testing import offset_seed
from noise_oracle import splitmix64, step_uniforms

NATIVE = _native.library() is not None
needs_native = pytest.mark.skipif(not NATIVE, reason=f"fused C kernels unavailable: {_native.status()}")


@pytest.fixture
def torch_engine(monkeypatch: pytest.MonkeyPatch):
    """Run the samplers with the pure-torch engine (as on a machine without a C compiler)."""

    def use_torch() -> None:
        monkeypatch.setenv("GENBENCH_NATIVE", "0")
        monkeypatch.setattr(_native, "_state", {})

    return use_torch


def _both(fn, torch_engine, monkeypatch, *args, **kwargs):
    a = fn(*args, **kwargs)
    torch_engine()
    b = fn(*args, **kwargs)
    monkeypatch.undo()
    return a, b


# --------------------------------------------------------------------------- the stream


def test_series_coefficients_match_the_c_source() -> None:
    src = (Path(_native.__file__).with_name("_kernels.c")).read_text()
    for name, values in (("LOGC", _noise.LOGC), ("SINC", _noise.SINC), ("COSC", _noise.COSC),
                         ("LOGF", _noise.LOGF), ("SINF", _noise.SINF), ("COSF", _noise.COSF)):
        found = {int(i): float.fromhex(v.rstrip("f")) for i, v in re.findall(rf"#define {name}(\d+) (\S+)", src)}
        assert [found[i] for i in range(len(values))] == list(values), name
    for name in ("SQRT2", "PIO2", "LN2_HI", "LN2_LO", "SQRT2F", "PIO2F", "LN2F_HI", "LN2F_LO"):
        (literal,) = re.findall(rf"#define {name} (\S+)", src)
        assert float.fromhex(literal.rstrip("f")) == getattr(_noise, name), name


def test_float32_log_and_sincos_are_accurate_to_a_few_float32_ulp() -> None:
    g = torch.Generator().manual_seed(0)
    x = 1.0 - torch.rand(200_000, generator=g)
    ref = np.log(x.double().numpy())
    got = _noise.log_exact(x).double().numpy()
    assert got.dtype == np.float64 and np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-30)) < 4 * 2.0**-23
    v = torch.rand(200_000, generator=g)
    c, s = _noise.sincos_2pi(v)
    assert c.dtype == torch.float32
    np.testing.assert_allclose(c.numpy(), np.cos(2 * np.pi * v.double().numpy()), rtol=0, atol=4 * 2.0**-24)
    np.testing.assert_allclose(s.numpy(), np.sin(2 * np.pi * v.double().numpy()), rtol=0, atol=4 * 2.0**-24)


def test_exact_log_and_sincos_are_accurate_to_a_few_ulp() -> None:
    g = torch.Generator().manual_seed(0)
    x = 1.0 - torch.rand(200_000, generator=g, dtype=torch.float64)
    x[:3] = torch.tensor([2.0**-53, 0.5, 1.0], dtype=torch.float64)
    ref = np.log(x.numpy())
    got = _noise.log_exact(x).numpy()
    assert np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300)) < 4 * 2.0**-52
    assert got[2] == 0.0
    v = torch.rand(200_000, generator=g, dtype=torch.float64)
    c, s = _noise.sincos_2pi(v)
    # the reference angle in extended precision: 2*pi*v rounded to double is itself off by ~1e-15
    angle = 2 * np.arccos(np.longdouble(-1)) * v.numpy().astype(np.longdouble)
    np.testing.assert_allclose(c.numpy(), np.cos(angle).astype(np.float64), rtol=0, atol=4e-16)
    np.testing.assert_allclose(s.numpy(), np.sin(angle).astype(np.float64), rtol=0, atol=4e-16)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_c_and_torch_normals_are_bit_identical(dtype: torch.dtype) -> None:
    lib = _native.library()
    sfx = "f64" if dtype == torch.float64 else "f32"
    k, pairs, m = 5, 1001, 2 * 1001 + 37  # odd sizes: vector loops and their scalar tails
    keys = _noise.draw_keys(torch.Generator().manual_seed(1), k)
    u = _noise.uniforms(keys, m, dtype)
    zc, lc = torch.empty(k, 2 * pairs, dtype=dtype), torch.empty(k, 37, dtype=dtype)
    getattr(lib, f"normals_{sfx}")(k, 2 * pairs, 0, pairs, keys.data_ptr(), zc.data_ptr())
    getattr(lib, f"log_uniforms_{sfx}")(k, 2 * pairs, 0, 37, keys.data_ptr(), lc.data_ptr(), 37)
    zt = _noise.box_muller(u, pairs, torch.empty(k, 2 * pairs, dtype=dtype))
    assert torch.equal(zc, zt)
    assert torch.equal(lc, _noise.log_exact(1.0 - u[:, 2 * pairs :]))


@pytest.mark.statistical(alpha=[1e-5, 1e-5], power=[0.99999])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_normals_are_standard_normal_and_a_broken_radius_is_rejected(dtype: torch.dtype) -> None:
    """H0: the 4e5 normals are iid N(0, 1). Kolmogorov-Smirnov and, for the two normals of each pair,
    a Pearson correlation test, each at alpha = 1e-5 (seed via offset_seed). Must reject: the
    radius without its factor 2 (standard deviation 1/sqrt(2)), whose KS distance ~0.08 is 50 times
    the test's 1e-5 critical value at this n (power ~1)."""
    from scipy import stats

    n = 200_000
    u = _noise.uniforms(_noise.draw_keys(torch.Generator().manual_seed(offset_seed(2)), 1), 2 * n, dtype)
    z = _noise.box_muller(u, n, torch.empty(1, 2 * n, dtype=dtype)).double().numpy().ravel()
    assert stats.kstest(z, "norm").pvalue > 1e-5
    assert stats.pearsonr(z[0::2], z[1::2]).pvalue > 1e-5
    assert stats.kstest(z / np.sqrt(2.0), "norm").pvalue < 1e-5


def test_stream_is_the_documented_per_step_draw() -> None:
    """Step t's noise is Box-Muller of SplitMix64 uniforms keyed by the generator's t-th int64 (tests/noise_oracle.py)."""
    tgt = seed_target()
    chains, steps, mu = 3, 7, 0.05
    run = sample_ula(tgt, steps, mu, chains=chains, seed=4, keep="trace")
    g = torch.Generator().manual_seed(4)
    terms = _Terms(tgt, mu, torch.device("cpu"), torch.float64)
    x = torch.zeros(2, chains, dtype=torch.float64)
    for t in range(steps):
        u = torch.as_tensor(step_uniforms(g, 6)).view(1, 6)
        z = _noise.box_muller(u, 3, torch.empty(1, 6, dtype=torch.float64))[0].view(2, chains)
        x = terms.affine(x, z)
        assert torch.equal(run.trace[t], x.T)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_uniforms_are_splitmix64_outputs(dtype: torch.dtype) -> None:
    """The torch uniforms equal SplitMix64 computed in numpy uint64, including its published first outputs."""
    first = [6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431, 16408922859458223821]
    assert splitmix64(1234567, 5).tolist() == first  # seed 1234567's outputs in the reference implementation
    keys = torch.tensor([0, 1, 1234567, 2**63 - 1, 7_000_000_000_000_000_001])
    bits = _noise.uniform_bits(keys, 1001)
    want = np.stack([splitmix64(int(k), 1001) for k in keys])
    assert np.array_equal(bits.numpy().view(np.uint64), want)
    u = _noise.uniforms(keys, 1001, dtype)
    shift, scale = (11, 2.0**-53) if dtype == torch.float64 else (40, 2.0**-24)
    assert np.array_equal(u.double().numpy(), (want >> np.uint64(shift)).astype(np.float64) * scale)
    assert u.dtype == dtype and float(u.min()) >= 0.0 and float(u.max()) < 1.0


def test_continuing_a_generator_equals_one_run_for_any_split() -> None:
    tgt = seed_target()
    for sampler in (sample_ula, sample_mala):
        one = sampler(tgt, 300, 0.05, chains=5, seed=8)
        g = torch.Generator().manual_seed(8)
        first = sampler(tgt, 121, 0.05, chains=5, generator=g)
        second = sampler(tgt, 179, 0.05, chains=5, generator=g, x0=first.final)
        assert torch.equal(second.final, one.final)


# --------------------------------------------------------------------------- engines agree


@needs_native
@pytest.mark.parametrize("sampler", [sample_ula, sample_mala])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("chains,keep", [(1, "trace"), (13, "trace"), (200, "final"), (9000, "stats")])
def test_c_and_torch_engines_are_bit_identical(sampler, dtype, chains, keep, torch_engine, monkeypatch) -> None:
    kw = dict(chains=chains, seed=3, dtype=dtype, keep=keep, burn_in=7, thin=3, x0=(2.0, -1.0))
    a, b = _both(sampler, torch_engine, monkeypatch, seed_target(), 150, 0.08, **kw)
    assert a.extra["engine"] == "fused-c" and b.extra["engine"] == "torch"
    assert torch.equal(a.final, b.final)
    assert a.acceptance_rate == b.acceptance_rate
    if keep == "trace":
        assert torch.equal(a.trace, b.trace)
    # stats: the kernels sum per chunk of chains, torch per step: equal up to float64 rounding
    np.testing.assert_allclose(a.mean, b.mean, rtol=0, atol=1e-12)
    if a.cov is not None:
        np.testing.assert_allclose(a.cov, b.cov, rtol=0, atol=1e-12)


@needs_native
@pytest.mark.parametrize("sampler", [sample_ula, sample_mala])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("d", [1, 3, 8])
@pytest.mark.parametrize("chains", [1, 3, 8, 13, 18, 27, 300, 525])
def test_normals_made_in_the_kernels_match_the_stream(sampler, dtype, d, chains, torch_engine, monkeypatch) -> None:
    """The kernels make each tile's normals (and MALA's log-uniforms) from the step's key: every tile
    shape (all chains in one tile, rows starting mid-pair when chains is odd, short last groups and
    tiles, several tiles) gives the stream's numbers, as the torch engine computes them."""
    rng = np.random.default_rng(d)
    q = rng.standard_normal((d, d))
    tgt = Gaussian(rng.standard_normal(d), q @ q.T + d * np.eye(d))
    kw = dict(chains=chains, seed=5, dtype=dtype, keep="trace", thin=2, x0=np.linspace(-1, 1, d))
    a, b = _both(sampler, torch_engine, monkeypatch, tgt, 40, 0.05, **kw)
    assert a.extra["engine"] == "fused-c" and b.extra["engine"] == "torch"
    assert torch.equal(a.final, b.final) and torch.equal(a.trace, b.trace)
    assert a.acceptance_rate == b.acceptance_rate


@needs_native
def test_threaded_kernels_equal_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    tgt = seed_target()
    kw = dict(chains=70_001, seed=1, keep="stats", burn_in=2, thin=2)
    monkeypatch.setattr(_native, "MIN_PARALLEL_WORK", 1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(max(2, threads))
        many = [sample_ula(tgt, 6, 0.05, **kw), sample_mala(tgt, 6, 0.05, **kw)]
        torch.set_num_threads(1)
        one = [sample_ula(tgt, 6, 0.05, **kw), sample_mala(tgt, 6, 0.05, **kw)]
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(many, one):
        assert torch.equal(a.final, b.final)
        assert np.array_equal(a.mean, b.mean) and np.array_equal(a.cov, b.cov)


def test_fused_mala_matches_the_public_mala_step() -> None:
    """The fused arithmetic (h = P(y - m) form) equals mala_step's to rounding, with the same decisions."""
    tgt = Gaussian([0.5, -1.0, 2.0], [[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 500, generator=g, dtype=torch.float64) * 2
    n = torch.randn(3, 500, generator=g, dtype=torch.float64)
    log_u = torch.log(torch.rand(500, generator=g, dtype=torch.float64))
    eng = GaussianMALA(tgt, 0.3, x)
    new_x, new_lp = eng.step(x, eng.lp, n, log_u)
    ref, accept = mala_step(tgt, mala_init(tgt, x.T), 0.3, n.T, log_u)
    torch.testing.assert_close(new_x.T, ref.x, rtol=0, atol=1e-12)
    assert int(eng.total_accepted()) == int(accept.sum())
    diff = new_lp - tgt.log_prob(new_x.T)  # the fused log-density omits the normalising constant
    assert float(diff.max() - diff.min()) < 1e-9


def test_engine_is_recorded() -> None:
    run = sample_ula(seed_target(), 10, 0.05, chains=4)
    assert run.extra["engine"] == ("fused-c" if NATIVE else "torch")
    assert re.match(r"(fused C kernels|torch engine \(.+\))$", _native.status())


def test_large_dimension_uses_the_generic_kernel() -> None:
    d = 12
    tgt = Gaussian(np.zeros(d), np.eye(d))
    run = sample_ula(tgt, 20, 0.1, chains=3)
    assert run.extra["engine"] == "torch" and run.final.shape == (3, d)
    assert math.isfinite(float(run.final.sum()))
