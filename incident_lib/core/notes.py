"""The responder notes schema (runs/<id>/notes.yaml): parse, check, load; status updates file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .errors import InputError
from .model import iso

__all__ = ["NOTES_FILE", "UPDATES_FILE", "REQUIRED_SECTIONS", "NOTES_TEMPLATE", "load_notes",
           "check_notes", "empty_notes", "load_status_updates", "key_lines", "yaml_error",
           "as_time", "as_date", "normalise_action"]

NOTES_FILE = "notes.yaml"
UPDATES_FILE = "status_updates.json"
REQUIRED_SECTIONS = ["Executive summary", "Impact", "Detection", "Timeline", "Root cause",
                     "5 Whys", "Resolution", "Prevention", "Lessons learned", "Action items",
                     "Related"]
ACTION_TYPES = ("fix", "detect", "prevent", "mitigate", "process")
ACTION_STATUSES = ("open", "in progress", "done", "wontfix")

NOTES_TEMPLATE = """\
# Responder notes for incident {id}.
# `incident report {id}` re-renders report.md and keeps everything written here; an empty
# value keeps the TODO in the report. Quote text that contains ': ' or starts with [ {{ * & !
root_cause:
  confirmed: false       # true once a person has confirmed the root cause
  text: ""               # the confirmed or corrected root cause, one or two sentences
  not_caught_because: "" # which test, canary or alert would have caught it
incident_commander: ""   # who leads the response (a name or handle)
responders: []           # who else works on it
data_loss: null          # yes / no / text: telemetry cannot tell whether data was lost
acknowledged: null       # when a responder acknowledged the page (ISO-8601 UTC), for MTTA
resolved: null           # when the incident was declared resolved (ISO-8601 UTC)
users_affected: null     # a number, or text such as "about 2% of EU users"
revenue_impact: null     # text, e.g. "~12k EUR of failed checkouts"
current_action: ""       # what responders do now (used by `incident status --update`)
long_term_prevention: ""
lessons:
  went_well: []
  went_wrong: []
  got_lucky: []
tags: []
repeat_of: null          # id of an earlier incident this one repeats
# Action items replace the generated ones once listed: keep, edit or add rows.
# type: fix|detect|prevent|mitigate|process  status: open|in progress|done|wontfix
# due: YYYY-MM-DD
action_items:{actions}
# Extra timeline events, merged with the detected ones:
# - {{time: "2026-11-20T10:50:00Z", event: "rolled back payments", source: "on-call"}}
timeline: []
"""

_TEXT_KEYS = ("users_affected", "revenue_impact", "current_action", "long_term_prevention",
              "repeat_of", "incident_commander")


def key_lines(text: str, offset: int = 0) -> dict[str, int]:
    """1-based line of each key path ('a', 'a.b', 'a[0].b') in a YAML document."""

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    out: dict[str, int] = {}

    def walk(node: Any, path: str, depth: int) -> None:
        if depth > 3 or node is None:
            return
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                p = f"{path}.{k.value}" if path else str(k.value)
                out[p] = k.start_mark.line + 1 + offset
                walk(v, p, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                p = f"{path}[{i}]"
                out[p] = v.start_mark.line + 1 + offset
                walk(v, p, depth + 1)

    walk(root, "", 0)
    return out


def yaml_error(exc: Exception, offset: int = 0) -> tuple[int, str]:
    """(1-based line, one-line reason) of a YAML parse error."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 + offset if mark is not None else offset + 1
    reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return line, f"not valid YAML ({reason})"


def as_time(value: Any) -> str | None:
    """An ISO-8601 UTC string ('...Z') from a YAML value, None if empty; ValueError if bad."""

    if value is None or value == "":
        return None
    if not isinstance(value, str | dt.date):
        raise ValueError(f"{type(value).__name__} is not a time")
    if isinstance(value, str) and value.strip().lower() in ("now", "today", "tomorrow"):
        raise ValueError("relative times are not kept: write the ISO-8601 time")
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError("empty time")
    return iso(ts)


def as_date(value: Any) -> str | None:
    """A YYYY-MM-DD string from a YAML value, None if empty or TODO; ValueError if bad."""
    if value is None or value == "" or str(value).strip().upper() == "TODO":
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return dt.date.fromisoformat(str(value).strip()).isoformat()


def _str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if not isinstance(value, list):
        raise ValueError("must be a list of text")
    return [str(v) for v in value if v is not None and str(v).strip()]


def normalise_action(item: Any) -> dict[str, Any]:
    """One action item as {action, type, owner, due, status}; ValueError naming the bad field."""
    if not isinstance(item, dict):
        raise ValueError("must be a mapping with action, type, owner, due, status")
    action = str(item.get("action") or "").strip()
    if not action:
        raise ValueError("has no 'action' text")
    owner = item.get("owner")
    owner = None if owner is None or str(owner).strip().upper() in ("", "TODO") else str(owner)
    try:
        due = as_date(item.get("due"))
    except ValueError:
        raise ValueError(f"due {str(item.get('due'))[:30]!r} is not a date: use YYYY-MM-DD")\
            from None
    status = str(item.get("status") or "open").strip().lower()
    if status not in ACTION_STATUSES:
        raise ValueError(f"status {status[:20]!r} is unknown: use {', '.join(ACTION_STATUSES)}")
    return {"action": action, "type": str(item.get("type") or "fix").strip().lower(),
            "owner": owner, "due": due, "status": status}


