"""Stage 1, triage: golden signals, onset, blast radius, severity, first status update.

Just over 400 lines: one function per cell of 01_triage.ipynb plus the one-call `run`; the
notebook reads top to bottom like this module, so they stay together.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..analysis.onset import find_excursion, range_check
from ..analysis.outcome import strongest_deviation
from ..analysis.severity import assess_severity
from ..core.config import DEFAULT_SEVERITY_POLICY
from ..core.errors import InputError, SourceError
from ..core.findings import TriageFindings
from ..core.model import iso
from ..core.safe import md_inline, md_table
from ..core.signals import signals
from ..report.display import Figure, Section
from ..report.plots import plot_golden_signals
from ..report.render import fmt_duration, fmt_pct, fmt_time, render_template
from ..runs.folder import Run
from ..sources.base import choose_step
from .common import alert_lead, entrypoints_of, outcome_of, signal_frames
from .state import current_state

__all__ = ["summarize", "golden_signals", "log_volume", "detect_onset", "measure_impact",
           "assess", "plot", "recent_changes", "status_update", "collect", "save", "run"]

IMPACT_SIGNALS = ["error_rate", "latency_p99"]  # the default preset's impact signals
IMPACT_ROLES = ("error_rate", "latency")


def _by_role(run: Run, frames: dict[str, pd.DataFrame], role: str) -> tuple[str | None,
                                                                         pd.DataFrame]:
    """The first declared signal with this role that has data (None: the data lacks one)."""
    for name, d in run.signals.items():
        if d.role == role and name in frames and not frames[name].empty:
            return name, frames[name]
    return None, pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]"),
                               "service": pd.Series([], dtype=object),
                               "value": pd.Series([], dtype=float)})


def golden_signals(run: Run) -> Section:
    """Query every named signal over the window (recorded as evidence) and summarise peaks."""
    frames = signal_frames(run, "triage")
    rows = []
    for name, df in frames.items():
        if df.empty:
            rows.append({"signal": name, "service": "(no data)", "min": np.nan, "median": np.nan,
                         "max": np.nan})
            continue
        for svc, g in df.groupby("service"):
            v = g["value"].astype(float)
            rows.append({"signal": name, "service": svc, "min": v.min(), "median": v.median(),
                         "max": v.max()})
    table = pd.DataFrame(rows)
    no_data = [n for n, df in frames.items() if df.empty]
    index = run.evidence_index()
    missing = [n for n in frames
               if (index.get(f"signal_{n}", {}).get("notes") or {}).get("missing")]
    roles = {d.role for n, d in run.signals.items() if n in frames and not frames[n].empty}
    missing += [f"{r} (no signal)" for r in IMPACT_ROLES if r not in roles]
    health = run.evidence_health()
    md = ""
    if health["summary"]:  # first thing on screen: what these numbers cannot be trusted for
        md += f"**Evidence health:** {md_inline(health['summary'])}\n\n"
    md += md_table(table, max_rows=40)
    if no_data:
        md += f"\nNo data for: {', '.join(md_inline(n) for n in no_data)}.\n"
    if missing:
        md += f"\nMissing (not in the data, not shown as 0): " \
              f"{', '.join(md_inline(n) for n in missing)}.\n"
    return Section("Golden signals", md, {"frames": frames, "no_data": no_data,
                                          "missing": missing, "defs": run.signals,
                                          "nonfinite_series": health["nonfinite_series"]})


def log_volume(run: Run) -> Section:
    """Log lines per minute by service and level (pushed down to the log backend)."""
    inc = run.incident
    try:
        res = run.logs.count_over_time(inc.start_ts, inc.end_ts, "1min", ["service", "level"])
    except SourceError as exc:  # the log backend is down: triage goes on without it
        msg = " ".join(str(exc).split())[:300]
        return Section("Log volume by level", f"**Missing evidence:** {md_inline(msg)}",
                       {"frame": pd.DataFrame(), "error": msg})
    df = run.record("log_volume", res, "triage")
    if df.empty:
        return Section("Log volume by level", "No log lines in the window (no data).",
                       {"frame": df})
    df["time"] = pd.to_datetime(df["time"], utc=True)
    per_min = df.pivot_table(index="time", columns=["service", "level"], values="count",
                             aggfunc="sum").fillna(0)
    rows = []
    for (svc, lvl), col in per_min.items():
        if str(lvl).lower() not in ("error", "warn", "warning", "fatal", "critical"):
            continue
        rows.append({"service": svc, "level": lvl, "median per min": float(col.median()),
                     "max per min": float(col.max()),
                     "peak at": col.idxmax().strftime("%H:%M")})
    table = pd.DataFrame(rows)
    if len(table):
        table = table.sort_values("max per min", ascending=False)
    md = md_table(table, max_rows=10)
    if res.partial:
        md += "\n**Partial results:** the log backend did not answer fully.\n"
    return Section("Log volume by level (errors and warnings)", md, {"frame": df})


ALERT_SLACK = pd.Timedelta("2min")  # scrape and evaluation lag between a series and its alert


def _ended_before(recovered: pd.Series, alert: pd.Timestamp | None) -> pd.Series:
    """Excursions that recovered more than ALERT_SLACK before the alert fired: an alert fires
    while its condition holds, so such an excursion is an earlier episode (the previous fault,
    a blip) and must not date this incident's onset."""
    if alert is None:
        return pd.Series(False, index=recovered.index)
    rec = pd.to_datetime(recovered, utc=True)
    return (rec.notna() & (rec < alert - ALERT_SLACK)).astype(bool)


