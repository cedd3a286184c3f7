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

Links (`link_table`): the time a calling span spends outside its only child, the callee's
server span, is the call's time on the wire. A network delay on one pod slows every link it is
an end of while its own spans keep their time, and its callers' client spans wait as long as
its own: self time cannot tell them apart, the ends of the slow links can (`link_slow`).
Span ids are read within their trace (core.model.span_key) everywhere spans are linked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..core.model import span_key
from .evidence import poisson_change, share_var
from .onset import ABS_FLOOR

__all__ = ["call_graph", "with_self_time", "latency_table", "link_slow", "link_table",
           "link_text", "trace_evidence"]

QUANTILE = 0.95
MIN_BASE_SPANS = 10
SIG_GATE = 3.0  # -log10 p a slow link needs
LINK_FLOOR_MS = ABS_FLOOR["seconds"] * 1000.0  # a link is slow by at least this much
MIN_BASE_LINKS = 5  # calls an edge needs in the baseline (the floor guards a small sample)


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


def _links(spans: pd.DataFrame) -> pd.DataFrame:
    """One row per call between services: caller, callee and `link_ms`, the time the calling
    span spent outside its only child (the callee's server span): the network both ways,
    queueing and (de)serialisation. Calls whose parent span has several children are left
    out, since their time cannot be split between them."""
    s = with_self_time(spans)
    up = span_key(s["trace_id"], s["parent_id"])
    kids = up.value_counts()
    own = span_key(s["trace_id"], s["span_id"])
    parent = s.assign(_k=own.to_numpy()).drop_duplicates("_k").set_index("_k")
    child = s[s["caller"].notna() & (s["caller"] != s["service"])]
    pk = up[child.index]
    one = pk.map(kids).eq(1).to_numpy()
    child, pk = child[one], pk[one]
    return pd.DataFrame({"caller": child["caller"].astype(str).to_numpy(),
                         "callee": child["service"].astype(str).to_numpy(),
                         "start": child["start"].to_numpy(),
                         "link_ms": pk.map(parent["self_ms"]).to_numpy(float)})


def link_table(
    spans: pd.DataFrame,
    baseline: tuple[pd.Timestamp, pd.Timestamp],
    incident: tuple[pd.Timestamp, pd.Timestamp],
    *,
    history: pd.DataFrame | None = None,
    min_spans: int = 3,
) -> pd.DataFrame:
    """Per call edge (caller -> callee) with enough calls on both sides: link time p50 / p95
    before and p50 during the incident, the share of incident calls slower than
    max(baseline p95, baseline p50 + LINK_FLOOR_MS), its -log10 p against the 5% expected
    (binomial), and `effect`: that share's lower bound (two standard errors) minus the 5%.

    A network delay on one pod slows every link that carries its packets: the calls it makes
    and the answers it sends. Its own spans stay as fast as before, so self time misses it;
    its callers' client spans and its own client spans show it (the per-edge view of
    MicroRank, Yu et al. WWW 2021, and of TraceRCA, Li et al. IWQoS 2021)."""
    cols = ["caller", "callee", "base_calls", "incident_calls", "base_p50_ms", "base_p95_ms",
            "incident_p50_ms", "slow_share", "sig", "effect"]
    if spans.empty:
        return pd.DataFrame(columns=cols)
    base, inc = _periods(_links(spans), baseline, incident,
                         _links(history) if history is not None and len(history) else None)
    if base.empty or inc.empty:
        return pd.DataFrame(columns=cols)
    g0 = base.groupby(["caller", "callee"])["link_ms"]
    b = pd.DataFrame({"base_calls": g0.size(), "base_p50_ms": g0.median(),
                      "base_p95_ms": g0.quantile(QUANTILE)})
    b = b[b["base_calls"] >= MIN_BASE_LINKS]
    j = inc.join(b, on=["caller", "callee"], how="inner")
    if j.empty:
        return pd.DataFrame(columns=cols)
    bar = np.maximum(j["base_p95_ms"], j["base_p50_ms"] + LINK_FLOOR_MS)
    j = j.assign(above=(j["link_ms"] > bar).astype(float))
    g1 = j.groupby(["caller", "callee"])
    out = b.join(pd.DataFrame({"incident_calls": g1.size(),
                               "incident_p50_ms": g1["link_ms"].median(),
                               "slow_share": g1["above"].mean()}), how="inner")
    out = out[out["incident_calls"] >= min_spans]
    n1, a1 = out["incident_calls"].to_numpy(float), out["slow_share"].to_numpy(float)
    out["sig"] = _above_sig(np.round(a1 * n1), n1)
    se = np.sqrt(share_var(a1, n1))
    out["effect"] = np.where(out["sig"] >= SIG_GATE,
                             np.clip(a1 - 2.0 * se - (1 - QUANTILE), 0.0, None), 0.0)
    return out.reset_index()[cols].sort_values("effect", ascending=False, ignore_index=True)