def check_notes(text: str) -> tuple[dict[str, Any], list[str]]:
    """Parse notes.yaml text into normalised notes and 'notes.yaml:LINE: problem' strings."""

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line, why = yaml_error(exc)
        return {}, [f"{NOTES_FILE}:{line}: {why}: the notes are ignored until it is fixed"]
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return {}, [f"{NOTES_FILE}:1: must be a mapping of fields (root_cause, action_items, ...)"]
    lines = key_lines(text)
    problems: list[str] = []

    def bad(path: str, why: str) -> None:
        line = lines.get(path) or lines.get(path.split(".")[0].split("[")[0]) or 1
        problems.append(f"{NOTES_FILE}:{line}: {path} {why}")

    out: dict[str, Any] = {}
    rc = raw.get("root_cause") or {}
    if isinstance(rc, str):
        rc = {"text": rc}
    if not isinstance(rc, dict):
        bad("root_cause", "must be a mapping with confirmed, text, not_caught_because")
        rc = {}
    out["root_cause"] = {"confirmed": bool(rc.get("confirmed", False)),
                         "text": str(rc.get("text") or "").strip() or None,
                         "not_caught_because": str(rc.get("not_caught_because") or "").strip()
                         or None}
    for key in ("acknowledged", "resolved"):
        try:
            out[key] = as_time(raw.get(key))
        except (ValueError, TypeError):
            bad(key, "is not a time: use ISO-8601 like 2026-11-20T10:50:00Z")
            out[key] = None
    for key in _TEXT_KEYS:
        v = raw.get(key)
        out[key] = None if v is None or str(v).strip() == "" else (
            v if isinstance(v, int | float) and not isinstance(v, bool) else str(v).strip())
    dl = raw.get("data_loss")
    out["data_loss"] = ({True: "yes", False: "no"}[dl] if isinstance(dl, bool) else
                        None if dl is None or str(dl).strip() == "" else str(dl).strip())
    try:
        out["responders"] = _str_list(raw.get("responders"))
    except ValueError as exc:
        bad("responders", str(exc))
        out["responders"] = []
    lessons = raw.get("lessons") or {}
    if not isinstance(lessons, dict):
        bad("lessons", "must be a mapping with went_well, went_wrong, got_lucky")
        lessons = {}
    out["lessons"] = {}
    for key in ("went_well", "went_wrong", "got_lucky"):
        try:
            out["lessons"][key] = _str_list(lessons.get(key))
        except ValueError as exc:
            bad(f"lessons.{key}", str(exc))
            out["lessons"][key] = []
    try:
        out["tags"] = _str_list(raw.get("tags"))
    except ValueError as exc:
        bad("tags", str(exc))
        out["tags"] = []
    items = raw.get("action_items")
    out["action_items"] = None
    if items is not None:
        if not isinstance(items, list):
            bad("action_items", "must be a list of {action, type, owner, due, status}")
        else:
            out["action_items"] = []
            for i, item in enumerate(items):
                try:
                    out["action_items"].append(normalise_action(item))
                except ValueError as exc:
                    bad(f"action_items[{i}]", str(exc))
    out["timeline"] = []
    tl = raw.get("timeline") or []
    if not isinstance(tl, list):
        bad("timeline", "must be a list of {time, event, source}")
        tl = []
    for i, ev in enumerate(tl):
        try:
            if not isinstance(ev, dict) or not str(ev.get("event") or "").strip():
                raise ValueError("needs time and event")
            t = as_time(ev.get("time"))
            if t is None:
                raise ValueError("has no time")
        except (ValueError, TypeError) as exc:
            bad(f"timeline[{i}]", f"{exc}: use {{time: ISO-8601, event: text, source: text}}")
            continue
        out["timeline"].append({"time": t, "event": str(ev["event"]).strip(),
                                "source": str(ev.get("source") or "responders")})
    return out, problems


def empty_notes() -> dict[str, Any]:
    """The notes of a run nobody has annotated yet."""
    return check_notes("")[0]


def load_notes(run_path: Path) -> dict[str, Any]:
    """Normalised notes of a run (empty fields without notes.yaml); InputError if invalid."""
    p = Path(run_path) / NOTES_FILE
    if not p.is_file():
        return empty_notes()
    notes, problems = check_notes(p.read_text("utf-8"))
    if problems:
        raise InputError(f"{p}: " + "; ".join(problems[:5]))
    return notes












def load_status_updates(run_path: Path) -> list[dict[str, Any]]:
    """Status updates posted with `incident status --update` (oldest first)."""
    p = Path(run_path) / UPDATES_FILE
    if not p.is_file():
        return []
    try:
        data = json.loads(p.read_text("utf-8"))
    except json.JSONDecodeError:
        return []
    return [u for u in data if isinstance(u, dict) and u.get("time")] if isinstance(data, list)\
        else []










