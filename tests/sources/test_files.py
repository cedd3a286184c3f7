"""Files backend: windows, sampling notes, malformed lines."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from incident_lib.core.errors import SourceError
from incident_lib.sources.filemetrics import FilesMetricSource
from incident_lib.sources.files import FilesChangeSource, FilesLogSource


def _logs(path: Path, n: int = 100, bad_line: int | None = None) -> Path:
    rows = []
    for i in range(n):
        rows.append(json.dumps({"@timestamp": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
                                "service.name": "a" if i % 2 else "b", "log.level": "info",
                                "message": f"hello {i}"}))
    if bad_line is not None:
        rows.insert(bad_line - 1, '{"@timestamp": "2026-01-01T00:00:00Z", broken')
    path.write_text("\n".join(rows) + "\n")
    return path


def test_read_logs_window_and_services(tmp_path: Path) -> None:
    src = FilesLogSource(_logs(tmp_path / "l.ndjson"))
    res = src.read_logs(pd.Timestamp("2026-01-01T00:00:10Z"), pd.Timestamp("2026-01-01T00:00:19Z"),
                        services=["a"])
    assert list(res.frame["message"]) == [f"hello {i}" for i in range(11, 20, 2)]
    assert res.notes == {"matched": 5, "read": 5, "sampling": "all lines"}


def test_read_logs_cap_reports_sampling(tmp_path: Path) -> None:
    src = FilesLogSource(_logs(tmp_path / "l.ndjson"))
    res = src.read_logs(pd.Timestamp("2026-01-01T00:00:00Z"), pd.Timestamp("2026-01-01T01:00:00Z"),
                        limit=10)
    assert len(res.frame) == 10
    assert res.notes["matched"] == 100 and res.notes["read"] == 10
    assert "sample" in res.notes["sampling"]
    assert res.frame["time"].is_monotonic_increasing


def test_malformed_line_is_skipped_with_its_number(tmp_path: Path) -> None:
    src = FilesLogSource(_logs(tmp_path / "l.ndjson", bad_line=7))
    res = src.read_logs(pd.Timestamp("2026-01-01T00:00:00Z"), pd.Timestamp("2026-01-01T01:00:00Z"))
    assert len(res.frame) == 100
    assert any("l.ndjson:7" in w for w in res.warnings)


def test_a_line_nested_20000_deep_is_skipped_not_a_crash(tmp_path: Path) -> None:
    """Arrow's JSON parser crashed the whole process (SIGSEGV) on such a line: a hostile log
    line must cost one skipped line, named, never the investigation."""
    path = _logs(tmp_path / "l.ndjson")
    with open(path, "a") as fh:
        fh.write('{"a":' * 20_000 + "1" + "}" * 20_000 + "\n")
    res = FilesLogSource(path).read_logs(pd.Timestamp("2026-01-01T00:00:00Z"),
                                         pd.Timestamp("2026-01-01T01:00:00Z"))
    assert len(res.frame) == 100
    assert any("l.ndjson:101" in w and "nested too deeply" in w for w in res.warnings)


def test_empty_log_file_gives_no_rows(tmp_path: Path) -> None:
    (tmp_path / "l.ndjson").write_text("")
    res = FilesLogSource(tmp_path / "l.ndjson").read_logs(
        pd.Timestamp("2026-01-01T00:00:00Z"), pd.Timestamp("2026-01-01T01:00:00Z"))
    assert res.empty and any("empty" in w for w in res.warnings)


def test_count_over_time(tmp_path: Path) -> None:
    src = FilesLogSource(_logs(tmp_path / "l.ndjson", n=120))
    res = src.count_over_time(pd.Timestamp("2026-01-01T00:00:00Z"),
                              pd.Timestamp("2026-01-01T01:00:00Z"), "1min", ["service"])
    assert res.frame["count"].sum() == 120
    assert set(res.frame["count"]) == {30}


def test_changes_and_metrics_on_demo(demo_data: Path) -> None:
    ch = FilesChangeSource(demo_data / "changes.ndjson").changes(
        pd.Timestamp("2026-11-20T00:00Z"), pd.Timestamp("2026-11-21T00:00Z"))
    assert list(ch.frame["id"]) == [f"chg-100{i}" for i in range(1, 7)]
    m = FilesMetricSource(demo_data / "metrics.om")
    assert m.services() == ["checkout", "frontend", "inventory", "payments", "postgres"]
    res = m.query_signal("error_rate", pd.Timestamp("2026-11-20T10:50Z"),
                         pd.Timestamp("2026-11-20T11:00Z"), 60, filters={"service": "payments"})
    assert set(res.frame["service"]) == {"payments"}
    assert res.frame["value"].median() > 0.3


_BASE = 1795165205  # 2026-11-20T09:00:05Z
_WINDOW = (pd.Timestamp(_BASE, unit="s", tz="UTC"), pd.Timestamp(_BASE + 600, unit="s", tz="UTC"))


def _epoch_rows(mult: int) -> list[dict]:
    return [{"@timestamp": (_BASE + i * 60) * mult, "service.name": "a", "log.level": "error",
             "message": f"m{i}"} for i in range(5)]


@pytest.mark.parametrize("unit, mult, word", [("s", 1, "seconds"), ("ms", 1000, "milliseconds"),
                                              ("us", 10**6, "microseconds"),
                                              ("ns", 10**9, "nanoseconds")])
@pytest.mark.parametrize("fmt", ["ndjson", "parquet"])
def test_epoch_number_timestamps_are_read_and_their_unit_stated(
        tmp_path: Path, unit: str, mult: int, word: str, fmt: str) -> None:
    rows = _epoch_rows(mult)
    path = tmp_path / f"l.{fmt}"
    if fmt == "ndjson":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    res = FilesLogSource(path).read_logs(*_WINDOW)
    assert [t.isoformat() for t in res.frame["time"]] == [
        pd.Timestamp(_BASE + i * 60, unit="s", tz="UTC").isoformat() for i in range(5)]
    assert f"@timestamp holds epoch numbers, read as {word} since 1970" in res.warnings[0]
    counts = FilesLogSource(path).count_over_time(*_WINDOW, "1min", ["service"])
    assert int(counts.frame["count"].sum()) == 5


@pytest.mark.parametrize("fmt", ["ndjson", "parquet"])
def test_nested_ecs_objects_are_read_like_dotted_names(tmp_path: Path, fmt: str) -> None:
    rows = [{"@timestamp": f"2026-11-20T09:0{i}:05Z", "service": {"name": "pay"},
             "log": {"level": "error"}, "host": {"name": "h1"}, "message": f"m{i}"}
            for i in range(3)]
    path = tmp_path / f"l.{fmt}"
    if fmt == "ndjson":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    res = FilesLogSource(path).read_logs(*_WINDOW)
    assert list(res.frame["service"]) == ["pay"] * 3
    assert list(res.frame["level"]) == ["error"] * 3
    assert list(res.frame["host"]) == ["h1"] * 3


def test_a_truncated_parquet_file_is_one_clear_error(tmp_path: Path) -> None:
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.Table.from_pylist(_epoch_rows(1000)), whole)
    cut = tmp_path / "logs.parquet"
    data = whole.read_bytes()
    cut.write_bytes(data[:int(len(data) * 0.8)])
    with pytest.raises(SourceError, match=r"logs.parquet is not a readable Parquet file .*: "
                                          "export it again"):
        FilesLogSource(cut).read_logs(*_WINDOW)


def test_sub_millisecond_iso_times_are_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "l.ndjson"
    path.write_text(json.dumps({"@timestamp": "2026-11-20T09:01:05.123456789Z",
                                "service.name": "a", "message": "x", "extra": [1]}) + "\n")
    res = FilesLogSource(path).read_logs(*_WINDOW)
    assert res.frame["time"].iloc[0].isoformat() == "2026-11-20T09:01:05.123000+00:00"


def test_a_skipped_line_warning_never_repeats_personal_data(tmp_path: Path) -> None:
    path = tmp_path / "l.ndjson"
    path.write_text(json.dumps({"@timestamp": "bob@example.com 4111 1111 1111 1111",
                                "service.name": "a", "message": "x"}) + "\n" +
                    json.dumps({"@timestamp": "2026-11-20T09:01:05Z", "service.name": "a",
                                "message": "y"}) + "\n")
    res = FilesLogSource(path).read_logs(*_WINDOW)
    assert len(res.frame) == 1
    assert res.warnings and res.warnings[0].startswith("l.ndjson:1: skipped malformed line")
    assert "bob@example.com" not in str(res.warnings) and "4111" not in str(res.warnings)
def _om(path: Path, every: int, metrics: tuple[str, ...] = ("http_requests_total",)) -> Path:
    lines = []
    for name in metrics:
        lines.append(f"# TYPE {name.removesuffix('_total')} counter")
        for i in range(30):
            lines.append(f'{name}{{service="api"}} {10 * every * i} {1_800_000_000 + every * i}')
    path.write_text("\n".join(lines) + "\n# EOF\n")
    return path


def test_counter_sampled_every_60s_is_explained_not_silent(tmp_path: Path) -> None:
    src = FilesMetricSource(_om(tmp_path / "m.om", 60))
    t0 = pd.Timestamp(1_800_000_000, unit="s", tz="UTC")
    res = src.query_signal("traffic", t0, t0 + pd.Timedelta("20min"), 60)
    assert any("sampled every ~60 s but its rate range is 60 s" in w and "range: 240" in w
               for w in res.warnings)
    fine = FilesMetricSource(_om(tmp_path / "f.om", 15)).query_signal(
        "traffic", t0, t0 + pd.Timedelta("5min"), 60)
    assert not fine.warnings and fine.frame["value"].median() == 10.0


def test_signal_absent_from_the_file_is_missing(tmp_path: Path) -> None:
    src = FilesMetricSource(_om(tmp_path / "m.om", 15))
    t0 = pd.Timestamp(1_800_000_000, unit="s", tz="UTC")
    res = src.query_signal("cpu", t0, t0 + pd.Timedelta("5min"), 60)
    assert res.empty and res.notes["missing"] == ["cpu"]
    assert "process_cpu_seconds_total" in res.warnings[0]
