"""Stage 4, postmortem: timeline and report.md rendered from every stage's findings."""

from __future__ import annotations

import typing
from typing import Any

import pandas as pd

from ..analysis.timeline import build_timeline
from ..core.findings import CorrelationFindings, PostmortemFindings
from ..core.model import iso
from ..core.storage import atomic_write_text
from ..report.display import Section
from ..report.render import render_template
from ..runs.folder import STAGES, Run
from .notes import apply_notes, early_signal, init_notes

__all__ = ["gather", "timeline", "render", "save", "render_report", "run"]

IMPACT_DEFAULTS: dict[str, Any] = {
    "onset": None, "recovered": None, "as_of": None, "status": None, "duration_s": None,
    "affected_services": [], "customer_error_share": None, "failed_requests": None,
    "total_requests": None, "customer_latency_ratio": None,
}


def gather(run: Run) -> Section:
    """All findings, and which are missing and why (from the runner's status.json)."""
    found = {s: run.findings(s) for s in STAGES[:3]}
    status = run.status().get("stages", {})
    missing = []
    for s, f in found.items():
        if f is None:
            st = status.get(s, {})
            why = st.get("error") or (f"stage {st['state']}" if st.get("state") else
                                      "stage has not run")
            missing.append({"stage": s, "why": why})
    idx = run.evidence_index()
    partial = [{"evidence": k, "warnings": v.get("warnings", [])} for k, v in idx.items()
               if v.get("partial")]
    md = "All stages produced findings." if not missing else "Missing: " + "; ".join(
        f"{m['stage']} ({m['why']})" for m in missing)
    return Section("Inputs", md, {"findings": found, "missing": missing, "partial": partial,
                                  "evidence": idx})


def timeline(run: Run, g: Section) -> Section:
    """Timeline table: changes, first movers, onset, alert, mitigation, recovery, resolve."""
    tri = g.data["findings"]["triage"] or {}
    inc = run.incident
    ev: list[dict[str, Any]] = []
    for c in tri.get("changes", []):
        ev.append({"time": c["time"], "event": f"{c['type']} {c['id']} on {c['service']}: "
                                               f"{c['description']}", "source": "changes"})
    movers = tri.get("onset", {}).get("first_movers", [])
    if movers:
        m = movers[0]
        ev.append({"time": m["onset"], "event": f"first signal moved: {m['series']}",
                   "source": "metrics"})
    if tri.get("onset", {}).get("time"):
        ev.append({"time": tri["onset"]["time"], "event": "incident onset (impact begins)",
                   "source": "metrics (detected)"})
    if inc.alert_time:
        ev.append({"time": inc.alert_time, "event": f"alert fired: {inc.title}",
                   "source": "alertmanager"})
    ev.append({"time": inc.created, "event": "investigation started", "source": "incident_lib"})
    rec = (tri.get("impact") or {}).get("recovered")
    if rec:
        ev.append({"time": rec, "event": "signals back to baseline (mitigated)",
                   "source": "metrics (detected)"})
    if inc.resolved_at:
        ev.append({"time": inc.resolved_at, "event": "alert resolved", "source": "alertmanager"})
    tl = build_timeline(ev)
    for e in tl:
        e["when"] = pd.Timestamp(e["time"]).strftime("%Y-%m-%d %H:%M:%S")
    return Section("Timeline", "", {"events": tl})


def _context(run: Run, g: Section, tl: Section) -> dict[str, Any]:
    f = g.data["findings"]
    tri = {"onset": {}, "impact": {}, "severity": None, "changes": [], **(f["triage"] or {})}
    cor, why = f["correlation"] or {}, f["five_whys"] or {}
    inc = run.incident
    onset = (tri.get("onset") or {}).get("time")
    mttd = None
    if onset and inc.alert_time:
        mttd = (pd.Timestamp(inc.alert_time) - pd.Timestamp(onset)).total_seconds()
    suspects = cor.get("suspects") or []
    top = suspects[0] if suspects else None
    mitigation = next((c for c in tri.get("changes", []) if c.get("type") == "rollback"
                       and onset and pd.Timestamp(c["time"]) >= pd.Timestamp(onset)), None)
    queries = [{"name": k, "query": v.get("query", ""), "backend": v.get("backend", ""),
                "rows": v.get("rows", 0), "partial": v.get("partial", False)}
               for k, v in g.data["evidence"].items()]
    return {
        "early_signal": early_signal(run.triage()),
        "top_suspect": (run.correlation() or CorrelationFindings()).top,
        "triage_missing": f["triage"] is None,
        "has_plot": (run.path / "report_files" / "golden_signals.png").is_file(),
        "incident": inc, "triage": tri, "correlation": cor, "whys": why.get("whys", []),
        "decision": why.get("decision"), "severity": tri.get("severity"),
        "impact": {**IMPACT_DEFAULTS, **(tri.get("impact") or {})}, "onset": onset,
        "mttd_s": mttd, "top": top,
        "suspects": suspects[:5], "mitigation": mitigation, "timeline": tl.data["events"],
        "missing": g.data["missing"], "partial": g.data["partial"], "queries": queries,
        # stated as fact only with a strong score, evidence and a clear lead over the next
        "confident": bool(top and top["score"] >= 0.7 and top.get("evidence")
                          and top.get("margin", 1.0) >= 0.15),
        "generated": iso(pd.Timestamp.now(tz="UTC")),
    }


def render(run: Run, g: Section, tl: Section) -> Section:
    """Render templates/postmortem.md.j2 and write report.md atomically."""
    init_notes(run.path)  # a notes.yaml starter for responders; their edits survive re-renders
    text = render_template("postmortem.md.j2", apply_notes(_context(run, g, tl), run.path))
    path = run.path / "report.md"
    atomic_write_text(path, text)
    return Section("Report", text, {"path": str(path), "text": text})


def save(run: Run, g: Section, report: Section) -> Any:
    """Write findings/postmortem.json."""
    return run.save_findings("postmortem", {"report": "report.md", "missing": g.data["missing"],
                                            "partial": g.data["partial"]})


def render_report(run: Run) -> str:
    """Gather, build the timeline and write report.md (used by the runner as a fallback too)."""
    g = gather(run)
    rep = render(run, g, timeline(run, g))
    return rep.data["path"]


def run(run: Run) -> PostmortemFindings:
    """The whole postmortem stage in one call: report.md written, findings saved."""
    g = gather(run)
    rep = render(run, g, timeline(run, g))
    save(run, g, rep)
    return typing.cast(PostmortemFindings, run.load_findings("postmortem"))
