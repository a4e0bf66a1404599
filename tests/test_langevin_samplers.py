"""Deterministic tests of the Langevin samplers: equivalences, bookkeeping, seeds, errors.

The statistical checks (Hotelling/Wishart against the exact law, rejection of broken samplers,
false-alarm rates) live with genbench.testing; nothing here is a hypothesis test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genbench.errors import DeviceError, DivergenceError, ParameterError
from genbench.langevin import (
    gaussian_chain,
    mala_init,
    mala_step,
    reference_langevin,
    sample_mala,
    sample_ula,
    ula_kernel,
    ula_step,
)
from genbench.langevin import theory
from genbench.targets import Gaussian, GaussianMixture, from_log_prob, seed_target
from genbench.testing import offset_seed
from noise_oracle import step_normals


@pytest.fixture
def target() -> Gaussian:
    return seed_target()


def _reference_noise(seed: int, steps: int, d: int = 2) -> torch.Tensor:
    """The reference loop's per-step noise for ``seed``: one randn(d) per step, (steps, d)."""
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randn(d, generator=g, dtype=torch.float64) for _ in range(steps)])


def _loop_noise(seed: int, steps: int, d: int = 2, chains: int | None = None) -> torch.Tensor:
    """The batched samplers' per-step noise for ``seed`` (genbench.langevin._noise), recomputed in numpy.

    Step t's key comes from the generator, its uniforms are SplitMix64 outputs of that key, and pair p
    gives r cos(2 pi u[2p+1]), r sin(2 pi u[2p+1]) with r = sqrt(-2 log(1 - u[2p])), laid out as
    (d, chains) (tests/noise_oracle.py). Returns (steps, d), or (steps, chains, d).
    """
    g = torch.Generator().manual_seed(seed)
    c = 1 if chains is None else chains
    out = []
    for _ in range(steps):
        x = torch.as_tensor(step_normals(g, d * c)[: d * c]).view(d, c)
        out.append(x[:, 0] if chains is None else x.T)
    return torch.stack(out)


# --------------------------------------------------------------------------- equivalences


@pytest.mark.parametrize("mu", [0.001, 0.01, 0.15, 0.199])
@pytest.mark.parametrize("x0", [0.0, (3.0, -2.0)])
def test_fast_path_equals_plain_loop_given_same_noise(target: Gaussian, mu: float, x0) -> None:
    steps = 3000
    ref = reference_langevin(steps, mu, x0=x0, seed=7)
    fast = gaussian_chain(target, steps, mu, x0=x0, noise=_reference_noise(7, steps))
    assert fast.shape == ref.shape == (steps, 2)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-11)


def test_fast_path_on_a_higher_dimensional_target() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    tgt = Gaussian(rng.normal(size=4), a @ a.T + 0.5 * np.eye(4))
    mu = 0.5 * theory.stability_bound(tgt)
    noise = torch.as_tensor(rng.normal(size=(500, 4)))
    x = np.zeros(4)
    m, prec = tgt.mean.numpy(), tgt.precision.numpy()
    loop = np.empty((500, 4))
    for t in range(500):
        x = x + mu * prec @ (m - x) + math.sqrt(2 * mu) * noise[t].numpy()
        loop[t] = x
    np.testing.assert_allclose(gaussian_chain(tgt, 500, mu, noise=noise), loop, rtol=0, atol=1e-10)


def test_fast_path_default_noise_is_seeded(target: Gaussian) -> None:
    a = gaussian_chain(target, 1000, 0.01, seed=3)
    np.testing.assert_array_equal(a, gaussian_chain(target, 1000, 0.01, seed=3))
    assert not np.array_equal(a, gaussian_chain(target, 1000, 0.01, seed=4))


def test_reference_loop_records_every_iterate_from_float_start() -> None:
    out = reference_langevin(5, 0.01, seed=0)
    noise = _reference_noise(0, 5)
    x = np.zeros(2)
    m, prec = np.ones(2), np.linalg.inv(np.array([[1, 0.9], [0.9, 1]]))
    for t in range(5):
        x = x + 0.01 * prec @ (m - x) + math.sqrt(0.02) * noise[t].numpy()
        np.testing.assert_allclose(out[t], x, rtol=0, atol=1e-13)
    assert out.dtype == np.float64


