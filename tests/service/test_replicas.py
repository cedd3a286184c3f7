"""Several `incident serve` replicas on one real PostgreSQL queue.

The kill test runs 3 replicas (real app, real uvicorn, real worker pool and child processes,
real PostgreSQL) but swaps the investigation each worker child runs for a cheap one
(tests/service/replica_kit/cheap_worker.py: read the job, hold it 0.4 s, write report.md
atomically). A demo investigation costs ~45 s of CPU; 200 of them cannot run in CI. What the
kill test proves is the queue's and the pool's part: dedupe across replicas, leases, reclaim
after SIGKILL, no job held by two workers at once, one report per group, a late replica
draining the backlog. `test_a_replica_on_postgres_runs_a_real_investigation` runs the real
notebooks (`incident serve` as users start it) on PostgreSQL end to end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.prom_servers import Proc, free_port, start_server, wait_http
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "replica-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GROUPS = 200
SEVERITIES = ["critical", "warning", "info", "page", "P1"]


def _config(demo_data: Path, folder: Path, lease: float) -> Path:
    """The demo config (absolute paths) with a PostgreSQL queue."""
    cfg = yaml.safe_load((demo_data / "incident.yaml").read_text())
    for spec in cfg["sources"].values():
        if isinstance(spec, dict) and "path" in spec:
            spec["path"] = str(demo_data / spec["path"])
    cfg["topology"] = str(demo_data / cfg["topology"])
    cfg["queue"] = {"kind": "postgres", "dsn_env": "INCIDENT_PG_DSN", "lease_seconds": lease}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "incident-pg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path




def _replica(work: Path, config: Path, runs: Path, dsn: str, workers: int = 2) -> Proc:
    """A replica with the cheap worker child (held while work/gate exists)."""
    port = free_port()
    env = {**os.environ, "INCIDENT_RUNS_DIR": str(runs), "INCIDENT_WEBHOOK_TOKEN": TOKEN,
           "INCIDENT_PG_DSN": dsn, "PYTHONPATH": str(ROOT), "CHEAP_GATE": str(work / "gate")}
    log = work / f"replica-{port}.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.service.replica_kit.replica", "--port", str(port),
             "--config", str(config), "--runs", str(runs), "--workers", str(workers),
             "--worker-module", "tests.service.replica_kit.cheap_worker"],
            stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", proc, log, timeout=60)
    except BaseException:
        Proc(proc, url, log).stop(signal.SIGKILL)
        raise
    return Proc(proc, url, log, {"port": port})


LONG = 4.0  # seconds every 20th group's investigation takes: longer than the 3 s lease


def _payload(demo_data: Path, i: int) -> dict[str, Any]:
    p = json.loads((demo_data / "alert.json").read_text())
    p["groupKey"] = f'{{}}:{{alertname="HighErrorRate", shard="{i}"}}'
    if i % 20 == 10:
        p["commonLabels"]["hold_seconds"] = str(LONG)
    for labels in (p["commonLabels"], p["alerts"][0]["labels"]):
        labels["severity"] = SEVERITIES[i % len(SEVERITIES)]
    return p


def _intervals(run: Path) -> list[tuple[int, int, float, tuple[str, float] | None]]:
    """(pid, replica pid, start, (end|stop, time) or None) of every worker that held the
    group's job (None: SIGKILLed with its replica)."""
    starts: dict[int, tuple[int, float]] = {}
    ends: dict[int, tuple[str, float]] = {}
    for line in (run / "claims.log").read_text().splitlines():
        what, pid, ppid, at = line.split()
        if what == "start":
            starts[int(pid)] = (int(ppid), float(at))
        else:
            ends[int(pid)] = (what, float(at))
    return [(pid, ppid, t, ends.get(pid))
            for pid, (ppid, t) in sorted(starts.items(), key=lambda x: x[1][1])]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_three_replicas_sigkill_one_every_group_reported_once(
        demo_data: Path, tmp_path: Path, pg_dsn: str) -> None:
    """200 groups, each sent to all 3 replicas (plus repeats); SIGKILL one replica mid-run,
    stop the other two while work remains; a replica started later drains the backlog."""
    import psycopg

    runs = tmp_path / "runs"
    config = _config(demo_data, tmp_path, lease=3)
    gate = tmp_path / "gate"
    gate.touch()  # workers hold their first jobs mid-run until every alert is sent
    with ThreadPoolExecutor(3) as ex:
        replicas = list(ex.map(lambda _: _replica(tmp_path, config, runs, pg_dsn), range(3)))
    late: Proc | None = None
    death: dict[int, float] = {}  # replica pid -> time its exit was observed
    try:
        sends = [(i, r) for i in range(GROUPS) for r in range(3)]
        sends += [(i, i % 3) for i in range(0, GROUPS, 4)]  # repeats of a quarter of them

        def post(item: tuple[int, int]) -> int:
            i, r = item
            resp = httpx.post(f"{replicas[r].url}/webhook", json=_payload(demo_data, i),
                              headers=AUTH, timeout=30)
            return resp.status_code

        with ThreadPoolExecutor(12) as ex:
            codes = list(ex.map(post, sends))
        assert codes == [202] * len(sends)

        db = psycopg.connect(pg_dsn, autocommit=True)

        def done() -> int:
            return db.execute("SELECT count(*) FROM incident_jobs WHERE state = 'done'"
                              ).fetchone()[0]

        victim = replicas[0]
        owner = f"%:{victim.proc.pid}"

        def victim_busy() -> list[tuple[str, int]]:
            return db.execute("SELECT key, pid FROM incident_jobs WHERE state = 'running' "
                              "AND owner LIKE %s AND pid IS NOT NULL", (owner,)).fetchall()

        wait_for(lambda: len(victim_busy()) == 2, 60, victim.tail)
        held = victim_busy()
        assert done() == 0
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        death[victim.proc.pid] = time.time()
        for _, pid in held:  # its workers die with it (PR_SET_PDEATHSIG)
            wait_for(lambda pid=pid: not _alive(pid), 10, lambda pid=pid: f"worker {pid} survived")
        gate.unlink()  # the other replicas' workers go on

        wait_for(lambda: done() >= 100, 120, lambda: f"done={done()}")
        for r in replicas[1:]:  # the other two stop while work remains
            t_stop = time.time()
            r.stop()
            death[r.proc.pid] = time.time()
            r.extra["stop"] = (t_stop, death[r.proc.pid], r.proc.returncode)
        left = GROUPS - done()
        assert left > 0, "the backlog drained before the replicas stopped: nothing to prove"

        late = _replica(tmp_path, config, runs, pg_dsn, workers=3)
        wait_for(lambda: done() == GROUPS, 180, lambda: f"done={done()} {late.tail()}")

        rows = db.execute("SELECT incident_id, state, attempts, runs_completed, notifications "
                          "FROM incident_jobs").fetchall()
        db.close()
    finally:
        for r in [*replicas, *([late] if late else [])]:
            r.stop()

    assert len(rows) == GROUPS  # 3 replicas x 200 groups + repeats: one job per group
    assert {r[1] for r in rows} == {"done"} and {r[3] for r in rows} == {1}
    assert sum(r[4] for r in rows) == len(sends)  # every notification was counted once
    attempts = {r[0]: r[2] for r in rows}
    killed = {next(r[0] for r in rows if r[0].endswith(key[:6])) for key, _ in held}
    for iid in killed:  # the killed replica's jobs ran again elsewhere
        assert attempts[iid] == 2, (iid, attempts[iid])
    # every 20th group ran LONG > lease: without renewals another worker would have taken it
    # while it ran, which the overlap check below catches
    for incident_id, *_ in rows:
        run = runs / incident_id
        report = (run / "report.md").read_text()
        assert incident_id in report
        spans = _intervals(run)
        finished = [s for s in spans if s[3] is not None and s[3][0] == "end"]
        assert len(finished) == 1, (f"{incident_id}: {len(finished)} workers finished: {spans}"
                                    + f"\nkilled {victim.proc.pid}, stops "
                                    + str({r.proc.pid: r.extra.get("stop") for r in replicas})
                                    + "".join(f"\n{p.name}: {p.read_text()[-1500:]}"
                                              for p in tmp_path.glob("replica-*.log")))
        assert f"pid: {finished[-1][0]}" in report  # the report is the finishing worker's
        # no job held by two workers at once: a worker without an end died no later than the
        # observed exit of its replica, and every next claim starts after the previous ended
        for (_, ppid, _, end), (_, _, nxt, _) in zip(spans, spans[1:], strict=False):
            stop = end[1] if end is not None else death[ppid]
            assert nxt >= stop - 0.05, f"{incident_id}: overlapping claims {spans}"
    reports = [p for p in runs.glob("*/report.md")]
    assert len(reports) == GROUPS
    assert not list(runs.glob("*/.report.md.*"))  # nothing half-written


