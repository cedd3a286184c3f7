"""Prometheus rule -> Alertmanager -> `incident serve` -> report, all real servers on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from tests.chat_receiver import chat_receiver
from tests.prom_servers import (
    Proc,
    backfill,
    free_port,
    require_binary,
    start_alertmanager,
    start_prometheus,
    start_server,
)

TOKEN = "e2e-webhook-token"
READ_TOKEN = "e2e-read-token"
FIRST_UPDATE_GOAL_S = 20.0  # BENCHMARKS.md: first status update under 20 s after the alert
# Fires on the backfilled demo data (which ends now, mid-incident): checkout's 5xx share
# above 5% within the last 90 minutes. `service` comes from `by (service)`, as in a real rule.
RULES = """
groups:
  - name: demo
    rules:
      - alert: HighErrorRate
        expr: >-
          max_over_time((sum by (service) (rate(http_requests_total{status=~"5..",
          service="checkout"}[1m])) / sum by (service) (rate(http_requests_total{
          service="checkout"}[1m])))[90m:15s]) > 0.05
        labels: {severity: page, team: shop}
        annotations: {summary: "checkout 5xx above 5%"}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Demo data ending now, Prometheus (rules) -> Alertmanager -> incident serve."""
    from incident_lib.demo.generator import DemoSpec, generate_demo

    for name in ("prometheus", "promtool", "prometheus-alertmanager"):
        require_binary(name)
    work = tmp_path_factory.mktemp("e2e-am")
    # 1 h 54 min of data ending now: the incident began 12 minutes ago and is still going on,
    # as when a real alert fires (the rollback in the story has not happened yet)
    data = generate_demo(work / "data", DemoSpec(hours=1.9), end_now=True)
    prom_port, serve_port = free_port(), free_port()
    config = {"sources": {
        "metrics": {"kind": "prometheus", "url": f"http://127.0.0.1:{prom_port}", "timeout": 30},
        "logs": {"kind": "files", "path": str(data / "logs.ndjson")},
        "changes": {"kind": "files", "path": str(data / "changes.ndjson")}},
        "topology": str(data / "topology.yaml"),
        # the first status update goes to a Slack-compatible webhook (a loopback receiver)
        # with a link to the run served by the same `incident serve`
        "notify": [{"kind": "slack", "url_env": "E2E_CHAT_WEBHOOK"}],
        "links": {"served_runs": f"http://127.0.0.1:{serve_port}",
                  "prometheus": {"url": f"http://127.0.0.1:{prom_port}"}}}
    (work / "incident.yaml").write_text(yaml.safe_dump(config))
    procs: list[Proc] = []
    chat_cm = chat_receiver()
    chat = chat_cm.__enter__()
    try:
        srv = start_server(work / "serve", config=work / "incident.yaml", runs=work / "runs",
                           token=TOKEN, port=serve_port,
                           extra_env={"E2E_CHAT_WEBHOOK": chat.url,
                                      "INCIDENT_READ_TOKEN": READ_TOKEN})
        procs.append(srv)
        am = start_alertmanager(work / "am", f"{srv.url}/webhook", TOKEN)
        procs.append(am)
        tsdb = backfill(data / "metrics.om", work / "tsdb")
        t0 = time.time()
        prom = start_prometheus(tsdb, work / "prom", rules=RULES, alertmanager=am.url,
                                port=prom_port)
        procs.append(prom)
        yield {"runs": work / "runs", "t0": t0, "procs": procs, "data": data, "chat": chat,
               "serve": srv}
    finally:
        for p in reversed(procs):
            p.stop()
        chat_cm.__exit__(None, None, None)


def _final_run(runs: Path) -> Path | None:
    for d in runs.iterdir() if runs.is_dir() else []:
        st = d / "status.json"
        if d.name.startswith(".") or not st.is_file():
            continue
        try:
            if json.loads(st.read_text()).get("ended"):
                return d
        except ValueError:
            continue
    return None


def test_alert_rule_to_report_names_root_cause(stack: dict) -> None:
    runs: Path = stack["runs"]
    deadline = time.monotonic() + 240
    first_update = run = None
    while time.monotonic() < deadline and run is None:
        if first_update is None and list(runs.glob("*/findings/triage.json")):
            first_update = time.time() - stack["t0"]
        run = _final_run(runs)
        time.sleep(0.5)
    logs = "\n".join(p.tail(1500) for p in stack["procs"])
    assert run is not None, f"no finished run within 240 s:\n{logs}"
    inc = json.loads((run / "incident.json").read_text())
    assert inc["source"] == "alertmanager" and inc["service"] == "checkout"
    assert inc["labels"]["alertname"] == "HighErrorRate"
    assert inc["sources"]["metrics"]["kind"] == "prometheus"
    assert "token" not in json.dumps(inc).lower()
    st = json.loads((run / "status.json").read_text())
    assert st["stages"]["triage"]["state"] == "ok" and st["stages"]["correlation"]["state"] == "ok"
    cor = json.loads((run / "findings" / "correlation.json").read_text())["data"]
    top = cor["suspects"][0]
    assert (top["service"], top["change_id"]) == ("payments", "chg-1004")
    report = (run / "report.md").read_text()
    assert "payments" in report and "chg-1004" in report
    chat = stack["chat"].wait_for(1, 10)
    assert chat, f"no chat message arrived:\n{logs}"
    msg = chat[0]["json"]
    tri = json.loads((run / "findings" / "triage.json").read_text())["data"]
    assert msg["text"].startswith(f"{tri['status_update']['color']} First status update: ")
    assert f"({tri['status_update']['state']}, {tri['severity']['label']})" in msg["text"]
    job = httpx.get(f"{stack['serve'].url}/incidents/{run.name}", timeout=5,
                    headers={"Authorization": f"Bearer {TOKEN}"}).json()
    latency = chat[0]["time"] - job["received"]
    assert latency < FIRST_UPDATE_GOAL_S, f"first chat message {latency:.1f} s after the alert"
    written = pd.Timestamp(json.loads((run / "findings" / "triage.json").read_text())["created"])
    lag = chat[0]["time"] - written.timestamp()  # `created` has whole seconds: up to 1 s more
    assert lag < 3.0, f"the chat message came {lag:.1f} s after the triage findings"
    buttons = {e["text"]["text"]: e["url"] for b in msg["blocks"] if b["type"] == "actions"
               for e in b["elements"]}
    link = buttons["Investigation"]
    assert link == f"{stack['serve'].url}/runs/{run.name}/"
    page = httpx.get(link, timeout=5, headers={"Authorization": f"Bearer {READ_TOKEN}"})
    assert page.status_code == 200 and run.name in page.text and 'href="report.md"' in page.text
    assert httpx.get(link, timeout=5).status_code == 401  # the read token is needed
    assert httpx.get(link + "report.md", timeout=5,
                     headers={"Authorization": f"Bearer {READ_TOKEN}"}).text == report
    assert "E2E_CHAT" not in json.dumps(st) and chat[0]["path"] not in (
        "".join(f.read_text(errors="replace") for f in run.rglob("*") if f.is_file()
                and f.suffix in (".json", ".md", ".html", ".ipynb")))
    print(f"\nprometheus start -> first status update {first_update:.1f} s, "
          f"-> report {time.time() - stack['t0']:.1f} s; alert received -> first chat message "
          f"{latency:.1f} s")
