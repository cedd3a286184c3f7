"""Files backend on text logs: the format is detected (or given), events become rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from incident_lib.sources import make_log_source
from incident_lib.sources.base import SourceError
from incident_lib.sources.files import FilesLogSource

T0 = pd.Timestamp("2025-12-10T06:00:00Z")
T1 = pd.Timestamp("2025-12-10T07:00:00Z")


def _mtime_2025(path: Path) -> Path:
    ts = pd.Timestamp("2025-12-31T00:00:00Z").timestamp()
    os.utime(path, (ts, ts))
    return path


def test_syslog_file_is_detected_and_read(tmp_path: Path) -> None:
    lines = [f"Dec 10 06:55:{i:02d} web1 sshd[{100 + i}]: Invalid user u{i} from 10.0.0.{i}"
             for i in range(10)] + ["Dec 11 00:00:00 web1 cron[1]: outside the window"]
    path = tmp_path / "auth.log"
    path.write_text("\n".join(lines) + "\n")
    _mtime_2025(path)
    res = FilesLogSource(path).read_logs(T0, T1)
    assert list(res.frame["message"]) == [f"Invalid user u{i} from 10.0.0.{i}" for i in range(10)]
    assert set(res.frame["service"]) == {"sshd"} and set(res.frame["host"]) == {"web1"}
    assert res.frame["time"].iloc[0] == pd.Timestamp("2025-12-10T06:55:00Z")  # year of mtime
    assert res.notes["format"] == (
        "detected rfc3164 (11 of 11 sample lines); 11 of 11 lines matched, 11 events")
    counts = FilesLogSource(path).count_over_time(T0, T1, "1h", ["service"]).frame
    assert counts["count"].tolist() == [10]


def test_docker_json_file_log_uses_the_message_inside(tmp_path: Path) -> None:
    rows = [{"log": f"2025-12-10 06:10:0{i},000 ERROR [main] com.acme.Pay: charge {i} failed\n",
             "stream": "stderr", "time": f"2025-12-10T06:10:0{i}.5Z"} for i in range(3)]
    rows.append({"log": "java.lang.IllegalStateException: pool exhausted\n", "stream": "stderr",
                 "time": "2025-12-10T06:10:03Z"})
    rows.append({"log": "\tat com.acme.Pool.get(Pool.java:42)\n", "stream": "stderr",
                 "time": "2025-12-10T06:10:03Z"})
    path = tmp_path / "container-json.log"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    src = make_log_source({"kind": "files", "path": str(path)})
    res = src.read_logs(T0, T1)
    assert list(res.frame["level"]) == ["ERROR"] * 3
    assert list(res.frame["service"]) == ["com.acme.Pay"] * 3
    assert res.frame["message"].iloc[2] == (
        "charge 2 failed\njava.lang.IllegalStateException: pool exhausted\n"
        "\tat com.acme.Pool.get(Pool.java:42)")
    assert res.frame["time"].iloc[0] == pd.Timestamp("2025-12-10T06:10:00.500Z")
    assert res.notes["format"].startswith("detected docker-json (5 of 5 sample lines, messages "
                                          "inside: leveled); 5 of 5 lines matched, 3 events")


def test_given_loghub_format_and_unparseable_times(tmp_path: Path) -> None:
    path = tmp_path / "app.txt"
    path.write_text("2025-12-10 06:30:00 INFO [w1] job done\nnot-a-time INFO [w1] job done\n")
    src = make_log_source({"kind": "files", "path": str(path),
                           "format": r"<Date> <Time> <Level> \[<Thread>\] <Content>"})
    res = src.read_logs(T0, T1)
    assert list(res.frame["message"]) == ["job done"]
    assert list(res.frame["level"]) == ["INFO"]
    assert res.warnings == ["app.txt: 1 of 2 events have no parseable time and were skipped"]
    assert res.notes["format"].startswith("loghub header")
    assert "1 of 2 lines matched" in res.notes["format"]


def test_bad_format_is_a_one_line_source_error(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("x\n")
    with pytest.raises(SourceError, match=r"sources\.logs\.format: bad log format .*Content"):
        make_log_source({"kind": "files", "path": str(path), "format": "<Date> <Level>"})


def test_ndjson_with_the_time_field_is_still_ndjson(tmp_path: Path) -> None:
    path = tmp_path / "l.ndjson"
    path.write_text(json.dumps({"@timestamp": "2025-12-10T06:00:01Z", "message": "m"}) + "\n")
    res = FilesLogSource(path).read_logs(T0, T1)
    assert list(res.frame["message"]) == ["m"] and "format" not in res.notes
