"""Stage 2, correlation: log templates, what changed, metric anomalies, changes, suspects."""

from __future__ import annotations

from typing import Any

import pandas as pd
from scipy import stats

from ..analysis.anomalies import rank_anomalies
from ..analysis.behaviour import behaviour_evidence, behaviour_text
from ..analysis.evidence import log_evidence, metric_excursions, named_in_errors
from ..analysis.outcome import CONFIDENT_MARGIN, CONFIDENT_SCORE, corroboration_of
from ..analysis.rootcause import (
    KINDS,
    RankConfig,
    evidence_table,
    rank_services,
    root_cause_of,
)
from ..analysis.spikes import compare_counts, template_changes, what_changed
from ..analysis.suspects import rank_suspects
from ..analysis.templates import mine_templates
from ..analysis.traces import call_graph, link_table, link_text, trace_evidence
from ..core.errors import StageError
from ..core.findings import CorrelationFindings
from ..core.model import iso
from ..core.safe import md_inline, md_table
from ..core.signals import signals
from ..report.display import Section
from ..report.render import fmt_time
from ..runs.folder import Run
from ..sources.base import QueryResult
from .common import calls_of, reference_window, signal_frames, windows
from .triage import _records

__all__ = ["context", "load_logs", "log_templates", "log_fields", "anomalies", "changes",
           "service_ranking", "suspects", "save", "run"]

DEFAULT_MAX_LINES = 200_000


def context(run: Run) -> Section:
    """Triage findings this stage builds on, and the baseline/incident windows."""
    tri = run.triage()
    if tri is None:
        raise StageError("triage findings are missing: run 01_triage first (or `incident run`)")
    w = windows(tri, run)
    if w["onset_known"]:
        md = (f"- Baseline: {fmt_time(w['baseline'][0])} to {fmt_time(w['baseline'][1])}\n"
              f"- Incident: {fmt_time(w['incident'][0])} to {fmt_time(w['incident'][1])}\n"
              "- Severity from triage: "
              f"{md_inline(tri.severity.label if tri.severity else 'none')}")
        if w.get("anchored_on_alert"):
            md += (f"\n- The first excursion began at {fmt_time(w['earliest_excursion'])}, "
                   f"more than {int(w['lead'].total_seconds() // 60)} minutes before the alert "
                   "(its `for:` plus 2 minutes): the incident window starts there instead. "
                   "If your alert waits longer, set `alert_for` in incident.yaml.")
        if w.get("onset_after_alert"):
            md += (f"\n- The alert service's series moved at {fmt_time(w['measured_onset'])}, "
                   "after the alert: the incident window starts at the alert, when its "
                   "condition already held.")
    else:
        md = ("**No onset was measured**, so there is no incident window and no suspect is "
              "ranked. To describe what changed, the second half of the window "
              f"({fmt_time(w['incident'][0])} to {fmt_time(w['incident'][1])}) is compared "
              f"with the first ({fmt_time(w['baseline'][0])} to {fmt_time(w['baseline'][1])}).")
    return Section("Windows", md, {"triage": tri, **w})


def load_logs(run: Run, ctx: Section) -> Section:
    """Log lines over baseline+incident (capped, sampling reported), mined into templates."""
    b0 = ctx.data["baseline"][0]
    i1 = ctx.data["incident"][1]
    cap = int(run.incident.sources.get("logs", {}).get("max_lines", DEFAULT_MAX_LINES))
    res = run.logs.read_logs(b0, i1, limit=cap)
    frame, n_ref = _with_reference(res.frame, reference_window(run), (b0, i1),
                                   lambda a, b: run.logs.read_logs(a, b, limit=cap).frame, "time")
    df = run.clean_messages(frame)  # personal data never reaches templates or evidence
    # each service's lines are mined apart (its own log statements and line shapes)
    ids, texts = (mine_templates(df["message"].astype(str).tolist(),
                                 groups=df["service"].astype(str).tolist())
                  if len(df) else ([], {}))
    df = df.assign(template_id=ids, template=[texts[i] for i in ids])
    df = run.record("logs", QueryResult(df, res.query, res.backend, res.warnings, res.partial,
                                        res.notes), "correlation", redacted=True)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    n = res.notes
    md = (f"Read **{n.get('read', len(df)):,}** lines of **{n.get('matched', len(df)):,}** "
          f"matching ({md_inline(n.get('sampling', 'all lines'))}); "
          f"**{len(texts):,}** templates.")
    if n.get("format"):
        md += f"\n\nLog format: {md_inline(n['format'])}."
    if n_ref:
        md += f"\n\n**{n_ref:,}** of them from the declared normal period (reference)."
    if res.partial:
        md += "\n\n**Partial results:** the backend did not answer fully (see warnings)."
    for w in res.warnings[:5]:
        md += f"\n- warning: {md_inline(w)}"
    stats = {"matched": n.get("matched", len(df)), "read": n.get("read", len(df)),
             "sampling": n.get("sampling", "all lines"), "templates": len(texts),
             "partial": res.partial, "warnings": res.warnings[:20], "reference_lines": n_ref}
    if n.get("format"):
        stats["format"] = n["format"]
    return Section("Logs read", md, {"frame": df, "stats": stats})


