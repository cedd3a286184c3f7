"""Minimal loader of the raw Nezha TrainTicket layout into the analysis contract frames.

Used only by benchmarks/nezha_rank.py (the in-process ablation benchmark); the product reads
the same files through the documented readers of sources/. Mapping (documented in
../shared/data/nezha_trainticket/README.md):

- logs  ``log/HH_MM_log.csv``: time = ``Timestamp``, pod = ``PodName``, host = ``Node``,
  trace_id = ``TraceID``, message = the ``log`` field of the container-runtime JSON in ``Log``;
  level = the word after the logback clock (``16:42:22.382 INFO  ...``), None when absent; the
  clock and level are cut from the message (they are fields, not text).
- spans ``trace/HH_MM_trace.csv``: trace_id/span_id/parent_id (``root`` -> None), pod, operation,
  start = ``StartTimeUnixNano``, duration_ms = ``Duration`` / 1000 (microseconds); the export has
  no status column, so status is None (never guessed).
- metrics ``metric/<pod>_metric.csv``: one row a minute per pod; every numeric column except the
  node-level ones becomes one signal (long frame time, service, pod, value).
- service = pod name without the ReplicaSet hash and pod suffix.

Only ``inject_time`` of the fault list is used to place the window (the caller passes it).
Parsed frames are cached as Parquet under /tmp (never in the repository).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

CACHE = Path("/tmp/nezha_rank_cache")
_POD = re.compile(r"^(?P<svc>.+?)(?:-[0-9a-f]{6,10})?-[0-9a-z]{5}$")
_LEVEL = re.compile(r"^\d\d:\d\d:\d\d\.\d+\s+(TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL)\s+")
_FILE = re.compile(r"^(\d\d)_(\d\d)_")
SKIP_METRIC = {"Time", "TimeStamp", "PodName", "ServiceName"}
NODE_PREFIX = "Node"
# (signal name, unit, direction of badness, role) per pod metric column. Client-side latency is
# the time a pod waits for its callees: a symptom of the callees, so role "other", not latency.
SIGNALS: dict[str, tuple[str, str, str, str]] = {
    "CpuUsage(m)": ("cpu", "cores", "up", "saturation"),
    "CpuUsageRate(%)": ("cpu_rate", "ratio", "up", "saturation"),
    "MemoryUsage(Mi)": ("memory", "bytes", "up", "saturation"),
    "MemoryUsageRate(%)": ("memory_rate", "ratio", "up", "saturation"),
    "SyscallRead": ("syscall_read", "ops", "up", "other"),
    "SyscallWrite": ("syscall_write", "ops", "up", "other"),
    "NetworkReceiveBytes": ("net_rx", "bytes", "up", "other"),
    "NetworkTransmitBytes": ("net_tx", "bytes", "up", "other"),
    "PodClientLatencyP90(s)": ("client_p90", "seconds", "up", "other"),
    "PodServerLatencyP90(s)": ("server_p90", "seconds", "up", "latency"),
    "PodClientLatencyP95(s)": ("client_p95", "seconds", "up", "other"),
    "PodServerLatencyP95(s)": ("server_p95", "seconds", "up", "latency"),
    "PodClientLatencyP99(s)": ("client_p99", "seconds", "up", "other"),
    "PodServerLatencyP99(s)": ("server_p99", "seconds", "up", "latency"),
    "PodWorkload(Ops)": ("workload", "ops", "down", "traffic"),
}


# The export's units -> the product's (as benchmarks/nezha.py declares them with `scale`):
# millicores -> cores, MiB -> bytes, percent -> ratio. The unit floors of the onset and the
# metric kind (analysis.onset.ABS_FLOOR) are defined in these units.
SCALE = {"cpu": 0.001, "memory": float(1 << 20), "cpu_rate": 0.01, "memory_rate": 0.01}


def service_of(pod: str) -> str:
    """Kubernetes pod name -> service (strip the ReplicaSet hash and the pod suffix)."""
    m = _POD.match(str(pod))
    return m.group("svc") if m else str(pod)


def _minute_files(folder: Path, t0: pd.Timestamp, t1: pd.Timestamp) -> list[Path]:
    """Minute files HH_MM_*.csv whose minute (covering MM-1:09..MM:08) meets [t0, t1]."""
    out = []
    day = t0.normalize()
    for p in sorted(folder.glob("*.csv")):
        m = _FILE.match(p.name)
        if not m:
            continue
        end = day + pd.Timedelta(hours=int(m.group(1)), minutes=int(m.group(2)), seconds=9)
        if end >= t0 and end - pd.Timedelta(minutes=1) <= t1:
            out.append(p)
    return out


def _runtime_message(raw: object) -> str:
    """The app line inside a docker json-file object; the raw text when it is not one."""
    if not isinstance(raw, str):
        return ""
    try:
        obj = json.loads(raw)
    except ValueError:
        return raw
    return str(obj.get("log", "")) if isinstance(obj, dict) else raw


def _read_logs(paths: list[Path]) -> pd.DataFrame:
    cols = ["time", "service", "pod", "level", "message", "host", "trace_id", "status"]
    frames = []
    for p in paths:
        # a few rows carry unescaped quotes in Log: the columns before it are fixed, so the
        # extra fields are re-joined into Log
        df = pd.read_csv(p, dtype=str, engine="python",
                         on_bad_lines=lambda f: f[:7] + [",".join(f[7:])])
        if df.empty:
            continue
        msg = df["Log"].map(_runtime_message).str.rstrip("\n")
        lvl = msg.str.extract(_LEVEL)[0]
        lvl = lvl.where(lvl.notna(), None)
        msg = msg.str.replace(_LEVEL, "", n=1, regex=True)  # clock and level are fields
        frames.append(pd.DataFrame({
            "time": pd.to_datetime(df["Timestamp"], utc=True, format="ISO8601"),
            "service": df["PodName"].map(service_of), "pod": df["PodName"], "level": lvl,
            "message": msg, "host": df["Node"], "trace_id": df["TraceID"], "status": None}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def _read_spans(paths: list[Path]) -> pd.DataFrame:
    cols = ["trace_id", "span_id", "parent_id", "service", "pod", "operation", "start",
            "duration_ms", "status"]
    frames = []
    for p in paths:
        df = pd.read_csv(p, dtype={"TraceID": str, "SpanID": str, "ParentID": str,
                                   "PodName": str, "OperationName": str})
        if df.empty:
            continue
        parent = df["ParentID"].where(df["ParentID"] != "root", None)
        frames.append(pd.DataFrame({
            "trace_id": df["TraceID"], "span_id": df["SpanID"], "parent_id": parent,
            "service": df["PodName"].map(service_of), "pod": df["PodName"],
            "operation": df["OperationName"],
            "start": pd.to_datetime(df["StartTimeUnixNano"].astype("int64"), utc=True),
            "duration_ms": df["Duration"].astype(float) / 1000.0, "status": None}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def _read_metrics(folder: Path) -> dict[str, pd.DataFrame]:
    """All per-pod metric CSVs of a folder -> signal name -> long frame (whole file)."""
    cache = CACHE / (folder.parent.parent.name + "_" + folder.parent.name + "_metrics.parquet")
    if cache.exists():
        long = pd.read_parquet(cache)
    else:
        parts = []
        for p in sorted(folder.glob("*_metric.csv")):
            df = pd.read_csv(p)
            t = pd.to_datetime(df["TimeStamp"].astype("int64"), unit="s", utc=True)
            for col, (name, *_rest) in SIGNALS.items():
                if col in df:
                    parts.append(pd.DataFrame({"time": t, "pod": df["PodName"].astype(str),
                                               "signal": name,
                                               "value": pd.to_numeric(df[col], errors="coerce")}))
        long = pd.concat(parts, ignore_index=True)
        long["service"] = long["pod"].map(service_of)
        CACHE.mkdir(parents=True, exist_ok=True)
        long.to_parquet(cache)
    out = {s: g.drop(columns="signal").reset_index(drop=True)
           for s, g in long.groupby("signal", sort=True)}
    for name, factor in SCALE.items():  # to the units the product's signals use
        if name in out:
            out[name]["value"] = out[name]["value"] * factor
    return out


def quiet_times(injections: list[pd.Timestamp], n: int = 10,
                before: pd.Timedelta = pd.Timedelta("25min"),
                after: pd.Timedelta = pd.Timedelta("10min")) -> list[pd.Timestamp]:
    """Up to n alert times of the injections' day (09:00-23:00, 10 min apart at least) with no
    injection from `before` earlier to `after` later: fault-free windows of the same export
    (its metric files cover the day; its logs and spans only the minutes around faults)."""
    if not injections:
        return []
    day = min(injections).normalize()
    out: list[pd.Timestamp] = []
    t = day + pd.Timedelta(hours=9)
    while t < day + pd.Timedelta(hours=23) and len(out) < n:
        if all(not (t - before <= x <= t + after) for x in injections):
            out.append(t)
            t += pd.Timedelta("10min")
        else:
            t += pd.Timedelta("5min")
    return out


def load_window(root: Path, t0: pd.Timestamp, t1: pd.Timestamp
                ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """(signal frames cut to [t0, t1], logs, spans) of one data folder; cached under /tmp."""
    key = f"{root.parent.name}_{root.name}_{t0:%H%M%S}_{t1:%H%M%S}"
    CACHE.mkdir(parents=True, exist_ok=True)
    lp, sp = CACHE / f"{key}_logs.parquet", CACHE / f"{key}_spans.parquet"
    if lp.exists() and sp.exists():
        logs, spans = pd.read_parquet(lp), pd.read_parquet(sp)
    else:
        logs = _read_logs(_minute_files(root / "log", t0, t1))
        spans = _read_spans(_minute_files(root / "trace", t0, t1))
        logs = logs[(logs["time"] >= t0) & (logs["time"] <= t1)].reset_index(drop=True)
        spans = spans[(spans["start"] >= t0) & (spans["start"] <= t1)].reset_index(drop=True)
        logs.to_parquet(lp)
        spans.to_parquet(sp)
    metrics = {k: v[(v["time"] >= t0) & (v["time"] <= t1)].reset_index(drop=True)
               for k, v in _read_metrics(root / "metric").items()}
    return metrics, logs, spans


def signal_meta() -> dict[str, dict[str, str]]:
    """Per-signal unit, direction of badness and role."""
    return {name: {"unit": u, "direction": d, "role": r} for name, u, d, r in SIGNALS.values()}
