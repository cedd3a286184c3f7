"""Elasticsearch connector against the loopback wire-level server: parity, pushdown, faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from elasticsearch import Elasticsearch, helpers

from incident_lib.core.errors import InputError, SourceError
from incident_lib.sources import make_change_source, make_log_source
from incident_lib.sources.elasticsearch import ElasticsearchLogSource, make_client
from incident_lib.sources.files import FilesChangeSource, FilesLogSource
from tests.es_server import EsServer

T0 = pd.Timestamp("2026-01-01T00:00:00Z")
START, END = T0, T0 + pd.Timedelta("2h")
N = 3000


def _rows() -> list[dict]:
    rng = np.random.default_rng(1)
    rows = []
    for i in range(N):
        svc = ["api", "db", "web"][i % 3]
        rec = {"@timestamp": (T0 + pd.Timedelta(seconds=int(i * 2.4))).strftime(
                   "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
               "service.name": svc, "log.level": "error" if i > 2400 and svc == "db" else "info",
               "message": f"request {i} took {int(rng.integers(1, 99))}ms", "host.name": f"{svc}-1",
               "trace.id": f"t{i}"}
        if i % 4:
            rec["http.response.status_code"] = 503 if rec["log.level"] == "error" else 200
        rows.append(rec)
    return rows


CHANGES = [{"@timestamp": "2026-01-01T00:30:00Z", "service.name": "db", "change.type": "deploy",
            "change.id": "c1", "change.description": "deploy db 2.0", "service.version": "2.0",
            "user.name": "ci"},
           {"@timestamp": "2026-01-01T01:30:00Z", "service.name": "web", "change.type": "config",
            "change.id": "c2", "change.description": "cache ttl 60", "user.name": "ops"}]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same lines as NDJSON files (for the files backend)."""
    d = tmp_path_factory.mktemp("esdata")
    (d / "logs.ndjson").write_text("\n".join(json.dumps(r) for r in _rows()) + "\n")
    (d / "changes.ndjson").write_text("\n".join(json.dumps(r) for r in CHANGES) + "\n")
    return d


@pytest.fixture(scope="module")
def server(data: Path) -> Iterator[EsServer]:
    """A loopback server loaded through the real client's bulk helper."""
    with EsServer() as srv:
        es = Elasticsearch(srv.url)
        helpers.bulk(es, ({"_index": "logs-2026.01.01", "_source": r} for r in _rows()))
        helpers.bulk(es, ({"_index": "changes", "_source": r} for r in CHANGES))
        yield srv


@pytest.fixture(autouse=True)
def _clean(server: EsServer) -> Iterator[None]:
    server.clear()
    server.engine.pits.clear()  # a PIT opened by a timed-out request lives until keep_alive
    yield
    server.clear()


def _src(server: EsServer, **kw: object) -> ElasticsearchLogSource:
    spec = {"kind": "elasticsearch", "url": server.url, "index": "logs-*", "timeout": 5,
            "retry_backoff": 0.01, "retry_backoff_cap": 0.05, **kw}
    src = make_log_source(spec)
    assert isinstance(src, ElasticsearchLogSource)
    return src