def link_text(r: Any) -> str:
    """One slow link in words, from a row of link_table (a dict or a Series)."""
    return (f"calls {r['caller']} -> {r['callee']}: {r['slow_share']:.0%} of "
            f"{int(r['incident_calls'])} slower than normal on the wire (link time p50 "
            f"{r['base_p50_ms']:.1f} ms -> {r['incident_p50_ms']:.1f} ms, baseline p95 "
            f"{r['base_p95_ms']:.1f} ms over {int(r['base_calls'])} calls)")


def _slow(base: pd.DataFrame, inc: pd.DataFrame, col: str) -> pd.DataFrame:
    """Per service: incident spans above their operation's baseline p95 of `col`, tested."""
    q = base.groupby(["service", "operation"])[col].agg(
        n="size", q=lambda v: float(np.quantile(v, QUANTILE)))
    q = q[q["n"] >= MIN_BASE_SPANS]
    j = inc.join(q, on=["service", "operation"], how="inner")
    j["above"] = j[col] > j["q"]
    g = j.groupby("service")["above"].agg(["sum", "size"])
    return pd.DataFrame({"service": g.index, f"{col}_slow": g["sum"].to_numpy(),
                         f"{col}_n": g["size"].to_numpy(),
                         f"{col}_sig": _above_sig(g["sum"].to_numpy(), g["size"].to_numpy())})


def _above_sig(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """-log10 p (capped at 50) of k of n above a baseline p95, against the 5% expected."""
    p = stats.binom.sf(np.asarray(k, float) - 1, np.asarray(n, float), 1 - QUANTILE)
    return np.minimum(-np.log10(np.maximum(p, 1e-300)), 50.0)


def _periods(rows: pd.DataFrame, baseline: tuple[pd.Timestamp, pd.Timestamp],
             incident: tuple[pd.Timestamp, pd.Timestamp], history: pd.DataFrame | None
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(baseline rows plus the history, incident rows) by `start`."""
    base = rows[(rows["start"] >= baseline[0]) & (rows["start"] < baseline[1])]
    if history is not None and not history.empty:
        base = pd.concat([base, history], ignore_index=True)
    return base, rows[(rows["start"] >= incident[0]) & (rows["start"] <= incident[1])]


def trace_evidence(
    spans: pd.DataFrame,
    baseline: tuple[pd.Timestamp, pd.Timestamp],
    incident: tuple[pd.Timestamp, pd.Timestamp],
    *,
    history: pd.DataFrame | None = None,
    min_spans: int = 3,
    links: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per service: latency (duration and self time) and call-count changes, error spans.

    Columns: duration_ms_sig / self_ms_sig (slow spans vs the operation's baseline p95),
    calls_down_sig / calls_up_sig (spans reaching the service, scaled by all spans: missing
    subtrees / retries), errors_sig (error spans, when the source has a status), link_slow
    (see `link_slow`; `links` is `link_table` of the same arguments when already computed),
    with counts. An empty frame when there are no spans in either period (traces missing,
    not "normal").
    """
    cols = ["service", "duration_ms_sig", "self_ms_sig", "calls_baseline", "calls_incident",
            "calls_down_sig", "calls_up_sig", "errors_sig", "link_slow"]
    if spans.empty:
        return pd.DataFrame(columns=cols)
    base, inc = _periods(with_self_time(spans), baseline, incident,
                         with_self_time(history) if history is not None and len(history)
                         else None)
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
    if links is None:
        links = link_table(spans, baseline, incident, history=history, min_spans=min_spans)
    out["link_slow"] = out["service"].map(link_slow(links)).fillna(0.0)
    return out[cols + [c for c in out.columns if c not in cols]]


def link_slow(links: pd.DataFrame) -> pd.Series:
    """Per service: the summed effect of the slow links it is an end of, times the share of
    its measured links that are slow. A pod whose network is delayed is an end of every slow
    link and of few normal ones; a caller of it has one slow link among its normal ones, a
    callee of it one slow link only (so a smaller sum)."""
    if links.empty:
        return pd.Series(dtype=float)
    touch = pd.concat([links[["caller", "effect"]].rename(columns={"caller": "service"}),
                       links[["callee", "effect"]].rename(columns={"callee": "service"})])
    g = touch.groupby("service")["effect"]
    return g.sum() * g.apply(lambda e: float((e > 0).mean()))
