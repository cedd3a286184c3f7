"""CLI: bad input gives one line, exit 2, and nothing left in runs/."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _incident(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("incident")
    env = {**os.environ, "INCIDENT_RUNS_DIR": str(tmp / "runs")}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def _assert_bad(res: subprocess.CompletedProcess[str], tmp: Path, needle: str) -> None:
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("incident: error: ") and needle in lines[0]
    runs = tmp / "runs"
    assert not runs.exists() or not [p for p in runs.iterdir() if p.name != ".data"]


def test_malformed_alert_file(tmp_path: Path, demo_data: Path) -> None:
    bad = tmp_path / "alert.json"
    bad.write_text('{"version": "4", "alerts": [')
    res = _incident(tmp_path, "run", "--alert", str(bad), "--data", str(demo_data))
    _assert_bad(res, tmp_path, "is not valid JSON (line 1")


def test_alert_wrong_schema(tmp_path: Path, demo_data: Path) -> None:
    bad = tmp_path / "alert.json"
    bad.write_text(json.dumps({"version": "4", "alerts": []}))
    res = _incident(tmp_path, "run", "--alert", str(bad), "--data", str(demo_data))
    _assert_bad(res, tmp_path, "'alerts' must be a non-empty list")


def test_unknown_service(tmp_path: Path, demo_data: Path) -> None:
    res = _incident(tmp_path, "run", "--service", "nope", "--start", "2026-11-20T09:00:00Z",
                    "--end", "2026-11-20T12:00:00Z", "--data", str(demo_data))
    _assert_bad(res, tmp_path, "service 'nope' is unknown")


def test_end_before_start(tmp_path: Path, demo_data: Path) -> None:
    res = _incident(tmp_path, "run", "--service", "payments", "--start",
                    "2026-11-20T12:00:00Z", "--end", "2026-11-20T09:00:00Z", "--data",
                    str(demo_data))
    _assert_bad(res, tmp_path, "is not after --start")


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", "x{0}", "{}", "a\x01b", "x" * 200, ""])
def test_incident_id_with_path_or_braces(tmp_path: Path, demo_data: Path, bad_id: str) -> None:
    res = _incident(tmp_path, "run", "--service", "payments", "--start",
                    "2026-11-20T09:00:00Z", "--end", "2026-11-20T12:00:00Z", "--data",
                    str(demo_data), "--id", bad_id)
    _assert_bad(res, tmp_path, "incident id")
    assert not (tmp_path / "escape").exists()


def test_bad_time(tmp_path: Path, demo_data: Path) -> None:
    res = _incident(tmp_path, "run", "--service", "payments", "--start", "yesterday-ish",
                    "--end", "2026-11-20T09:00:00Z", "--data", str(demo_data))
    _assert_bad(res, tmp_path, "--start 'yesterday-ish' is not a time")


def test_status_of_demo_run(demo_run: Path, tmp_path: Path) -> None:
    res = _incident(tmp_path, "status", str(demo_run))
    assert res.returncode == 0, res.stderr
    assert "triage       ok" in res.stdout
    assert "Current action:" in res.stdout


def test_status_shows_what_each_chat_notifier_did(tmp_path: Path) -> None:
    from incident_lib.pipeline.notify import record_status
    from tests.pipeline.test_notify import make_run

    path = make_run(tmp_path / "runs", [])
    record_status(path, {"event": "triage", "notifier": "slack-1", "state": "sent"})
    record_status(path, {"event": "triage", "notifier": "teams-1", "state": "failed",
                         "error": "HTTP 503"})
    res = _incident(tmp_path, "status", str(path))
    assert res.returncode == 0, res.stderr
    assert "  chat slack-1: triage sent\n" in res.stdout
    assert "  chat teams-1: triage failed  HTTP 503\n" in res.stdout


def test_templates_without_format_names_the_detected_format(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(
        "2026-01-01 10:00:00,001 ERROR [main] com.acme.Pay: charge 1 failed\n"
        "java.lang.IllegalStateException: pool exhausted\n"
        "\tat com.acme.Pool.get(Pool.java:42)\n"
        "2026-01-01 10:00:01,001 ERROR [main] com.acme.Pay: charge 2 failed\n"
    )
    out = tmp_path / "t.csv"
    res = _incident(tmp_path, "templates", str(log), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == (
        "format: detected leveled (2 of 4 sample lines); 4 of 4 lines matched, 2 events; "
        f"2 templates -> {out}")
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["LineId"] for r in rows] == ["1", "4"]  # the 2nd event starts on line 4
    assert rows[0]["Content"] == ("charge 1 failed\njava.lang.IllegalStateException: pool "
                                  "exhausted\n\tat com.acme.Pool.get(Pool.java:42)")


def test_templates_bad_format_is_one_line(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("x\n")
    res = _incident(tmp_path, "templates", str(log), "--format", "<Date> (<Content>",
                    "--out", str(tmp_path / "t.csv"))
    _assert_bad(res, tmp_path, "not a valid RE2 regular expression")
    assert not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize("start, needle", [
    ("0001-01-01T00:00:00Z", "--start '0001-01-01T00:00:00Z' is outside 1990"),
    ("-1", "--start '-1' is not a time"),
    ("2026-11-20T09:00:00", "--start '2026-11-20T09:00:00' has no time zone"),
])
def test_impossible_or_zoneless_cli_times_are_one_line_errors(tmp_path: Path, demo_data: Path,
                                                              start: str, needle: str) -> None:
    res = _incident(tmp_path, "run", "--service", "payments", f"--start={start}",
                    "--end", "2026-11-20T12:00:00Z", "--data", str(demo_data))
    _assert_bad(res, tmp_path, needle)
