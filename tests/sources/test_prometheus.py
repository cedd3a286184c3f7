"""PrometheusMetricSource against Debian's prometheus (backfilled demo) and a fault server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pandas as pd
import pytest
import yaml

from incident_lib.core.errors import InputError, QueryError, SourceError
from incident_lib.core.signals import signals
from incident_lib.sources.base import time_grid
from incident_lib.sources.filemetrics import FilesMetricSource
from incident_lib.sources.prometheus import PrometheusMetricSource
from tests.prom_servers import Proc, backfill, start_prometheus

START = pd.Timestamp("2026-11-20T09:00:00Z")
END = pd.Timestamp("2026-11-20T12:00:00Z")


@pytest.fixture(scope="module")
def prom(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """Prometheus serving the demo's OpenMetrics file (promtool backfill)."""
    work = tmp_path_factory.mktemp("prom")
    tsdb = backfill(demo_data / "metrics.om", work / "tsdb")
    proc = start_prometheus(tsdb, work)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def files(demo_data: Path) -> FilesMetricSource:
    """The files backend over the same OpenMetrics file."""
    return FilesMetricSource(demo_data / "metrics.om")


def _merged(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in b.columns if c != "value"]
    return a.merge(b, on=keys, how="outer", suffixes=("_prom", "_files"), indicator=True)


# -- real server --------------------------------------------------------------------------


def test_every_signal_equals_files_backend(prom: Proc, files: FilesMetricSource) -> None:
    src = PrometheusMetricSource(prom.url)
    s, e = pd.Timestamp("2026-11-20T10:00:00Z"), pd.Timestamp("2026-11-20T11:30:00Z")
    for name in signals():
        a, b = src.query_signal(name, s, e, 15.0), files.query_signal(name, s, e, 15.0)
        assert list(a.frame.columns) == list(b.frame.columns), name
        assert len(a.frame) == len(b.frame) > 0, name
        m = _merged(a.frame, b.frame)
        assert (m["_merge"] == "both").all(), name
        assert ((m.value_prom - m.value_files).abs()
                <= 1e-9 + 1e-6 * m.value_files.abs()).all(), name
        assert a.query.startswith("sum by (service)") or a.query.startswith("histogram_quantile")
        assert a.query.endswith("step=15s") and a.backend == "prometheus"
        assert a.frame["time"].dtype == b.frame["time"].dtype, name
    assert src.services() == ["checkout", "frontend", "inventory", "payments", "postgres"]


