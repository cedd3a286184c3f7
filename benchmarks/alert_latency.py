"""Alert-to-first-status-update and alert-to-report latency of `incident serve`, demo size.

Usage: .venv/bin/python benchmarks/alert_latency.py [--repeats 3] [--out FILE.md]

Two paths, all real processes on 127.0.0.1 (Debian prometheus, prometheus-alertmanager):
1. webhook: the demo alert POSTed straight to `incident serve` (metrics from Prometheus,
   logs/changes from the demo files); the clock starts at the POST. Repeated with distinct
   groupKeys, one at a time, so each run has the machine to itself.
2. alertmanager: a Prometheus alerting rule over the backfilled demo data (ending now) fires,
   Alertmanager (group_wait 1 s) posts the webhook; the clock starts at the alert's activeAt
   as Prometheus reports it.
The server is measured in steady state: its worker processes have preloaded papermill (as
they do between alerts). "first status update" = findings/triage.json exists (stage 1 wrote
data.status_update); "first chat message" = a generic-JSON notifier (`notify:`, issue 18)
delivered the triage update to a loopback receiver; "report" = status.json has its final
state (report.md rendered, notebooks exported).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from incident_lib.demo.generator import generate_demo  # noqa: E402
from incident_lib.service.worker import WORKER_NICE  # noqa: E402
from tests.chat_receiver import Receiver, chat_receiver  # noqa: E402
from tests.prom_servers import (  # noqa: E402
    backfill,
    free_port,
    start_alertmanager,
    start_prometheus,
    start_server,
)
from tests.test_e2e_alertmanager import RULES  # noqa: E402

TOKEN = "bench-token"


def _chat_at(chat: Receiver, incident_id: str) -> float | None:
    """Epoch time the receiver got this incident's first (triage) message, if it did."""
    return next((p["time"] for p in list(chat.posts)
                 if p["json"].get("incident_id") == incident_id), None)


def _watch(run: Path, t0: float, chat: Receiver,
           timeout: float = 600) -> tuple[float, float, float, str]:
    """Seconds from t0 (epoch) to triage.json, to the first chat message and to the final
    status; and that state."""
    first = None
    deadline = time.time() + timeout
    while time.time() < deadline:
        if first is None and (run / "findings" / "triage.json").is_file():
            first = time.time() - t0
        try:
            st = json.loads((run / "status.json").read_text())
        except (OSError, ValueError):
            st = {}
        if st.get("ended") and st.get("state") != "running":
            total = time.time() - t0
            at = _chat_at(chat, run.name)
            return (first or float("nan"), at - t0 if at else float("nan"), total,
                    st["state"])
        time.sleep(0.05)
    raise TimeoutError(f"{run.name} did not finish in {timeout} s")


def main() -> int:
    """Run both paths and print (or write) a Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", help="write the Markdown results here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="alert-latency-"))
    data = generate_demo(work / "data", end_now=True)
    prom_port = free_port()
    cfg = {"sources": {
        "metrics": {"kind": "prometheus", "url": f"http://127.0.0.1:{prom_port}"},
        "logs": {"kind": "files", "path": str(data / "logs.ndjson")},
        "changes": {"kind": "files", "path": str(data / "changes.ndjson")}},
        "topology": str(data / "topology.yaml"),
        "notify": [{"kind": "webhook", "url_env": "BENCH_CHAT_WEBHOOK"}]}
    (work / "incident.yaml").write_text(yaml.safe_dump(cfg))
    runs = work / "runs"
    procs = []
    rows = []
    chat_cm = chat_receiver()
    chat = chat_cm.__enter__()
    try:
        srv = start_server(work / "serve", config=work / "incident.yaml", runs=runs, token=TOKEN,
                           extra_env={"BENCH_CHAT_WEBHOOK": chat.url})
        procs.append(srv)
        am = start_alertmanager(work / "am", f"{srv.url}/webhook", TOKEN)
        procs.append(am)
        tsdb = backfill(data / "metrics.om", work / "tsdb")
        # 1. direct webhook (Prometheus without rules, so nothing else competes for the CPUs)
        prom = start_prometheus(tsdb, work / "prom1", port=prom_port)
        procs.append(prom)
        alert = json.loads((data / "alert.json").read_text())
        for i in range(args.repeats):
            alert["groupKey"] = f'{{}}:{{alertname="HighErrorRate",bench="{i}"}}'
            t0 = time.time()
            r = httpx.post(f"{srv.url}/webhook", json=alert, timeout=10,
                           headers={"Authorization": f"Bearer {TOKEN}"})
            accept = time.time() - t0
            r.raise_for_status()
            first, msg, total, state = _watch(runs / r.json()["incident_id"], t0, chat)
            rows.append(("webhook POST", accept, first, msg, total, state))
            print(rows[-1], file=sys.stderr)
        prom.stop()
        procs.remove(prom)
        # 2. Prometheus rule -> Alertmanager -> webhook
        before = {p.name for p in runs.iterdir()}
        prom = start_prometheus(tsdb, work / "prom2", rules=RULES, alertmanager=am.url,
                                port=prom_port)
        procs.append(prom)
        active = None
        while active is None:
            alerts = httpx.get(f"{prom.url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
            if alerts:
                active = pd.Timestamp(alerts[0]["activeAt"]).timestamp()
            time.sleep(0.2)
        new: list[Path] = []
        while not new:
            new = [p for p in runs.iterdir() if p.name not in before and p.is_dir()]
            time.sleep(0.1)
        first, msg, total, state = _watch(new[0], active, chat)
        rows.append(("rule -> Alertmanager", float("nan"), first, msg, total, state))
        print(rows[-1], file=sys.stderr)
    finally:
        for p in reversed(procs):
            p.stop()
        chat_cm.__exit__(None, None, None)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    text = _markdown(rows, args.repeats)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


def _markdown(rows: list[tuple], repeats: int) -> str:
    hooks = [r for r in rows if r[0] == "webhook POST"]
    lines = [
        "## Alert latency (`benchmarks/alert_latency.py`)",
        "",
        f"Machine: {os.cpu_count()} vCPU ({platform.machine()}, Linux), shared with other "
        f"jobs; {time.strftime('%Y-%m-%d', time.gmtime())}. Demo size: 3 h of metrics "
        "(5 services, 15 s scrape), 200,000 log lines. Metrics from Debian prometheus 2.42 "
        "(backfilled with promtool), logs/changes from the demo files, `incident serve` with "
        f"2 workers (nice {WORKER_NICE}), Alertmanager 0.25 with group_wait 1 s. Load "
        f"average during the run: {os.getloadavg()[0]:.1f}.",
        "",
        "| path | 202 answer | first status update | first chat message | report (final state)"
        " | state |",
        "|---|---|---|---|---|---|",
    ]
    for name, accept, first, msg, total, state in rows:
        acc = "-" if accept != accept else f"{accept * 1000:.0f} ms"
        lines.append(f"| {name} | {acc} | {first:.1f} s | {msg:.1f} s | {total:.1f} s "
                     f"| {state} |")
    if hooks:
        lines += ["", f"Webhook path, median of {repeats}: first status update "
                  f"{statistics.median(r[2] for r in hooks):.1f} s (goal < 20 s), first chat "
                  f"message {statistics.median(r[3] for r in hooks):.1f} s, report "
                  f"{statistics.median(r[4] for r in hooks):.1f} s (goal < 90 s)."]
    lines += ["", "The Alertmanager row starts at the alert's activeAt in Prometheus, so it "
              "includes Prometheus' notification send, Alertmanager's group_wait (1 s) and the "
              "webhook delivery."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