def _with_reference(frame: pd.DataFrame, ref: tuple[pd.Timestamp, pd.Timestamp] | None,
                    window: tuple[pd.Timestamp, pd.Timestamp],
                    read: Any, time_col: str) -> tuple[pd.DataFrame, int]:
    """The window's rows plus those of the reference period (read separately when it is not
    inside the window; rows of the window inside the reference are replaced by them, so none is
    counted twice), and how many rows lie in the reference."""
    if ref is None:
        return frame, 0
    t = pd.to_datetime(frame[time_col], utc=True) if len(frame) else pd.Series(dtype="object")
    if ref[0] >= window[0] and ref[1] <= window[1]:
        return frame, int(((t >= ref[0]) & (t <= ref[1])).sum()) if len(frame) else 0
    extra = read(ref[0], ref[1])
    if extra is None or extra.empty:
        return frame, 0
    keep = frame[~((t >= ref[0]) & (t <= ref[1]))] if len(frame) else frame
    return pd.concat([keep, extra], ignore_index=True), len(extra)


def log_templates(run: Run, ctx: Section, logs: Section) -> Section:
    """Templates new or surging in the incident window (Poisson test, BH false discovery)."""
    df = logs.data["frame"]
    tc = template_changes(df, ctx.data["baseline"], ctx.data["incident"])
    run.record("log_templates", QueryResult(tc, "template counts per service: incident window "
                                                "vs baseline (binomial test, BH)", "analysis"),
               "correlation")
    md = md_table(tc, ["service", "status", "level", "template", "baseline_count",
                       "incident_count", "rate_ratio", "q_value"], max_rows=15,
                  code_columns=["template"])
    return Section("New or surging log templates", md, {"frame": tc, "logs": df})


def log_fields(run: Run, ctx: Section, logs: Section) -> Section:
    """Field values and pairs over-represented in the incident window."""
    df = logs.data["frame"]
    b0, b1 = ctx.data["baseline"]
    i0, i1 = ctx.data["incident"]
    base = df[(df["time"] >= b0) & (df["time"] < b1)]
    inc = df[(df["time"] >= i0) & (df["time"] <= i1)]
    fields = [c for c in ("service", "host", "level", "status", "template_id") if c in df]
    bm = max((b1 - b0).total_seconds() / 60, 1e-9)
    im = max((i1 - i0).total_seconds() / 60, 1e-9)
    read = logs.data["stats"]
    pushdown = getattr(run.logs, "field_changes", None)
    how = "counts from the sample of log lines"
    if pushdown is not None and read["read"] < read["matched"]:
        wc = _with_exact_counts(run, ctx, base, inc, fields, bm, im, pushdown)
        how = "exact counts by backend aggregation; template pairs from the sample"
    else:
        wc = what_changed(base, inc, fields, bm, im)
    run.record("what_changed", QueryResult(wc, f"over-representation of {fields} and pairs: "
                                               f"incident vs baseline ({how}; binomial test, "
                                               "BH)", "analysis"), "correlation")
    md = md_table(wc, ["field", "value", "baseline_count", "incident_count", "rate_ratio",
                       "q_value"], max_rows=12)
    return Section("What changed in the logs", md, {"frame": wc})


PUSHDOWN_FIELDS = ("service", "host", "level", "status")


