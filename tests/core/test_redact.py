"""Personal data redaction."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from incident_lib.core.redact import redact_series, redact_text


def test_redact_text() -> None:
    s = "user bob@example.org from 10.1.2.3 paid with 4111-1111-1111-1111 order 1234567890123"
    assert redact_text(s) == "user <email> from <ip> paid with <card> order 1234567890123"


def test_redact_series_matches_text() -> None:
    vals = ["card 4111 1111 1111 1111", "ip 192.168.0.1 ok", "no pii 12345", None]
    out = redact_series(pd.Series(vals, dtype=object))
    assert list(out[:3]) == ["card <card>", "ip <ip> ok", "no pii 12345"]
    assert pd.isna(out[3])
    # rows stay in place when the index repeats labels (frames concatenated without reset)
    rep = redact_series(pd.Series(["ip 10.0.0.1", "ok", None, "a@b.com"], index=[0, 0, 1, 1]))
    assert rep.tolist()[:2] == ["ip <ip>", "ok"] and rep.tolist()[3] == "<email>"
    assert pd.isna(rep.tolist()[2])


@pytest.mark.parametrize("raw, clean", [
    ("mail jöhn@exämple.com now", "mail <email> now"),
    ("encoded carol%40example.com here", "encoded <email> here"),
    ("card 4111.1111.1111.1111 ok", "card <card> ok"),
    ("order4111111111111111 x", "order<card> x"),
    ("from 2001:db8::1 and fe80::1 and ::ffff:10.0.0.1", "from <ip> and <ip> and <ip>"),
    ("at 10:42:00 std::vector", "at 10:42:00 std::vector"),
    ("addr 2001:0db8:85a3:0000:0000:8a2e:0370:7334 up", "addr <ip> up"),
    ("v4 tail 0:0:0:0:0:ffff:10.0.0.1 up", "v4 tail <ip> up"),
    ("18:25:44.525 INFO  c.Svc#12 a:b:c:d:e: done", "18:25:44.525 INFO  c.Svc#12 a:b:c:d:e: done"),
    ("tok eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdEFGHijkl end", "tok <jwt> end"),
    ("login password=hunter2 next", "login password=<secret> next"),
    ('{"db_password": "s3cr3t", "user": "x"}', '{"db_password": <secret>, "user": "x"}'),
    ("key AKIAIOSFODNN7EXAMPLE used", "key <aws-key> used"),
    ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "aws_secret_access_key=<secret>"),
    ("Authorization: Bearer abcdefghijklmnop", "Authorization: Bearer <secret>"),
    ("token_count=5 status=500 took 12.5ms", "token_count=5 status=500 took 12.5ms"),
    ("trace 4bf92f3577b34da6a3ce929d0e0e4736 order 1234567890123",
     "trace 4bf92f3577b34da6a3ce929d0e0e4736 order 1234567890123"),
])
def test_redaction_covers_real_shapes_of_personal_data_and_secrets(raw: str, clean: str) -> None:
    assert redact_text(raw) == clean
    assert redact_series(pd.Series([raw], dtype=object))[0] == clean


def test_record_redacts_every_text_field_and_the_warnings(tmp_path: Path) -> None:
    from incident_lib.core.model import Incident
    from incident_lib.pipeline.runner import create_run
    from incident_lib.runs.folder import Run
    from incident_lib.sources.base import QueryResult

    inc = Incident(id="pii", title="t", service="s", start="2026-11-20T09:00:00Z",
                   end="2026-11-20T10:00:00Z")
    run = Run(create_run(inc, root=tmp_path))
    frame = pd.DataFrame({"time": pd.to_datetime(["2026-11-20T09:30:00Z"] * 2),
                          "service": ["pay", "pay"], "host": ["10.0.0.7", None],
                          "author": ["carol@example.com", "bob"], "count": [1, 2]})
    res = QueryResult(frame, "q", "files",
                      warnings=["l.ndjson:3: skipped malformed line ('x@y.org 4111 1111 1111 "
                                "1111' is not a time)"], notes={"sample": ["a@b.com"]})
    out = run.record("changes", res, "triage")
    assert out["host"].iat[0] == "<ip>" and pd.isna(out["host"].iat[1])
    assert list(out["author"]) == ["<email>", "bob"]
    assert list(out["count"]) == [1, 2] and list(out["service"]) == ["pay", "pay"]
    meta = run.evidence_index()["changes"]
    text = json.dumps(meta) + run.evidence("changes").to_csv()
    text += str(pq.read_schema(run.path / "evidence" / "changes.parquet").metadata)
    for value in ("x@y.org", "4111 1111 1111 1111", "a@b.com", "carol@example.com", "10.0.0.7"):
        assert value not in text


def test_redact_frame_leaves_columns_of_lists_alone() -> None:
    """Aggregation results can hold lists (field pairs); only all-text columns are redacted."""
    import pandas as pd

    from incident_lib.runs.folder import redact_frame

    frame = pd.DataFrame({"value": [["a@example.com", "b"], ["c", None]],
                          "text": ["mail a@example.com", None]})
    out = redact_frame(frame)
    assert out["value"].tolist() == [["a@example.com", "b"], ["c", None]]
    assert pd.isna(out["text"].iat[1]) and "a@example.com" not in out["text"].iat[0]
