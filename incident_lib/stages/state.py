"""The incident's current state, as responders report it: status, action, next update.

One function decides it from what was measured (impact, recovery, a rollback after the onset,
the outcome, what may be said of the cause) so the status update, the report's first screen
and `incident status --update` never disagree. States follow the playbooks: Investigating,
Identified, Monitoring, Resolved; an investigation that found nothing says so instead.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..core.model import iso

__all__ = ["current_state", "mitigation_of", "CADENCE_MIN", "RESPONSE_TARGET"]

# Minutes between status updates while the incident is live, per severity (playbook 003:
# every 15 minutes for P1/P2); while monitoring after recovery, twice that. None: no updates.
CADENCE_MIN: dict[str, int | None] = {"P0": 15, "P1": 15, "P2": 15, "P3": 60, "P4": None}
# Time to first response per severity (playbook 000: P0 < 15 min, P1 < 1 h, P2 < 4 h).
RESPONSE_TARGET: dict[str, str] = {"P0": "15m", "P1": "1h", "P2": "4h",
                                   "P3": "next business day", "P4": "next sprint"}
MITIGATING = ("rollback", "revert")


def _hm(value: Any) -> str:
    return pd.Timestamp(value).tz_convert("UTC").strftime("%H:%M UTC")


def _hms(value: Any) -> str:
    return pd.Timestamp(value).tz_convert("UTC").strftime("%H:%M:%S UTC")


def mitigation_of(changes: list[dict[str, Any]], onset: str | None) -> dict[str, Any] | None:
    """The first rollback/revert recorded at or after the onset (None without an onset)."""
    if not onset:
        return None
    t0 = pd.Timestamp(onset)
    hits = [c for c in changes if str(c.get("type", "")).lower() in MITIGATING
            and c.get("time") and pd.Timestamp(c["time"]) >= t0]
    return min(hits, key=lambda c: pd.Timestamp(c["time"])) if hits else None


def current_state(
    *,
    outcome: dict[str, Any],
    impact: dict[str, Any],
    severity: str | None,
    changes: list[dict[str, Any]],
    recommendation: str | None = None,
    cause_stated: bool = False,
    resolved_at: str | None = None,
    action: str | None = None,
    cadence: dict[str, int | None] | None = None,
) -> dict[str, Any]:
    """{state, color, summary, action, next_update, every_min, mitigation} of the incident now."""
    cad = {**CADENCE_MIN, **(cadence or {})}
    kind = outcome.get("kind", "incident")
    as_of = impact.get("as_of")
    every = cad.get(severity or "", 30)
    mit = mitigation_of(changes, impact.get("onset"))
    rec = impact.get("recovered")
    if kind == "no_incident":
        return {"state": "No incident found", "color": "🟢", "mitigation": None,
                "summary": "no sustained change in the impact signals" if not
                impact.get("onset") else "signals moved within their background, unconfirmed "
                "by the customer-facing signals, logs and spans",
                "action": action or "none: nothing to roll back or fix",
                "next_update": None, "every_min": None}
    if kind == "inconclusive":
        every = 30
        return {"state": "Investigating", "color": "🟡", "mitigation": None,
                "summary": "inconclusive, evidence missing",
                "action": action or "find the missing evidence named above",
                "next_update": iso(pd.Timestamp(as_of) + pd.Timedelta(minutes=every))
                if as_of else None, "every_min": every}
    if resolved_at or impact.get("status") == "resolved":
        return {"state": "Resolved", "color": "🟢", "mitigation": mit,
                "summary": f"resolved at {_hm(resolved_at)}" if resolved_at else "resolved",
                "action": action or "postmortem: confirm the root cause and own the action "
                                    "items", "next_update": None, "every_min": None}
    applied = (f"{mit['type']} {mit['id']} on {mit['service']} applied at "
               f"{_hm(mit['time'])}" if mit else None)
    if rec:
        state, color = "Monitoring", "🟡"
        every = 2 * every if every else None
        summary = (f"{applied}; " if applied else "") + f"recovery seen at {_hms(rec)}"
        default = ("keep the rollback in place and watch the impact signals; declare resolved "
                   f"after {every} min without relapse" if mit and every else
                   "watch the impact signals before declaring resolved")
    elif applied:
        state, color = "Identified", "🔴"
        summary = f"{applied}; still degraded as of {_hm(as_of)}"
        default = "the rollback has not restored service: look past the first suspect"
    elif cause_stated and recommendation:
        state, color = "Identified", "🔴"
        summary = f"ongoing as of {_hm(as_of)}" if as_of else "ongoing"
        default = recommendation
    else:
        state, color = "Investigating", "🔴" if severity in ("P0", "P1", "P2") else "🟡"
        summary = f"ongoing as of {_hm(as_of)}" if as_of else "ongoing"
        if outcome.get("provisional"):
            summary += ("; first estimate from the onset alone, unconfirmed until the logs "
                        "and spans are read")
        default = recommendation or "correlating logs, metrics and changes"
    nxt = iso(pd.Timestamp(as_of) + pd.Timedelta(minutes=every)) if every and as_of else None
    return {"state": state, "color": color, "summary": summary, "action": action or default,
            "next_update": nxt, "every_min": every, "mitigation": mit}
