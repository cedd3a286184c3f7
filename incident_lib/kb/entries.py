"""Knowledge base entries: build, render, write, parse and load past incidents.

A KB entry is Markdown with YAML front matter (templates/kb_entry.md.j2), one file per incident
in the KB folder (--kb, INCIDENT_KB_DIR, or <project>/kb). Similarity is a weighted sum of
per-field TF-IDF cosines (scikit-learn) over services, signals, alert labels, log templates and
text, so every match can say which fields matched and on what.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from ..core.findings import CorrelationFindings, Impact, Onset, TriageFindings
from ..core.model import iso
from ..core.notes import as_date, as_time, key_lines, yaml_error
from ..core.storage import workspace

if TYPE_CHECKING:
    pass

__all__ = ["KBEntry", "kb_root", "parse_entry", "load_kb", "symptoms_of_run",
           "triage_from_sections", "REQUIRED_FIELDS", "FIELD_WEIGHTS", "REPEAT_MIN_SCORE"]


QUIET_LEVELS = ("info", "debug", "trace", "notice")
REQUIRED_FIELDS = ("incident_id", "title", "severity", "started", "services")
TIME_FIELDS = ("started", "detected", "acknowledged", "mitigated", "resolved")
FIELD_WEIGHTS = {"services": 0.25, "signals": 0.2, "labels": 0.15, "templates": 0.25,
                 "text": 0.15}
REPEAT_MIN_SCORE = 0.6  # weighted similarity above which a same-cause match is a repeat
DONE = ("done", "closed", "completed", "wontfix")


@dataclass
class KBEntry:
    """One past incident read from the KB: its front matter and where it came from."""

    path: Path
    data: dict[str, Any]
    body: str = ""

    @property
    def id(self) -> str:
        """The incident id."""
        return str(self.data["incident_id"])


def kb_root(kb_dir: str | Path | None = None) -> Path:
    """The KB folder: kb_dir, else INCIDENT_KB_DIR, else kb/ in the workspace."""

    if kb_dir:
        return Path(kb_dir).resolve()
    env = os.environ.get("INCIDENT_KB_DIR")
    return Path(env).resolve() if env else workspace() / "kb"


# --- symptoms and entries ------------------------------------------------------------------


def _uniq(values: Any) -> list[str]:
    out: list[str] = []
    for v in values:
        s = str(v)
        if v is not None and s and s not in out:
            out.append(s)
    return out


def triage_from_sections(onset: Any, impact: Any) -> TriageFindings:
    """Triage findings (onset and impact only) from the notebook's Sections, before saving."""


    mv = onset.data.get("movers") if onset is not None else None
    movers = [] if mv is None or len(mv) == 0 else [
        {k: (iso(v) if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}
        for r in mv.head(15).to_dict(orient="records")]
    return TriageFindings(
        onset=Onset(time=iso(onset.data.get("time")) if onset is not None else None,
                    first_movers=movers),
        impact=Impact.from_dict(dict(impact.data)) if impact is not None else Impact())


def symptoms_of_run(run: Any, triage: TriageFindings | None = None) -> dict[str, Any]:
    """Symptoms of a run: services, signals, labels (triage), templates (correlation if run)."""
    tri = triage if triage is not None else (run.triage() or TriageFindings())
    cor = run.correlation() or CorrelationFindings()
    inc = run.incident
    movers = tri.onset.first_movers
    services = _uniq([*tri.impact.affected_services, inc.service,
                      *(s.service for s in cor.suspects[:1])])
    signals = _uniq(m.get("signal") for m in movers)
    signals += _uniq(f"{m.get('signal')}@{m.get('service')}" for m in movers)
    # a symptom is a new or surging warning/error of a service the incident touched: an info
    # line that surged (a flag turned on) or a template of an untouched service is no symptom
    templates = _uniq(t.get("template") for t in cor.templates
                      if t.get("status") in ("new", "surging")
                      and str(t.get("level") or "error").lower() not in QUIET_LEVELS
                      and (t.get("service") is None or t.get("service") in services))
    top = cor.top
    text = " ".join(str(x) for x in (inc.title, inc.annotations.get("summary", ""),
                                     inc.annotations.get("description", ""),
                                     top.change if top else "") if x)
    return {"services": services, "signals": signals, "labels": dict(inc.labels),
            "templates": templates[:30], "text": text}


def _seconds(a: str | None, b: str | None) -> int | None:
    if not a or not b:
        return None
    return int(round((pd.Timestamp(b) - pd.Timestamp(a)).total_seconds()))








def _open_items(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in data.get("action_items") or []
            if isinstance(a, dict) and str(a.get("status") or "open").lower() not in DONE]






# --- reading -------------------------------------------------------------------------------


def _front_matter(text: str) -> tuple[str, str, int] | str:
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return "no YAML front matter: the file must start with a '---' line"
    for i in range(1, len(lines)):
        if lines[i].rstrip() in ("---", "..."):
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1:]), 1
    return "front matter is not closed: add a '---' line after it"


