"""Chat notifiers against a loopback receiver: exact payloads (golden files), retries on 429/5xx,
no mention injection from untrusted text, secrets never written to the run folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from incident_lib.core.config import load_config
from incident_lib.core.model import Incident
from incident_lib.pipeline.notify import notify_now, post
from tests.chat_receiver import chat_receiver

# What an attacker can put into alert labels/annotations or log lines that reach a suspect.
HOSTILE = ("<!channel> @here <@U123ABC> @channel <!subteam^S1|@oncall> [click](https://evil.example)"
           " <https://evil.example|login> *bold* &amp; <at>Boss</at>")
ENV = "TEST_CHAT_WEBHOOK_URL"
LINKS = {"served_runs": "https://incidents.example.com",
         "grafana": {"url": "https://grafana.example.com", "datasource": "prom-main",
                     "org_id": 1},
         "prometheus": {"url": "https://prom.example.com"},
         "kibana": {"url": "https://kibana.example.com", "data_view": "logs-dv",
                    "service_field": "service.name"}}
PROMQL = ('sum by (service) (rate(http_requests_total{status=~"5..",service="checkout"}[1m])) '
          '/ sum by (service) (rate(http_requests_total{service="checkout"}[1m]))')


def _envelope(stage: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"schema": 1, "stage": stage, "incident_id": "checkout-errors-1", "data": data}


def make_run(root: Path, notify: list[dict[str, Any]], stages: tuple[str, ...] = (
        "triage", "correlation", "five_whys"), resolved_at: str | None = None) -> Path:
    """A run folder as the notebooks leave it (findings + evidence index), with hostile text in
    the alert title and in a suspect's change id."""
    inc = Incident(id="checkout-errors-1", title=f"HighErrorRate {HOSTILE}", service="checkout",
                   start="2026-11-20T08:47:00Z", end="2026-11-20T12:02:00Z",
                   alert_time="2026-11-20T10:45:00Z", resolved_at=resolved_at,
                   sources={"metrics": {"kind": "prometheus", "url": "http://127.0.0.1:9"},
                            "logs": {"kind": "files", "path": "/nonexistent"}},
                   topology={"notify": notify, "links": LINKS}, created="2026-11-20T10:45:05Z")
    path = root / inc.id
    (path / "findings").mkdir(parents=True)
    (path / "evidence").mkdir()
    (path / "incident.json").write_text(json.dumps(inc.to_dict()))
    (path / "evidence" / "index.json").write_text(json.dumps({
        "signal_error_rate": {"name": "signal_error_rate", "backend": "prometheus",
                              "query": f"{PROMQL} step=15s", "notes": {"step": 15}},
        "logs": {"name": "logs", "backend": "files", "query": "files:logs.ndjson ..."}}))
    findings = {
        "triage": {"severity": {"level": "P1", "label": "P1 (high)"},
                   "impact": {"onset": "2026-11-20T10:42:15Z", "as_of": "2026-11-20T12:02:00Z",
                              "recovered": None, "status": "ongoing",
                              "entrypoints": ["frontend"], "customer_error_share": 0.1038,
                              "customer_latency_ratio": 34.8,
                              "affected_services": ["checkout", "frontend", "payments"]},
                   "changes": [], "outcome": {"kind": "incident", "reasons": []}},
        "correlation": {"suspects": [{"service": "payments", "change_id": f"chg-1004 {HOSTILE}",
                                      "score": 0.95}]},
        "five_whys": {"outcome": {"kind": "incident", "reasons": []},
                      "root_cause": {"service": "payments", "change_id": f"chg-1004 {HOSTILE}",
                                     "stated": True, "confidence": "high"},
                      "decision": {"decision": "roll back", "target": "chg-1004 on payments"}},
    }
    for stage in stages:
        (path / "findings" / f"{stage}.json").write_text(json.dumps(_envelope(stage,
                                                                              findings[stage])))
    return path


def _spec(base: dict[str, Any]) -> dict[str, Any]:
    return {"name": f"{base['kind']}-1", "url_env": ENV,
            "events": ["triage", "root_cause", "resolved"], **base}


def test_retries_429_and_5xx_with_backoff_honouring_retry_after() -> None:
    waits: list[float] = []
    with chat_receiver([(429, {"Retry-After": "3"}), (502, {}), (200, {})]) as rec:
        result = post(rec.url, {"text": "x"}, sleep=waits.append)
        assert [p["answered"] for p in rec.posts] == [429, 502, 200]
    assert result == {"state": "sent", "attempts": 3, "status_code": 200, "error": None}
    assert waits == [3.0, 2.0]  # Retry-After first, then the 2nd backoff step (1 s, 2 s, ...)


