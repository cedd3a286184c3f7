"""Traces as evidence: the call graph from spans, latency per service and edge, self time,
error spans and missing subtrees, compared between a baseline and the incident window.

Spans: DataFrame trace_id, span_id, parent_id (None for roots), service, operation, start
(UTC), duration_ms, status ("error" / "ok" / None). Pure pandas, no I/O.

Self time (a span's duration minus the time covered by its children, clipped at 0) tells a
slow service apart from its callers: a slow callee makes its callers' *durations* longer but
not their self time (MicroRank, Yu et al. WWW 2021, and TraceRCA, Li et al. IWQoS 2021, use the
same split between a span and its callees). A drop in the calls that reach a service, beyond the
change of all spans, is a missing or truncated subtree (a caller that fails fast no longer calls
on). Latency is tested per (service, operation) against that operation's own baseline: the
share of incident spans above the baseline p95 is compared with the 5% expected (binomial
test), so a naturally slow operation is not a slow service.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..core.model import span_key
from .evidence import poisson_change

__all__ = ["call_graph", "with_self_time", "latency_table", "trace_evidence"]

QUANTILE = 0.95
MIN_BASE_SPANS = 10


def call_graph(spans: pd.DataFrame) -> dict[str, list[str]]:
    """Caller service -> sorted callee services, from parent/child spans (self-calls dropped)."""
    if spans.empty:
        return {}
    parent = pd.DataFrame({"parent_key": span_key(spans["trace_id"], spans["span_id"]),
                           "caller": spans["service"]})
    e = pd.DataFrame({"parent_key": span_key(spans["trace_id"], spans["parent_id"]),
                      "service": spans["service"]}).dropna().merge(parent, on="parent_key")
    e = e[e["caller"] != e["service"]]
    graph: dict[str, list[str]] = {}
    for caller, g in e.groupby("caller"):
        graph[str(caller)] = sorted(set(g["service"].astype(str)))
    return graph


def with_self_time(spans: pd.DataFrame) -> pd.DataFrame:
    """Spans plus `caller` (the parent span's service, None for roots and orphans) and
    `self_ms` (duration minus the summed durations of its children, clipped at 0)."""
    s = spans.copy()
    own, up = span_key(s["trace_id"], s["span_id"]), span_key(s["trace_id"], s["parent_id"])
    kids = s["duration_ms"].groupby(up).sum()
    s["self_ms"] = (s["duration_ms"] - own.map(kids).fillna(0.0)).clip(lower=0.0)
    caller = pd.Series(s["service"].to_numpy(), index=own.to_numpy())
    caller = caller[~caller.index.duplicated()]
    s["caller"] = up.map(caller)
    return s


def latency_table(spans: pd.DataFrame) -> pd.DataFrame:
    """Per edge (caller -> service; caller None for roots): spans, p50/p90/p99 of duration,
    p90 of self time and error spans."""
    cols = ["caller", "service", "spans", "p50_ms", "p90_ms", "p99_ms", "self_p90_ms",
            "error_spans"]
    if spans.empty:
        return pd.DataFrame(columns=cols)
    s = with_self_time(spans)
    s["caller"] = s["caller"].fillna("(root)")
    s["is_err"] = s["status"].astype("string").str.lower().eq("error").fillna(False)
    g = s.groupby(["caller", "service"])
    out = pd.DataFrame({
        "spans": g.size(), "p50_ms": g["duration_ms"].quantile(0.5),
        "p90_ms": g["duration_ms"].quantile(0.9), "p99_ms": g["duration_ms"].quantile(0.99),
        "self_p90_ms": g["self_ms"].quantile(0.9), "error_spans": g["is_err"].sum()})
    return out.reset_index().sort_values("p90_ms", ascending=False, ignore_index=True)


def _slow(base: pd.DataFrame, inc: pd.DataFrame, col: str) -> pd.DataFrame:
    """Per service: incident spans above their operation's baseline p95 of `col`, tested."""
    q = base.groupby(["service", "operation"])[col].agg(
        n="size", q=lambda v: float(np.quantile(v, QUANTILE)))
    q = q[q["n"] >= MIN_BASE_SPANS]
    j = inc.join(q, on=["service", "operation"], how="inner")
    j["above"] = j[col] > j["q"]
    g = j.groupby("service")["above"].agg(["sum", "size"])
    p = stats.binom.sf(g["sum"].to_numpy() - 1, g["size"].to_numpy(), 1 - QUANTILE)
    return pd.DataFrame({"service": g.index, f"{col}_slow": g["sum"].to_numpy(),
                         f"{col}_n": g["size"].to_numpy(),
                         f"{col}_sig": np.minimum(-np.log10(np.maximum(p, 1e-300)), 50.0)})


def trace_evidence(
    spans: pd.DataFrame,
    baseline: tuple[pd.Timestamp, pd.Timestamp],
    incident: tuple[pd.Timestamp, pd.Timestamp],
    *,
    history: pd.DataFrame | None = None,
    min_spans: int = 3,
) -> pd.DataFrame:
    """Per service: latency (duration and self time) and call-count changes, error spans.

    Columns: duration_ms_sig / self_ms_sig (slow spans vs the operation's baseline p95),
    calls_down_sig / calls_up_sig (spans reaching the service, scaled by all spans: missing
    subtrees / retries), errors_sig (error spans, when the source has a status), with counts.
    An empty frame when there are no spans in either period (traces missing, not "normal").
    """
    cols = ["service", "duration_ms_sig", "self_ms_sig", "calls_baseline", "calls_incident",
            "calls_down_sig", "calls_up_sig", "errors_sig"]
    if spans.empty:
        return pd.DataFrame(columns=cols)
    s = with_self_time(spans)
    base = s[(s["start"] >= baseline[0]) & (s["start"] < baseline[1])]
    if history is not None and not history.empty:
        base = pd.concat([base, with_self_time(history)], ignore_index=True)
    inc = s[(s["start"] >= incident[0]) & (s["start"] <= incident[1])]
    if base.empty or inc.empty:
        return pd.DataFrame(columns=cols)
    share = len(inc) / (len(inc) + len(base))
    cb, ci = base.groupby("service").size(), inc.groupby("service").size()
    svcs = cb.index.union(ci.index)
    k0 = cb.reindex(svcs, fill_value=0).to_numpy()
    k1 = ci.reindex(svcs, fill_value=0).to_numpy()
    up, down = poisson_change(k1, k0, share)
    up[k1 < min_spans] = 0.0
    down[k0 < min_spans] = 0.0

    def errs(df: pd.DataFrame) -> pd.Series:
        e = df["status"].astype("string").str.lower().eq("error").fillna(False)
        return e.groupby(df["service"]).sum()

    e0 = errs(base).reindex(svcs, fill_value=0).to_numpy()
    e1 = errs(inc).reindex(svcs, fill_value=0).to_numpy()
    e_up, _ = poisson_change(e1, e0, share)
    e_up[e1 < min_spans] = 0.0
    out = pd.DataFrame({"service": svcs, "calls_baseline": k0, "calls_incident": k1,
                        "calls_down_sig": down, "calls_up_sig": up, "errors_sig": e_up})
    for col in ("duration_ms", "self_ms"):
        out = out.merge(_slow(base, inc, col), on="service", how="left")
    for col in ("duration_ms_sig", "self_ms_sig"):
        out[col] = out[col].fillna(0.0)
    return out[cols + [c for c in out.columns if c not in cols]]
