"""Prometheus rule -> Alertmanager -> `incident serve` -> report, all real servers on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

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
    prom_port = free_port()
    config = {"sources": {
        "metrics": {"kind": "prometheus", "url": f"http://127.0.0.1:{prom_port}", "timeout": 30},
        "logs": {"kind": "files", "path": str(data / "logs.ndjson")},
        "changes": {"kind": "files", "path": str(data / "changes.ndjson")}},
        "topology": str(data / "topology.yaml")}
    (work / "incident.yaml").write_text(yaml.safe_dump(config))
    procs: list[Proc] = []
    try:
        srv = start_server(work / "serve", config=work / "incident.yaml", runs=work / "runs",
                           token=TOKEN)
        procs.append(srv)
        am = start_alertmanager(work / "am", f"{srv.url}/webhook", TOKEN)
        procs.append(am)
        tsdb = backfill(data / "metrics.om", work / "tsdb")
        t0 = time.time()
        prom = start_prometheus(tsdb, work / "prom", rules=RULES, alertmanager=am.url,
                                port=prom_port)
        procs.append(prom)
        yield {"runs": work / "runs", "t0": t0, "procs": procs, "data": data}
    finally:
        for p in reversed(procs):
            p.stop()


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
    print(f"\nprometheus start -> first status update {first_update:.1f} s, "
          f"-> report {time.time() - stack['t0']:.1f} s")
