"""Status updates to chat: Slack-compatible incoming webhooks (Slack, Mattermost), Microsoft
Teams (Adaptive Card) and a generic JSON webhook, configured under `notify:` in incident.yaml.

Three events: `triage` (the first status update, when triage ends), `root_cause` (when the
5 Whys state a root cause as fact) and `resolved`. Each message carries status, severity,
impact, suspect with confidence, action and links (the served run, the evidence in Grafana /
Prometheus / Kibana).

Webhook URLs are secrets: read from the environment variable the config names, at send time;
never written to runs/, logs or error texts (an error is the exception's type or the HTTP
status). Sending runs in a background thread (the notebooks go on), failures are retried with
exponential backoff (429 and 5xx, honouring Retry-After up to a cap; other 4xx are final), and
every outcome is recorded in status.json under `notifications`. A hand-written loop, not
tenacity/backoff: the policy is ten lines, and a library would still need the per-attempt
record and the Retry-After cap written around it.

Untrusted text (alert labels, log-derived suspects) is cleaned (controls, ANSI, bidi) and cut,
then escaped per platform so it cannot ping anyone or inject links:
- Slack / Mattermost: `&`, `<`, `>` become `&amp;`, `&lt;`, `&gt;` (Slack's documented
  escaping, so `<!channel>`, `<@U123>` and `<url|text>` stay text); Mattermost also notifies on
  a bare `@channel` / `@here` / `@all` / `@user` in webhook text (it has no per-webhook switch),
  so every `@` in untrusted text becomes the fullwidth `＠` (U+FF20), which no platform reads
  as a mention.
- Teams: an Adaptive Card mentions someone only through `<at>` plus `msteams.entities`; we never
  send entities, and HTML is not rendered in cards. Markdown link/emphasis characters are
  backslash-escaped and `@` is replaced as above.
- Generic webhook: plain JSON values (cleaned, cut); the receiver must treat them as data.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from ..core.safe import clean_text
from ..core.storage import atomic_write_json
from ..runs.folder import Run
from ..stages.common import tool_links
from ..stages.state import current_state

__all__ = ["build_message", "payload_for", "post", "Dispatcher", "notify_now", "record_status",
           "status_lock", "slack_escape", "mattermost_escape", "teams_escape", "EVENT_TITLES"]

EVENT_TITLES = {"triage": "First status update", "root_cause": "Root cause stated",
                "resolved": "Resolved"}
COLORS = {"🔴": ("#d32f2f", "Attention"), "🟡": ("#f9a825", "Warning"),
          "🟢": ("#2e7d32", "Good")}
MAX_TEXT = 300  # characters of one untrusted value in a message
MAX_ATTEMPTS = 4
BACKOFF_S = 1.0  # first retry after 1 s, then 2 s, 4 s
MAX_WAIT_S = 30.0  # cap on one wait (Retry-After included)
TIMEOUT_S = 10.0
DRAIN_S = 45.0  # what the runner waits at the end of a run for messages still being sent
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


# -- sending -------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after", "")
    return min(float(value), MAX_WAIT_S) if value.strip().isdigit() else None


def post(url: str, payload: dict[str, Any], *, client: httpx.Client | None = None,
         attempts: int = MAX_ATTEMPTS, backoff: float = BACKOFF_S,
         sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """POST payload as JSON with retries on 429/5xx/transport errors; never raises.

    Returns {state: sent|failed, attempts, status_code, error}; `error` never holds the URL.
    """
    own = client is None
    client = client or httpx.Client(timeout=TIMEOUT_S, follow_redirects=False)
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    result: dict[str, Any] = {"state": "failed", "attempts": 0, "status_code": None,
                              "error": None}
    try:
        for i in range(attempts):
            result["attempts"] = i + 1
            wait = min(backoff * 2 ** i, MAX_WAIT_S)
            try:
                resp = client.post(url, content=body,
                                   headers={"Content-Type": "application/json; charset=utf-8"})
            except httpx.HTTPError as exc:  # connect/read errors: retried
                result.update(error=f"{type(exc).__name__} (no answer)", status_code=None)
            else:
                result["status_code"] = resp.status_code
                if 200 <= resp.status_code < 300:
                    result.update(state="sent", error=None)
                    return result
                result["error"] = f"HTTP {resp.status_code}"
                if resp.status_code != 429 and resp.status_code < 500:
                    return result  # a 4xx other than 429 will not get better
                wait = _retry_after(resp) or wait
            if i + 1 < attempts:
                sleep(wait)
        return result
    finally:
        if own:
            client.close()


@contextlib.contextmanager
def status_lock(run_path: Path) -> Iterator[None]:
    """Exclusive lock for read-modify-write of status.json (runner and notifiers)."""
    with open(Path(run_path) / ".status.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def record_status(run_path: Path, entry: dict[str, Any]) -> None:
    """Append a notification outcome to status.json (`notifications`, the last 100 kept)."""
    path = Path(run_path) / "status.json"
    with status_lock(run_path):
        data = json.loads(path.read_text("utf-8")) if path.is_file() else {}
        data["notifications"] = [*(data.get("notifications") or []), entry][-100:]
        atomic_write_json(path, data)


def _already_sent(run_path: Path, event: str, name: str) -> bool:
    path = Path(run_path) / "status.json"
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return any(n.get("event") == event and n.get("notifier") == name and n.get("state") == "sent"
               for n in data.get("notifications") or [])


def notify_now(run_path: Path, event: str, *, client: httpx.Client | None = None,
               sleep: Callable[[float], None] = time.sleep) -> list[dict[str, Any]]:
    """Send `event` to every configured notifier that wants it (once per run); record each
    outcome in status.json and return the records. Never raises."""
    run_path = Path(run_path)
    records = []
    try:
        run = Run(run_path)
        specs = [s for s in run.incident.topology.get("notify") or [] if event in s["events"]]
        msg = build_message(run, event) if specs else None
    except Exception as exc:  # noqa: BLE001 - a notifier never fails the investigation
        entry = {"event": event, "notifier": "*", "state": "failed", "time": _now(),
                 "error": f"message not built: {type(exc).__name__}"}
        _safe_record(run_path, entry)
        return [entry]
    for spec in specs:
        if _already_sent(run_path, event, spec["name"]):
            continue
        entry: dict[str, Any] = {"event": event, "notifier": spec["name"], "kind": spec["kind"],
                                 "time": _now()}
        url = os.environ.get(spec["url_env"], "").strip()
        if not url:
            entry.update(state="skipped", error=f"environment variable {spec['url_env']} is "
                                                "empty: set the webhook URL there")
        elif not url.lower().startswith(("https://", "http://")):
            entry.update(state="failed", attempts=0,
                         error=f"{spec['url_env']} does not hold an http(s) URL")
        else:
            try:
                assert msg is not None
                entry.update(post(url, payload_for(spec, msg), client=client, sleep=sleep))
            except Exception as exc:  # noqa: BLE001 - e.g. a malformed URL in the variable
                entry.update(state="failed", error=f"{type(exc).__name__} (check "
                                                   f"{spec['url_env']})")
        entry["sent_at"] = _now()
        _safe_record(run_path, entry)
        records.append(entry)
    return records


def _safe_record(run_path: Path, entry: dict[str, Any]) -> None:
    with contextlib.suppress(OSError, ValueError):
        record_status(run_path, entry)


class Dispatcher:
    """Sends events in a background thread so the investigation never waits on a chat."""

    def __init__(self, run_path: Path, **kw: Any) -> None:
        self.run_path = Path(run_path)
        self._kw = kw
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._pending: list[str] = []
        self._thread = threading.Thread(target=self._loop, name="incident-notify", daemon=True)
        self._thread.start()

    def submit(self, event: str) -> None:
        """Queue an event (returns at once)."""
        self._pending.append(event)
        self._queue.put(event)

    def _loop(self) -> None:
        while (event := self._queue.get()) is not None:
            notify_now(self.run_path, event, **self._kw)
            self._pending.remove(event)

    def close(self, timeout: float = DRAIN_S) -> None:
        """Let queued messages go out for up to `timeout` seconds, then return; events still
        unsent then are recorded as failed (the process may end before they are)."""
        self._queue.put(None)
        self._thread.join(timeout)
        for event in list(self._pending):
            _safe_record(self.run_path, {"event": event, "notifier": "*", "state": "failed",
                                         "time": _now(), "error": f"still being sent after "
                                         f"{timeout:g} s when the run ended (chat too slow)"})