def detect_onset(run: Run, sig: Section) -> Section:
    """Onset of the incident (earliest impact excursion) and which series moved first."""
    frames: dict[str, pd.DataFrame] = sig.data["frames"]
    defs = run.signals
    ref = run.incident.alert_ts
    if ref is None:  # opened by hand: anchor on the incident service's largest excursion
        name, df = _by_role(run, frames, "error_rate")
        if name is None:
            name, df = _by_role(run, frames, "latency")
        own = df[df["service"] == run.incident.service] if not df.empty else df
        exc = find_excursion(own.set_index("time")["value"], unit=defs[name].unit,
                             direction=defs[name].direction) if len(own) and name else None
        ref = exc.peak_time if exc else run.incident.end_ts
    movers = []
    for name, df in frames.items():
        if df.empty:
            continue
        d = defs[name]
        for svc, g in df.groupby("service"):
            exc = find_excursion(g.set_index("time")["value"].astype(float), unit=d.unit,
                                 direction=d.direction, ref_time=ref)
            if exc is None:
                continue
            movers.append({"series": f"{name}{{service={svc}}}", "signal": name,
                           "service": str(svc), "onset": exc.onset, "baseline": exc.baseline,
                           "peak": exc.peak, "recovered": exc.recovered,
                           "impact": d.role in IMPACT_ROLES})
    mv = pd.DataFrame(movers)
    if mv.empty:
        md = "No sustained excursion found in any signal: **no onset detected** (no data or no "\
             "change). Check the window and the backends."
        return Section("Onset", md, {"time": None, "movers": mv, "affected": []})
    mv = mv.sort_values("onset").reset_index(drop=True)
    mv["before_alert"] = _ended_before(mv["recovered"], run.incident.alert_ts)
    live = mv[~mv["before_alert"]]
    imp = live[live["impact"]]
    onset = imp["onset"].min() if len(imp) else (live["onset"].min() if len(live) else None)
    affected = sorted(imp["service"].unique().tolist()) if len(imp) else []
    if onset is None:
        md = ("Every excursion found had recovered before the alert fired: **no onset of this "
              "incident detected** (they are listed as earlier episodes).\n\n"
              + md_table(mv.drop(columns=["impact"]), max_rows=15, code_columns=["series"]))
        return Section("Onset", md, {"time": None, "movers": live, "affected": [],
                                     "ref_time": ref})
    first = live.iloc[0]
    md = (f"**Onset: {fmt_time(onset)}** (earliest sustained excursion of an impact signal)."
          f" First series to move: `{md_inline(first['series'])}` at {fmt_time(first['onset'])}."
          f"\n\n" + md_table(live.drop(columns=["impact", "before_alert"]), max_rows=15,
                             code_columns=["series"]))
    earlier = mv[mv["before_alert"]]
    if len(earlier):
        md += (f"\n\n{len(earlier)} excursion(s) recovered more than "
               f"{int(ALERT_SLACK.total_seconds() // 60)} minutes before the alert fired: an "
               "earlier episode, not this incident's onset: "
               + ", ".join(f"`{md_inline(r['series'])}` ({fmt_time(r['onset'])} to "
                           f"{fmt_time(r['recovered'])})" for _, r in earlier.head(5).iterrows()))
    mv = live.drop(columns=["before_alert"])
    return Section("Onset", md, {"time": onset, "movers": mv, "affected": affected,
                                 "ref_time": ref})