def parse_entry(path: Path, text: str | None = None) -> tuple[KBEntry | None, list[str]]:
    """Read and check one KB file: (entry or None, ['FILE:LINE: problem', ...])."""


    name = str(path)
    try:
        text = path.read_text("utf-8") if text is None else text
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{name}:1: unreadable ({type(exc).__name__})"]
    fm = _front_matter(text)
    if isinstance(fm, str):
        return None, [f"{name}:1: {fm}"]
    body_yaml, body, offset = fm
    try:
        data = yaml.safe_load(body_yaml)
    except yaml.YAMLError as exc:
        line, why = yaml_error(exc, offset)
        return None, [f"{name}:{line}: front matter is {why}"]
    if not isinstance(data, dict):
        return None, [f"{name}:2: front matter must be a mapping of fields"]
    lines = key_lines(body_yaml, offset)
    missing = [f for f in REQUIRED_FIELDS if data.get(f) in (None, "", [])]
    if missing:
        return None, [f"{name}:1: missing field(s) {', '.join(missing)}"]
    problems: list[str] = []
    for f in TIME_FIELDS:
        try:
            data[f] = as_time(data.get(f))
        except (ValueError, TypeError):
            problems.append(f"{name}:{lines.get(f, 1)}: {f} {str(data.get(f))[:30]!r} is not "
                            "a time (ISO-8601)")
    data["incident_id"] = str(data["incident_id"])
    for f in ("services", "tags", "related_files", "action_items"):
        if data.get(f) is None:
            data[f] = []
        if not isinstance(data[f], list):
            problems.append(f"{name}:{lines.get(f, 1)}: {f} must be a list")
    for i, a in enumerate(data["action_items"] if isinstance(data["action_items"], list) else []):
        if not isinstance(a, dict) or not a.get("action"):
            problems.append(f"{name}:{lines.get(f'action_items[{i}]', 1)}: action_items[{i}] "
                            "needs at least 'action'")
            continue
        try:
            a["due"] = as_date(a.get("due"))
        except ValueError:
            problems.append(f"{name}:{lines.get(f'action_items[{i}].due', 1)}: "
                            f"action_items[{i}].due is not YYYY-MM-DD")
    for f in ("symptoms", "root_cause", "impact"):
        if data.get(f) is None:
            data[f] = {}
        if not isinstance(data[f], dict):
            problems.append(f"{name}:{lines.get(f, 1)}: {f} must be a mapping")
    sym = data["symptoms"] if isinstance(data["symptoms"], dict) else {}
    for f, kind in (("signals", list), ("templates", list), ("labels", dict)):
        if sym.get(f) is not None and not isinstance(sym[f], kind):
            problems.append(f"{name}:{lines.get(f'symptoms.{f}', 1)}: symptoms.{f} must be a "
                            f"{'list' if kind is list else 'mapping'}")
    if problems:
        return None, problems
    return KBEntry(path, data, body), []


def load_kb(kb_dir: str | Path | None = None) -> tuple[list[KBEntry], list[str]]:
    """Every valid entry of the KB folder (*.md, sorted) and the problems of the bad ones."""
    base = kb_root(kb_dir)
    entries: list[KBEntry] = []
    problems: list[str] = []
    if not base.is_dir():
        return entries, problems
    seen: dict[str, Path] = {}
    for p in sorted(base.glob("*.md")):
        entry, probs = parse_entry(p)
        problems += probs
        if entry is None:
            continue
        if entry.id in seen:
            problems.append(f"{p}:1: incident_id {entry.id} is also in {seen[entry.id].name}; "
                            "skipped")
            continue
        seen[entry.id] = p
        entries.append(entry)
    return entries, problems


# --- similarity ----------------------------------------------------------------------------


























# --- command line --------------------------------------------------------------------------


def _warn(problems: list[str]) -> None:
    for p in problems:
        print(f"kb: skipped {p}", file=sys.stderr)






