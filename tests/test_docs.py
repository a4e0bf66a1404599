"""The documentation is tested: every ```python block of README.md and docs/*.md runs (each file's
blocks in order, in one namespace, in a scratch folder) with every name it uses defined, and every
documented shell command still parses: `genbench ...` lines with the real parser (an unknown flag,
subcommand or choice fails), `pytest`/`python -m pytest` lines by the paths they name.

A block preceded by ``<!-- excerpt: genbench/PATH.py -->`` shows part of a source file: it must
appear there verbatim (so it cannot go stale) and is not run on its own. Functions a snippet defines
(``def test_my_sampler(): ...``) are defined, not called: they are what the reader copies into a suite.
"""

from __future__ import annotations

import ast
import builtins
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from genbench.cli import build_parser, unknown_option

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXCERPT = re.compile(r"<!--\s*excerpt:\s*(\S+)\s*-->")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a document."""

    doc: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    excerpt_of: str | None

    def __str__(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    """The fenced code blocks of ``doc``."""
    out: list[Block] = []
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if m:
            start, lang = i, m.group(1)
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            prev = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
            ex = EXCERPT.search(prev)
            out.append(Block(doc, start + 1, lang, "\n".join(body) + "\n", ex.group(1) if ex else None))
        i += 1
    return out


PY_DOCS = [d for d in DOCS if any(b.lang == "python" for b in blocks(d))]


# ------------------------------------------------------------------------------------ python snippets
def undefined_names(code: str) -> set[str]:
    """Names a snippet reads that nothing in it binds (imports, assignments, defs, arguments) and no builtin is."""
    tree = ast.parse(code)
    bound: set[str] = set()
    loaded: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, (ast.Store, ast.Del)) else loaded).add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return loaded - bound - set(dir(builtins))


@pytest.mark.parametrize("doc", PY_DOCS, ids=[str(d.relative_to(ROOT)) for d in PY_DOCS])
def test_python_snippets_run(doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runnable = [b for b in blocks(doc) if b.lang == "python" and b.excerpt_of is None]
    for b in [b for b in blocks(doc) if b.lang == "python" and b.excerpt_of is not None]:
        source = (ROOT / b.excerpt_of).read_text(encoding="utf-8")
        assert b.code.strip() in source, f"{b}: the excerpt no longer appears verbatim in {b.excerpt_of}"
    missing = undefined_names("".join(b.code for b in runnable))
    assert not missing, f"{doc.relative_to(ROOT)}: snippets use undefined names {sorted(missing)}"
    namespace: dict[str, object] = {"__name__": f"doc_{doc.stem}"}
    for b in runnable:
        exec(compile(b.code, str(b), "exec"), namespace)  # noqa: S102 - the documentation's own code


def test_snippet_checks_are_not_vacuous() -> None:
    assert undefined_names("from a import b\nb(real_images, clf)\n") == {"real_images", "clf"}
    assert undefined_names("def f(x):\n    return [y for y in x]\n") == set()


# ------------------------------------------------------------------------------------- shell commands
#: Values for the placeholders the docs write in commands (DIR, PATH, ...), so the parser can read them.
PLACEHOLDERS = {"T": "10", "MU": "0.01", "N": "2", "K": "2", "S": "0", "P": "0.05", "A": "0.01", "B": "1024",
                "DIR": "out", "PATH": "data", "FILE": "f.toml", "EXPR": "peers", "NAME": "c2st",
                "MODULE:FACTORY": "mod:factory", "CURRENT.json": "current.json", "BASELINE.json": "baseline.json",
                "STAGES": "langevin", "KEY=V,...": "mean=0.1", "PCT": "20%"}


def shell_lines(b: Block) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blank lines dropped."""
    text = re.sub(r"\\\n\s*", " ", b.code)
    out = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            out.extend(part.strip() for part in line.split("&&"))
    return out


def genbench_argv(command: str) -> list[str] | None:
    """The arguments after `genbench` (also in `python -m genbench` and `torchrun ... -m genbench`), or None."""
    tokens = shlex.split(command)
    for i, tok in enumerate(tokens):
        if tok == "genbench" and (i == 0 or tokens[i - 1] == "-m"):
            return [PLACEHOLDERS.get(t, t) for t in tokens[i + 1:]]
    return None


