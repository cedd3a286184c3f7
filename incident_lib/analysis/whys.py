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
            "numbers": f"{_fmt(r['baseline'], r['unit'])} in baseline -> "
                       f"{_fmt(r['incident'], r['unit'])} in the incident window{when}"}


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
    if culprit and culprit != alert_service:
        ev = [_metric_ev(anomalies, culprit, "error_rate"), _metric_ev(anomalies, culprit,
                                                                         "latency_p99")]
        caller_tpl = _templates(templates, alert_service, culprit)
        ev += caller_tpl
        via = " -> ".join(path) if path else f"{alert_service} ... {culprit}"
        add(f"Why did {alert_service} fail?",
            f"Its dependency {culprit} failed first and the failure propagated along {via}.", ev)
    if culprit:
        tpl = _templates(templates, culprit, None)
        sat = [_metric_ev(anomalies, culprit, s) for s in ("db_pool_utilization", "cpu", "memory")]
        sat = [s for s in sat if s]
        text = f"{culprit} logged new or surging errors"
        if tpl:
            text += f": {tpl[0]['template']!r}"
        if sat:
            text += f"; saturation: {sat[0]['query']} {sat[0]['numbers']}"
        add(f"Why did {culprit} fail?", text + ".", tpl[:2] + sat[:1])
    if top and top.get("change_id"):
        ev = [{"evidence": "changes", "query": queries.get("changes", ""),
               "numbers": next((e["text"] for e in top["evidence"] if e["kind"] == "change"), "")}]
        add("Why did this start when it did?",
            f"{top['change_type']} {top['change_id']} ({top['change']}) on {culprit} landed "
            "shortly before the onset; no earlier signal moved.", ev)
        add(f"Why did {top['change_id']} cause it?",
            "The change may alter how the service uses the exhausted resource (for example, "
            "holding connections longer); confirm from the change diff and a load test.",
            [])
    elif culprit:
        add("Why did this start when it did?",
            f"No change on {culprit} was recorded near the onset; look for unrecorded "
            "changes, load or a dependency outside the topology.", [])
    while len(whys) < 5:
        add("Why was it not caught before production?",
            "Pre-production checks may not exercise this failure mode; to be confirmed by "
            "the team in the postmortem.", [])
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
    """Decision tree: critical or a change shortly before onset -> roll back; quick fix -> fix."""
    change_recent = False
    if top_suspect and top_suspect.get("change_time") and top_suspect.get("change_type") in (
            "deploy", "config", "feature_flag", "flag"):
        lead = onset - pd.Timestamp(top_suspect["change_time"])
        change_recent = pd.Timedelta(0) <= lead <= recent
    cause_known = bool(top_suspect and top_suspect["score"] >= 0.6)
    target = (f"{top_suspect['change_id']} on {top_suspect['service']}"
              if top_suspect and top_suspect.get("change_id") else "the last change")
    if severity == "P1":
        return {"decision": "roll back", "rule": "critical impact -> roll back",
                "target": target, "why": "P1 impact: restore service first, fix later"}
    if change_recent:
        return {"decision": "roll back", "rule": "change shortly before onset -> roll back",
                "target": target, "why": f"{target} landed within {recent} before onset"}
    if cause_known and fix_minutes is not None and fix_minutes < 15:
        return {"decision": "fix forward", "rule": "cause known and fix < 15 min -> fix forward",
                "target": top_suspect["service"] if top_suspect else "", "why": "quick fix"}
    if fix_minutes is not None and fix_minutes > 30:
        return {"decision": "roll back", "rule": "fix > 30 min -> roll back", "target": target,
                "why": f"estimated fix {fix_minutes:.0f} min"}
    return {"decision": "roll back", "rule": "no quick fix known -> roll back (default)",
            "target": target, "why": "fix time unknown (TODO: responder to estimate)"}
