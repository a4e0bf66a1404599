"""Timing helpers (CUDA synchronisation order, work accounting), tables, and the suite runner."""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path
from typing import Any

import pytest
import torch

import bench_synthetic as syn
from genbench.bench import timing
from genbench.bench.gate import compare_to_baseline
from genbench.bench.profiles import PROFILES, get_profile
from genbench.bench.results import load_run
from genbench.bench.suite import pytest_command, run_suite
from genbench.bench.table import format_suite, si, suite_rows
from genbench.bench.timing import Workload, count_label, measure, synced, time_once
from genbench.cli import main
from genbench.errors import DataError, DeviceError, ParameterError

REPO_BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

ROOT = Path(__file__).resolve().parents[1]


class _Stats:
    def __init__(self, data: list[float]) -> None:
        q = statistics.quantiles(data, n=4) if len(data) > 1 else [data[0]] * 3
        self.q1, self.median, self.q3 = q[0], statistics.median(data), q[2]


class FakeBenchmark:
    """Just enough of pytest-benchmark's fixture: pedantic() runs the calls and keeps fake times."""

    def __init__(self) -> None:
        self.extra_info: dict[str, Any] = {}
        self.calls: list[str] = []
        self.kwargs: dict[str, Any] = {}

    def pedantic(self, target, setup=None, rounds=1, warmup_rounds=0, iterations=1):  # type: ignore[no-untyped-def]
        self.kwargs = dict(rounds=rounds, warmup_rounds=warmup_rounds, iterations=iterations)
        out = None
        for _ in range(warmup_rounds + rounds):
            if setup is not None:
                setup()
            for _ in range(iterations):
                out = target()
        self.stats = type("M", (), {"stats": _Stats([0.5, 0.5, 0.25, 1.0])})()
        return out


def test_count_label() -> None:
    assert [count_label(n) for n in (1_000, 100_000, 10_000_000, 2_500, 7)] == ["1e3", "1e5", "1e7", "2500", "7"]


def test_measure_records_identity_work_and_throughput() -> None:
    bench = FakeBenchmark()
    work = Workload("langevin.ula", "chain-steps/s", 2e6, variant="chains=1e5", size={"chains": 100_000}, baseline="langevin.reference")
    out = measure(bench, lambda: 7, work, device="cpu", rounds=5, warmup_rounds=2, iterations=3, profile="quick", extra={"note": 1})
    assert out == 7
    assert bench.kwargs == {"rounds": 5, "warmup_rounds": 2, "iterations": 3}
    info = bench.extra_info
    assert info["key"] == "langevin.ula[chains=1e5]" and info["device"] == "cpu" and info["unit"] == "chain-steps/s"
    assert info["work_per_call"] == 2e6 and info["baseline"] == "langevin.reference" and info["profile"] == "quick"
    assert info["torch_version"] == torch.__version__ and info["device_name"] and info["note"] == 1
    # median of the fake times is 0.5 s -> 4e6 chain-steps/s; quartiles invert into the throughput IQR.
    assert info["throughput"] == pytest.approx(4e6)
    assert info["throughput_q1"] <= info["throughput"] <= info["throughput_q3"]


@pytest.mark.parametrize("bad", [{"rounds": 0}, {"warmup_rounds": -1}, {"iterations": 0}])
def test_measure_rejects_bad_rounds(bad: dict[str, int]) -> None:
    kwargs = {"rounds": 3, "warmup_rounds": 1, "iterations": 1, **bad}
    with pytest.raises(ParameterError, match=next(iter(bad))):
        measure(FakeBenchmark(), lambda: None, Workload("w", "it/s", 1), device="cpu", **kwargs)


def test_cpu_calls_are_not_wrapped() -> None:
    fn = lambda: 1  # noqa: E731
    assert synced(fn, "cpu") is fn