def test_gives_up_after_four_attempts_and_never_retries_other_4xx() -> None:
    waits: list[float] = []
    with chat_receiver([(500, {})] * 4 + [(404, {})]) as rec:
        failed = post(rec.url, {"text": "x"}, sleep=waits.append)
        gone = post(rec.url, {"text": "x"}, sleep=waits.append)
        assert len(rec.posts) == 5
    assert failed == {"state": "failed", "attempts": 4, "status_code": 500, "error": "HTTP 500"}
    assert waits == [1.0, 2.0, 4.0]
    assert gone == {"state": "failed", "attempts": 1, "status_code": 404, "error": "HTTP 404"}


def test_failures_are_recorded_in_status_json_without_the_secret_url(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with chat_receiver([(503, {})] * 4) as rec:
        monkeypatch.setenv(ENV, rec.url)
        path = make_run(tmp_path, [_spec({"kind": "webhook"}),
                                   {**_spec({"kind": "teams"}), "url_env": "TEST_UNSET_ENV"}])
        monkeypatch.delenv("TEST_UNSET_ENV", raising=False)
        records = notify_now(path, "triage", sleep=lambda s: None)
    status = json.loads((path / "status.json").read_text())
    got = {n["notifier"]: n for n in status["notifications"]}
    assert got["webhook-1"]["state"] == "failed" and got["webhook-1"]["attempts"] == 4
    assert got["webhook-1"]["error"] == "HTTP 503"
    assert got["teams-1"]["state"] == "skipped" and "TEST_UNSET_ENV" in got["teams-1"]["error"]
    assert len(records) == 2
    dumped = "".join(f.read_text(errors="replace") for f in path.rglob("*") if f.is_file())
    assert "SECRET" not in dumped and "xoxsecretpath" not in dumped and rec.url not in dumped


def test_unreachable_receiver_fails_fast_naming_no_url(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    url = "http://127.0.0.1:9/hooks/T0SECRET/never"
    monkeypatch.setenv(ENV, url)
    path = make_run(tmp_path, [_spec({"kind": "slack", "format": "blocks"})])
    (rec,) = notify_now(path, "triage", sleep=lambda s: None)
    assert rec["state"] == "failed" and rec["attempts"] == 4
    assert rec["error"] == "ConnectError (no answer)" and "SECRET" not in json.dumps(rec)


def test_an_event_is_sent_once_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with chat_receiver() as rec:
        monkeypatch.setenv(ENV, rec.url)
        path = make_run(tmp_path, [_spec({"kind": "webhook"})])
        notify_now(path, "triage")
        notify_now(path, "triage")  # e.g. the run re-executed after a server restart
        notify_now(path, "root_cause")
        posts = rec.wait_for(2, 5)
    assert [p["json"]["event"] for p in posts] == ["triage", "root_cause"]


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo dataset (20k log lines)."""
    from incident_lib.demo.generator import DemoSpec, generate_demo

    return generate_demo(tmp_path_factory.mktemp("small") / "data", DemoSpec(size=20_000))


def test_a_real_run_posts_its_first_update_while_it_goes_on_and_keeps_no_secret(
        tmp_path: Path, small_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runner + notebooks: the triage update arrives before the run ends, a receiver that
    always fails neither blocks nor fails the run, and no webhook URL lands in runs/."""
    import pandas as pd

    from incident_lib.core.integrations import validate_links, validate_notify
    from incident_lib.pipeline.alerts import incident_from_alert
    from incident_lib.pipeline.runner import create_run, execute

    monkeypatch.setenv("INCIDENT_RUNS_DIR", str(tmp_path / "runs"))
    with chat_receiver() as ok, chat_receiver([(500, {})] * 20) as broken:
        monkeypatch.setenv("TEST_OK_HOOK", ok.url)
        monkeypatch.setenv("TEST_BROKEN_HOOK", broken.url + "/broken")
        config = load_config(data_dir=small_data)
        config["notify"] = validate_notify([
            {"kind": "slack", "url_env": "TEST_OK_HOOK", "name": "ok"},
            {"kind": "webhook", "url_env": "TEST_BROKEN_HOOK", "name": "broken"}])
        config["links"] = validate_links(LINKS)
        payload = json.loads((small_data / "alert.json").read_text())
        path = create_run(incident_from_alert(payload, config, incident_id="notify-run"))
        status = execute(path)
        posts = ok.wait_for(1, 5)
    assert status["state"] == "ok", status
    first = posts[0]
    tri = json.loads((path / "findings" / "triage.json").read_text())["data"]
    upd = tri["status_update"]  # the chat says what the triage notebook's status update says
    assert first["json"]["text"].startswith(f"{upd['color']} First status update: ")
    assert first["json"]["text"].endswith(f"({upd['state']}, {tri['severity']['label']})")
    action = next(b for b in first["json"]["blocks"] if "*Action*" in b.get("text", {}).get(
        "text", ""))["text"]["text"]
    assert action == f"*Action*\n{upd['action']}"  # the notebook's words (no markup in them)
    arrived = pd.Timestamp(first["time"], unit="s", tz="UTC")
    assert arrived <= pd.Timestamp(status["stages"]["correlation"]["ended"]) + pd.Timedelta("1s")
    buttons = {e["text"]["text"]: e["url"] for b in first["json"]["blocks"]
               if b["type"] == "actions" for e in b["elements"]}
    assert buttons["Investigation"] == "https://incidents.example.com/runs/notify-run/"
    assert buttons["Grafana: signal_error_rate"].startswith("https://grafana.example.com/explore?")
    sent = {(n["notifier"], n["event"]): n for n in status["notifications"]}
    assert sent[("ok", "triage")]["state"] == "sent"
    assert sent[("broken", "triage")]["state"] == "failed"
    assert sent[("broken", "triage")]["attempts"] == 4
    assert len(broken.posts) >= 4
    report = (path / "report.md").read_text()
    assert "[this run](https://incidents.example.com/runs/notify-run/)" in report
    assert "[Grafana](https://grafana.example.com/explore?" in report
    # the notebooks stay thin: the postmortem notebook shows the rendered report, links included
    assert "[Grafana](https://grafana.example.com/explore?" in (
        path / "notebooks" / "04_postmortem.ipynb").read_text()
    assert '<a href="https://grafana.example.com/explore?' in (
        path / "investigation.html").read_text()
    leaked = [f for f in path.rglob("*") if f.is_file()
              and (b"T0SECRET" in f.read_bytes() or b"xoxsecretpath" in f.read_bytes())]
    assert leaked == []


def test_dispatcher_never_waits_on_a_slow_chat_and_says_what_it_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    from incident_lib.pipeline.notify import Dispatcher

    release = threading.Event()
    with chat_receiver([(503, {})] * 4) as rec:
        monkeypatch.setenv(ENV, rec.url)
        path = make_run(tmp_path, [_spec({"kind": "webhook"})])
        chat = Dispatcher(path, sleep=lambda s: release.wait(10))  # a backoff that never ends
        t0 = time.monotonic()
        chat.submit("triage")
        assert time.monotonic() - t0 < 0.1  # the investigation goes on at once
        rec.wait_for(1, 5)
        chat.close(timeout=0.5)
        (entry,) = json.loads((path / "status.json").read_text())["notifications"]
        release.set()
    assert entry["event"] == "triage" and entry["state"] == "failed"
    assert entry["error"].startswith("still being sent after 0.5 s")


def test_a_webhook_variable_without_a_url_fails_without_sending(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "hooks.slack.com/services/T0SECRET/B/x")
    path = make_run(tmp_path, [_spec({"kind": "slack", "format": "blocks"})])
    (rec,) = notify_now(path, "triage")
    assert rec["state"] == "failed" and rec["error"] == f"{ENV} does not hold an http(s) URL"


def test_on_findings_fires_once_for_this_executions_findings_only(tmp_path: Path) -> None:
    import threading

    from incident_lib.pipeline.notify import on_findings

    (tmp_path / "findings").mkdir()
    f = tmp_path / "findings" / "triage.json"
    f.write_text(json.dumps({"run_token": "old-run", "data": {}}))  # a previous execution's
    called = threading.Event()
    calls: list[int] = []
    stop = on_findings(tmp_path, "triage", "this-run",
                       lambda: (calls.append(1), called.set()))
    assert not called.wait(0.6)
    f.write_text(json.dumps({"run_token": "this-run", "data": {}}))
    assert called.wait(5)
    assert stop() is True and calls == [1]
    assert on_findings(tmp_path, "five_whys", "this-run", lambda: None)() is False
