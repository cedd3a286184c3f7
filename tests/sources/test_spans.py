"""Spans from CSV, NDJSON and OTLP JSON through a mapping; bad input named precisely."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from incident_lib.core.errors import SourceError
from incident_lib.sources import make_span_source
from incident_lib.sources.base import SPAN_COLUMNS, SpanSource

T0 = pd.Timestamp("2026-03-01T10:00:00Z")
NS = int(T0.value)
W = (T0 - pd.Timedelta("1min"), T0 + pd.Timedelta("10min"))
CSV_FIELDS = {"trace_id": "TraceID", "span_id": "SpanID", "parent_id": "ParentID",
              "pod": "PodName", "operation": "OperationName", "start": "StartTimeUnixNano",
              "end": "EndTimeUnixNano"}


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,"
                    "EndTimeUnixNano\n" + "\n".join(rows) + "\n")
    return path


def _src(tmp_path: Path, **extra: object) -> SpanSource:
    spec = {"kind": "files", "format": "csv", "path": str(tmp_path / "*_trace.csv"),
            "fields": CSV_FIELDS, "time_unit": "ns", "root_parent": ["root"], **extra}
    return make_span_source(spec)


def test_csv_spans_with_pod_rule_and_roots(tmp_path: Path) -> None:
    _csv(tmp_path / "a_trace.csv", [
        f"t1,s1,root,gateway-6f6cfc45b-h5m2n,/*,{NS},{NS + 300_000_000}",
        f"t1,s2,s1,orders-5b67c48447-mv5hb,GET /orders,{NS + 10_000_000},{NS + 250_000_000}",
    ])
    res = _src(tmp_path).spans(*W)
    df = res.frame
    assert list(df.columns) == SPAN_COLUMNS
    assert df["service"].tolist() == ["gateway", "orders"]
    assert df["pod"].tolist()[1] == "orders-5b67c48447-mv5hb"
    assert df["parent_id"].tolist() == [None, "s1"]
    assert df["duration_ms"].tolist() == pytest.approx([300.0, 240.0])
    assert str(df["start"].dt.tz) == "UTC" and df["start"].iloc[0] == T0
    assert df["status"].isna().all()  # the export has no status: unknown, not "ok"
    assert not res.partial and res.notes["orphans"] == 0
    assert _src(tmp_path).services() == ["gateway", "orders"]  # every file, any time


def test_window_and_service_filter(tmp_path: Path) -> None:
    _csv(tmp_path / "a_trace.csv", [
        f"t1,s1,root,gateway-6f6cfc45b-h5m2n,/*,{NS},{NS + 1000}",
        f"t2,s9,root,gateway-6f6cfc45b-h5m2n,/*,{NS + 3600 * 10**9},{NS + 3600 * 10**9 + 5}",
        f"t1,s2,s1,orders-5b67c48447-mv5hb,GET,{NS + 10},{NS + 500}",
    ])
    res = _src(tmp_path).spans(*W, services=["orders"])
    assert res.frame["span_id"].tolist() == ["s2"]


def test_missing_parent_is_counted_and_cycle_is_dropped_partial(tmp_path: Path) -> None:
    _csv(tmp_path / "a_trace.csv", [
        f"t1,s1,root,a-0,op,{NS},{NS + 10}",
        f"t1,s2,gone,b-0,op,{NS + 1},{NS + 9}",      # parent not in the data
        f"t2,c1,c2,c-0,op,{NS + 2},{NS + 9}",        # c1 -> c2 -> c1: a cycle
        f"t2,c2,c1,c-0,op,{NS + 3},{NS + 9}",
    ])
    res = _src(tmp_path).spans(*W)
    assert res.frame["span_id"].tolist() == ["s1", "s2"]
    assert res.partial and res.notes["cycles"] == 2 and res.notes["orphans"] == 1
    assert any("a_trace.csv:4" in w and "cycle" in w for w in res.warnings)
    assert any("parent that is not in the data" in w for w in res.warnings)


def test_missing_column_names_file_line_and_field(tmp_path: Path) -> None:
    _csv(tmp_path / "a_trace.csv", [f"t1,s1,root,a-0,op,{NS},{NS + 10}"])
    (tmp_path / "b_trace.csv").write_text("TraceID,SpanId,ParentID,PodName,OperationName,"
                                          f"StartTimeUnixNano,EndTimeUnixNano\nt,s,root,a-0,op,"
                                          f"{NS},{NS + 10}\n")
    with pytest.raises(SourceError, match=r"^b_trace.csv:1: column 'SpanID' for field "
                                          r"'span_id' is missing"):
        _src(tmp_path).spans(*W)


def test_unparseable_time_names_line_and_skips_row(tmp_path: Path) -> None:
    _csv(tmp_path / "a_trace.csv", [f"t1,s1,root,a-0,op,{NS},{NS + 10}",
                                    f"t1,s2,s1,a-0,op,yesterday,{NS + 10}"])
    res = _src(tmp_path).spans(*W)
    assert res.frame["span_id"].tolist() == ["s1"]
    assert any("a_trace.csv:3: field 'start'" in w and "'yesterday'" in w
               for w in res.warnings)
    (tmp_path / "a_trace.csv").write_text("TraceID,SpanID,ParentID,PodName,OperationName,"
                                          "StartTimeUnixNano,EndTimeUnixNano\nt,s,root,a-0,op,x,y\n")
    with pytest.raises(SourceError, match=r"a_trace.csv:2: field 'start'"):
        _src(tmp_path).spans(*W)


def test_ndjson_with_duration_and_status(tmp_path: Path) -> None:
    lines = [{"trace": {"id": "t1"}, "span": {"id": "s1"}, "svc": "api", "ts": T0.isoformat(),
              "dur_us": 1500, "code": "500"},
             {"trace": {"id": "t1"}, "span": {"id": "s2"}, "parent": "s1", "svc": "db",
              "ts": (T0 + pd.Timedelta("1ms")).isoformat(), "dur_us": 700, "code": "OK"}]
    (tmp_path / "spans.ndjson").write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    src = make_span_source({"kind": "files", "format": "ndjson",
                            "path": str(tmp_path / "spans.ndjson"),
                            "fields": {"trace_id": "trace.id", "span_id": "span.id",
                                       "parent_id": "parent", "service": "svc", "start": "ts",
                                       "duration": "dur_us", "status": "code"},
                            "duration_unit": "us"})
    res = src.spans(*W)
    df = res.frame
    assert df["service"].tolist() == ["api", "db"]
    assert df["duration_ms"].tolist() == pytest.approx([1.5, 0.7])
    assert df["status"].tolist() == ["error", "ok"]
    assert df["parent_id"].tolist() == [None, "s1"]
    assert any("spans.ndjson:3" in w for w in res.warnings)
    assert src.services() == ["api", "db"]


def test_otlp_json(tmp_path: Path) -> None:
    doc = {"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "checkout"}},
            {"key": "k8s.pod.name", "value": {"stringValue": "checkout-866bd68c97-xcqfx"}}]},
        "scopeSpans": [{"spans": [
            {"traceId": "aa", "spanId": "01", "name": "POST /pay",
             "startTimeUnixNano": str(NS), "endTimeUnixNano": str(NS + 2_000_000),
             "status": {"code": 2}},
            {"traceId": "aa", "spanId": "02", "parentSpanId": "01", "name": "SELECT",
             "startTimeUnixNano": str(NS + 100), "endTimeUnixNano": str(NS + 1_000_100),
             "status": {}}]}]}]}
    (tmp_path / "otlp.json").write_text(json.dumps(doc))
    src = make_span_source({"kind": "files", "format": "otlp",
                            "path": str(tmp_path / "otlp.json")})
    assert src.services() == ["checkout"]
    res = src.spans(*W)
    df = res.frame
    assert df["service"].tolist() == ["checkout", "checkout"]
    assert df["operation"].tolist() == ["POST /pay", "SELECT"]
    assert df["status"].tolist() == ["error", "ok"]
    assert df["duration_ms"].tolist() == pytest.approx([2.0, 1.0])
    assert df["parent_id"].tolist() == [None, "01"]


def test_no_spans_configured_is_empty_and_says_so() -> None:
    res = make_span_source(None).spans(*W)
    assert res.empty and list(res.frame.columns) == SPAN_COLUMNS
    assert res.warnings == ["no spans configured"]


def test_only_overlapping_files_are_parsed(tmp_path: Path) -> None:
    _csv(tmp_path / "a_trace.csv", [f"t1,s1,root,a-0,op,{NS},{NS + 10}"])
    late = NS + 6 * 3600 * 10**9
    far = _csv(tmp_path / "b_trace.csv", [f"t9,s9,root,a-0,op,{late},{late + 10}"])
    res = _src(tmp_path).spans(*W)
    assert res.notes["files"] == ["a_trace.csv"]
    far.write_text(far.read_text() + "garbage that would not parse,,,\n")
    assert _src(tmp_path).spans(*W).frame["span_id"].tolist() == ["s1"]


def test_span_ids_repeated_in_other_traces_are_no_cycle_and_no_parent(tmp_path: Path) -> None:
    """Span ids numbered within each trace: t2's s1 names s2 as its parent, and s2 exists
    only in t1, whose s2 is a child of t1's s1. That is a missing parent, not a cycle."""
    _csv(tmp_path / "a_trace.csv", [
        f"t1,s1,root,a-0,op,{NS},{NS + 10}",
        f"t1,s2,s1,b-0,op,{NS + 1},{NS + 9}",
        f"t2,s0,root,a-0,op,{NS + 2},{NS + 9}",
        f"t2,s1,s2,b-0,op,{NS + 3},{NS + 9}",
    ])
    res = _src(tmp_path).spans(*W)
    assert len(res.frame) == 4 and res.notes["cycles"] == 0 and not res.partial
    assert res.notes["orphans"] == 1
