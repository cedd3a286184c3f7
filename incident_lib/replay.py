"""Replay a run offline from its evidence, compare findings, and export a checksummed archive."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = ["replay_incident", "replay_run", "compare_findings", "ReplayResult", "export_run",
           "verify_export", "combined_notebook_html", "register", "IGNORED_KEYS"]

# Envelope/data keys that legitimately differ between two executions of the same evidence.
IGNORED_KEYS = frozenset({"created", "run_token", "incident_id", "recorded", "generated"})
REPLAY_SOURCE = "replay:"
_SKIP_NAMES = {".lock"}


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
    from .model import Incident
    from .run import Run
    from .storage import validate_incident_id

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
        if "max_lines" in (old.get(kind) or {}):
            spec["max_lines"] = old[kind]["max_lines"]  # same cap, same sampling
        sources[kind] = spec
    inc.sources = sources
    inc.source = f"{REPLAY_SOURCE}{orig.incident.id}"
    return inc


def replay_run(run_path: Path, new_id: str | None = None, *, cell_timeout: int = 600,
               root: Path | None = None) -> ReplayResult:
    """Re-execute the notebooks offline from a run's evidence and compare the findings."""
    from .run import Run
    from .runner import create_run, execute
    from .runner import run_path as target_path

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
    from .run import STAGES

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


def _run_files(path: Path) -> list[Path]:
    """Regular files of a run folder (no symlinks, locks or half-written temp files)."""
    out = []
    for p in sorted(path.rglob("*")):
        if p.is_symlink() or not p.is_file() or p.name in _SKIP_NAMES:
            continue
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            continue
        out.append(p)
    return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def combined_notebook_html(run_path: Path, out: Path) -> Path | None:
    """One self-contained HTML (code hidden, figures inline) of the run's executed notebooks."""
    from .report.export import export_run_html

    return export_run_html(Path(run_path), out)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def export_run(run_path: Path, out: Path | None = None) -> tuple[Path, Path | None]:
    """Write <id>.tar.gz (run folder, MANIFEST.json with sha256 per file, notebooks.html)."""
    from .run import Run
    from .storage import atomic_write_with

    run = Run(run_path)
    rid = run.incident.id
    out = Path(out) if out else run.path.parent / f"{rid}.export.tar.gz"
    if out.resolve().is_relative_to(run.path):
        raise InputError(f"--out {out} is inside the run folder: write the archive elsewhere")
    stem = out.name.removesuffix(".gz").removesuffix(".tgz").removesuffix(".tar")
    html_out = out.with_name(f"{stem}.html")
    files = [(p.relative_to(run.path).as_posix(), p.read_bytes(), p.stat().st_mtime)
             for p in _run_files(run.path)]
    html = combined_notebook_html(run.path, html_out)
    if html is not None:
        files.append(("notebooks.html", html.read_bytes(), html.stat().st_mtime))
    manifest = {
        "incident_id": rid,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "algorithm": "sha256",
        "files": [{"path": rel, "bytes": len(data), "sha256": _sha256(data)}
                  for rel, data, _ in files],
    }
    mbytes = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")

    def _write(tmp: Path) -> None:
        with tarfile.open(tmp, "w:gz") as tar:
            for rel, data, mtime in files:
                _add_bytes(tar, f"{rid}/{rel}", data, mtime)
            _add_bytes(tar, f"{rid}/MANIFEST.json", mbytes, datetime.now(UTC).timestamp())

    atomic_write_with(out, _write)
    return out, html


def verify_export(archive: Path) -> list[str]:
    """Problems with an export archive: files missing, extra or not matching MANIFEST.json."""
    problems: list[str] = []
    with tarfile.open(archive, "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        mname = next((n for n in members if n.count("/") == 1
                      and n.endswith("/MANIFEST.json")), None)
        if mname is None:
            return [f"{archive.name}: no MANIFEST.json"]
        prefix = mname.removesuffix("MANIFEST.json")
        manifest = json.loads(tar.extractfile(members[mname]).read())  # type: ignore[union-attr]
        listed = set()
        for f in manifest.get("files", []):
            name = prefix + f["path"]
            listed.add(name)
            if name not in members:
                problems.append(f"{f['path']}: listed in MANIFEST.json but missing")
                continue
            data = tar.extractfile(members[name]).read()  # type: ignore[union-attr]
            if _sha256(data) != f["sha256"]:
                problems.append(f"{f['path']}: sha256 does not match MANIFEST.json")
        for name in sorted(set(members) - listed - {mname}):
            problems.append(f"{name.removeprefix(prefix)}: in the archive but not in MANIFEST.json")
    return problems


def cmd_replay(args: argparse.Namespace) -> int:
    """`incident replay RUN`: re-execute offline from evidence and compare findings."""
    from .cli import _resolve_run

    res = replay_run(_resolve_run(args.run), args.id, cell_timeout=args.timeout)
    for name, st in res.status["stages"].items():
        extra = f" ({st.get('error')})" if st.get("error") else ""
        print(f"  {name:<12} {st['state']}{extra}", file=sys.stderr)
    if res.identical:
        print(f"replay {res.replay}: findings identical to {res.original.name}")
        return 0
    print(f"replay {res.replay}: findings differ from {res.original.name}:")
    for d in res.differences:
        print(f"  {d}")
    return 1


def cmd_export(args: argparse.Namespace) -> int:
    """`incident export RUN`: one archive with a checksummed manifest, plus notebooks HTML."""
    from .cli import _resolve_run

    archive, html = export_run(_resolve_run(args.run), Path(args.out) if args.out else None)
    print(archive)
    if html is not None:
        print(html)
    return 0


def register(sub: Any) -> None:
    """Add the `replay` and `export` sub-commands."""
    r = sub.add_parser("replay", help="re-execute a run offline from its evidence; compare")
    r.add_argument("run", help="incident id or run folder")
    r.add_argument("--id", help="id of the replay run (default <id>-replay)")
    r.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    r.set_defaults(func=cmd_replay)
    e = sub.add_parser("export", help="archive a run (checksummed manifest) + notebooks HTML")
    e.add_argument("run", help="incident id or run folder")
    e.add_argument("--out", help="archive path (default <runs>/<id>.export.tar.gz)")
    e.set_defaults(func=cmd_export)
