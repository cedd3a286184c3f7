"""Root-cause accuracy on published fault injections laid out like Nezha's rca_data/<date>/.

Usage: .venv/bin/python benchmarks/nezha.py --data DIR [--normal construct_data/DATE]
       [--entry SERVICE] [--cases N] [--jobs 1] [--normal-windows 10] [--quiet-windows 0]
       [--keep WORK]

DIR holds `<date>-fault_list.json`, `log/`, `trace/` and `metric/` as published (see
../shared/data/nezha_trainticket/README.md). For each fault the harness writes, into a work
folder (never into DIR), an `incident.yaml` that points at the RAW files (the same file a
user copies: docs/bring-your-own-data.md) and an Alertmanager webhook whose startsAt is the
fault's `inject_time`, then runs the CLI as a user would:

    incident run --alert alert.json --data CASE --start T-20min --end T+4min

Only `inject_time` reaches the investigation (it stands in for the moment an alert fires);
the fault list itself is read by this harness alone (tests/benchmarks/test_nezha.py checks
that no investigation process opens it). Window: 20 minutes before (about 20 one-minute
metric samples per pod as the baseline; faults here follow each other within ~5-10 minutes,
so a longer window holds more earlier faults) to 4 minutes after (the log and span files
cover the first ~2 minutes after an injection; 4 minutes gives >= 3 post-fault metric rows).
The entry service (the service the alert is about) is `--entry` or, by default, the service
owning most root spans in the trace files.

Scoring (service level, as in the Nezha paper): the ranked services are read from
findings/correlation.json `service_ranking.ranking` (the per-service root-cause ranking that
decides whether a root cause is stated); the `suspects` table (changes, metric anomalies and
templates, first occurrence of each service) is scored too, on its own line. Ties are scored as
reported, pessimistically: a service tied with others at rank r is counted at the LAST
position of that tie. The root-cause service is `inject_pod` mapped by the pod rule (used for
scoring only). AC@k = share of faults whose root-cause service is in the top k; Avg@5 = mean
of AC@1..AC@5. With --normal, windows of the fault-free period are investigated too and
counted when the report states a root cause as fact ("The most likely root cause is") or
recommends a rollback. --quiet-windows N adds windows of --data with no injection from 25
minutes before to 10 after (the metric files cover the day; logs and spans exist only around
faults, so these are metrics-only). Output: a table per fault type, seconds per case, then
`fault-free windows=N no_incident=K named_root_cause=K rollback=R` (with --normal), the same
for `quiet windows of --data` (with --quiet-windows) and, last,
`overall cases=N AC@1=0.xx AC@3=0.xx AC@5=0.xx Avg@5=0.xx`.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from nezha_load import quiet_times  # noqa: E402

from incident_lib.sources.podmap import PodRule  # noqa: E402

BEFORE = pd.Timedelta("20min")
AFTER = pd.Timedelta("4min")


# The export's per-pod columns declared as signals (what a user of this export writes; no
# error signal: its success-rate column is constant, not evidence).
SIGNALS_YAML = """\
signals:
  cpu:
    title: CPU usage (cores)
    kind: gauge
    unit: cores
    role: saturation
    direction: up
    column: CpuUsage(m)
    scale: 0.001
    agg: sum
  memory:
    title: Memory in use
    kind: gauge
    unit: bytes
    role: saturation
    direction: up
    column: MemoryUsage(Mi)
    scale: 1048576
    agg: sum
  latency_p90:
    title: Server latency p90
    kind: gauge
    unit: seconds
    role: latency
    direction: up
    column: PodServerLatencyP90(s)
    agg: max
  latency_p99:
    title: Server latency p99
    kind: gauge
    unit: seconds
    role: latency
    direction: up
    column: PodServerLatencyP99(s)
    agg: max
  client_latency_p99:
    title: Client (outgoing call) latency p99
    kind: gauge
    unit: seconds
    role: other
    direction: up
    column: PodClientLatencyP99(s)
    agg: max
  workload:
    title: Requests served (ops/s)
    kind: gauge
    unit: req/s
    role: traffic
    direction: both
    column: PodWorkload(Ops)
    agg: sum
  net_rx:
    title: Network received (bytes/s)
    kind: gauge
    unit: bytes/s
    role: other
    direction: both
    column: NetworkReceiveBytes
    agg: sum
  net_tx:
    title: Network sent (bytes/s)
    kind: gauge
    unit: bytes/s
    role: other
    direction: both
    column: NetworkTransmitBytes
    agg: sum
