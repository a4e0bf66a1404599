"""Small synthetic inputs for the report tests: fast stages, a JUnit file, a benchmark JSON, a study.

Nothing here runs an experiment; the numbers are made up but shaped like the real results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from genbench.report import figures as F
from genbench.report.build import ReportConfig, Stage
from genbench.report.model import SectionResult, check, figure, section, table

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def junit_xml(path: Path, *, hostile: bool = True) -> Path:
    """A pytest-shaped JUnit file: 2 passes (one with recorded checks), 1 failure, 1 skip."""
    msg = HOSTILE if hostile else "assert 1 == 2"
    esc = msg.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1" '
        'skipped="1" tests="4" time="3.5"><properties><property name="genbench.statistical_assertions" value="2"/>'
        '<property name="genbench.total_alpha" value="0.02"/></properties>'
        '<testcase classname="tests.test_a" name="test_ok" file="tests/test_a.py" time="1.25"><properties>'
        '<property name="check.hotelling_mean.statistic" value="1.75"/>'
        '<property name="check.hotelling_mean.p_value" value="0.42"/>'
        '<property name="check.hotelling_mean.alpha" value="0.01"/>'
        '<property name="check.hotelling_mean.n" value="4000"/>'
        '<property name="check.hotelling_mean.passed" value="True"/>'
        '</properties></testcase>'
        '<testcase classname="tests.test_a" name="test_rejects_broken[sqrt_mu]" file="tests/test_a.py" time="0.5">'
        '<properties><property name="check.box_m_cov.statistic" value="812.5"/>'
        '<property name="check.box_m_cov.p_value" value="1e-12"/>'
        '<property name="check.box_m_cov.alpha" value="0.01"/>'
        '<property name="check.box_m_cov.passed" value="False"/></properties></testcase>'
        f'<testcase classname="tests.test_b.TestX" name="test_fail" file="tests/test_b.py" time="0.25">'
        f'<failure message="{esc}">{esc}\ntraceback line</failure></testcase>'
        '<testcase classname="tests.test_b" name="test_cuda" file="tests/test_b.py" time="0">'
        '<skipped message="needs a CUDA device"/></testcase>'
        "</testsuite></testsuites>",
        encoding="utf-8",
    )
    return path


def bench_json(path: Path, *, slow_factor: float = 1.0) -> Path:
    """A pytest-benchmark JSON with the reference loop, a batched ULA and a CUDA twin."""
    rng = np.random.default_rng(0)

    def bm(name: str, key: str, device: str, median: float, work: float, unit: str, baseline: str | None) -> dict:
        data = list(median * (1 + 0.02 * rng.standard_normal(9)))
        return {"name": name, "fullname": f"benchmarks/test_l.py::{name}", "group": None, "params": None,
                "stats": {"median": float(np.median(data)), "q1": float(np.quantile(data, 0.25)),
                          "q3": float(np.quantile(data, 0.75)), "rounds": len(data), "data": data},
                "extra_info": {"key": key, "device": device, "unit": unit, "work_per_call": work,
                               "baseline": baseline}}

    doc = {
        "machine_info": {"node": "synthetic", "machine": "x86_64", "system": "Linux", "python_version": "3.11"},
        "datetime": "2026-01-01T00:00:00",
        "benchmarks": [
            bm("test_reference[cpu]", "langevin.reference", "cpu", 0.2, 2000, "chain-steps/s", "langevin.reference"),
            bm("test_ula[cpu]", "langevin.ula[chains=1e5]", "cpu", 0.02 * slow_factor, 2_000_000, "chain-steps/s",
               "langevin.reference"),
            bm("test_ula[cuda]", "langevin.ula[chains=1e5]", "cuda", 0.0002, 2_000_000, "chain-steps/s",
               "langevin.reference"),
        ],
        "genbench": {"profile": "quick"},
    }
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def gates_toml(path: Path) -> Path:
    """One ratio gate: batched ULA >= 100x the reference loop."""
    path.write_text('version = 1\nconfidence = 0.95\nseed = 0\n[[ratio]]\nname = "ULA vs loop"\n'
                    'numerator = "langevin.ula[chains=1e5]@cpu"\ndenominator = "langevin.reference@cpu"\n'
                    'min = 100\nwhy = "synthetic"\n', encoding="utf-8")
    return path


def study() -> dict[str, Any]:
    """A calibration.json-shaped study with one check, one claimed and one unclaimed bug."""
    return {
        "profile": {"name": "quick"}, "alpha": 0.05, "seed": 0, "seed_rule": "trial k uses seed k", "retries": 0,
        "elapsed_s": 1.5, "trials": 30, "confidence": 0.95,
        "checks": [{
            "check": "hotelling_mean", "domain": "langevin", "function": "genbench.testing.assert_gaussian",
            "null_hypothesis": "mean equals m", "scenario": {},
            "false_alarm": {"n": 10, "alarms": 1, "rate": 0.1, "ci_low": 0.0025, "ci_high": 0.445,
                            "alpha": 0.05, "verdict": "consistent"},
            "detections": {
                "noise_sqrt_mu": {"n": 10, "alarms": 10, "rate": 1.0, "ci_low": 0.69, "ci_high": 1.0, "claim": 0.9,
                                  "verdict": "as claimed"},
                HOSTILE: {"n": 10, "alarms": 2, "rate": 0.2, "ci_low": 0.03, "ci_high": 0.56, "claim": None,
                          "verdict": "partial (no claim)"},
            },
        }],
        "coverage": {"noise_sqrt_mu": {"bug": "noise sqrt(mu)", "detected_by": ["hotelling_mean"],
                                       "best_check": "hotelling_mean", "best_rate": 1.0}},
    }


def figure_stage(config: ReportConfig, work: Path) -> SectionResult:
    """A section exercising every figure function and a hostile string in each kind of text."""
    s = section("synthetic", f"Synthetic {HOSTILE}")
    s["paragraphs"].append(f"paragraph {HOSTILE}")
    s["checks"].append(check(f"check {HOSTILE}", True, statistic=1.5, p_value=0.25, alpha=0.05,
                             null_hypothesis=f"H0 {HOSTILE}", detail=HOSTILE))
    s["checks"].append(check("a failing check", False, statistic=9.0, p_value=1e-6, ci=[0.6, 0.7], alpha=0.01))
    s["tables"].append(table("numbers", f"Numbers {HOSTILE}", ["name", "value", "flag", "missing", "big", "tiny"],
                             [[HOSTILE, 0.123456789, True, None, 123456789.0, 1.5e-7], ["int", 7, False, 2.5, 1e12, -0.5]],
                             note=HOSTILE))
    rng = np.random.default_rng(1)
    T, mus = [1000, 10000, 100000], [0.001, 0.01, 0.15]
    edges = np.linspace(-4, 6, 21)
    hists = rng.random((3, 3, 20, 20)) * 0.2
    figs = {
        "grid": F.langevin_grid_figure(T, mus, hists, edges, edges, rng.random((20, 20)) * 0.2, best=(100000, 0.01)),
        "conv": F.convergence_figure([{"mu": m, "T": T, "empirical": [1, 0.3, 0.1], "empirical_lo": [0.8, 0.2, 0.05],
                                       "empirical_hi": [1.2, 0.4, 0.15], "theory_T": T, "theory": [1, 0.3, 0.1],
                                       "theory_lo": [0.7, 0.2, 0.06], "theory_hi": [1.3, 0.4, 0.14]} for m in mus],
                                     metric="‖mean − m‖", unit="1"),
        "loss": F.loss_curves_figure({"step": list(range(1, 101)), "d_loss": list(rng.random(100)),
                                      "g_loss": list(rng.random(100) + 1), "d_real": list(rng.random(100)),
                                      "d_fake": list(rng.random(100)), "epoch_step": [50, 100],
                                      "epoch_d_loss": [0.5, 0.4]}),
        "classes": F.class_histogram_figure([10] * 10, [10] * 10),
    }
    for fid in figs:
        s["figures"].append(figure(fid, f"caption {HOSTILE}", after="numbers" if fid == "grid" else None))
    return SectionResult(s, figs)


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    """A valid RGB PNG of a grey rectangle, built without matplotlib (fast)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def tiny_stage(config: ReportConfig, work: Path) -> SectionResult:
    """One check, one table, one tiny figure: for tests of writing and indexing runs."""
    s = section("tiny", "Tiny")
    s["checks"].append(check("tiny check", False, statistic=2.0, p_value=0.001, alpha=0.05))
    s["tables"].append(table("tiny", "Tiny table", ["a"], [[1.5]]))
    s["figures"].append(figure("tiny", "a grey rectangle"))
    return SectionResult(s, {"tiny": tiny_png()})


def failing_stage(config: ReportConfig, work: Path) -> SectionResult:
    """A stage with a bug: must show as failed, not stop the report."""
    raise RuntimeError(f"boom {HOSTILE}")


def missing_stage(config: ReportConfig, work: Path) -> SectionResult:
    """A stage whose module is not installed."""
    import genbench.not_a_module  # type: ignore[import-not-found]  # noqa: F401

    raise AssertionError("unreachable")


def synthetic_stages() -> list[Stage]:
    """Stages that finish in well under a second each (plus the real tests/bench/calibration sections)."""
    from genbench.report.sections import bench, calibration, tests

    return [
        Stage("synthetic", "Synthetic", figure_stage),
        Stage("tests", "Test suite", tests.stage),
        Stage("bench", "Benchmarks", bench.stage),
        Stage("calibration", "Calibration", calibration.stage),
        Stage("broken", "Broken stage", failing_stage),
        Stage("missing", "Missing stage", missing_stage),
    ]
