"""Report figures: matplotlib (Agg) drawings of plain results, returned as PNG bytes.

Every function takes plain numbers / numpy arrays (never experiment objects) and returns the PNG
bytes of one figure, with a title, labelled axes and units. Nothing here runs an experiment.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: the report is built on CI machines without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import PowerNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = [
    "png_bytes",
    "langevin_grid_figure",
    "assignment_grid_figures",
    "convergence_figure",
    "loss_curves_figure",
    "class_histogram_figure",
    "bench_figure",
    "calibration_figure",
]

_DPI = 110
# Colour-blind-safe pair used for CPU/CUDA and empirical/theory throughout the report.
_BLUE, _ORANGE, _GREEN, _RED, _GREY = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#666666"


def png_bytes(fig: Figure, *, dpi: int = _DPI, tight: bool = True) -> bytes:
    """Render ``fig`` to PNG bytes (no timestamp/software metadata, so output is reproducible)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _fmt_num(x: float) -> str:
    """Compact number for panel titles (1e+05 -> 100000, 0.15 -> 0.15)."""
    if float(x).is_integer() and abs(x) < 1e7:
        return f"{int(x):,}"
    return f"{x:g}"


#: How the default grid figure departs from the assignment's; its caption lists them, and
#: ``genbench langevin grid --style assignment`` draws the assignment's figures instead.
GRID_DEPARTURES = (
    "densities (counts / (T x bin area)) instead of raw counts, so that panels of different T compare",
    "one shared square-root colour scale instead of each panel's own",
    "the target's histogram (its exact draws, same bins) beside the grid instead of in a separate figure",
    "the best cell by the stated criterion outlined",
)


