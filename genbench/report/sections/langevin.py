"""Langevin section: the assignment's 3x3 grid study and the convergence study against the exact ULA law."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genbench.report import figures as F
from genbench.report.model import SectionResult, check, figure, section, table
from genbench.report.profiles import ReportProfile, get_profile

__all__ = ["ID", "TITLE", "ConvergenceCurve", "Convergence", "LangevinData", "run", "render", "stage"]

ID, TITLE = "langevin", "Langevin sampling"


@dataclass(frozen=True)
class ConvergenceCurve:
    """One sampler at one step size: the N-chain errors at each checkpoint, the exact law's and its band."""

    sampler: str
    mu: float
    T: list[int]
    mean_error: list[float]
    cov_error_fro: list[float]
    theory_mean_error: list[float] | None = None
    theory_cov_error_fro: list[float] | None = None
    band_mean_lo: list[float] | None = None
    band_mean_hi: list[float] | None = None
    band_cov_lo: list[float] | None = None
    band_cov_hi: list[float] | None = None


@dataclass(frozen=True)
class Convergence:
    """The convergence study (``genbench.langevin.experiments.run_convergence``), typed."""

    chains: int
    seed: int
    device: str
    level: float
    checkpoints: list[int]
    curves: list[ConvergenceCurve]
    band_note: str
    elapsed_s: float

    @classmethod
    def from_result(cls, d: Mapping[str, Any]) -> Convergence:
        """From ``run_convergence``'s JSON-shaped result."""
        fields = ConvergenceCurve.__dataclass_fields__
        curves = [ConvergenceCurve(**{k: v for k, v in c.items() if k in fields}) for c in d["curves"]]
        return cls(chains=d["chains"], seed=d["seed"], device=d["device"], level=d["level"],
                   checkpoints=list(d["checkpoints"]), curves=curves, band_note=d.get("band_note", ""),
                   elapsed_s=d["elapsed_s"])


@dataclass(frozen=True)
class LangevinData:
    """The grid study (a ``GridResult``) and the convergence study; either may be None."""

    grid: Any | None
    convergence: Convergence | None
    how: str = ""


def run(config: Any, profile: ReportProfile, work: Path) -> LangevinData:
    """Run the 3x3 grid and the convergence study at the profile's sizes."""
    from genbench.langevin.experiments import run_convergence, run_grid

    grid = run_grid(seed=config.seed)
    conv = run_convergence(seed=config.seed, device=config.device, chains=profile.convergence_chains,
                           include_mala=profile.convergence_mala)
    how = (f"Ran: genbench langevin grid --seed {config.seed}, and the convergence study with "
           f"{profile.convergence_chains:,} chains per step size on {config.device}"
           + (" with MALA beside ULA." if profile.convergence_mala else "."))
    return LangevinData(grid, Convergence.from_result(conv), how)


def _vec(x: Any) -> list[float]:
    return [float(v) for v in np.asarray(x, dtype=float).ravel()]


def _sym(c: Any) -> list[float]:
    """A 2x2 covariance as [c11, c12, c22]."""
    a = np.asarray(c, dtype=float)
    return [float(a[0, 0]), float(a[0, 1]), float(a[1, 1])]


