"""Responder notes (runs/<id>/notes.yaml) merged into the report; status updates; report lint."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import InputError, SourceError

__all__ = ["NOTES_FILE", "UPDATES_FILE", "REQUIRED_SECTIONS", "load_notes", "check_notes",
           "init_notes", "early_signal", "default_action_items", "merge_into_context",
           "apply_notes", "append_status_update", "load_status_updates", "lint_run", "key_lines"]

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
              "repeat_of")


def key_lines(text: str, offset: int = 0) -> dict[str, int]:
    """1-based line of each key path ('a', 'a.b', 'a[0].b') in a YAML document."""
    import yaml

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
    from .model import iso

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
    import yaml

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


def default_action_items(top: dict[str, Any] | None,
                         early_signal: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The generated action items (owner and due left for people)."""
    items = []
    if top and top.get("change_id"):
        items.append({"action": f"Find and fix the defect in {top['change_id']} before "
                               "redeploying", "type": "fix"})
    if early_signal:
        items.append({"action": f"Alert on {early_signal['series']} (moved before impact)",
                      "type": "detect"})
    items.append({"action": "Add a pre-production check for this failure mode",
                  "type": "prevent"})
    return [{**i, "owner": None, "due": None, "status": "open"} for i in items]


def early_signal(triage: dict[str, Any]) -> dict[str, Any] | None:
    """The earliest utilisation signal (a share of a limit) that moved before the onset."""
    from .signals import signals

    onset = (triage.get("onset") or {}).get("time")
    if not onset:
        return None
    defs = signals()
    for m in (triage.get("onset") or {}).get("first_movers") or []:
        d = defs.get(m.get("signal", ""))
        if d and d.golden == "saturation" and d.unit == "ratio" and m["onset"] <= onset:
            return m
    return None


def init_notes(run_path: Path) -> Path:
    """Write a commented notes.yaml skeleton (generated action items pre-filled) if missing."""
    import yaml

    from .run import Run
    from .storage import atomic_write_text

    p = Path(run_path) / NOTES_FILE
    if p.exists():
        return p
    run = Run(run_path)
    sus = (run.findings("correlation") or {}).get("suspects") or []
    items = default_action_items(sus[0] if sus else None,
                                 early_signal(run.findings("triage") or {}))
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
    items = notes.get("action_items")
    ctx["action_items"] = items if items is not None else default_action_items(
        ctx.get("top"), ctx.get("early_signal"))
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


def _current_frames(run: Any) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, str | None]:
    """Signals and changes queried now (not recorded); recorded evidence if the backend fails."""
    from .signals import signals
    from .sources.base import choose_step

    inc = run.incident
    step = choose_step(inc.start_ts, inc.end_ts)
    try:
        frames = {n: run.metrics.query_signal(n, inc.start_ts, inc.end_ts, step).frame
                  for n in signals()}
        changes = run.changes.changes(inc.start_ts, inc.end_ts).frame
        fallback = None
    except SourceError as exc:
        idx = run.evidence_index()
        frames = {n: run.evidence(f"signal_{n}") for n in signals() if f"signal_{n}" in idx}
        changes = run.evidence("changes") if "changes" in idx else pd.DataFrame(
            columns=["time", "service", "type", "id", "description"])
        fallback = " ".join(str(exc).split())[:160]
    for df in [*frames.values(), changes]:
        if len(df):
            df["time"] = pd.to_datetime(df["time"], utc=True)
    return frames, changes, fallback


