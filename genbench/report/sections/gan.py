"""GAN section: train the assignment's GAN within the profile's budget, then judge its images."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbench.report import figures as F
from genbench.report.model import SectionResult, check, figure, rounded, section, table
from genbench.report.profiles import (
    ASSIGNMENT_DIGITS,
    ASSIGNMENT_EPOCHS,
    ASSIGNMENT_STEPS,
    ReportProfile,
    get_profile,
)

__all__ = ["ID", "TITLE", "GanBudget", "GanData", "REFERENCE_ACCURACY_TARGET", "run", "render", "stage"]

ID, TITLE = "gan", "MNIST GAN"
REFERENCE_ACCURACY_TARGET = 0.96  # the reference classifier's accuracy on held-out real digits


@dataclass(frozen=True)
class GanBudget:
    """The training budget used, beside the assignment's."""

    steps: int
    batch: int
    digits: int
    shuffled: bool
    assignment_steps: int = ASSIGNMENT_STEPS
    assignment_epochs: int = ASSIGNMENT_EPOCHS
    assignment_digits: int = ASSIGNMENT_DIGITS

    @property
    def epochs(self) -> float:
        """Passes over the training digits (fractional when the step budget ends mid-epoch)."""
        steps_per_epoch = -(-self.digits // self.batch)  # the last batch of an epoch may be short
        return self.steps / steps_per_epoch if steps_per_epoch else 0.0

    def sentence(self) -> str:
        """The budget in one sentence for the page."""
        return (f"Training budget: {self.steps:,} optimiser steps of batch {self.batch} ({self.epochs:.4g} epochs of "
                f"{self.digits:,} digits, {'shuffled each epoch' if self.shuffled else 'in stored order'}), against "
                f"the assignment's {self.assignment_epochs} epochs of the {self.assignment_digits:,} MNIST training "
                f"digits ({self.assignment_steps:,} steps): {self.steps / self.assignment_steps:.0%} of its steps. "
                "Model, loss, optimiser and batch size are the assignment's.")


@dataclass(frozen=True)
class GanData:
    """A training run's history (``history.json``), its images, quality report and budget."""

    history: Mapping[str, Any]
    samples_png: bytes | None  # the assignment's 1x10 figure of the seed-42 samples
    grid_png: bytes | None  # 10x10 grid of generated digits
    quality: Any | None  # genbench.gan.quality.QualityReport
    budget: GanBudget | None = None
    how: str = ""


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


def run(config: Any, profile: ReportProfile, work: Path) -> GanData:
    """Train within the profile's budget (quick: a step budget on the offline digits; full: 30 epochs), then evaluate."""
    from genbench._io import write_json
    from genbench.errors import DataError
    from genbench.gan.data import evaluation_data
    from genbench.gan.quality import evaluate_generator
    from genbench.gan.train import TrainConfig, class_sorted, train_gan

    explicit = config.data if config.data and config.data != "auto" else None
    train_candidates = ([explicit] if explicit else []) + [profile.gan_default_data]
    train_data, tried = _first_split(train_candidates, "train", config.device)
    if train_data is None:
        raise DataError("no MNIST training digits: " + "; ".join(tried))
    # genbench.gan.data's policy: the test split from --data or the searched places, else a seeded
    # hold-out of the training digits, which the GAN and the reference classifier then do not see.
    ev = None
    if explicit is not None:
        try:
            ev = evaluation_data(explicit, train_data, seed=config.seed, device=config.device)
        except DataError:
            ev = None  # --data holds training digits only: look for a test split as everywhere else
    if ev is None:
        ev = evaluation_data("auto", train_data, seed=config.seed, device=config.device)
    train_data, test_data = ev.train, ev.heldout
    n_quality = len(test_data) // 2 if ev.held_out_from_train else profile.gan_quality_n
    budget, spe = profile.gan_steps, -(-len(train_data) // 64)
    epochs = profile.gan_epochs or -(-budget // spe)
    shuffle = profile.gan_steps is not None or class_sorted(train_data)
    cfg = TrainConfig(epochs=epochs, max_steps=budget, seed=config.seed, device=config.device,
                      data=train_candidates[len(tried)], shuffle=shuffle)
    res = train_gan(cfg, work / "train", quiet=True, progress=sys.stderr.isatty(), data=train_data)
    how = (f"Ran: genbench gan train --epochs {cfg.epochs}" + (f" --max-steps {budget}" if budget else "")
           + (" --shuffle" if shuffle else "") + f" --seed {cfg.seed} --device {cfg.device} --data {cfg.data}; "
           f"history.json, quality.json and the images are in artifacts/{work.name}/"
           + ("." if profile.keep_checkpoint else " (the checkpoint is not kept in this profile)."))
    if ev.held_out_from_train:
        how += " " + ev.note
    q = evaluate_generator(res.checkpoint, test_data, train_data, n=n_quality, seed=config.seed, device=config.device,
                           data_note=ev.note)
    write_json(work / "quality.json", q.to_dict())
    if not profile.keep_checkpoint:
        res.checkpoint.unlink(missing_ok=True)  # 13 MB per run; `genbench gan train` keeps one
    samples = res.figure if res.figure is not None and res.figure.is_file() else res.samples
    return GanData(res.history, samples.read_bytes(), res.grid.read_bytes(), q,
                   GanBudget(steps=res.steps, batch=cfg.batch_size, digits=len(train_data), shuffled=shuffle), how)


def history_curves(history: Mapping[str, Any]) -> dict[str, Any]:
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


def render(data: GanData) -> SectionResult:
    """The section: budget, sample figure, grid, losses, per-epoch table and (with a quality report) its checks."""
    history = data.history
    s = section(ID, TITLE)
    figs: dict[str, bytes] = {}
    if data.how:
        s["paragraphs"].append(data.how)
    cfg = history.get("config", {})
    this = history.get("this_run", {})
    s["paragraphs"].append(
        f"Trained {history.get('epochs_completed')} epoch(s), {history.get('steps')} steps of batch "
        f"{cfg.get('batch_size')} on {history.get('n_train')} digits ({history.get('data_source')}); seed "
        f"{cfg.get('seed')}, device {history.get('device')}, Adam lr {cfg.get('lr')} betas {cfg.get('betas')}; "
        f"training loop {rounded(history.get('wall_time_s'))} s"
        + (f" ({rounded(this.get('it_per_s'))} it/s)." if this.get("it_per_s") else "."))
    if data.budget is not None:
        b = data.budget
        s["paragraphs"].append(b.sentence())
        s["details"]["budget"] = {"steps": b.steps, "batch": b.batch, "digits": b.digits, "epochs": b.epochs,
                                  "shuffled": b.shuffled, "assignment_steps": b.assignment_steps}
    s["details"]["data_source"] = history.get("data_source")
    if data.samples_png is not None:
        figs["gan-samples"] = data.samples_png
        s["figures"].append(figure("gan-samples", "The assignment's sample figure: 10 digits generated from the "
                                   "seed-42 noise (torch.Generator().manual_seed(42)), one row, gray, axes off."))
    if data.grid_png is not None:
        figs["gan-grid"] = data.grid_png
        s["figures"].append(figure("gan-grid", "A 10×10 grid of generated digits (seed-42 noise).", pixel=True))
    figs["gan-losses"] = F.loss_curves_figure(history_curves(history))
    s["figures"].append(figure("gan-losses", "Per-step training curves with a moving average and per-epoch means: "
                               "BCE loss of D and G (left); mean D output on the real batch, D(x), and on the "
                               "step's fakes, D(G(z)) (right).", after="gan-epochs"))
    s["tables"].append(table(
        "gan-epochs", "Per-epoch means",
        ["epoch", "steps", "D loss", "G loss", "D(x)", "D(G(z))", "seconds", "it/s"],
        [[e.get("epoch"), e.get("steps"), e.get("d_loss"), e.get("g_loss"), e.get("d_real"), e.get("d_fake"),
          e.get("seconds"), e.get("it_per_s")] for e in history.get("epochs", [])],
        folded=len(history.get("epochs", [])) > 30))
    if data.quality is not None:
        _quality(s, figs, data.quality)
    return SectionResult(s, figs)


def _h0(rejected: bool) -> str:
    return "H0 rejected" if rejected else "H0 not rejected"


def _quality(s: dict[str, Any], figs: dict[str, bytes], q: Any) -> None:
    """Quality table, checks and class histogram from a ``QualityReport``."""
    c, fr, k, cb, mem, clf, fam = q.c2st, q.frechet, q.kid, q.class_balance, q.memorisation, q.classifier, q.family
    div, own = q.diversity, q.own_discriminator
    s["paragraphs"].append(
        f"Quality of {q.n} generated images (seed {q.seed}) against held-out real digits "
        f"({q.real_test_source}); training digits: {q.real_train_source}. These are measurements of this "
        "generator: a rejected H0 says its images are distinguishable from real ones, which a GAN trained "
        "for minutes on CPU is expected to be. They are shown as information, not as failures of genbench; "
        "the tests that the checks themselves accept real-vs-real and reject broken generators are in the "
        "test suite and the calibration study. The overall verdict controls the family-wise error at "
        f"{fam.alpha:g} (Holm over the {len(fam.names)} checks); each check alone is read at {q.check_alpha:g}.")
    if q.data_note:
        s["paragraphs"].append(q.data_note)
    acc = clf.test_accuracy
    s["checks"].append(check(
        f"reference classifier accuracy ≥ {REFERENCE_ACCURACY_TARGET:g}", acc >= REFERENCE_ACCURACY_TARGET,
        statistic=acc,
        null_hypothesis=f"the reference classifier (trained on {clf.n_train} real digits) reaches "
                        f"{REFERENCE_ACCURACY_TARGET:g} on {clf.n_test} held-out digits",
        detail=f"{clf.architecture}; {'from cache' if clf.from_cache else 'trained now'} "
               f"({rounded(clf.train_seconds)} s). FD, KID and the class histogram use it."))
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
        statistic=mem.fraction_nearer_train, p_value=mem.p_value, alpha=mem.alpha, null_hypothesis=mem.null_hypothesis,
        detail=f"{mem.n_nearer_train} of {mem.n} samples nearer a training image; near copies "
               f"{mem.near_copies} ({mem.metric})"))
    s["checks"].append(check(
        "GAN diversity (permutation test)", None, label=_h0(div.rejected), statistic=div.relative_reduction,
        p_value=div.p_value, alpha=div.alpha, null_hypothesis=div.null_hypothesis,
        detail=f"mean within-set NN distance {div.mean_nn_generated:.3g} generated vs {div.mean_nn_real:.3g} "
               f"real; {div.near_duplicates_generated} near duplicates; detects a reduction ≥ "
               f"{div.detectable_relative_reduction:.3f} with power {div.power:g}"))
    rows = [
        ["C2ST accuracy", c.accuracy, [c.ci_low, c.ci_high], c.p_value, "0.5 (indistinguishable)",
         f"{_h0(c.rejected)} at α={c.alpha:g}; AUC {c.auc:.4f}; n_test {c.n_test}"],
        ["Fréchet distance (classifier features)", fr.fd, None, None, fr.floor,
         f"N={fr.n}, feature dim {fr.dim}; reference = real vs real at the same N"],
        ["KID", k.kid, [k.ci_low, k.ci_high], k.p_value, k.floor,
         f"± {k.se:.3g} s.e. ({k.n_subsets} disjoint subsets of {k.subset_size}; Student-t interval, {k.dof} dof); "
         f"real-vs-real ± {k.floor_se:.3g}"],
        ["class balance χ² (vs held-out real)", cb.chi2, None, cb.p_value, f"χ²({cb.dof})",
         f"{_h0(cb.rejected)} at α={cb.alpha:g}; {cb.classes_present} classes present"],
        ["mean top-class confidence", cb.mean_confidence, None, None, None, "reference classifier"],
        ["reference classifier accuracy", acc, None, None, f"≥ {REFERENCE_ACCURACY_TARGET:g}",
         f"on {clf.n_test} held-out digits"],
        ["memorisation: fraction nearer train", mem.fraction_nearer_train, None, mem.p_value, 0.5,
         f"median NN distance train {mem.median_nn_train:.3g} vs held-out {mem.median_nn_heldout:.3g}"],
        ["diversity: relative drop of within-set NN distance", div.relative_reduction, None, div.p_value, 0.0,
         f"{div.near_duplicates_generated} near duplicates among {div.n} generated, {div.near_duplicates_real} "
         f"among {div.n_real} real; {div.n_permutations} permutations"],
        ["family verdict (Holm)", fam.p_value, None, fam.p_value, f"α={fam.alpha:g}",
         f"{_h0(fam.any_rejected)}: smallest Holm-adjusted p-value of {len(fam.names)} checks"],
    ]
    if own is not None:
        rows.append(["GAN's own D: mean D(real)", own.mean_d_real, None, None, None,
                     "co-adapted with G: reported, not trusted"])
        rows.append(["GAN's own D: mean D(G(z))", own.mean_d_fake, None, None, None,
                     "co-adapted with G: reported, not trusted"])
    s["tables"].append(table("gan-quality", "Quality", ["metric", "value", "95% interval", "p-value", "reference",
                                                        "note"], rows))
    expected = cb.reference_counts if cb.reference_counts is not None else [f * cb.n for f in cb.expected_frequencies]
    scale = cb.n / max(sum(expected), 1)
    figs["gan-classes"] = F.class_histogram_figure(
        cb.counts, [e * scale for e in expected],
        title=f"Predicted classes of {cb.n} generated digits (χ² p = {cb.p_value:.2g})")
    s["figures"].append(figure("gan-classes", "Class histogram of generated digits by the reference classifier, "
                               "against the predicted classes of held-out real digits scaled to the same total (H0).",
                               after="gan-quality"))
    s["details"]["quality"] = q.to_dict()


def stage(config: Any, work: Path) -> SectionResult:
    """Run and render (the report's build calls this)."""
    return render(run(config, get_profile(config.profile), work))
