"""Stage 3, 5 Whys: an evidence-cited chain and the rollback-or-fix recommendation."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..analysis.outcome import root_cause_claim
from ..analysis.whys import five_whys, rollback_or_fix
from ..core.errors import StageError
from ..core.findings import FiveWhysFindings
from ..core.safe import md_code, md_inline
from ..report.display import Section
from ..runs.folder import Run
from .common import calls_of, outcome_of

__all__ = ["context", "chain", "decision", "save", "run", "NO_ACTION"]

OUTCOME_WORDS = {"incident": "incident", "no_incident": "no incident found",
                 "inconclusive": "inconclusive"}


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
    outcome = outcome_of(run, tri, cor)
    claim = root_cause_claim(outcome, cor)
    reasons = md_inline("; ".join(outcome["reasons"]), 600)
    md = f"**Outcome: {OUTCOME_WORDS[outcome['kind']]}** ({reasons})."
    sd = outcome.get("strongest_deviation")
    if outcome["kind"] != "incident" and sd:
        md += f"\n\nStrongest deviation seen: {md_inline(sd['text'], 400)}."
    if outcome["kind"] == "incident":
        md += ("\n\n" + (f"Top suspect: **{md_inline(top['service'])}**"
                          + (f" with {md_inline(top['change_id'])}" if top.get("change_id")
                             else "")
                          + f" (score {top['score']:.2f}; {md_inline(claim['why'], 300)})"
                          if top else "No suspects were found."))
    return Section("Inputs", md, {"triage": tri, "correlation": cor, "anomalies": an,
                                  "templates": tpl, "queries": queries, "outcome": outcome,
                                  "claim": claim})


def chain(run: Run, ctx: Section) -> Section:
    """Five whys; each cites evidence (query + numbers) or is labelled a hypothesis."""
    d = ctx.data
    if d["outcome"]["kind"] != "incident":
        return Section("5 Whys", f"No 5 Whys: {OUTCOME_WORDS[d['outcome']['kind']]}, so there "
                       "is no failure to explain.", {"whys": []})
    whys = five_whys(run.incident.service, d["correlation"]["suspects"], d["anomalies"],
                     d["templates"], calls_of(run), d["queries"])
    lines = []
    for w in whys:
        tag = "" if w["status"] == "fact" else "**Hypothesis (no evidence):** "
        lines.append(f"{w['n']}. **{md_inline(w['question'], 400)}** "
                     f"{tag}{md_inline(w['answer'], 2000)}")
        for e in w["evidence"]:
            whose = f" ({md_inline(e['service'])})" if e.get("service") else ""
            lines.append(f"    - evidence {md_code(e.get('evidence', ''))}{whose}: "
                         f"{md_inline(e.get('numbers', ''), 600)}")
    return Section("5 Whys", "\n".join(lines), {"whys": whys})


NO_ACTION = {"decision": "none", "target": "", "rule": "no measured onset -> nothing to roll "
             "back or fix", "evidence": []}


def decision(run: Run, ctx: Section, fix_minutes: float | None = None) -> Section:
    """Rollback-or-fix from the decision tree (severity, recent change, fix estimate).

    Only for a measured incident: without an onset nothing is recommended. The
    recommendation carries the evidence it rests on (the top suspect's change and signals).
    """
    d = ctx.data
    tri, cor = d["triage"], d["correlation"]
    if d["outcome"]["kind"] != "incident":
        dec = {**NO_ACTION, "why": "; ".join(d["outcome"]["reasons"])}
        md = ("**Recommendation: none.** " + md_inline(dec["why"], 600)
              + ". No rollback and no fix: nothing was measured to roll back from.")
        return Section("Rollback or fix forward", md, dec)
    onset = pd.Timestamp(tri["onset"]["time"])
    top = cor["suspects"][0] if cor["suspects"] else None
    dec = rollback_or_fix(tri["severity"]["level"], top, onset, fix_minutes)
    ev = (top or {}).get("evidence", [])
    dec["evidence"] = ([e["text"] for e in ev if e.get("kind") == "change"]
                       + [f"{top['service']} {e['text']}" for e in ev
                          if e.get("kind") == "metric"])[:3]
    dec["confidence"] = d["claim"]["confidence"]
    md = (f"**Recommendation: {md_inline(dec['decision'])} {md_inline(dec['target'])}** "
          f"(rule: {md_inline(dec['rule'])}; {md_inline(dec['why'])})")
    if dec["evidence"]:
        md += "\n\nEvidence:\n" + "\n".join(f"- {md_inline(e, 400)}" for e in dec["evidence"])
    return Section("Rollback or fix forward", md, dec)


def save(run: Run, whys: Section, dec: Section, ctx: Section | None = None) -> Any:
    """Write findings/five_whys.json (with the outcome and what may be said of the cause)."""
    if ctx is None:
        ctx = context(run)
    return run.save_findings("five_whys", {"whys": whys.data["whys"], "decision": dec.data,
                                           "outcome": ctx.data["outcome"],
                                           "root_cause": ctx.data["claim"]})


def run(run: Run) -> FiveWhysFindings:
    """The whole 5 Whys stage in one call, as the notebook runs it; findings saved."""
    ctx = context(run)
    save(run, chain(run, ctx), decision(run, ctx), ctx)
    return run.five_whys() or FiveWhysFindings()