def langevin_grid_figure(
    T_values: Sequence[int],
    mu_values: Sequence[float],
    hists: Any,
    x_edges: Sequence[float],
    y_edges: Sequence[float],
    target_hist: Any,
    *,
    best: tuple[int, float] | None = None,
    title: str = "ULA histograms after T steps from x0 = 0, versus the target",
    target_label: str = "Target: exact draws",
) -> bytes:
    """3x3 (T x mu) histogram grid beside the target panel, on one shared colour scale.

    ``hists[i][j]`` is the density histogram (shape (nx, ny), indexed [x, y]) for T_values[i],
    mu_values[j]; ``target_hist`` is the density histogram of exact target draws on the same bins.
    The caption lists how the figure departs from the assignment's (:data:`GRID_DEPARTURES`).
    """
    h = np.asarray(hists, dtype=float)
    tgt = np.asarray(target_hist, dtype=float)
    nT, nmu = len(T_values), len(mu_values)
    if h.shape[:2] != (nT, nmu):
        raise ValueError(f"hists has shape {h.shape}, expected ({nT}, {nmu}, nx, ny)")
    xe, ye = np.asarray(x_edges, float), np.asarray(y_edges, float)
    vmax = float(max(np.nanmax(h), np.nanmax(tgt)))
    # One scale for every panel; a square-root scale keeps the tails visible beside the sharp,
    # not-yet-mixed cells (small mu, small T) that set the maximum.
    norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=vmax if vmax > 0 else 1.0)
    fig = plt.figure(figsize=(3.0 * (nmu + 1) + 0.8, 2.9 * nT + 1.0))
    gs = fig.add_gridspec(nT, nmu + 2, width_ratios=[1] * nmu + [1, 0.06], wspace=0.25, hspace=0.35)
    mesh = None
    for i, T in enumerate(T_values):
        for j, mu in enumerate(mu_values):
            ax = fig.add_subplot(gs[i, j])
            mesh = ax.pcolormesh(xe, ye, h[i, j].T, cmap="viridis", norm=norm, shading="flat")
            ax.set_aspect("equal")
            is_best = best is not None and int(best[0]) == int(T) and math.isclose(float(best[1]), float(mu))
            ax.set_title(f"T = {_fmt_num(T)}, μ = {mu:g}" + ("  (best)" if is_best else ""),
                         fontsize=10, color=_RED if is_best else "black",
                         fontweight="bold" if is_best else "normal")
            if is_best:
                for s in ax.spines.values():
                    s.set_edgecolor(_RED)
                    s.set_linewidth(2.5)
            if i == nT - 1:
                ax.set_xlabel("x₁")
            if j == 0:
                ax.set_ylabel("x₂")
            ax.tick_params(labelsize=8)
    # genbench puts the target in the grid's middle row, in its own column, on the shared scale
    # (the assignment draws it as a separate figure: see assignment_grid_figures).
    axt = fig.add_subplot(gs[nT // 2, nmu])
    axt.pcolormesh(xe, ye, tgt.T, cmap="viridis", norm=norm, shading="flat")
    axt.set_aspect("equal")
    axt.set_title(target_label, fontsize=10, fontweight="bold")
    axt.set_xlabel("x₁")
    axt.set_ylabel("x₂")
    axt.tick_params(labelsize=8)
    cax = fig.add_subplot(gs[:, nmu + 1])
    fig.colorbar(mesh, cax=cax, label="probability density (one scale for all panels, square-root)")
    fig.suptitle(title, fontsize=12)
    fig.text(0.01, 0.0, "Departures from the assignment's figure: " + "; ".join(GRID_DEPARTURES) + ".",
             fontsize=8, wrap=True, va="top")
    return png_bytes(fig)


def assignment_grid_figures(
    T_values: Sequence[int],
    mu_values: Sequence[float],
    counts: Any,
    x_edges: Sequence[float],
    y_edges: Sequence[float],
    target_counts: Any,
) -> tuple[bytes, bytes]:
    """The assignment's two figures: (3x3 grid, target), as PNG bytes.

    The grid is ``plt.subplots(nT, nmu, figsize=(15, 15))`` of ``hist2d`` raw counts
    (``density=False``), each panel on its own colour scale and titled "Iterations: {T}, Step size:
    {mu}"; the target's histogram of exact draws is a separate figure of matplotlib's default size.
    ``counts[i][j]`` and ``target_counts`` are the histograms on the edges (indexed [x, y]); they are
    drawn as ``hist2d`` draws its own (``pcolormesh(x_edges, y_edges, counts.T)`` and the axis limits).
    """
    c = np.asarray(counts, dtype=float)
    nT, nmu = len(T_values), len(mu_values)
    if c.shape[:2] != (nT, nmu):
        raise ValueError(f"counts has shape {c.shape}, expected ({nT}, {nmu}, nx, ny)")
    xe, ye = np.asarray(x_edges, float), np.asarray(y_edges, float)

    def hist2d(ax: Any, h: np.ndarray) -> None:
        ax.pcolormesh(xe, ye, h.T)
        ax.set_xlim(xe[0], xe[-1])
        ax.set_ylim(ye[0], ye[-1])

    fig, axes = plt.subplots(nT, nmu, figsize=(15, 15), squeeze=False)
    for i, T in enumerate(T_values):
        for j, mu in enumerate(mu_values):
            hist2d(axes[i, j], c[i, j])
            axes[i, j].set_title(f"Iterations: {T}, Step size: {mu}")
    grid_png = png_bytes(fig, dpi=100, tight=False)
    fig_t = plt.figure()
    ax = fig_t.gca()
    hist2d(ax, np.asarray(target_counts, dtype=float))
    ax.set_title("Target distribution")
    return grid_png, png_bytes(fig_t, dpi=100, tight=False)


def convergence_figure(curves: Sequence[Mapping[str, Any]], *, metric: str = "error", unit: str = "") -> bytes:
    """Error versus T, one panel per mu: empirical points with CIs, exact-theory curve and band.

    Each curve: ``mu``, ``T`` (list), ``empirical`` (list), optional ``empirical_lo``/``empirical_hi``
    (CI), ``theory_T``/``theory`` (exact curve), optional ``theory_lo``/``theory_hi`` (band of the
    estimator's sampling distribution under the exact law), optional ``band_label``, optional
    ``extra`` (a second empirical series on the same T, e.g. MALA) with ``extra_label``.
    """
    n = max(1, len(curves))
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, 3.8), squeeze=False, sharey=True)
    ylab = metric + (f" [{unit}]" if unit else "")
    ymins: list[float] = []
    for ax, c in zip(axes[0], curves):
        T = np.asarray(c["T"], float)
        emp = np.asarray(c["empirical"], float)
        if c.get("theory_T") is not None and c.get("theory") is not None:
            tT = np.asarray(c["theory_T"], float)
            if c.get("theory_lo") is not None and c.get("theory_hi") is not None:
                ax.fill_between(tT, np.asarray(c["theory_lo"], float), np.asarray(c["theory_hi"], float),
                                color=_ORANGE, alpha=0.25, lw=0, label=c.get("band_label", "95% band (exact law)"))
            ax.plot(tT, np.asarray(c["theory"], float), color=_ORANGE, lw=2, label="exact theory")
        if c.get("empirical_lo") is not None and c.get("empirical_hi") is not None:
            lo, hi = np.asarray(c["empirical_lo"], float), np.asarray(c["empirical_hi"], float)
            ax.errorbar(T, emp, yerr=[np.clip(emp - lo, 0, None), np.clip(hi - emp, 0, None)], fmt="o",
                        color=_BLUE, capsize=3, label="empirical (95% CI)")
        else:
            ax.plot(T, emp, "o", color=_BLUE, label="empirical")
        if c.get("extra") is not None:
            ax.plot(T, np.asarray(c["extra"], float), "s", color=_GREEN, ms=5, label=c.get("extra_label", "MALA"))
        ax.set_xscale("log")
        if np.all(emp[np.isfinite(emp)] > 0):
            ax.set_yscale("log")
            # The exact error of an unbiased chain decays geometrically to ~0; keep the axis on the
            # data and the band instead of letting 1e-20 squash them (the curve leaves the panel).
            floor = [emp[np.isfinite(emp) & (emp > 0)]]
            if c.get("theory_lo") is not None:
                lo_b = np.asarray(c["theory_lo"], float)
                floor.append(lo_b[np.isfinite(lo_b) & (lo_b > 0)])
            vals = np.concatenate(floor)
            if vals.size:
                ymins.append(float(vals.min()) / 3)
        ax.set_title(f"μ = {float(c['mu']):g}")
        ax.set_xlabel("T (steps)")
        ax.grid(True, which="both", alpha=0.3)
    if ymins:
        axes[0][0].set_ylim(bottom=min(ymins))  # shared y axis: one floor for all panels
    axes[0][0].set_ylabel(ylab)
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle(f"{metric} versus T, empirical against the exact ULA law", fontsize=12)
    fig.tight_layout()
    return png_bytes(fig)


