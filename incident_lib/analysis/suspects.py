"""Ranked suspects: metric anomalies + log templates + dependency direction + recent changes."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["rank_suspects", "WEIGHTS", "anomalous_services", "downstream"]

WEIGHTS = {"metrics": 0.30, "logs": 0.20, "dependency": 0.25, "change": 0.25}
CHANGE_TYPE_WEIGHT = {"deploy": 1.0, "config": 0.9, "feature_flag": 0.9, "flag": 0.9,
                      "infra": 0.8, "rollback": 0.2}
ANOMALY_MIN = 0.5


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


def rank_suspects(
    anomalies: pd.DataFrame,
    templates: pd.DataFrame,
    changes: pd.DataFrame,
    calls: dict[str, list[str]],
    onset: pd.Timestamp,
    *,
    change_window: pd.Timedelta = pd.Timedelta("30min"),
    change_grace: pd.Timedelta = pd.Timedelta("2min"),
) -> list[dict[str, Any]]:
    """Suspects (service + change) sorted by score, each with evidence and a score breakdown."""
    bad = anomalous_services(anomalies)
    services = set(calls) | set(anomalies.get("service", pd.Series(dtype=str)).astype(str))
    services |= set(changes.get("service", pd.Series(dtype=str)).dropna().astype(str))
    out = []
    for svc in sorted(services):
        ev: list[dict[str, Any]] = []
        a = anomalies[anomalies["service"] == svc] if not anomalies.empty else anomalies
        m_score = float(a["score"].max()) if len(a) else 0.0
        for r in a[a["score"] >= ANOMALY_MIN].head(3).itertuples():
            ev.append({"kind": "metric", "evidence": f"signal_{r.signal}",
                       "text": f"{r.signal} {_fmt(r.baseline, r.unit)} -> "
                               f"{_fmt(r.incident, r.unit)} (robust z {r.z:.1f})"
                               + (f", onset {pd.Timestamp(r.onset):%H:%M:%S}" if r.onset is not None
                                  and not pd.isna(r.onset) else "")})
        t = templates[templates["service"] == svc] if not templates.empty else templates
        l_score = float(t["weight"].max()) if len(t) else 0.0
        for r in t.head(3).itertuples():
            ev.append({"kind": "log", "evidence": "log_templates",
                       "text": f"{r.status} {r.level} log template {r.template!r} "
                               f"({r.baseline_count} -> {r.incident_count} lines, "
                               f"id {r.template_id})",
                       "template": r.template})
        below = downstream(calls, svc)
        bad_below = sorted(below & bad)
        if svc in bad and not bad_below:
            d_score = 1.0
            ev.append({"kind": "dependency", "evidence": "topology",
                       "text": "anomalous, and nothing it depends on is anomalous"
                               + (f" (depends on {', '.join(sorted(below))})" if below else "")})
        elif svc in bad:
            d_score = 0.2
            ev.append({"kind": "dependency", "evidence": "topology",
                       "text": f"its dependencies {', '.join(bad_below)} are anomalous too: "
                               "likely a victim"})
        else:
            d_score = 0.0
        best, c_score = None, 0.0
        if not changes.empty:
            mine = changes[(changes["service"] == svc)
                           & (changes["time"] >= onset - change_window)
                           & (changes["time"] <= onset + change_grace)]
            for r in mine.itertuples():
                lead = max((onset - r.time).total_seconds() / 60.0, 0.0)
                sc = CHANGE_TYPE_WEIGHT.get(str(r.type), 0.7) * math.exp(-lead / 10.0)
                if sc > c_score:
                    best, c_score = r, sc
        if best is not None:
            ev.append({"kind": "change", "evidence": "changes",
                       "text": f"{best.type} {best.id} at {best.time:%H:%M:%S}, "
                               f"{(onset - best.time).total_seconds() / 60:.1f} min before onset: "
                               f"{best.description}"})
        parts = {"metrics": m_score, "logs": l_score, "dependency": d_score, "change": c_score}
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
    out.sort(key=lambda s: (-s["score"], s["service"]))
    for i, s in enumerate(out, 1):
        s["rank"] = i
    return out


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
