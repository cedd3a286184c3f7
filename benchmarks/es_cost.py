"""Client-side cost of one investigation against Elasticsearch as the index grows.

For each demo size (log lines over the same 3 hours) the demo is generated, loaded into the
loopback test server (tests/es_server.py, in this process), and a fresh client process makes
the calls an investigation makes against the logs/changes backend:

  changes(incident window)                      triage
  read_logs(baseline start .. incident end, cap) correlation (raw lines for template mining)
  count_over_time(1min, by service)             log volume, pushed down (date_histogram+terms)
  field_changes(baseline, incident, 4 fields)   what changed, pushed down (terms/filters)

Reported per size: HTTP requests, request and response body bytes (headers excluded), client
peak RSS and peak Python heap (tracemalloc), wall time, and lines matched/read.

    .venv/bin/python benchmarks/es_cost.py --sizes 200000 1000000 5000000 \
        --out benchmarks/results/es_cost.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

B0, B1 = "2026-11-20T08:47:00Z", "2026-11-20T10:37:15Z"
I0, I1 = "2026-11-20T10:42:15Z", "2026-11-20T11:22:45Z"
END = "2026-11-20T12:02:00Z"


def _hwm_mb() -> float:
    """Peak RSS of this process (VmHWM; ru_maxrss would include the forking parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def client(url: str, cap: int, heap: bool) -> dict:
    """One investigation's calls from this (fresh) process; returns what it cost the client."""
    import pandas as pd

    from incident_lib.sources.elasticsearch import (
        ElasticsearchChangeSource,
        ElasticsearchLogSource,
    )

    ts = pd.Timestamp
    base_rss = _hwm_mb()
    if heap:
        tracemalloc.start()
    t0 = time.monotonic()
    logs = ElasticsearchLogSource.from_spec({"url": url, "index": "logs-*", "timeout": 120})
    changes = ElasticsearchChangeSource.from_spec({"url": url, "index": "changes-*"})
    ch = changes.changes(ts(B0), ts(END))
    res = logs.read_logs(ts(B0), ts(I1), limit=cap)
    vol = logs.count_over_time(ts(B0), ts(END), "1min", ["service"])
    fc = logs.field_changes((ts(B0), ts(B1)), (ts(I0), ts(I1)),
                            ["service", "host", "level", "status"])
    wall = time.monotonic() - t0
    peak_heap = tracemalloc.get_traced_memory()[1] if heap else 0
    tracemalloc.stop()
    return {"matched": res.notes["matched"], "read": res.notes["read"],
            "sampling": res.notes["sampling"], "changes": len(ch.frame),
            "volume_rows": len(vol.frame), "field_rows": len(fc.frame),
            "partial": res.partial or vol.partial or fc.partial,
            "wall_s": round(wall, 1), "heap_mb": round(peak_heap / 2**20, 1),
            "rss_mb": round(_hwm_mb(), 1),
            "rss_after_imports_mb": round(base_rss, 1)}


def measure(size: int, data_root: Path, cap: int) -> dict:
    """Generate (if needed) and load one demo size, then run the client in a subprocess."""
    from incident_lib.demo.generator import DemoSpec, generate_demo
    from tests.es_server import EsServer

    data = data_root / f"n{size}"
    if not (data / "logs.ndjson").is_file():
        generate_demo(data, DemoSpec(size=size))
    with EsServer() as srv:
        t = time.monotonic()
        srv.engine.index("logs-demo").load_ndjson(str(data / "logs.ndjson"))
        srv.engine.index("changes-demo").load_ndjson(str(data / "changes.ndjson"))
        load_s = time.monotonic() - t
        srv.clear()
        res: dict = {}
        log: list[dict] = []
        for heap in (False, True):  # RSS without tracemalloc overhead, then the Python heap
            out = subprocess.run([sys.executable, __file__, "--client", srv.url, "--cap",
                                  str(cap)] + (["--heap"] if heap else []),
                                 capture_output=True, text=True, check=True, cwd=ROOT)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            if heap:
                res["heap_mb"] = got["heap_mb"]
            else:
                res, log = got, list(srv.log)
                srv.clear()
        res.update(size=size, load_s=round(load_s, 1), requests=len(log),
                   bytes_sent=sum(e["bytes_in"] for e in log),
                   bytes_received=sum(e["bytes_out"] for e in log),
                   searches=sum(e["path"].endswith("_search") for e in log),
                   server_s=round(sum(e["ms"] for e in log) / 1000, 1))
    return res


def table(rows: list[dict]) -> str:
    """Markdown table of the measurements."""
    head = ("| index lines | matched in window | read (sampling) | requests | sent | received "
            "| client peak RSS (after imports) | client peak heap | wall (server part) |\n"
            "|---:|---:|---|---:|---:|---:|---:|---:|---:|\n")
    out = []
    for r in rows:
        how = "all" if r["sampling"] == "all lines" else "random_score sample"
        out.append(f"| {r['size']:,} | {r['matched']:,} | {r['read']:,} ({how}) | "
                   f"{r['requests']} | {r['bytes_sent'] / 1e3:,.1f} kB | "
                   f"{r['bytes_received'] / 1e6:,.1f} MB | {r['rss_mb']:,.0f} MB "
                   f"({r['rss_after_imports_mb']:,.0f} MB) | "
                   f"{r['heap_mb']:,.0f} MB | {r['wall_s']} s ({r['server_s']} s) |")
    return head + "\n".join(out) + "\n"


def main() -> None:
    """CLI: --sizes N... [--out FILE], or --client URL (internal)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    ap.add_argument("--cap", type=int, default=200_000)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("ES_BENCH_DATA",
                                                                     "/tmp/esbench")))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--client")
    ap.add_argument("--heap", action="store_true")
    args = ap.parse_args()
    if args.client:
        print(json.dumps(client(args.client, args.cap, args.heap)))
        return
    rows = []
    for n in args.sizes:
        rows.append(measure(n, args.data, args.cap))
        print(json.dumps(rows[-1]), flush=True)
    text = (f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} on {os.cpu_count()} vCPU "
            f"({platform.machine()}, Python {platform.python_version()}), cap {args.cap:,}.\n\n"
            + table(rows))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
