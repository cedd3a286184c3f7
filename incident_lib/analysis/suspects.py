"""Ranked suspects: metric anomalies + log templates + dependency direction + recent changes.

Causal direction decides who is a victim. Failures travel up the call graph (a caller fails
when its callee fails), load travels down (a callee is overloaded when its caller's traffic
surges), and CPU starvation travels sideways (a service slows when a neighbour on its host
burns CPU). A service whose anomalies one of these explains is a *victim*: its metric and
change evidence count half and its position score is low. Error templates that name a callee
("payments returned 503") point at the callee, not at the service that logged them.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

__all__ = ["rank_suspects", "WEIGHTS", "anomalous_services", "downstream", "upstream",
           "explain"]

WEIGHTS = {"metrics": 0.30, "logs": 0.20, "dependency": 0.25, "change": 0.25}
CHANGE_TYPE_WEIGHT = {"deploy": 1.0, "config": 0.9, "feature_flag": 0.9, "flag": 0.9,
                      "infra": 0.8, "rollback": 0.2}
ANOMALY_MIN = 0.5
FAULT_SIGNALS = ("error_rate", "latency_p99", "cpu", "memory", "db_pool_utilization")
TOLERANCE = pd.Timedelta("2min")  # onsets this close count as simultaneous
VICTIM = 0.5  # factor on the metric and change evidence of a victim


def anomalous_services(anomalies: pd.DataFrame, min_score: float = ANOMALY_MIN) -> set[str]:
    """Services with at least one anomaly scoring >= min_score."""
    if anomalies.empty:
        return set()
    return set(anomalies.loc[anomalies["score"] >= min_score, "service"].astype(str))


def downstream(calls: dict[str, list[str]], service: str) -> set[str]:
    """Every service `service` calls, directly or transitively."""
    seen: set[str] = set()
    stack = list(calls.get(service, []))
    while stack:
        s = stack.pop()
        if s not in seen:
            seen.add(s)
            stack.extend(calls.get(s, []))
    return seen


def upstream(calls: dict[str, list[str]], service: str) -> set[str]:
    """Every service that calls `service`, directly or transitively."""
    callers: dict[str, list[str]] = {}
    for src, dsts in calls.items():
        for d in dsts:
            callers.setdefault(d, []).append(src)
    return downstream(callers, service)


def _onset(rows: pd.DataFrame) -> pd.Timestamp | None:
    """Earliest onset among anomaly rows (None when none has one)."""
    if rows.empty or "onset" not in rows:
        return None
    t = pd.to_datetime(rows["onset"], utc=True).dropna()
    return t.min() if len(t) else None


def _early(a: pd.Timestamp | None, b: pd.Timestamp | None) -> bool:
    """a started no later than b (+ tolerance); unknown times do not block."""
    return a is None or b is None or a <= b + TOLERANCE


def _named(templates: pd.DataFrame, svc: str, others: set[str]) -> set[str]:
    """Other services named in svc's new or surging error/warn templates."""
    if templates.empty or not others:
        return set()
    t = templates[(templates["service"] == svc) & (templates["weight"] >= 0.5)]
    out: set[str] = set()
    for text in t["template"].astype(str):
        out |= _names_in(text, others)
    return out


def _names_in(text: str, names: set[str]) -> set[str]:
    """Which of names occur in text as whole words."""
    return {n for n in names if re.search(rf"\b{re.escape(n)}\b", text)}


