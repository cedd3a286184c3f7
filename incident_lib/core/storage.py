"""Safe file handling: atomic writes, safe ids, the project root."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = [
    "atomic_write_text",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_with",
    "validate_incident_id",
    "slug",
    "workspace",
    "runs_root",
]

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")


def atomic_write_with(path: Path, writer: Callable[[Path], None]) -> None:
    """Call writer(tmp_path) then rename tmp onto path, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write bytes atomically (temp file in the same folder, fsync, rename)."""

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    atomic_write_with(path, _write)


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (serialised fully before the file is touched)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def validate_incident_id(value: str) -> str:
    """Return value if it is a safe incident id, else raise InputError."""
    if not isinstance(value, str) or not _ID_RE.match(value) or ".." in value:
        shown = repr(value)[:60]
        raise InputError(
            f"incident id {shown} is invalid: use 1-80 characters from a-z, 0-9, '.', '_', '-' "
            "starting with a letter or digit (no '/', '..', braces or spaces)"
        )
    return value


def slug(value: str, max_len: int = 40) -> str:
    """Reduce untrusted text (an alert label) to a safe id fragment."""
    s = re.sub(r"[^a-z0-9]+", "-", str(value).lower()).strip("-")
    return (s[:max_len].strip("-")) or "x"


def workspace() -> Path:
    """Where runs/ and kb/ live by default: INCIDENT_HOME, else the current folder."""
    env = os.environ.get("INCIDENT_HOME")
    return Path(env).resolve() if env else Path.cwd().resolve()


def runs_root() -> Path:
    """Where run folders live (INCIDENT_RUNS_DIR, else runs/ in the workspace)."""
    env = os.environ.get("INCIDENT_RUNS_DIR")
    return Path(env).resolve() if env else workspace() / "runs"
