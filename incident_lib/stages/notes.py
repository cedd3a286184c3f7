"""Responder notes merged into the report context; the generated action items; the early
signal worth alerting on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..core.findings import Suspect, TriageFindings
from ..core.notes import (
    NOTES_FILE,
    NOTES_TEMPLATE,
    check_notes,
    empty_notes,
    load_status_updates,
)
from ..core.signals import signals
from ..core.storage import atomic_write_text
from ..runs.folder import Run

__all__ = ["apply_notes", "default_action_items", "early_signal", "init_notes",
           "merge_into_context"]


def default_action_items(top: Suspect | None,
                         early_signal: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The generated action items (owner and due left for people)."""
    items = []
    if top and top.change_id:
        items.append({"action": f"Find and fix the defect in {top.change_id} before "
                               "redeploying", "type": "fix"})
    if early_signal:
        items.append({"action": f"Alert on {early_signal['series']} (moved before impact)",
                      "type": "detect"})
    items.append({"action": "Add a pre-production check for this failure mode",
                  "type": "prevent"})
    return [{**i, "owner": None, "due": None, "status": "open"} for i in items]


def early_signal(triage: TriageFindings | None, alert_for: Any = "5m") -> dict[str, Any] | None:
    """The earliest utilisation signal (a share of a limit) whose alert would have paged first.

    An alert on it fires `alert_for` (its `for:` duration) after it moves, so it is advice only
    when it moved at least that long before the impact onset; a signal that moved 30 s
    earlier pages after the impact alert and is not worth an alert of its own.
    """
    if isinstance(triage, dict):
        triage = TriageFindings.from_dict(triage)
    onset = triage.onset.time if triage else None
    if not triage or not onset:
        return None
    hold = pd.Timedelta(alert_for or "5m")
    defs = signals()
    for m in triage.onset.first_movers:
        d = defs.get(m.get("signal", ""))
        if not (d and d.golden == "saturation" and d.unit == "ratio"):
            continue
        lead = pd.Timestamp(onset) - pd.Timestamp(m["onset"])
        if lead >= hold:
            return {**m, "lead_s": lead.total_seconds(), "alert_for_s": hold.total_seconds()}
    return None


def init_notes(run_path: Path) -> Path:
    """Write a commented notes.yaml skeleton (generated action items pre-filled) if missing."""


    p = Path(run_path) / NOTES_FILE
    if p.exists():
        return p
    run = Run(run_path)
    cor = run.correlation()
    tri = run.findings("triage") or {}
    kind = ((run.findings("five_whys") or {}).get("outcome") or tri.get("outcome")
            or {}).get("kind", "incident")
    items = default_action_items(cor.top if cor else None, early_signal(
        run.triage(), run.incident.topology.get("alert_for"))) if kind == "incident" else []
    actions = "\n" + yaml.safe_dump(items, sort_keys=False, allow_unicode=True, width=1000)
    actions = "\n".join("  " + ln if ln else ln for ln in actions.splitlines())
    atomic_write_text(p, NOTES_TEMPLATE.format(id=run.incident.id, actions=actions))
    return p


def merge_into_context(ctx: dict[str, Any], notes: dict[str, Any],
                       updates: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Add the notes to the postmortem template context (action items, lessons, timeline...)."""
    notes = {**empty_notes(), **(notes or {})}
    ctx = dict(ctx)
    ctx["notes"] = notes
    rc = notes["root_cause"]
    ctx["root_cause_note"] = rc if rc.get("text") else None
    ctx["root_cause_confirmed"] = bool(rc.get("confirmed") and rc.get("text"))
    ctx["not_caught_because"] = rc.get("not_caught_because")
    ctx["users_affected"] = notes.get("users_affected")
    ctx["revenue_impact"] = notes.get("revenue_impact")
    ctx["long_term_prevention"] = notes.get("long_term_prevention")
    ctx["lessons"] = notes["lessons"]
    ctx["incident_commander"] = notes.get("incident_commander")
    ctx["responders"] = notes.get("responders") or []
    ctx["data_loss"] = notes.get("data_loss")
    ctx["acknowledged"] = notes.get("acknowledged")
    ctx["resolved_note"] = notes.get("resolved")
    items = notes.get("action_items")
    kind = (ctx.get("outcome") or {}).get("kind", "incident")
    ctx["action_items"] = items if items is not None else (default_action_items(
        ctx.get("top_suspect"), ctx.get("early_signal")) if kind == "incident" else [])
    extra = [dict(e) for e in notes.get("timeline") or []]
    for u in updates or []:
        extra.append({"time": u["time"], "event": f"status update: {u['color']} {u['state']}",
                      "source": "incident status --update"})
    if extra:
        events = [dict(e) for e in ctx.get("timeline") or []] + extra
        for e in events:
            e["time"] = pd.Timestamp(e["time"]).tz_convert("UTC").isoformat()
            e["when"] = pd.Timestamp(e["time"]).strftime("%Y-%m-%d %H:%M:%S")
        ctx["timeline"] = sorted(events, key=lambda e: pd.Timestamp(e["time"]))
    return ctx


def apply_notes(ctx: dict[str, Any], run_path: Path) -> dict[str, Any]:
    """merge_into_context with the run's notes.yaml and status updates (+ notes_problems)."""
    p = Path(run_path) / NOTES_FILE
    notes, problems = check_notes(p.read_text("utf-8")) if p.is_file() else (empty_notes(), [])
    out = merge_into_context(ctx, notes, load_status_updates(run_path))
    out["notes_problems"] = problems
    return out