@pytest.mark.parametrize("path", ["fused", "kernel", "autograd"])
def test_batched_ula_single_chain_is_the_assignment_update_on_its_stream(target: Gaussian, path: str) -> None:
    steps, mu = 2000, 0.05
    if path == "fused":
        run = sample_ula(target, steps, mu, seed=11, keep="trace")
    elif path == "kernel":
        run = sample_ula(target, steps, mu, seed=11, keep="trace", kernel=ula_kernel(target, mu))
    else:
        logp = target.log_prob
        run = sample_ula(from_log_prob(logp, 2), steps, mu, seed=11, keep="trace")
    noise = _loop_noise(11, steps).numpy()
    x, m, prec = np.zeros(2), target.mean.numpy(), target.precision.numpy()
    ref = np.empty((steps, 2))
    for t in range(steps):  # the assignment's x + mu score(x) + sqrt(2 mu) n
        x = x + mu * prec @ (m - x) + math.sqrt(2 * mu) * noise[t]
        ref[t] = x
    np.testing.assert_allclose(run.trace[:, 0, :].numpy(), ref, rtol=0, atol=1e-10)


def test_driver_equals_manual_loop_with_per_chain_step_sizes(target: Gaussian) -> None:
    chains, steps = 3, 400
    mus = torch.tensor([0.001, 0.05, 0.15], dtype=torch.float64)
    run = sample_ula(target, steps, mus, chains=chains, seed=5, keep="trace")
    noise = _loop_noise(5, steps, chains=chains)
    x = torch.zeros(chains, 2, dtype=torch.float64)
    for t in range(steps):
        x = ula_step(x, target.score(x), mus.reshape(-1, 1), noise[t])
        np.testing.assert_allclose(run.trace[t].numpy(), x.numpy(), rtol=0, atol=1e-11)
    assert np.array_equal(run.step_size, mus.numpy())


def test_fused_and_generic_kernels_agree_for_many_chains(target: Gaussian) -> None:
    x0 = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = sample_ula(target, 300, 0.1, chains=50, x0=x0, seed=2)
    b = sample_ula(target, 300, 0.1, chains=50, x0=x0, seed=2, kernel=ula_kernel(target, 0.1))
    np.testing.assert_allclose(a.final.numpy(), b.final.numpy(), rtol=0, atol=1e-11)
    assert a.sampler == "ula" and b.sampler.startswith("custom:")


