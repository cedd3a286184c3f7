"""Stage 3, 5 Whys: an evidence-cited chain and the rollback-or-fix recommendation."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..analysis.whys import five_whys, rollback_or_fix
from ..core.errors import StageError
from ..core.findings import FiveWhysFindings
from ..core.safe import md_inline
from ..report.display import Section
from ..runs.folder import Run
from .common import calls_of

__all__ = ["context", "chain", "decision", "save", "run"]


def context(run: Run) -> Section:
    """Triage and correlation findings plus the evidence the whys cite."""
    tri, cor = run.findings("triage"), run.findings("correlation")
    missing = [n for n, f in (("triage", tri), ("correlation", cor)) if f is None]
    if missing:
        raise StageError(f"findings missing from {', '.join(missing)}: run the earlier stages")
    idx = run.evidence_index()
    an = run.evidence("anomalies") if "anomalies" in idx else pd.DataFrame()
    tpl = run.evidence("log_templates") if "log_templates" in idx else pd.DataFrame()
    queries = {k: v.get("query", "") for k, v in idx.items()}
    top = cor["suspects"][0] if cor["suspects"] else None
    md = (f"Top suspect: **{md_inline(top['service'])}**"
          + (f" with {md_inline(top['change_id'])}" if top and top.get("change_id") else "")
          + f" (score {top['score']:.2f})" if top else "No suspects were found.")
    return Section("Inputs", md, {"triage": tri, "correlation": cor, "anomalies": an,
                                  "templates": tpl, "queries": queries})


def chain(run: Run, ctx: Section) -> Section:
    """Five whys; each cites evidence (query + numbers) or is labelled a hypothesis."""
    d = ctx.data
    whys = five_whys(run.incident.service, d["correlation"]["suspects"], d["anomalies"],
                     d["templates"], calls_of(run), d["queries"])
    lines = []
    for w in whys:
        tag = "" if w["status"] == "fact" else "**Hypothesis (no evidence):** "
        lines.append(f"{w['n']}. **{md_inline(w['question'])}** {tag}{md_inline(w['answer'])}")
        for e in w["evidence"]:
            lines.append(f"    - evidence `{md_inline(e.get('evidence', ''))}`: "
                         f"{md_inline(e.get('numbers', ''))}")
    return Section("5 Whys", "\n".join(lines), {"whys": whys})


def decision(run: Run, ctx: Section, fix_minutes: float | None = None) -> Section:
    """Rollback-or-fix from the decision tree (severity, recent change, fix estimate)."""
    d = ctx.data
    tri, cor = d["triage"], d["correlation"]
    onset = pd.Timestamp(tri["onset"]["time"]) if tri["onset"]["time"] else run.incident.end_ts
    top = cor["suspects"][0] if cor["suspects"] else None
    dec = rollback_or_fix(tri["severity"]["level"], top, onset, fix_minutes)
    md = (f"**Recommendation: {md_inline(dec['decision'])} {md_inline(dec['target'])}** "
          f"(rule: {md_inline(dec['rule'])}; {md_inline(dec['why'])})")
    return Section("Rollback or fix forward", md, dec)


def save(run: Run, whys: Section, dec: Section) -> Any:
    """Write findings/five_whys.json."""
    return run.save_findings("five_whys", {"whys": whys.data["whys"], "decision": dec.data})


def run(run: Run) -> FiveWhysFindings:
    """The whole 5 Whys stage in one call, as the notebook runs it; findings saved."""
    ctx = context(run)
    save(run, chain(run, ctx), decision(run, ctx))
    return run.five_whys() or FiveWhysFindings()
