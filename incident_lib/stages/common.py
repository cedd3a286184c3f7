"""Helpers shared by the stages: windows, topology, evidence re-use."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..analysis.outcome import decide_outcome
from ..core.findings import Findings, TriageFindings
from ..runs.folder import Run
from ..sources.base import choose_step

__all__ = ["calls_of", "entrypoints_of", "signal_frames", "windows", "alert_lead",
           "reference_window", "outcome_of", "tool_links"]


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
    for name in names or list(run.signals):
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


def reference_window(run: Run) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The declared normal period (`reference: {start, end}` in incident.yaml), or None."""
    ref = (run.incident.topology or {}).get("reference")
    if not ref:
        return None
    return pd.Timestamp(ref["start"]), pd.Timestamp(ref["end"])


def windows(triage: TriageFindings, run: Run) -> dict[str, Any]:
    """Baseline [start, onset-5min) and incident [onset, recovery or end] windows.

    With an alert, the incident window starts no later than the alert (it fires while its
    condition holds, so the incident is on by then even when the measured series moved later)
    and no earlier than `alert_lead` before it (it fires `for:` after the condition began, so
    an excursion that started long before, one noisy series among many or an earlier episode,
    does not widen the window); the windows say so (`anchored_on_alert`, `earliest_excursion`,
    `onset_after_alert`, `measured_onset`).

    Without a measured onset no incident window is invented (not `alert - 15 min`): the
    window is split in half so correlation can still describe what changed (second half vs
    first half), `onset_known` is False, and no suspect is ranked from it.
    """
    inc = run.incident
    onset = pd.Timestamp(triage.onset.time) if triage.onset.time else None
    if onset is None:
        mid = inc.start_ts + (inc.end_ts - inc.start_ts) / 2
        return {"baseline": (inc.start_ts, mid), "incident": (mid, inc.end_ts),
                "onset_known": False}
    rec = triage.impact.recovered
    end = pd.Timestamp(rec) if rec else inc.end_ts
    out: dict[str, Any] = {"onset_known": True, "anchored_on_alert": False}
    alert = getattr(inc, "alert_ts", None)
    if alert is not None:
        lead = alert_lead(getattr(inc, "topology", None) or {})
        if onset < alert - lead:
            # an alert fires `for:` after its condition starts: an earlier first excursion
            # (often one noisy series among many) would pull an earlier episode into the window
            out.update(anchored_on_alert=True, earliest_excursion=onset, lead=lead)
            onset = alert - lead
        elif onset > alert and end > alert:
            # the alert fires while its condition holds: the incident is on at the alert even
            # when the measured series moved later
            out.update(onset_after_alert=True, measured_onset=onset)
            onset = alert
    return {**out, "baseline": (inc.start_ts, onset - pd.Timedelta("5min")),
            "incident": (onset, end)}


def alert_lead(topology: dict[str, Any]) -> pd.Timedelta:
    """How long before the alert the incident window may start: the alert's `for:` duration
    (`alert_for` in incident.yaml, default 5m) plus scrape and evaluation lag (2 min)."""
    return pd.Timedelta(str(topology.get("alert_for") or "5m")) + pd.Timedelta("2min")


def outcome_of(run: Run, triage: dict[str, Any] | Findings | None,
               correlation: dict[str, Any] | Findings | None = None) -> dict[str, Any]:
    """The investigation's outcome from triage findings, what the evidence queries returned
    and, once correlation ran, what its logs and spans confirm (`corroboration`)."""
    tri = (triage.to_dict() if isinstance(triage, Findings) else triage) or {}
    cor = (correlation.to_dict() if isinstance(correlation, Findings) else correlation) or {}
    impact = tri.get("impact") or {}
    idx = run.evidence_index()
    ev_rows = {k: int(v.get("rows") or 0) for k, v in idx.items()
               if not k.startswith("signal_") and v.get("backend") != "analysis"}
    metric_rows = {k: int((v or {}).get("rows") or 0)
                   for k, v in (tri.get("signals") or {}).items()} or {
        k[len("signal_"):]: int(v.get("rows") or 0) for k, v in idx.items()
        if k.startswith("signal_")}
    if not tri:
        return {"kind": "inconclusive", "reasons": ["triage produced no findings: onset and "
                                                    "impact are unknown"],
                "checked": [], "strongest_deviation": None}
    return decide_outcome(onset=(tri.get("onset") or {}).get("time"),
                          alerted=run.incident.alert_time is not None, evidence_rows=ev_rows,
                          metric_rows=metric_rows,
                          strongest=tri.get("strongest_deviation"),
                          affected=impact.get("affected_services"),
                          range_checks=impact.get("range_checks"),
                          corroboration=(cor.get("service_ranking") or {}).get("corroboration"))


def tool_links(run: Run, service: str | None = None) -> dict[str, Any]:
    """Links of the run's evidence to the configured tools, and to the run on `incident serve`:
    {"evidence": [{evidence, tool, url}, ...], "run": url or None, "logs": Kibana url or None}
    (`logs`: the window's logs of `service`, e.g. the suspect)."""
    from ..core.signals import render_promql
    from ..report.links import evidence_links, kibana_discover_url, kql_phrase, served_run_url

    inc = run.incident
    cfg = inc.topology.get("links") or {}
    try:
        declared = {n: render_promql(s) for n, s in run.signals.items() if s.promql}
    except Exception:  # noqa: BLE001 - a bad signal declaration costs the links, not the run
        declared = {}
    out: dict[str, Any] = {"evidence": evidence_links(cfg, run.evidence_index(), inc.start,
                                                      inc.end, declared),
                           "run": served_run_url(cfg["served_runs"], inc.id)
                           if cfg.get("served_runs") else None, "logs": None}
    if service and cfg.get("kibana"):
        k = cfg["kibana"]
        out["logs"] = kibana_discover_url(k["url"], k["data_view"],
                                          kql_phrase(k.get("service_field", "service.name"),
                                                     service), inc.start, inc.end)
    return out
