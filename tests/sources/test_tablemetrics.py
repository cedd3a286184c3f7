"""Metrics from CSV exports (wide per-pod files, long files), declared signals, missing ones."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from incident_lib.core.errors import InputError, SourceError
from incident_lib.sources import make_metric_source
from incident_lib.sources.base import MetricSource

T0 = pd.Timestamp("2026-03-01T10:00:00Z")
E0 = int(T0.timestamp())
W = (T0, T0 + pd.Timedelta("5min"))
HEADER = "Time,TimeStamp,PodName,CpuUsage(m),PodServerLatencyP99(s),PodWorkload(Ops)\n"


def _pod_file(path: Path, pod: str, cpu: list[float], header: str = HEADER) -> None:
    rows = [f"x,{E0 + 60 * i},{pod},{c},{0.05 * (i + 1)},10" for i, c in enumerate(cpu)]
    path.write_text(header + "\n".join(rows) + "\n")


# per-pod columns declared as a deployment would (the Nezha harness declares the same shapes)
POD_SIGNALS = {
    "cpu": {"kind": "gauge", "unit": "cores", "role": "saturation", "direction": "up",
            "column": "CpuUsage(m)", "scale": 0.001, "agg": "sum"},
    "memory": {"kind": "gauge", "unit": "bytes", "role": "saturation", "direction": "up",
               "column": "MemoryUsage(Mi)", "scale": 1048576, "agg": "sum"},
    "latency_p99": {"kind": "gauge", "unit": "seconds", "role": "latency", "direction": "up",
                    "column": "PodServerLatencyP99(s)", "agg": "max"},
}


def _wide(tmp_path: Path, **extra: object) -> MetricSource:
    return make_metric_source({"kind": "files", "format": "csv", "layout": "wide",
                               "path": str(tmp_path / "*_metric.csv"),
                               "fields": {"time": "TimeStamp", "pod": "PodName"},
                               "time_unit": "s", "signals": POD_SIGNALS, **extra})


def test_wide_per_pod_csv_with_declared_signals(tmp_path: Path) -> None:
    _pod_file(tmp_path / "a1_metric.csv", "api-866bd68c97-xcqfx", [100, 100, 900, 900, 100, 100])
    _pod_file(tmp_path / "a2_metric.csv", "api-866bd68c97-bbbbb", [100] * 6)
    _pod_file(tmp_path / "d_metric.csv", "db-0", [50] * 6)
    src = _wide(tmp_path)
    assert src.services() == ["api", "db"]
    res = src.query_signal("cpu", *W, 60.0)
    api = res.frame[res.frame["service"] == "api"].set_index("time")["value"]
    # millicores -> cores, summed over the service's two pods, 60-s samples on a 60-s grid
    assert api.tolist() == pytest.approx([0.2, 0.2, 1.0, 1.0, 0.2, 0.2])
    lat = src.query_signal("latency_p99", *W, 30.0).frame
    db = lat[lat["service"] == "db"]["value"].tolist()
    assert db[:4] == pytest.approx([0.05, 0.05, 0.10, 0.10])  # a sample holds until the next
    assert not res.warnings and not res.partial


def test_signal_the_source_lacks_is_missing_not_zero(tmp_path: Path) -> None:
    _pod_file(tmp_path / "a_metric.csv", "api-0", [100] * 6)
    res = _wide(tmp_path).query_signal("memory", *W, 60.0)
    assert res.empty and res.notes["missing"] == ["memory"]
    assert "missing, not 0" in res.warnings[0]


def test_an_undeclared_signal_is_an_error(tmp_path: Path) -> None:
    _pod_file(tmp_path / "a_metric.csv", "api-0", [100] * 6)
    with pytest.raises(InputError, match="not declared"):
        _wide(tmp_path).query_signal("error_rate", *W, 60.0)


def test_column_set_differs_per_file_is_partial(tmp_path: Path) -> None:
    _pod_file(tmp_path / "a_metric.csv", "api-0", [100] * 6)
    (tmp_path / "b_metric.csv").write_text(
        f"TimeStamp,PodName,PodWorkload(Ops)\n{E0},db-0,5\n")
    res = _wide(tmp_path).query_signal("cpu", *W, 60.0)
    assert res.partial and "b_metric.csv" in res.warnings[0]
    assert set(res.frame["service"]) == {"api"}


def test_missing_time_column_names_file_line_field(tmp_path: Path) -> None:
    (tmp_path / "a_metric.csv").write_text("When,PodName,CpuUsage(m)\n1,api-0,3\n")
    with pytest.raises(SourceError, match=r"^a_metric.csv:1: column 'TimeStamp' for field "
                                          r"'time' is missing"):
        _wide(tmp_path).query_signal("cpu", *W, 60.0)


def test_long_layout_counter_sampled_every_60s(tmp_path: Path) -> None:
    rows = ["timestamp,entity,metric,value"]
    for i in range(6):
        t = (T0 + pd.Timedelta(minutes=i)).isoformat()
        rows.append(f"{t},api-0,requests_total,{600 * i if i < 4 else 600 * (i - 4)}")  # reset
        rows.append(f"{t},api-0,rss,{1e6}")
    (tmp_path / "long.csv").write_text("\n".join(rows) + "\n")
    src = make_metric_source({
        "kind": "files", "format": "csv", "layout": "long", "path": str(tmp_path / "long.csv"),
        "fields": {"time": "timestamp", "pod": "entity", "metric": "metric", "value": "value"},
        "signals": {"traffic": {"kind": "counter", "unit": "req/s", "role": "traffic",
                                "direction": "both", "metric": "requests_total"},
                    "errors": {"kind": "counter", "unit": "req/s", "role": "error_rate",
                               "metric": "errors_total"}}})
    res = src.query_signal("traffic", *W, 60.0)
    # 600 per minute = 10/s; the reset (1800 -> 0) counts as an increase of 0, then 10/s again
    assert res.frame["value"].tolist() == pytest.approx([10.0, 10.0, 10.0, 0.0, 10.0])
    missing = src.query_signal("errors", *W, 60.0)
    assert missing.empty and missing.notes["missing"] == ["errors"]


def test_bad_signal_declaration_names_the_field() -> None:
    from incident_lib.core.signals import signal_set

    with pytest.raises(InputError, match=r"signals.cpu.kind 'histogram' is invalid"):
        signal_set({"signals": {"cpu": {"kind": "histogram", "unit": "cores"}}})
    with pytest.raises(InputError, match=r"signals.cpu.unit is missing"):
        signal_set({"signals": {"cpu": {"kind": "gauge"}}})
    with pytest.raises(InputError, match="signals_preset 'nope' is unknown"):
        signal_set({"signals_preset": "nope"})


def test_default_preset_is_signals_yaml() -> None:
    from incident_lib.core.signals import signal_set, signals

    assert signal_set(None) == signals()
    assert signal_set(None)["error_rate"].role == "error_rate"
    assert signal_set(None)["latency_p99"].role == "latency"