def _window_sum(df: pd.DataFrame, services: list[str], t0, t1) -> pd.DataFrame:
    d = df[df["service"].isin(services) & (df["time"] >= t0) & (df["time"] <= t1)]
    return d.pivot_table(index="time", columns="service", values="value")


def measure_impact(run: Run, sig: Section, onset: Section) -> Section:
    """Blast radius: affected services, share of customer-facing requests failing, duration."""
    frames = sig.data["frames"]
    t_on = onset.data["time"]
    inc = run.incident
    as_of = min(pd.Timestamp(datetime.now(UTC)), inc.end_ts)
    if t_on is None:
        return Section("Impact and blast radius",
                       "No sustained excursion near the alert, so **no measurable impact** "
                       "(no data, or the signals do not show it).",
                       {"onset": None, "recovered": None, "as_of": iso(as_of),
                        "status": "unknown", "duration_s": None,
                        "entrypoints": entrypoints_of(run), "affected_services": [],
                        "customer_error_share": (
                            None if _by_role(run, frames, "error_rate")[0] is None else 0.0),
                        "failed_requests": 0,
                        "total_requests": 0, "customer_latency_ratio": 1.0,
                        "per_service": [], "users_affected": None})
    mv = onset.data["movers"]
    imp = mv[mv["impact"]]
    # an onset dated from non-impact movers alone (every impact excursion an earlier
    # episode): their recovery is the only one measured
    recs = (imp if len(imp) else mv)["recovered"].tolist()
    recovered = (None if not recs or any(r is None or pd.isna(r) for r in recs)
                 else max(recs))
    t_end = recovered if recovered is not None else as_of
    eps = entrypoints_of(run)
    err_name, err_df = _by_role(run, frames, "error_rate")
    _, inc_df = _by_role(run, frames, "traffic")
    tra = _window_sum(inc_df, eps, t_on, t_end)
    step = _step(inc_df)
    total: float | None = float(tra.sum().sum() * step) if tra.size else None
    share: float | None = None  # no error signal: no error share (never a made-up 0 %)
    failed: float | None = None
    if err_name is not None:
        err = _window_sum(err_df, eps, t_on, t_end)
        err, tra = err.align(tra, join="inner")
        share = float((err * tra).sum().sum() / tra.sum().sum()) if tra.size else 0.0
        failed = float((err * tra).sum().sum() * step)
    _, lat = _by_role(run, frames, "latency")
    ratios = []
    for ep in eps:
        g = lat[lat["service"] == ep].set_index("time")["value"]
        base = g[g.index < t_on - pd.Timedelta("5min")].median()
        cur = g[(g.index >= t_on) & (g.index <= t_end)].median()
        if base and not pd.isna(base) and not pd.isna(cur):
            ratios.append(cur / base)
    caveats = []
    bad = list(sig.data.get("nonfinite_series") or [])
    if bad:
        caveats.append(f"computed with gaps: NaN/Inf samples in {len(bad)} series ({bad[0]})")
    per = []
    for svc in onset.data["affected"]:
        row = {"service": svc}
        for name in [n for n, d in run.signals.items() if d.role in IMPACT_ROLES]:
            m = imp[(imp["service"] == svc) & (imp["signal"] == name)]
            row[f"{name} baseline"] = float(m["baseline"].iat[0]) if len(m) else np.nan
            row[f"{name} peak"] = float(m["peak"].iat[0]) if len(m) else np.nan
        per.append(row)
    ranges = customer_ranges(run, frames, eps, t_on)
    status = "resolved" if inc.resolved_at else ("mitigated" if recovered is not None
                                                  else "ongoing")
    duration = ((recovered or as_of) - t_on).total_seconds()
    data = {
        "onset": iso(t_on), "recovered": iso(recovered), "as_of": iso(as_of),
        "status": status, "duration_s": duration,
        "entrypoints": eps, "affected_services": onset.data["affected"],
        "customer_error_share": share,
        "failed_requests": round(failed) if failed is not None else None,
        "total_requests": round(total) if total is not None else None,
        "no_error_data": err_name is None,
        "customer_latency_ratio": max(ratios) if ratios else 1.0,
        "per_service": per,
        "users_affected": None,
        "caveats": caveats,
        "range_checks": ranges,
        "beyond_range": [r["series"] for r in ranges if r["beyond"]],
    }
    failing = ("no error data (no error-rate signal in the telemetry)" if share is None else
               f"{fmt_pct(share, 2)} (~{data['failed_requests']:,} of "
               f"{data['total_requests'] or 0:,})")
    md = "".join(f"**Caution:** {md_inline(c)}\n\n" for c in caveats)
    md += (f"- **Affected services:** {', '.join(md_inline(s) for s in data['affected_services'])}"
          f"\n- **Customer-facing ({', '.join(md_inline(e) for e in eps)}) requests failing:** "
          f"{failing}"
          f"\n- **Customer-facing p99 latency:** x{data['customer_latency_ratio']:.1f} baseline"
          f"\n- **Duration:** {fmt_duration(duration)} ({status})"
          f"\n- **Users affected:** TODO (no user-level telemetry)\n\n"
          + md_table(pd.DataFrame(per)))
    return Section("Impact and blast radius", md, data)


