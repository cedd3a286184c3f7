"""Stage 4, postmortem: timeline and report.md rendered from every stage's findings."""

from __future__ import annotations

import typing
from typing import Any

import pandas as pd

from ..analysis.outcome import root_cause_claim
from ..analysis.timeline import build_timeline
from ..core.findings import CorrelationFindings, PostmortemFindings
from ..core.model import iso
from ..core.storage import atomic_write_text
from ..report.display import Section
from ..report.render import render_template
from ..runs.folder import STAGES, Run
from .common import outcome_of, tool_links
from .notes import apply_notes, early_signal, init_notes
from .state import RESPONSE_TARGET, current_state, mitigation_of

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


def _side_effect(mover: dict[str, Any], changes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A change on the mover's own service in the 5 minutes before it moved (a side effect)."""
    t = pd.Timestamp(mover["onset"])
    near = [c for c in changes if c.get("service") == mover.get("service") and c.get("time")
            and pd.Timedelta(0) <= t - pd.Timestamp(c["time"]) <= pd.Timedelta("5min")]
    return near[-1] if near else None


def _context(run: Run, g: Section, tl: Section) -> dict[str, Any]:
    f = g.data["findings"]
    tri = {"onset": {}, "impact": {}, "severity": None, "changes": [], **(f["triage"] or {})}
    cor, why = f["correlation"] or {}, f["five_whys"] or {}
    inc = run.incident
    outcome = why.get("outcome") or outcome_of(run, f["triage"], f["correlation"])
    incident = outcome["kind"] == "incident"
    claim = why.get("root_cause") or root_cause_claim(outcome, cor)
    onset = (tri.get("onset") or {}).get("time") if incident else None
    mttd = None
    if onset and inc.alert_time:
        mttd = (pd.Timestamp(inc.alert_time) - pd.Timestamp(onset)).total_seconds()
    suspects = (cor.get("suspects") or []) if incident else []
    top = suspects[0] if suspects else None
    changes = tri.get("changes") or []
    mitigation = mitigation_of(changes, onset)
    queries = [{"name": k, "query": v.get("query", ""), "backend": v.get("backend", ""),
                "rows": v.get("rows", 0), "partial": v.get("partial", False)}
               for k, v in g.data["evidence"].items()]
    decision = why.get("decision") if incident else None
    movers = (tri.get("onset") or {}).get("first_movers") or []
    first = movers[0] if movers and incident else None
    impact = {**IMPACT_DEFAULTS, **(tri.get("impact") or {})}
    peaks = [(p.get("error_rate peak"), p["service"]) for p in impact.get("per_service") or []
             if p.get("service") in (impact.get("entrypoints") or [])
             and p.get("error_rate peak") is not None]
    return {
        "tool_links": _tool_link_rows(run, top),
        "early_signal": early_signal(run.triage(), inc.topology.get("alert_for"))
        if incident else None,
        "top_suspect": (run.correlation() or CorrelationFindings()).top if incident else None,
        "triage_missing": f["triage"] is None,
        "has_plot": (run.path / "report_files" / "golden_signals.png").is_file(),
        "incident": inc, "triage": tri, "correlation": cor, "whys": why.get("whys", []),
        "decision": decision if decision and decision.get("decision") != "none" else None,
        "severity": tri.get("severity"), "outcome": outcome, "claim": claim,
        "impact": impact, "onset": onset, "entry_peak": max(peaks) if peaks else None,
        "mttd_s": mttd, "top": top, "first_mover": first,
        "first_mover_cause": _side_effect(first, changes) if first else None,
        "suspects": suspects[:5], "ranking": ranking_rows(cor) if incident else [],
        "ranking_reason": (cor.get("service_ranking") or {}).get("reason") or "",
        "mitigation": mitigation, "timeline": tl.data["events"],
        "missing": g.data["missing"], "partial": g.data["partial"], "queries": queries,
        # stated as fact only with a strong score, evidence and a clear lead over the next
        "confident": bool(claim.get("stated")),
        "response_target": RESPONSE_TARGET,
        "generated": iso(pd.Timestamp.now(tz="UTC")),
    }


def ranking_rows(cor: dict[str, Any], n: int = 5) -> list[dict[str, Any]]:
    """The service ranking's top n for the report: rank, service, score and its evidence kinds
    (the ranking decides whether a root cause is stated; the suspects table may lead with
    another service, so the reader sees both)."""
    rows = ((cor or {}).get("service_ranking") or {}).get("ranking") or []
    return [{"rank": r.get("rank"), "service": r.get("service"), "score": r.get("score"),
             "evidence": ", ".join(f"{k} {v:.2f}" for k, v in (r.get("kinds") or {}).items())
             + (f"; victim of {', '.join(r['victim_of'])}" if r.get("victim_of") else "")}
            for r in rows[:n]]


def _tool_link_rows(run: Run, top: dict[str, Any] | None) -> dict[str, Any]:
    """Markdown links per evidence (Grafana/Prometheus/Kibana), the served run, suspect logs."""
    from ..report.links import md_link

    links = tool_links(run, (top or {}).get("service"))
    rows: dict[str, list[str]] = {}
    for link in links["evidence"]:
        rows.setdefault(link["evidence"], []).append(md_link(link["tool"], link["url"]))
    return {"evidence": [{"name": k, "links": " · ".join(v)} for k, v in rows.items()],
            "run": md_link("this run", links["run"]) if links["run"] else None,
            "logs": md_link(f"logs of {(top or {}).get('service')}", links["logs"])
            if links["logs"] else None}


def _first_screen(ctx: dict[str, Any], run: Run) -> dict[str, Any]:
    """Status, title, MTTA, SLO burn: what needs the responders' notes as well as findings."""
    inc = run.incident
    sev = (ctx.get("severity") or {}).get("level")
    dec = ctx.get("decision")
    rec = f"{dec['decision']} {dec['target']}".strip() if dec else None
    ctx["state"] = current_state(
        outcome=ctx["outcome"], impact=ctx["impact"], severity=sev,
        changes=ctx["triage"].get("changes") or [], recommendation=rec,
        cause_stated=ctx["confident"], resolved_at=ctx.get("resolved_note") or inc.resolved_at,
        action=(ctx.get("notes") or {}).get("current_action"),
        cadence=inc.topology.get("status_cadence_minutes"))
    ctx["doc_title"] = ("Postmortem" if ctx["state"]["state"] == "Resolved" else
                        "Incident summary" if ctx["outcome"]["kind"] == "incident" else
                        "Investigation summary")
    ack = ctx.get("acknowledged")
    ctx["mtta_s"] = ((pd.Timestamp(ack) - pd.Timestamp(inc.alert_time)).total_seconds()
                     if ack and inc.alert_time else None)
    ctx["slo_burn"] = _slo_burn(ctx["impact"], inc.topology.get("slo"))
    return ctx


def _slo_burn(impact: dict[str, Any], slo: Any) -> dict[str, Any] | None:
    """Share of the SLO window's error budget the failed requests used (at the incident's rate)."""
    if not isinstance(slo, dict) or not slo.get("target") or not impact.get("total_requests"):
        return None
    target, days = float(slo["target"]), float(slo.get("window_days", 30))
    if not 0 < target < 1 or not impact.get("duration_s"):
        return None
    rate = impact["total_requests"] / impact["duration_s"]
    budget = (1 - target) * rate * days * 86400
    return {"target": target, "window_days": days,
            "burn": impact["failed_requests"] / budget if budget else None}


def render(run: Run, g: Section, tl: Section) -> Section:
    """Render templates/postmortem.md.j2 and write report.md atomically."""
    init_notes(run.path)  # a notes.yaml starter for responders; their edits survive re-renders
    ctx = _first_screen(apply_notes(_context(run, g, tl), run.path), run)
    text = render_template("postmortem.md.j2", ctx)
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
