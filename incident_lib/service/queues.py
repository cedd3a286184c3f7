"""Which durable queue `incident serve` uses: the `queue:` section of the config.

    queue: {kind: sqlite}                                   # default: runs/.incident-queue.sqlite3
    queue: {kind: postgres, dsn_env: INCIDENT_PG_DSN}       # replicas share one PostgreSQL
    queue: {kind: postgres, dsn_env: INCIDENT_PG_DSN, lease_seconds: 30}

Both implementations offer the same methods (`JobQueueLike`); the DSN (it may hold a password)
is read from the environment variable named by `dsn_env`, never from the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from ..core.errors import ConfigError
from .jobqueue import Job, JobQueue, queue_path

__all__ = ["JobQueueLike", "open_queue", "QUEUE_KINDS"]

QUEUE_KINDS = ("sqlite", "postgres")


class JobQueueLike(Protocol):
    """What the app and the worker pool need from a queue."""

    renew_every: float | None

    def submit(self, key: str, incident_id: str, payload: dict[str, Any],
               resolved_at: str | None) -> tuple[Job, bool]: ...
    def claim(self, pid: int | None = None) -> Job | None: ...
    def renew(self, key: str) -> bool: ...
    def set_pid(self, key: str, pid: int) -> None: ...
    def finish(self, key: str, ok: bool, have: int, error: str | None = None,
               completed_run: bool = False) -> Job: ...
    def requeue_interrupted(self) -> list[str]: ...
    def get(self, key: str) -> Job | None: ...
    def by_incident(self, incident_id: str) -> Job | None: ...
    def counts(self) -> dict[str, int]: ...
    def ping(self) -> None: ...
    def child_args(self) -> list[str]: ...
    def close(self) -> None: ...


def open_queue(config: dict[str, Any], runs_dir: Path) -> JobQueueLike:
    """The queue the config asks for (SQLite next to the runs when it says nothing)."""
    spec = config.get("queue") or {"kind": "sqlite"}
    if not isinstance(spec, dict):
        raise ConfigError("config: queue must be a mapping such as {kind: postgres, "
                          "dsn_env: INCIDENT_PG_DSN}")
    kind = spec.get("kind", "sqlite")
    if kind not in QUEUE_KINDS:
        raise ConfigError(f"config: queue.kind is {str(kind)[:40]!r}: use sqlite or postgres")
    if "dsn" in spec or "password" in spec:
        raise ConfigError("config: queue holds a connection string or password: put the DSN "
                          "in an environment variable and name it with queue.dsn_env")
    if kind == "sqlite":
        return JobQueue(queue_path(runs_dir))
    var = spec.get("dsn_env")
    if not isinstance(var, str) or not var:
        raise ConfigError("config: queue.dsn_env is missing: name the environment variable "
                          "holding the PostgreSQL DSN (e.g. dsn_env: INCIDENT_PG_DSN)")
    dsn = os.environ.get(var, "").strip()
    if not dsn:
        raise ConfigError(f"config: queue.dsn_env names {var[:60]}, which is empty: set it to "
                          "a PostgreSQL DSN such as postgresql://incident@db/incident")
    lease = spec.get("lease_seconds", 30)
    if isinstance(lease, bool) or not isinstance(lease, int | float) or not 1 <= lease <= 3600:
        raise ConfigError("config: queue.lease_seconds must be a number of seconds in 1..3600")
    from .pgqueue import PgJobQueue

    return PgJobQueue(dsn, lease=float(lease), dsn_env=var)
