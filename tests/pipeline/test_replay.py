"""Replay from recorded evidence gives identical findings; export archive and HTML."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from incident_lib.cli.main import main
from incident_lib.core.errors import InputError, SourceError
from incident_lib.pipeline import archive, replay
from incident_lib.runs.folder import STAGES, Run
from incident_lib.sources.base import LOG_COLUMNS, choose_step
from incident_lib.sources.bundle import BundleChangeSource, BundleLogSource, BundleMetricSource


def _snapshot(path: Path) -> dict[str, float]:
    return {str(p.relative_to(path)): p.stat().st_mtime for p in sorted(path.rglob("*"))}


def test_replay_gives_identical_findings(demo_run: Path, tmp_path: Path) -> None:
    from incident_lib.sources import make_metric_source

    # needs `kind: bundle` in sources/__init__.py (raises InputError "unknown kind" without it)
    make_metric_source({"kind": "bundle", "path": str(demo_run / "evidence")})
    before = _snapshot(demo_run)
    res = replay.replay_run(demo_run, root=tmp_path)
    assert res.replay == tmp_path / "e2e-demo-replay"
    assert res.status["state"] == "ok", res.status
    assert res.differences == []
    assert res.identical
    inc = json.loads((res.replay / "incident.json").read_text())
    assert inc["sources"]["metrics"] == {"kind": "bundle", "path": str(demo_run / "evidence")}
    assert inc["source"] == "replay:e2e-demo"
    for stage in STAGES:  # the same data, key by key, apart from ids and times
        a = json.loads((demo_run / "findings" / f"{stage}.json").read_text())["data"]
        b = json.loads((res.replay / "findings" / f"{stage}.json").read_text())["data"]
        assert a == b, stage
    assert _snapshot(demo_run) == before  # the original run is only read
    assert (res.replay / "report.md").read_text().count("most likely root cause is **payments**")\
        == 1


def test_compare_findings_lists_differences(tmp_path: Path) -> None:
    for name, share, extra in (("a", 0.1, {}), ("b", 0.2, {"new": 1})):
        f = tmp_path / name / "findings"
        f.mkdir(parents=True)
        doc = {"schema": "s", "stage": "triage", "incident_id": name, "created": name,
               "run_token": name, "data": {"impact": {"share": share, "path": str(f / "x")},
                                           "list": [1, 2][: 1 + len(extra)], **extra}}
        (f / "triage.json").write_text(json.dumps(doc))
    (tmp_path / "a" / "findings" / "correlation.json").write_text('{"data": {}}')
    assert replay.compare_findings(tmp_path / "a", tmp_path / "b") == [
        "triage.data.impact.share: '0.1' != '0.2'",
        "triage.data.list: 1 items in the original, 2 in the replay",
        "triage.data.new: only in replay",
        "correlation: findings only in original",
    ]


def test_replay_incident_and_bad_ids(demo_run: Path, tmp_path: Path) -> None:
    inc = replay.replay_incident(demo_run, "again-1")
    assert inc.id == "again-1"
    assert {k: v["kind"] for k, v in inc.sources.items()} == {
        "metrics": "bundle", "logs": "bundle", "changes": "bundle"}
    assert inc.start == Run(demo_run).incident.start
    with pytest.raises(InputError, match="different from the original"):
        replay.replay_incident(demo_run, "e2e-demo")
    with pytest.raises(InputError, match="incident id"):
        replay.replay_incident(demo_run, "../x")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "incident.json").write_text(json.dumps(Run(demo_run).incident.to_dict()))
    with pytest.raises(InputError, match="nothing to replay"):
        replay.replay_incident(tmp_path / "r")


def test_bundle_metric_source_returns_recorded_frame(demo_run: Path) -> None:
    run = Run(demo_run)
    inc = run.incident
    src = BundleMetricSource(demo_run / "evidence")
    step = choose_step(inc.start_ts, inc.end_ts)
    res = src.query_signal("error_rate", inc.start_ts, inc.end_ts, step)
    meta = run.evidence_index()["signal_error_rate"]
    pd.testing.assert_frame_equal(res.frame, run.evidence("signal_error_rate"))
    assert (res.query, res.backend, res.warnings) == (meta["query"], "files", [])
    mid = inc.start_ts + pd.Timedelta("1h")
    cut = src.query_signal("error_rate", mid, inc.end_ts, step, {"service": "payments"})
    assert set(cut.frame["service"]) == {"payments"} and cut.frame["time"].min() >= mid
    assert cut.warnings == ["replay: recorded points cut to the asked range"]
    assert "payments" in src.services()
    with pytest.raises(SourceError, match="has no evidence 'signal_nope'"):
        src.query_signal("nope", inc.start_ts, inc.end_ts, step)


def test_bundle_log_and_change_sources(demo_run: Path, tmp_path: Path) -> None:
    run = Run(demo_run)
    idx = run.evidence_index()
    logs = BundleLogSource(demo_run / "evidence")
    t0, t1 = (pd.Timestamp(x) for x in json.loads(
        (demo_run / "findings" / "correlation.json").read_text())["data"]["windows"]["baseline"])
    full = logs.read_logs(pd.Timestamp(run.incident.start), run.incident.end_ts)
    assert list(full.frame.columns) == LOG_COLUMNS
    assert len(full.frame) == idx["logs"]["rows"]
    assert full.notes == idx["logs"]["notes"] and full.query == idx["logs"]["query"]
    part = logs.read_logs(t0, t1, services=["payments"], limit=100)
    assert len(part.frame) == 100 and set(part.frame["service"]) == {"payments"}
    assert part.notes["read"] == 100 and part.notes["matched"] > 100
    assert part.notes["sampling"].startswith("uniform random sample (seed 0) of 100 out of ")
    assert part.warnings[0].startswith("replay: a subset of the recorded lines")
    counts = logs.count_over_time(t0, t1, "5min", ["service"])
    assert int(counts.frame["count"].sum()) == int(
        ((full.frame["time"] >= t0) & (full.frame["time"] <= t1)).sum())
    assert counts.warnings[-1].startswith("replay: counted from the recorded lines")
    if "log_volume" in idx:  # triage's pushed-down counts are replayed as recorded
        inc = run.incident
        vol = logs.count_over_time(inc.start_ts, inc.end_ts, "1min", ["service", "level"])
        pd.testing.assert_frame_equal(vol.frame, run.evidence("log_volume"))
        assert (vol.query, vol.warnings) == (idx["log_volume"]["query"], [])
    ch = BundleChangeSource(demo_run).changes(run.incident.start_ts, run.incident.end_ts)
    pd.testing.assert_frame_equal(ch.frame, run.evidence("changes"))
    assert ch.query == idx["changes"]["query"]
    with pytest.raises(SourceError, match="has no index.json"):
        BundleLogSource(tmp_path)


def test_export_archive_manifest_and_html(demo_run: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    before = _snapshot(demo_run)
    out = tmp_path / "e2e.tar.gz"
    assert main(["export", str(demo_run), "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [str(out), str(tmp_path / "e2e.html")]
    assert archive.verify_export(out) == []
    with tarfile.open(out) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("e2e-demo/MANIFEST.json").read())
        html = tar.extractfile("e2e-demo/notebooks.html").read().decode()
    assert {"e2e-demo/incident.json", "e2e-demo/findings/triage.json", "e2e-demo/report.md",
            "e2e-demo/evidence/index.json", "e2e-demo/notebooks/01_triage.ipynb",
            "e2e-demo/notebooks.html", "e2e-demo/MANIFEST.json"} <= set(names)
    assert "e2e-demo/.lock" not in names
    files = {f["path"]: f for f in manifest["files"]}
    triage = (demo_run / "findings" / "triage.json").read_bytes()
    assert files["findings/triage.json"] == {
        "path": "findings/triage.json", "bytes": len(triage),
        "sha256": hashlib.sha256(triage).hexdigest()}
    assert set(files) == {n.removeprefix("e2e-demo/") for n in names} - {"MANIFEST.json"}
    assert "data:image/png;base64," in html and 'src="http' not in html
    assert "def " not in html or "Show code" in html
    assert (tmp_path / "e2e.html").read_text() == html
    assert _snapshot(demo_run) == before
    # a tampered archive is caught
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(out) as src, tarfile.open(bad, "w:gz") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name == "e2e-demo/report.md":
                data += b"\nedited\n"
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    assert archive.verify_export(bad) == ["report.md: sha256 does not match MANIFEST.json"]
    with pytest.raises(InputError, match="inside the run folder"):
        archive.export_run(demo_run, demo_run / "x.tar.gz")


def test_export_during_a_run_is_refused_and_the_manifest_states_the_run(
        demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from incident_lib.pipeline.runner import run_lock

    out = tmp_path / "during.tar.gz"
    with run_lock(demo_run):  # what `execute` holds while the stages run
        assert main(["export", str(demo_run), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is being executed right now" in err
    assert not out.exists() and not (tmp_path / "during.html").exists()
    assert main(["export", str(demo_run), "--out", str(out)]) == 0
    with tarfile.open(out) as tar:
        manifest = json.loads(tar.extractfile("e2e-demo/MANIFEST.json").read())
    assert manifest["run_state"] == "ok"
def test_replay_keeps_the_declared_signals(demo_run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "orig"
    shutil.copytree(demo_run, copy)
    data = json.loads((copy / "incident.json").read_text())
    data["sources"]["metrics"]["signals_preset"] = "default"
    (copy / "incident.json").write_text(json.dumps(data))
    inc = replay.replay_incident(copy, "again-2")
    assert inc.sources["metrics"]["signals_preset"] == "default"