def explain(
    anomalies: pd.DataFrame,
    templates: pd.DataFrame,
    calls: dict[str, list[str]],
    colocated: dict[str, list[str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per anomalous service: onset, and what explains it (callee failure, load, neighbour)."""
    a = anomalies[anomalies["score"] >= ANOMALY_MIN] if not anomalies.empty else anomalies
    bad = sorted(anomalous_services(anomalies))
    info: dict[str, dict[str, Any]] = {}
    for svc in bad:
        mine = a[a["service"] == svc]
        fault = mine[mine["signal"].isin(FAULT_SIGNALS)]
        tr = mine[mine["signal"] == "traffic"]
        up = tr[tr["incident"] > tr["baseline"]]
        down = tr[tr["incident"] < tr["baseline"]]
        cpu = mine[(mine["signal"] == "cpu") & (mine["incident"] > mine["baseline"])]
        info[svc] = {"onset": _onset(mine), "fault": not fault.empty,
                     "fault_onset": _onset(fault), "up": not up.empty, "up_onset": _onset(up),
                     "down": not down.empty, "cpu_up": not cpu.empty, "cpu_onset": _onset(cpu),
                     "by": [], "kind": ""}
    # load: a traffic surge with no surging caller is an origin; surging callees are victims
    origins = {s for s, i in info.items() if i["up"]
               and not any(info.get(c, {}).get("up") for c in upstream(calls, s))}
    load_victims = set()
    for s, i in info.items():
        src = [o for o in origins if o != s and s in downstream(calls, o)
               and _early(info[o]["up_onset"], i["onset"])]
        if not src and i["down"] and not i["fault"]:  # fewer calls because a caller dropped
            src = [c for c in upstream(calls, s) if info.get(c, {}).get("down")]
        if src:
            load_victims.add(s)
            i["by"], i["kind"] = sorted(src), "load"
    for s, i in info.items():
        if s in load_victims or s in origins:
            continue
        below = downstream(calls, s)
        failing = []
        for c in sorted(below & set(info)):
            ci = info[c]
            if c in load_victims and any(o in origins for o in info[c]["by"]):
                continue
            callee_down = ci["down"] and not any(info.get(x, {}).get("down")
                                                 for x in upstream(calls, c))
            if (ci["fault"] or callee_down) and _early(ci["onset"], i["onset"]):
                failing.append(c)
        named = _named(templates, s, below)
        if failing or named:
            i["by"], i["kind"] = sorted(set(failing) | named), "callee"
            continue
        if i["fault"] and not i["cpu_up"]:
            connected = below | upstream(calls, s) | {s}
            hosts = colocated or {}
            mates = {m for ms in hosts.values() if s in ms for m in ms} - {s}
            nb = [n for n, ni in info.items() if n not in connected and ni["cpu_up"]
                  and ni["cpu_onset"] is not None and i["onset"] is not None
                  and ni["cpu_onset"] <= i["onset"] - pd.Timedelta("30s")
                  and (not hosts or n in mates)]
            if nb:
                i["by"], i["kind"] = sorted(nb), "neighbour" if hosts else "neighbour?"
    for o in origins:
        info[o]["kind"] = "origin"
    return info


def rank_suspects(
    anomalies: pd.DataFrame,
    templates: pd.DataFrame,
    changes: pd.DataFrame,
    calls: dict[str, list[str]],
    onset: pd.Timestamp,
    *,
    change_window: pd.Timedelta = pd.Timedelta("30min"),
    change_grace: pd.Timedelta = pd.Timedelta("2min"),
    colocated: dict[str, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """Suspects (service + change) sorted by score, each with evidence and a score breakdown.

    Components (each in [0, 1], weighted by WEIGHTS): metrics = best anomaly score; logs = new
    or surging templates of the service that do not blame a callee, or being named by a
    caller's error templates; dependency = 1 for an unexplained anomalous service (a load
    origin included), 0.2 for a victim; change = type weight x exp(-lead / 10 min), lead
    measured to the service's own first anomaly when that came before the incident onset.
    colocated maps host -> services on it (topology `hosts:`); without it a service that is
    slow while its own CPU is flat and an unconnected service's CPU rose first is marked a
    possible victim of that neighbour, and the evidence says it is a hypothesis.
    Each suspect also carries `margin`, its lead over the next suspect's score.
    """
    info = explain(anomalies, templates, calls, colocated)
    services = set(calls) | set(anomalies.get("service", pd.Series(dtype=str)).astype(str))
    services |= set(changes.get("service", pd.Series(dtype=str)).dropna().astype(str))
    roots = [s for s, i in info.items() if not i["by"]]
    first = min((info[s]["onset"] for s in roots if info[s]["onset"] is not None), default=None)
    out = []
    for svc in sorted(services):
        ev: list[dict[str, Any]] = []
        i = info.get(svc)
        victim = bool(i and i["by"])
        factor = VICTIM if victim else 1.0
        a = anomalies[anomalies["service"] == svc] if not anomalies.empty else anomalies
        m_score = float(a["score"].max()) if len(a) else 0.0
        for r in a[a["score"] >= ANOMALY_MIN].head(3).itertuples():
            ev.append({"kind": "metric", "evidence": f"signal_{r.signal}",
                       "text": f"{r.signal} {_fmt(r.baseline, r.unit)} -> "
                               f"{_fmt(r.incident, r.unit)} (robust z {r.z:.1f})"
                               + (f", onset {pd.Timestamp(r.onset):%H:%M:%S}" if r.onset is not None
                                  and not pd.isna(r.onset) else "")})
        l_score = _log_evidence(templates, svc, calls, info, ev)
        d_score = _dependency(svc, i, first, calls, ev)
        best, c_score = None, 0.0
        if not changes.empty:
            ref = onset
            if i and i["onset"] is not None and i["onset"] < onset:
                ref = max(i["onset"], onset - change_window)
            mine = changes[(changes["service"] == svc)
                           & (changes["time"] >= ref - change_window)
                           & (changes["time"] <= onset + change_grace)]
            for r in mine.itertuples():
                lead = max((ref - r.time).total_seconds() / 60.0, 0.0)
                sc = CHANGE_TYPE_WEIGHT.get(str(r.type), 0.7) * math.exp(-lead / 10.0)
                if sc > c_score:
                    best, c_score = r, sc
        if best is not None:
            ev.append({"kind": "change", "evidence": "changes",
                       "text": f"{best.type} {best.id} at {best.time:%H:%M:%S}, "
                               f"{(onset - best.time).total_seconds() / 60:.1f} min before onset: "
                               f"{best.description}"
                               + (" (on a service that looks like a victim)" if victim else "")})
        parts = {"metrics": factor * m_score, "logs": l_score, "dependency": d_score,
                 "change": factor * c_score}
        score = sum(WEIGHTS[k] * v for k, v in parts.items())
        if score <= 0:
            continue
        out.append({
            "service": svc,
            "change_id": None if best is None else str(best.id),
            "change": None if best is None else str(best.description),
            "change_time": None if best is None else best.time.isoformat(),
            "change_type": None if best is None else str(best.type),
            "score": round(score, 4),
            "breakdown": {k: round(WEIGHTS[k] * v, 4) for k, v in parts.items()},
            "evidence": ev,
        })
    out.sort(key=lambda s: (-s["score"], s["service"]))  # name orders within a tie only
    for k, s in enumerate(out, 1):
        # equal scores share a rank (1, 1, 3): a tie is reported, never broken by name
        s["rank"] = k if k == 1 or out[k - 2]["score"] != s["score"] else out[k - 2]["rank"]
        tied = sum(o["score"] == s["score"] for o in out) > 1
        nxt = next((o["score"] for o in out[k:] if o["score"] != s["score"]), 0.0)
        s["margin"] = 0.0 if tied else round(s["score"] - nxt, 4)
    return out


def _log_evidence(templates: pd.DataFrame, svc: str, calls: dict[str, list[str]],
                  info: dict[str, dict[str, Any]], ev: list[dict[str, Any]]) -> float:
    """Log score of svc (own templates not blaming a callee, or named by callers) + evidence."""
    if templates.empty:
        return 0.0
    below = downstream(calls, svc)
    t = templates[templates["service"] == svc]
    own = 0.0
    for r in t.itertuples():
        if float(r.weight) < 0.5 or not _names_in(str(r.template), below):
            own = max(own, float(r.weight))
    for r in t.head(3).itertuples():
        ev.append({"kind": "log", "evidence": "log_templates",
                   "text": f"{r.status} {r.level} log template {r.template!r} "
                           f"({r.baseline_count} -> {r.incident_count} lines, "
                           f"id {r.template_id})",
                   "template": r.template})
    blamers = sorted(c for c in upstream(calls, svc) if svc in _named(templates, c, {svc}))
    if blamers:
        ev.append({"kind": "log", "evidence": "log_templates",
                   "text": f"named in new or surging error logs of {', '.join(blamers)}"})
        own = max(own, 1.0)
    return own


def _dependency(svc: str, i: dict[str, Any] | None, first: pd.Timestamp | None,
                calls: dict[str, list[str]], ev: list[dict[str, Any]]) -> float:
    """Position score from causal direction and onset order, with its evidence text."""
    if i is None:
        return 0.0
    when = f" (first anomaly {i['onset']:%H:%M:%S})" if i["onset"] is not None else ""
    if i["by"]:
        why = {"load": "traffic change arriving from its caller(s)",
               "callee": "failures of its dependencies",
               "neighbour": "CPU burnt by a service on the same host",
               "neighbour?": "CPU burnt by another service that moved first (hypothesis: "
                             "shared host)"}[i["kind"]]
        ev.append({"kind": "dependency", "evidence": "topology",
                   "text": f"likely a victim of {why}: {', '.join(i['by'])}{when}"})
        return 0.2
    below = downstream(calls, svc)
    if i["kind"] == "origin":
        text = "traffic surge starts here (no caller surges)"
    else:
        text = "anomalous, and nothing it depends on explains it" + (
            f" (depends on {', '.join(sorted(below))})" if below else "")
    lag = 0.0
    if first is not None and i["onset"] is not None:
        lag = max((i["onset"] - first).total_seconds() / 60.0, 0.0)
    ev.append({"kind": "dependency", "evidence": "topology", "text": text + when
               + (f", {lag:.1f} min after the first unexplained anomaly" if lag > 0 else "")})
    return 0.7 + 0.3 * math.exp(-lag / 3.0)


def _fmt(value: float, unit: str) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    if unit == "ratio":
        return f"{value * 100:.2f}%"
    if unit == "seconds":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "bytes":
        return f"{value / 1e6:.0f} MB"
    return f"{value:.3g} {unit}"
