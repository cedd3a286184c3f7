"""Chat payloads through a loopback receiver: exact payloads per notifier (golden files) and
no mention or link injection from untrusted text (chat_messages.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from incident_lib.pipeline.notify import notify_now
from tests.chat_receiver import chat_receiver
from tests.pipeline.test_notify import ENV, _spec, make_run

GOLDEN = Path(__file__).parent / "golden"


CASES = [  # (notifier spec, event, stages present, golden file)
    ({"kind": "slack", "format": "blocks"}, "triage", ("triage",), "slack_blocks_triage.json"),
    ({"kind": "slack", "format": "attachments"}, "root_cause",
     ("triage", "correlation", "five_whys"), "slack_attachments_root_cause.json"),
    ({"kind": "mattermost", "format": "attachments"}, "triage", ("triage", "correlation"),
     "mattermost_triage.json"),
    ({"kind": "teams"}, "root_cause", ("triage", "correlation", "five_whys"),
     "teams_root_cause.json"),
    ({"kind": "webhook"}, "resolved", ("triage", "correlation", "five_whys"),
     "webhook_resolved.json"),
]




@pytest.mark.parametrize(("spec", "event", "stages", "golden"), CASES,
                         ids=[c[3].removesuffix(".json") for c in CASES])
def test_payload_matches_golden_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     spec: dict, event: str, stages: tuple, golden: str) -> None:
    with chat_receiver() as rec:
        monkeypatch.setenv(ENV, rec.url)
        path = make_run(tmp_path, [_spec(spec)], stages,
                        resolved_at="2026-11-20T12:30:00Z" if event == "resolved" else None)
        records = notify_now(path, event)
        posts = rec.wait_for(1, 5)
    assert [r["state"] for r in records] == ["sent"], records
    assert len(posts) == 1 and posts[0]["path"] == "/hooks/T0SECRET/B0SECRET/xoxsecretpath"
    assert posts[0]["headers"]["Content-Type"] == "application/json; charset=utf-8"
    got = posts[0]["json"]
    if os.environ.get("UPDATE_GOLDEN") == "1":
        (GOLDEN / golden).write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    assert got == json.loads((GOLDEN / golden).read_text("utf-8"))


def _texts(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return [value] if isinstance(value, str) else []


@pytest.mark.parametrize("kind", ["slack", "mattermost", "teams"])
def test_untrusted_text_pings_nobody_and_injects_no_link(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         kind: str) -> None:
    fmt = {"format": "attachments"} if kind != "teams" else {}
    with chat_receiver() as rec:
        monkeypatch.setenv(ENV, rec.url)
        path = make_run(tmp_path, [_spec({"kind": kind, **fmt})])
        notify_now(path, "root_cause")
        body = rec.wait_for(1, 5)[0]["json"]
    texts = "\n".join(_texts(body))
    # the hostile words arrived (readable), but in no form a platform turns into a mention
    assert "here" in texts and "channel" in texts and "U123ABC" in texts
    for needle in ("@here", "@channel", "@oncall", "<at>"):
        assert needle not in texts, (needle, kind)
    if kind == "teams":  # Adaptive Card Markdown: every active character backslash-escaped
        assert "msteams" not in json.dumps(body)  # mentions need msteams.entities: never sent
        assert "[click](https://evil.example)" not in texts
        assert all(texts[i - 1] == "\\" for i, ch in enumerate(texts) if ch in "<[*")
        return
    for needle in ("<!channel>", "<!here>", "<@U123ABC>", "<!subteam", "<https://evil"):
        assert needle not in texts, (needle, kind)
    if kind == "mattermost":  # Mattermost renders Markdown: no injected link or emphasis
        assert "[click](https://evil.example)" not in texts and "*bold*" not in texts
        for start in (i for i, _ in enumerate(texts) if texts.startswith("](", i)
                      and texts[i - 1] != "\\"):  # an escaped \] closes no link
            assert texts[start + 2:].startswith(("https://incidents.example.com/",
                                                 "https://grafana.example.com/",
                                                 "https://prom.example.com/",
                                                 "https://kibana.example.com/")), texts[start:80]
    else:  # every '<' (Slack) or '](' (Mattermost) left is one of our own links
        for start in (i for i, ch in enumerate(texts) if ch == "<"):
            assert texts[start:].startswith(("<https://incidents.example.com/",
                                             "<https://grafana.example.com/",
                                             "<https://prom.example.com/",
                                             "<https://kibana.example.com/")), texts[start:80]