def test_fused_gemm_path_for_larger_dimension_equals_manual_loop() -> None:
    # d > 4 takes the addmm branch of the fused stepper (the one CUDA always uses).
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 6))
    tgt = Gaussian(rng.normal(size=6), a @ a.T + np.eye(6))
    mu = 0.3 * theory.stability_bound(tgt)
    x0 = rng.normal(size=6)
    run = sample_ula(tgt, 150, mu, chains=7, seed=4, keep="trace", x0=x0)
    noise = _loop_noise(4, 150, d=6, chains=7)
    x = torch.as_tensor(np.broadcast_to(x0, (7, 6)).copy())
    for t in range(150):
        x = ula_step(x, tgt.score(x), mu, noise[t])
        np.testing.assert_allclose(run.trace[t].numpy(), x.numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_path_for_many_chains_equals_generic_kernel(target: Gaussian, dtype: str) -> None:
    n = 50_000  # many chains: the fused kernels split them over threads
    x0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = sample_ula(target, 12, 0.1, chains=n, x0=x0, seed=3, dtype=dtype, keep="trace", thin=5)
    b = sample_ula(target, 12, 0.1, chains=n, x0=x0, seed=3, dtype=dtype, keep="trace", thin=5,
                   kernel=ula_kernel(target.to(dtype=dtype), 0.1))
    tol = 1e-11 if dtype == "float64" else 2e-5
    torch.testing.assert_close(a.trace, b.trace, rtol=0, atol=tol)
    torch.testing.assert_close(a.final, b.final, rtol=0, atol=tol)


def test_kernels_are_pure(target: Gaussian) -> None:
    x = torch.randn(4, 2, dtype=torch.float64)
    n = torch.randn(4, 2, dtype=torch.float64)
    xc, nc = x.clone(), n.clone()
    for k in (ula_kernel(target, 0.1), ula_kernel(target, torch.full((4,), 0.1, dtype=torch.float64))):
        y = k(x, n)
        assert torch.equal(x, xc) and torch.equal(n, nc)
        torch.testing.assert_close(y, ula_step(x, target.score(x), 0.1, n), rtol=0, atol=1e-13)


def test_gaussian_mixture_target_runs_through_score(target: Gaussian) -> None:
    mix = GaussianMixture([0.3, 0.7], [[-2.0, 0.0], [2.0, 0.0]], np.stack([np.eye(2), np.eye(2)]))
    run = sample_ula(mix, 200, 0.05, chains=4, seed=0, keep="trace")
    noise = _loop_noise(0, 200, chains=4)
    x = torch.zeros(4, 2, dtype=torch.float64)
    for t in range(200):
        x = ula_step(x, mix.score(x), 0.05, noise[t])
    np.testing.assert_allclose(run.final.numpy(), x.numpy(), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- bookkeeping


def test_burn_in_and_thin_keep_the_documented_steps(target: Gaussian) -> None:
    full = sample_ula(target, 20, 0.1, chains=3, seed=1, keep="trace")
    part = sample_ula(target, 20, 0.1, chains=3, seed=1, keep="trace", burn_in=5, thin=3)
    # kept steps are burn_in + thin, burn_in + 2 thin, ... <= steps (1-based): 8, 11, 14, 17, 20
    assert part.n_kept == 5 and part.trace.shape == (5, 3, 2)
    assert torch.equal(part.trace, full.trace[[7, 10, 13, 16, 19]])
    assert part.n_draws == 15
    assert torch.equal(part.final, full.final)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
def test_streaming_stats_equal_stats_of_stored_trace(target: Gaussian, dtype, tol) -> None:
    kw = dict(chains=64, seed=9, burn_in=30, thin=2, x0=(4.0, -3.0), dtype=dtype)
    tr = sample_ula(target, 400, 0.05, keep="trace", **kw)
    st = sample_ula(target, 400, 0.05, keep="stats", **kw)
    assert st.trace is None and st.n_draws == tr.n_draws == 64 * 185
    flat = tr.trace.reshape(-1, 2).double().numpy()
    np.testing.assert_allclose(tr.mean, flat.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(tr.cov, np.cov(flat, rowvar=False, ddof=1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(st.mean, tr.mean, rtol=0, atol=tol)
    np.testing.assert_allclose(st.cov, tr.cov, rtol=0, atol=tol)


def test_streaming_stats_for_non_gaussian_target_centre() -> None:
    mix = GaussianMixture([0.5, 0.5], [[-1.0, 5.0], [1.0, 5.0]], np.stack([np.eye(2), np.eye(2)]))
    tr = sample_ula(mix, 100, 0.1, chains=16, seed=0, keep="trace", x0=(100.0, 100.0))
    st = sample_ula(mix, 100, 0.1, chains=16, seed=0, keep="stats", x0=(100.0, 100.0))
    np.testing.assert_allclose(st.mean, tr.mean, rtol=1e-12)
    np.testing.assert_allclose(st.cov, tr.cov, rtol=1e-9)


def test_final_mode_moments_are_across_chains(target: Gaussian) -> None:
    run = sample_ula(target, 50, 0.1, chains=200, seed=0)
    f = run.final.numpy()
    np.testing.assert_allclose(run.mean, f.mean(0), atol=1e-13)
    np.testing.assert_allclose(run.cov, np.cov(f, rowvar=False), atol=1e-13)
    assert run.trace is None and run.n_draws == 200
    one = sample_ula(target, 50, 0.1, chains=1, seed=0)
    assert one.cov is None


def test_run_metadata(target: Gaussian) -> None:
    run = sample_ula(target, 100, 0.01, chains=10, seed=4, dtype="float32")
    assert run.final.dtype == torch.float32 and run.final.shape == (10, 2)
    assert (run.steps, run.chains, run.seed, run.device, run.dtype) == (100, 10, 4, "cpu", "float32")
    assert run.elapsed_s > 0 and run.chain_steps_per_s == pytest.approx(1000 / run.elapsed_s)
    assert run.acceptance_rate is None


# --------------------------------------------------------------------------- seeds


def test_same_seed_same_numbers_different_seed_different(target: Gaussian) -> None:
    a = sample_ula(target, 100, 0.05, chains=8, seed=123, keep="trace")
    b = sample_ula(target, 100, 0.05, chains=8, seed=123, keep="trace")
    c = sample_ula(target, 100, 0.05, chains=8, seed=124, keep="trace")
    assert torch.equal(a.trace, b.trace) and not torch.equal(a.trace, c.trace)
    g = torch.Generator().manual_seed(123)
    d = sample_ula(target, 100, 0.05, chains=8, generator=g, keep="trace")
    assert torch.equal(a.trace, d.trace) and d.seed is None
    m1 = sample_mala(target, 100, 0.1, chains=8, seed=3, keep="trace")
    m2 = sample_mala(target, 100, 0.1, chains=8, seed=3, keep="trace")
    assert torch.equal(m1.trace, m2.trace) and m1.acceptance_rate == m2.acceptance_rate


def test_continuing_with_the_same_generator_equals_one_run(target: Gaussian) -> None:
    one = sample_ula(target, 300, 0.05, chains=5, seed=8)
    g = torch.Generator().manual_seed(8)
    first = sample_ula(target, 120, 0.05, chains=5, generator=g)
    second = sample_ula(target, 180, 0.05, chains=5, generator=g, x0=first.final)
    torch.testing.assert_close(second.final, one.final, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- MALA


def test_mala_step_log_acceptance_matches_densities(target: Gaussian) -> None:
    from scipy.stats import multivariate_normal

    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, generator=g, dtype=torch.float64) * 2
    noise = torch.randn(6, 2, generator=g, dtype=torch.float64)
    mu = 0.3
    state = mala_init(target, x)
    # log_u = -inf accepts every proposal, 0 accepts only ratios >= 1: recover log_alpha from both.
    acc_all, a1 = mala_step(target, state, mu, noise, torch.full((6,), -math.inf, dtype=torch.float64))
    assert bool(a1.all())
    y = acc_all.x.numpy()
    xn = x.numpy()
    pi = multivariate_normal(target.mean.numpy(), target.cov.numpy())
    s = lambda z: (target.mean.numpy() - z) @ target.precision.numpy()  # noqa: E731
    log_alpha = []
    for i in range(6):
        q_fwd = multivariate_normal(xn[i] + mu * s(xn[i]), 2 * mu * np.eye(2)).logpdf(y[i])
        q_bwd = multivariate_normal(y[i] + mu * s(y[i]), 2 * mu * np.eye(2)).logpdf(xn[i])
        log_alpha.append(pi.logpdf(y[i]) - pi.logpdf(xn[i]) + q_bwd - q_fwd)
    log_alpha = np.array(log_alpha)
    for lu in (-0.5, -2.0):
        _, acc = mala_step(target, state, mu, noise, torch.full((6,), lu, dtype=torch.float64))
        np.testing.assert_array_equal(acc.numpy(), lu < log_alpha)
    new, acc = mala_step(target, state, mu, noise, torch.full((6,), lu, dtype=torch.float64))
    np.testing.assert_allclose(new.x.numpy(), np.where(acc.numpy()[:, None], y, xn))
    np.testing.assert_allclose(new.log_prob.numpy(), target.log_prob(new.x).numpy(), atol=1e-12)
    np.testing.assert_allclose(new.score.numpy(), target.score(new.x).numpy(), atol=1e-12)


@pytest.mark.statistical(alpha=1e-15)
def test_mala_acceptance_rate_in_unit_interval_and_falls_with_step(target: Gaussian) -> None:
    """H0: sample_mala accepts with its true expected rate; 50 steps from x_0 = 0, 200 000 chains, seed offset_seed(0).

    The expected rates are 0.99985, 0.920, 0.630, 0.172 at μ = 0.001, 0.05, 0.15, 0.5 and 0.081 at
    μ = 1 (200 000 chains, seeds 0 and 1 agree to 1e-4). A chain's acceptance fraction lies in [0, 1]
    and chains are independent, so by Hoeffding a rate falls t below (above) its mean with
    probability <= exp(-2 n t²): for the tightest bound, rate > 0.99 at μ = 0.001 (t = 0.0098),
    that is exp(-38) = 2e-17; every other bound sits >= 0.04 away (exp(-640)). Sum < 1e-15.
    """
    n = 200_000
    rates = [sample_mala(target, 50, mu, chains=n, seed=offset_seed(0)).acceptance_rate for mu in (0.001, 0.05, 0.15, 0.5)]
    assert all(0 < r <= 1 for r in rates)
    assert rates == sorted(rates, reverse=True)
    assert rates[0] > 0.99 and rates[-1] < 0.5
    # MALA has no stability bound: a step far above ULA's 0.2 still runs (and mostly rejects).
    big = sample_mala(target, 50, 1.0, chains=n, seed=offset_seed(1))
    assert torch.isfinite(big.final).all() and big.acceptance_rate < 0.2


def test_mala_rejects_nonfinite_proposals() -> None:
    tgt = from_log_prob(lambda x: torch.where(x[..., 0] > 3, torch.nan, -0.5 * (x * x).sum(-1)), 2)
    run = sample_mala(tgt, 200, 0.5, chains=20, seed=0)
    assert torch.isfinite(run.final).all() and (run.final[:, 0] <= 3).all()


# --------------------------------------------------------------------------- divergence


def test_divergence_names_the_exact_step_and_the_bound(target: Gaussian) -> None:
    mu = 0.5  # above the bound 0.2: |rho| = 4 in the narrow direction, float64 overflows within ~520 steps
    noise = _loop_noise(0, 2000, chains=1)[:, 0, :].numpy()
    x = np.zeros(2)
    a = np.eye(2) - mu * target.precision.numpy()
    c = mu * target.precision.numpy() @ np.ones(2)
    first_bad = None
    with np.errstate(all="ignore"):
        for t in range(2000):
            x = a @ x + c + math.sqrt(2 * mu) * noise[t]
            if not np.all(np.isfinite(x)):
                first_bad = t + 1
                break
    assert first_bad is not None
    with pytest.raises(DivergenceError, match=rf"at step {first_bad} \(of 2000\).*step_size < 0\.2\b"):
        sample_ula(target, 2000, mu, seed=0, allow_unstable=True)


def test_divergence_of_a_custom_kernel_names_step(target: Gaussian) -> None:
    def blow_up(x, noise):  # deterministic: grows 1e30-fold per step until it overflows
        return 1e30 * x + noise

    with pytest.raises(DivergenceError, match=r"at step (\d+) \(of 1000\).*no stability bound") as err:
        sample_ula(from_log_prob(lambda x: -(x * x).sum(-1), 2), 1000, 0.01, kernel=blow_up, seed=0)
    assert 9 <= int(err.value.args[0].split("at step ")[1].split()[0]) <= 12


def test_unstable_step_size_is_refused_with_the_bound(target: Gaussian) -> None:
    for fn in (lambda: sample_ula(target, 10, 0.2), lambda: reference_langevin(10, 0.25),
               lambda: gaussian_chain(target, 10, 0.3),
               lambda: sample_ula(target, 10, torch.tensor([0.1, 0.21]), chains=2)):
        with pytest.raises(ParameterError, match=r"step_size must be < 0\.2"):
            fn()


# --------------------------------------------------------------------------- bad input


BAD_RUN_ARGS = [
    (dict(steps=0), "steps"),
    (dict(steps=-5), "steps"),
    (dict(steps=2.5), "steps"),
    (dict(steps=True), "steps"),
    (dict(step_size=0.0), "step_size"),
    (dict(step_size=-0.1), "step_size"),
    (dict(step_size=float("nan")), "step_size"),
    (dict(step_size=float("inf")), "step_size"),
    (dict(step_size="0.1"), "step_size"),
    (dict(step_size=torch.tensor([0.1, 0.1, 0.1]), chains=2), "step_size"),
    (dict(step_size=torch.tensor([0.1, -0.1]), chains=2), "step_size"),
    (dict(chains=0), "chains"),
    (dict(burn_in=-1), "burn_in"),
    (dict(burn_in=10), "burn_in"),
    (dict(thin=0), "thin"),
    (dict(keep="trace", burn_in=5, thin=6), "thin"),
    (dict(keep="all"), "keep"),
    (dict(x0=(float("nan"), 0.0)), "x0"),
    (dict(x0=float("inf")), "x0"),
    (dict(x0=(1.0, 2.0, 3.0)), "x0"),
    (dict(x0=np.zeros((3, 2)), chains=2), "x0"),
    (dict(x0="zero"), "x0"),
    (dict(seed=-1), "seed"),
    (dict(device="tpu"), "device"),
    (dict(dtype="float16"), "dtype"),
    (dict(kernel=3), "kernel"),
    (dict(kernel=lambda x, n: x[:, :1]), "kernel"),
    (dict(generator="gen"), "generator"),
]


@pytest.mark.parametrize("sampler", [sample_ula, sample_mala])
@pytest.mark.parametrize("kwargs,name", BAD_RUN_ARGS)
def test_bad_input_names_the_parameter(target: Gaussian, sampler, kwargs: dict, name: str) -> None:
    if sampler is sample_mala and name == "kernel":
        pytest.skip("MALA takes no kernel")
    args = dict(steps=10, step_size=0.1)
    args.update(kwargs)
    steps, mu = args.pop("steps"), args.pop("step_size")
    with pytest.raises(ParameterError, match=name):
        sampler(target, steps, mu, **args)


def test_cuda_request_without_cuda_is_a_device_error(target: Gaussian) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    with pytest.raises(DeviceError, match="CUDA"):
        sample_ula(target, 10, 0.1, device="cuda")
    with pytest.raises(DeviceError, match="CUDA"):
        sample_mala(target, 10, 0.1, device="cuda")


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: reference_langevin(0, 0.1), "steps"),
        (lambda: reference_langevin(10, 0.0), "step_size"),
        (lambda: reference_langevin(10, 0.1, x0=(math.nan, 0.0)), "x0"),
        (lambda: reference_langevin(10, 0.1, cov=((1.0, 2.0), (2.0, 1.0))), "cov"),
        (lambda: reference_langevin(10, 0.1, cov=((1.0, 0.5), (0.4, 1.0))), "cov"),
        (lambda: reference_langevin(10, 0.1, mean=(1.0, 1.0, 1.0)), "cov"),
        (lambda: gaussian_chain(seed_target(), 0, 0.1), "steps"),
        (lambda: gaussian_chain(seed_target(), 10, -1.0), "step_size"),
        (lambda: gaussian_chain(seed_target(), 10, 0.1, x0=math.inf), "x0"),
        (lambda: gaussian_chain(seed_target(), 10, 0.1, noise=np.zeros((9, 2))), "noise"),
        (lambda: gaussian_chain(seed_target(), 10, 0.1, seed=-3), "seed"),
        (lambda: gaussian_chain(GaussianMixture([1.0], [[0.0, 0.0]], np.eye(2)[None]), 10, 0.1), "target"),
    ],
)
def test_bad_input_reference_and_fast(call, name: str) -> None:
    with pytest.raises(ParameterError, match=name):
        call()


# --------------------------------------------------------------------------- CUDA (run on a GPU only)


@pytest.mark.cuda
def test_cuda_fused_and_kernel_paths_agree_and_are_reproducible() -> None:
    tgt = seed_target(device="cuda")
    a = sample_ula(tgt, 500, 0.05, chains=1000, seed=1, device="cuda")
    b = sample_ula(tgt, 500, 0.05, chains=1000, seed=1, device="cuda")
    c = sample_ula(tgt, 500, 0.05, chains=1000, seed=1, device="cuda", kernel=ula_kernel(tgt, 0.05))
    assert a.final.device.type == "cuda" and torch.equal(a.final, b.final)
    torch.testing.assert_close(a.final, c.final, rtol=0, atol=1e-10)


@pytest.mark.cuda
def test_cuda_stats_trace_mala_and_divergence() -> None:
    tgt = seed_target(device="cuda")
    tr = sample_ula(tgt, 200, 0.05, chains=256, seed=2, device="cuda", keep="trace", burn_in=20, thin=3)
    st = sample_ula(tgt, 200, 0.05, chains=256, seed=2, device="cuda", keep="stats", burn_in=20, thin=3)
    np.testing.assert_allclose(st.mean, tr.mean, atol=1e-10)
    np.testing.assert_allclose(st.cov, tr.cov, atol=1e-10)
    m = sample_mala(tgt, 200, 0.15, chains=256, seed=2, device="cuda", dtype="float32")
    assert 0 < m.acceptance_rate < 1
    with pytest.raises(DivergenceError, match="at step"):
        sample_ula(tgt, 2000, 0.5, chains=10, device="cuda", allow_unstable=True)
