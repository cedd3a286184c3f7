"""Durable job queue in PostgreSQL (psycopg 3), shared by several `incident serve` replicas.

Same rows, states and methods as the SQLite queue (jobqueue.py), plus what replicas need:
- dedupe: (receiver, group_key, episode) is a unique constraint, so two replicas receiving the
  same group at once create one job (`INSERT ... ON CONFLICT DO NOTHING`);
- claims: `SELECT ... FOR UPDATE SKIP LOCKED`, ordered by priority (from the alert's
  `severity` label) and then by age;
- leases: a claimed job carries a random token and `lease_until` (database time). The replica
  renews it while its worker runs; a job whose lease expired (replica killed, machine gone) is
  queued again and claimed by another replica. `finish` and `renew` only act while the token
  still matches, so a replica that lost its lease can never mark the job done;
- the schema is created and migrated by the program: `incident_schema` holds the version,
  migrations run under an advisory lock so replicas starting together apply them once.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..core.errors import ConfigError, InputError
from ..core.model import Severity
from .jobqueue import STATES, Job

__all__ = ["PgJobQueue", "SCHEMA_VERSION", "DEFAULT_LEASE", "alert_priority"]

DEFAULT_LEASE = 30.0  # seconds a claim lasts without renewal; renewed every lease/3
_MIGRATION_LOCK = 7_154_221_017  # pg_advisory_xact_lock id for schema changes
# Ordered migrations: version -> statements. Never edit a released one; append a new version.
_MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE incident_jobs (
            key TEXT PRIMARY KEY,
            receiver TEXT NOT NULL,
            group_key TEXT NOT NULL,
            episode INTEGER NOT NULL DEFAULT 1,
            incident_id TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            mode TEXT NOT NULL DEFAULT 'run',
            priority SMALLINT NOT NULL DEFAULT 2,
            payload JSONB NOT NULL,
            received DOUBLE PRECISION NOT NULL,
            updated DOUBLE PRECISION NOT NULL,
            started DOUBLE PRECISION,
            ended DOUBLE PRECISION,
            attempts INTEGER NOT NULL DEFAULT 0,
            runs_completed INTEGER NOT NULL DEFAULT 0,
            notifications INTEGER NOT NULL DEFAULT 1,
            last_status TEXT,
            resolved_at TEXT,
            want INTEGER NOT NULL DEFAULT 0,
            have INTEGER NOT NULL DEFAULT 0,
            pid INTEGER,
            error TEXT,
            owner TEXT,
            lease_token TEXT,
            lease_until TIMESTAMPTZ,
            CONSTRAINT incident_jobs_group UNIQUE (receiver, group_key, episode)
        )""",
        "CREATE INDEX incident_jobs_waiting ON incident_jobs (priority, received) "
        "WHERE state IN ('queued', 'render')",
        "CREATE INDEX incident_jobs_leases ON incident_jobs (lease_until) "
        "WHERE state = 'running'",
    ],
}
SCHEMA_VERSION = max(_MIGRATIONS)
_JOB_FIELDS = ("key", "incident_id", "state", "mode", "payload", "received", "updated",
               "started", "ended", "attempts", "runs_completed", "notifications", "last_status",
               "resolved_at", "want", "have", "pid", "error")
_COLUMNS = ", ".join(_JOB_FIELDS)
# Usual Alertmanager severity words that are not on the P0-P4 scale; anything unknown is P2.
_WORDS = {"page": 1, "warning": 2, "warn": 2, "ticket": 3, "info": 4, "none": 4}


def alert_priority(payload: dict[str, Any]) -> int:
    """0 (first) .. 4 from the group's `severity` label (P0-P4, SEV levels, critical/high/
    medium/low, warning, info); 2 when the label is missing or unknown."""
    labels = {**(payload.get("alerts") or [{}])[0].get("labels", {}),
              **(payload.get("commonLabels") or {})}
    value = str(labels.get("severity", "")).strip().lower()
    if not value:
        return 2
    try:
        return int(Severity.parse(value))
    except InputError:
        return _WORDS.get(value, 2)