def documented_commands() -> list[tuple[str, str, bool]]:
    """(where, command, complete) for every genbench/pytest command in the docs: fenced lines (complete)
    and inline `genbench ...` spans (synopses: [optional] parts, a|b alternatives)."""
    found = []
    for doc in DOCS:
        for b in blocks(doc):
            if b.lang in ("bash", "sh", "console", "shell"):
                found += [(str(b), line, True) for line in shell_lines(b)]
        text = doc.read_text(encoding="utf-8")
        for m in re.finditer(r"`((?:genbench|torchrun|python -m genbench) [^`]*)`", text):
            line = text.count("\n", 0, m.start()) + 1
            if "..." in m.group(1):
                continue  # a schematic line (`torchrun ... -m genbench ... --distributed`), not a command
            span = m.group(1).replace("\\|", "|")
            span = re.sub(r"\[([^\[\]]*)\]", r"\1", span)  # [--flag X] -> --flag X
            span = re.sub(r"(\S+?)\|\S+", r"\1", span)  # a|b -> a
            found += [(f"{doc.relative_to(ROOT)}:{line}", part.strip(), False) for part in span.split("&&")]
    return found


COMMANDS = documented_commands()


def _parse_error(argv: list[str], complete: bool) -> str | None:
    parser = build_parser()
    unknown = unknown_option(parser, argv)
    if unknown is not None:
        return f"unknown option {unknown[1]} for {unknown[0].prog}"
    top = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    if not argv or argv[0] not in top:
        return f"unknown command {argv[:1]}"
    if complete:
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            return f"argparse exit {exc.code}"
    return None


@pytest.mark.parametrize("where, command, complete", COMMANDS, ids=[f"{w}" for w, _, _ in COMMANDS])
def test_documented_command_parses(where: str, command: str, complete: bool, capsys: pytest.CaptureFixture[str]) -> None:
    argv = genbench_argv(command)
    if argv is not None:
        error = _parse_error(argv, complete)
        assert error is None, f"{where}: `{command}`: {error}: {capsys.readouterr().err.strip()}"
        return
    tokens = shlex.split(command)
    if tokens[:1] == ["pytest"] or tokens[:3] == ["python", "-m", "pytest"]:
        paths = [t.split("::")[0] for t in tokens if t.startswith(("tests/", "benchmarks/"))]
        missing = [p for p in paths if not (ROOT / p).exists()]
        assert not missing, f"{where}: `{command}` names missing paths {missing}"


def test_every_documented_genbench_command_is_checked() -> None:
    """The collector is not vacuous: the docs' main commands are all among those parsed."""
    seen = {tuple(a[:2]) for _, c, _ in COMMANDS if (a := genbench_argv(c))}
    heads = {s[0] for s in seen}
    assert {"langevin", "gan", "calibrate", "bench", "check-sampler", "report"} <= heads, heads
    assert _parse_error(["langevin", "--step_size", "0.1"], True) is not None
    assert _parse_error(["langevin", "grid", "--out", "x", "--style", "nope"], True) is not None


# ------------------------------------------------------------------------- documented commands, run
#: Keyword of one tiny benchmark: the quick form of every documented `genbench bench` line.
TINY_BENCHMARK = "test_reference_loop"
#: A cheap calibration check: the quick form of every documented `genbench calibrate` line.
CHEAP_CHECK = "ula_law_mean@transient"