def loss_curves_figure(history: Mapping[str, Any]) -> bytes:
    """GAN training curves: D and G loss, mean D(x) and D(G(z)) per step, with per-epoch means.

    ``history``: ``step`` (list of step indices) with ``d_loss``, ``g_loss``, ``d_real``, ``d_fake``
    per step; optional ``epoch_step`` (step at each epoch end) with ``epoch_d_loss``, ... per epoch.
    """
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4))
    steps = np.asarray(history.get("step", []), float)

    def _curve(ax: Any, key: str, label: str, colour: str) -> None:
        y = history.get(key)
        if y is None or len(y) == 0:
            return
        y = np.asarray(y, float)
        x = steps if len(steps) == len(y) else np.arange(1, len(y) + 1)
        ax.plot(x, y, color=colour, alpha=0.35, lw=0.8)
        if len(y) >= 20:  # a moving average makes the trend readable under minibatch noise
            k = max(5, len(y) // 50)
            ma = np.convolve(y, np.ones(k) / k, mode="valid")
            ax.plot(x[k - 1:], ma, color=colour, lw=1.8, label=f"{label} (moving avg, {k} steps)")
        else:
            ax.plot(x, y, color=colour, lw=1.8, label=label)
        ek, es = history.get("epoch_" + key), history.get("epoch_step")
        if ek is not None and es is not None and len(ek) == len(es) and len(ek) > 0:
            ax.plot(np.asarray(es, float), np.asarray(ek, float), "o", color=colour, mec="black", ms=5,
                    label=f"{label}, epoch mean")

    _curve(a1, "d_loss", "D loss", _BLUE)
    _curve(a1, "g_loss", "G loss", _ORANGE)
    a1.set_title("Discriminator and generator BCE loss")
    a1.set_xlabel("training step (batches of 64)")
    a1.set_ylabel("BCE loss [nats]")
    _curve(a2, "d_real", "D(x), real", _GREEN)
    _curve(a2, "d_fake", "D(G(z)), fake", _RED)
    a2.axhline(0.5, color=_GREY, ls="--", lw=1, label="0.5 (D cannot tell)")
    a2.set_ylim(-0.02, 1.02)
    a2.set_title("Mean discriminator output")
    a2.set_xlabel("training step (batches of 64)")
    a2.set_ylabel("mean D output (probability 'real')")
    for ax in (a1, a2):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return png_bytes(fig)


def class_histogram_figure(counts: Sequence[float], expected: Sequence[float] | None = None,
                           *, title: str = "Predicted classes of generated digits") -> bytes:
    """Bar chart of generated-digit class counts with the expected counts under H0 (uniform/real)."""
    c = np.asarray(counts, float)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.bar(np.arange(len(c)), c, color=_BLUE, label="generated")
    if expected is not None:
        e = np.asarray(expected, float)
        ax.step(np.arange(len(e) + 1) - 0.5, np.append(e, e[-1]), where="post", color=_ORANGE, lw=2,
                label="expected under H0")
    ax.set_xticks(np.arange(len(c)))
    ax.set_xlabel("digit class (reference classifier)")
    ax.set_ylabel("count [images]")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)


