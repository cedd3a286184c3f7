"""Knowledge base of past incidents: KB entries, similar-incident search, incident metrics.

A KB entry is Markdown with YAML front matter (templates/kb_entry.md.j2), one file per incident
in the KB folder (--kb, INCIDENT_KB_DIR, or <project>/kb). Similarity is a weighted sum of
per-field TF-IDF cosines (scikit-learn) over services, signals, alert labels, log templates and
text, so every match can say which fields matched and on what.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["KBEntry", "kb_root", "build_entry", "render_entry", "write_entry", "parse_entry",
           "load_kb", "symptoms_of_run", "triage_from_sections", "similar_incidents",
           "similar_section", "matches_markdown", "register", "REQUIRED_FIELDS",
           "FIELD_WEIGHTS", "REPEAT_MIN_SCORE"]

_STATS = ("incident_table", "compute_stats", "write_stats")  # live in kb_stats


def __getattr__(name: str) -> Any:
    """kb.compute_stats etc. stay importable from here (they live in kb_stats)."""
    if name in _STATS:
        from . import kb_stats

        return getattr(kb_stats, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    """The KB folder: kb_dir, else INCIDENT_KB_DIR, else <project>/kb."""
    from .storage import project_root

    if kb_dir:
        return Path(kb_dir).resolve()
    env = os.environ.get("INCIDENT_KB_DIR")
    return Path(env).resolve() if env else project_root() / "kb"


# --- symptoms and entries ------------------------------------------------------------------


def _uniq(values: Any) -> list[str]:
    out: list[str] = []
    for v in values:
        s = str(v)
        if v is not None and s and s not in out:
            out.append(s)
    return out


def triage_from_sections(onset: Any, impact: Any) -> dict[str, Any]:
    """Triage findings shaped like findings/triage.json from the notebook's Sections."""
    import pandas as pd

    from .model import iso

    mv = onset.data.get("movers") if onset is not None else None
    movers = [] if mv is None or len(mv) == 0 else [
        {k: (iso(v) if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}
        for r in mv.head(15).to_dict(orient="records")]
    return {"onset": {"time": iso(onset.data.get("time")) if onset is not None else None,
                      "first_movers": movers},
            "impact": dict(impact.data) if impact is not None else {}}


def symptoms_of_run(run: Any, triage: dict[str, Any] | None = None) -> dict[str, Any]:
    """Symptoms of a run: services, signals, labels (triage), templates (correlation if run)."""
    tri = triage if triage is not None else (run.findings("triage") or {})
    cor = run.findings("correlation") or {}
    inc = run.incident
    movers = (tri.get("onset") or {}).get("first_movers") or []
    suspects = cor.get("suspects") or []
    services = _uniq([*((tri.get("impact") or {}).get("affected_services") or []),
                      inc.service, *(s["service"] for s in suspects[:1])])
    signals = _uniq(m.get("signal") for m in movers)
    signals += _uniq(f"{m.get('signal')}@{m.get('service')}" for m in movers)
    templates = _uniq(t.get("template") for t in cor.get("templates") or []
                      if t.get("status") in ("new", "surging"))
    top = suspects[0] if suspects else {}
    text = " ".join(str(x) for x in (inc.title, inc.annotations.get("summary", ""),
                                     inc.annotations.get("description", ""),
                                     top.get("change", "")) if x)
    return {"services": services, "signals": signals, "labels": dict(inc.labels),
            "templates": templates[:30], "text": text}


def _seconds(a: str | None, b: str | None) -> int | None:
    import pandas as pd

    if not a or not b:
        return None
    return int(round((pd.Timestamp(b) - pd.Timestamp(a)).total_seconds()))


def build_entry(run: Any, kb_dir: Path | None = None) -> dict[str, Any]:
    """The KB entry (front matter fields) of a run, from its findings and notes.yaml."""
    from .notes import default_action_items, early_signal, load_notes

    notes = load_notes(run.path)
    tri = run.findings("triage") or {}
    cor = run.findings("correlation") or {}
    inc = run.incident
    impact = tri.get("impact") or {}
    sus = cor.get("suspects") or []
    top = sus[0] if sus else None
    started = impact.get("onset") or (tri.get("onset") or {}).get("time") or inc.alert_time \
        or inc.start
    resolved = notes.get("resolved") or inc.resolved_at
    mitigated = impact.get("recovered") or resolved
    rc_note = notes["root_cause"]
    summary = rc_note.get("text") or (
        f"{top['service']}" + (f" after {top.get('change_type')} {top['change_id']} "
                               f"({top.get('change')})" if top.get("change_id") else "")
        if top else None)
    items = notes.get("action_items")
    if items is None:
        items = default_action_items(top, early_signal(tri))
    sym = symptoms_of_run(run)
    tags = _uniq([f"alert:{inc.labels['alertname']}" if inc.labels.get("alertname") else None,
                  f"cause:{top['service']}" if top else None,
                  f"change:{top['change_type']}" if top and top.get("change_type") else None,
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
        "severity": (tri.get("severity") or {}).get("level") or "unknown",
        "started": started,
        "detected": inc.alert_time or inc.created,
        "acknowledged": notes.get("acknowledged"),
        "mitigated": mitigated,
        "resolved": resolved,
        "duration": _seconds(started, mitigated),
        "impact": {"customer_error_share": impact.get("customer_error_share"),
                   "failed_requests": impact.get("failed_requests"),
                   "total_requests": impact.get("total_requests"),
                   "users_affected": notes.get("users_affected"),
                   "revenue_impact": notes.get("revenue_impact")},
        "services": sym["services"],
        "root_cause": {"service": top["service"] if top else None,
                       "change_id": top.get("change_id") if top else None,
                       "summary": summary, "confirmed": bool(rc_note.get("confirmed"))},
        "tags": tags,
        "repeat_of": notes.get("repeat_of"),
        "symptoms": {k: sym[k] for k in ("signals", "labels", "templates")},
        "related_files": related,
        "postmortem": postmortem,
        "action_items": items,
    }


def _yaml_text(data: dict[str, Any]) -> str:
    import yaml

    from .report.safe import clean_text

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
    from markupsafe import Markup

    from .report.render import render_template

    fm = _yaml_text(data)
    return render_template("kb_entry.md.j2", {"front_matter": Markup(fm), "e": data,
                                              "open_items": _open_items(data)})


def _open_items(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in data.get("action_items") or []
            if isinstance(a, dict) and str(a.get("status") or "open").lower() not in DONE]


def write_entry(run: Any, kb_dir: str | Path | None = None) -> Path:
    """Write <kb>/<incident-id>.md for a run (repeat_of filled from the KB when it is clear)."""
    from .run import Run
    from .storage import atomic_write_text

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
    from .storage import atomic_write_bytes

    atomic_write_bytes(dest / "report.md", (run_dir / "report.md").read_bytes())
    figures = run_dir / "report_files"
    if figures.is_dir():
        for f in sorted(figures.iterdir()):
            if f.is_file() and not f.is_symlink():
                atomic_write_bytes(dest / "report_files" / f.name, f.read_bytes())


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
    import yaml

    from .notes import as_date, as_time, key_lines, yaml_error

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


def _doc(data: dict[str, Any]) -> dict[str, Any]:
    sym = data.get("symptoms") or {}
    rc = data.get("root_cause") or {}
    labels = sym.get("labels") or {}
    text = " ".join(str(x) for x in (data.get("title"), rc.get("summary"),
                                     " ".join(map(str, data.get("tags") or []))) if x)
    return {"services": _uniq([*(data.get("services") or []), rc.get("service")]),
            "signals": [str(s) for s in sym.get("signals") or []],
            "labels": [f"{k}={v}" for k, v in labels.items()] if isinstance(labels, dict)
            else [str(x) for x in labels],
            "templates": [str(t) for t in sym.get("templates") or []],
            "text": text}


def _query_doc(sym: dict[str, Any]) -> dict[str, Any]:
    return {"services": list(sym.get("services") or []), "signals": list(sym.get("signals") or []),
            "labels": [f"{k}={v}" for k, v in (sym.get("labels") or {}).items()],
            "templates": list(sym.get("templates") or []), "text": sym.get("text") or ""}


def _tokens(doc: list[str]) -> list[str]:
    return doc


_WORDS = r"(?u)\b[a-zA-Z][a-zA-Z_]+\b"


def _field_cosines(query: dict[str, Any], docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per field, the TF-IDF cosine of the query with each doc (fitted on query + docs)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    out: dict[str, Any] = {}
    for f in FIELD_WEIGHTS:
        if f in ("templates", "text"):
            corpus = [" ".join(query[f]) if f == "templates" else query[f]]
            corpus += [" ".join(d[f]) if f == "templates" else d[f] for d in docs]
            vec = TfidfVectorizer(token_pattern=_WORDS, ngram_range=(1, 2), sublinear_tf=True,
                                  stop_words="english" if f == "text" else None)
        else:
            corpus = [query[f], *(d[f] for d in docs)]
            vec = TfidfVectorizer(analyzer=_tokens, lowercase=False)
        if not any(corpus[0]) or not any(any(c) for c in corpus[1:]):
            continue
        try:
            m = vec.fit_transform(corpus)
        except ValueError:  # empty vocabulary
            continue
        out[f] = cosine_similarity(m[0], m[1:])[0]
    return out


def _best_template(q: list[str], past: list[str]) -> tuple[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    if not q or not past:
        return "", 0.0
    try:
        m = TfidfVectorizer(token_pattern=_WORDS).fit_transform([*q, *past])
    except ValueError:
        return "", 0.0
    sim = cosine_similarity(m[: len(q)], m[len(q):])
    i, j = divmod(int(sim.argmax()), sim.shape[1])
    return past[j], float(sim[i, j])


def _why(query: dict[str, Any], doc: dict[str, Any], cos: dict[str, float]) -> tuple[str, float]:
    parts: list[str] = []
    shared = [s for s in query["services"] if s in doc["services"]]
    if shared:
        parts.append("services " + ", ".join(shared))
    sig = [s for s in query["signals"] if s in doc["signals"] and "@" not in s]
    if sig:
        parts.append("signals " + ", ".join(sig))
    lab = [x for x in query["labels"] if x in doc["labels"]]
    if lab:
        parts.append("labels " + ", ".join(lab))
    tpl, tsim = _best_template(query["templates"], doc["templates"])
    if tsim >= 0.3:
        parts.append(f"template '{tpl[:90]}' ({tsim:.2f})")
    if cos.get("text", 0) >= 0.2:
        parts.append(f"text ({cos['text']:.2f})")
    return "; ".join(parts) or "weak overall resemblance", tsim


def similar_incidents(run: Any, kb_dir: str | Path | None = None, top: int = 5, *,
                      symptoms: dict[str, Any] | None = None,
                      entries: list[KBEntry] | None = None,
                      triage: dict[str, Any] | None = None) -> pd.DataFrame:
    """Past incidents ranked by symptom similarity, with why each matched and repeat flags."""
    import pandas as pd

    cols = ["rank", "incident_id", "title", "severity", "started", "score", "likely_repeat",
            "why", "postmortem", "open_action_items", *[f"s_{f}" for f in FIELD_WEIGHTS]]
    if entries is None:
        entries, _ = load_kb(kb_dir)
    exclude: set[str] = set()
    until = None
    if run is not None:
        exclude = {run.incident.id}
        src = str(run.incident.source or "")
        if src.startswith("replay:"):
            exclude.add(src.removeprefix("replay:"))
        until = run.incident.end_ts
        symptoms = symptoms or symptoms_of_run(run, triage)
    if symptoms is None:
        raise InputError("similar_incidents needs a run or symptoms")
    entries = [e for e in entries if e.id not in exclude
               and (until is None or pd.Timestamp(e.data["started"]) <= until)]
    if not entries:
        return pd.DataFrame(columns=cols)
    query = _query_doc(symptoms)
    docs = [_doc(e.data) for e in entries]
    cos = _field_cosines(query, docs)
    weights = {f: w for f, w in FIELD_WEIGHTS.items() if f in cos}
    total = sum(weights.values()) or 1.0
    rows = []
    for i, (e, d) in enumerate(zip(entries, docs, strict=True)):
        c = {f: float(cos[f][i]) for f in weights}
        score = sum(weights[f] * c[f] for f in weights) / total
        why, tsim = _why(query, d, c)
        cause = (e.data.get("root_cause") or {}).get("service")
        same_cause = bool(cause in query["services"]) if cause else bool(
            set(d["services"]) & set(query["services"]))
        repeat = score >= REPEAT_MIN_SCORE and same_cause and (
            not (query["templates"] and d["templates"]) or tsim >= 0.5)
        rows.append({"incident_id": e.id, "title": str(e.data.get("title")),
                     "severity": str(e.data.get("severity")), "started": e.data["started"],
                     "score": round(score, 4), "likely_repeat": repeat, "why": why,
                     "postmortem": _postmortem_link(e),
                     "open_action_items": _open_items(e.data),
                     **{f"s_{f}": round(c.get(f, 0.0), 4) for f in FIELD_WEIGHTS}})
    df = pd.DataFrame(rows).sort_values(["score", "started"], ascending=[False, False],
                                        kind="stable").head(top).reset_index(drop=True)
    df.insert(0, "rank", range(1, len(df) + 1))
    return df[cols]


def _postmortem_link(e: KBEntry) -> str:
    pm = e.data.get("postmortem")
    if pm and not re.match(r"^[a-z]+:", str(pm)):
        return str((e.path.parent / str(pm)).resolve()) if not Path(str(pm)).is_absolute() \
            else str(pm)
    return str(pm) if pm else str(e.path)


def _link(target: str, label: str) -> str:
    from .report.safe import md_code, md_inline

    if re.fullmatch(r"(https?://|/|\.{0,2}/?)[\w./%#~+-]+", target):
        return f"[{md_inline(label)}](<{target}>)"
    return md_code(target)


def matches_markdown(df: pd.DataFrame) -> str:
    """Markdown of ranked matches: the likely repeat first (link, open items), table, reasons."""
    from .report.safe import md_inline, md_table

    md = ""
    rep = df[df["likely_repeat"]]
    if len(rep):
        r = rep.iloc[0]
        md += (f"**Likely repeat of {md_inline(r['incident_id'])}** "
               f"({md_inline(r['title'])}, {md_inline(str(r['started'])[:10])}, "
               f"score {r['score']:.2f}): postmortem "
               f"{_link(r['postmortem'], 'postmortem')}.\n")
        items = r["open_action_items"]
        md += ("Its open action items:\n" + "\n".join(
            f"- {md_inline(a.get('action'))} (owner {md_inline(a.get('owner') or 'none')}"
            f", due {md_inline(a.get('due') or 'none')}, {md_inline(a.get('status'))})"
            for a in items) if items else "It has no open action items.") + "\n\n"
    md += md_table(df, ["rank", "incident_id", "title", "started", "severity", "score",
                        "likely_repeat"])
    md += "\n" + "\n".join(f"- **#{r.rank} {md_inline(r.incident_id)}** matched on: "
                            f"{md_inline(r.why, 600)}" for r in df.itertuples()) + "\n"
    return md


def similar_section(run: Any, kb_dir: str | Path | None = None, top: int = 5, *,
                    onset: Any = None, impact: Any = None) -> Any:
    """'Similar past incidents' for triage: ranked, why, repeat flag (never raises).

    In the triage notebook pass the onset and impact Sections (findings are not saved yet);
    elsewhere the run's findings/triage.json (and correlation.json when present) are used.
    """
    from .report.display import Section
    from .report.safe import md_inline

    base = kb_root(kb_dir)
    try:
        entries, problems = load_kb(base)
        tri = triage_from_sections(onset, impact) if onset is not None or impact is not None \
            else None
        df = similar_incidents(run, base, top, entries=entries, triage=tri)
    except Exception as exc:  # noqa: BLE001 - a KB problem must never break triage
        return Section("Similar past incidents", f"Knowledge base search failed "
                       f"({md_inline(type(exc).__name__)}: {md_inline(exc)}).",
                       {"matches": [], "repeat": None, "problems": [str(exc)],
                        "kb_dir": str(base)})
    if not entries:
        md = (f"No past incidents in the knowledge base ({md_inline(base)}): add them with "
              "`incident kb add RUN`.")
    elif df.empty:
        md = "No earlier incident in the knowledge base."
    else:
        md = matches_markdown(df)
    if problems:
        md += f"\n{len(problems)} bad KB file(s) skipped:\n" + "\n".join(
            f"- {md_inline(p)}" for p in problems[:10])
    records = json.loads(df.to_json(orient="records")) if len(df) else []  # plain JSON types
    rep_row = next((r for r in records if r["likely_repeat"]), None)
    return Section("Similar past incidents", md, {
        "matches": [{k: v for k, v in r.items() if k != "open_action_items"} for r in records],
        "repeat": rep_row, "problems": problems, "kb_dir": str(base)})


# --- command line --------------------------------------------------------------------------


def _warn(problems: list[str]) -> None:
    for p in problems:
        print(f"kb: skipped {p}", file=sys.stderr)


def cmd_kb_add(args: argparse.Namespace) -> int:
    """`incident kb add RUN`: write the run's KB entry."""
    from .cli import _resolve_run

    print(write_entry(_resolve_run(args.run), args.kb))
    return 0


def cmd_kb_search(args: argparse.Namespace) -> int:
    """`incident kb search RUN|--text`: rank past incidents by similarity."""
    entries, problems = load_kb(args.kb)
    _warn(problems)
    if args.run:
        from .cli import _resolve_run
        from .run import Run

        df = similar_incidents(Run(_resolve_run(args.run)), args.kb, args.top, entries=entries)
    elif args.text or args.service:
        sym = {"services": args.service or [], "text": args.text or "",
               "templates": [args.text] if args.text else []}
        df = similar_incidents(None, args.kb, args.top, symptoms=sym, entries=entries)
    else:
        raise InputError("kb search needs a RUN, --text or --service")
    print(matches_markdown(df) if len(df) else "No matching past incidents.\n", end="")
    return 0


def register(sub: Any) -> None:
    """Add the `kb` (search, add) and `stats` sub-commands."""
    kb = sub.add_parser("kb", help="knowledge base of past incidents (search, add)")
    kbs = kb.add_subparsers(dest="kb_cmd", required=True)
    a = kbs.add_parser("add", help="write a run's KB entry (<kb>/<id>.md)")
    a.add_argument("run", help="incident id or run folder")
    a.set_defaults(func=cmd_kb_add)
    s = kbs.add_parser("search", help="past incidents most similar to a run (or --text)")
    s.add_argument("run", nargs="?", help="incident id or run folder")
    s.add_argument("--text", help="free text (e.g. a log line or symptom)")
    s.add_argument("--service", action="append", help="service (repeatable)")
    s.add_argument("--top", type=int, default=5)
    for p in (a, s):
        p.add_argument("--kb", help="KB folder (default INCIDENT_KB_DIR or <project>/kb)")
    s.set_defaults(func=cmd_kb_search)
    st = sub.add_parser("stats", help="MTTD/MTTA/MTTR, frequency, repeats, action completion")
    st.add_argument("--kb", help="KB folder (default INCIDENT_KB_DIR or <project>/kb)")
    st.add_argument("--out", help="output folder (default <kb>/stats)")
    from .kb_stats import cmd_stats

    st.set_defaults(func=cmd_stats)
