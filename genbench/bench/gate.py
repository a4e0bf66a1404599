"""The performance-regression gate: same-run ratio gates and a spread-aware baseline comparison.

Two decisions, both with three outcomes (pass / fail / inconclusive):

* **Ratio gates** (declared in a versioned TOML file, ``genbench/bench/gates.toml``) compare two
  workloads measured in the *same* run, so the machine's speed cancels. The ratio of median
  throughputs gets an interval: a seeded percentile bootstrap of the ratio of medians on the raw
  per-round samples (``confidence`` two-sided), or, when the JSON has no raw samples, the
  interquartile interval ``[q1_num/q3_den, q3_num/q1_den]``. Pass when the whole interval is at or
  above the declared minimum, fail when it is wholly below, inconclusive otherwise.

* **Baseline comparison** pairs benchmarks of two runs by pytest node id, only when the stable
  machine facts match (cpu brand and core count, architecture, OS, Python, torch and its thread count, CUDA devices —
  never ``hz_actual``, which changes between runs on the same machine: pytest-benchmark #255).
  A benchmark is a regression (fail) only when all three hold: the slowdown of medians exceeds
  ``max_slowdown``; it exceeds the measured run-to-run spread (the larger relative IQR of the two
  runs); and a one-sided Mann-Whitney U test on the raw per-round times rejects
  H0 "current times are not stochastically larger than baseline times" at ``alpha``. It passes
  when the upper end of the slowdown's interval is within ``max_slowdown``. Anything else is
  inconclusive — in particular fewer than ``min_rounds`` (7, as asv) rounds on either side.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from genbench._validate import positive_int, probability
from genbench.bench.results import BenchRecord, BenchRun, load_run
from genbench.errors import DataError, ParameterError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: tomli, a dependency of genbench there
    try:
        import tomli as tomllib
    except ImportError:  # pragma: no cover
        tomllib = None  # type: ignore[assignment]

PASS, FAIL, INCONCLUSIVE, SKIPPED = "pass", "FAIL", "inconclusive", "skipped"

#: Rounds a side below which the rank test cannot reach small p-values (asv uses the same floor).
MIN_ROUNDS_BASELINE = 7
#: Rounds a side below which a ratio has no measured spread to speak of.
MIN_ROUNDS_RATIO = 3

#: The gates of genbench's own benchmark suite, shipped inside the package.
DEFAULT_GATES = Path(__file__).resolve().parent / "gates.toml"


# --------------------------------------------------------------------------------------------
# Machine identity
# --------------------------------------------------------------------------------------------
def stable_machine_facts(machine_info: dict[str, Any]) -> dict[str, Any]:
    """The machine_info fields that identify a machine across runs (no clock speeds, no host name)."""
    cpu = machine_info.get("cpu") or {}
    gb = machine_info.get("genbench") or {}
    return {
        "cpu brand": cpu.get("brand_raw"),
        "cpu count": gb.get("cpu_count", cpu.get("count")),
        "architecture": machine_info.get("machine"),
        "system": machine_info.get("system"),
        "python": machine_info.get("python_version"),
        "python implementation": machine_info.get("python_implementation"),
        "torch": gb.get("torch"),
        "torch threads": gb.get("torch_threads"),
        "cuda devices": tuple(gb.get("cuda_devices") or ()),
    }


def machine_differences(baseline: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable list of stable machine facts that differ between two runs (empty if same)."""
    a, b = stable_machine_facts(baseline), stable_machine_facts(current)
    return [f"{k}: {a[k]!r} (baseline) vs {b[k]!r} (current)" for k in a if a[k] != b[k]]


# --------------------------------------------------------------------------------------------
# Interval of a ratio of medians
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RatioEstimate:
    """Ratio of median throughputs ``num/den`` with an interval and how the interval was made."""

    ratio: float
    low: float
    high: float
    method: str  # "bootstrap 95%" or "IQR"