def test_read_logs_equals_files_backend(server: EsServer, data: Path) -> None:
    src = _src(server, page_size=700)
    a, b = START + pd.Timedelta("10min"), START + pd.Timedelta("100min")
    res = src.read_logs(a, b, services=["db", "web"])
    ref = FilesLogSource(data / "logs.ndjson").read_logs(a, b, services=["db", "web"])
    pd.testing.assert_frame_equal(res.frame, ref.frame)
    assert res.notes["matched"] == res.notes["read"] == len(ref.frame)
    assert res.notes["sampling"] == "all lines" and res.notes["pages"] == -(-len(ref.frame) // 700)
    body = json.loads(res.query)
    assert body["query"]["bool"]["filter"][1] == {"terms": {"service.name": ["db", "web"]}}
    assert not res.partial and res.backend == "elasticsearch"


def test_cap_takes_seeded_uniform_sample(server: EsServer) -> None:
    src = _src(server, page_size=250)
    res = src.read_logs(START, END, limit=1000)
    again = src.read_logs(START, END, limit=1000)
    assert res.notes["matched"] == N and res.notes["read"] == 1000 == len(res.frame)
    assert res.notes["sampling"].startswith("uniform random sample (random_score seed 0)")
    assert res.frame["time"].is_monotonic_increasing
    assert res.frame["trace_id"].is_unique
    assert list(res.frame["trace_id"]) == list(again.frame["trace_id"])  # reproducible
    first_half = (res.frame["time"] < START + pd.Timedelta("60min")).mean()
    assert 0.43 < first_half < 0.57  # spread over the window, not the first 1000 in time
    assert "random_score" in res.query


def test_filter_values_are_terms_never_query_string(server: EsServer) -> None:
    res = _src(server).read_logs(START, END, services=['db" OR *:*', "api) OR (x"])
    assert res.empty and res.notes["matched"] == 0
    assert "query_string" not in res.query


def test_count_over_time_pushdown_equals_files(server: EsServer, data: Path) -> None:
    src = _src(server)
    res = src.count_over_time(START, END, "10min", ["service", "status"])
    ref = FilesLogSource(data / "logs.ndjson").count_over_time(START, END, "10min",
                                                               ["service", "status"])
    pd.testing.assert_frame_equal(res.frame, ref.frame, check_dtype=False)
    assert "date_histogram" in res.query and '"missing"' in res.query
    assert sum(e["bytes_out"] for e in server.log if e["path"].endswith("_search")) < 20_000


def test_field_changes_counts_by_aggregation(server: EsServer, data: Path) -> None:
    src = _src(server)
    base, inc = (START, START + pd.Timedelta("90min")), (START + pd.Timedelta("95min"), END)
    res = src.field_changes(base, inc, ["service", "level", "status"])
    df = FilesLogSource(data / "logs.ndjson").read_logs(START, END).frame
    b = df[(df["time"] >= base[0]) & (df["time"] < base[1])]
    i = df[(df["time"] >= inc[0]) & (df["time"] <= inc[1])]
    got = res.frame.set_index(["field", "value"])
    assert got.loc[("level", "error"), "incident_count"] == (i["level"] == "error").sum()
    assert got.loc[("level", "error"), "baseline_count"] == (b["level"] == "error").sum()
    pair = got.loc[("service & status", "db & 503")]
    assert pair["incident_count"] == ((i["service"] == "db") & (i["status"] == 503)).sum()
    assert got.loc[("status", ""), "incident_count"] == i["status"].isna().sum()
    assert len([e for e in server.log if e["path"].endswith("_search")]) == 2


def test_changes_equal_files_backend(server: EsServer, data: Path) -> None:
    src = make_change_source({"kind": "elasticsearch", "url": server.url, "index": "changes"})
    res = src.changes(START, END)
    ref = FilesChangeSource(data / "changes.ndjson").changes(START, END)
    pd.testing.assert_frame_equal(res.frame, ref.frame)
    assert list(res.frame["id"]) == ["c1", "c2"]


# -- faults ---------------------------------------------------------------------------------

def test_429_is_retried_with_backoff_and_succeeds(server: EsServer) -> None:
    server.inject("status", status=429, times=2)
    res = _src(server).read_logs(START, END)
    assert res.notes["read"] == N and not res.partial
    statuses = [e["status"] for e in server.log if e["path"].endswith("_search")]
    assert statuses[:3] == [429, 429, 200]


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_retried_then_clear_error(server: EsServer, status: int) -> None:
    server.inject("status", status=status, times=None)
    with pytest.raises(SourceError, match=f"HTTP {status} after retries with backoff"):
        _src(server, max_retries=2).read_logs(START, END)
    assert len([e for e in server.log if e["status"] == status]) == 3


def test_500_is_not_retried_and_names_the_error(server: EsServer) -> None:
    server.inject("status", status=500, times=None)
    with pytest.raises(SourceError, match=r"HTTP 500 \(internal_error: injected HTTP 500\)"):
        _src(server).read_logs(START, END)
    assert len([e for e in server.log if e["status"] == 500]) == 1


def test_slow_answer_past_timeout_is_retried_once_and_succeeds(server: EsServer) -> None:
    server.inject("slow", seconds=1.0, times=1, path="_pit")
    res = _src(server, timeout=0.4).read_logs(START, END)
    assert res.notes["read"] == N


def test_slow_answers_past_timeout_give_a_clear_error(server: EsServer) -> None:
    server.inject("slow", seconds=1.0, times=None)
    with pytest.raises(SourceError, match=r"did not answer within 0.3s \(retried\); raise "
                                          "`timeout`"):
        _src(server, timeout=0.3, max_retries=1).read_logs(START, END)


def test_failed_shards_mark_the_result_partial(server: EsServer) -> None:
    server.inject("partial", times=None)
    res = _src(server).read_logs(START, END)
    assert res.partial
    assert res.notes["matched"] == N // 2 == res.notes["read"]
    assert any("1 of 2 shards failed (node_disconnected_exception)" in w for w in res.warnings)
    counts = _src(server).count_over_time(START, END, "1h", [])
    assert counts.partial and counts.frame["count"].sum() == N // 2


def test_timed_out_marks_counts_partial(server: EsServer) -> None:
    server.inject("timed_out", times=None)
    res = _src(server).count_over_time(START, END, "1h", ["service"])
    assert res.partial and any("timed out" in w for w in res.warnings)


def test_expired_pit_is_reopened_and_nothing_lost_or_repeated(server: EsServer) -> None:
    full = _src(server, page_size=400).read_logs(START, END)
    server.clear()
    server.inject("expire_pit", times=1)
    res = _src(server, page_size=400).read_logs(START, END)
    assert res.notes["pit_reopened"] == 1
    pd.testing.assert_frame_equal(res.frame, full.frame)
    assert any("reopened and the read resumed" in w for w in res.warnings)
    opened = [e for e in server.log if e["path"].endswith("/_pit") and e["method"] == "POST"]
    assert len(opened) == 2
    sampled = _src(server, page_size=300).read_logs(START, END, limit=900)
    server.inject("expire_pit", times=2)
    again = _src(server, page_size=300).read_logs(START, END, limit=900)
    pd.testing.assert_frame_equal(again.frame, sampled.frame)


def test_pit_expiring_every_time_fails_clearly(server: EsServer) -> None:
    server.inject("expire_pit", times=None)
    with pytest.raises(SourceError, match=r"point-in-time expired 4 times .* raise keep_alive "
                                          r"\(now 2m\)"):
        _src(server, page_size=400).read_logs(START, END)
    assert not server.engine.pits  # every PIT opened was closed or expired


def test_pits_are_closed_after_reading(server: EsServer) -> None:
    _src(server, page_size=500).read_logs(START, END)
    assert not server.engine.pits


def test_server_8_refuses_client_9_with_pin_advice() -> None:
    with EsServer(version="8.15.0") as old, pytest.raises(SourceError, match="elasticsearch<9"):
        _src(old).read_logs(START, END)


def test_key_without_monitor_privilege_skips_the_version_check(server: EsServer) -> None:
    server.inject("status", status=403, times=None, path="/")
    res = _src(server).read_logs(START, START + pd.Timedelta("1min"))
    assert res.notes["read"] == 26  # [00:00, 00:01] inclusive, a line every 2.4 s
    assert [e["status"] for e in server.log][:2] == [403, 200]


def test_a_server_that_is_not_elasticsearch_is_named() -> None:
    with EsServer(product=None) as other, pytest.raises(SourceError, match="not Elasticsearch"):
        _src(other).read_logs(START, END)


def test_nested_source_objects_and_custom_field_names() -> None:
    doc = {"@timestamp": "2026-01-01T00:00:01.500Z", "service": {"name": "api"},
           "log": {"level": "warn"}, "msg": "disk 91% full"}
    with EsServer() as srv:
        helpers.bulk(Elasticsearch(srv.url), [{"_index": "app", "_source": doc}])
        res = _src(srv, index="app", fields={"message": "msg"}).read_logs(START, END)
        counts = _src(srv, index="app").count_over_time(START, END, "1h", ["service"])
    row = res.frame.iloc[0]
    assert (row["service"], row["level"], row["message"]) == ("api", "warn", "disk 91% full")
    assert row["time"] == pd.Timestamp("2026-01-01T00:00:01.500Z")
    assert counts.frame[["service", "count"]].values.tolist() == [["api", 1]]


def test_api_key_from_env_and_never_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with EsServer(api_key="s3cr3t-key") as srv:
        monkeypatch.setenv("TEST_ES_KEY", "s3cr3t-key")
        res = _src(srv, api_key_env="TEST_ES_KEY").read_logs(START, END)
        assert res.empty
        monkeypatch.setenv("TEST_ES_KEY", "wrong-key-value")
        with pytest.raises(SourceError, match="refused the credentials") as err:
            _src(srv, api_key_env="TEST_ES_KEY").read_logs(START, END)
        assert "wrong-key-value" not in str(err.value)
        monkeypatch.delenv("TEST_ES_KEY")
        with pytest.raises(SourceError, match="TEST_ES_KEY"):
            _src(srv, api_key_env="TEST_ES_KEY")


def test_tls_verification_on_by_default_and_no_credentials_in_url(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_ES_PASS", "pw")
    client = make_client({"url": "https://es.example:9200", "username": "u",
                          "password_env": "TEST_ES_PASS", "ca_bundle": __file__})
    node = client.transport.node_pool.all()[0]
    assert node.config.verify_certs is True and node.config.ca_certs == __file__
    with pytest.raises(InputError, match="holds credentials"):
        make_client({"url": "https://u:pw@es.example:9200"})