"""


def incident_yaml(data: Path, normal: Path | None = None,
                  reference: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> str:
    """The incident.yaml for a Nezha-shaped folder (absolute paths to the raw files). With a
    fault-free folder, its logs and spans are read too and its span of time is declared as the
    reference period (the events of the incident are compared with it, not with the minutes
    before, which hold the previous injection)."""
    d = data.resolve()

    def paths(kind: str) -> str:
        if normal is None:
            return f"{d}/{kind}/*_{kind}.csv"
        return f"[{d}/{kind}/*_{kind}.csv, {normal.resolve()}/{kind}/*_{kind}.csv]"

    ref = ""
    if reference is not None:
        ref = (f"reference: {{start: '{reference[0].isoformat()}', "
               f"end: '{reference[1].isoformat()}'}}   # the fault-free export's time span\n")
    return f"""\
# Nezha / TrainTicket raw export, read as is (no converted copies).
{SIGNALS_YAML}{ref}sources:
  metrics:
    kind: files
    format: csv
    layout: wide
    path: {d}/metric/*_metric.csv
    fields: {{time: TimeStamp, pod: PodName}}
    time_unit: s
  logs:
    kind: files
    format: csv
    path: {paths("log")}
    fields: {{time: Timestamp, pod: PodName, message: Log, trace_id: TraceID}}
    message_format: docker_json  # Log holds the runtime's {{"log": "...", "stream", "time"}}
    # an app line that is itself JSON (Go, Python, Node services) is read by its message and
    # level keys (`structured`, on by default; docs/bring-your-own-data.md)
  spans:
    kind: files
    format: csv
    path: {paths("trace")}
    fields: {{trace_id: TraceID, span_id: SpanID, parent_id: ParentID, pod: PodName,
             operation: OperationName, start: StartTimeUnixNano, end: EndTimeUnixNano}}
    time_unit: ns
    root_parent: [root]
  # no changes: none exist in this export (optional; the report says so)
"""


def load_faults(data: Path) -> list[dict[str, Any]]:
    """Faults from <date>-fault_list.json, oldest first (read by the harness only)."""
    files = sorted(data.glob("*fault_list.json"))
    if not files:
        raise SystemExit(f"no *fault_list.json in {data}: pass a folder like rca_data/<date>/")
    raw = json.loads(files[0].read_text("utf-8"))
    faults = [f for hour in sorted(raw) for f in raw[hour]]
    for f in faults:
        f["time"] = pd.Timestamp(f["inject_time"], tz="UTC")
    return sorted(faults, key=lambda f: f["time"])


def infer_entry(data: Path) -> str:
    """The service owning most root spans (parent 'root' or empty) in the trace files."""
    from incident_lib.sources.tables import read_csv_columns

    rule, counts = PodRule(), Counter()
    for p in sorted((data / "trace").glob("*_trace.csv")):
        df = read_csv_columns(p, {"parent": "ParentID", "pod": "PodName"}, "spans")
        roots = df[df["parent"].isna() | df["parent"].isin(["root", ""])]
        counts.update(rule.map(roots["pod"]).dropna().tolist())
    if not counts:
        raise SystemExit(f"no root spans in {data}/trace: pass --entry SERVICE")
    return counts.most_common(1)[0][0]


def _alert(service: str, at: pd.Timestamp, name: str) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "benchmark",
            "groupKey": f"nezha-{name}", "commonLabels": {}, "commonAnnotations": {},
            "groupLabels": {},
            "alerts": [{"status": "firing", "startsAt": at.isoformat(),
                        "labels": {"alertname": "EntryLatencyOrErrors", "service": service},
                        "annotations": {"summary": f"alert on {service}"}}]}


def investigate(data: Path, work: Path, name: str, at: pd.Timestamp, entry: str,
                timeout: float, normal: Path | None = None,
                reference: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> dict[str, Any]:
    """Write incident.yaml + alert.json for one window and run `incident run`; read findings."""
    case = work / "cases" / name
    case.mkdir(parents=True, exist_ok=True)
    (case / "incident.yaml").write_text(incident_yaml(data, normal, reference), "utf-8")
    (case / "alert.json").write_text(json.dumps(_alert(entry, at, name)), "utf-8")
    cmd = [sys.executable, "-m", "incident_lib.cli", "run", "--alert", str(case / "alert.json"),
           "--data", str(case), "--start", (at - BEFORE).isoformat(),
           "--end", (at + AFTER).isoformat(), "--id", name]
    env = {**os.environ, "INCIDENT_RUNS_DIR": str(work / "runs")}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
        rc, err = proc.returncode, proc.stderr.strip().splitlines()[-1:] or [""]
    except subprocess.TimeoutExpired:
        rc, err = -1, [f"timeout after {timeout:.0f} s"]
    secs = time.perf_counter() - t0
    return read_run(work / "runs" / name, name, rc, err[0][:200], secs)


def read_run(run: Path, name: str, rc: int, error: str, secs: float) -> dict[str, Any]:
    """The scored parts of one run folder: ranked services, fact stated, rollback."""
    out: dict[str, Any] = {"name": name, "rc": rc, "error": error, "seconds": secs,
                           "ranked": [], "ranks": [], "suspects_ranked": [],
                           "suspects_ranks": [], "fact": False, "rollback": False,
                           "outcome": None}
    cor = _data(run / "findings" / "correlation.json")
    if cor:
        for key, rows in (("", (cor.get("service_ranking") or {}).get("ranking") or []),
                          ("suspects_", cor.get("suspects") or [])):
            seen: dict[str, int] = {}
            for s in rows:
                seen.setdefault(str(s.get("service")), int(s.get("rank") or len(seen) + 1))
            out[f"{key}ranked"] = list(seen)
            out[f"{key}ranks"] = list(seen.values())
    why = _data(run / "findings" / "five_whys.json")
    out["rollback"] = bool(why and (why.get("decision") or {}).get("decision") == "roll back")
    out["outcome"] = ((why or {}).get("outcome") or {}).get("kind")  # incident / no_incident..
    # stated as fact: the 5 Whys' root-cause claim (structured), not a phrase of the report
    claim = (why or {}).get("root_cause") or {}
    out["fact"] = bool(claim.get("stated")) if claim else bool(cor and cor.get("root_cause"))
    return out


def _quiet_counts(rows: list[dict[str, Any]]) -> str:
    """What windows without a fault said: no incident found, a root cause named, a rollback."""
    return (f"no_incident={sum(1 for r in rows if r['outcome'] not in (None, 'incident'))} "
            f"named_root_cause={sum(1 for r in rows if r['fact'])} "
            f"rollback={sum(1 for r in rows if r['rollback'])}")


def _rescored(run: Path, name: str) -> dict[str, Any]:
    try:
        st = json.loads((run / "status.json").read_text("utf-8"))
        secs = (pd.Timestamp(st["ended"]) - pd.Timestamp(st["started"])).total_seconds()
        rc = 0 if st.get("state") == "ok" else 1
    except (OSError, ValueError, KeyError):
        secs, rc = float("nan"), 1
    return read_run(run, name, rc, "" if rc == 0 else "run not ok", secs)


def _data(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text("utf-8")).get("data")
    except (OSError, ValueError):
        return None


def position(ranked: list[str], ranks: list[int], service: str) -> int | None:
    """1-based position of service, a tie counted at its last place; None when not ranked."""
    if service not in ranked:
        return None
    r = ranks[ranked.index(service)]
    return sum(1 for x in ranks if x <= r)


def scores(rows: list[dict[str, Any]]) -> dict[str, float]:
    """AC@1, AC@3, AC@5 and Avg@5 over scored rows."""
    n = len(rows)
    ac = {k: sum(1 for r in rows if r["pos"] is not None and r["pos"] <= k) / n if n else 0.0
          for k in range(1, 6)}
    return {"AC@1": ac[1], "AC@3": ac[3], "AC@5": ac[5], "Avg@5": sum(ac.values()) / 5}


def normal_span(normal: Path) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last span (or log) time of the fault-free folder."""
    from incident_lib.sources.tables import read_csv_columns

    times: list[pd.Timestamp] = []
    for p in sorted((normal / "trace").glob("*_trace.csv")) or sorted(
            (normal / "log").glob("*_log.csv")):
        col = "StartTimeUnixNano" if p.name.endswith("_trace.csv") else "TimeUnixNano"
        t = pd.to_numeric(read_csv_columns(p, {"t": col}, "spans")["t"], errors="coerce")
        times += [pd.Timestamp(int(t.min()), tz="UTC"), pd.Timestamp(int(t.max()), tz="UTC")]
    if not times:
        raise SystemExit(f"no trace or log files in {normal}")
    return min(times), max(times)


def normal_windows(normal: Path, n: int) -> list[pd.Timestamp]:
    """n alert times spread over the fault-free period, each with a full window inside it."""
    lo, hi = normal_span(normal)
    # alert moments inside the covered span, 20 min of (metric) history before each
    span = max(hi - lo, pd.Timedelta(0))
    return [lo + span * (i + 0.5) / n for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the per-type table and the overall line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--normal", type=Path)
    ap.add_argument("--entry")
    ap.add_argument("--cases", type=int)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--normal-windows", type=int, default=10)
    ap.add_argument("--quiet-windows", type=int, default=0,
                    help="also investigate N windows of --data with no injection from 25 min "
                         "before to 10 min after (metrics only there)")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--keep", type=Path, help="work folder to keep (default: a temp folder)")
    ap.add_argument("--rescore", action="store_true",
                    help="score the run folders already in --keep (no investigation; seconds "
                         "from each run's status.json)")
    args = ap.parse_args(argv)
    if args.rescore and not args.keep:
        raise SystemExit("--rescore needs --keep WORK (the folder of an earlier run)")
    faults = load_faults(args.data)[: args.cases]
    entry = args.entry or infer_entry(args.data)
    print(f"entry service: {entry}{'' if args.entry else ' (most root spans)'}")
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="nezha-")
    work = (args.keep or Path(tmp.name)).resolve()  # type: ignore[union-attr]
    rule = PodRule()
    ref = normal_span(args.normal) if args.normal else None
    jobs = [(args.data, f"case-{i:02d}", f["time"], args.normal, ref)
            for i, f in enumerate(faults)]
    if args.normal:  # fault-free windows: inside the normal folder, no reference of their own
        jobs += [(args.normal, f"normal-{i:02d}", t, None, None)
                 for i, t in enumerate(normal_windows(args.normal, args.normal_windows))]
    n_normal = len(jobs) - len(faults)
    injections = [f["time"] for f in load_faults(args.data)]
    jobs += [(args.data, f"quiet-{i:02d}", t, None, None)
             for i, t in enumerate(quiet_times(injections, args.quiet_windows))]
    if args.rescore:
        results = [_rescored(work / "runs" / j[1], j[1]) for j in jobs]
    else:
        with cf.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(lambda j: investigate(j[0], work, j[1], j[2], entry,
                                                          args.timeout, j[3], j[4]), jobs))
    rows = []
    for f, res in zip(faults, results, strict=False):
        truth = rule.service_of(f["inject_pod"])
        res.update(type=f["inject_type"], truth=truth,
                   pos=position(res["ranked"], res["ranks"], truth),
                   suspects_pos=position(res["suspects_ranked"], res["suspects_ranks"], truth))
        rows.append(res)
        print(f"{res['name']} {f['inject_time']} {f['inject_type']:<15} truth={truth} "
              f"pos={res['pos']} top3={res['ranked'][:3]} {res['seconds']:.0f}s"
              + (f" rc={res['rc']} {res['error']}" if res["rc"] else ""))
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_type[r["type"]].append(r)
    print("\n| fault type | cases | AC@1 | AC@3 | AC@5 | Avg@5 |\n|---|---|---|---|---|---|")
    for t, rs in sorted(by_type.items()):
        s = scores(rs)
        print(f"| {t} | {len(rs)} | {s['AC@1']:.2f} | {s['AC@3']:.2f} | {s['AC@5']:.2f} | "
              f"{s['Avg@5']:.2f} |")
    secs = [r["seconds"] for r in rows]
    failed = sum(1 for r in rows if r["rc"])
    if secs:
        print(f"\nseconds per case: median {statistics.median(secs):.1f}, mean "
              f"{statistics.mean(secs):.1f}, max {max(secs):.1f} (jobs={args.jobs}); "
              f"runs failed: {failed}")
    if args.normal:
        normal = results[len(faults):len(faults) + n_normal]
        overlap = sum(1 for j in jobs[len(faults):len(faults) + n_normal]
                      if any(j[2] - BEFORE <= t <= j[2] + AFTER for t in injections))
        if overlap:
            print(f"note: {overlap} of {len(normal)} fault-free windows overlap an injection "
                  "time of --data (their metric files may hold that fault)")
        print(f"fault-free windows={len(normal)} {_quiet_counts(normal)}")
    quiet = results[len(faults) + n_normal:]
    if quiet:
        print(f"quiet windows of --data={len(quiet)} {_quiet_counts(quiet)}")
    sus = scores([{**r, "pos": r["suspects_pos"]} for r in rows])
    print(f"suspects table (changes + anomalies + templates) cases={len(rows)} "
          f"AC@1={sus['AC@1']:.2f} AC@3={sus['AC@3']:.2f} AC@5={sus['AC@5']:.2f} "
          f"Avg@5={sus['Avg@5']:.2f}")
    s = scores(rows)
    print(f"overall cases={len(rows)} AC@1={s['AC@1']:.2f} AC@3={s['AC@3']:.2f} "
          f"AC@5={s['AC@5']:.2f} Avg@5={s['Avg@5']:.2f}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