def _median_interval(x: np.ndarray, level: float) -> tuple[float, float]:
    """Distribution-free interval for a median from order statistics (binomial(n, 1/2) ranks)."""
    xs = np.sort(x)
    k = int(sps.binom.ppf((1.0 - level) / 2.0, xs.size, 0.5))  # P(Bin <= k-1) <= (1 - level)/2
    k = max(k - 1, 0)
    return float(xs[k]), float(xs[xs.size - 1 - k])


#: Above this many rounds a side the ratio's interval comes from order statistics, not the bootstrap.
MAX_BOOTSTRAP_ROUNDS = 500


def ratio_of_medians(
    num: BenchRecord, den: BenchRecord, *, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> RatioEstimate:
    """Median throughput of ``num`` over that of ``den``, with an interval at ``confidence``.

    Raw samples, up to 500 rounds a side: seeded percentile bootstrap of the ratio of medians.
    More rounds (auto-calibrated micro-benchmarks): each median's distribution-free order-statistic
    interval at level 1 - (1 - confidence)/2, divided crosswise (joint coverage >= confidence).
    No raw samples: the interquartile interval [q1_num/q3_den, q3_num/q1_den]. One record timed as
    the other's companion (round i of each back to back, timing.measure): the median of the
    per-round ratios, in which drift the two rounds of a pair share cancels, with its
    distribution-free order-statistic interval (the sign test's: at 7 rounds [min, max], 98.4%).
    """
    ratio = num.throughput / den.throughput
    xs, ys = num.throughput_samples(), den.throughput_samples()
    if xs is None or ys is None:
        return RatioEstimate(ratio, num.throughput_q1 / den.throughput_q3, num.throughput_q3 / den.throughput_q1, "IQR")
    if max(xs.size, ys.size) > MAX_BOOTSTRAP_ROUNDS:
        level = 1.0 - (1.0 - confidence) / 2.0
        (xlo, xhi), (ylo, yhi) = _median_interval(xs, level), _median_interval(ys, level)
        return RatioEstimate(ratio, min(xlo / yhi, ratio), max(xhi / ylo, ratio), f"order statistics {confidence:.0%}")
    if _paired(num, den) and xs.size == ys.size:
        per_round = xs / ys  # exact under H0 "median per-round ratio = r" for rounds independent in pairs
        ratio = float(np.median(per_round))
        lo, hi = _median_interval(per_round, confidence)
        return RatioEstimate(ratio, min(lo, ratio), max(hi, ratio), f"paired, order statistics {confidence:.0%}")
    # Percentile bootstrap of a ratio of medians: no library offers it for two independent
    # samples with a statistic of both (scipy.stats.bootstrap would need paired/equal n).
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2.0
    mx = np.median(rng.choice(xs, size=(n_boot, xs.size), replace=True), axis=1)
    my = np.median(rng.choice(ys, size=(n_boot, ys.size), replace=True), axis=1)
    lo, hi = np.quantile(mx / my, [tail, 1.0 - tail])
    return RatioEstimate(ratio, float(min(lo, ratio)), float(max(hi, ratio)), f"bootstrap {confidence:.0%}")


def _paired(a: BenchRecord, b: BenchRecord) -> bool:
    """Whether one record was timed round by round beside the other (its companion, in the same benchmark)."""
    return ((a.extra.get("companion_of") == b.key and a.fullname == f"{b.fullname}::companion")
            or (b.extra.get("companion_of") == a.key and b.fullname == f"{a.fullname}::companion"))


# --------------------------------------------------------------------------------------------
# Ratio gates
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RatioGate:
    """A declared same-run requirement: throughput(numerator) / throughput(denominator) >= minimum."""

    name: str
    numerator: str  # "workload[variant]@device"
    denominator: str
    minimum: float
    why: str = ""


@dataclass(frozen=True)
class GateFile:
    """The parsed gates file: its schema version, settings and gates."""

    path: str
    version: int
    confidence: float
    seed: int
    gates: tuple[RatioGate, ...]


_GATE_KEYS = {"name", "numerator", "denominator", "min", "why"}


def _selector(value: Any, where: str) -> str:
    if not isinstance(value, str) or "@" not in value or value.startswith("@") or value.endswith("@"):
        raise DataError(f"{where} must be a string 'workload[variant]@device', got {value!r}")
    return value


def load_gates(path: str | os.PathLike[str] = DEFAULT_GATES) -> GateFile:
    """Parse a gates TOML file; DataError naming the bad entry if it is missing or malformed."""
    p = Path(path)
    shown = os.fspath(p)
    if tomllib is None:  # pragma: no cover
        raise DataError("reading the gates file needs tomllib (Python >= 3.11) or the tomli package")
    if not p.is_file():
        raise DataError(f"gates file {shown!r} does not exist or is not a file")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"gates file {shown!r} is malformed: {exc}") from exc
    version = doc.get("version")
    if version != 1:
        raise DataError(f"gates file {shown!r}: 'version' must be 1, got {version!r}")
    confidence = doc.get("confidence", 0.95)
    seed = doc.get("seed", 0)
    try:
        confidence = probability("confidence", confidence)
        seed = positive_int("seed", seed, minimum=0)
    except ParameterError as exc:
        raise DataError(f"gates file {shown!r}: {exc}") from exc
    gates = []
    raw_gates = doc.get("ratio", [])
    if not isinstance(raw_gates, list):
        raise DataError(f"gates file {shown!r}: 'ratio' must be an array of tables ([[ratio]])")
    for i, raw in enumerate(raw_gates):
        where = f"gates file {shown!r}: ratio #{i + 1}"
        if not isinstance(raw, dict):
            raise DataError(f"{where} must be a table")
        unknown = set(raw) - _GATE_KEYS
        if unknown:
            raise DataError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_GATE_KEYS)}")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise DataError(f"{where}: 'name' must be a non-empty string")
        minimum = raw.get("min")
        if isinstance(minimum, bool) or not isinstance(minimum, (int, float)) or not minimum > 0:
            raise DataError(f"{where} ({name}): 'min' must be a number > 0, got {minimum!r}")
        gates.append(
            RatioGate(
                name=name,
                numerator=_selector(raw.get("numerator"), f"{where} ({name}): 'numerator'"),
                denominator=_selector(raw.get("denominator"), f"{where} ({name}): 'denominator'"),
                minimum=float(minimum),
                why=str(raw.get("why", "")),
            )
        )
    names = [g.name for g in gates]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f"gates file {shown!r}: duplicate gate name(s) {dupes}")
    return GateFile(path=shown, version=1, confidence=confidence, seed=seed, gates=tuple(gates))


