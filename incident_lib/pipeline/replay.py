"""Replay a run offline from its evidence and compare its findings with the original's."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..core.model import Incident
from ..core.storage import validate_incident_id
from ..runs.folder import STAGES, Run
from ..runs.folder import run_path as target_path
from .runner import create_run, execute

__all__ = ["replay_incident", "replay_run", "compare_findings", "ReplayResult", "IGNORED_KEYS"]

# Envelope/data keys that legitimately differ between two executions of the same evidence.
IGNORED_KEYS = frozenset({"created", "run_token", "incident_id", "recorded", "generated"})
REPLAY_SOURCE = "replay:"


@dataclass
class ReplayResult:
    """Where the replay ran, its runner status, and every difference from the original."""

    original: Path
    replay: Path
    status: dict[str, Any]
    differences: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """True when every stage's findings equal the original's."""
        return not self.differences and self.status.get("state") == "ok"


def replay_incident(run_path: Path, new_id: str | None = None) -> Any:
    """The original incident with a new id and bundle sources on the original's evidence/."""

    orig = Run(run_path)
    if not (orig.path / "evidence" / "index.json").is_file():
        raise InputError(f"run {orig.path.name} has no evidence/index.json: there is nothing to "
                         "replay (did its stages run?)")
    inc = Incident.from_dict(orig.incident.to_dict())
    inc.id = validate_incident_id(new_id or f"{orig.incident.id[:73]}-replay")
    if inc.id == orig.incident.id:
        raise InputError("the replay needs an id different from the original run's")
    evidence = str(orig.path / "evidence")
    old = orig.incident.sources or {}
    sources: dict[str, Any] = {}
    for kind in ("metrics", "logs", "changes"):
        spec: dict[str, Any] = {"kind": "bundle", "path": evidence}
        for key in ("max_lines", "signals_preset", "signals"):  # same cap, same signals
            if key in (old.get(kind) or {}):
                spec[key] = old[kind][key]
        sources[kind] = spec
    inc.sources = sources
    inc.source = f"{REPLAY_SOURCE}{orig.incident.id}"
    return inc


def replay_run(run_path: Path, new_id: str | None = None, *, cell_timeout: int = 600,
               root: Path | None = None) -> ReplayResult:
    """Re-execute the notebooks offline from a run's evidence and compare the findings."""

    orig = Path(run_path).resolve()
    inc = replay_incident(orig, new_id)
    root = root or orig.parent
    dest = target_path(inc.id, root)
    replace = False
    if dest.exists():
        prev = Run(dest).incident.source if (dest / "incident.json").is_file() else ""
        if not str(prev).startswith(REPLAY_SOURCE):
            raise InputError(f"{dest} exists and is not a replay: pass another --id")
        replace = True
    path = create_run(inc, root, replace=replace)
    notes = orig / "notes.yaml"
    if notes.is_file() and not notes.is_symlink():  # responders' notes render the same report
        shutil.copyfile(notes, path / "notes.yaml")
    status = execute(path, cell_timeout=cell_timeout)
    return ReplayResult(orig, path, status, compare_findings(orig, path))


def _normalise(value: Any, paths: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v, paths) for k, v in value.items() if k not in IGNORED_KEYS}
    if isinstance(value, list):
        return [_normalise(v, paths) for v in value]
    if isinstance(value, str):
        for p in paths:
            value = value.replace(p, "<run>")
    return value


def _diff(a: Any, b: Any, where: str, out: list[str], limit: int) -> None:
    if len(out) >= limit:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{where}.{k}: only in {'replay' if k in b else 'original'}")
            else:
                _diff(a[k], b[k], f"{where}.{k}", out, limit)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: {len(a)} items in the original, {len(b)} in the replay")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _diff(x, y, f"{where}[{i}]", out, limit)
    elif a != b:
        out.append(f"{where}: {str(a)[:80]!r} != {str(b)[:80]!r}")


def compare_findings(original: Path, replay: Path, limit: int = 50) -> list[str]:
    """Differences between two runs' findings, ignoring timestamps, run tokens, ids and paths."""

    paths = tuple(sorted({str(Path(original).resolve()), str(Path(replay).resolve())},
                         key=len, reverse=True))
    out: list[str] = []
    for stage in STAGES:
        docs = []
        for run in (original, replay):
            f = Path(run) / "findings" / f"{stage}.json"
            docs.append(json.loads(f.read_text("utf-8")) if f.is_file() else None)
        if docs[0] is None and docs[1] is None:
            continue
        if docs[0] is None or docs[1] is None:
            out.append(f"{stage}: findings only in {'replay' if docs[0] is None else 'original'}")
            continue
        _diff(_normalise(docs[0], paths), _normalise(docs[1], paths), stage, out, limit)
    return out


















