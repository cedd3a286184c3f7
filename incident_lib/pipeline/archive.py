"""Export a run as one archive with a checksummed manifest (and its notebooks as HTML)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from ..core.errors import InputError, RunLocked
from ..core.storage import atomic_write_with
from ..report.export import export_run_html
from ..runs.folder import Run
from .runner import run_lock

__all__ = ["export_run", "verify_export", "combined_notebook_html"]


_SKIP_NAMES = {".lock"}


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

    return export_run_html(Path(run_path), out)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def export_run(run_path: Path, out: Path | None = None) -> tuple[Path, Path | None]:
    """Write <id>.tar.gz (run folder, MANIFEST.json with sha256 per file, notebooks.html).

    Refused while the run is being executed (its lock is held for the whole export, so no
    run starts half way); the manifest states the run's state.
    """
    try:
        with run_lock(Path(run_path)):
            return _export_run(run_path, out)
    except RunLocked:
        raise InputError(f"run {Path(run_path).name} is being executed right now: wait until "
                         "`incident status` says it ended, then export") from None


def _export_run(run_path: Path, out: Path | None = None) -> tuple[Path, Path | None]:
    """export_run with the run's lock held."""
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
        "run_state": run.status().get("state") or "not run by the runner",
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