@dataclass(frozen=True)
class RatioVerdict:
    """The outcome of one ratio gate on one run."""

    gate: RatioGate
    verdict: str
    estimate: RatioEstimate | None
    note: str = ""


def _split(selector: str) -> tuple[str, str]:
    key, _, device = selector.rpartition("@")
    return key, device


def evaluate_ratio_gates(
    run: BenchRun, gates: GateFile, *, min_rounds: int = MIN_ROUNDS_RATIO
) -> list[RatioVerdict]:
    """Judge each declared ratio gate on one run (missing workloads are skipped, never passed)."""
    out = []
    for gate in gates.gates:
        num, den = run.find(*_split(gate.numerator)), run.find(*_split(gate.denominator))
        missing = [sel for sel, rec in ((gate.numerator, num), (gate.denominator, den)) if rec is None]
        if missing:
            keys = {rec.key for rec in run.records}
            unknown = [sel for sel in missing if _split(sel)[0] not in keys]
            note = "not measured: " + ", ".join(missing)
            if unknown:  # measured on no device at all: deselected, or a misspelt selector
                note += f" (no benchmark with key {', '.join(_split(sel)[0] for sel in unknown)} in this run)"
            out.append(RatioVerdict(gate, SKIPPED, None, note))
            continue
        assert num is not None and den is not None
        if num.unit != den.unit:
            raise DataError(
                f"gate {gate.name!r} divides {num.unit} ({gate.numerator}) by {den.unit} ({gate.denominator})"
            )
        est = ratio_of_medians(num, den, confidence=gates.confidence, seed=gates.seed)
        rounds = min(num.rounds, den.rounds)
        if rounds < min_rounds:
            out.append(RatioVerdict(gate, INCONCLUSIVE, est, f"only {rounds} round(s); need >= {min_rounds}"))
        elif est.low >= gate.minimum:
            out.append(RatioVerdict(gate, PASS, est))
        elif est.high < gate.minimum:
            out.append(RatioVerdict(gate, FAIL, est, f"below the required {gate.minimum:g}x"))
        else:
            out.append(RatioVerdict(gate, INCONCLUSIVE, est, f"interval straddles {gate.minimum:g}x"))
    return out


