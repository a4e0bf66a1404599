"""The report page rendered in a real browser (headless Chromium over the DevTools protocol).

Install Chromium for these tests with:  apt-get install -y chromium
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import report_synthetic as syn

from genbench.report.browser import check_page, find_chromium
from genbench.report.build import ReportConfig, Stage, build_report

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(find_chromium() is None,
                       reason="Chromium not installed (apt-get install -y chromium, or set GENBENCH_CHROMIUM)"),
]


def test_report_renders_with_every_image_and_no_console_error(tmp_path: Path) -> None:
    cal = tmp_path / "calibration.json"
    import json

    cal.write_text(json.dumps(syn.study()), encoding="utf-8")
    config = ReportConfig(out=os.fspath(tmp_path / "reports"), tests_junit=os.fspath(syn.junit_xml(tmp_path / "j.xml")),
                          bench_json=os.fspath(syn.bench_json(tmp_path / "b.json")),
                          bench_gates=os.fspath(syn.gates_toml(tmp_path / "g.toml")), calibration_json=os.fspath(cal))
    run_dir, report = build_report(config, stages=syn.synthetic_stages(), stream=io.StringIO())
    seen = check_page(run_dir / "index.html")
    n_figs = sum(len(s["figures"]) for s in report["sections"])
    assert len(seen.images) == n_figs >= 6
    assert seen.broken_images == []
    assert all(i["scheme"] == "data" for i in seen.images)
    assert seen.errors == []
    assert seen.title.startswith("genbench report")
    assert seen.screenshot is not None and seen.screenshot.startswith(b"\x89PNG")
    (tmp_path / "screenshot.png").write_bytes(seen.screenshot)


def test_browser_check_catches_a_broken_image_and_a_console_error(tmp_path: Path) -> None:
    """The harness itself must fail a bad page (else a green browser test would mean nothing)."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><title>bad</title><link rel="icon" href="data:,"></head><body>'
                    '<img id="broken" src="data:image/png;base64,AAAA">'
                    f'<img id="good" src="data:image/png;base64,{__import__("base64").b64encode(syn.tiny_png()).decode()}">'
                    "<script>console.error('deliberate error');</script></body></html>", encoding="utf-8")
    seen = check_page(page, screenshot=False)
    assert [i["id"] for i in seen.broken_images] == ["broken"]
    assert any("deliberate error" in e for e in seen.errors)


def test_index_page_renders(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    build_report(ReportConfig(out=os.fspath(out)), stages=[Stage("tiny", "Tiny", syn.tiny_stage)], stream=io.StringIO())
    seen = check_page(out / "index.html", screenshot=False)
    assert seen.errors == [] and seen.title == "genbench reports"
