"""Logs from CSV / NDJSON exports: nested runtime JSON, level from the prefix, stack traces."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from incident_lib.core.errors import SourceError
from incident_lib.sources import make_log_source
from incident_lib.sources.base import LOG_COLUMNS, LogSource
from incident_lib.sources.logfiles import level_from_message

T0 = pd.Timestamp("2026-03-01T10:00:00Z")
W = (T0 - pd.Timedelta("1min"), T0 + pd.Timedelta("10min"))
FIELDS = {"time": "Timestamp", "pod": "PodName", "message": "Log", "trace_id": "TraceID"}


def _docker(line: str, t: pd.Timestamp) -> str:
    return json.dumps({"log": line + "\n", "stream": "stdout", "time": t.isoformat()})


def _write(path: Path, rows: list[tuple[pd.Timestamp, str, str]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Timestamp", "PodName", "TraceID", "Log"])
        for t, pod, line in rows:
            w.writerow([t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z", pod, "tr1", _docker(line, t)])
    return path


def _src(tmp_path: Path, **extra: object) -> LogSource:
    return make_log_source({"kind": "files", "format": "csv",
                            "path": str(tmp_path / "*_log.csv"), "fields": FIELDS,
                            "message_format": "docker_json", **extra})


def _t(s: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=s)


def test_docker_json_message_level_and_pod_rule(tmp_path: Path) -> None:
    _write(tmp_path / "a_log.csv", [
        (_t(1), "orders-5b67c48447-mv5hb", "18:00:01.000 INFO  o.OrderService#12 saved order"),
        (_t(2), "orders-5b67c48447-mv5hb", "18:00:02.000 ERROR o.OrderService#40 no seat"),
        (_t(3), "pay-0", "plain line with no level, mentions ERROR later on in the text"),
    ])
    res = _src(tmp_path).read_logs(*W)
    df = res.frame
    assert list(df.columns) == LOG_COLUMNS
    assert df["message"].tolist()[1] == "18:00:02.000 ERROR o.OrderService#40 no seat"
    assert df["level"].tolist() == ["info", "error", None]
    assert df["service"].tolist() == ["orders", "orders", "pay"]
    assert df["host"].tolist()[0] == "orders-5b67c48447-mv5hb"
    assert df["trace_id"].tolist() == ["tr1"] * 3
    assert str(df["time"].dt.tz) == "UTC"
    assert res.notes["level"] == "from the line's JSON level key, else the message prefix"


@pytest.mark.parametrize(("msg", "level"), [
    ("2026-03-01 10:00:00,123 [main] WARN  c.Foo - slow", "warn"),
    ("[ERROR] boom", "error"),
    ("ts=1 level=error msg=x", "error"),
    ("E0301 10:00:00 something", None),
    ("the error rate is INFOrmative", None),
    ("a b c d e f ERROR too far in", None),
])
def test_level_rule(msg: str, level: str | None) -> None:
    assert level_from_message(pd.Series([msg])).iloc[0] == level


def test_stack_trace_joined_to_its_event(tmp_path: Path) -> None:
    pod = "orders-5b67c48447-mv5hb"
    _write(tmp_path / "a_log.csv", [
        (_t(1), pod, "10:00:01 ERROR o.Api failed to pay"),
        (_t(1.001), pod, "java.lang.IllegalStateException: No instances available for pay"),
        (_t(1.002), pod, "\tat o.Api.call(Api.java:10)"),
        (_t(1.0025), "other-0", "10:00:01 INFO unrelated pod in between"),
        (_t(1.003), pod, "Caused by: java.net.ConnectException: refused"),
        (_t(1.004), pod, "\t... 12 more"),
        (_t(2), pod, "10:00:02 INFO next event"),
    ])
    df = _src(tmp_path).read_logs(*W).frame
    assert len(df) == 3
    ev = df[df["level"] == "error"].iloc[0]
    assert ev["message"].splitlines() == [
        "10:00:01 ERROR o.Api failed to pay",
        "java.lang.IllegalStateException: No instances available for pay",
        "\tat o.Api.call(Api.java:10)", "Caused by: java.net.ConnectException: refused",
        "\t... 12 more"]
    assert ev["time"].floor("us") == _t(1)


def test_ndjson_with_cri_lines_and_mapped_level(tmp_path: Path) -> None:
    rows = [{"ts": _t(5).isoformat(), "k8s": {"pod": "api-0"}, "sev": "Warning",
             "line": "2026-03-01T10:00:05Z stderr F disk almost full"}]
    (tmp_path / "x.ndjson").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    src = make_log_source({"kind": "files", "format": "ndjson", "path": str(tmp_path / "x.ndjson"),
                           "fields": {"time": "ts", "pod": "k8s.pod", "level": "sev",
                                      "message": "line"}, "message_format": "cri"})
    df = src.read_logs(*W).frame
    assert df[["service", "level", "message"]].values.tolist() == [
        ["api", "warning", "disk almost full"]]


def test_counts_keep_missing_level_as_none(tmp_path: Path) -> None:
    _write(tmp_path / "a_log.csv", [(_t(1), "a-0", "no level here"),
                                    (_t(2), "a-0", "x ERROR y")])
    counts = _src(tmp_path).count_over_time(*W, "1min", ["service", "level"])
    levels = counts.frame["level"].tolist()
    assert "error" in levels and sum(pd.isna(v) for v in levels) == 1


def test_missing_column_names_file_and_field(tmp_path: Path) -> None:
    _write(tmp_path / "a_log.csv", [(_t(1), "a-0", "x")])
    (tmp_path / "b_log.csv").write_text(f"Timestamp,Pod,Log\n{_t(1).isoformat()},a-0,x\n")
    with pytest.raises(SourceError, match=r"^b_log.csv:1: column 'PodName' for field 'pod'"):
        _src(tmp_path).read_logs(*W)


def test_unparseable_times(tmp_path: Path) -> None:
    path = _write(tmp_path / "a_log.csv", [(_t(1), "a-0", "x INFO y")])
    path.write_text(path.read_text() + 'soon,a-0,tr,"{""log"": ""z""}"\n')
    res = _src(tmp_path).read_logs(*W)
    assert len(res.frame) == 1
    assert any(w.startswith("a_log.csv:3: field 'time' (column 'Timestamp') value 'soon'")
               for w in res.warnings)


def test_no_matching_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no file matches"):
        _src(tmp_path).read_logs(*W)


def test_sampling_is_stated(tmp_path: Path) -> None:
    _write(tmp_path / "a_log.csv", [(_t(i), "a-0", f"INFO line {i}") for i in range(50)])
    res = _src(tmp_path).read_logs(*W, limit=10)
    assert len(res.frame) == 10 and res.notes["matched"] == 50
    assert "sample" in res.notes["sampling"]


def test_row_with_extra_values_is_skipped_and_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "a_log.csv", [(_t(1), "a-0", "x INFO y"), (_t(2), "a-0", "z")])
    lines = path.read_text().splitlines()
    lines.insert(2, lines[1] + ",extra,values")
    path.write_text("\n".join(lines) + "\n")
    res = _src(tmp_path).read_logs(*W)
    assert len(res.frame) == 2
    assert any(w.startswith("a_log.csv") and "row has 6 values, the header 4" in w
               for w in res.warnings)


def test_text_log_header_format_still_goes_to_the_text_reader(tmp_path: Path) -> None:
    from incident_lib.sources.files import FilesLogSource
    from incident_lib.sources.logfiles import TableLogSource

    (tmp_path / "app.log").write_text("2026-03-01 10:00:00 INFO started\n")
    text = make_log_source({"kind": "files", "path": str(tmp_path / "app.log"),
                            "format": "<Date> <Time> <Level> <Content>"})
    assert isinstance(text, FilesLogSource)
    _write(tmp_path / "a_log.csv", [(_t(1), "a-0", "x")])
    assert isinstance(_src(tmp_path), TableLogSource)


def test_path_list_reads_files_of_two_folders_once(tmp_path: Path) -> None:
    """An incident export and a fault-free export in another folder, named by two globs that
    also overlap: every line is read once."""
    (tmp_path / "inc").mkdir()
    (tmp_path / "normal").mkdir()
    _write(tmp_path / "inc" / "a_log.csv", [(_t(1), "pay-0", "18:00:01.000 INFO  paid")])
    _write(tmp_path / "normal" / "b_log.csv", [(_t(2), "pay-0", "18:00:02.000 INFO  paid")])
    src = make_log_source({"kind": "files", "format": "csv", "fields": FIELDS,
                           "message_format": "docker_json",
                           "path": [str(tmp_path / "inc/*_log.csv"),
                                    str(tmp_path / "normal/*_log.csv"),
                                    str(tmp_path / "*/a_log.csv")]})
    df = src.read_logs(*W).frame
    assert df["time"].dt.floor("s").tolist() == [_t(1), _t(2)]


def test_structured_json_lines_give_message_and_level(tmp_path: Path) -> None:
    """App lines that are JSON objects (logrus/zap, Python JSON, pino, ECS) inside the
    runtime's wrapper: the message and level come from their keys, an error field is kept
    with the message; a line that is not a JSON object stays as it is."""
    go = json.dumps({"http.req.id": "5f1c", "message": "request error", "severity": "error",
                     "error": "rpc error: code = Unavailable desc = connection refused",
                     "timestamp": "2026-03-01T10:00:01Z"})
    py = json.dumps({"timestamp": "2026-03-01T10:00:02Z", "severity": "INFO",
                     "name": "recs-server", "message": "List Recommendations"})
    pino = json.dumps({"level": 50, "time": 1772359203000, "msg": "conversion failed",
                       "err": {"type": "Error", "message": "rates unavailable"}})
    ecs = json.dumps({"@timestamp": "2026-03-01T10:00:04Z", "log.level": "WARN",
                      "message": "retrying"})
    nested = json.dumps({"log": {"level": "debug"}, "msg": "cache hit"})
    _write(tmp_path / "a_log.csv", [
        (_t(1), "frontend-579b9bff58-t2dbm", go),
        (_t(2), "recs-6cfdd55578-gfj6q", py),
        (_t(3), "currency-cf787dd48-vpjrd", pino),
        (_t(4), "cart-579f59597d-wc2lz", ecs),
        (_t(5), "cart-579f59597d-wc2lz", nested),
        (_t(6), "cart-579f59597d-wc2lz", '{"unterminated": "x"'),
        (_t(7), "cart-579f59597d-wc2lz", '["a", "list"]'),
    ])
    res = _src(tmp_path).read_logs(*W)
    df = res.frame
    assert df["message"].tolist() == [
        "request error (error: rpc error: code = Unavailable desc = connection refused)",
        "List Recommendations",
        "conversion failed (error: rates unavailable)",
        "retrying",
        "cache hit",
        '{"unterminated": "x"',
        '["a", "list"]',
    ]
    assert df["level"].tolist() == ["error", "info", "error", "warn", "debug", None, None]
    assert res.notes["level"] == "from the line's JSON level key, else the message prefix"


def test_structured_lines_can_be_switched_off_and_a_mapped_level_wins(tmp_path: Path) -> None:
    line = json.dumps({"severity": "error", "message": "boom"})
    _write(tmp_path / "a_log.csv", [(_t(1), "web-0", line)])
    off = _src(tmp_path, structured=False).read_logs(*W).frame
    assert off["message"].tolist() == [line]
    assert off["level"].tolist() == [None]
    fields = {**FIELDS, "level": "TraceID"}  # any mapped column: it wins over the JSON key
    mapped = _src(tmp_path, fields=fields).read_logs(*W).frame
    assert mapped["message"].tolist() == ["boom"]
    assert mapped["level"].tolist() == ["tr1"]


def test_structured_level_values_that_are_not_levels_give_none(tmp_path: Path) -> None:
    """JSON allows NaN and Infinity; a level key may hold any text. Neither crashes the reader
    nor becomes a level: NaN, Infinity, unknown numbers, long or non-word text give None."""
    lines = ['{"level": NaN, "msg": "a"}', '{"level": Infinity, "msg": "b"}',
             '{"level": 35, "msg": "c"}', '{"level": "' + "x" * 500 + '", "msg": "d"}',
             '{"level": "err: <b>", "msg": "e"}', '{"level": "Emerg", "msg": "f"}']
    _write(tmp_path / "a_log.csv", [(_t(i + 1), "web-0", line) for i, line in enumerate(lines)])
    df = _src(tmp_path).read_logs(*W).frame
    assert df["message"].tolist() == ["a", "b", "c", "d", "e", "f"]
    assert df["level"].tolist() == [None, None, None, None, None, "emerg"]


def test_structured_line_nested_beyond_the_parser_stays_text(tmp_path: Path) -> None:
    """A hostile line of 50,000 nested objects is kept as text (no RecursionError)."""
    deep = '{"a":' * 50_000 + "1" + "}" * 50_000
    _write(tmp_path / "a_log.csv", [(_t(1), "web-0", deep), (_t(2), "web-0", '{"msg": "ok"}')])
    df = _src(tmp_path).read_logs(*W).frame
    assert df["message"].tolist() == [deep, "ok"]


def test_ndjson_line_nested_beyond_the_parser_is_skipped_and_named(tmp_path: Path) -> None:
    """The mapped NDJSON reader skips such a line and says so."""
    ok = json.dumps({"ts": _t(5).isoformat(), "pod": "api-0", "line": "fine"})
    deep = '{"a":' * 50_000 + "1" + "}" * 50_000
    (tmp_path / "x.ndjson").write_text(ok + "\n" + deep + "\n")
    src = make_log_source({"kind": "files", "format": "ndjson", "path": str(tmp_path / "x.ndjson"),
                           "fields": {"time": "ts", "pod": "pod", "message": "line"}})
    res = src.read_logs(*W)
    assert res.frame["message"].tolist() == ["fine"]
    assert any("x.ndjson:2" in w and "nested too deeply" in w for w in res.warnings)
