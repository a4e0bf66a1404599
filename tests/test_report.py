"""Tests of `genbench report` built from small synthetic results (fast; no experiment runs here)."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
import report_synthetic as syn

from genbench.report import store
from genbench.report.build import ReportConfig, Stage, build_report
from genbench.report.junit import parse_junit
from genbench.report.model import fmt
from genbench.report.sections.tests import CHILD_ENV

ROOT = Path(__file__).resolve().parents[1]


class _Page(HTMLParser):
    """Collects tags/attributes, table cells (by data-table) and text of a report page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: dict[str, list[list[list[str]]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_thead = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._table = a.get("data-table") or "?"
            self.tables.setdefault(self._table, []).append([])
        elif tag == "thead":
            self._in_thead = True
        elif tag == "tr" and self._table and not self._in_thead:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._in_thead = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table][-1].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(html_text: str) -> _Page:
    p = _Page()
    p.feed(html_text)
    return p


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    """Synthetic JUnit (under a folder with a hostile name), benchmark JSON, gates and calibration files."""
    return _inputs(tmp_path)


def _inputs(tmp_path: Path) -> dict[str, Path]:
    hostile_dir = tmp_path / syn.HOSTILE.replace("/", "_")
    hostile_dir.mkdir()
    cal = tmp_path / "calibration.json"
    cal.write_text(json.dumps(syn.study()), encoding="utf-8")
    return {
        "junit": syn.junit_xml(hostile_dir / "junit.xml"),
        "bench": syn.bench_json(tmp_path / "bench.json"),
        "gates": syn.gates_toml(tmp_path / "gates.toml"),
        "calibration": cal,
    }


def _config(tmp_path: Path, inputs: dict[str, Path], **kw: object) -> ReportConfig:
    fields: dict[str, object] = dict(
        out=os.fspath(tmp_path / "reports"), tests_junit=os.fspath(inputs["junit"]),
        bench_json=os.fspath(inputs["bench"]), bench_gates=os.fspath(inputs["gates"]),
        calibration_json=os.fspath(inputs["calibration"]))
    fields.update(kw)
    return ReportConfig(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One synthetic report run with every stage kind (shared by the read-only tests)."""
    import io

    tmp = tmp_path_factory.mktemp("built")
    return build_report(_config(tmp, _inputs(tmp)), stages=syn.synthetic_stages(), stream=io.StringIO())


def test_hostile_strings_are_escaped(built: tuple[Path, dict]) -> None:
    run_dir, _ = built
    text = (run_dir / "index.html").read_text(encoding="utf-8")
    page = _parse(text)
    assert not any(tag == "script" for tag, _ in page.tags)
    assert "<script" not in text.lower()
    assert "onerror=" not in text.replace("onerror=alert(1)&gt;", "")  # only as escaped text
    assert "&lt;script&gt;" in text
    # The hostile string came in through a path, a failure message, a check name, a table cell and a
    # calibration mutant name: every kind of outside text.
    assert text.count("&lt;script&gt;") >= 8


def test_page_is_self_contained(built: tuple[Path, dict]) -> None:
    run_dir, report = built
    page = _parse((run_dir / "index.html").read_text(encoding="utf-8"))
    imgs = [a for tag, a in page.tags if tag == "img"]
    n_figs = sum(len(s["figures"]) for s in report["sections"])
    assert len(imgs) == n_figs >= 6
    for a in imgs:
        assert (a.get("src") or "").startswith("data:image/png;base64,")
    for tag, a in page.tags:
        assert tag not in ("script", "iframe", "object", "embed")
        assert not (tag == "link" and a.get("rel") == "stylesheet")
        for name in ("src", "href", "action", "srcset", "poster"):
            if name not in a:
                continue
            v = (a.get(name) or "").strip().lower()
            assert not v.startswith(("http:", "https:", "//", "ftp:")), (tag, name, v[:80])
            if name == "href":
                assert v.startswith(("#", "data:")), v
    # Figures are also written as files beside the page (for reuse), one per image.
    assert len(list((run_dir / "figures").glob("*.png"))) == n_figs


def test_report_json_numbers_equal_the_page(built: tuple[Path, dict]) -> None:
    run_dir, _ = built
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    page = _parse((run_dir / "index.html").read_text(encoding="utf-8"))
    for sec in report["sections"]:
        for t in sec["tables"]:
            shown = page.tables[t["id"]][0]
            assert [[c.strip() for c in r] for r in shown] == [[fmt(c) for c in r] for r in t["rows"]], t["id"]
    summary = [row for t in page.tables["summary-checks"] for row in t]
    checks = [c for s in report["sections"] for c in s["checks"]]
    assert len(summary) == len(checks)
    for row, c in zip(summary, checks):
        assert row[0] == c["name"]
        assert row[2:6] == [fmt(c["statistic"]), fmt(c["p_value"]), fmt(c["ci"]), fmt(c["alpha"])]
    env = dict(page.tables["environment"][0][i] for i in range(len(page.tables["environment"][0])))
    for k, v in report["environment"].items():
        assert env[k] == fmt(v)


def test_stage_errors_and_missing_modules_are_reported_not_raised(built: tuple[Path, dict]) -> None:
    _, report = built
    by = {s["id"]: s for s in report["sections"]}
    assert by["broken"]["status"] == "failed" and "RuntimeError: boom" in by["broken"]["reason"]
    assert "Traceback" in by["broken"]["log"]
    assert by["missing"]["status"] == "not run" and "genbench.not_a_module" in by["missing"]["reason"]
    assert by["synthetic"]["status"] == by["tests"]["status"] == by["bench"]["status"] == "ok"
    assert report["verdict"] == "FAIL"
    assert all(s["elapsed_s"] is not None for s in report["sections"])


def test_tests_section_from_junit(inputs: dict[str, Path]) -> None:
    from genbench.report.junit import TestCounts

    j = parse_junit(inputs["junit"])
    assert j.counts == TestCounts(total=4, passed=2, failed=1, errors=0, skipped=1)
    assert j.failures[0].test == "tests/test_b.py::TestX::test_fail"
    assert syn.HOSTILE in j.failures[0].message
    checks = {c.check: c for c in j.checks}
    assert checks["hotelling_mean"].statistic == 1.75 and checks["hotelling_mean"].passed is True
    assert checks["box_m_cov"].p_value == 1e-12 and checks["box_m_cov"].passed is False
    assert j.statistical_assertions == 2 and j.total_alpha == pytest.approx(0.02)


def test_recorded_check_verdict_is_the_test_outcome(built: tuple[Path, dict]) -> None:
    _, report = built
    tests = next(s for s in report["sections"] if s["id"] == "tests")
    by = {c["name"]: c for c in tests["checks"]}
    # A test asserting that a broken sampler is rejected passes; H0 rejected is what it expects.
    assert by["box_m_cov"]["passed"] is True and "H0 rejected" in by["box_m_cov"]["detail"]
    assert by["test suite: no failures or errors"]["passed"] is False


def test_bench_gate_and_speedups(tmp_path: Path, inputs: dict[str, Path]) -> None:
    import io

    stages = [s for s in syn.synthetic_stages() if s.id == "bench"]
    _, ok = build_report(_config(tmp_path, inputs), stages=stages, stream=io.StringIO())
    sec = ok["sections"][0]
    gate = sec["checks"][0]
    assert gate["passed"] is True and gate["statistic"] > 100 and gate["ci"][0] <= gate["statistic"] <= gate["ci"][1]
    rows = {(r[0], r[1]): r for r in sec["tables"][0]["rows"]}
    assert rows[("langevin.ula[chains=1e5]", "cuda")][8] == pytest.approx(100, rel=0.1)  # CUDA / CPU
    slow = syn.bench_json(tmp_path / "slow.json", slow_factor=1000.0)
    _, bad = build_report(_config(tmp_path, inputs, bench_json=os.fspath(slow)), stages=stages,
                          stream=io.StringIO())
    assert bad["sections"][0]["checks"][0]["passed"] is False and bad["verdict"] == "FAIL"


def test_calibration_section(built: tuple[Path, dict]) -> None:
    _, report = built
    sec = next(s for s in report["sections"] if s["id"] == "calibration")
    fa = next(c for c in sec["checks"] if c["name"].startswith("false-alarm"))
    assert fa["passed"] is True and fa["statistic"] == 0.1 and fa["ci"] == [0.0025, 0.445]
    assert "α = 0.05" in fa["null_hypothesis"]
    claims = next(c for c in sec["checks"] if c["name"] == "detection rates as claimed")
    assert claims["passed"] is True


def test_interrupted_build_leaves_earlier_reports_intact(tmp_path: Path, inputs: dict[str, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    first, _ = build_report(_config(tmp_path, inputs), stages=[Stage("tiny", "Tiny", syn.tiny_stage)], stream=io.StringIO())
    out = first.parent
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    latest = os.readlink(out / "latest")

    def boom(*a: object, **k: object) -> str:
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C while the page was being written

    monkeypatch.setattr(store, "render_html", boom)
    with pytest.raises(KeyboardInterrupt):
        build_report(_config(tmp_path, inputs), stages=[Stage("tiny", "Tiny", syn.tiny_stage)], stream=io.StringIO())
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing added (no partial folder), nothing changed (index, earlier run)
    assert os.readlink(out / "latest") == latest
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_index_lists_runs_newest_first(tmp_path: Path, inputs: dict[str, Path]) -> None:
    import io

    stages = [Stage("tiny", "Tiny", syn.tiny_stage)]
    a, _ = build_report(_config(tmp_path, inputs), stages=stages, stream=io.StringIO())
    b, _ = build_report(_config(tmp_path, inputs), stages=stages, stream=io.StringIO())
    out = a.parent
    assert a != b
    runs = json.loads((out / "index.json").read_text())["runs"]
    assert [r["run_id"] for r in runs] == [b.name, a.name]
    assert runs[0]["verdict"] == "FAIL" and runs[0]["checks_failed"] == 1
    assert os.readlink(out / "latest") == b.name and (out / "latest" / "index.html").is_file()
    page = _parse((out / "index.html").read_text(encoding="utf-8"))
    hrefs = [t[1].get("href") for t in page.tags if t[0] == "a"]
    assert f"{a.name}/index.html" in hrefs and f"{b.name}/index.html" in hrefs
    # A folder that is not a report run is ignored, not fatal.
    (out / "notes").mkdir()
    store.update_index(out)
    assert len(json.loads((out / "index.json").read_text())["runs"]) == 2


def test_nested_report_does_not_run_pytest_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from genbench.report.sections import tests

    monkeypatch.setenv(CHILD_ENV, "1")
    res = tests.stage(ReportConfig(out=os.fspath(tmp_path)), tmp_path)
    assert res.section["status"] == "not run" and "not recursing" in res.section["reason"]


class _Proc:
    def __init__(self, returncode: int, stderr: str) -> None:
        self.returncode, self.stderr = returncode, stderr


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run `genbench report ARGS` in this process (as the console script does); no pytest recursion."""
    from genbench.cli import main

    monkeypatch.setenv(CHILD_ENV, "1")

    def _run(*args: str, cwd: Path) -> _Proc:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            code = main(["report", *args])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        return _Proc(code, capsys.readouterr().err)

    return _run


def test_cli_reads_given_results(tmp_path: Path, inputs: dict[str, Path], cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "r"
    proc = cli("--only", "tests,bench,calibration", "--tests-junit", os.fspath(inputs["junit"]),
                "--bench-json", os.fspath(inputs["bench"]), "--calibration-json", os.fspath(inputs["calibration"]),
                "--out", os.fspath(out), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # the JUnit file holds a failing test
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("[")]
    assert len(lines) == 6 and all(ln.rstrip().endswith(("s", ")")) for ln in lines)
    rep = json.loads((out / "latest" / "report.json").read_text())
    assert [s["status"] for s in rep["sections"]] == ["not run", "not run", "not run", "ok", "ok", "ok"]


@pytest.mark.parametrize("args, needle", [
    (["--profile", "huge"], "--profile"),
    (["--tests-junit", "/nonexistent/j.xml"], "--tests-junit"),
    (["--tests", "/nonexistent/tests"], "--tests"),
    (["--bench-json", "MALFORMED"], "--bench-json"),
    (["--calibration-json", "MALFORMED"], "--calibration-json"),
    (["--calibration-json", "WRONG_SHAPE"], "--calibration-json"),
    (["--device", "tpu"], "device"),
    (["--only", "langevin,nope"], "only"),
    (["--seed", "-1"], "seed"),
    pytest.param(["--device", "cuda"], "cuda", marks=pytest.mark.skipif(
        __import__("torch").cuda.is_available(), reason="CUDA is present: --device cuda is valid here")),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], needle: str, cli) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "MALFORMED").write_text('{"benchmarks": [', encoding="utf-8")
    (tmp_path / "WRONG_SHAPE").write_text("[1, 2]", encoding="utf-8")
    proc = cli(*args, "--out", os.fspath(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and needle in proc.stderr
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_output_folder_that_is_a_file(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "file"
    f.write_text("x")
    proc = cli("--only", "tests", "--no-tests", "--out", os.fspath(f), cwd=tmp_path)
    assert proc.returncode == 2 and "--out '" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _section_html(res) -> str:  # type: ignore[no-untyped-def]
    from genbench.report.html import render_html

    return render_html({"run_id": "t", "environment": {}, "sections": [res.section]}, res.figures)


def test_langevin_section_from_a_small_real_run() -> None:
    """The adapter reads the real GridResult / run_convergence shapes (small sizes: fast)."""
    from genbench.langevin.experiments import run_convergence, run_grid
    from genbench.report.sections import langevin

    grid = run_grid(steps=(100, 1000, 3000), bins=10, target_draws=500, seed=3)
    conv = run_convergence(checkpoints=(10, 100), chains=20, band_draws=50, seed=3, include_mala=True)
    res = langevin.render(langevin.LangevinData(grid, langevin.Convergence.from_result(conv)))
    sec = res.section
    assert set(res.figures) == {"langevin-grid", "langevin-conv-mean", "langevin-conv-cov"}
    assert all(png.startswith(b"\x89PNG") for png in res.figures.values())
    names = [c["name"] for c in sec["checks"]]
    assert "Langevin grid: best cell agrees with the assignment" in names
    why = next(t for t in sec["tables"] if t["id"] == "langevin-why")
    assert len(why["rows"]) == 9 and sorted(r[2] for r in why["rows"]) == list(range(1, 10))
    conv_rows = next(t for t in sec["tables"] if t["id"] == "langevin-conv")["rows"]
    assert len(conv_rows) == 3 * 2
    assert grid.explanation in sec["paragraphs"]
    assert "langevin-mala" in [t["id"] for t in sec["tables"]]
    page = _parse(_section_html(res))
    assert len([a for tag, a in page.tags if tag == "img"]) == 3


def test_gan_section_from_a_tiny_real_training(tmp_path: Path) -> None:
    from genbench.gan.train import TrainConfig, train_gan
    import torch

    from genbench.report.sections import gan

    from genbench.gan.data import MnistData

    pixels = torch.randint(0, 256, (128, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    digits = MnistData(images=(pixels.float() / 127.5 - 1).unsqueeze(1), labels=torch.arange(128) % 10,
                       source="random pixels (test)", split="train", pixels=pixels)
    r = train_gan(TrainConfig(epochs=2, seed=1), tmp_path / "g", quiet=True, data=digits)
    res = gan.render(gan.GanData(r.history, r.figure.read_bytes(), r.grid.read_bytes(), None))
    sec = res.section
    assert set(res.figures) == {"gan-samples", "gan-grid", "gan-losses"}
    epochs = next(t for t in sec["tables"] if t["id"] == "gan-epochs")["rows"]
    assert [row[0] for row in epochs] == [1, 2]
    assert epochs[0][2] == pytest.approx(r.history["epochs"][0]["d_loss"])
    assert sec["details"]["data_source"] == "random pixels (test)"


def test_gan_quality_section_from_a_real_quality_report() -> None:
    """The adapter reads a real QualityReport (tiny sizes, an untrained classifier: shape, not quality)."""
    from types import SimpleNamespace

    import torch

    from genbench.gan.classifier import ClassifierConfig, ReferenceClassifier, TrainedClassifier
    from genbench.gan.quality import evaluate_generator
    from genbench.report.sections import gan

    g = torch.Generator().manual_seed(0)

    def digits(n: int) -> SimpleNamespace:
        return SimpleNamespace(images=torch.rand(n, 1, 28, 28, generator=g) * 2 - 1,
                               labels=torch.arange(n) % 10, source=f"random {syn.HOSTILE}")

    clf = TrainedClassifier(model=ReferenceClassifier(), config=ClassifierConfig(), key="untrained", n_train=0,
                            train_seconds=0.0, from_cache=False, cache_path=None)
    fake = torch.rand(40, 1, 28, 28, generator=g) * 2 - 1
    q = evaluate_generator(fake, digits(200), digits(100), n=40, kid_subsets=2, c2st_epochs=1, epsilon=0.3,
                           classifier=clf)
    history = {"per_step": {"d_loss": [0.7, 0.6], "g_loss": [0.7, 0.8], "d_real": [0.5, 0.6], "d_fake": [0.5, 0.4]},
               "epochs": [{"epoch": 1, "steps": 2, "d_loss": 0.65}], "steps_per_epoch": 2, "data_source": "x"}
    res = gan.render(gan.GanData(history, syn.tiny_png(), None, q))
    sec = res.section
    assert set(res.figures) == {"gan-samples", "gan-losses", "gan-classes"}
    by = {c["name"]: c for c in sec["checks"]}
    c2 = by["GAN C2ST"]
    assert c2["passed"] is None and c2["label"] in ("H0 rejected", "H0 not rejected")
    assert c2["statistic"] == q.c2st.accuracy and c2["ci"] == [q.c2st.ci_low, q.c2st.ci_high]
    assert by["reference classifier accuracy ≥ 0.96"]["passed"] is False  # untrained: must not pass
    rows = {r[0]: r for r in next(t for t in sec["tables"] if t["id"] == "gan-quality")["rows"]}
    assert rows["Fréchet distance (classifier features)"][1] == pytest.approx(q.frechet.fd)
    assert rows["KID"][4] == pytest.approx(q.kid.floor)
    assert rows["KID"][2] == pytest.approx([q.kid.ci_low, q.kid.ci_high])  # the Student-t interval of the result
    assert syn.HOSTILE in " ".join(sec["paragraphs"])  # outside text kept verbatim here, escaped in HTML
    assert "<script" not in _section_html(res).lower()


def test_calibration_reuses_a_stored_study_only_when_same_code_profile_and_seed(tmp_path: Path, monkeypatch) -> None:
    import io

    from genbench.calibration import study as study_mod
    from genbench.calibration.registry import checks, get_profile
    from genbench.calibration.results import CalibrationStudy
    from genbench.report.sections import calibration

    calls = []

    def fake_study(profile, *, seed, **kw):  # the real quick study takes ~20 s; its own tests run it
        calls.append((profile, seed))
        return CalibrationStudy.from_dict(syn.study())

    monkeypatch.setattr(study_mod, "run_study", fake_study)
    out = tmp_path / "reports"
    only_cal = [Stage("calibration", "Calibration", calibration.stage)]

    def first_paragraph() -> str:
        _, rep = build_report(ReportConfig(out=os.fspath(out)), stages=only_cal, stream=io.StringIO())
        assert rep["sections"][0]["status"] == "ok"
        return rep["sections"][0]["paragraphs"][0]

    text = first_paragraph()
    assert calls == [("quick", 42)]
    assert text.startswith("Ran the study now (no ") and "genbench calibrate --profile quick --seed 42" in text
    stored = out / "calibration" / "calibration.json"
    stored.parent.mkdir()
    current = {"genbench_version": "x", "code_version": study_mod.code_version(), "profile": "quick", "seed": 42,
               "seeds": None, "checks": [c.name for c in checks() if c.name not in get_profile("quick").skip],
               "family_level": 0.01, "data": "none"}
    for change, why in [({}, None), ({"seed": 0}, "seed 0, not 42"), ({"code_version": "sha256:0"}, "made by other code"),
                        ({"profile": "full"}, "profile full, not quick"), ({"checks": ["ula_law"]}, "1 of the"),
                        (None, "records no provenance")]:
        doc = dict(syn.study(), provenance=None if change is None else dict(current, **change))
        stored.write_text(json.dumps(doc), encoding="utf-8")
        calls.clear()
        text = first_paragraph()
        if why is None:
            assert calls == [] and text.startswith("Reused ") and "seed 42" in text
        else:
            assert calls == [("quick", 42)] and "was not reused" in text and why in text, text
    assert len(json.loads((out / "index.json").read_text())["runs"]) == 7  # the calibration folder is no run


def test_given_calibration_json_is_read_and_a_difference_is_said(tmp_path: Path, inputs: dict[str, Path]) -> None:
    from genbench.report.profiles import get_profile
    from genbench.report.sections import calibration

    data = calibration.run(_config(tmp_path, inputs), get_profile("quick"), tmp_path)
    assert data.how.startswith("Read from the given ") and "records no provenance" in data.how


def test_tests_and_benchmarks_are_found_in_the_current_folder_or_given(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed as a wheel, genbench has no tests/ beside its source: the project's folder (cwd) or --tests."""
    from genbench.report.profiles import get_profile
    from genbench.report.sections import bench, tests

    monkeypatch.delenv(CHILD_ENV, raising=False)
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    monkeypatch.chdir(empty)
    cfg = ReportConfig(out=os.fspath(tmp_path / "r"))
    res = tests.stage(cfg, tmp_path)
    assert res.section["status"] == "not run" and "no tests/ folder in the current folder" in res.section["reason"]
    assert "--tests DIR" in res.section["reason"]
    res = bench.stage(cfg, tmp_path)
    assert res.section["status"] == "not run" and "no benchmarks/ folder" in res.section["reason"]
    project = tmp_path / "project"
    (project / "checks").mkdir(parents=True)
    (project / "checks" / "test_one.py").write_text("def test_ok():\n    assert True\n", encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    data = tests.run(ReportConfig(out=os.fspath(tmp_path / "r"), tests_dir=os.fspath(project / "checks")),
                     get_profile("full"), work)
    assert isinstance(data, tests.TestsData), getattr(data, "section", None)
    assert data.junit.counts.passed == 1 and data.junit.counts.total == 1
    assert f"in {project.resolve()}" in data.how


def test_samplers_section_reads_the_conformance_rows() -> None:
    """The section shows each sampler's typed verdict and every row of its battery (genbench's ULA, 1-D: fast)."""
    from genbench.conformance.samplers import known_samplers, sampler_verdicts
    from genbench.report.sections import samplers

    verdicts = sampler_verdicts(known_samplers(peers=False)[:1], targets=["gauss1d"], seed=0)
    res = samplers.render(samplers.SamplersData(verdicts, ("gauss1d",), peers_installed=False))
    sec = res.section
    v = verdicts[0]
    summary = next(t for t in sec["tables"] if t["id"] == "samplers")
    assert summary["rows"] == [[v.library, v.name, v.version, v.kind, "gauss1d", v.tests, v.rejected,
                                pytest.approx(v.smallest_p), v.report.alpha, v.report.power, pytest.approx(v.seconds),
                                pytest.approx(v.report.timing["kit_chains_per_second"]),
                                "pass" if v.passed else "REJECTED"]]
    rows = next(t for t in sec["tables"] if t["id"] == "samplers-genbench-ula")["rows"]
    assert len(rows) == v.tests == len(v.report.rows)
    assert [r[8] for r in rows] == pytest.approx([r.p_value for r in v.report.rows])
    assert sec["checks"][0]["passed"] is v.passed and sec["checks"][0]["alpha"] == v.report.alpha
    assert any("BlackJAX is not installed" in p for p in sec["paragraphs"])
    assert "<script" not in _section_html(res).lower()


def test_text_the_report_shows_names_no_internal_issue_numbers() -> None:
    """Product text speaks to users: the injected bugs' descriptions and the gate notes cite no issue numbers."""
    import re

    from genbench.bench.gate import load_gates
    from genbench.testing.mutants import IMAGE_MUTANTS, KERNEL_MUTANTS
    from genbench.report.profiles import PROFILES

    internal = re.compile(r"\bissues?\s*#?\d", re.IGNORECASE)
    texts = [m.bug for m in (*KERNEL_MUTANTS, *IMAGE_MUTANTS)]
    gates = ROOT / "benchmarks" / "gates.toml"
    if gates.is_file():
        texts += [g.why for g in load_gates(gates).gates]
    texts += [p.description for p in PROFILES.values()]
    assert texts and not [t for t in texts if internal.search(t)]
