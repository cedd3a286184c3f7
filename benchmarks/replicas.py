"""Alerts accepted per minute and investigations completed per minute with 1, 2, 3 replicas of
`incident serve` on one PostgreSQL queue (demo-size incidents, real notebooks).

Usage: .venv/bin/python benchmarks/replicas.py [--replicas 1 2 3] [--storm 240] [--complete 6]
       [--workers 1] [--out FILE.md]

For each replica count, on a fresh database and runs folder:
1. start the replicas (`incident serve`, queue `{kind: postgres}`, demo telemetry files), wait
   until their workers are preloaded;
2. storm: POST `--storm` distinct alert groups (mixed severities) round-robin over the
   replicas from 8 client threads; accepted/min = storm / time until the last 202. The
   workers are already investigating while the storm arrives, as in a real storm;
   A first row runs one replica on the default SQLite queue, for comparison;
3. keep going until `--complete` investigations have finished (real papermill runs of the four
   notebooks on the 200k-line demo); completed/min = complete / time from the first POST.
The rest of the storm is left queued and dropped with the database. PostgreSQL is Debian's,
started in a temp folder (tests/pg_server.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from incident_lib.demo.generator import generate_demo  # noqa: E402
from tests.pg_server import start_postgres  # noqa: E402
from tests.prom_servers import start_server  # noqa: E402

TOKEN = "bench-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SEVERITIES = ["critical", "warning", "info", "page", "P1"]


def _payload(alert: dict, i: int) -> dict:
    p = json.loads(json.dumps(alert))
    p["groupKey"] = f'{{}}:{{alertname="HighErrorRate", shard="{i}"}}'
    for labels in (p["commonLabels"], p["alerts"][0]["labels"]):
        labels["severity"] = SEVERITIES[i % len(SEVERITIES)]
    return p


def one(n: int, data: Path, work: Path, base_dsn: str, args: argparse.Namespace,
        sqlite: bool = False) -> dict:
    """Start n replicas on a fresh database; storm them; wait for `complete` reports.
    sqlite: one replica on the default SQLite queue instead (the baseline)."""
    db = f"bench_{n}"
    with psycopg.connect(base_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db}")
        conn.execute(f"CREATE DATABASE {db}")
    dsn = base_dsn.rsplit("/", 1)[0] + f"/{db}"
    cfg = yaml.safe_load((data / "incident.yaml").read_text())
    for spec in cfg["sources"].values():
        if isinstance(spec, dict) and "path" in spec:
            spec["path"] = str(data / spec["path"])
    cfg["topology"] = str(data / cfg["topology"])
    if not sqlite:
        cfg["queue"] = {"kind": "postgres", "dsn_env": "INCIDENT_PG_DSN"}
    folder = work / (f"r{n}" if not sqlite else "sqlite")
    folder.mkdir()
    config = folder / "incident.yaml"
    config.write_text(yaml.safe_dump(cfg))
    runs = folder / "runs"
    alert = json.loads((data / "alert.json").read_text())
    replicas = []
    try:
        for _ in range(n):
            replicas.append(start_server(folder, config=config, runs=runs, token=TOKEN,
                                         workers=args.workers,
                                         extra_env={"INCIDENT_PG_DSN": dsn}))
        t0 = time.monotonic()

        def post(i: int) -> float:
            r = httpx.post(f"{replicas[i % n].url}/webhook", json=_payload(alert, i),
                           headers=AUTH, timeout=60)
            assert r.status_code == 202, r.text
            return time.monotonic()

        with ThreadPoolExecutor(8) as ex:
            accepted_at = max(ex.map(post, range(args.storm)))
        accept_s = accepted_at - t0
        while True:  # /healthz counts the shared queue's jobs (all replicas)
            jobs = httpx.get(f"{replicas[0].url}/healthz", timeout=30).json()["jobs"]
            if jobs["done"] + jobs["failed"] >= args.complete:
                break
            time.sleep(0.5)
        complete_s = time.monotonic() - t0
        failed = jobs["failed"]
    finally:
        for r in replicas:
            r.stop()
    return {"replicas": n if not sqlite else "1 (SQLite)", "workers": n * args.workers,
            "storm": args.storm,
            "accept_s": accept_s, "alerts_per_min": args.storm / accept_s * 60,
            "complete": args.complete, "complete_s": complete_s,
            "investigations_per_min": args.complete / complete_s * 60, "failed": failed}


def main() -> int:
    """Measure each replica count and print (or write) a Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--storm", type=int, default=240)
    ap.add_argument("--complete", type=int, default=6)
    ap.add_argument("--workers", type=int, default=1, help="workers per replica")
    ap.add_argument("--no-sqlite", action="store_true", help="skip the SQLite baseline")
    ap.add_argument("--out")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    os.environ["INCIDENT_RUNS_DIR"] = str(work / "runs-data")
    data = generate_demo(work / "data")
    pg = start_postgres()
    rows = []
    try:
        if not args.no_sqlite:
            rows.append(one(1, data, work, pg.dsn, args, sqlite=True))
            print(json.dumps(rows[-1]), flush=True)
        for n in args.replicas:
            rows.append(one(n, data, work, pg.dsn, args))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
             f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
             f"load average at the end {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}.", "",
             "| replicas | workers in all | storm alerts | all 202 after | alerts/min accepted "
             "| investigations finished | after | investigations/min | failed |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['replicas']} | {r['workers']} | {r['storm']} | {r['accept_s']:.1f} s "
                     f"| {r['alerts_per_min']:,.0f} | {r['complete']} | {r['complete_s']:.0f} s "
                     f"| {r['investigations_per_min']:.1f} | {r['failed']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