def test_a_replica_on_postgres_runs_a_real_investigation(demo_data: Path, tmp_path: Path,
                                                         pg_dsn: str) -> None:
    """`incident serve` as users start it, queue on PostgreSQL, the real notebooks: the demo
    alert becomes one report; /metrics and /healthz say what happened."""
    runs = tmp_path / "runs"
    config = _config(demo_data, tmp_path, lease=10)
    srv = start_server(tmp_path, config=config, runs=runs, token=TOKEN, workers=1,
                       extra_env={"INCIDENT_PG_DSN": pg_dsn})
    try:
        payload = json.loads((demo_data / "alert.json").read_text())
        answers = [httpx.post(f"{srv.url}/webhook", json=payload, headers=AUTH, timeout=10)
                   for _ in range(3)]
        assert [a.status_code for a in answers] == [202] * 3
        iid = answers[0].json()["incident_id"]

        def job() -> dict[str, Any]:
            return httpx.get(f"{srv.url}/incidents/{iid}", headers=AUTH, timeout=5).json()

        final = wait_for(lambda: (j := job())["state"] in ("done", "failed") and j, 240, srv.tail)
        assert final["state"] == "done" and final["runs_completed"] == 1, final
        st = json.loads((runs / iid / "status.json").read_text())
        assert st["state"] in ("ok", "partial")
        assert "checkout" in (runs / iid / "report.md").read_text()
        health = httpx.get(f"{srv.url}/healthz", timeout=5).json()
        assert health["queue"] == "reachable" and health["jobs"]["done"] == 1
        text = httpx.get(f"{srv.url}/metrics", timeout=5).text
        from prometheus_client.parser import text_string_to_metric_families

        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for fam in text_string_to_metric_families(text) for s in fam.samples}
        assert samples[("incident_webhook_requests_total", (("code", "202"),))] == 3
        assert samples[("incident_run_duration_seconds_count",
                        (("mode", "run"), ("outcome", "done")))] == 1
        assert samples[("incident_jobs", (("state", "done"),))] == 1
        assert samples[("incident_queue_depth", ())] == 0
        assert samples[("incident_queue_up", ())] == 1
    finally:
        srv.stop()


def test_healthz_is_503_when_postgres_goes_away(demo_data: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A replica whose database stops answers /healthz 503 and /metrics queue_up 0."""
    from starlette.testclient import TestClient

    from incident_lib.service.app import create_app
    from tests.pg_server import start_postgres

    pg = start_postgres()
    try:
        monkeypatch.setenv("INCIDENT_PG_DSN", pg.dsn)
        app = create_app(_config(demo_data, tmp_path, lease=5), tmp_path / "runs", TOKEN,
                         start_workers=False)
        with TestClient(app) as client:
            ok = client.get("/healthz")
            assert ok.status_code == 200 and ok.json()["queue"] == "reachable"
            pg.stop()
            down = client.get("/healthz")
            assert down.status_code == 503 and down.json()["queue"] == "unreachable"
            assert "incident_queue_up 0.0" in client.get("/metrics").text
            r = client.post("/webhook", json=_payload(demo_data, 1), headers=AUTH)
            assert r.status_code == 503  # Alertmanager retries: nothing is lost
    finally:
        pg.stop()