def _with_exact_counts(run: Run, ctx: Section, base: pd.DataFrame, inc: pd.DataFrame,
                       fields: list[str], bm: float, im: float, pushdown: Any) -> pd.DataFrame:
    """What changed when the client holds only a sample: the backend counts field values (and
    pairs) exactly by aggregation; only combinations with template ids come from the sample;
    one Benjamini-Hochberg correction over everything tested."""
    exact_fields = [f for f in PUSHDOWN_FIELDS if f in fields]
    res = pushdown(ctx.data["baseline"], ctx.data["incident"], exact_fields)
    fc = run.record("field_counts", res, "correlation")
    keys = fc["field"].astype(str) + "\x00" + fc["value"].astype(str)
    exact = compare_counts(pd.Series(fc["baseline_count"].to_numpy(), index=keys),
                           pd.Series(fc["incident_count"].to_numpy(), index=keys), bm, im)
    exact[["field", "value"]] = exact.pop("key").str.split("\x00", n=1, expand=True)
    covered = set(exact["field"])
    sample = what_changed(base, inc, fields, bm, im, alpha=1.01)
    sample = sample[~sample["field"].isin(covered)]
    out = pd.concat([exact, sample], ignore_index=True)
    if out.empty:
        return out
    out["q_value"] = stats.false_discovery_control(out["p_value"].to_numpy(), method="bh")
    out = out[(out["q_value"] < 0.01) & (out["rate_ratio"] > 1.5)]
    return out.sort_values(["q_value", "rate_ratio"], ascending=[True, False]).reset_index(
        drop=True)


def anomalies(run: Run, ctx: Section) -> Section:
    """Metric anomalies ranked across services (robust z of the incident window)."""
    frames = signal_frames(run, "correlation")
    defs = run.signals
    tri = ctx.data["triage"]
    ref = pd.Timestamp(tri.onset.ref_time) if tri.onset.ref_time else None
    an = rank_anomalies(frames, {k: d.unit for k, d in defs.items()},
                        {k: d.direction for k, d in defs.items()}, ctx.data["baseline"],
                        ctx.data["incident"], ref_time=ref)
    run.record("anomalies", QueryResult(an, "robust z of incident-window median vs baseline "
                                            "per signal and service", "analysis"), "correlation")
    md = md_table(an, ["signal", "service", "baseline", "incident", "z", "score", "onset"],
                  max_rows=12)
    return Section("Metric anomalies", md, {"frame": an})


def changes(run: Run, ctx: Section) -> Section:
    """Changes in the hour before onset (from triage evidence when present)."""
    if "changes" in run.evidence_index():
        df = run.evidence("changes")
    else:
        inc = run.incident
        df = run.record("changes", run.changes.changes(inc.start_ts, inc.end_ts), "correlation")
    if len(df):
        df["time"] = pd.to_datetime(df["time"], utc=True)
    onset = ctx.data["incident"][0]
    near = df[(df["time"] >= onset - pd.Timedelta("60min"))
              & (df["time"] <= onset + pd.Timedelta("5min"))].copy() if len(df) else df
    if len(near):
        near["minutes_before_onset"] = ((onset - near["time"]).dt.total_seconds() / 60).round(1)
    md = md_table(near, ["time", "service", "type", "id", "description",
                         "minutes_before_onset"])
    return Section("Changes near onset", md, {"frame": df, "near": near})


