"""The printed summary of one Langevin run, shared by `genbench langevin` and its --distributed form."""

from __future__ import annotations

from pathlib import Path


def fmt(v: object) -> str:
    """A vector or matrix on one line, 4 significant digits."""
    import numpy as np

    return np.array2string(np.asarray(v, dtype=float), precision=4, separator=", ", suppress_small=True).replace("\n", "")


def print_summary(s: dict, path: Path) -> None:
    """Print a `genbench langevin` summary (plain or --distributed) in a few lines."""
    err = s["errors_vs_target"]
    lines = [
        f"{s['sampler'].upper()}: T={s['steps']}, mu={s['step_size']:g}, chains={s['chains']}, seed={s['seed']}, "
        f"device={s['device']}, dtype={s['dtype']}",
        f"  empirical mean {fmt(s['empirical_mean'])}  cov {fmt(s['empirical_cov'])}  ({s['empirical_basis']})",
        f"  target    mean {fmt(s['target_mean'])}  cov {fmt(s['target_cov'])}",
    ]
    if s["exact_mean"] is not None:
        stationary = ("none (step size at or above the stability bound: the chain diverges)"
                      if s["stationary_cov"] is None else fmt(s["stationary_cov"]))
        lines.append(f"  exact law at T: mean {fmt(s['exact_mean'])}  cov {fmt(s['exact_cov'])}; stationary cov {stationary}")
    kl = err.get("kl")
    lines.append(f"  |mean-m| = {err['mean_error']:.4g}" + (f", KL(emp||target) = {kl:.4g}" if kl is not None else "")
                 + (f", ESS = {fmt(s['ess'])}" if s["ess"] is not None else ""))
    if "acceptance_rate" in s:
        lines.append(f"  acceptance rate {s['acceptance_rate']:.3f}")
    lines.append(f"  {s['elapsed_s']:.3g} s, {s['chain_steps_per_s']:.3g} chain-steps/s -> {path}")
    print("\n".join(lines))