RANGE_HISTORY = pd.Timedelta("2h")  # how far back a customer-facing series' range is read


def _history(run: Run, name: str, k: int, ep: str, t0: pd.Timestamp) -> pd.DataFrame | None:
    """The signal of one customer-facing service from t0 to the window's end, recorded as
    evidence `history_<signal>_<k>` (k: the service's position among the entrypoints, so no
    label reaches a file name); None when the backend cannot answer."""
    key = f"history_{name}_{k}"
    df = None
    if key in run.evidence_index():
        try:
            df = run.evidence(key)
        except OSError:  # listed but not copied along (a partial copy of a run): ask again
            df = None
    if df is None:
        inc = run.incident
        try:
            res = run.metrics.query_signal(name, t0, inc.end_ts, choose_step(t0, inc.end_ts),
                                           {"service": ep})
        except (SourceError, InputError):  # no backend to ask: the window's rows judge
            return None
        df = run.record(key, res, "triage")
    if len(df):
        df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


def customer_ranges(run: Run, frames: dict[str, pd.DataFrame], eps: list[str],
                    t_on: pd.Timestamp) -> list[dict[str, Any]]:
    """Each impact signal of the customer-facing services judged against the range it held
    in its baseline (analysis.onset.range_check): up to RANGE_HISTORY before the alert's lead
    (`for:` plus lag) when an alert fired, else before the onset, read from the metrics
    backend when the window starts later. A heavy-tailed series that merely returns to a level
    it already held is not customer impact."""
    inc = run.incident
    alert = inc.alert_ts
    split = alert - alert_lead(inc.topology or {}) if alert is not None else t_on
    out = []
    for name, d in run.signals.items():
        df = frames.get(name)
        if d.role not in IMPACT_ROLES or df is None or df.empty:
            continue
        for k, ep in enumerate(eps):
            g = df[df["service"] == ep]
            if g.empty:
                continue
            if split - RANGE_HISTORY < inc.start_ts:
                hist = _history(run, name, k, ep, split - RANGE_HISTORY)
                if hist is not None and len(hist):
                    g = hist[hist["service"] == ep]
            r = range_check(g.set_index("time")["value"], split, unit=d.unit,
                            direction=d.direction)
            out.append({"series": f"{name}{{service={ep}}}", "signal": name, "service": ep,
                        "role": d.role, **r})
    return out