# --------------------------------------------------------------------------------------------
# Baseline comparison
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BaselineRow:
    """One benchmark compared against the baseline run."""

    fullname: str
    label: str
    verdict: str
    slowdown: float | None = None  # median time ratio current/baseline - 1 (positive = slower)
    slowdown_high: float | None = None  # upper end of the slowdown's interval
    spread: float | None = None  # larger relative IQR of the two runs
    p_value: float | None = None  # one-sided Mann-Whitney U, None when raw samples are missing
    note: str = ""


@dataclass(frozen=True)
class BaselineComparison:
    """All rows of a baseline comparison, or why it was skipped as a whole."""

    baseline_path: str
    max_slowdown: float
    alpha: float
    rows: tuple[BaselineRow, ...] = ()
    skipped_reason: str = ""


def compare_to_baseline(
    current: BenchRun,
    baseline: BenchRun,
    *,
    max_slowdown: float = 0.20,
    alpha: float = 0.01,
    min_rounds: int = MIN_ROUNDS_BASELINE,
    confidence: float = 0.95,
    seed: int = 0,
) -> BaselineComparison:
    """Compare each benchmark with the baseline's, spread-aware and with a rank test (see module doc)."""
    max_slowdown = float(max_slowdown)
    if not (math.isfinite(max_slowdown) and max_slowdown > 0):
        raise ParameterError(f"max_slowdown must be a fraction > 0 (e.g. 0.2 for 20%), got {max_slowdown!r}")
    alpha = probability("alpha", alpha)
    min_rounds = positive_int("min_rounds", min_rounds, minimum=2)
    diffs = machine_differences(baseline.machine_info, current.machine_info)
    if diffs:
        return BaselineComparison(
            baseline.path, max_slowdown, alpha, skipped_reason="machine differs — " + "; ".join(diffs)
        )
    rows = []
    base = baseline.by_fullname()
    for rec in current.records:
        old = base.get(rec.fullname)
        if old is None:
            rows.append(BaselineRow(rec.fullname, rec.label, SKIPPED, note="not in baseline"))
            continue
        if old.work_per_call != rec.work_per_call or old.unit != rec.unit:
            rows.append(BaselineRow(rec.fullname, rec.label, SKIPPED, note="problem size differs from baseline"))
            continue
        if old.timer != rec.timer:
            rows.append(BaselineRow(rec.fullname, rec.label, SKIPPED, note=f"timer differs: {old.timer} vs {rec.timer}"))
            continue
        rows.append(_compare_one(rec, old, max_slowdown, alpha, min_rounds, confidence, seed))
    for name, old in base.items():
        if name not in current.by_fullname():
            rows.append(BaselineRow(name, old.label, SKIPPED, note="in baseline, not measured now"))
    return BaselineComparison(baseline.path, max_slowdown, alpha, rows=tuple(rows))


