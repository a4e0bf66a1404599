"""The Langevin experiments (one implementation, used by the CLI, tests, benchmarks and report).

* :func:`run_chain` / :func:`summarize_run`: one run of ULA or MALA and its summary dict
  (``genbench langevin --steps T --step-size MU``).
* :func:`run_grid` (from :mod:`genbench.langevin.grid`): the assignment's 3x3 (T x μ) study from
  x_0 = 0, with histograms, diagnostics, the exact-theory values, the best cell and the explanation.
* :func:`run_convergence`: error versus T for each μ with N independent chains, beside the exact
  law's curve and the estimator's sampling band.

Everything returns plain numbers and arrays; nothing here draws or writes files.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.stats
import torch

from genbench import stats
from genbench._runtime import device_name, make_generator, resolve_device, resolve_dtype
from genbench._validate import choice, positive_int
from genbench.errors import ParameterError
from genbench.langevin import theory
from genbench.langevin.grid import GridCell, GridResult, moment_table, run_grid
from genbench.langevin.mala import sample_mala
from genbench.langevin.theory import predicted_grid_kl, trajectory_mean_law
from genbench.langevin.ula import LangevinRun, sample_ula
from genbench.targets import SEED_COV, SEED_MEAN, Gaussian

SAMPLERS = ("ula", "mala")
# Re-exported: the grid and the trajectory-average theory are part of the experiments' API.
__all__ = ["GridCell", "GridResult", "SAMPLERS", "moment_table", "predicted_grid_kl", "run_chain", "run_convergence",
           "run_grid", "summarize_run", "summary_record", "trajectory_mean_law"]


# ---------------------------------------------------------------------------------------------
# One run and its summary (the `genbench langevin` command)
# ---------------------------------------------------------------------------------------------


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float64)


def run_chain(
    steps: int,
    step_size: float,
    *,
    chains: int = 1,
    seed: int = 0,
    device: str = "cpu",
    sampler: str = "ula",
    burn_in: int = 0,
    thin: int = 1,
    dtype: str = "float64",
    x0: Any = 0.0,
    target: Gaussian | None = None,
    allow_unstable: bool = False,
) -> LangevinRun:
    """Run ULA or MALA on the seed target (or ``target``): a kept trace for one chain, final states for many."""
    sampler = choice("sampler", sampler, SAMPLERS)
    chains = positive_int("chains", chains)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    tgt = target if target is not None else Gaussian(SEED_MEAN, SEED_COV, dtype=dt, device=dev)
    keep = "trace" if chains == 1 else "final"
    if sampler == "mala":  # the Metropolis correction keeps MALA stable at any step size
        return sample_mala(tgt, steps, step_size, chains=chains, x0=x0, seed=seed, device=dev, dtype=dt,
                           burn_in=burn_in, thin=thin, keep=keep)
    return sample_ula(tgt, steps, step_size, chains=chains, x0=x0, seed=seed, device=dev, dtype=dt,
                      burn_in=burn_in, thin=thin, keep=keep, allow_unstable=allow_unstable)


def summarize_run(run: LangevinRun, target: Gaussian | None = None, x0: Any = 0.0) -> dict[str, Any]:
    """The summary dict of a run: empirical vs target vs exact-law moments, errors, ESS, speed."""
    tgt = target if target is not None else Gaussian(SEED_MEAN, SEED_COV)
    if run.chains > 1:
        emp_mean, emp_cov = _np(run.final).mean(0), np.cov(_np(run.final), rowvar=False, ddof=1)
        basis = f"across the {run.chains} chains at step T={run.steps} (N-1 denominator)"
        ess = [float(run.chains)] * tgt.dim
        ess_note = "independent chains: the draws at step T are independent, so ESS = chains"
        n_draws = run.chains
    else:
        traj = _np(run.trace[:, 0, :])  # type: ignore[index]
        emp_mean, emp_cov = run.mean, run.cov
        basis = (f"along the trajectory: {traj.shape[0]} kept iterates after burn_in={run.burn_in}, "
                 f"thin={run.thin} (N-1 denominator)")
        ess = stats.ess(traj[None]).tolist() if traj.shape[0] >= 4 else None
        ess_note = "Geyer initial-monotone ESS of the kept trajectory (stats.ess)"
        n_draws = traj.shape[0]
    return summary_record(run, tgt, x0, emp_mean=emp_mean, emp_cov=emp_cov, basis=basis, n_draws=n_draws,
                          ess=ess, ess_note=ess_note, compare_exact=run.chains > 1)


def summary_record(run: Any, target: Gaussian, x0: Any, *, emp_mean: np.ndarray, emp_cov: np.ndarray, basis: str,
                   n_draws: int, ess: list[float] | None, ess_note: str, compare_exact: bool) -> dict[str, Any]:
    """The ``summary.json`` dict shared by single-process and sharded runs, from a run's record and its moments.

    ``run`` is any record with the fields of :class:`LangevinRun` used here (steps, step_size,
    chains, seed, device, dtype, sampler, burn_in, thin, elapsed_s, chain_steps_per_s,
    acceptance_rate); ``compare_exact`` says whether the moments estimate the law of x_T.
    """
    m, sigma = _np(target.mean), _np(target.cov)
    mu = float(run.step_size) if np.ndim(run.step_size) == 0 else None
    exact_mean = exact_cov = stationary = None
    predicted = None
    if run.sampler == "ula" and mu is not None:
        # The law of x_T exists at any step size; above the stability bound (--allow-unstable) there is
        # no stationary law and no autocorrelation time to predict an ESS from.
        exact_mean, exact_cov = theory.ula_mean(target, mu, run.steps, x0), theory.ula_cov(target, mu, run.steps)
        if mu < theory.stability_bound(target):
            stationary = theory.stationary_cov(target, mu)
            if run.chains == 1 and n_draws >= 1:
                predicted = theory.predicted_ess(target, mu, n_draws, thin=int(run.thin)).tolist()
    elif run.sampler == "mala":
        stationary = sigma  # MALA leaves the target exactly invariant
    summary: dict[str, Any] = {
        "steps": run.steps,
        "step_size": run.step_size,
        "chains": run.chains,
        "seed": run.seed,
        "device": run.device,
        "device_name": device_name(run.device),
        "dtype": run.dtype,
        "sampler": run.sampler,
        "burn_in": run.burn_in,
        "thin": run.thin,
        "x0": x0,
        "empirical_mean": emp_mean,
        "empirical_cov": emp_cov,
        "empirical_basis": basis,
        "n_draws": n_draws,
        "target_mean": m,
        "target_cov": sigma,
        "exact_mean": exact_mean,
        "exact_cov": exact_cov,
        "exact_note": ("exact Gaussian law of x_T under ULA from x0 (genbench.langevin.theory)" if exact_mean is not None
                       else "no closed-form law of x_T for this sampler (MALA's is not Gaussian); its stationary law is the target"),
        "stationary_cov": stationary,
        "stability_bound": theory.stability_bound(target),
        "errors_vs_target": moment_table(emp_mean, emp_cov, m, sigma),
        "errors_vs_exact_law": (moment_table(emp_mean, emp_cov, exact_mean, exact_cov)
                                if exact_mean is not None and compare_exact else None),
        "ess": ess,
        "ess_note": ess_note,
        "predicted_ess": predicted,
        "elapsed_s": run.elapsed_s,
        "chain_steps_per_s": run.chain_steps_per_s,
    }
    if run.acceptance_rate is not None:
        summary["acceptance_rate"] = run.acceptance_rate
    return summary


# ---------------------------------------------------------------------------------------------
# Error versus T with many chains
# ---------------------------------------------------------------------------------------------


def run_convergence(
    step_sizes: Sequence[float] = (0.001, 0.01, 0.15),
    checkpoints: Sequence[int] = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000),
    *,
    chains: int = 1000,
    seed: int = 0,
    x0: Any = 0.0,
    device: str = "cpu",
    dtype: str = "float64",
    band_draws: int = 2000,
    level: float = 0.95,
    include_mala: bool = False,
) -> dict[str, Any]:
    """Error of the N-chain mean and covariance at step t vs t, for each μ, with the exact-law curves.

    For each μ one batched ULA run of ``chains`` chains (one continuous random stream) is stopped at
    each checkpoint t and the chains' mean and covariance (N − 1 denominator) are compared with the
    target. Theory: the exact law N(mean_t, cov_t) gives the bias curves ‖mean_t − m‖ and
    ‖cov_t − Σ‖_F, and the band is the ``level`` central interval of the same error statistics when
    the N draws come from the exact law (mean ~ N(mean_t, cov_t/N), (N−1)·cov ~ Wishart(N−1, cov_t),
    ``band_draws`` Monte Carlo replicates). ``include_mala`` adds MALA curves (bias-free reference).
    """
    chains = positive_int("chains", chains, minimum=2)
    band_draws = positive_int("band_draws", band_draws)
    cps = sorted({positive_int("checkpoints", int(c) if isinstance(c, (int, np.integer)) else c) for c in checkpoints})
    if not (0 < level < 1):
        raise ParameterError(f"level must be in (0, 1), got {level!r}")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    target = Gaussian(SEED_MEAN, SEED_COV, dtype=dt, device=dev)
    t64 = Gaussian(SEED_MEAN, SEED_COV)
    m, sigma = _np(t64.mean), _np(t64.cov)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    t0 = time.perf_counter()
    curves = []
    samplers = ("ula", "mala") if include_mala else ("ula",)
    for sampler in samplers:
        for mu in step_sizes:
            gen = make_generator(seed, dev)
            x = None if np.ndim(x0) == 0 and float(x0) == 0.0 else x0
            prev = 0
            rows: dict[str, list[float]] = {k: [] for k in (
                "mean_error", "cov_error_fro", "theory_mean_error", "theory_cov_error_fro",
                "band_mean_lo", "band_mean_hi", "band_mean_median", "band_cov_lo", "band_cov_hi", "band_cov_median")}
            fn = sample_ula if sampler == "ula" else sample_mala
            for T in cps:
                run = fn(target, T - prev, mu, chains=chains, x0=x, generator=gen, device=dev, dtype=dt)
                x = run.final
                prev = T
                fm = _np(run.final)
                em, ec = fm.mean(0), np.cov(fm, rowvar=False, ddof=1)
                rows["mean_error"].append(float(np.linalg.norm(em - m)))
                rows["cov_error_fro"].append(float(np.linalg.norm(ec - sigma, ord="fro")))
                if sampler == "ula":
                    law_m, law_c = theory.ula_mean(t64, mu, T, x0), theory.ula_cov(t64, mu, T)
                    rows["theory_mean_error"].append(float(np.linalg.norm(law_m - m)))
                    rows["theory_cov_error_fro"].append(float(np.linalg.norm(law_c - sigma, ord="fro")))
                    bm = rng.multivariate_normal(law_m, law_c / chains, size=band_draws)
                    me = np.linalg.norm(bm - m, axis=1)
                    wc = scipy.stats.wishart(df=chains - 1, scale=law_c).rvs(size=band_draws, random_state=rng) / (chains - 1)
                    ce = np.linalg.norm(wc - sigma, axis=(1, 2))
                    for name, v in (("mean", me), ("cov", ce)):
                        rows[f"band_{name}_lo"].append(float(np.quantile(v, lo_q)))
                        rows[f"band_{name}_hi"].append(float(np.quantile(v, hi_q)))
                        rows[f"band_{name}_median"].append(float(np.median(v)))
            curve: dict[str, Any] = {"sampler": sampler, "mu": float(mu), "T": cps, **{k: v for k, v in rows.items() if v}}
            if sampler == "ula":
                s_mu = theory.stationary_cov(t64, mu)
                curve["stationary_cov_error_fro"] = float(np.linalg.norm(s_mu - sigma, ord="fro"))
                curve["mixing_time"] = theory.mixing_time(t64, mu)
            curves.append(curve)
    return {
        "chains": chains, "seed": seed, "device": str(dev), "dtype": str(dt).replace("torch.", ""),
        "level": level, "band_draws": band_draws, "checkpoints": cps, "curves": curves,
        "band_note": ("band: central interval of ||mean_N - m|| and ||cov_N - Sigma||_F when the N chains are "
                      "exact draws of the ULA law at step t (mean ~ N(mean_t, cov_t/N), (N-1) cov ~ Wishart)"),
        "elapsed_s": time.perf_counter() - t0,
    }
