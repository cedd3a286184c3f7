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
