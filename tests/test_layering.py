"""The layering of DESIGN.md: analysis is pure, sources never reach into analysis."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "incident_lib"


def _imports(path: Path) -> set[str]:
    """incident_lib sub-packages/modules a file imports (relative or absolute)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level >= 2:
                out.add(mod.split(".")[0] if mod else "")
            elif node.level == 0 and mod.startswith("incident_lib."):
                out.add(mod.split(".")[1])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("incident_lib.")}
    return out


@pytest.mark.parametrize("path", sorted((PKG / "analysis").glob("*.py")), ids=lambda p: p.name)
def test_analysis_imports_no_io_layers(path: Path) -> None:
    assert not _imports(path) & {"sources", "report", "runner", "stages", "run", "server"}


@pytest.mark.parametrize("path", sorted((PKG / "sources").glob("*.py")), ids=lambda p: p.name)
def test_sources_never_import_analysis(path: Path) -> None:
    assert "analysis" not in _imports(path)
