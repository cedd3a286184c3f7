"""The durable queue, in process, on both backends (SQLite file and a real PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from incident_lib.service.jobqueue import JobQueue
from tests.waiting import wait_for


@pytest.fixture(params=["sqlite", "postgres"])
def open_q(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Any]:
    """open_q(**kw) -> a queue over the same storage each call (a 'restart' reopens it)."""
    opened: list[Any] = []
    if request.param == "sqlite":
        def make(**_: Any) -> Any:
            opened.append(JobQueue(tmp_path / "q.sqlite3"))
            return opened[-1]
    else:
        from incident_lib.service.pgqueue import PgJobQueue

        dsn = request.getfixturevalue("pg_dsn")

        def make(**kw: Any) -> Any:
            opened.append(PgJobQueue(dsn, **kw))
            return opened[-1]
    make.backend = request.param  # type: ignore[attr-defined]
    yield make
    for q in opened:
        q.close()




def test_queue_dedupes_concurrent_submits_and_survives_reopen(open_q: Any) -> None:
    q = open_q(lease=1.0)
    payload = {"status": "firing", "groupKey": "g"}
    with ThreadPoolExecutor(10) as ex:
        results = list(ex.map(lambda _: q.submit("k1", "inc-1", payload, None), range(10)))
    assert sum(created for _, created in results) == 1
    assert q.get("k1").notifications == 10
    job = q.claim()
    assert job is not None and job.state == "running" and job.attempts == 1
    assert q.claim() is None
    q.close()
    q = open_q(lease=1.0)  # a restart: the running job goes back to the queue
    if open_q.backend == "sqlite":
        assert q.requeue_interrupted() == ["k1"]
    else:  # a shared queue waits for the lease of the dead claimant to run out
        wait_for(lambda: q.requeue_interrupted() == ["k1"], 10)
    assert q.get("k1").state == "queued"
    job = q.claim()
    q.submit("k1", "inc-1", {"status": "resolved"}, "2026-11-20T11:25:00Z")  # while running
    done = q.finish("k1", True, job.want, completed_run=True)
    assert done.state == "render" and done.resolved_at == "2026-11-20T11:25:00Z"
    render = q.claim()
    assert render.mode == "render" and render.attempts == 3
    final = q.finish("k1", True, render.want)
    assert final.state == "done" and final.runs_completed == 1
    assert q.counts()["done"] == 1
    other, created = q.submit("k2", "inc-1", {"status": "firing", "groupKey": "g2"},
                              None)  # same id, other group
    assert created and other.incident_id != "inc-1" and other.incident_id.endswith("-k2")


def test_health_ping_and_counts_on_an_empty_queue(open_q: Any) -> None:
    q = open_q()
    q.ping()
    assert q.counts() == {"queued": 0, "running": 0, "render": 0, "done": 0, "failed": 0}


# -- PostgreSQL only: what replicas add ---------------------------------------------------


def _pg(pg_dsn: str, **kw: Any) -> Any:
    from incident_lib.service.pgqueue import PgJobQueue

    return PgJobQueue(pg_dsn, **kw)


def test_two_replicas_submitting_one_group_at_once_create_one_job(pg_dsn: str) -> None:
    replicas = [_pg(pg_dsn) for _ in range(3)]
    payload = {"status": "firing", "groupKey": "{}:{alertname=\"X\"}", "receiver": "r"}
    with ThreadPoolExecutor(12) as ex:
        results = list(ex.map(lambda i: replicas[i % 3].submit("k", "inc", payload, None),
                              range(30)))
    assert sum(created for _, created in results) == 1
    assert replicas[0].get("k").notifications == 30
    import psycopg

    with psycopg.connect(pg_dsn) as conn:  # the unique constraint is what holds it
        row = conn.execute("SELECT count(*) FROM incident_jobs WHERE receiver = 'r' AND "
                           "group_key = %s", (payload["groupKey"],)).fetchone()
        assert row[0] == 1
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO incident_jobs (key, receiver, group_key, incident_id, "
                         "state, payload, received, updated) VALUES ('k-other', 'r', %s, "
                         "'inc-other', 'queued', '{}', 0, 0)", (payload["groupKey"],))
    for q in replicas:
        q.close()


def test_claims_take_severity_first_then_age(pg_dsn: str) -> None:
    q = _pg(pg_dsn)
    for i, sev in enumerate(["info", "warning", "critical", None, "P1", "critical"]):
        labels = {"severity": sev} if sev else {}
        q.submit(f"k{i}", f"inc-{i}", {"status": "firing", "groupKey": f"g{i}",
                                       "commonLabels": labels, "alerts": [{"labels": {}}]}, None)
        time.sleep(0.01)  # distinct receipt times (the age order under test)
    order = [q.claim().key for _ in range(6)]
    assert order == ["k2", "k5", "k4", "k1", "k3", "k0"]
    assert q.claim() is None
    q.close()


def test_an_expired_lease_is_claimed_again_and_the_old_owner_cannot_finish(pg_dsn: str) -> None:
    a, b = _pg(pg_dsn, lease=1.0, owner="a"), _pg(pg_dsn, lease=1.0, owner="b")
    a.submit("k", "inc", {"status": "firing", "groupKey": "g"}, None)
    first = a.claim()
    assert first is not None and b.claim() is None  # held: not claimable
    assert a.renew("k")
    second = wait_for(b.claim, 10)  # a stops renewing: the lease runs out
    assert second.key == "k" and second.attempts == 2
    assert not a.renew("k")  # a learns it lost the job
    after = a.finish("k", True, first.want, completed_run=True)
    assert after.state == "running" and after.runs_completed == 0  # a's finish changed nothing
    done = b.finish("k", True, second.want, completed_run=True)
    assert done.state == "done" and done.runs_completed == 1
    a.close()
    b.close()


def test_a_replica_shutting_down_releases_its_job_at_once(pg_dsn: str) -> None:
    a, b = _pg(pg_dsn, lease=600, owner="a"), _pg(pg_dsn, lease=600, owner="b")
    a.submit("k", "inc", {"status": "firing", "groupKey": "g"}, None)
    assert a.claim() is not None and b.claim() is None
    a.release("k")  # without it, b would wait the 600 s lease out
    job = b.claim()
    assert job is not None and job.key == "k" and job.attempts == 2
    assert not a.renew("k")
    a.close()
    b.close()


def test_schema_is_created_versioned_and_a_newer_one_is_refused(pg_dsn: str) -> None:
    import psycopg

    from incident_lib.core.errors import ConfigError
    from incident_lib.service.pgqueue import SCHEMA_VERSION

    with ThreadPoolExecutor(4) as ex:  # replicas starting together migrate once
        queues = list(ex.map(lambda _: _pg(pg_dsn), range(4)))
    assert queues[0].schema_version() == SCHEMA_VERSION
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM incident_schema").fetchone()[0] == \
            SCHEMA_VERSION
        conn.execute("INSERT INTO incident_schema VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(ConfigError, match="newer than this program"):
        _pg(pg_dsn)
    for q in queues:
        q.close()


def test_an_unreachable_database_is_one_line_without_the_password() -> None:
    from incident_lib.core.errors import ConfigError
    from tests.prom_servers import free_port

    dsn = f"postgresql://incident:CANARY-pw-123@127.0.0.1:{free_port()}/x"
    with pytest.raises(ConfigError) as err:
        _pg(dsn, dsn_env="INCIDENT_PG_DSN", connect_timeout=2)
    text = str(err.value)
    assert "INCIDENT_PG_DSN" in text and "CANARY" not in text and "\n" not in text