def _spans(run: Run, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Spans of the window (and of the reference period, when declared): from evidence when
    recorded, else from the span source (an empty frame when none is configured: traces
    missing, not "normal")."""
    source = getattr(run, "spans", None)  # the span source (issue 13a); absent: no traces
    if "spans" in run.evidence_index():
        df = run.evidence("spans")
    elif source is None:
        return pd.DataFrame()
    else:
        res = source.spans(start, end)
        frame, _ = _with_reference(res.frame, reference_window(run), (start, end),
                                   lambda a, b: source.spans(a, b).frame, "start")
        res = QueryResult(frame, res.query, res.backend, res.warnings, res.partial, res.notes)
        df = frame if frame.empty else run.record("spans", res, "correlation")
    if len(df):
        df["start"] = pd.to_datetime(df["start"], utc=True)
    return df


def service_ranking(run: Run, ctx: Section, logs: pd.DataFrame | None,
                    cfg: RankConfig | None = None) -> dict[str, Any]:
    """Services ranked on their own excursions: per-pod metrics, log templates and errors,
    names in other services' errors, traces; plus the stated root cause (or None) and ties."""
    base, inc = ctx.data["baseline"], ctx.data["incident"]
    defs = getattr(run, "signals", None) or signals()  # declared per deployment (issue 13a)
    meta = {k: {"unit": d.unit, "direction": d.direction, "role": getattr(d, "role", "other")}
            for k, d in defs.items()}
    frames = signal_frames(run, "correlation")
    spans = _spans(run, base[0], inc[1])
    me = metric_excursions(frames, meta, base, inc)
    declared = ref = reference_window(run)
    firing = firing_window(run, inc)
    note = None
    if ref is not None and _overlaps(ref, inc):
        note = "the declared reference period overlaps the incident window: not used"
        ref = None
    # behaviour compares the firing window only: a reference before the alert still serves
    ref_b = declared if declared is not None and not _overlaps(declared, firing) else None
    le = ne = None
    if logs is not None and len(logs):
        known = set(logs["service"].dropna().astype(str)) | set(me["service"])
        if len(spans):
            known |= set(spans["service"].dropna().astype(str))
        lb, lh = _reference_split(logs, "time", base, ref)
        le = log_evidence(logs, lb, inc, history=lh)
        ne = named_in_errors(logs, known, lb, inc, history=lh)
    te = be = lt = None
    if len(spans):
        sb, sh = _reference_split(spans, "start", base, ref)
        lt = link_table(spans, sb, inc, history=sh)
        te = trace_evidence(spans, sb, inc, history=sh, links=lt)
        bb, bh = _reference_split(spans, "start", base, ref_b)
        bl = (_reference_split(logs, "time", base, ref_b)[1]
              if bh is not None and logs is not None and len(logs) else None)
        be = behaviour_evidence(spans, logs, bb, firing, history_spans=bh, history_logs=bl)
    calls = calls_of(run) or (call_graph(spans) if len(spans) else {})
    table = evidence_table(me, le, ne, te, be)
    cfg = cfg or RankConfig()
    ranked = rank_services(table, cfg, calls=calls)
    decision = root_cause_of(ranked, cfg)
    kinds = [k for k in cfg.kinds if k in table]
    missing = [k for k, ok in (("metrics", not me.empty), ("logs", le is not None),
                               ("traces", te is not None)) if not ok]
    rows = [{"rank": int(r["rank"]), "service": r["service"], "score": round(r["score"], 4),
             "kinds": {k: round(float(r[k]), 4) for k in kinds if pd.notna(r[k]) and r[k] > 0},
             "victim_of": list(r["victim_of"])}
            for _, r in ranked.head(10).iterrows()]
    shown = {r["service"] for r in rows[:5]}
    changed = ([{k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in r.items()}
                for r in be[be["service"].isin(shown) & (be["behaviour"] > 0)].to_dict("records")]
               if be is not None and len(be) else [])
    slow = (lt[(lt["effect"] > 0) & (lt["effect"] >= cfg.gates["trace_link"])
               & (lt["caller"].isin(shown) | lt["callee"].isin(shown))]
            if lt is not None and "trace_link" in cfg.kinds else None)
    slow_links = ([{k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in r.items()}
                   for r in slow.head(10).to_dict("records")] if slow is not None else [])
    out = {**decision, "ranking": rows, "kinds_used": kinds, "missing": missing,
           "behaviour": changed, "links": slow_links,
           "behaviour_window": [iso(firing[0]), iso(firing[1])],
           "behaviour_baseline": "reference period" if ref_b is not None else "period before",
           "calls_from": "topology" if calls_of(run) else ("spans" if calls else "none"),
           "events_baseline": "reference period" if ref is not None else "period before",
           "corroboration": corroboration_of(
               le, be, error_gate=cfg.gates["error_share"],
               behaviour_gate=cfg.gates["behaviour"],
               unmeasured=_unmeasured(logs, le, spans, be, declared, note),
               saturation=me if "metric" in cfg.kinds else None,
               metric_gate=cfg.gates["metric"],
               links=lt if "trace_link" in cfg.kinds else None,
               link_gate=cfg.gates["trace_link"])}
    if note:
        out["note"] = note
    return out


def _unmeasured(logs: pd.DataFrame | None, le: pd.DataFrame | None, spans: pd.DataFrame,
                be: pd.DataFrame | None, declared: tuple[pd.Timestamp, pd.Timestamp] | None,
                note: str | None) -> list[str]:
    """Why logs or spans that were read could not be compared with a baseline."""
    out = []
    for what, rows, ev in (("log lines", logs, le), ("spans", spans, be)):
        if rows is not None and len(rows) and (ev is None or ev.empty):
            out.append(f"the {len(rows):,} {what} read could not be compared with a baseline "
                       "(none in the baseline period, or none in the window)")
    if out and declared is not None and note:
        out.append("the declared reference period overlaps the incident window, so it cannot "
                   "serve as the baseline (declare one that ends before the window)")
    return out


def _overlaps(a: tuple[pd.Timestamp, pd.Timestamp], b: tuple[pd.Timestamp, pd.Timestamp]
              ) -> bool:
    return bool(a[0] <= b[1] and a[1] >= b[0])


def firing_window(run: Run, inc: tuple[pd.Timestamp, pd.Timestamp]
                  ) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Where the behaviour of operations is measured: from the alert to the window's end (the
    fault is on while its alert fires; the minutes before it may still be normal and would
    dilute a change that every execution shows), else the whole incident window."""
    alert = getattr(run.incident, "alert_ts", None)
    if alert is not None and inc[0] <= alert < inc[1]:
        return alert, inc[1]
    return inc


def _reference_split(df: pd.DataFrame, col: str, base: tuple[pd.Timestamp, pd.Timestamp],
                     ref: tuple[pd.Timestamp, pd.Timestamp] | None
                     ) -> tuple[tuple[pd.Timestamp, pd.Timestamp], pd.DataFrame | None]:
    """(baseline window, history rows) for event evidence: with a declared reference period
    holding rows, those rows alone are the baseline (the period just before the window may
    hold an earlier fault); otherwise the period before, as is."""
    if ref is None:
        return base, None
    rows = df[(df[col] >= ref[0]) & (df[col] <= ref[1])]
    if rows.empty:
        return base, None
    return (base[0], base[0]), rows


def stated_first(ranked: list[dict[str, Any]], root: str, sr: dict[str, Any]
                 ) -> list[dict[str, Any]]:
    """The suspects with the service the ranking states first: its own entry (or one built
    from the ranking when it has none), with the changed behaviour added to its evidence and
    the ranking's score and lead (the table's score kept as `table_score`); the others follow
    in their order, one rank down."""
    own = next((s for s in ranked if s["service"] == root), None)
    mine = next(r for r in sr["ranking"] if r["service"] == root)
    ev = [{"kind": "behaviour", "text": behaviour_text(b)}
          for b in sr.get("behaviour", []) if b["service"] == root]
    ev += [{"kind": "trace_link", "text": link_text(r)} for r in sr.get("links", [])
           if root in (r["caller"], r["callee"])]
    cited = {e["kind"] for e in ev} | {"behaviour"}  # its rows, not its score, are cited
    ev += [{"kind": k, "text": f"{KINDS[k][0]}: {v:.2f} of the strongest service's"}
           for k, v in mine["kinds"].items() if k not in cited]
    if own is None:
        own = {"service": root, "change_id": None, "change": None, "change_time": None,
               "change_type": None, "score": mine["score"],
               "breakdown": {f"ranking {k}": v for k, v in mine["kinds"].items()},
               "evidence": []}
    # its score is the ranking's (on which it was stated), the table's own score kept beside
    first = {**own, "rank": 1, "score": mine["score"], "table_score": own["score"],
             "margin": round(sr["lead"], 4), "stated_by": "service ranking",
             "evidence": [*own["evidence"], *ev]}
    return [first] + [{**s, "rank": s["rank"] + 1} for s in ranked if s["service"] != root]


def _confident(ranked: list[dict[str, Any]]) -> bool:
    """The change/anomaly suspects' own bar: strong score with evidence and a clear lead."""
    if not ranked:
        return False
    top = ranked[0]
    margin = top.get("margin")
    return bool(top["score"] >= CONFIDENT_SCORE and top.get("evidence")
                and (margin if margin is not None else 1.0) >= CONFIDENT_MARGIN)


