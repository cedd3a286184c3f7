"""Durable job queue in SQLite: one row per alert group (dedupe key), survives restarts.

States: queued -> running -> done | failed; `render` is a queued re-render (after a resolved
notification for a finished run). A row's `want` counts notifications that need the report
re-rendered; `have` is the value a worker last completed, so nothing is lost to races.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Job", "JobQueue", "STATES", "FINAL_STATES"]

STATES = ("queued", "running", "render", "done", "failed")
FINAL_STATES = ("done", "failed")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    mode TEXT NOT NULL DEFAULT 'run',
    payload TEXT NOT NULL,
    received REAL NOT NULL,
    updated REAL NOT NULL,
    started REAL,
    ended REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    runs_completed INTEGER NOT NULL DEFAULT 0,
    notifications INTEGER NOT NULL DEFAULT 1,
    last_status TEXT,
    resolved_at TEXT,
    want INTEGER NOT NULL DEFAULT 0,
    have INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    error TEXT
);
"""


@dataclass(frozen=True)
class Job:
    """One row of the queue."""

    key: str
    incident_id: str
    state: str
    mode: str
    payload: dict[str, Any]
    received: float
    updated: float
    started: float | None
    ended: float | None
    attempts: int
    runs_completed: int
    notifications: int
    last_status: str | None
    resolved_at: str | None
    want: int
    have: int
    pid: int | None
    error: str | None

    def public(self) -> dict[str, Any]:
        """What the HTTP API shows (no payload, no pid)."""
        return {"incident_id": self.incident_id, "state": self.state, "mode": self.mode,
                "received": self.received, "started": self.started, "ended": self.ended,
                "attempts": self.attempts, "runs_completed": self.runs_completed,
                "notifications": self.notifications, "last_status": self.last_status,
                "resolved_at": self.resolved_at, "error": self.error}


class JobQueue:
    """SQLite-backed queue (WAL: durable across process crashes); thread-safe in one process."""

    renew_every: float | None = None  # one process owns the file: claims need no lease

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30,
                                   isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _row(self, row: sqlite3.Row | None) -> Job | None:
        if row is None:
            return None
        d = dict(row)
        d["payload"] = json.loads(d["payload"])
        return Job(**d)

    def submit(self, key: str, incident_id: str, payload: dict[str, Any],
               resolved_at: str | None) -> tuple[Job, bool]:
        """Insert a new job, or attach a repeat/update to the existing one; (job, created)."""
        now = time.time()
        status = str(payload.get("status"))
        with self._tx():
            other = self._db.execute("SELECT key FROM jobs WHERE incident_id = ?",
                                     (incident_id,)).fetchone()
            if other is not None and other["key"] != key:  # id collision: widen it
                incident_id = f"{incident_id[:66]}-{key[:12]}"
            cur = self._db.execute(
                "INSERT OR IGNORE INTO jobs (key, incident_id, state, payload, received, "
                "updated, last_status, resolved_at) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?)",
                (key, incident_id, json.dumps(payload), now, now, status, resolved_at))
            created = cur.rowcount == 1
            if not created:
                self._db.execute(
                    "UPDATE jobs SET notifications = notifications + 1, updated = ?, "
                    "last_status = ?, payload = ? WHERE key = ?",
                    (now, status, json.dumps(payload), key))
                if resolved_at:
                    self._db.execute(
                        "UPDATE jobs SET resolved_at = ?, want = want + 1, "
                        "state = CASE WHEN state IN ('done', 'failed') THEN 'render' "
                        "ELSE state END, "
                        "mode = CASE WHEN state IN ('done', 'failed') THEN 'render' "
                        "ELSE mode END WHERE key = ?", (resolved_at, key))
            row = self._db.execute("SELECT * FROM jobs WHERE key = ?", (key,)).fetchone()
        job = self._row(row)
        assert job is not None
        return job, created

    def claim(self, pid: int | None = None) -> Job | None:
        """Take the oldest queued (or render) job and mark it running; None if nothing waits."""
        now = time.time()
        with self._tx():
            row = self._db.execute(
                "SELECT key FROM jobs WHERE state IN ('queued', 'render') "
                "ORDER BY received LIMIT 1").fetchone()
            job = None
            if row is not None:
                self._db.execute(
                    "UPDATE jobs SET mode = CASE WHEN state = 'render' THEN 'render' "
                    "ELSE 'run' END, state = 'running', started = ?, updated = ?, "
                    "attempts = attempts + 1, pid = ?, error = NULL WHERE key = ?",
                    (now, now, pid, row["key"]))
                job = self._row(self._db.execute(
                    "SELECT * FROM jobs WHERE key = ?", (row["key"],)).fetchone())
        return job

    def child_args(self) -> list[str]:
        """How a worker child opens this queue."""
        return ["--db", str(self.path)]

    def ping(self) -> None:
        """Raise if the database cannot be read."""
        with self._lock:
            self._db.execute("SELECT 1").fetchone()

    def renew(self, key: str) -> bool:
        """Claims in one process need no lease: always True."""
        return True

    def set_pid(self, key: str, pid: int) -> None:
        """Record the worker process of a running job."""
        with self._lock:
            self._db.execute("UPDATE jobs SET pid = ? WHERE key = ?", (pid, key))

    def finish(self, key: str, ok: bool, have: int, error: str | None = None,
               completed_run: bool = False) -> Job:
        """Mark a job done/failed; if a resolve arrived meanwhile, queue a re-render."""
        now = time.time()
        with self._tx():
            self._db.execute(
                "UPDATE jobs SET have = MAX(have, ?), ended = ?, updated = ?, pid = NULL, "
                "error = ?, runs_completed = runs_completed + ?, "
                "state = ? WHERE key = ?",
                (have, now, now, error, 1 if completed_run else 0,
                 "done" if ok else "failed", key))
            self._db.execute(
                "UPDATE jobs SET state = 'render', mode = 'render' "
                "WHERE key = ? AND want > have AND state = 'done'", (key,))
            row = self._db.execute("SELECT * FROM jobs WHERE key = ?", (key,)).fetchone()
        job = self._row(row)
        assert job is not None
        return job

    def requeue_interrupted(self) -> list[str]:
        """At startup: jobs left running by a dead server go back to the queue (same mode)."""
        with self._tx():
            rows = self._db.execute(
                "SELECT key, mode FROM jobs WHERE state = 'running'").fetchall()
            for r in rows:
                self._db.execute(
                    "UPDATE jobs SET state = ?, pid = NULL, updated = ? WHERE key = ?",
                    ("render" if r["mode"] == "render" else "queued", time.time(), r["key"]))
        return [r["key"] for r in rows]

    def get(self, key: str) -> Job | None:
        """A job by dedupe key."""
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE key = ?", (key,)).fetchone()
        return self._row(row)

    def by_incident(self, incident_id: str) -> Job | None:
        """A job by incident id."""
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE incident_id = ?",
                                   (incident_id,)).fetchone()
        return self._row(row)

    def counts(self) -> dict[str, int]:
        """Number of jobs per state."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            out = {s: 0 for s in STATES}
            out.update({r["state"]: r["n"] for r in rows})
        return out


QUEUE_FILE = ".incident-queue.sqlite3"


def queue_path(runs_dir: Path) -> Path:
    """Where the durable queue lives (next to the run folders)."""
    return Path(runs_dir) / QUEUE_FILE
