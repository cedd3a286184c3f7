"""End to end with logs and changes in (test-double) Elasticsearch: same findings as files.

One papermill run (metrics from files, logs + changes from the loopback ES server loaded with
the demo's NDJSON through the real client's bulk helper), compared with the all-files demo run;
then the fault modes replayed through the correlation stage on a copy of that run folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from elasticsearch import Elasticsearch, helpers

from incident_lib.core.errors import SourceError
from incident_lib.runs.folder import Run
from incident_lib.stages import correlation
from incident_lib.stages.postmortem import render_report
from tests.es_server import EsServer

CAP = 20_000  # lines read by the fault-mode replays (sampled), to keep them quick


def _docs(path: Path, index: str) -> Iterator[dict]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield {"_index": index, "_source": json.loads(line)}


@pytest.fixture(scope="module")
def es(demo_data: Path) -> Iterator[EsServer]:
    """The demo's logs and changes bulk-loaded into the loopback server."""
    with EsServer() as srv:
        client = Elasticsearch(srv.url)
        ok, errors = helpers.bulk(client, _docs(demo_data / "logs.ndjson", "logs-shop"),
                                  chunk_size=5000, max_chunk_bytes=20_000_000)
        assert not errors
        helpers.bulk(client, _docs(demo_data / "changes.ndjson", "changes-shop"))
        yield srv


