"""Helpers shared by the stages: windows, topology, evidence re-use."""

from __future__ import annotations

import pandas as pd

from ..core.findings import TriageFindings
from ..core.signals import signals
from ..runs.folder import Run
from ..sources.base import choose_step

__all__ = ["calls_of", "entrypoints_of", "signal_frames", "windows"]


def calls_of(run: Run) -> dict[str, list[str]]:
    """Caller -> callees from the incident's topology (empty when unknown)."""
    return {str(k): [str(x) for x in (v or [])]
            for k, v in (run.incident.topology.get("calls") or {}).items()}


def entrypoints_of(run: Run) -> list[str]:
    """Customer-facing services (topology entrypoints, else the incident's service)."""
    eps = run.incident.topology.get("entrypoints") or []
    return [str(e) for e in eps] or [run.incident.service]


def signal_frames(run: Run, stage: str, names: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Each signal over the incident window: from evidence if recorded, else queried now."""
    inc = run.incident
    step = choose_step(inc.start_ts, inc.end_ts)
    out: dict[str, pd.DataFrame] = {}
    index = run.evidence_index()
    for name in names or list(signals()):
        key = f"signal_{name}"
        if key in index:
            out[name] = run.evidence(key)
            continue
        res = run.metrics.query_signal(name, inc.start_ts, inc.end_ts, step)
        out[name] = run.record(key, res, stage)
    for df in out.values():
        if len(df):
            df["time"] = pd.to_datetime(df["time"], utc=True)
    return out


def windows(triage: TriageFindings, run: Run) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """Baseline [start, onset-5min) and incident [onset, recovery or end] windows."""
    inc = run.incident
    onset = pd.Timestamp(triage.onset.time) if triage.onset.time else None
    if onset is None:
        ref = inc.alert_ts or inc.end_ts
        onset = ref - pd.Timedelta("15min")
    rec = triage.impact.recovered
    end = pd.Timestamp(rec) if rec else inc.end_ts
    return {"baseline": (inc.start_ts, onset - pd.Timedelta("5min")), "incident": (onset, end)}