def _set(argv: list[str], flag: str, value: str | None) -> list[str]:
    """argv with ``flag`` given ``value`` (added, replaced, or removed when value is None)."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == flag:
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out if value is None else [*out, flag, value]


def quick_form(argv: list[str]) -> list[str] | str:
    """The documented command with fewer steps, seeds or benchmarks, or why a test elsewhere covers it."""
    if "cuda" in argv or "cuda_graph" in argv:
        return "needs a GPU (the cuda tests run it on a GPU machine)"
    head = argv[:2]
    if head[0] == "langevin" and head[1:] != ["grid"]:
        argv = _set(argv, "--steps", str(min(int(argv[argv.index("--steps") + 1]), 200)))
        if "--chains" in argv:
            argv = _set(argv, "--chains", str(min(int(argv[argv.index("--chains") + 1]), 2000)))
        return argv
    if head == ["langevin", "grid"]:
        if "reference" in argv:
            return "the reference grid (minutes): tests/test_langevin_experiments.py runs the reference method"
        return argv
    if head == ["gan", "train"]:
        return _set(_set(_set(argv, "--max-steps", "2"), "--subset", "128"), "--epochs", None) + ["--quiet"]
    if head == ["gan", "evaluate"]:
        return _set(_set(argv, "--holdout", "400"), "--c2st-classifier", "mlp") + ["--quiet"]
    if head[0] == "calibrate":
        argv = _set(_set(_set(argv, "--seeds", "1"), "--check", CHEAP_CHECK), "--workers", None)
        return _set(argv, "--data", None)  # the placeholder PATH; the GAN checks' data is tested apart
    if head[0] == "bench" and head[1:] != ["gate"]:
        return _set(_set(_set(argv, "-k", TINY_BENCHMARK), "--suite", str(ROOT / "benchmarks")), "--profile", "quick")
    if head[0] == "check-sampler":
        argv = [a.replace("mypkg.adapters:my_factory", "genbench.conformance.adapters:genbench_mala") for a in argv]
        return _set(argv, "--targets", "gauss1d") + ["--quiet"]
    if head[0] == "report":
        if "--tests-junit" in argv:
            return "results read from files: tests/test_report.py::test_cli_reads_given_results"
        return _set(_set(argv, "--only", "langevin"), "--profile", None)
    return argv


RUN_DOCS = [d for d in DOCS if any(b.lang in ("bash", "sh") and any(genbench_argv(c) for c in shell_lines(b))
                                   for b in blocks(d))]


@pytest.mark.docs
@pytest.mark.parametrize("doc", RUN_DOCS, ids=[str(d.relative_to(ROOT)) for d in RUN_DOCS])
def test_documented_commands_run_in_a_quick_form(doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Each documented genbench command, in order and in one scratch folder, with fewer steps, seeds or
    benchmarks: it must not be refused as bad input (exit 2); exit 1 (a verdict that rejects) is allowed.
    About 4 minutes on 2 cores (GAN evaluation, benchmark subprocesses): marker `docs`, run by CI and
    `tox -e docs`, not by the default run."""
    from genbench.cli import main

    monkeypatch.chdir(tmp_path)
    last_json: Path | None = None
    ran = 0
    for b in blocks(doc):
        if b.lang not in ("bash", "sh"):
            continue
        for command in shell_lines(b):
            argv = genbench_argv(command)
            if argv is None:
                continue
            # A documented scratch path (/tmp/...) goes into this test's folder: a run must not meet an earlier
            # run's outputs (the commands refuse to clobber them), and commands of one page share it. Only the
            # documented arguments: quick_form adds paths of its own (the checkout's benchmarks/).
            argv = [str(tmp_path / a[len("/tmp/"):]) if a.startswith("/tmp/") else a for a in argv]
            quick = quick_form(argv)
            if isinstance(quick, str):
                continue  # covered where `quick` says
            ran += 1
            quick = [f"out{ran}" if a == PLACEHOLDERS["DIR"] else a for a in quick]  # DIR: the reader's own folder
            for i, a in enumerate(quick):  # a documented baseline or input JSON: the run made just before
                if a.endswith(".json") and quick[i - 1] in ("gate", "--baseline") and not Path(a).exists() and last_json:
                    Path(a).write_bytes(last_json.read_bytes())
            if "--distributed" in quick:  # under torchrun, on 2 CPU ranks (gloo)
                proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                                       "2", "-m", "genbench", *quick], capture_output=True, text=True, timeout=600)
                rc, err = proc.returncode, proc.stderr
            else:
                rc = main(quick)
                err = capsys.readouterr().err
            assert rc in (0, 1), f"{b}: `{command}` as `genbench {' '.join(quick)}` exited {rc}: {err.strip()[-500:]}"
            if "--json" in quick:
                last_json = Path(quick[quick.index("--json") + 1])
