"""The architecture as a test (read from the source, nothing imported): the layers the README states,
no import cycles, no module reaching into another module's private (underscore) names, and no
module in genbench/ above 500 lines.

Every import counts, at module level or inside a function. Layers, lowest first (a layer may import
only from the layers listed for it, and from the shared foundation):

    foundation: errors, _io, _validate, _runtime, _seed_offset, _project, seeding, stats, wishart,
                planning, distributed (the package root too): usable by every layer
    targets -> langevin                          (samplers, exact theory, experiments)
    gan.data -> gan.models -> gan training -> gan quality
    testing                                      reads both stacks
    calibration, conformance, bench              read from the above, not from each other
    report                                       reads from all of these; nothing else imports it
    cli                                          reads from everything

Known exceptions are listed in ALLOWED with the area that owns them; a new violation fails.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "genbench"
MAX_LINES = 500

FOUNDATION = {"genbench", "errors", "_io", "_validate", "_runtime", "_seed_offset", "_project", "seeding", "stats",
              "wishart", "planning", "distributed"}
GAN_DATA = {"gan.data", "gan.idx"}
GAN_MODELS = {"gan.models"}
GAN_TRAIN = {"gan.step", "gan.state", "gan.outputs", "gan.checkpoint", "gan.train", "gan.ddp"}
GAN_QUALITY = {"gan.classifier", "gan.metrics", "gan.quality"}

#: layer -> the layers it may import (besides itself and the foundation).
MAY_IMPORT: dict[str, set[str]] = {
    "foundation": set(),
    "targets": set(),
    "langevin": {"targets"},
    "gan.data": set(),
    "gan.models": {"gan.data"},
    "gan.train": {"gan.data", "gan.models"},
    "gan.quality": {"gan.data", "gan.models", "gan.train"},
    "testing": {"targets", "langevin", "gan.data", "gan.models", "gan.train", "gan.quality"},
    "pytest_plugin": set(),
}
_READERS = {"targets", "langevin", "gan.data", "gan.models", "gan.train", "gan.quality", "testing"}
MAY_IMPORT.update({name: set(_READERS) for name in ("calibration", "conformance", "bench")})
MAY_IMPORT["report"] = _READERS | {"calibration", "conformance", "bench"}
MAY_IMPORT["cli"] = _READERS | {"calibration", "conformance", "bench", "report", "pytest_plugin"}

#: (importer's layer, imported layer) -> who owns the fix. Present on main when the test was written.
ALLOWED: dict[tuple[str, str], str] = {
}
#: Modules above MAX_LINES when the test was written -> the area that owns the split.
ALLOWED_LONG: dict[str, str] = {
}


def modules() -> dict[str, Path]:
    """Dotted name inside genbench ('' for the package root) -> source file."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def layer(module: str) -> str:
    """The layer a module (dotted name inside genbench) belongs to."""
    head = module.split(".")[0] if module else "genbench"
    if head in FOUNDATION or module == "":
        return "foundation"
    if head == "__main__":
        return "cli"
    if module == "gan":
        return "gan.data"  # the package root: a docstring, importing nothing
    if head == "gan":
        for name, group in (("gan.data", GAN_DATA), ("gan.models", GAN_MODELS), ("gan.train", GAN_TRAIN),
                            ("gan.quality", GAN_QUALITY)):
            if ".".join(module.split(".")[:2]) in group:
                return name
        return "gan.unplaced"
    return head


def imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int, str | None]]:
    """(imported module, line, imported name or None) for every genbench import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def resolve(dotted: str) -> str:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "genbench" or alias.name.startswith("genbench."):
                    yield resolve(alias.name.removeprefix("genbench").lstrip(".")), node.lineno, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module == "genbench" or (node.module or "").startswith("genbench."):
                target = node.module.removeprefix("genbench").lstrip(".")
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}".lstrip(".")
                if sub in known:
                    yield sub, node.lineno, None
                else:
                    yield resolve(target), node.lineno, alias.name


@pytest.fixture(scope="module")
def graph() -> dict[str, list[tuple[str, int, str | None]]]:
    known = modules()
    return {m: [(t, line, name) for t, line, name in imports(m, p, known) if t != m] for m, p in known.items()}


def test_every_module_is_in_a_layer() -> None:
    unplaced = [m for m in modules() if layer(m) not in MAY_IMPORT]
    assert not unplaced, f"modules outside the stated layers (add them to tests/test_layers.py): {unplaced}"


def test_layers_import_only_downwards(graph: dict[str, list[tuple[str, int, str | None]]]) -> None:
    seen: set[tuple[str, str]] = set()
    bad = []
    for mod, deps in graph.items():
        src = layer(mod)
        for target, line, _ in deps:
            dst = layer(target)
            if dst == src or dst == "foundation" or dst in MAY_IMPORT.get(src, set()):
                continue
            seen.add((src, dst))
            if (src, dst) not in ALLOWED:
                bad.append(f"genbench/{mod.replace('.', '/') or '__init__'}.py:{line} ({src}) imports genbench.{target} ({dst})")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)
    for stale in set(ALLOWED) - seen:
        warnings.warn(f"tests/test_layers.py: allowed exception {stale} no longer occurs; remove it", stacklevel=1)


def test_no_import_cycles(graph: dict[str, list[tuple[str, int, str | None]]]) -> None:
    """Tarjan's strongly connected components over module imports (any import, anywhere in a module)."""
    edges = {m: sorted({t for t, _, _ in deps if t in graph}) for m, deps in graph.items()}
    # A package's __init__ importing its own submodules (re-exports) is not a cycle of design.
    edges = {m: [t for t in ts if not t.startswith(f"{m}.") and not (m == "")] for m, ts in edges.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_no_module_imports_another_modules_private_names(graph: dict[str, list[tuple[str, int, str | None]]]) -> None:
    bad = [f"genbench.{mod}:{line} imports {name} from genbench.{target}"
           for mod, deps in graph.items() for target, line, name in deps
           if name and name.startswith("_") and not name.startswith("__")]
    assert not bad, "\n".join(bad)


def private_attributes(path: Path, known: dict[str, Path]) -> list[tuple[int, str]]:
    """(line, 'alias._name') where a module reaches into a genbench module it imported as a name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("genbench"):
            sub = node.module.removeprefix("genbench").lstrip(".")
            aliases.update(a.asname or a.name for a in node.names if f"{sub}.{a.name}".lstrip(".") in known)
        elif isinstance(node, ast.Import):
            aliases.update(a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("genbench"))
    return [(n.lineno, f"{n.value.id}.{n.attr}") for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in aliases
            and n.attr.startswith("_") and not n.attr.startswith("__")]


def test_no_module_reads_another_modules_private_attributes() -> None:
    known = modules()
    bad = [f"genbench.{m}:{line} reads {attr}" for m, p in known.items() for line, attr in private_attributes(p, known)]
    assert not bad, "\n".join(bad)


def test_no_module_above_500_lines() -> None:
    sizes = {p.relative_to(PACKAGE).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in PACKAGE.rglob("*.py")}
    long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not set(long) - set(ALLOWED_LONG), {k: v for k, v in long.items() if k not in ALLOWED_LONG}
    for name in set(ALLOWED_LONG) - set(long):
        warnings.warn(f"tests/test_layers.py: {name} is now <= {MAX_LINES} lines; remove it from ALLOWED_LONG",
                      stacklevel=1)


def test_the_layer_check_sees_a_violation(tmp_path: Path) -> None:
    """The checker is not vacuous: a langevin module importing the report is reported."""
    pkg = tmp_path / "genbench"
    (pkg / "langevin").mkdir(parents=True)
    (pkg / "report").mkdir()
    for f in ("__init__.py", "langevin/__init__.py", "report/__init__.py", "report/html.py"):
        (pkg / f).write_text("")
    (pkg / "langevin" / "bad.py").write_text("def f():\n    from genbench.report.html import _render\n")
    known = {"": pkg / "__init__.py", "langevin": pkg / "langevin/__init__.py", "langevin.bad": pkg / "langevin/bad.py",
             "report": pkg / "report/__init__.py", "report.html": pkg / "report/html.py"}
    (dep,) = imports("langevin.bad", known["langevin.bad"], known)
    assert dep == ("report.html", 2, "_render")
    (pkg / "langevin" / "peek.py").write_text("from genbench.report import html as h\nh._render()\n")
    known["langevin.peek"] = pkg / "langevin/peek.py"
    assert private_attributes(known["langevin.peek"], known) == [(2, "h._render")]
    assert layer(dep[0]) == "report" and "report" not in MAY_IMPORT[layer("langevin.bad")]