def _step(df: pd.DataFrame) -> float:
    t = pd.Series(sorted(df["time"].unique()))
    return float(t.diff().dt.total_seconds().median()) if len(t) > 1 else 15.0


def assess(run: Run, impact: Section) -> Section:
    """Severity from measured impact by the configured policy (P0-P4 and the severity scale)."""
    inc = run.incident  # runs made before the policy had its own field kept it in topology
    policy = inc.severity_policy or inc.topology.get("severity_policy") or DEFAULT_SEVERITY_POLICY
    sev = assess_severity(impact.data, policy, inc.topology.get("severity_scale"))
    md = f"**{sev['label']}** (policy rule {sev['rule']}): " + "; ".join(
        md_inline(r) for r in sev["reasons"])
    return Section("Severity", md, sev)


def recent_changes(run: Run) -> Section:
    """Changes in the window (deploys, config, flags), recorded as evidence."""
    inc = run.incident
    res = run.changes.changes(inc.start_ts, inc.end_ts)
    df = run.record("changes", res, "triage")
    if len(df):
        df["time"] = pd.to_datetime(df["time"], utc=True)
    md = md_table(df, ["time", "service", "type", "id", "description"])
    if res.partial:
        md += "\n**Partial results:** the change backend did not answer fully: " + "; ".join(
            md_inline(w) for w in res.warnings[:5]) + "\n"
    return Section("Changes in the window", md, {"frame": df})


def plot(run: Run, sig: Section, onset: Section, changes: Section) -> Figure:
    """Golden signals of the affected services with onset and change markers (saved PNG)."""
    services = onset.data.get("affected") or [run.incident.service]
    out = run.dir("report_files") / "golden_signals.png"
    title = f"Golden signals: {run.incident.id}"
    fig = plot_golden_signals(sig.data["frames"], services, onset.data["time"],
                              changes.data["frame"], out, title)
    return Figure(out, title, fig)


def status_update(run: Run, severity: Section, impact: Section, changes: Section,
                  action: str | None = None, *, recommendation: str | None = None,
                  cause_stated: bool = False, resolved_at: str | None = None,
                  correlation: dict[str, Any] | None = None) -> Section:
    """The status update from the current state: 🔴/🟡/🟢, status, impact, action, next update.

    `correlation` (its findings, once it ran) lets the outcome weigh what the logs and spans
    confirm; without it the onset is the first estimate."""
    d = impact.data
    level = severity.data["level"]
    ch = changes.data["frame"]
    outcome = outcome_of(run, {"onset": {"time": d.get("onset")}, "impact": d}, correlation)
    st = current_state(outcome=outcome, impact=d, severity=level, changes=_records(ch),
                       recommendation=recommendation, cause_stated=cause_stated,
                       resolved_at=resolved_at or run.incident.resolved_at, action=action,
                       cadence=run.incident.topology.get("status_cadence_minutes"))
    if action is None and st["state"] == "Investigating" and outcome["kind"] == "incident":
        t_on = pd.Timestamp(d["onset"])
        near = ch[(ch["time"] <= t_on) & (ch["time"] >= t_on - pd.Timedelta("30min"))] \
            if len(ch) else ch.iloc[:0]
        if len(near):
            r = near.iloc[-1]
            st["action"] = (f"checking {r['type']} {r['id']} on {r['service']} "
                            f"({fmt_time(r['time'], '%H:%M')} UTC, before onset) as first "
                            "suspect")
    ctx = {
        "color": st["color"], "state": st["state"], "severity": severity.data["label"],
        "level": level,
        "incident": run.incident, "impact": d, "action": st["action"],
        "summary": st["summary"], "as_of": d["as_of"], "every_min": st["every_min"],
        "next_update": st["next_update"], "outcome": outcome,
    }
    text = render_template("status_update.md.j2", ctx)
    return Section("Status update", text, {"text": text, "color": st["color"],
                                           "state": st["state"], "summary": st["summary"],
                                           "action": st["action"],
                                           "next_update": st["next_update"],
                                           "every_min": st["every_min"]})