def _grid(s: dict[str, Any], figs: dict[str, bytes], grid: Any) -> None:
    from genbench.langevin.theory import trajectory_mean_law
    from genbench.targets import SEED_COV, SEED_MEAN, Gaussian

    target = Gaussian(SEED_MEAN, SEED_COV)
    s["paragraphs"].append(
        f"The assignment's study: one ULA chain per cell from x0 = {grid.x0}, all iterates x_1..x_T, "
        f"T in {grid.steps} × μ in {grid.step_sizes} (method {grid.method}, seed {grid.seed}; cell seeds "
        f"derived per cell). Criterion: {grid.criterion}.")
    s["paragraphs"].append(grid.explanation)
    best, tbest = grid.best, grid.theory_best
    s["checks"].append(check(
        "Langevin grid: best cell agrees with the assignment", bool(grid.agrees_with_assignment),
        statistic=best.get("kl"),
        null_hypothesis=f"the best cell is T={grid.assignment_best['T']}, μ={grid.assignment_best['mu']:g} "
                        "(the assignment's conclusion)",
        detail=f"best by the criterion: T={best['T']}, μ={best['mu']:g} (statistic: its trajectory KL)"))
    s["checks"].append(check(
        "Langevin grid: exact theory picks the same cell", bool(grid.theory_ranking_agrees),
        statistic=tbest.get("predicted_kl"),
        null_hypothesis="the exact-theory criterion and the empirical criterion choose the same cell",
        detail=f"theory best: T={tbest['T']}, μ={tbest['mu']:g} (statistic: its predicted KL). "
               f"{grid.theory_criterion}"))
    nT, nmu = len(grid.steps), len(grid.step_sizes)
    dens = np.array([[grid.density(i, j) for j in range(nmu)] for i in range(nT)])
    figs["langevin-grid"] = F.langevin_grid_figure(
        grid.steps, grid.step_sizes, dens, grid.x_edges, grid.y_edges, grid.target_density(),
        best=(best["T"], best["mu"]), target_label=f"Target: {grid.target_draws:,} exact draws")
    dm, dc = grid.target_draws_mean, grid.target_draws_cov
    s["figures"].append(figure(
        "langevin-grid",
        f"Histograms of x_1..x_T (density, {len(grid.x_edges) - 1}×{len(grid.y_edges) - 1} bins on "
        f"[{grid.x_edges[0]:g}, {grid.x_edges[-1]:g}]²) for each (T, μ), beside the histogram of "
        f"{grid.target_draws:,} exact target draws on the same bins (their mean ({dm[0]:.3f}, {dm[1]:.3f}), "
        f"covariance [[{dc[0][0]:.3f}, {dc[0][1]:.3f}], [{dc[1][0]:.3f}, {dc[1][1]:.3f}]]), all on one colour "
        "scale. Departures from the assignment's figure: " + "; ".join(F.GRID_DEPARTURES)
        + ". `genbench langevin grid --style assignment` draws the assignment's own two figures."))
    rank = {tuple(tm): k + 1 for k, tm in enumerate(best.get("ranking", []))}
    trank = {tuple(tm): k + 1 for k, tm in enumerate(tbest.get("ranking", []))}
    rows_why, rows_exact = [], []
    for c in grid.cells:
        key = (c.T, c.mu)
        mix_term, bias_term = c.predicted_kl_mean_term, c.predicted_kl_cov_bias
        cause = "—" if rank.get(key) == 1 else ("bias (μ too large)" if bias_term > mix_term
                                               else "mixing / transient (T too short for μ)")
        rows_why.append([c.T, c.mu, rank.get(key), c.kl, trank.get(key), c.predicted_kl, mix_term, bias_term,
                         c.mixing_time, c.T_over_mixing_time, cause])
        traj_mean, _ = trajectory_mean_law(target, c.mu, c.T, grid.x0)
        rows_exact.append([c.T, c.mu, _vec(c.empirical_mean), _vec(traj_mean), _sym(c.empirical_cov),
                           _sym(c.stationary_cov), c.mean_error, c.cov_error_fro, c.stationary_cov_error_fro,
                           float(np.min(c.ess)), float(np.min(c.predicted_ess))])
    s["tables"].append(table(
        "langevin-why", "Why the best cell wins: empirical and exact-theory ranking",
        ["T", "μ", "rank", "trajectory KL", "theory rank", "predicted KL", "of which mixing/transient",
         "of which stationary bias", "mixing time [steps]", "T / mixing time", "loses by"], rows_why,
        note="Predicted KL = exact E[(x̄_T − m)ᵀ Σ⁻¹ (x̄_T − m)]/2 under the ULA law (the cost of the transient "
             "from x0 and of autocorrelation) + KL(N(m, S_μ) ‖ N(m, Σ)) (the stationary bias of ULA)."))
    s["tables"].append(table(
        "langevin-exact", "Exact versus empirical, per cell",
        ["T", "μ", "empirical mean x̄_T", "exact E[x̄_T]", "empirical cov [11, 12, 22]", "stationary S_μ [11, 12, 22]",
         "‖mean − m‖", "‖cov − Σ‖_F", "‖S_μ − Σ‖_F (exact)", "ESS (min)", "predicted ESS (min)"], rows_exact,
        note="Empirical moments of the trajectory x_1..x_T; exact E[x̄_T] is the exact mean of the trajectory "
             "average under the ULA law from x0 (transient included), S_μ the stationary covariance the "
             "trajectory's covariance tends to; target m = (1, 1), Σ = [[1, .9], [.9, 1]]."))
    s["details"]["grid"] = {"best": best, "theory_best": tbest, "agrees_with_assignment": grid.agrees_with_assignment,
                            "elapsed_s": grid.elapsed_s, "timings": grid.timings,
                            "target_draws": {"n": grid.target_draws, "mean": _vec(dm), "cov": _sym(dc)}}


