"""The architecture as rules: layers import only downwards, no import cycles, nothing imports
the CLI, notebooks use only the public API. Every import counts, also those inside functions."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "incident_lib"

# Lower rank = lower layer. A package may import its own modules and packages of LOWER rank
# only, so packages of one rank (analysis, sources, report, demo) never import each other.
RANKS = {
    "core": 0, "bundled": 0,                                  # types, errors, config, storage
    "analysis": 1, "sources": 1, "report": 1, "demo": 1,      # pure analysis, I/O, rendering
    "runs": 2,                                                # the run folder
    "stages": 3,                                              # what the notebooks call
    "kb": 4, "pipeline": 4,                                   # after the incident; executing one
    "service": 5, "api": 5,                                   # webhook service; front door
    "cli": 6, "__init__": 6,                                  # commands; the package itself
}
NOTEBOOK_API = {"incident_lib", "incident_lib.stages", "incident_lib.kb"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the incident_lib modules a file imports (anywhere in the file)."""
    mod = _module(path)
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("incident_lib"):
                continue
            for alias in node.names:  # `from . import triage` imports a module
                sub = f"{target}.{alias.name}"
                out.add(sub if (PKG.parent / sub.replace(".", "/")).with_suffix(".py").is_file()
                        or (PKG.parent / sub.replace(".", "/")).is_dir() else target)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("incident_lib")}
    return out


MODULES = {_module(p): p for p in sorted(PKG.rglob("*.py"))}
GRAPH = {m: {i for i in _imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def test_every_package_has_a_layer() -> None:
    assert {_layer(m) for m in MODULES} <= set(RANKS)


def _upward(module: str, deps: set[str]) -> list[str]:
    own = _layer(module)
    return sorted(i for i in deps if _layer(i) != own and RANKS[_layer(i)] >= RANKS[own])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_downwards(module: str) -> None:
    bad = _upward(module, GRAPH[module])
    assert not bad, f"{module} (rank {RANKS[_layer(module)]}) imports upwards or sideways: {bad}"


def test_nothing_imports_the_cli() -> None:
    offenders = sorted(m for m, deps in GRAPH.items()
                       if _layer(m) != "cli" and any(_layer(d) == "cli" for d in deps))
    assert not offenders


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in sorted(GRAPH):
        if m not in index:
            visit(m)
    assert not cycles, cycles


def test_the_checker_reports_sideways_and_upward_imports() -> None:
    assert _upward("incident_lib.analysis.onset", {"incident_lib.sources.base"}) == [
        "incident_lib.sources.base"]
    assert _upward("incident_lib.runs.folder", {"incident_lib.pipeline.runner",
                                                "incident_lib.core.model"}) == [
        "incident_lib.pipeline.runner"]
    assert _upward("incident_lib.stages.triage", {"incident_lib.stages.common"}) == []


def test_relative_imports_resolve_to_modules() -> None:
    deps = _imports(PKG / "stages" / "status.py")
    assert {"incident_lib.stages.triage", "incident_lib.core.notes"} <= deps


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_notebooks_import_only_the_public_api(notebook: Path) -> None:
    cells = json.loads(notebook.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    used = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("incident_lib"):
            used |= {node.module if node.module in NOTEBOOK_API else f"{node.module}.{a.name}"
                     for a in node.names}
        elif isinstance(node, ast.Import):
            used |= {a.name for a in node.names if a.name.startswith("incident_lib")}
    assert used and {u.rsplit(".", 1)[0] if u not in NOTEBOOK_API else u for u in used} \
        <= NOTEBOOK_API, used
