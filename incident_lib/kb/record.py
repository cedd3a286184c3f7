"""Record a run in the knowledge base: its entry built from findings and notes, rendered as
Markdown with YAML front matter (templates/kb_entry.md.j2), written with its report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from markupsafe import Markup

from ..core.findings import CorrelationFindings, TriageFindings
from ..core.notes import load_notes
from ..core.safe import clean_text
from ..core.storage import atomic_write_bytes, atomic_write_text
from ..report.render import render_template
from ..runs.folder import Run
from ..stages.notes import default_action_items, early_signal
from ..stages.state import mitigation_of
from .entries import _open_items, _seconds, _uniq, kb_root, symptoms_of_run
from .similar import similar_incidents

__all__ = ["build_entry", "render_entry", "write_entry"]


def build_entry(run: Any, kb_dir: Path | None = None) -> dict[str, Any]:
    """The KB entry (front matter fields) of a run, from its findings and notes.yaml."""

    notes = load_notes(run.path)
    tri = run.triage() or TriageFindings()
    cor = run.correlation() or CorrelationFindings()
    why = run.findings("five_whys") or {}
    inc = run.incident
    impact = tri.impact
    outcome = why.get("outcome") or tri.extra.get("outcome") or {"kind": "incident"}
    is_incident = outcome.get("kind") == "incident"
    top = cor.top if is_incident else None
    claim = why.get("root_cause") or {}
    started = impact.onset or tri.onset.time or inc.alert_time or inc.start
    resolved = notes.get("resolved") or inc.resolved_at
    mitigated = impact.recovered or resolved
    rc_note = notes["root_cause"]
    summary = rc_note.get("text") or (
        top.service + (f" after {top.change_type} {top.change_id} ({top.change})"
                       if top.change_id else "") if top else None)
    items = notes.get("action_items")
    if items is None:
        items = default_action_items(top, early_signal(tri, inc.topology.get("alert_for"))) \
            if is_incident else []
    confirmed = bool(rc_note.get("confirmed") and summary)
    rc_state = "confirmed" if confirmed else ("suspected" if summary else "unknown")
    sym = symptoms_of_run(run)
    tags = _uniq([f"alert:{inc.labels['alertname']}" if inc.labels.get("alertname") else None,
                  f"cause:{top.service}" if top else None,
                  f"change:{top.change_type}" if top and top.change_type else None,
                  *notes.get("tags", [])])
    related = [p.relative_to(run.path).as_posix() for p in [
        run.path / "report.md", run.path / "notes.yaml", run.path / "incident.json",
        *sorted((run.path / "findings").glob("*.json")),
        run.path / "report_files" / "golden_signals.png"] if p.is_file()]
    # write_entry copies the report next to the entry: <kb>/<id>/report.md (+ figures)
    postmortem = f"{inc.id}/report.md" if (run.path / "report.md").is_file() else None
    return {
        "incident_id": inc.id,
        "title": inc.title,
        "severity": tri.severity.level if tri.severity else "unknown",
        "started": started,
        "detected": inc.alert_time or inc.created,
        "acknowledged": notes.get("acknowledged"),
        "mitigated": mitigated,
        "resolved": resolved,
        "duration": _seconds(started, mitigated),
        "impact": {"customer_error_share": impact.customer_error_share,
                   "failed_requests": impact.failed_requests,
                   "total_requests": impact.total_requests,
                   "users_affected": notes.get("users_affected"),
                   "revenue_impact": notes.get("revenue_impact")},
        "services": sym["services"],
        "outcome": outcome.get("kind"),
        "root_cause": {"service": top.service if top else None,
                       "change_id": top.change_id if top else None,
                       "summary": summary, "confirmed": confirmed, "state": rc_state,
                       "confidence": claim.get("confidence")},
        "timeline": _timeline_of(run, notes),
        "resolution": _resolution_of(tri.to_dict(), why, resolved),
        "prevention": _uniq([*(a["action"] for a in items
                               if a.get("type") in ("prevent", "detect")),
                             notes.get("long_term_prevention")]),
        "tags": tags,
        "repeat_of": notes.get("repeat_of"),
        "symptoms": {k: sym[k] for k in ("signals", "labels", "templates")},
        "related_files": related,
        "postmortem": postmortem,
        "action_items": items,
    }


def _timeline_of(run: Any, notes: dict[str, Any]) -> list[dict[str, str]]:
    """The postmortem's timeline (detected events plus responders' notes), oldest first."""
    from ..stages.postmortem import gather, timeline

    events = timeline(run, gather(run)).data["events"]
    events = [*events, *(notes.get("timeline") or [])]
    out = [{"time": str(e["time"]), "event": str(e["event"])} for e in events]
    return sorted(out, key=lambda e: e["time"])


def _resolution_of(tri: dict[str, Any], why: dict[str, Any], resolved: str | None) -> list[str]:
    """What restored service: the mitigation applied, the recovery seen, the resolve time."""
    impact = tri.get("impact") or {}
    mit = mitigation_of(tri.get("changes") or [], impact.get("onset"))
    dec = why.get("decision") or {}
    out = []
    if dec.get("decision") not in (None, "none"):
        out.append(f"recommended: {dec['decision']} {dec.get('target') or ''}".strip())
    if mit:
        out.append(f"applied: {mit['type']} {mit['id']} on {mit['service']} at {mit['time']}")
    if impact.get("recovered"):
        out.append(f"signals back to baseline at {impact['recovered']}")
    if resolved:
        out.append(f"resolved at {resolved}")
    return out


def _yaml_text(data: dict[str, Any]) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        if isinstance(v, str):
            return clean_text(v, 2000).replace("\r", "")
        return v

    return yaml.safe_dump(clean(data), sort_keys=False, allow_unicode=True, width=1_000_000,
                          default_flow_style=False)


def render_entry(data: dict[str, Any]) -> str:
    """The KB entry file: YAML front matter (safe_dump) and a Markdown summary (escaped)."""


    fm = _yaml_text(data)
    return render_template("kb_entry.md.j2", {"front_matter": Markup(fm), "e": data,
                                              "open_items": _open_items(data)})


def write_entry(run: Any, kb_dir: str | Path | None = None) -> Path:
    """Write <kb>/<incident-id>.md for a run (repeat_of filled from the KB when it is clear)."""

    run = run if hasattr(run, "findings") else Run(run)
    base = kb_root(kb_dir)
    data = build_entry(run, base)
    if data["repeat_of"] is None and base.is_dir():
        sim = similar_incidents(run, base, top=1)
        if len(sim) and bool(sim["likely_repeat"].iat[0]):
            data["repeat_of"] = str(sim["incident_id"].iat[0])
    if data["postmortem"]:
        _copy_report(run.path, base / data["incident_id"])
    path = base / f"{data['incident_id']}.md"
    atomic_write_text(path, render_entry(data))
    return path


def _copy_report(run_dir: Path, dest: Path) -> None:
    """The postmortem and its figures, copied into the KB so the entry's link keeps working."""

    atomic_write_bytes(dest / "report.md", (run_dir / "report.md").read_bytes())
    figures = run_dir / "report_files"
    if figures.is_dir():
        for f in sorted(figures.iterdir()):
            if f.is_file() and not f.is_symlink():
                atomic_write_bytes(dest / "report_files" / f.name, f.read_bytes())
