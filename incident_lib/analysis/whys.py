"""Evidence-cited 5 Whys and the rollback-or-fix decision tree."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .suspects import _fmt

__all__ = ["five_whys", "rollback_or_fix", "call_path"]


def call_path(calls: dict[str, list[str]], src: str, dst: str) -> list[str]:
    """Shortest caller->callee path from src to dst in the topology ([] if none)."""
    if src == dst:
        return [src]
    prev: dict[str, str] = {}
    queue, seen = [src], {src}
    while queue:
        cur = queue.pop(0)
        for nxt in calls.get(cur, []):
            if nxt not in seen:
                seen.add(nxt)
                prev[nxt] = cur
                if nxt == dst:
                    path = [dst]
                    while path[-1] != src:
                        path.append(prev[path[-1]])
                    return path[::-1]
                queue.append(nxt)
    return []


def _metric_ev(anoms: pd.DataFrame, svc: str, signal: str) -> dict[str, Any] | None:
    row = anoms[(anoms["service"] == svc) & (anoms["signal"] == signal)]
    if row.empty or float(row["score"].iat[0]) < 0.5:
        return None
    r = row.iloc[0]
    onset = r["onset"]
    has_onset = onset is not None and not pd.isna(onset)
    when = f", from {pd.Timestamp(onset):%H:%M:%S}" if has_onset else ""
    return {"evidence": f"signal_{signal}", "query": f"{signal}{{service={svc!r}}}",
            "service": svc,
            "numbers": f"median {_fmt(r['baseline'], r['unit'])} in the "
                       f"baseline -> median {_fmt(r['incident'], r['unit'])} in the incident "
                       f"window{when}"}


def five_whys(
    alert_service: str,
    suspects: list[dict[str, Any]],
    anomalies: pd.DataFrame,
    templates: pd.DataFrame,
    calls: dict[str, list[str]],
    queries: dict[str, str],
) -> list[dict[str, Any]]:
    """Five whys from symptom to cause; a why without evidence is marked a hypothesis."""
    whys: list[dict[str, Any]] = []
    top = suspects[0] if suspects else None
    culprit = top["service"] if top else None

    def add(question: str, answer: str, evidence: list[dict[str, Any]]) -> None:
        ev = [e for e in evidence if e]
        for e in ev:
            e.setdefault("query", queries.get(e.get("evidence", ""), ""))
        whys.append({"n": len(whys) + 1, "question": question, "answer": answer,
                     "evidence": ev, "status": "fact" if ev else "hypothesis"})

    sym = [_metric_ev(anomalies, alert_service, s) for s in ("error_rate", "latency_p99")]
    add(f"Why did the alert fire for {alert_service}?",
        f"{alert_service} started failing requests and slowing down." if any(sym)
        else f"No sustained change was measured on {alert_service}.", sym)
    path = call_path(calls, alert_service, culprit) if culprit else []
    # the operations whose executions changed (analysis.behaviour), cited from the spans read
    beh = [{"evidence": "spans", "service": culprit, "numbers": e["text"]}
           for e in (top or {}).get("evidence", []) if e.get("kind") == "behaviour"][:2]
    # the calls it is an end of that slowed on the wire (analysis.traces.link_table)
    wire = [{"evidence": "spans", "service": culprit, "numbers": e["text"]}
            for e in (top or {}).get("evidence", []) if e.get("kind") == "trace_link"][:2]
    if culprit and culprit != alert_service:
        ev = [_metric_ev(anomalies, culprit, s) for s in ("error_rate", "latency_p99", "traffic",
                                                          "cpu")]
        ev = [e for e in ev if e][:2] + _templates(templates, alert_service, culprit)
        if path and beh:
            text = (f"Its dependency {culprit} changed what it does when serving requests, on "
                    f"the call path {' -> '.join(path)}.")
        elif path and wire:
            text = (f"Calls to and from its dependency {culprit} slowed on the wire, on the "
                    f"call path {' -> '.join(path)}.")
        elif path:
            text = (f"Its dependency {culprit} failed first and the failure propagated along "
                    f"{' -> '.join(path)}.")
        elif beh:
            text = (f"{culprit} is not on {alert_service}'s call path in the traces read; "
                    "its own operations changed what they do when the alert fired.")
        elif wire:
            text = (f"{culprit} is not on {alert_service}'s call path in the traces read; "
                    "calls to and from it slowed on the wire when the alert fired.")
        else:
            link = next((e["text"] for e in (top or {}).get("evidence", [])
                         if e["kind"] == "dependency"), "")
            text = (f"{culprit} is not on {alert_service}'s call path but moved first"
                    + (f" ({link})" if link else "") + ".")
        add(f"Why did {alert_service} fail?", text, ev + beh[:1] + wire[:1])
    if culprit:
        tpl = _templates(templates, culprit, None)
        link = " ".join(e["text"] for e in (top or {}).get("evidence", [])
                        if e["kind"] == "dependency")
        order = ["db_pool_utilization", "cpu", "memory", "traffic"]
        if "traffic surge" in link:
            order = ["traffic", *order[:-1]]
        sat = [s for s in (_metric_ev(anomalies, culprit, x) for x in order) if s]
        failing = any(_metric_ev(anomalies, culprit, x) for x in ("error_rate", "latency_p99"))
        blame = [t for c in sorted(calls) if culprit in calls.get(c, [])
                 for t in _templates(templates, c, culprit)][:1]
        parts = []
        if beh:
            parts.append(f"{culprit}'s executions changed {beh[0]['numbers']}")
        if wire:
            parts.append(f"the {wire[0]['numbers']}")
        if tpl:
            parts.append(f"{culprit} logged a new or surging template: {tpl[0]['template']!r}")
        if sat:
            parts.append(f"{sat[0]['query']} went from {sat[0]['numbers']}")
        if blame:
            parts.append(f"its callers' new errors name it: {blame[0]['template']!r}")
        text = "; ".join(parts) if parts else f"No signal of {culprit} itself explains it"
        question = (f"Why did {culprit} fail?" if failing or culprit == alert_service
                    or path else f"What went wrong on {culprit}?")
        add(question, text + ".", beh + wire + tpl[:2] + sat[:1] + blame)
    if top and top.get("change_id"):
        ev = [{"evidence": "changes", "query": queries.get("changes", ""),
               "numbers": next((e["text"] for e in top["evidence"] if e["kind"] == "change"), "")}]
        add("Why did this start when it did?",
            f"{top['change_type']} {top['change_id']} ({top['change']}) on {culprit} landed "
            "shortly before the onset; no earlier signal moved.", ev)
        sat_now = [s for s in (_metric_ev(anomalies, culprit, x) for x in
                               ("db_pool_utilization", "cpu", "memory")) if s]
        add(f"Why did {top['change_id']} cause it?",
            (f"The change may alter how {culprit} uses what {sat_now[0]['query']} measures "
             "(it saturated in the incident window)" if sat_now else
             f"Telemetry does not show the mechanism on {culprit}")
            + "; confirm from the change diff and a load test.", [])
    elif culprit:
        add("Why did this start when it did?",
            f"No change on {culprit} was recorded near the onset; look for unrecorded "
            "changes, load or a dependency outside the topology.", [])
    fillers = [("Why was it not caught before production?",
                "Pre-production checks may not exercise this failure mode; to be confirmed by "
                "the team in the postmortem."),
               ("Why did it take this long to detect and mitigate?",
                "Alerting may watch symptoms only (the alert fired after the onset shown in "
                "the timeline); to be confirmed by the team in the postmortem."),
               ("Why did no safeguard (canary, load shedding, circuit breaker) contain it?",
                "Not known from telemetry; to be answered by the team in the postmortem."),
               ("Why was there no earlier warning?",
                "No leading signal was found in the measured window; to be confirmed by the "
                "team in the postmortem.")]
    for question, answer in fillers:
        if len(whys) < 5:
            add(question, answer, [])
    return whys[:5]


def _templates(templates: pd.DataFrame, svc: str, mentions: str | None) -> list[dict[str, Any]]:
    if templates.empty:
        return []
    t = templates[templates["service"] == svc]
    if mentions:
        t = t[t["template"].str.contains(mentions, case=False, regex=False)]
    out = []
    for r in t.head(3).itertuples():
        out.append({"evidence": "log_templates", "template": r.template,
                    "query": f"template {r.template_id} on {svc}",
                    "numbers": f"{r.baseline_count} lines in baseline -> {r.incident_count} "
                               f"in the incident window ({r.status})"})
    return out


def rollback_or_fix(
    severity: str,
    top_suspect: dict[str, Any] | None,
    onset: pd.Timestamp,
    fix_minutes: float | None = None,
    *,
    recent: pd.Timedelta = pd.Timedelta("30min"),
) -> dict[str, Any]:
    """The playbook's rollback-or-fix tree: P1 or a recent change -> roll back; cause known and
    fix < 15 min -> fix forward; fix > 30 min -> roll back; no change on the suspect ->
    mitigate; no recent change and cause not known -> investigate more (never a rollback of a
    change nobody has seen)."""
    change_recent = False
    if top_suspect and top_suspect.get("change_time") and top_suspect.get("change_type") in (
            "deploy", "config", "feature_flag", "flag"):
        lead = onset - pd.Timestamp(top_suspect["change_time"])
        change_recent = pd.Timedelta(0) <= lead <= recent
    cause_known = bool(top_suspect and top_suspect["score"] >= 0.6)
    target = (f"{top_suspect['change_id']} on {top_suspect['service']}"
              if top_suspect and top_suspect.get("change_id") else "the last change")
    no_change = bool(top_suspect and not top_suspect.get("change_id")
                     and top_suspect["score"] >= 0.5)
    if no_change and not (cause_known and fix_minutes is not None and fix_minutes < 15):
        svc = top_suspect["service"] if top_suspect else ""
        return {"decision": "mitigate", "rule": "no change on the suspect -> mitigate, nothing "
                "to roll back", "target": svc,
                "why": f"no deploy, config or flag change on {svc} near the onset: scale, fail "
                       "over, shed load or free the exhausted resource"}
    if severity == "P1":
        return {"decision": "roll back", "rule": "critical impact -> roll back",
                "target": target, "why": "P1 impact: restore service first, fix later"}
    if change_recent:
        return {"decision": "roll back", "rule": "change shortly before onset -> roll back",
                "target": target,
                "why": f"{target} landed within {recent.total_seconds() / 60:.0f} min before "
                       "onset"}
    if cause_known and fix_minutes is not None and fix_minutes < 15:
        return {"decision": "fix forward", "rule": "cause known and fix < 15 min -> fix forward",
                "target": top_suspect["service"] if top_suspect else "", "why": "quick fix"}
    if fix_minutes is not None and fix_minutes > 30:
        return {"decision": "roll back", "rule": "fix > 30 min -> roll back", "target": target,
                "why": f"estimated fix {fix_minutes:.0f} min"}
    if not cause_known:
        svc = top_suspect["service"] if top_suspect else ""
        return {"decision": "investigate", "rule": "not critical, no recent change, cause not "
                "known -> investigate more", "target": svc,
                "why": "no deploy, config or flag change shortly before the onset and no "
                       "suspect clear enough to act on: find the cause before rolling anything "
                       "back (estimate the fix time once it is known)"}
    return {"decision": "roll back", "rule": "no quick fix known -> roll back (default)",
            "target": target, "why": "fix time unknown (TODO: responder to estimate)"}
