"""Samplers section: the conformance kit's verdict on genbench's own ULA and MALA and, when installed,
BlackJAX's SGLD (full-batch gradient, i.e. ULA) and MALA."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbench.report.model import SectionResult, check, section, table
from genbench.report.profiles import ReportProfile, get_profile

__all__ = ["ID", "TITLE", "SamplersData", "run", "render", "stage"]

ID, TITLE = "samplers", "Samplers"


@dataclass(frozen=True)
class SamplersData:
    """One ``SamplerVerdict`` per known sampler, the targets asked for and whether the peers were installed."""

    verdicts: list[Any]
    targets: tuple[str, ...] | str
    peers_installed: bool
    how: str = ""


def run(config: Any, profile: ReportProfile, work: Path) -> SamplersData:
    """Run the conformance battery on every known sampler on the profile's targets."""
    from genbench._io import write_json
    from genbench.conformance import adapters
    from genbench.conformance.samplers import sampler_verdicts

    peers = adapters.peers_available()
    targets = profile.sampler_targets
    verdicts = sampler_verdicts(targets=list(targets) if isinstance(targets, tuple) else targets, seed=config.seed)
    write_json(work / "conformance.json", {"samplers": [v.to_dict() for v in verdicts]})
    shown = ",".join(targets) if isinstance(targets, tuple) else targets
    how = (f"Ran: genbench check-sampler ADAPTER --kind KIND --targets {shown} --seed {config.seed} for each sampler "
           f"below; the full results are in artifacts/{work.name}/conformance.json.")
    if profile.name == "quick":
        how += (" To fit its time budget this profile judges the 1-D and 2-D Gaussian targets only; "
                "`genbench report --profile full` runs the default catalogue (adds a 10-D ill-conditioned Gaussian "
                "and, for exact samplers, a two-component mixture).")
    return SamplersData(verdicts, targets, peers, how)


def render(data: SamplersData) -> SectionResult:
    """The section: one summary row and one check per sampler, then each sampler's table of tests."""
    s = section(ID, TITLE)
    if data.how:
        s["paragraphs"].append(data.how)
    s["paragraphs"].append(
        "Each sampler is driven through genbench's adapter protocol on targets whose answers are known exactly. "
        "ULA-kind samplers are compared with the exact law of the unadjusted recursion at a transient and a "
        "near-stationary step count at two step sizes; exact samplers (MALA) must leave exact target draws at the "
        "target (invariance) and converge to it from a fixed start. Sample sizes are planned for the stated "
        "effect and power; the verdict holds the family-wise α of each sampler's battery by Holm's procedure.")
    if data.verdicts:
        total = sum(v.report.alpha for v in data.verdicts)
        s["paragraphs"].append(
            f"Each battery holds α = {data.verdicts[0].report.alpha:g}, so correct samplers fail this section by "
            f"chance with probability at most {total:g} (the sum over the {len(data.verdicts)} samplers); for a "
            "given seed the outcome is fixed.")
    if not data.peers_installed:
        s["paragraphs"].append("BlackJAX is not installed, so only genbench's own samplers are judged "
                               "(pip install \"genbench[peers]\" adds BlackJAX's MALA and SGLD).")
    rows = []
    for v in data.verdicts:
        rep = v.report
        rows.append([v.library, v.name, v.version, v.kind, ", ".join(v.targets), v.tests, v.rejected, v.smallest_p,
                     rep.alpha, rep.power, v.seconds, rep.timing.get("kit_chains_per_second"),
                     "pass" if v.passed else "REJECTED"])
        s["checks"].append(check(
            f"conformance: {v.library} {v.name} ({v.kind})", v.passed, p_value=v.smallest_p, alpha=rep.alpha,
            null_hypothesis=f"the sampler's output follows the {'exact ULA law' if v.kind == 'ula' else 'target'} "
                            f"on every target ({len(v.targets)} targets, {v.tests} tests)",
            detail=f"{v.rejected} of {v.tests} tests rejected after {rep.correction}; adapter {v.adapter}"))
    s["tables"].append(table(
        "samplers", "Conformance verdicts",
        ["library", "sampler", "version", "kind", "targets", "tests", "rejected", "smallest p", "family α", "power",
         "seconds", "kit chains/s", "verdict"], rows,
        note="smallest p: the smallest p-value of the battery (before the correction); family α: the probability "
             "that a correct sampler fails its battery; kit chains/s: the chains per second the kit's own tests "
             "add beside the sampler's time."))
    for v in data.verdicts:
        rep = v.report
        s["tables"].append(table(
            f"samplers-{v.library}-{v.name.split()[0].lower()}", f"{v.library} {v.name}: every test",
            ["target", "check", "test", "step size", "steps", "start", "H0", "statistic", "p-value", "α (Holm)", "n",
             "detectable effect", "unit", "verdict"],
            [[r.target, r.check, r.test, r.step_size, r.steps, r.start, r.null_hypothesis, r.statistic, r.p_value,
              r.alpha, r.n, r.detectable_effect, r.effect_unit, "pass" if r.passed else "REJECT"] for r in rep.rows],
            note="; ".join(rep.notes), folded=True))
    s["details"]["samplers"] = [{"library": v.library, "name": v.name, "kind": v.kind, "passed": v.passed,
                                 "tests": v.tests, "rejected": v.rejected, "seconds": v.seconds}
                                for v in data.verdicts]
    return SectionResult(s)


def stage(config: Any, work: Path) -> SectionResult:
    """Run and render (the report's build calls this)."""
    return render(run(config, get_profile(config.profile), work))