def test_cuda_calls_synchronise_after_the_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Correct by construction: the timed callable returns only after the device is idle."""
    log: list[str] = []
    monkeypatch.setattr(timing, "synchronize", lambda dev: log.append(f"sync:{torch.device(dev).type}"))
    wrapped = synced(lambda: log.append("work") or 3, "cuda")
    assert wrapped() == 3 and log == ["work", "sync:cuda"]
    log.clear()
    time_once(lambda: log.append("work"), "cuda")
    assert log == ["sync:cuda", "work", "sync:cuda"]


def test_measure_on_cuda_synchronises_setup_and_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    monkeypatch.setattr(timing, "synchronize", lambda dev: log.append("sync"))
    monkeypatch.setattr(timing, "environment", lambda dev: {"device_name": "fake GPU"})
    bench = FakeBenchmark()
    measure(bench, lambda: log.append("call"), Workload("w", "it/s", 1), device="cuda", rounds=2, warmup_rounds=1,
            setup=lambda: log.append("setup"))
    assert log == ["setup", "sync", "call", "sync"] * 3
    assert bench.extra_info["device"] == "cuda" and bench.extra_info["device_name"] == "fake GPU"


def test_profiles() -> None:
    assert set(PROFILES) == {"quick", "full"}
    quick = get_profile("quick")
    assert quick.rounds >= 7  # the baseline rank test's floor
    assert get_profile("full").rounds >= quick.rounds
    with pytest.raises(ParameterError, match="profile must be one of quick, full"):
        get_profile("fast")


# ---------------------------------------------------------------- tables
def test_suite_table_shows_same_run_speedups_and_cuda_over_cpu(tmp_path: Path) -> None:
    benches = syn.suite(seed=1)
    gpu = syn.bench(
        "langevin.ula[chains=1e5]", "cuda", 2_000_000, syn.times(2e6 / 1e10, 7, sigma=0.02, seed=3), baseline="langevin.reference"
    )
    run = load_run(syn.write(tmp_path / "r.json", [*benches, gpu]))
    rows = {r.record.label: r for r in suite_rows(run)}
    assert rows["langevin.ula[chains=1e5]@cpu"].vs_assignment == pytest.approx(1e8 / 5e5, rel=0.1)
    assert rows["gan.step[preloaded]@cpu"].vs_assignment == pytest.approx(130 / 80, rel=0.1)
    assert rows["langevin.ula[chains=1e5]@cuda"].cuda_over_cpu == pytest.approx(100, rel=0.1)
    assert rows["langevin.ula[chains=1e5]@cuda"].assignment_device == "cpu"  # the loop is CPU-only
    text = format_suite(run)
    assert "(assignment)" in text and "(vs cpu)" in text and "chain-steps/s" in text and "it/s" in text


def test_suite_table_shows_the_ratio_to_a_peer_library_with_its_interval(tmp_path: Path) -> None:
    ours = syn.bench("peers.mala[float32,chains=1e3,genbench]", "cpu", 5e5, syn.times(5e5 / 3e7, 7, sigma=0.03, seed=1))
    theirs = syn.bench("peers.mala[float32,chains=1e3,blackjax]", "cpu", 5e5, syn.times(5e5 / 6e6, 7, sigma=0.03, seed=2))
    ours["extra_info"].update(impl="genbench", peer="peers.mala[float32,chains=1e3,blackjax]")
    theirs["extra_info"].update(impl="blackjax", compile_s=1.5)
    run = load_run(syn.write(tmp_path / "p.json", [ours, theirs]))
    rows = {r.record.label: r for r in suite_rows(run)}
    est = rows["peers.mala[float32,chains=1e3,genbench]@cpu"].vs_peer
    assert est.ratio == pytest.approx(5.0, rel=0.1) and est.low <= est.ratio <= est.high
    assert rows["peers.mala[float32,chains=1e3,blackjax]@cpu"].vs_peer is None
    text = format_suite(run)
    assert "vs peer (95% interval)" in text and "vs blackjax" in text and "(peer: blackjax)" in text
    assert "one-off compile/capture 1.5 s" in text
    # without peers the column is not shown
    assert "vs peer" not in format_suite(load_run(syn.write(tmp_path / "s.json", syn.suite(seed=1))))


def test_si_prefixes() -> None:
    assert si(1.234e8) == "123 M" and si(11_640) == "11.6 k" and si(0.68) == "0.68" and si(None) == "-"


# ---------------------------------------------------------------- the runner
def test_pytest_command_keeps_pytest_benchmark_json(tmp_path: Path) -> None:
    cmd = pytest_command(tmp_path / "o.json", profile="full", device="cpu", keyword="ula", threads=1)
    assert cmd[1:3] == ["-m", "pytest"] and f"--benchmark-json={tmp_path / 'o.json'}" in cmd
    assert "--genbench-profile=full" in cmd and "--genbench-device=cpu" in cmd and "--genbench-threads=1" in cmd
    assert "--benchmark-timer=time.perf_counter" in cmd and cmd[-2:] == ["-k", "ula"]
    assert "--benchmark-timer=time.process_time" in pytest_command(tmp_path / "o.json", threads=1, timer="cpu")


def test_cpu_timer_needs_one_thread_and_is_never_compared_with_wall_time(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="threads=1"):
        run_suite(tmp_path / "o.json", timer="cpu", threads=0)
    wall = syn.bench("langevin.ula[chains=1e5]", "cpu", 2e6, syn.times(0.02, 7, sigma=0.02, seed=1))
    cpu = syn.bench("langevin.ula[chains=1e5]", "cpu", 2e6, syn.times(0.02, 7, sigma=0.02, seed=2))
    cpu["options"] = {"timer": "time.process_time"}
    a = load_run(syn.write(tmp_path / "a.json", [wall]))
    b = load_run(syn.write(tmp_path / "b.json", [cpu]))
    (row,) = compare_to_baseline(b, a).rows
    assert row.verdict == "skipped" and "timer differs" in row.note
    assert "timed in CPU-seconds" in format_suite(b) and "CPU-seconds" not in format_suite(a)


def test_bench_cuda_without_cuda_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    assert main(["bench", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "CUDA is not available" in err


def test_runner_rejects_a_missing_suite_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="benchmark suite"):
        run_suite(tmp_path / "o.json", suite=tmp_path / "nowhere")
    with pytest.raises(ParameterError, match="profile"):
        run_suite(tmp_path / "o.json", profile="huge")
    with pytest.raises(ParameterError, match="threads"):
        run_suite(tmp_path / "o.json", threads=-1)
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError):
            run_suite(tmp_path / "o.json", device="cuda")


TINY = '''
import torch
from genbench.bench.timing import Workload

def test_tiny(run, device, profile):
    x = torch.ones(1000, device=device)
    run(lambda: x.sum(), Workload("tiny.sum", "elements/s", 1000, variant="n=1e3"), device, rounds=7)
'''


def test_smoke_the_runner_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One tiny benchmark through the real machinery: subprocess pytest, the suite's conftest, JSON, table, gate."""
    suite = tmp_path / "benchmarks"
    suite.mkdir()
    shutil.copy(REPO_BENCHMARKS / "conftest.py", suite / "conftest.py")
    (suite / "test_tiny.py").write_text(TINY)
    out = tmp_path / "out" / "tiny.json"
    assert main(["bench", "--suite", str(suite), "--json", str(out), "--device", "cpu", "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "tiny.sum[n=1e3]" in text and "elements/s" in text and "1 torch threads" in text
    run = load_run(out)
    (rec,) = run.records
    assert rec.key == "tiny.sum[n=1e3]" and rec.device == "cpu" and rec.rounds == 7 and rec.times is not None
    assert run.genbench["profile"] == "quick" and run.machine_info["genbench"]["torch_threads"] == 1
    gates = tmp_path / "gates.toml"
    gates.write_text('version = 1\n[[ratio]]\nname = "self"\nnumerator = "tiny.sum[n=1e3]@cpu"\ndenominator = "tiny.sum[n=1e3]@cpu"\nmin = 0.5\n')
    assert main(["bench", "gate", str(out), "--gates", str(gates), "--baseline", str(out)]) == 0
    assert "gate: ok" in capsys.readouterr().out
    # An earlier run's JSON (often a baseline) is refused before any benchmarking, unless --overwrite.
    before = out.read_bytes()
    assert main(["bench", "--suite", str(suite), "--json", str(out), "--device", "cpu", "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already exists" in err and "--overwrite" in err and out.read_bytes() == before
    assert main(["bench", "--suite", str(suite), "--json", str(out), "--device", "cpu", "--threads", "1", "--overwrite"]) == 0
    assert load_run(out).records[0].key == "tiny.sum[n=1e3]"
