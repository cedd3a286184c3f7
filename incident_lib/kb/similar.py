"""Similar past incidents: per-field TF-IDF cosines (scikit-learn) over services, signals,
alert labels, log templates and text, so every match says which fields matched and on what."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..core.errors import InputError
from ..core.findings import TriageFindings
from ..core.safe import md_code, md_inline, md_table
from ..core.storage import workspace
from ..report.display import Section
from .entries import (
    FIELD_WEIGHTS,
    REPEAT_MIN_SCORE,
    KBEntry,
    _open_items,
    _uniq,
    kb_root,
    load_kb,
    symptoms_of_run,
    triage_from_sections,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["similar_incidents", "similar_section", "matches_markdown"]


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
    from sklearn.feature_extraction.text import TfidfVectorizer  # heavy: imported on use
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
    from sklearn.feature_extraction.text import TfidfVectorizer  # heavy: imported on use
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
                      triage: TriageFindings | None = None) -> pd.DataFrame:
    """Past incidents ranked by symptom similarity, with why each matched and repeat flags."""

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
    onset = None
    if run is not None:
        tri = triage if triage is not None else run.triage()
        onset = tri.onset.time if tri is not None else None
    entries = [e for e in entries if e.id not in exclude
               and (until is None or pd.Timestamp(e.data["started"]) <= until)
               and not _same_incident(e.data, onset, symptoms)]
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


SAME_INCIDENT_WITHIN = 600  # seconds: an entry that started this close is this incident


def _same_incident(data: dict[str, Any], onset: str | None, symptoms: dict[str, Any]) -> bool:
    """An entry of this very incident (an earlier run of it): same start, a shared service."""
    if not onset or not data.get("started"):
        return False
    gap = abs((pd.Timestamp(data["started"]) - pd.Timestamp(onset)).total_seconds())
    shared = set(data.get("services") or []) & set(symptoms.get("services") or [])
    return gap <= SAME_INCIDENT_WITHIN and bool(shared)


def _postmortem_link(e: KBEntry) -> str:
    pm = e.data.get("postmortem")
    if pm and not re.match(r"^[a-z]+:", str(pm)):
        return str((e.path.parent / str(pm)).resolve()) if not Path(str(pm)).is_absolute() \
            else str(pm)
    return str(pm) if pm else str(e.path)


def _link(target: str, label: str) -> str:
    if re.fullmatch(r"(https?://|/|\.{0,2}/?)[\w./%#~+-]+", target):
        return f"[{md_inline(label)}](<{target}>)"
    return md_code(target)


def matches_markdown(df: pd.DataFrame) -> str:
    """Markdown of ranked matches: the likely repeat first (link, open items), table, reasons."""

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


def _shown(path: Path) -> str:
    """A folder as a person should see it in shared output: relative to the working folder."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return Path(path).name or str(path)


def similar_section(run: Any, kb_dir: str | Path | None = None, top: int = 5, *,
                    onset: Any = None, impact: Any = None) -> Any:
    """'Similar past incidents' for triage: ranked, why, repeat flag (never raises).

    In the triage notebook pass the onset and impact Sections (findings are not saved yet);
    elsewhere the run's findings/triage.json (and correlation.json when present) are used.
    """

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
                        "kb_dir": _shown(base)})
    if not entries:
        md = (f"No past incidents in the knowledge base ({md_inline(_shown(base))}): add them "
              "with `incident kb add RUN`.")
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
        "repeat": rep_row, "problems": problems, "kb_dir": _shown(base)})


def _shown(base: Path) -> str:
    """The KB folder as findings record it: relative to the workspace when inside it (findings
    are shared and replayed elsewhere; an absolute local path means nothing there)."""
    try:
        return base.relative_to(workspace()).as_posix() or "."
    except ValueError:
        return str(base)
