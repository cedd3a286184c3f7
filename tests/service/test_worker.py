"""The worker child's entry, in process: the `render` job (Alertmanager sent `resolved`) posts the
resolution to chat once; a job whose run an earlier attempt finished is not run again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from incident_lib.service.jobqueue import JobQueue, queue_path
from incident_lib.service.worker import work
from tests.chat_receiver import chat_receiver


def test_resolved_notification_posts_the_resolution_once(tmp_path: Path, demo_run: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    path = runs / demo_run.name
    shutil.copytree(demo_run, path)
    inc = json.loads((path / "incident.json").read_text())
    inc["topology"]["notify"] = [{"name": "hook", "kind": "webhook", "url_env": "TEST_HOOK",
                                  "events": ["resolved"]}]
    (path / "incident.json").write_text(json.dumps(inc))
    monkeypatch.setenv("INCIDENT_RUNS_DIR", str(runs))
    with chat_receiver() as rec:
        monkeypatch.setenv("TEST_HOOK", rec.url)
        q = JobQueue(queue_path(runs))
        q.submit("k1", path.name, {"status": "resolved", "alerts": []}, "2026-11-20T12:30:00Z")
        q.close()
        config = tmp_path / "incident.yaml"
        config.write_text("sources: {}\n")
        assert work(queue_path(runs), "k1", config, "render") == 0
        assert work(queue_path(runs), "k1", config, "render") == 0  # a repeated `resolved`
        posts = rec.wait_for(1, 5)
    assert len(posts) == 1
    msg = posts[0]["json"]
    assert msg["event"] == "resolved" and msg["status"]["state"] == "Resolved"
    assert msg["status"]["summary"] == "resolved at 12:30 UTC"
    assert "Resolved" in (path / "report.md").read_text()  # the re-rendered report agrees
    status = json.loads((path / "status.json").read_text())
    assert [(n["event"], n["state"]) for n in status["notifications"]] == [("resolved", "sent")]


def test_a_run_an_earlier_attempt_finished_is_not_run_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker died after the run ended but before the queue recorded it: the next attempt
    reports the run's outcome instead of investigating a second time."""
    runs = tmp_path / "runs"
    monkeypatch.setenv("INCIDENT_RUNS_DIR", str(runs))
    q = JobQueue(tmp_path / "q.sqlite3")
    q.submit("k", "inc-1", {"status": "firing", "groupKey": "g"}, None)
    q.close()
    run = runs / "inc-1"
    run.mkdir(parents=True)
    (run / "incident.json").write_text("{}")
    status = {"state": "partial", "ended": "2026-11-20T11:00:00Z", "stages": {}}
    (run / "status.json").write_text(json.dumps(status))
    before = (run / "status.json").stat().st_mtime_ns
    config = tmp_path / "unused.yaml"  # never read: nothing is investigated
    assert work(tmp_path / "q.sqlite3", "k", config, "run") == 0
    assert (run / "status.json").stat().st_mtime_ns == before
    assert sorted(p.name for p in run.iterdir()) == ["incident.json", "status.json"]
    status["state"] = "failed"
    (run / "status.json").write_text(json.dumps(status))
    assert work(tmp_path / "q.sqlite3", "k", config, "run") == 1  # the same outcome again
