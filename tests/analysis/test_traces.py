"""Traces: call graph, self time (slow callee vs its callers), missing subtrees."""

from __future__ import annotations

import pandas as pd
import pytest

from incident_lib.analysis.traces import call_graph, latency_table, trace_evidence, with_self_time

T0 = pd.Timestamp("2026-01-01T10:00:00Z")
BASE = (T0, T0 + pd.Timedelta("20min"))
INC = (T0 + pd.Timedelta("20min"), T0 + pd.Timedelta("30min"))


def _trace(i: int, minute: float, db_ms: float, with_db: bool = True) -> list[dict]:
    """frontend -> checkout -> db; frontend and checkout add 5 ms of their own."""
    start = T0 + pd.Timedelta(minutes=minute)
    db = db_ms if with_db else 0.0
    rows = [{"trace_id": f"t{i}", "span_id": f"{i}-f", "parent_id": None, "service": "frontend",
             "operation": "GET /", "start": start, "duration_ms": 10 + db, "status": None},
            {"trace_id": f"t{i}", "span_id": f"{i}-c", "parent_id": f"{i}-f",
             "service": "checkout", "operation": "pay", "start": start,
             "duration_ms": 5 + db, "status": None}]
    if with_db:
        rows.append({"trace_id": f"t{i}", "span_id": f"{i}-d", "parent_id": f"{i}-c",
                     "service": "db", "operation": "select", "start": start,
                     "duration_ms": db, "status": None})
    return rows


def _spans(inc_db_ms: float, inc_with_db: bool = True) -> pd.DataFrame:
    rows = []
    for i in range(200):
        rows += _trace(i, i * 0.1, 2 + (i % 10) * 0.1)
    for i in range(200, 300):
        rows += _trace(i, 20 + (i - 200) * 0.1, inc_db_ms, inc_with_db)
    return pd.DataFrame(rows)


def test_call_graph_from_spans() -> None:
    assert call_graph(_spans(3)) == {"checkout": ["db"], "frontend": ["checkout"]}


def test_self_time_blames_the_slow_callee_not_its_callers() -> None:
    s = with_self_time(_spans(300))
    assert s.loc[s["service"] == "frontend", "self_ms"].max() == pytest.approx(5)  # own 5 ms
    out = trace_evidence(_spans(300), BASE, INC).set_index("service")
    assert out.loc["db", "self_ms_sig"] > 10
    assert out.loc["frontend", "duration_ms_sig"] > 10  # callers are slower end to end ...
    assert out.loc["frontend", "self_ms_sig"] < 2  # ... but not in their own time
    assert out.loc["checkout", "self_ms_sig"] < 2


def test_missing_subtree_shows_as_fewer_calls() -> None:
    out = trace_evidence(_spans(3, inc_with_db=False), BASE, INC).set_index("service")
    assert out.loc["db", "calls_down_sig"] > 10
    assert out.loc["frontend", "calls_down_sig"] < 2


def test_no_spans_is_missing_not_normal() -> None:
    empty = pd.DataFrame(columns=["trace_id", "span_id", "parent_id", "service", "operation",
                                  "start", "duration_ms", "status"])
    assert trace_evidence(empty, BASE, INC).empty
    assert call_graph(empty) == {}


def test_latency_table_per_edge() -> None:
    t = latency_table(_spans(3)).set_index(["caller", "service"])
    assert t.loc[("checkout", "db"), "spans"] == 300
    assert t.loc[("(root)", "frontend"), "p50_ms"] >= 10


def _per_trace_ids() -> pd.DataFrame:
    """Two traces whose exporter numbers spans from 1 within each trace (as Zipkin v1 and
    some span tables do): the same span id means another span in another trace."""
    return pd.DataFrame([
        {"trace_id": "a", "span_id": "1", "parent_id": None, "service": "gateway",
         "operation": "GET /", "start": T0, "duration_ms": 100.0, "status": None},
        {"trace_id": "a", "span_id": "2", "parent_id": "1", "service": "orders",
         "operation": "list", "start": T0, "duration_ms": 90.0, "status": None},
        {"trace_id": "b", "span_id": "1", "parent_id": None, "service": "search",
         "operation": "GET /q", "start": T0, "duration_ms": 50.0, "status": None},
        {"trace_id": "b", "span_id": "2", "parent_id": "1", "service": "catalog",
         "operation": "find", "start": T0, "duration_ms": 10.0, "status": None}])


def test_span_ids_are_read_within_their_trace() -> None:
    spans = _per_trace_ids()
    assert call_graph(spans) == {"gateway": ["orders"], "search": ["catalog"]}
    s = with_self_time(spans).set_index("service")
    assert s.loc["gateway", "self_ms"] == pytest.approx(10.0)  # 100 - its own child's 90
    assert s.loc["search", "self_ms"] == pytest.approx(40.0)
    assert s.loc["catalog", "caller"] == "search" and s.loc["orders", "caller"] == "gateway"
    assert s.loc["orders", "span_id"] == "2"  # the ids a user sees are kept as they were


