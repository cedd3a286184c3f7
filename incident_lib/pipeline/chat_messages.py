"""Chat messages for the notifiers (notify.py): one platform-neutral message per event built
from the run's findings, and its payload for Slack (blocks or attachments), Mattermost
(attachments), Microsoft Teams (Adaptive Card) or a generic JSON webhook.

Untrusted text (alert labels, log-derived suspects) is cleaned (controls, ANSI, bidi) and cut,
then escaped per platform so it cannot ping anyone or inject links:
- Slack / Mattermost: `&`, `<`, `>` become `&amp;`, `&lt;`, `&gt;` (Slack's documented
  escaping, so `<!channel>`, `<@U123>` and `<url|text>` stay text); Mattermost also notifies on
  a bare `@channel` / `@here` / `@all` / `@user` in webhook text (it has no per-webhook switch),
  so every `@` in untrusted text becomes the fullwidth `＠` (U+FF20), which no platform reads
  as a mention. Mattermost renders Markdown, so its text also gets backslash, backtick,
  `*`, `_`, `[`, `]`, `~` and `#` backslash-escaped, and our own links use its
  `[title](url)` syntax (Slack: `<url|title>`).
- Teams: an Adaptive Card mentions someone only through `<at>` plus `msteams.entities`; we never
  send entities, and HTML is not rendered in cards. Markdown link/emphasis characters are
  backslash-escaped and `@` is replaced as above.
- Generic webhook: plain JSON values (cleaned, cut); the receiver must treat them as data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..core.safe import clean_text
from ..runs.folder import Run
from ..stages.common import tool_links
from ..stages.state import current_state

__all__ = ["build_message", "payload_for", "slack_escape", "mattermost_escape", "teams_escape",
           "EVENT_TITLES", "COLORS"]

EVENT_TITLES = {"triage": "First status update", "root_cause": "Root cause stated",
                "resolved": "Resolved"}
COLORS = {"🔴": ("#d32f2f", "Attention"), "🟡": ("#f9a825", "Warning"),
          "🟢": ("#2e7d32", "Good")}
MAX_TEXT = 300  # characters of one untrusted value in a message
_MARKDOWN = re.compile(r"([\\`*_\[\]~<>&])")  # active in link/emphasis/code/HTML/entity
_MM_MARKDOWN = re.compile(r"([\\`*_\[\]~#])")  # the same for Mattermost (<>& become entities)


# -- messages ------------------------------------------------------------------------------


def _one_line(value: Any, max_len: int = MAX_TEXT) -> str:
    return " ".join(clean_text(value, max_len).split())


def _pct(x: Any) -> str:
    return f"{float(x) * 100:.1f}%"


def _impact_text(impact: dict[str, Any], outcome: dict[str, Any], over: bool) -> str:
    if outcome.get("kind") == "no_incident":
        return "none measured (no sustained change in the golden signals)"
    if outcome.get("kind") == "inconclusive" or not impact.get("onset"):
        reasons = "; ".join(str(r) for r in outcome.get("reasons") or [])
        return f"unknown ({reasons})" if reasons else "unknown"
    parts = []
    if impact.get("customer_error_share") is not None:
        eps = ", ".join(impact.get("entrypoints") or [])
        parts.append(f"{_pct(impact['customer_error_share'])} of customer-facing requests "
                     f"({eps}) {'failed' if over else 'failing'}")
    ratio = impact.get("customer_latency_ratio")
    if ratio is not None and ratio >= 1.5:
        parts.append(f"p99 latency x{float(ratio):.1f}")
    aff = impact.get("affected_services") or []
    if aff:
        parts.append(f"affected: {', '.join(str(a) for a in aff)}")
    return "; ".join(parts) or "impact measured, no error-rate signal"


def build_message(run: Run, event: str) -> dict[str, Any]:
    """The platform-neutral message for `event`, from the run's findings (text cleaned)."""
    inc = run.incident
    tri = run.findings("triage") or {}
    cor = run.findings("correlation") or {}
    why = run.findings("five_whys") or {}
    sev = tri.get("severity") or {}
    impact = tri.get("impact") or {}
    outcome = why.get("outcome") or tri.get("outcome") or {"kind": "inconclusive",
                                                           "reasons": ["triage did not finish"]}
    claim = why.get("root_cause") or {}
    dec = why.get("decision") or {}
    rec = (f"{dec['decision']} {dec.get('target') or ''}".strip()
           if dec.get("decision") not in (None, "none") else None)
    st = current_state(outcome=outcome, impact=impact, severity=sev.get("level"),
                       changes=tri.get("changes") or [], recommendation=rec,
                       cause_stated=bool(claim.get("stated")),
                       resolved_at=inc.resolved_at if event == "resolved" else None,
                       cadence=inc.topology.get("status_cadence_minutes"))
    upd = tri.get("status_update") or {}
    if event == "triage" and upd.get("state"):  # word for word the notebook's status update
        st = {**st, **{k: upd[k] for k in ("state", "color", "summary", "action") if k in upd}}
    suspect = None
    top = (cor.get("suspects") or [None])[0]
    if claim.get("service"):
        what = (f"{claim['change_id']} on {claim['service']}" if claim.get("change_id")
                else str(claim["service"]))
        suspect = {"text": _one_line(what), "service": _one_line(claim["service"]),
                   "confidence": _one_line(claim.get("confidence") or "low", 20),
                   "stated": bool(claim.get("stated"))}
    elif top:
        what = f"{top['change_id']} on {top['service']}" if top.get("change_id") else top["service"]
        suspect = {"text": _one_line(what), "service": _one_line(top["service"]),
                   "confidence": "low", "stated": False}
    links = tool_links(run, suspect["service"] if suspect else None)
    out_links = []
    if links["run"]:
        out_links.append({"title": "Investigation", "url": links["run"]})
    seen_tools = set()
    for link in links["evidence"]:  # the first signal per tool (error rate comes first)
        if link["tool"] not in seen_tools and link["tool"] != "Kibana":
            seen_tools.add(link["tool"])
            out_links.append({"title": f"{link['tool']}: {link['evidence']}", "url": link["url"]})
    if links["logs"]:
        out_links.append({"title": "Kibana: logs of the suspect", "url": links["logs"]})
    return {
        "event": event, "event_title": EVENT_TITLES[event], "incident_id": inc.id,
        "title": _one_line(inc.title), "service": _one_line(inc.service),
        "status": {"state": st["state"], "color": st["color"], "summary": _one_line(st["summary"])},
        "severity": _one_line(sev.get("label") or "not assessed", 40),
        "impact": _one_line(_impact_text(impact, outcome, bool(
            impact.get("recovered") or st["state"] == "Resolved"))),
        "suspect": suspect,
        "action": _one_line(st["action"]),
        "as_of": impact.get("as_of"),
        "links": out_links,
    }