def summarize(run: Run) -> Section:
    """Triage in one call, shown as the first screen: status, severity, impact, next update.

    Its data holds every section ("signals", "onset", "impact", "severity", "changes",
    "update") so the notebook shows the details below without querying twice.
    """
    sig = golden_signals(run)
    onset = detect_onset(run, sig)
    impact = measure_impact(run, sig, onset)
    severity = assess(run, impact)
    changes = recent_changes(run)
    update = status_update(run, severity, impact, changes)
    return Section("Status now", update.markdown, {
        "signals": sig, "onset": onset, "impact": impact, "severity": severity,
        "changes": changes, "update": update})


def collect(sig: Section, onset: Section, impact: Section, severity: Section,
            changes: Section, update: Section, similar: Section | None = None) -> TriageFindings:
    """The typed triage findings from the notebook's sections."""
    mv = onset.data["movers"]
    return TriageFindings.from_dict({
        "signals": {k: {"rows": int(len(v))} for k, v in sig.data["frames"].items()},
        "no_data": sig.data["no_data"],
        "missing": sig.data.get("missing", []),
        "onset": {"time": iso(onset.data["time"]), "ref_time": iso(onset.data.get("ref_time")),
                  "first_movers": _records(mv.head(15)) if len(mv) else []},
        "impact": impact.data,
        "severity": severity.data,
        "changes": _records(changes.data["frame"]),
        "status_update": update.data,
        "similar_incidents": similar.data if similar is not None else None,
        "strongest_deviation": _strongest(sig),
    })


def _strongest(sig: Section) -> dict[str, Any] | None:
    defs = sig.data.get("defs") or signals()  # the deployment's declared signals
    return strongest_deviation(sig.data["frames"], {k: d.unit for k, d in defs.items()},
                               {k: d.direction for k, d in defs.items()})


def _with_outcome(run: Run, findings: TriageFindings) -> TriageFindings:
    """The findings with `outcome` (incident / no_incident / inconclusive) added."""
    data = findings.to_dict()
    data["outcome"] = outcome_of(run, data)
    return TriageFindings.from_dict(data)


def save(run: Run, sig: Section, onset: Section, impact: Section, severity: Section,
         changes: Section, update: Section, similar: Section | None = None) -> Path:
    """Write findings/triage.json (with the outcome so far and the evidence health)."""
    found = _with_outcome(run, collect(sig, onset, impact, severity, changes, update, similar))
    found.extra["evidence_health"] = run.evidence_health()  # what the numbers rest on
    return run.save_findings("triage", found)


def run(run: Run, *, save: bool = True, frames: dict[str, pd.DataFrame] | None = None,
        changes_frame: pd.DataFrame | None = None, action: str | None = None,
        resolved: bool = False, recommendation: str | None = None,
        cause_stated: bool = False, correlation: dict[str, Any] | None = None
        ) -> TriageFindings:
    """The whole triage in one call (as the notebook runs it, without the KB search).

    With `frames` / `changes_frame` it assesses numbers the caller queried (status updates use
    the current numbers); `resolved` marks the incident resolved; `save` writes the findings;
    `recommendation` and `cause_stated` (from the 5 Whys) let the status say "Identified";
    `correlation` (its findings) lets the status weigh what the logs and spans confirm.
    """
    if frames is None:
        sig = golden_signals(run)
    else:
        sig = Section("Golden signals", "", {"frames": frames,
                                             "no_data": [n for n, f in frames.items() if f.empty]})
    onset = detect_onset(run, sig)
    impact = measure_impact(run, sig, onset)
    if resolved:
        impact.data["status"] = "resolved"
    severity = assess(run, impact)
    changes = recent_changes(run) if changes_frame is None else Section(
        "Changes", "", {"frame": changes_frame})
    update = status_update(run, severity, impact, changes, action,
                           recommendation=recommendation, cause_stated=cause_stated,
                           correlation=correlation)
    findings = _with_outcome(run, collect(sig, onset, impact, severity, changes, update))
    findings.extra["evidence_health"] = run.evidence_health()
    if save:
        run.save_findings("triage", findings)
    return findings


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.to_dict(orient="records"):
        out.append({k: (iso(v) if isinstance(v, pd.Timestamp) else
                        (None if isinstance(v, float) and np.isnan(v) else v))
                    for k, v in rec.items()})
    return out