@pytest.fixture(scope="module")
def es_run(es: EsServer, demo_data: Path, runs_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo alert investigated with logs/changes from Elasticsearch (one papermill run)."""
    from incident_lib.core.config import load_config
    from incident_lib.pipeline.alerts import incident_from_alert
    from incident_lib.pipeline.runner import create_run, execute

    cfg = {"sources": {
        "metrics": {"kind": "files", "path": str(demo_data / "metrics.om")},
        "logs": {"kind": "elasticsearch", "url": es.url, "index": "logs-*", "timeout": 10,
                 "retry_backoff": 0.01, "retry_backoff_cap": 0.05},
        "changes": {"kind": "elasticsearch", "url": es.url, "index": "changes-*"}},
        "topology": str(demo_data / "topology.yaml")}
    path = tmp_path_factory.mktemp("escfg") / "incident.yaml"
    path.write_text(yaml.safe_dump(cfg))
    payload = json.loads((demo_data / "alert.json").read_text())
    inc = incident_from_alert(payload, load_config(path), incident_id="e2e-es")
    run = create_run(inc)
    status = execute(run)
    assert status["state"] == "ok", status
    return run


def _data(run: Path, stage: str) -> dict:
    return json.loads((run / "findings" / f"{stage}.json").read_text())["data"]


def _strip_queries(node: object) -> object:
    """Findings without query text (which names the backend's own query language)."""
    if isinstance(node, dict):
        return {k: _strip_queries(v) for k, v in node.items() if k != "query"}
    if isinstance(node, list):
        return [_strip_queries(x) for x in node]
    return node


def test_findings_equal_the_all_files_run(es_run: Path, demo_run: Path) -> None:
    for stage in ("triage", "correlation", "five_whys", "postmortem"):
        assert _strip_queries(_data(es_run, stage)) == _strip_queries(_data(demo_run, stage)), \
            stage
    cor = _data(es_run, "correlation")
    assert cor["suspects"][0]["change_id"] == "chg-1004"
    assert cor["logs"]["read"] == cor["logs"]["matched"] > 100_000
    assert not cor["logs"]["partial"]


def test_evidence_shows_the_query_dsl(es_run: Path) -> None:
    idx = json.loads((es_run / "evidence" / "index.json").read_text())
    for name in ("logs", "changes"):
        assert idx[name]["backend"] == "elasticsearch"
        body = json.loads(idx[name]["query"])
        assert body["query"]["bool"]["filter"][0]["range"]["@timestamp"]
        assert not idx[name]["partial"]
    assert idx["logs"]["notes"]["pages"] >= 17  # PIT + search_after, 10,000 lines a page
    assert "files:" in idx["signal_error_rate"]["query"]  # metrics still from files


@pytest.fixture()
def replay(es_run: Path, tmp_path: Path, es: EsServer) -> Iterator[Run]:
    """A copy of the ES run whose correlation stage re-reads a 20k-line sample."""
    dst = tmp_path / "e2e-es-replay"
    shutil.copytree(es_run, dst)
    inc = json.loads((dst / "incident.json").read_text())
    inc["sources"]["logs"]["max_lines"] = CAP
    (dst / "incident.json").write_text(json.dumps(inc))
    es.clear()
    yield Run(dst)
    es.clear()


def _hashes(run: Run) -> dict[str, str]:
    return {str(p.relative_to(run.path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run.path.rglob("*")) if p.is_file()}


def test_failed_shards_are_flagged_where_the_numbers_are_used(replay: Run, es: EsServer) -> None:
    es.inject("partial", times=None)
    sec = correlation.load_logs(replay, correlation.context(replay))
    assert "**Partial results:**" in sec.markdown
    assert sec.data["stats"]["partial"] is True
    assert any("shards failed" in w for w in sec.data["stats"]["warnings"])
    meta = replay.evidence_index()["logs"]
    assert meta["partial"] and meta["notes"]["read"] == CAP
    render_report(replay)
    report = (replay.path / "report.md").read_text()
    assert "**Partial results.**" in report and "shards failed" in report


def test_server_error_is_clear_and_run_folder_kept(replay: Run, es: EsServer) -> None:
    before = _hashes(replay)
    es.inject("status", status=500, times=None)
    with pytest.raises(SourceError, match=r"search logs-\*: Elasticsearch answered HTTP 500"):
        correlation.load_logs(replay, correlation.context(replay))
    assert _hashes(replay) == before


def test_429_and_expired_pit_recover_in_the_stage(replay: Run, es: EsServer) -> None:
    es.inject("status", status=429, times=2)
    es.inject("expire_pit", times=1)
    sec = correlation.load_logs(replay, correlation.context(replay))
    stats = sec.data["stats"]
    assert stats["read"] == CAP and not stats["partial"]
    assert stats["sampling"].startswith("uniform random sample")
    assert replay.evidence_index()["logs"]["notes"]["pit_reopened"] == 1
    assert [e["status"] for e in es.log].count(429) == 2


def test_slow_cluster_gives_a_clear_error_and_run_folder_kept(replay: Run, es: EsServer) -> None:
    replay.incident.sources["logs"].update(timeout=0.3, max_retries=1)
    before = _hashes(replay)
    es.inject("slow", seconds=1.0, times=None)
    with pytest.raises(SourceError, match=r"did not answer within 0.3s \(retried\)"):
        correlation.load_logs(replay, correlation.context(replay))
    assert _hashes(replay) == before


def test_sampled_what_changed_uses_exact_counts_from_aggregations(replay: Run,
                                                                  es: EsServer) -> None:
    """With only a sample on the client, field counts come from the cluster (pushdown)."""
    ctx = correlation.context(replay)
    logs = correlation.load_logs(replay, ctx)
    assert logs.data["stats"]["read"] == CAP < logs.data["stats"]["matched"]
    sec = correlation.log_fields(replay, ctx, logs)
    idx = replay.evidence_index()
    assert "exact counts by backend aggregation" in idx["what_changed"]["query"]
    counts = replay.evidence("field_counts")
    svc = counts[counts["field"] == "service"].set_index("value")
    # exact: the whole incident window's payments lines, not the 20k sample's share
    frame = logs.data["frame"]
    i0, i1 = ctx.data["incident"]
    in_sample = int(((frame["service"] == "payments") & (frame["time"] >= i0)
                     & (frame["time"] <= i1)).sum())
    assert svc.loc["payments", "incident_count"] > 4 * in_sample > 0
    wc = sec.data["frame"]
    pair = counts[(counts["field"] == "service & level") & (counts["value"] == "payments & error")]
    row = wc[(wc["field"] == "service & level") & (wc["value"] == "payments & error")]
    assert len(row) == 1 and int(row["incident_count"].iat[0]) == int(
        pair["incident_count"].iat[0])
    assert set(wc["field"]) & {"template_id", "service & template_id"}  # from the sample