def _compare_one(
    cur: BenchRecord, old: BenchRecord, thr: float, alpha: float, min_rounds: int, confidence: float, seed: int
) -> BaselineRow:
    est = ratio_of_medians(cur, old, confidence=confidence, seed=seed)  # throughput ratio, < 1 = slower
    slowdown = 1.0 / est.ratio - 1.0
    slowdown_high = 1.0 / est.low - 1.0
    spread = max(cur.relative_iqr, old.relative_iqr)
    p = None
    if cur.times is not None and old.times is not None:
        p = float(sps.mannwhitneyu(cur.times, old.times, alternative="greater", method="auto").pvalue)
    row = dict(fullname=cur.fullname, label=cur.label, slowdown=slowdown, slowdown_high=slowdown_high, spread=spread, p_value=p)
    rounds = min(cur.rounds, old.rounds)
    if rounds < min_rounds:
        return BaselineRow(**row, verdict=INCONCLUSIVE, note=f"{rounds} rounds; the rank test needs >= {min_rounds} a side")
    if slowdown > thr and slowdown > spread and p is not None and p < alpha:
        return BaselineRow(**row, verdict=FAIL, note=f"slower by more than {thr:.0%}, beyond spread, p < {alpha:g}")
    if slowdown_high <= thr:
        return BaselineRow(**row, verdict=PASS)
    if slowdown <= thr:
        note = f"interval reaches {slowdown_high:+.0%}, beyond the {thr:.0%} allowed"
    elif slowdown <= spread:
        note = "slowdown within the run-to-run spread"
    elif p is None:
        note = "no raw samples in the JSON for the rank test"
    else:
        note = f"rank test not significant (p >= {alpha:g})"
    return BaselineRow(**row, verdict=INCONCLUSIVE, note=note)


# --------------------------------------------------------------------------------------------
# Whole gate
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GateReport:
    """Everything the gate decided about one run."""

    current_path: str
    gates_path: str
    ratios: tuple[RatioVerdict, ...]
    baseline: BaselineComparison | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failures(self) -> int:
        """Number of failed ratio gates plus regressions against the baseline."""
        n = sum(v.verdict == FAIL for v in self.ratios)
        if self.baseline is not None:
            n += sum(r.verdict == FAIL for r in self.baseline.rows)
        return n

    @property
    def inconclusive(self) -> int:
        """Number of gates and comparisons whose samples could not decide."""
        n = sum(v.verdict == INCONCLUSIVE for v in self.ratios)
        if self.baseline is not None:
            n += sum(r.verdict == INCONCLUSIVE for r in self.baseline.rows)
        return n

    def exit_code(self, *, strict: bool = False) -> int:
        """1 on any failure (or, with ``strict``, any inconclusive verdict), else 0."""
        return int(self.failures > 0 or (strict and self.inconclusive > 0))


def run_gate(
    current: str | os.PathLike[str],
    *,
    baseline: str | os.PathLike[str] | None = None,
    gates: str | os.PathLike[str] = DEFAULT_GATES,
    max_slowdown: float = 0.20,
    alpha: float = 0.01,
    min_rounds: int = MIN_ROUNDS_BASELINE,
) -> GateReport:
    """Load the runs and the gates file, and judge ratio gates and (if given) the baseline comparison."""
    gate_file = load_gates(gates)
    cur = load_run(current)
    if not cur.records:
        raise DataError(f"benchmark JSON {cur.path!r} holds no benchmarks")
    ratios = tuple(evaluate_ratio_gates(cur, gate_file))
    comparison = None
    if baseline is not None:
        comparison = compare_to_baseline(
            cur,
            load_run(baseline),
            max_slowdown=max_slowdown,
            alpha=alpha,
            min_rounds=min_rounds,
            confidence=gate_file.confidence,
            seed=gate_file.seed,
        )
    return GateReport(current_path=cur.path, gates_path=gate_file.path, ratios=ratios, baseline=comparison)
