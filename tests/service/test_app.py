"""`incident serve` as a real process: auth, limits, dedupe, resolve, SIGKILL + restart."""

from __future__ import annotations

import copy
import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from incident_lib.pipeline.alerts import incident_from_alert
from incident_lib.service.app import DEFAULT_MAX_BODY
from incident_lib.service.jobqueue import QUEUE_FILE
from tests.prom_servers import Proc, start_server
from tests.waiting import wait_for

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FINAL = ("done", "failed")


def _payload(demo_data: Path, group: str | None = None) -> dict[str, Any]:
    p = json.loads((demo_data / "alert.json").read_text())
    if group:
        p["groupKey"] = group
    return p


def _job(server: Proc, incident_id: str) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/incidents/{incident_id}", headers=AUTH, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()




@pytest.fixture(scope="module")
def server(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """One `incident serve` (2 workers) over the demo data, with its own runs folder."""
    work = tmp_path_factory.mktemp("serve")
    proc = start_server(work, config=demo_data / "incident.yaml", runs=work / "runs",
                        token=TOKEN)
    proc.extra["runs"] = work / "runs"
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def first_run(server: Proc, demo_data: Path) -> dict[str, Any]:
    """Ten identical concurrent POSTs of the demo alert, then wait for the one run to finish."""
    payload = _payload(demo_data)

    def post(_: int) -> tuple[int, dict[str, Any], float]:
        t0 = time.monotonic()
        r = httpx.post(f"{server.url}/webhook", json=payload, headers=AUTH, timeout=5)
        return r.status_code, r.json(), time.monotonic() - t0

    with ThreadPoolExecutor(10) as ex:
        answers = list(ex.map(post, range(10)))
    iid = answers[0][1]["incident_id"]
    job = wait_for(lambda: (j := _job(server, iid))["state"] in FINAL and j, 180,
                lambda: server.tail())
    return {"answers": answers, "incident_id": iid, "job": job,
            "run": server.extra["runs"] / iid}


def test_health_answers_without_auth(server: Proc) -> None:
    r = httpx.get(f"{server.url}/healthz", timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True and body["workers"] == 2 and set(body["jobs"]) >= {"queued", "done"}


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Bearer {TOKEN[:-1]}X", TOKEN])
def test_wrong_or_missing_token_is_401(server: Proc, demo_data: Path, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    r = httpx.post(f"{server.url}/webhook", json=_payload(demo_data, "g-401"), headers=headers,
                   timeout=5)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server.url}/incidents/x", headers=headers, timeout=5).status_code == 401


def test_body_over_the_limit_is_413(server: Proc) -> None:
    body = b'{"version": "4", "pad": "' + b"x" * (DEFAULT_MAX_BODY + 1024) + b'"}'
    r = httpx.post(f"{server.url}/webhook", content=body, headers=AUTH, timeout=30)
    assert r.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the streamed size is checked
        for _ in range(DEFAULT_MAX_BODY // (1 << 20) + 2):
            yield b"x" * (1 << 20)

    r = httpx.post(f"{server.url}/webhook", content=chunks(), headers=AUTH, timeout=30)
    assert r.status_code == 413


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[" * 200_000 + b"]" * 200_000, "not valid JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (json.dumps({"version": "3", "alerts": []}).encode(), "'version' must be \"4\""),
    (None, "alerts[0].labels must map strings to strings"),
    ("nolabel", "no 'service'"),
])
def test_bad_payload_is_400_and_server_stays_up(server: Proc, demo_data: Path,
                                                body: bytes | str | None, message: str) -> None:
    if body is None or body == "nolabel":
        p = _payload(demo_data, "g-400")
        if body is None:
            p["alerts"][0]["labels"]["x"] = {"nested": 1}
        else:
            del p["commonLabels"]["service"]
            del p["alerts"][0]["labels"]["service"]
        body = json.dumps(p).encode()
    r = httpx.post(f"{server.url}/webhook", content=body, headers=AUTH, timeout=5)
    assert r.status_code == 400 and message in r.json()["error"], r.text
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_ten_identical_concurrent_posts_give_one_run(first_run: dict[str, Any]) -> None:
    answers = first_run["answers"]
    assert [a[0] for a in answers] == [202] * 10
    assert max(a[2] for a in answers) < 1.0
    assert {a[1]["incident_id"] for a in answers} == {first_run["incident_id"]}
    assert sorted(a[1]["duplicate"] for a in answers) == [False] + [True] * 9
    job = first_run["job"]
    assert job["state"] == "done", job
    assert job["attempts"] == 1 and job["runs_completed"] == 1 and job["notifications"] == 10
    runs = [p.name for p in first_run["run"].parent.iterdir() if not p.name.startswith(".")]
    assert runs == [first_run["incident_id"]]
    st = json.loads((first_run["run"] / "status.json").read_text())
    assert st["state"] in ("ok", "partial") and st["ended"]
    assert {s["state"] for s in st["stages"].values()} <= {"ok", "failed", "timeout"}
    tri = json.loads((first_run["run"] / "findings" / "triage.json").read_text())["data"]
    assert tri["status_update"]["text"]
    assert "payments" in (first_run["run"] / "report.md").read_text()


def test_resolved_records_time_and_rerenders_report(server: Proc, demo_data: Path,
                                                    first_run: dict[str, Any]) -> None:
    run = first_run["run"]
    report = run / "report.md"
    before = report.stat().st_mtime_ns
    p = _payload(demo_data)
    p["status"] = "resolved"
    p["alerts"][0]["status"] = "resolved"
    p["alerts"][0]["endsAt"] = "2026-11-20T11:25:00Z"
    r = httpx.post(f"{server.url}/webhook", json=p, headers=AUTH, timeout=5)
    assert r.status_code == 202 and r.json()["duplicate"] is True
    iid = first_run["incident_id"]
    job = wait_for(lambda: (j := _job(server, iid))["state"] == "done" and j["mode"] == "render"
                and j, 60, server.tail)
    assert job["resolved_at"] == "2026-11-20T11:25:00Z" and job["last_status"] == "resolved"
    assert job["runs_completed"] == 1  # a re-render, not a second investigation
    assert json.loads((run / "incident.json").read_text())["resolved_at"] == \
        "2026-11-20T11:25:00Z"
    assert report.stat().st_mtime_ns > before
    assert "alert resolved" in report.read_text()


def test_sigkill_mid_run_then_restart_completes_once(demo_data: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    srv = start_server(tmp_path, config=demo_data / "incident.yaml", runs=runs, token=TOKEN,
                       workers=1)
    port = srv.extra["port"]
    try:
        r = httpx.post(f"{srv.url}/webhook", json=_payload(demo_data, "g-kill"), headers=AUTH,
                       timeout=5)
        assert r.status_code == 202
        iid = r.json()["incident_id"]
        status = runs / iid / "status.json"

        def mid_run() -> bool:
            try:
                st = json.loads(status.read_text())
            except (OSError, ValueError):
                return False
            return st["stages"]["triage"]["state"] == "running"

        wait_for(mid_run, 90, srv.tail)
        db = sqlite3.connect(runs / QUEUE_FILE)
        child = db.execute("SELECT pid FROM jobs").fetchone()[0]
        db.close()
        assert child
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)

        def gone() -> bool:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return True
            return False

        wait_for(gone, 10, lambda: f"worker {child} survived the server")  # PR_SET_PDEATHSIG
        st = json.loads(status.read_text())
        assert st["state"] == "running"  # interrupted: the runner never wrote a final state
        srv = start_server(tmp_path, config=demo_data / "incident.yaml", runs=runs,
                           token=TOKEN, port=port, workers=1)
        job = wait_for(lambda: (j := _job(srv, iid))["state"] in FINAL and j, 120, srv.tail)
        assert job["state"] == "done" and job["attempts"] == 2 and job["runs_completed"] == 1
        st = json.loads(status.read_text())
        assert st["state"] in ("ok", "partial") and st["ended"]
        assert all(s["state"] in ("ok", "failed", "timeout") for s in st["stages"].values())
        assert (runs / iid / "report.md").is_file()
        again = copy.deepcopy(_payload(demo_data, "g-kill"))
        r = httpx.post(f"{srv.url}/webhook", json=again, headers=AUTH, timeout=5)
        assert r.status_code == 202 and r.json()["duplicate"] is True
        time.sleep(1.5)
        assert _job(srv, iid)["attempts"] == 2  # a repeat after completion starts nothing
    finally:
        srv.stop()


# -- ids, in process (the queue itself: test_jobqueue.py) -----------------------------


def test_incident_ids_from_hostile_labels_are_safe() -> None:
    from incident_lib.core.storage import validate_incident_id
    from incident_lib.pipeline.alerts import dedupe_key, validate_payload
    from incident_lib.service.app import incident_id_for

    p = validate_payload({
        "version": "4", "status": "firing", "groupKey": "{}:{a=\"b\"}", "receiver": "r",
        "commonLabels": {"alertname": "../../etc/{x}", "service": "pay ments\x1b[31m/.."},
        "alerts": [{"status": "firing", "labels": {}, "startsAt": "2026-11-20T10:47:00Z"}]})
    iid = incident_id_for(p, dedupe_key(p))
    assert validate_incident_id(iid) == iid
    assert iid.startswith("etc-x-pay-ments-31m-20261120t1047-")
    assert not set(iid) & set("/{}. \x1b") - {"."}


# -- in-process checks of the HTTP side (no workers) ----------------------------------------


def _client(demo_data: Path, tmp_path: Path, token: str = TOKEN) -> Any:
    from starlette.testclient import TestClient

    from incident_lib.service.app import create_app

    app = create_app(demo_data / "incident.yaml", tmp_path / "runs", token, start_workers=False)
    return TestClient(app)


def test_token_with_a_trailing_newline_is_trimmed_and_said(
        demo_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with _client(demo_data, tmp_path, token=TOKEN + "\n") as client:
        r = client.post("/webhook", json=_payload(demo_data, "trim"), headers=AUTH)
    assert r.status_code == 202, r.text
    assert "INCIDENT_WEBHOOK_TOKEN had leading/trailing whitespace" in capsys.readouterr().err


@pytest.mark.parametrize("change, needle", [
    (lambda p: [x.update(service="nope") for x in (p["commonLabels"], p["alerts"][0]["labels"])],
     "service 'nope' is unknown"),
    (lambda p: p.update(status="resolved") or p["alerts"][0].update(status="resolved",
                                                                      endsAt="garbage"),
     "endsAt 'garbage' is not an RFC 3339 time"),
    (lambda p: p["alerts"][0].update(startsAt="0001-01-01T00:00:00Z"), "is before 1990"),
    (lambda p: p["alerts"][0].update(startsAt="9999-12-31T00:00:00Z"), "is in the future"),
    (lambda p: p["alerts"][0].update(startsAt=1763635620), "must be an RFC 3339 time string"),
    (lambda p: p.update(version=4), "'version' must be \"4\" (a JSON string"),
    (lambda p: p.update(receiver=["x"]), "'receiver' must be a JSON str"),
])
def test_bodies_that_cannot_be_investigated_are_400_before_any_job(
        demo_data: Path, tmp_path: Path, change: Callable[[dict], Any], needle: str) -> None:
    payload = _payload(demo_data, "bad")
    change(payload)
    with _client(demo_data, tmp_path) as client:
        r = client.post("/webhook", json=payload, headers=AUTH)
        assert r.status_code == 400, r.text
        assert needle in r.json()["error"]
        assert client.get("/healthz").json()["jobs"] == {} or \
            sum(client.get("/healthz").json()["jobs"].values()) == 0


def test_resolved_without_ends_at_resolves_at_receipt_time(demo_data: Path,
                                                           tmp_path: Path) -> None:
    payload = _payload(demo_data, "resolve-now")
    payload["status"] = "resolved"
    for a in payload["alerts"]:
        a["status"] = "resolved"
        a["endsAt"] = "0001-01-01T00:00:00Z"
    before = time.time()
    with _client(demo_data, tmp_path) as client:
        r = client.post("/webhook", json=payload, headers=AUTH)
        assert r.status_code == 202, r.text
        job = client.get(f"/incidents/{r.json()['incident_id']}", headers=AUTH).json()
    from incident_lib.core.model import parse_time

    got = parse_time(job["resolved_at"]).timestamp()
    assert before - 1 <= got <= time.time() + 1, job["resolved_at"]


def test_slow_header_clients_are_disconnected(demo_data: Path, tmp_path: Path) -> None:
    """Partial headers (slowloris) are cut after the header timeout; normal requests work."""
    import asyncio
    import socket
    import threading

    import uvicorn

    from incident_lib.service.app import create_app, header_timeout_protocol
    from tests.prom_servers import free_port

    app = create_app(demo_data / "incident.yaml", tmp_path / "runs", TOKEN, start_workers=False)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            http=header_timeout_protocol(1.0), lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(srv.serve()), daemon=True)
    thread.start()
    try:
        wait_for(lambda: srv.started, 20, lambda: "uvicorn did not start")
        socks = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            socks.append(s)
        t0 = time.monotonic()
        for s in socks:
            assert s.recv(100) == b""  # the server closed it (a timeout here fails the test)
            s.close()
        assert time.monotonic() - t0 < 8
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        srv.should_exit = True
        thread.join(10)


def test_a_re_fire_after_resolve_is_a_new_investigation_linked_to_the_previous(
        demo_data: Path, tmp_path: Path) -> None:
    first = _payload(demo_data, "refire")
    resolved = copy.deepcopy(first)
    resolved["status"] = "resolved"
    for a in resolved["alerts"]:
        a.update(status="resolved", endsAt="2026-11-20T11:10:00Z")
    again = copy.deepcopy(first)
    for a in again["alerts"]:
        a["startsAt"] = "2026-11-20T11:40:00Z"
    with _client(demo_data, tmp_path) as client:
        def post(p: dict[str, Any]) -> dict[str, Any]:
            r = client.post("/webhook", json=p, headers=AUTH)
            assert r.status_code == 202, r.text
            return r.json()

        a = post(first)
        assert post(resolved)["incident_id"] == a["incident_id"]
        b = post(again)
        assert b["incident_id"] != a["incident_id"] and not b["duplicate"]
        assert b["previous_incident"] == a["incident_id"]
        assert post(again)["incident_id"] == b["incident_id"]  # its repeats stay with it
        late = post(first)  # a late repeat of the first episode is not a third investigation
        assert late["incident_id"] == a["incident_id"] and late["duplicate"]
        forged = copy.deepcopy(first)
        forged["_previous_incident"] = "../../etc"
        assert post(forged)["previous_incident"] is None
    from incident_lib.core.config import load_config
    from incident_lib.service.jobqueue import JobQueue

    q = JobQueue(tmp_path / "runs" / QUEUE_FILE)
    job = q.by_incident(b["incident_id"])
    q.close()
    inc = incident_from_alert(job.payload, load_config(demo_data / "incident.yaml"),
                              incident_id=job.incident_id)
    assert inc.previous_incident == a["incident_id"]
    assert inc.resolved_at is None