def _span(i: int, start: pd.Timestamp, sid: str, parent: str | None, service: str,
          op: str, own: float) -> dict:
    return {"trace_id": f"t{i}", "span_id": f"{i}{sid}",
            "parent_id": f"{i}{parent}" if parent else None, "service": service,
            "operation": op, "start": start, "duration_ms": own, "status": None}


def _delay_traces(delayed: str | None, ms: float = 120.0) -> pd.DataFrame:
    """front -> a -> c -> d and front -> b -> c, every call through a client span of the
    caller (as OpenTelemetry agents record it). A network delay on `delayed` adds `ms` to each
    call it is an end of, in the incident window only: its callers wait for its answers and
    its own calls leave late. Server spans of the delayed pod keep their own time."""
    rows: list[dict] = []
    for i in range(300):
        start = T0 + pd.Timedelta(minutes=i * 0.1)
        late = delayed is not None and i >= 200
        jitter = 1.0 + (i % 7) * 0.2
        chain = [("f", None, "front"), ("v", "f", "a" if i % 2 else "b"), ("c", "v", "c"),
                 ("d", "c", "d")]
        spans: list[dict] = []
        owner = {}
        for sid, parent, service in chain:
            owner[sid] = service
            if parent:  # the caller's client span: its time on the wire is the link time
                wire = jitter + (ms if late and delayed in (service, owner[parent]) else 0.0)
                spans.append(_span(i, start, f"{parent}x", parent, owner[parent], "HTTP GET",
                                   wire))
            spans.append(_span(i, start, sid, f"{parent}x" if parent else None, service,
                               f"{service} op", 2.0))
        # durations: each span's own time plus its children's, bottom-up
        by_id = {s["span_id"]: s for s in spans}
        for s in reversed(spans):
            if s["parent_id"]:
                by_id[s["parent_id"]]["duration_ms"] += s["duration_ms"]
        rows += spans
    return pd.DataFrame(rows)


def test_a_delayed_pod_is_the_end_of_every_slow_link_and_leads_the_link_kind() -> None:
    from incident_lib.analysis.rootcause import RankConfig, evidence_table, rank_services
    from incident_lib.analysis.traces import link_table

    quiet = trace_evidence(_delay_traces(None), BASE, INC).set_index("service")
    assert (quiet["link_slow"] == 0).all()  # no delay, no slow link
    spans = _delay_traces("c")
    lt = link_table(spans, BASE, INC)
    slow = {(r.caller, r.callee) for r in lt.itertuples() if r.effect > 0}
    assert slow == {("a", "c"), ("b", "c"), ("c", "d")}  # front's calls are as fast as ever
    row = lt.set_index(["caller", "callee"]).loc[("c", "d")]
    assert row["base_p50_ms"] < 3 and row["incident_p50_ms"] > 120
    out = trace_evidence(spans, BASE, INC).set_index("service")
    assert out["link_slow"].idxmax() == "c"
    # self time flags the callers' client spans as much (they wait on the wire): it cannot
    # tell the delayed pod from its callers; the links' ends can
    assert out.loc["a", "self_ms_sig"] > 10 and out.loc["b", "self_ms_sig"] > 10
    assert out.loc["c", "link_slow"] > 2 * out.loc[["a", "b", "d"], "link_slow"].max()
    ranked = rank_services(evidence_table(traces=out.reset_index()), RankConfig(),
                           calls=call_graph(spans))
    assert ranked.iloc[0]["service"] == "c" and ranked.iloc[0]["rank"] == 1
    assert set(ranked.iloc[1:]["service"]) <= {"a", "b", "d"}


def test_a_call_whose_parent_has_several_children_has_no_link_time() -> None:
    """A span that calls two services itself (no client span per call): its own time cannot be
    split between the two calls, so neither call gets a link time."""
    from incident_lib.analysis.traces import link_table

    rows = []
    for i in range(300):
        start = T0 + pd.Timedelta(minutes=i * 0.1)
        slow = 200.0 if i >= 200 else 1.0
        rows += [{"trace_id": f"t{i}", "span_id": "p", "parent_id": None, "service": "front",
                  "operation": "GET /", "start": start, "duration_ms": 10.0 + slow,
                  "status": None}]
        rows += [{"trace_id": f"t{i}", "span_id": s, "parent_id": "p", "service": s,
                  "operation": "op", "start": start, "duration_ms": 5.0, "status": None}
                 for s in ("x", "y")]
    assert link_table(pd.DataFrame(rows), BASE, INC).empty