def suspects(run: Run, ctx: Section, an: Section, tpl: Section, ch: Section) -> Section:
    """Ranked suspects, each with its evidence and score breakdown, and the root cause stated
    only when the service ranking names one and the suspects agree, or when the suspects lead
    clearly and the service ranking puts the same service alone on top (else None, with ties).
    Without a measured onset nothing is ranked and no root cause is stated."""
    if not ctx.data.get("onset_known", True):
        return Section("Suspects", "No onset was measured: no suspect is ranked (a change or "
                       "a service is not a cause of an incident that was not seen).",
                       {"ranked": [], "root_cause": None, "reason": "no onset measured",
                        "ties": [], "service_ranking": {}})
    ranked = rank_suspects(an.data["frame"], tpl.data["frame"], ch.data["frame"], calls_of(run),
                           ctx.data["incident"][0],
                           colocated=run.incident.topology.get("hosts") or None)
    sr = service_ranking(run, ctx, tpl.data.get("logs"))
    root, reason = sr["root_cause"], sr["reason"]
    top = [s["service"] for s in ranked if s["rank"] == 1]
    if root is not None and top and top != [root]:
        if _confident(ranked):
            root, reason = None, (f"the service ranking names {root}, the suspects "
                                  f"{', '.join(top)}: they disagree")
        else:  # the change/anomaly suspects name nobody clearly: the ranking's bar decides
            ranked = stated_first(ranked, root, sr)
            reason = (f"the service ranking names it ({reason}); the change and anomaly "
                      "suspects lead with no clear margin")
    elif root is None and len(top) == 1 and sr["ties"] == top and _confident(ranked):
        # two independent lines agree: the change/anomaly suspects lead clearly and the
        # per-service ranking puts the same service alone on top (below its own bar)
        lead = ranked[0]
        root, reason = top[0], (f"the suspects lead clearly (score {lead['score']:.2f}, lead "
                                f"{lead.get('margin') or 0:.2f}) and the service ranking puts "
                                f"{top[0]} alone on top ({sr['reason']})")
    # the breakdown's "change" is a score part: keep it apart from the change id
    rows = [{"rank": s["rank"], "service": s["service"], "change_id": s["change_id"] or "",
             "score": s["score"], **{f"{k} score": v for k, v in s["breakdown"].items()}}
            for s in ranked]
    md = md_table(rows, max_rows=10)
    for s in ranked[:3]:
        md += f"\n**#{s['rank']} {md_inline(s['service'])}**"
        if s["change_id"]:
            md += f" with {md_inline(s['change_id'])} ({md_inline(s['change'])})"
        md += "\n" + "\n".join(f"- {md_inline(e['kind'])}: {md_inline(e['text'])}"
                               for e in s["evidence"]) + "\n"
    if sr["ranking"]:
        md += ("\n**Services ranked on their own evidence** (each kind scaled by its strongest "
               f"service; events compared with the {md_inline(sr['events_baseline'])}):\n\n"
               + md_table([{"rank": r["rank"], "service": r["service"], "score": r["score"],
                            "evidence": ", ".join(f"{k} {v:.2f}" for k, v in r["kinds"].items()),
                            "victim of": ", ".join(r["victim_of"])}
                           for r in sr["ranking"][:5]]) + "\n")
        for b in sr.get("behaviour", [])[:5]:
            md += (f"\n- behaviour of {md_inline(b['service'])}: "
                   f"{md_inline(behaviour_text(b), 400)}")
        for r in sr.get("links", [])[:5]:
            md += f"\n- slow link: {md_inline(link_text(r), 400)}"
        if sr.get("behaviour") or sr.get("links"):
            md += "\n"
    md += ("\n**Root cause:** " + (md_inline(root) if root else "none stated") + " ("
           + md_inline(reason) + ")")
    if sr["missing"]:
        md += f"; evidence missing: {md_inline(', '.join(sr['missing']))}"
    return Section("Suspects", md, {"ranked": ranked, "root_cause": root, "reason": reason,
                                    "ties": sr["ties"], "service_ranking": sr})