def append_status_update(run_path: Path, action: str | None = None) -> str:
    """Render a status update from current numbers, append it to the run's timeline, return it."""
    import fcntl

    from .report.display import Section
    from .report.safe import md_inline
    from .run import Run
    from .stages import triage
    from .storage import atomic_write_json

    run = Run(run_path)
    notes = load_notes(run.path)
    frames, changes, fallback = _current_frames(run)
    if not {"error_rate", "traffic", "latency_p99"} <= set(frames):
        raise InputError(f"run {run.incident.id}: no error_rate/traffic/latency_p99 numbers "
                         "(backend unavailable and nothing recorded)")
    sig = Section("Golden signals", "", {"frames": frames, "no_data": []})
    onset = triage.detect_onset(run, sig)
    impact = triage.measure_impact(run, sig, onset)
    if notes.get("resolved"):
        impact.data["status"] = "resolved"
    severity = triage.assess(run, impact)
    upd = triage.status_update(run, severity, impact, Section("Changes", "", {"frame": changes}),
                               action or notes.get("current_action"))
    text = upd.data["text"]
    if fallback:
        text += (f"\n- **Numbers:** from recorded evidence (backend unavailable: "
                 f"{md_inline(fallback)})")
    record = {"time": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
              "as_of": impact.data.get("as_of"), "color": upd.data["color"],
              "state": upd.data["state"], "severity": severity.data["level"],
              "next_update": upd.data["next_update"], "text": text}
    with open(run.path / f".{UPDATES_FILE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        atomic_write_json(run.path / UPDATES_FILE, [*load_status_updates(run.path), record])
    return text


_SECTION = re.compile(r"^##\s+(.+?)\s*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _table_rows(lines: list[str], start: int) -> list[tuple[int, list[str]]]:
    """(line number, cells) of the Markdown table right after lines[start] (header skipped)."""
    rows: list[tuple[int, list[str]]] = []
    i = start
    while i < len(lines) and not lines[i].startswith("|"):
        if lines[i].startswith("## "):
            return rows
        i += 1
    i += 2  # header and |---| separator
    while i < len(lines) and lines[i].startswith("|"):
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", lines[i].strip())[1:-1]]
        rows.append((i + 1, cells))
        i += 1
    return rows


def lint_run(run_path: Path) -> list[str]:
    """Problems of a run's report: sections, action owners/dates, TODOs, timeline order, notes."""
    path = Path(run_path)
    problems: list[str] = []
    notes_p = path / NOTES_FILE
    if notes_p.is_file():
        problems += check_notes(notes_p.read_text("utf-8"))[1]
    rep = path / "report.md"
    if not rep.is_file():
        return [*problems, "report.md: missing: render it with `incident report RUN`"]
    if notes_p.is_file() and notes_p.stat().st_mtime > rep.stat().st_mtime:
        problems.append("report.md: older than notes.yaml: re-render with `incident report RUN`")
    lines = rep.read_text("utf-8").splitlines()
    sections = {m.group(1): i for i, ln in enumerate(lines) if (m := _SECTION.match(ln))}
    for name in REQUIRED_SECTIONS:
        if name not in sections:
            problems.append(f"report.md: required section '## {name}' is missing")
    action_lines: set[int] = set()
    if "Action items" in sections:
        rows = _table_rows(lines, sections["Action items"] + 1)
        if not rows:
            problems.append(f"report.md:{sections['Action items'] + 1}: no action items")
        for n, (lineno, cells) in enumerate(rows, 1):
            action_lines.add(lineno)
            owner = cells[2] if len(cells) > 2 else ""
            due = cells[3] if len(cells) > 3 else ""
            if owner in ("", "TODO"):
                problems.append(f"report.md:{lineno}: action item {n} has no owner")
            if due in ("", "TODO"):
                problems.append(f"report.md:{lineno}: action item {n} has no due date")
            elif not _DATE.match(due.replace("\\-", "-")):
                problems.append(f"report.md:{lineno}: action item {n} due date {due[:30]!r} "
                                "is not YYYY-MM-DD")
    if "Timeline" in sections:
        prev = None
        for lineno, cells in _table_rows(lines, sections["Timeline"] + 1):
            try:
                t = pd.Timestamp(cells[0].replace("\\-", "-"))
            except (ValueError, IndexError):
                problems.append(f"report.md:{lineno}: timeline row has no readable time")
                continue
            if prev is not None and t < prev:
                problems.append(f"report.md:{lineno}: timeline out of order: {cells[0]} comes "
                                f"after {prev.strftime('%Y-%m-%d %H:%M:%S')}")
            prev = t
    for i, ln in enumerate(lines, 1):
        if "TODO" in ln and i not in action_lines and not ln.startswith("_Generated by"):
            problems.append(f"report.md:{i}: TODO left: {ln.strip()[:100]}")
    return problems