def _episode(key: str) -> int:
    """Episode number from a job key (`<base>` is 1, `<base>-<n>` is n; see app._episode)."""
    tail = key.rsplit("-", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else 1


class PgJobQueue:
    """PostgreSQL-backed queue; thread-safe in one process (one connection, one lock)."""

    def __init__(self, dsn: str, *, lease: float = DEFAULT_LEASE, owner: str | None = None,
                 dsn_env: str | None = None, connect_timeout: int = 5) -> None:
        import psycopg

        self._dsn = dsn
        self.dsn_env = dsn_env
        self.lease = float(lease)
        self.renew_every: float | None = max(0.2, self.lease / 3)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self._timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: Any = None
        self._leases: dict[str, str] = {}  # key -> token of the jobs this process claimed
        with self._lock:
            try:
                conn = self._connection()
            except psycopg.OperationalError as exc:  # at startup: a clear one-line error
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise ConfigError(f"PostgreSQL queue unreachable ({type(exc).__name__}: "
                                  f"{_no_secrets(first, dsn)[:200]}): check the DSN in "
                                  f"{dsn_env or 'the queue settings'} and that the "
                                  "server is up") from None
            self._migrate(conn)

    # -- connection and schema --------------------------------------------------------------

    def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self._dsn, autocommit=True,
                                         connect_timeout=self._timeout,
                                         application_name="incident-serve")
        return self._conn

    @staticmethod
    def _migrate(conn: Any) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS incident_schema "
                         "(version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM incident_schema").fetchone()
            have = row[0] or 0
            if have > SCHEMA_VERSION:
                raise ConfigError(f"the PostgreSQL queue has schema version {have}, newer than "
                                  f"this program's {SCHEMA_VERSION}: upgrade incident_lib on "
                                  "every replica")
            for version in sorted(v for v in _MIGRATIONS if v > have):
                for stmt in _MIGRATIONS[version]:
                    conn.execute(stmt)
                conn.execute("INSERT INTO incident_schema (version) VALUES (%s)", (version,))

    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        with self._lock:
            row = self._connection().execute(
                "SELECT max(version) FROM incident_schema").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One transaction on the shared connection (reconnecting if it broke)."""
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                yield conn

    def _one(self, conn: Any, where: str, args: tuple) -> Job | None:
        row = conn.execute(f"SELECT {_COLUMNS} FROM incident_jobs WHERE {where}",  # noqa: S608
                           args).fetchone()
        return _job(row)

    # -- the queue interface (as jobqueue.JobQueue) ------------------------------------------

    def child_args(self) -> list[str]:
        """How a worker child opens this queue (the DSN stays in the environment)."""
        if not self.dsn_env:
            raise ConfigError("a PostgreSQL queue for workers needs dsn_env (the variable "
                              "holding the DSN)")
        return ["--queue-dsn-env", self.dsn_env]

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self._lock:
            try:
                self._connection().execute("SELECT 1")
            except Exception:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                raise

    def submit(self, key: str, incident_id: str, payload: dict[str, Any],
               resolved_at: str | None) -> tuple[Job, bool]:
        """Insert a new job, or attach a repeat/update to the existing one; (job, created)."""
        now = time.time()
        status = str(payload.get("status"))
        body = json.dumps(payload)
        with self._tx() as conn:
            # serialise submits of one group (two replicas, same groupKey) on a row-free lock
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
            other = conn.execute("SELECT key FROM incident_jobs WHERE incident_id = %s",
                                 (incident_id,)).fetchone()
            if other is not None and other[0] != key:  # id collision: widen it
                incident_id = f"{incident_id[:66]}-{key[:12]}"
            cur = conn.execute(
                "INSERT INTO incident_jobs (key, receiver, group_key, episode, incident_id, "
                "state, priority, payload, received, updated, last_status, resolved_at) "
                "VALUES (%s, %s, %s, %s, %s, 'queued', %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (key, str(payload.get("receiver", "")), str(payload.get("groupKey", "")),
                 _episode(key), incident_id, alert_priority(payload), body, now, now, status,
                 resolved_at))
            created = cur.rowcount == 1
            if not created:
                conn.execute(
                    "UPDATE incident_jobs SET notifications = notifications + 1, updated = %s, "
                    "last_status = %s, payload = %s WHERE key = %s", (now, status, body, key))
                if resolved_at:
                    conn.execute(
                        "UPDATE incident_jobs SET resolved_at = %s, want = want + 1, "
                        "mode = CASE WHEN state IN ('done', 'failed') THEN 'render' "
                        "ELSE mode END, "
                        "state = CASE WHEN state IN ('done', 'failed') THEN 'render' "
                        "ELSE state END WHERE key = %s", (resolved_at, key))
            job = self._one(conn, "key = %s", (key,))
        assert job is not None
        return job, created

    def _expire(self, conn: Any) -> list[str]:
        """Running jobs whose lease ran out go back to the queue (same mode)."""
        rows = conn.execute(
            "UPDATE incident_jobs SET state = CASE WHEN mode = 'render' THEN 'render' "
            "ELSE 'queued' END, pid = NULL, owner = NULL, lease_token = NULL, "
            "lease_until = NULL, updated = %s "
            "WHERE state = 'running' AND lease_until < now() RETURNING key",
            (time.time(),)).fetchall()
        return [r[0] for r in rows]

    def claim(self, pid: int | None = None) -> Job | None:
        """Take the most severe, then oldest, waiting job under a fresh lease; None if none."""
        now = time.time()
        token = secrets.token_hex(16)
        with self._tx() as conn:
            self._expire(conn)
            row = conn.execute(
                "SELECT key FROM incident_jobs WHERE state IN ('queued', 'render') "
                "ORDER BY priority, received LIMIT 1 FOR UPDATE SKIP LOCKED").fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE incident_jobs SET mode = CASE WHEN state = 'render' THEN 'render' "
                "ELSE 'run' END, state = 'running', started = %s, updated = %s, "
                "attempts = attempts + 1, pid = %s, error = NULL, owner = %s, "
                "lease_token = %s, lease_until = now() + make_interval(secs => %s) "
                "WHERE key = %s", (now, now, pid, self.owner, token, self.lease, row[0]))
            job = self._one(conn, "key = %s", (row[0],))
        assert job is not None
        self._leases[job.key] = token
        return job

    def renew(self, key: str) -> bool:
        """Extend the lease of a job this process claimed; False once it is no longer ours."""
        token = self._leases.get(key)
        if token is None:
            return False
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE incident_jobs SET lease_until = now() + make_interval(secs => %s) "
                "WHERE key = %s AND state = 'running' AND lease_token = %s",
                (self.lease, key, token))
            ok = cur.rowcount == 1
        if not ok:
            self._leases.pop(key, None)
        return ok

    def release(self, key: str) -> None:
        """Give back a job whose worker this process stopped (a replica shutting down): it is
        queued again at once instead of after its lease runs out."""
        token = self._leases.pop(key, None)
        with self._tx() as conn:
            conn.execute(
                "UPDATE incident_jobs SET state = CASE WHEN mode = 'render' THEN 'render' "
                "ELSE 'queued' END, pid = NULL, owner = NULL, lease_token = NULL, "
                "lease_until = NULL, updated = %s "
                "WHERE key = %s AND state = 'running' AND lease_token = %s",
                (time.time(), key, token))

    def set_pid(self, key: str, pid: int) -> None:
        """Record the worker process of a running job (while this process holds it)."""
        with self._tx() as conn:
            conn.execute("UPDATE incident_jobs SET pid = %s WHERE key = %s AND lease_token = %s",
                         (pid, key, self._leases.get(key)))

    def finish(self, key: str, ok: bool, have: int, error: str | None = None,
               completed_run: bool = False) -> Job:
        """Mark a job done/failed (only while this process holds its lease); if a resolve
        arrived meanwhile, queue a re-render."""
        now = time.time()
        token = self._leases.pop(key, None)
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE incident_jobs SET have = GREATEST(have, %s), ended = %s, updated = %s, "
                "pid = NULL, error = %s, runs_completed = runs_completed + %s, state = %s, "
                "owner = NULL, lease_token = NULL, lease_until = NULL "
                "WHERE key = %s AND state = 'running' AND lease_token = %s",
                (have, now, now, error, 1 if completed_run else 0,
                 "done" if ok else "failed", key, token))
            if cur.rowcount != 1:
                print(f"incident serve: job {key} finished after this replica lost its lease: "
                      "not recorded here (the replica holding it records it)", file=sys.stderr)
            conn.execute(
                "UPDATE incident_jobs SET state = 'render', mode = 'render' "
                "WHERE key = %s AND want > have AND state = 'done'", (key,))
            job = self._one(conn, "key = %s", (key,))
        assert job is not None
        return job

    def requeue_interrupted(self) -> list[str]:
        """Jobs whose lease expired go back to the queue. Jobs other replicas hold under a
        live lease are left alone (a restart of one replica must not steal them)."""
        with self._tx() as conn:
            return self._expire(conn)

    def get(self, key: str) -> Job | None:
        """A job by dedupe key."""
        with self._tx() as conn:
            return self._one(conn, "key = %s", (key,))

    def by_incident(self, incident_id: str) -> Job | None:
        """A job by incident id."""
        with self._tx() as conn:
            return self._one(conn, "incident_id = %s", (incident_id,))

    def counts(self) -> dict[str, int]:
        """Number of jobs per state (over every replica)."""
        with self._tx() as conn:
            rows = conn.execute("SELECT state, count(*) FROM incident_jobs GROUP BY state")
            out = {s: 0 for s in STATES}
            out.update({r[0]: int(r[1]) for r in rows})
        return out


def _job(row: tuple | None) -> Job | None:
    if row is None:
        return None
    d = dict(zip(_JOB_FIELDS, row, strict=True))
    if isinstance(d["payload"], str):
        d["payload"] = json.loads(d["payload"])
    return Job(**d)


def _no_secrets(text: str, dsn: str) -> str:
    """An error line with the DSN's password (if any) removed."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        password = conninfo_to_dict(dsn).get("password")
    except Exception:  # noqa: BLE001 - an unparsable DSN: hide it whole
        return text.replace(dsn, "<dsn>")
    return text.replace(str(password), "***") if password else text