def bench_figure(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Throughput per workload, CPU beside CUDA (log scale); rows: workload, device, throughput, unit."""
    workloads: list[str] = []
    for r in rows:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])
    devices = sorted({str(r["device"]) for r in rows}, key=lambda d: (d != "cpu", d))
    colours = {d: c for d, c in zip(devices, [_BLUE, _ORANGE, _GREEN, _RED])}
    fig, ax = plt.subplots(figsize=(9, 0.45 * max(3, len(workloads) * max(1, len(devices))) + 1.4))
    height = 0.8 / max(1, len(devices))
    units = {}
    for k, dev in enumerate(devices):
        ys, xs = [], []
        for i, w in enumerate(workloads):
            match = [r for r in rows if r["workload"] == w and str(r["device"]) == dev]
            if match and match[0].get("throughput"):
                ys.append(i + (k - (len(devices) - 1) / 2) * height)
                xs.append(float(match[0]["throughput"]))
                units[w] = match[0].get("unit", "")
        ax.barh(ys, xs, height=height, color=colours[dev], label=dev)
    ax.set_yticks(np.arange(len(workloads)))
    ax.set_yticklabels([f"{w}  [{units.get(w, '')}]" for w in workloads], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("median throughput (unit per workload, log scale; higher is better)")
    ax.set_title("Benchmark throughput by device")
    ax.set_axisbelow(True)  # grid lines behind the bars, not striped across them
    ax.grid(True, axis="x", which="major", alpha=0.3)
    ax.legend(title="device", fontsize=8)
    fig.tight_layout()
    return png_bytes(fig)


def calibration_figure(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """False-alarm rate of each check with its Clopper-Pearson CI, against its alpha."""
    fig, ax = plt.subplots(figsize=(8, 0.4 * max(4, len(rows)) + 1.2))
    names = [str(r["check"]) for r in rows]
    y = np.arange(len(rows))
    rate = np.array([float(r["rate"]) for r in rows])
    lo = np.array([float(r.get("ci_lo", r["rate"])) for r in rows])
    hi = np.array([float(r.get("ci_hi", r["rate"])) for r in rows])
    alpha = np.array([float(r["alpha"]) for r in rows])
    ax.errorbar(rate, y, xerr=[np.clip(rate - lo, 0, None), np.clip(hi - rate, 0, None)], fmt="o",
                color=_BLUE, capsize=3, label="false-alarm rate (Clopper-Pearson 95% CI)")
    ax.scatter(alpha, y, marker="|", s=300, color=_RED, label="nominal α", zorder=3)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("rejection rate on correct inputs (fraction of seeds)")
    ax.set_title("Calibration: false-alarm rate versus α")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return png_bytes(fig)