def save(run: Run, logs: Section, tpl: Section, fields: Section, an: Section, ch: Section,
         sus: Section, ctx: Section) -> Any:
    """Write findings/correlation.json."""
    data = {
        "windows": {k: [iso(ctx.data[k][0]), iso(ctx.data[k][1])]
                    for k in ("baseline", "incident")},
        "logs": logs.data["stats"],
        "templates": _records(tpl.data["frame"].head(30)),
        "what_changed": _records(fields.data["frame"].head(30)),
        "anomalies": _records(an.data["frame"].head(30)),
        "changes_near_onset": _records(ch.data["near"]),
        "suspects": sus.data["ranked"][:10],
        "root_cause": sus.data.get("root_cause"),
        "root_cause_reason": sus.data.get("reason"),
        "ties": sus.data.get("ties", []),
        "service_ranking": sus.data.get("service_ranking"),
    }
    return run.save_findings("correlation", data)


def run(run: Run) -> CorrelationFindings:
    """The whole correlation stage in one call, as the notebook runs it; findings saved."""
    ctx = context(run)
    logs = load_logs(run, ctx)
    tpl = log_templates(run, ctx, logs)
    flds = log_fields(run, ctx, logs)
    an = anomalies(run, ctx)
    ch = changes(run, ctx)
    sus = suspects(run, ctx, an, tpl, ch)
    save(run, logs, tpl, flds, an, ch, sus, ctx)
    return run.correlation() or CorrelationFindings()