class _Recorder(httpx.HTTPTransport):
    """Real transport that remembers every form body it sent."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[dict[str, list[str]]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(parse_qs(request.read().decode()))
        return super().handle_request(request)


def test_fine_step_is_chunked_below_11000_points(prom: Proc, files: FilesMetricSource) -> None:
    rec = _Recorder()
    src = PrometheusMetricSource(prom.url, transport=rec)
    s, e = pd.Timestamp("2026-11-20T10:40:00Z"), pd.Timestamp("2026-11-20T11:30:00Z")
    res = src.query_signal("traffic", s, e, 0.25, filters={"service": "payments"})
    n_grid = len(time_grid(s, e, 0.25))
    assert res.notes["points"] == n_grid > 11_000
    assert res.notes["requests"] == 2 == len(rec.bodies)
    for body in rec.bodies:
        n = (float(body["end"][0]) - float(body["start"][0])) / float(body["step"][0]) + 1
        assert n <= 11_000
    ref = files.query_signal("traffic", s, e, 0.25, filters={"service": "payments"})
    assert len(res.frame) == len(ref.frame) == n_grid
    m = _merged(res.frame, ref.frame)
    assert (m["_merge"] == "both").all()
    assert ((m.value_prom - m.value_files).abs() <= 1e-9 + 1e-6 * m.value_files.abs()).all()
    small = PrometheusMetricSource(prom.url, max_points=5000)
    again = small.query_signal("traffic", s, e, 0.25, filters={"service": "payments"})
    assert again.notes["requests"] == 3
    pd.testing.assert_frame_equal(again.frame, res.frame)


def test_default_step_keeps_points_under_limit(prom: Proc) -> None:
    src = PrometheusMetricSource(prom.url)
    res = src.query_range('sum(rate(http_requests_total[1m]))', START, END + pd.Timedelta("30D"))
    assert res.notes["points"] <= 1000 and res.notes["requests"] == 1 and not res.empty


def test_label_values_are_escaped_literals(prom: Proc) -> None:
    src = PrometheusMetricSource(prom.url)
    evil = 'payments"} or vector(1) or {x="'
    res = src.query_signal("traffic", START, END, 60.0, filters={"service": evil})
    assert res.empty and res.warnings == [f"no data for {res.query}"]
    assert 'service="payments\\"} or vector(1) or {x=\\""' in res.query
    ok = src.query_signal("traffic", START, END, 60.0, filters={"service": "payments"})
    assert set(ok.frame["service"]) == {"payments"}


def test_bad_promql_is_a_query_error_showing_the_query(prom: Proc) -> None:
    src = PrometheusMetricSource(prom.url)
    with pytest.raises(QueryError, match=r"bad_data.*sum\(rate\(x\[1m\]\) step=60s"):
        src.query_range("sum(rate(x[1m])", START, END, 60.0)
    assert src.requests == 1  # 400 is never retried


# -- fault server -------------------------------------------------------------------------


class _Fault:
    """Loopback HTTP server answering from a script of (status, body, delay) per request."""

    def __init__(self) -> None:
        self.script: list[tuple[int, Any, float]] = []
        self.seen: list[dict[str, Any]] = []
        fault = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode() if n else ""
                fault.seen.append({"path": self.path, "body": parse_qs(body),
                                   "headers": dict(self.headers)})
                status, payload, delay = (fault.script.pop(0) if fault.script
                                          else (200, _matrix([]), 0.0))
                time.sleep(delay)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

            do_GET = do_POST = _answer  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _matrix(result: list, warnings: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "success",
                            "data": {"resultType": "matrix", "result": result}}
    if warnings:
        body["warnings"] = warnings
    return body


@pytest.fixture
def fault() -> Iterator[_Fault]:
    f = _Fault()
    yield f
    f.close()


W0, W1 = pd.Timestamp("2026-11-20T10:00:00Z"), pd.Timestamp("2026-11-20T10:02:00Z")


def test_503_is_retried_with_backoff_then_succeeds(fault: _Fault) -> None:
    series = {"metric": {"service": "payments"},
              "values": [[W0.timestamp(), "1.5"], [W0.timestamp() + 60, "NaN"],
                         [W0.timestamp() + 120, "+Inf"]]}
    fault.script = [(503, {}, 0.0), (503, {}, 0.0),
                    (200, _matrix([series], ["result truncated: 5 series"]), 0.0)]
    src = PrometheusMetricSource(fault.url, backoff=0.05)
    t0 = time.monotonic()
    res = src.query_signal("traffic", W0, W1, 60.0)
    assert time.monotonic() - t0 >= 0.05 + 0.1  # backoff 0.05 s then 0.1 s
    assert src.requests == 3
    assert res.warnings[1:] == ["result truncated: 5 series"]  # Prometheus' own, kept
    assert res.warnings[0].startswith("non-finite samples (NaN/Inf) in 1 series: "
                                      '{service="payments"}: 2 of ')  # the NaN and the +Inf
    assert res.frame.to_dict("records") == [{"time": W0, "service": "payments", "value": 1.5}]
    body = fault.seen[-1]["body"]
    assert body["start"] == [f"{W0.timestamp():.3f}"] and body["step"] == ["60"]
    assert body["timeout"] == ["30s"]


def test_503_forever_becomes_source_error(fault: _Fault) -> None:
    fault.script = [(503, {}, 0.0)] * 3
    src = PrometheusMetricSource(fault.url, retries=2, backoff=0.01)
    with pytest.raises(SourceError, match=r"unreachable after 3 attempts \(HTTP 503\)"):
        src.query_signal("traffic", W0, W1, 60.0)


def test_422_and_500_are_not_retried(fault: _Fault) -> None:
    fault.script = [(422, {"status": "error", "errorType": "execution",
                           "error": "query processing would load too many samples"}, 0.0)]
    src = PrometheusMetricSource(fault.url, backoff=0.01)
    with pytest.raises(QueryError, match=r"too many samples.*http_requests_total"):
        src.query_signal("traffic", W0, W1, 60.0)
    assert src.requests == 1
    fault.script = [(500, {"status": "error", "error": "boom"}, 0.0)]
    with pytest.raises(SourceError, match="HTTP 500 boom") as info:
        src.query_signal("traffic", W0, W1, 60.0)
    assert not isinstance(info.value, QueryError) and src.requests == 2


def test_hanging_server_times_out_without_retry(fault: _Fault) -> None:
    fault.script = [(200, _matrix([]), 3.0)]
    src = PrometheusMetricSource(fault.url, timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"did not answer within 0.3 s"):
        src.query_signal("traffic", W0, W1, 60.0)
    assert time.monotonic() - t0 < 2.0 and src.requests == 1


def test_connection_refused_is_retried_then_source_error() -> None:
    from tests.prom_servers import free_port

    src = PrometheusMetricSource(f"http://127.0.0.1:{free_port()}", retries=2, backoff=0.01)
    with pytest.raises(SourceError, match=r"unreachable after 3 attempts \(ConnectError"):
        src.services()
    assert src.requests == 3


def test_empty_result_is_a_no_data_finding(fault: _Fault) -> None:
    src = PrometheusMetricSource(fault.url)
    res = src.query_signal("error_rate", W0, W1, 60.0)
    assert res.empty and list(res.frame.columns) == ["time", "service", "value"]
    assert res.warnings == [f"no data for {res.query}"]


def test_auth_from_environment_never_in_repr(fault: _Fault,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_PROM_TOKEN", "tok-123")
    monkeypatch.setenv("T_PROM_PASS", "pw-456")
    src = PrometheusMetricSource.from_spec({"kind": "prometheus", "url": fault.url,
                                            "token_env": "T_PROM_TOKEN", "timeout": 5})
    fault.script = [(200, {"status": "success", "data": ["b", "a"]}, 0.0)]
    assert src.services() == ["a", "b"]
    assert fault.seen[-1]["headers"]["Authorization"] == "Bearer tok-123"
    assert "tok-123" not in repr(src) and fault.seen[-1]["path"] == "/api/v1/label/service/values"
    basic = PrometheusMetricSource.from_spec({"kind": "prometheus", "url": fault.url,
                                              "username": "u", "password_env": "T_PROM_PASS"})
    basic.services()
    assert fault.seen[-1]["headers"]["Authorization"] == "Basic dTpwdy00NTY="  # u:pw-456
    with pytest.raises(InputError, match="url is missing"):
        PrometheusMetricSource.from_spec({"kind": "prometheus"})
    with pytest.raises(InputError, match="CA bundle"):
        PrometheusMetricSource.from_spec({"kind": "prometheus", "url": fault.url,
                                          "ca_bundle": "/nonexistent/ca.pem"})


# -- a whole investigation through Prometheus vs files ------------------------------------


_VOLATILE = {"incident_id", "run_token", "created", "query", "backend", "source", "path"}


def _assert_close(a: Any, b: Any, where: str = "") -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), where
        for k in a:
            if k not in _VOLATILE:
                _assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        assert b == pytest.approx(a, rel=0.01, abs=1e-9), where
    else:
        assert a == b, where


def test_triage_and_correlation_via_prometheus_equal_files(
    prom: Proc, demo_data: Path, runs_dir: Path, tmp_path: Path
) -> None:
    from incident_lib.core.config import load_config
    from incident_lib.pipeline.alerts import incident_from_alert
    from incident_lib.pipeline.runner import create_run, execute

    cfg = {"sources": {"metrics": {"kind": "prometheus", "url": prom.url, "timeout": 30},
                       "logs": {"kind": "files", "path": str(demo_data / "logs.ndjson")},
                       "changes": {"kind": "files", "path": str(demo_data / "changes.ndjson")}},
           "topology": str(demo_data / "topology.yaml")}
    (tmp_path / "prom.yaml").write_text(yaml.safe_dump(cfg))
    payload = json.loads((demo_data / "alert.json").read_text())
    found = {}
    for name, config in (("files", load_config(data_dir=demo_data)),
                         ("prom", load_config(tmp_path / "prom.yaml"))):
        inc = incident_from_alert(payload, config, incident_id=f"parity-{name}")
        path = create_run(inc, replace=True)
        status = execute(path, stages=["triage", "correlation"], export=False)
        assert status["stages"]["triage"]["state"] == "ok", status
        assert status["stages"]["correlation"]["state"] == "ok", status
        found[name] = {s: json.loads((path / "findings" / f"{s}.json").read_text())["data"]
                       for s in ("triage", "correlation")}
    inc_json = json.loads((runs_dir / "parity-prom" / "incident.json").read_text())
    assert inc_json["sources"]["metrics"]["kind"] == "prometheus"
    f, p = found["files"], found["prom"]
    assert p["triage"]["onset"]["time"] == f["triage"]["onset"]["time"]
    ids = {k: [(s["service"], s["change_id"]) for s in found[k]["correlation"]["suspects"]]
           for k in found}
    assert ids["prom"] == ids["files"] and ids["prom"][0] == ("payments", "chg-1004")
    assert p["correlation"]["suspects"][0]["service"] == "payments"
    _assert_close(f["triage"], p["triage"], "triage")
    _assert_close(f["correlation"], p["correlation"], "correlation")


def _nonfinite_transport(values: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        series = {"metric": {"service": "frontend"},
                  "values": [[1800.0 + 15 * i, v] for i, v in enumerate(values)]}
        return httpx.Response(200, json={"status": "success", "data": {
            "resultType": "matrix", "result": [series]}})
    return httpx.MockTransport(handler)


@pytest.mark.parametrize("signal, flagged", [("traffic", 2), ("error_rate", 1)])
def test_non_finite_points_are_dropped_and_their_series_named(signal: str, flagged: int) -> None:
    """Like the files backend: NaN/Inf never become numbers; a ratio's NaN is 0/0 (no
    traffic), so there only Inf counts as bad data."""
    src = PrometheusMetricSource("http://prom.invalid", transport=_nonfinite_transport(
        ["1", "+Inf", "NaN", "2"]))
    res = src.query_signal(signal, pd.Timestamp(1800, unit="s", tz="UTC"),
                           pd.Timestamp(1845, unit="s", tz="UTC"), 15)
    assert list(res.frame["value"]) == [1.0, 2.0]
    assert res.notes["nonfinite_series"] == [
        f'{{service="frontend"}}: {flagged} of 4 points non-finite']
    assert res.warnings[0].startswith("non-finite samples (NaN/Inf) in 1 series")