# -- payloads ------------------------------------------------------------------------------


def slack_escape(text: str) -> str:
    """Text for Slack/Mattermost: &<> as entities (Slack's rules), `@` made fullwidth."""
    s = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("@", "\uff20")


def mattermost_escape(text: str) -> str:
    """Text for Mattermost, which renders Markdown in webhook posts: Markdown link/emphasis/
    code characters backslash-escaped (no injected links), then Slack's escaping."""
    return slack_escape(_MM_MARKDOWN.sub(r"\\\1", text))


def teams_escape(text: str) -> str:
    """Text for an Adaptive Card TextBlock/Fact: Markdown characters escaped, `@` fullwidth."""
    return _MARKDOWN.sub(r"\\\1", text).replace("@", "\uff20")


def _suspect_line(msg: dict[str, Any]) -> str:
    s = msg["suspect"]
    if s is None:
        return ("none: no incident" if msg["status"]["state"] == "No incident found"
                else "not known yet (correlation running)")
    return (f"{s['text']} (confidence {s['confidence']}"
            + ("" if s["stated"] else ", not confirmed") + ")")


def _facts(msg: dict[str, Any], esc: Callable[[str], str]) -> list[tuple[str, str]]:
    st = msg["status"]
    return [("Status", f"{st['state']}: {esc(st['summary'])}"),
            ("Severity", esc(msg["severity"])),
            ("Impact", esc(msg["impact"])),
            ("Suspect", esc(_suspect_line(msg))),
            ("Action", esc(msg["action"]))]


def _slack(msg: dict[str, Any], fmt: str, esc: Callable[[str], str]) -> dict[str, Any]:
    st = msg["status"]
    head = f"{st['color']} {msg['event_title']}: {esc(msg['title'])}"
    fallback = f"{head} ({st['state']}, {esc(msg['severity'])})"
    links = [(lk["title"], lk["url"]) for lk in msg["links"] if len(lk["url"]) <= 3000]
    facts = _facts(msg, esc)
    if fmt == "attachments":
        link_text = " · ".join(f"[{t}]({u})" if esc is mattermost_escape else f"<{u}|{t}>"
                               for t, u in links)  # each platform's own link syntax
        att = {"color": COLORS.get(st["color"], ("#888888", ""))[0], "fallback": fallback,
               "title": head, "text": f"Incident `{msg['incident_id']}`",
               "fields": [{"title": k, "value": v, "short": k == "Severity"} for k, v in facts]}
        if link_text:
            att["fields"].append({"title": "Links", "value": link_text, "short": False})
        return {"text": fallback, "attachments": [att]}
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{head}*"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"}
                                       for k, v in facts[:4]]},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{facts[4][0]}*\n{facts[4][1]}"}},
        {"type": "context", "elements": [{"type": "mrkdwn",
                                          "text": f"Incident `{msg['incident_id']}`"}]},
    ]
    if links:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": t[:75]}, "url": u}
            for t, u in links[:5]]})
    return {"text": fallback, "blocks": blocks}


def _teams(msg: dict[str, Any]) -> dict[str, Any]:
    esc = teams_escape
    st = msg["status"]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard", "version": "1.4",
        "body": [
            {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": True,
             "color": COLORS.get(st["color"], ("", "Default"))[1],
             "text": f"{st['color']} {msg['event_title']}: {esc(msg['title'])}"},
            {"type": "FactSet", "facts": [{"title": k, "value": v}
                                          for k, v in _facts(msg, esc)]},
            {"type": "TextBlock", "isSubtle": True, "wrap": True,
             "text": f"Incident {esc(msg['incident_id'])}"},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": lk["title"], "url": lk["url"]}
                    for lk in msg["links"]],
    }
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
         "content": card}]}


def payload_for(spec: dict[str, Any], msg: dict[str, Any]) -> dict[str, Any]:
    """The JSON body one notifier posts for a message."""
    kind = spec["kind"]
    if kind == "slack":
        return _slack(msg, spec.get("format", "blocks"), slack_escape)
    if kind == "mattermost":
        return _slack(msg, "attachments", mattermost_escape)
    if kind == "teams":
        return _teams(msg)
    return {"schema": "incident_lib.notification/1", **msg}
