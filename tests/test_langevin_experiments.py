"""The Langevin experiments: the grid's bookkeeping and conclusion, convergence curves, exact helpers."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy import stats

from genbench import wishart
from genbench.errors import ParameterError
from genbench.langevin import theory
from genbench.langevin.experiments import run_chain, run_convergence, run_grid, summarize_run
from genbench.langevin.theory import predicted_grid_kl, trajectory_mean_law
from genbench.targets import seed_target
from genbench.testing import offset_seed


@pytest.fixture(scope="module")
def grid():
    return run_grid(seed=offset_seed(42))  # the assignment's seed, re-rolled by GENBENCH_SEED_OFFSET


def test_exact_theory_ranks_the_assignment_cell_first(grid) -> None:
    # Seed-free: the exact predicted KL (trajectory-mean law + stationary bias) ranks the cells. One
    # seed's empirical ranking is a random outcome and is not asserted.
    assert (grid.theory_best["T"], grid.theory_best["mu"]) == (100000, 0.01)
    ranking = grid.theory_best["ranking"]
    assert ranking[0] == (100000, 0.01) and ranking[-1][1] == 0.15  # the biased step is last at every T
    kl = {(c.T, c.mu): c.predicted_kl for c in grid.cells}
    for mu in grid.step_sizes:  # longer runs only help: the mixing term falls with T
        assert kl[(1000, mu)] > kl[(10000, mu)] > kl[(100000, mu)]
    assert grid.theory_ranking_agrees == ((grid.best["T"], grid.best["mu"]) == (100000, 0.01))
    assert "mu=0.15" in grid.explanation and "mu=0.001" in grid.explanation
    assert "mu=0.01 balances the two at T=100000" in grid.explanation


@pytest.mark.parametrize("mus,sentence", [((0.0001, 0.001), "the largest step wins by the theory: mu=0.001"),
                                          ((0.01, 0.15), "the smallest step wins by the theory: T is long enough for mu=0.01")])
def test_explanation_is_derived_from_the_numbers(mus, sentence) -> None:
    g = run_grid(steps=(1000,), step_sizes=mus, target_draws=1000, seed=0)
    assert sentence in g.explanation and "balances" not in g.explanation


def test_grid_cells_are_consistent(grid) -> None:
    target = seed_target()
    assert grid.hists.shape == (3, 3, 50, 50) and len(grid.cells) == 9
    np.testing.assert_allclose(grid.x_edges, np.linspace(-4, 6, 51))
    for i, T in enumerate(grid.steps):
        for j, mu in enumerate(grid.step_sizes):
            c = grid.cells[3 * i + j]
            assert (c.T, c.mu) == (T, mu) and grid.cell(T, mu) is c
            assert grid.hists[i, j].sum() <= T  # points outside [-4, 6]^2 are not counted
            np.testing.assert_allclose(c.exact_cov_T, theory.ula_cov(target, mu, T))
            np.testing.assert_allclose(c.stationary_cov, theory.stationary_cov(target, mu))
            assert c.mixing_time == theory.mixing_time(target, mu)
            assert c.kl >= 0 and c.w2 >= 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        grid.cells[0].kl = 0.0
    # the densities integrate to the fraction of points inside the range
    area = np.diff(grid.x_edges)[0] ** 2
    assert grid.density(2, 1).sum() * area == pytest.approx(grid.hists[2, 1].sum() / 100000)
    assert grid.target_density().sum() * area == pytest.approx(grid.target_hist.sum() / grid.target_draws)
    assert grid.target_hist.shape == (50, 50) and grid.target_hist.sum() <= grid.target_draws
    row = grid.table()[0]
    assert set(row) == {f.name for f in dataclasses.fields(c)} and isinstance(row["ess"], list)
    d = grid.to_dict(arrays=False)
    assert "hists" not in d and d["target_draws"] == 100000 and len(d["target_draws_cov"]) == 2
    json.dumps(d, default=lambda o: o.tolist())


@pytest.mark.statistical(alpha=[1e-4, 1e-4, 1e-12])
def test_the_target_panel_holds_exact_draws_of_the_target(grid) -> None:
    """H0: the target panel's n = 100 000 draws are iid N(m, Σ) (seed offset_seed(42)); three exact tests.

    Mean: n (x̄ − m)ᵀ Σ⁻¹ (x̄ − m) ~ χ²₂, alpha 1e-4. Covariance: (n − 1) S ~ Wishart(Σ, n − 1), the
    modified LR test, alpha 1e-4. Histogram: a draw leaves [−4, 6]² with p <= 4 Φ(−5) = 1.2e-6 (each
    coordinate is N(1, 1)), so more than 1 % of them outside has probability
    P(Bin(n, 1.2e-6) > 1000) < 1e-12.
    """
    target = seed_target()
    n, m = grid.target_draws, target.mean.double().numpy()
    sigma = target.cov.double().numpy()
    diff = grid.target_draws_mean - m
    assert stats.chi2.sf(n * diff @ np.linalg.solve(sigma, diff), 2) > 1e-4
    k = n - 1
    white = np.linalg.eigvals(np.linalg.solve(sigma, grid.target_draws_cov)).real
    assert wishart.cov_null_pvalue(wishart.cov_lr_statistic(white, k), 2, k) > 1e-4
    assert stats.binom.sf(n // 100, n, 4 * stats.norm.sf(5.0)) < 1e-12
    assert grid.target_hist.sum() >= 0.99 * n


def test_grid_reference_method_matches_fast_in_shape_and_runs_the_loop() -> None:
    a = run_grid(steps=(200, 400), step_sizes=(0.01, 0.15), method="reference", seed=1)
    b = run_grid(steps=(200, 400), step_sizes=(0.01, 0.15), method="fast", seed=1)
    assert a.method == "reference" and a.hists.shape == b.hists.shape == (2, 2, 50, 50)
    assert a.hists.sum() > 0 and not np.array_equal(a.hists, b.hists)  # different noise streams by design
    # the exact-theory columns do not depend on the method
    for ca, cb in zip(a.cells, b.cells):
        assert ca.predicted_kl == cb.predicted_kl


def test_grid_bad_input() -> None:
    with pytest.raises(ParameterError, match="method"):
        run_grid(method="gpu")
    with pytest.raises(ParameterError, match="step_sizes"):
        run_grid(steps=(10,), step_sizes=(0.3,))
    with pytest.raises(ParameterError, match="steps"):
        run_grid(steps=(0,))
    with pytest.raises(ParameterError, match="x0"):
        run_grid(steps=(10,), x0=float("nan"))


def test_trajectory_mean_law_matches_brute_force() -> None:
    target = seed_target()
    mu, T, x0 = 0.07, 40, np.array([2.0, -1.0])
    m = target.mean.numpy()
    A = np.eye(2) - mu * target.precision.numpy()
    means = [theory.ula_mean(target, mu, t, x0) for t in range(1, T + 1)]
    # x̄ − E x̄ = (√(2μ)/T) Σ_k B_k n_k with B_k = Σ_{t=k+1..T} A^{t−1−k}
    cov = np.zeros((2, 2))
    for k in range(T):
        B = sum(np.linalg.matrix_power(A, t - 1 - k) for t in range(k + 1, T + 1))
        cov += B @ B.T
    cov *= 2 * mu / T**2
    got_m, got_c = trajectory_mean_law(target, mu, T, x0)
    np.testing.assert_allclose(got_m, np.mean(means, axis=0), atol=1e-13)
    np.testing.assert_allclose(got_c, cov, atol=1e-13)
    p = predicted_grid_kl(target, mu, T, x0)
    assert p["predicted_kl"] == pytest.approx(p["predicted_kl_mean_term"] + p["predicted_kl_cov_bias"])
    assert np.all(m == 1.0)


def test_convergence_curves_have_theory_and_bands() -> None:
    res = run_convergence(step_sizes=(0.01, 0.15), checkpoints=(10, 100, 1000), chains=300, band_draws=300,
                          include_mala=True)
    target = seed_target()
    assert [c["sampler"] for c in res["curves"]] == ["ula", "ula", "mala", "mala"]
    for c in res["curves"]:
        assert c["T"] == [10, 100, 1000] and len(c["mean_error"]) == 3 and len(c["cov_error_fro"]) == 3
        if c["sampler"] == "ula":
            for k, T in enumerate(c["T"]):
                assert c["theory_mean_error"][k] == pytest.approx(np.linalg.norm(theory.ula_mean(target, c["mu"], T) - 1))
                assert c["band_mean_lo"][k] <= c["band_mean_median"][k] <= c["band_mean_hi"][k]
                assert c["band_cov_lo"][k] <= c["band_cov_median"][k] <= c["band_cov_hi"][k]
            s_mu = theory.stationary_cov(target, c["mu"])
            assert c["stationary_cov_error_fro"] == pytest.approx(np.linalg.norm(s_mu - target.cov.numpy()))
        else:
            assert "theory_mean_error" not in c


def test_run_chain_and_summary_for_both_bases() -> None:
    one = summarize_run(run_chain(500, 0.05, seed=1, burn_in=100))
    assert one["n_draws"] == 400 and one["errors_vs_exact_law"] is None and len(one["predicted_ess"]) == 2
    many = summarize_run(run_chain(50, 0.05, chains=100, seed=1))
    assert many["n_draws"] == 100 and many["errors_vs_exact_law"]["kl"] >= 0
    with pytest.raises(ParameterError, match="sampler"):
        run_chain(10, 0.1, sampler="hmc")