def _convergence(s: dict[str, Any], figs: dict[str, bytes], conv: Convergence) -> None:
    ula = [c for c in conv.curves if c.sampler == "ula"]
    mala = {c.mu: c for c in conv.curves if c.sampler == "mala"}
    lvl = conv.level
    for stat, label, fid in (("mean", "‖mean_N − m‖", "langevin-conv-mean"), ("cov", "‖cov_N − Σ‖_F", "langevin-conv-cov")):
        def err(c: ConvergenceCurve) -> list[float]:
            return c.mean_error if stat == "mean" else c.cov_error_fro

        curves = [{"mu": c.mu, "T": c.T, "empirical": err(c), "theory_T": c.T,
                   "theory": c.theory_mean_error if stat == "mean" else c.theory_cov_error_fro,
                   "theory_lo": c.band_mean_lo if stat == "mean" else c.band_cov_lo,
                   "theory_hi": c.band_mean_hi if stat == "mean" else c.band_cov_hi,
                   "band_label": f"{lvl:.0%} band (N draws of the exact law)",
                   "extra": err(mala[c.mu]) if c.mu in mala else None, "extra_label": "MALA (no stationary bias)"}
                  for c in ula]
        figs[fid] = F.convergence_figure(curves, metric=f"{label} of {conv.chains} chains", unit="")
        s["figures"].append(figure(
            fid, f"{label} at step t of {conv.chains} independent ULA chains from x0 = 0 (points), the exact "
                 f"law's error ‖E − target‖ (line) and the {lvl:.0%} band of the same statistic for N exact draws "
                 f"of the ULA law at step t (shaded). For μ = 0.15 the error plateaus at the stationary bias.",
            after="langevin-conv"))
    rows, inside, total = [], 0, 0
    for c in ula:
        for k, T in enumerate(c.T):
            bm = [c.band_mean_lo[k], c.band_mean_hi[k]] if c.band_mean_lo and c.band_mean_hi else None
            bc = [c.band_cov_lo[k], c.band_cov_hi[k]] if c.band_cov_lo and c.band_cov_hi else None
            ins_m = bm is not None and bm[0] <= c.mean_error[k] <= bm[1]
            ins_c = bc is not None and bc[0] <= c.cov_error_fro[k] <= bc[1]
            inside += ins_m + ins_c
            total += 2
            rows.append([c.mu, T, c.mean_error[k], (c.theory_mean_error or [None] * len(c.T))[k], bm, ins_m,
                         c.cov_error_fro[k], (c.theory_cov_error_fro or [None] * len(c.T))[k], bc, ins_c])
    s["tables"].append(table(
        "langevin-conv", f"Error versus T ({conv.chains} chains, seed {conv.seed}, {conv.device})",
        ["μ", "t", "‖mean − m‖", "exact", f"{lvl:.0%} band", "in band", "‖cov − Σ‖_F", "exact", f"{lvl:.0%} band",
         "in band"], rows, note=conv.band_note))
    s["checks"].append(check(
        "Langevin convergence: errors inside the exact-law band", None, statistic=inside / total if total else None,
        null_hypothesis=f"the N-chain errors follow their exact sampling law (expect about {lvl:.0%} inside)",
        detail=f"{inside} of {total} (t, statistic) points inside their {lvl:.0%} band. Informational: the points "
               "of one run are dependent across t, so this is not a calibrated test; the calibrated ones are in "
               "the test suite and the calibration study."))
    if mala:
        ula_by_mu = {c.mu: c for c in ula}
        s["tables"].append(table(
            "langevin-mala", "MALA (Metropolis-adjusted): no stationary bias",
            ["μ", "t", "‖mean − m‖", "‖cov − Σ‖_F", "ULA ‖cov − Σ‖_F"],
            [[mu, m.T[-1], m.mean_error[-1], m.cov_error_fro[-1], ula_by_mu[mu].cov_error_fro[-1]]
             for mu, m in mala.items() if mu in ula_by_mu]))
    s["details"]["convergence"] = {"chains": conv.chains, "seed": conv.seed, "elapsed_s": conv.elapsed_s,
                                   "checkpoints": conv.checkpoints}


def render(data: LangevinData) -> SectionResult:
    """The section from a ``GridResult`` and the typed convergence study (either may be None)."""
    s = section(ID, TITLE)
    figs: dict[str, bytes] = {}
    if data.how:
        s["paragraphs"].append(data.how)
    if data.grid is not None:
        _grid(s, figs, data.grid)
    if data.convergence is not None:
        _convergence(s, figs, data.convergence)
    return SectionResult(s, figs)


def stage(config: Any, work: Path) -> SectionResult:
    """Run and render (the report's build calls this)."""
    return render(run(config, get_profile(config.profile), work))
