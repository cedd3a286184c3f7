"""Responder notes survive re-rendering; report lint; status updates appended to the timeline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from incident_lib.cli.main import main
from incident_lib.core import notes
from incident_lib.core.errors import InputError
from incident_lib.core.findings import Suspect
from incident_lib.report.lint import lint_run
from incident_lib.runs.folder import Run
from incident_lib.stages import notes as stage_notes
from incident_lib.stages.status import append_status_update


def _copy(demo_run: Path, dest: Path, full: bool = False) -> Path:
    """A writable copy of the demo run (incident + findings, or everything)."""
    if full:
        shutil.copytree(demo_run, dest, ignore=shutil.ignore_patterns(".lock"))
        return dest
    shutil.copytree(demo_run / "findings", dest / "findings")
    shutil.copy(demo_run / "incident.json", dest / "incident.json")
    return dest


def test_init_notes_prefills_generated_action_items(demo_run: Path, tmp_path: Path,
                                                    truth: dict) -> None:
    run = _copy(demo_run, tmp_path / "r")
    p = stage_notes.init_notes(run)
    assert p == run / "notes.yaml"
    parsed, problems = notes.check_notes(p.read_text())
    assert problems == []
    # no "alert on db_pool_utilization": it moved 30 s before the onset, so an alert on it
    # (with any `for:`) would page after the impact alert
    assert parsed["action_items"] == [
        {"action": f"Find and fix the defect in {truth['root_cause_change']} before redeploying",
         "type": "fix", "owner": None, "due": None, "status": "open"},
        {"action": "Add a pre-production check for this failure mode", "type": "prevent",
         "owner": None, "due": None, "status": "open"},
    ]
    assert parsed["root_cause"] == {"confirmed": False, "text": None, "not_caught_because": None}
    p.write_text("edited: true\n")
    assert stage_notes.init_notes(run).read_text() == "edited: true\n"  # never overwritten


def test_check_notes_names_file_and_line() -> None:
    text = ("root_cause: {confirmed: true, text: pool leak}\n"
            "acknowledged: soon\n"
            "action_items:\n"
            "  - action: fix it\n"
            "    due: next week\n"
            "  - {owner: bob}\n"
            "  - action: ok\n"
            "    status: maybe\n"
            "timeline:\n"
            "  - {event: no time}\n")
    parsed, problems = notes.check_notes(text)
    assert problems == [
        "notes.yaml:2: acknowledged is not a time: use ISO-8601 like 2026-11-20T10:50:00Z",
        "notes.yaml:4: action_items[0] due 'next week' is not a date: use YYYY-MM-DD",
        "notes.yaml:6: action_items[1] has no 'action' text",
        "notes.yaml:7: action_items[2] status 'maybe' is unknown: use open, in progress, done, "
        "wontfix",
        "notes.yaml:10: timeline[0] has no time: use {time: ISO-8601, event: text, source: text}",
    ]
    assert parsed["root_cause"]["text"] == "pool leak" and parsed["action_items"] == []
    bad, problems = notes.check_notes("lessons:\n  went_well: [a, b\nother: 1\n")
    assert bad == {}
    assert problems == ["notes.yaml:3: not valid YAML (expected ',' or ']', but got ':'): "
                        "the notes are ignored until it is fixed"]


def test_load_notes_raises_input_error(tmp_path: Path) -> None:
    (tmp_path / "notes.yaml").write_text("- just\n- a list\n")
    with pytest.raises(InputError, match="notes.yaml:1: must be a mapping"):
        notes.load_notes(tmp_path)
    assert notes.load_notes(tmp_path / "none") == notes.empty_notes()


def test_merge_into_context_exact() -> None:
    ctx = {"top_suspect": Suspect(service="payments", change_id="chg-9"), "early_signal": None,
           "timeline": [{"time": "2026-11-20T10:40:00+00:00", "event": "deploy",
                         "source": "changes", "when": "2026-11-20 10:40:00"},
                        {"time": "2026-11-20T11:00:00+00:00", "event": "recovered",
                         "source": "metrics", "when": "2026-11-20 11:00:00"}]}
    parsed, _ = notes.check_notes(
        "root_cause: {text: leak, confirmed: true, not_caught_because: no load test}\n"
        "revenue_impact: ~12k EUR\nusers_affected: 1200\n"
        "lessons: {went_well: [fast rollback], got_lucky: quiet hour}\n"
        "timeline: [{time: '2026-11-20T10:50:00Z', event: paged, source: pagerduty}]\n")
    out = stage_notes.merge_into_context(ctx, parsed, [
        {"time": "2026-11-20T10:55:00Z", "color": "🔴", "state": "Investigating"}])
    assert out["root_cause_note"]["text"] == "leak" and out["root_cause_confirmed"] is True
    assert out["not_caught_because"] == "no load test"
    assert (out["revenue_impact"], out["users_affected"]) == ("~12k EUR", 1200)
    assert out["lessons"] == {"went_well": ["fast rollback"], "went_wrong": [],
                              "got_lucky": ["quiet hour"]}
    assert out["action_items"] == [
        {"action": "Find and fix the defect in chg-9 before redeploying", "type": "fix",
         "owner": None, "due": None, "status": "open"},
        {"action": "Add a pre-production check for this failure mode", "type": "prevent",
         "owner": None, "due": None, "status": "open"}]
    assert [(e["when"], e["event"], e["source"]) for e in out["timeline"]] == [
        ("2026-11-20 10:40:00", "deploy", "changes"),
        ("2026-11-20 10:50:00", "paged", "pagerduty"),
        ("2026-11-20 10:55:00", "status update: 🔴 Investigating", "incident status --update"),
        ("2026-11-20 11:00:00", "recovered", "metrics")]
    assert ctx["timeline"][0] == out["timeline"][0] and len(ctx["timeline"]) == 2  # not mutated


NOTES = """\
root_cause:
  confirmed: true
  text: "payments v2.14.0 held DB connections across retries <img src=x>"
  not_caught_because: no load test with the new account lookup
users_affected: 1200
revenue_impact: "~12k EUR of failed checkouts"
incident_commander: "@dana"
responders: ["@eli", "@fay"]
data_loss: no
acknowledged: 2026-11-20T10:49:30Z
long_term_prevention: connection-leak detection in CI
lessons:
  went_well: [rollback took 3 minutes]
  went_wrong: ["alert fired 4 min after onset | late"]
  got_lucky: [low traffic hour]
action_items:
  - {action: Fix connection leak, type: fix, owner: alice, due: 2026-12-01, status: done}
  - {action: Alert on pool utilisation, type: detect, owner: bob, due: 2026-12-15}
timeline:
  - {time: "2026-11-20T11:05:00Z", event: "on-call decided to roll back", source: on-call}
"""


def test_report_keeps_responder_notes(demo_run: Path, tmp_path: Path) -> None:
    from incident_lib.stages.postmortem import render_report

    run = _copy(demo_run, tmp_path / "e2e-demo", full=True)
    (run / "notes.yaml").write_text(NOTES)
    for _ in range(2):  # re-rendering keeps them
        render_report(Run(run))
        text = (run / "report.md").read_text()
        assert ("**Root cause (confirmed by responders).** payments v2.14.0 held DB "
                "connections across retries \\<img src=x>") in text
        assert "| Users affected | 1200 |" in text
        assert "| Revenue impact | \\~12k EUR of failed checkouts |" in text
        assert "**Why it was not caught earlier.** no load test with the new account lookup"\
            in text
        assert "- Long term: connection-leak detection in CI." in text
        assert "- What went wrong: alert fired 4 min after onset \\| late" in text
        assert "| Fix connection leak | fix | alice | 2026-12-01 | done |" in text
        assert "| Alert on pool utilisation | detect | bob | 2026-12-15 | open |" in text
        assert "| 2026-11-20 11:05:00 | on-call decided to roll back | on-call |" in text
        assert "| TODO | TODO |" not in text
        head = "\n".join(text.splitlines()[:20])
        assert "- **Incident commander:** @dana; **responders:** @eli, @fay" in head
        assert "- **Data loss:** no" in head
        assert "- MTTA (acknowledged minus alert time): 2m30s." in text
    assert lint_run(run) == []


def test_lint_demo_report_lists_missing_owners_and_todos(demo_run: Path) -> None:
    problems = lint_run(demo_run)
    owners = [p.split(": ", 1)[1] for p in problems if "action item" in p]
    assert owners == [f"action item {n} has no {w}" for n in (1, 2)
                      for w in ("owner", "due date")]
    todos = [p for p in problems if ": TODO left: " in p]
    assert any("| Users affected | TODO" in p for p in todos)
    assert any("What went well: TODO" in p for p in todos)
    assert all(p.startswith("report.md:") for p in problems)


REPORT = """\
# Postmortem x

## Executive summary
## Impact
## Detection
## Timeline

| when | event | source |
|---|---|---|
| 2026-11-20 10:40:00 | deploy | changes |
| 2026-11-20 10:30:00 | alert \\| fired | alertmanager |

## Root cause
## 5 Whys
## Resolution
## Lessons learned

- What went well: TODO

## Action items

| Action | Type | Owner | Due | Status |
|---|---|---|---|---|
| Fix | fix | alice | 2026-12-01 | open |
| Alert | detect | TODO | next week | open |
| Check | prevent | bob | TODO | open |

## Related
"""


def test_lint_synthetic_report_exact(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "incident.json").write_text("{}")
    (tmp_path / "report.md").write_text(REPORT)
    expected = [
        "report.md: required section '## Prevention' is missing",
        "report.md:25: action item 2 has no owner",
        "report.md:25: action item 2 due date 'next week' is not YYYY-MM-DD",
        "report.md:26: action item 3 has no due date",
        "report.md:11: timeline out of order: 2026-11-20 10:30:00 comes after "
        "2026-11-20 10:40:00",
        "report.md:18: TODO left: - What went well: TODO",
    ]
    assert lint_run(tmp_path) == expected
    assert main(["report", "lint", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == expected
    (tmp_path / "report.md").unlink()
    assert lint_run(tmp_path) == ["report.md: missing: render it with `incident report RUN`"]


def test_status_update_from_current_numbers(demo_run: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    run = _copy(demo_run, tmp_path / "e2e-demo")
    triage_text = Run(demo_run).findings("triage")["status_update"]["text"]
    assert append_status_update(run) == triage_text  # same numbers, same update
    (run / "notes.yaml").write_text("current_action: rolling back chg-1004 <b>now</b>\n")
    assert main(["status", str(run), "--update"]) == 0
    second = capsys.readouterr().out
    assert "- **Current action:** rolling back chg-1004 \\<b>now\\</b>\n" in second
    assert "- **Next update:** 12:32 UTC" in second
    ups = json.loads((run / "status_updates.json").read_text())
    assert [(u["color"], u["state"], u["severity"], u["next_update"]) for u in ups] == [
        ("🟡", "Monitoring", "P1", "2026-11-20T12:32:00Z")] * 2
    assert ups[1]["text"] == second.rstrip("\n")


def test_status_update_falls_back_to_recorded_evidence(demo_run: Path, tmp_path: Path) -> None:
    run = _copy(demo_run, tmp_path / "e2e-demo", full=True)
    inc = json.loads((run / "incident.json").read_text())
    inc["sources"]["metrics"]["path"] = str(tmp_path / "gone.om")
    (run / "incident.json").write_text(json.dumps(inc))
    text = append_status_update(run)
    assert text.startswith(Run(demo_run).findings("triage")["status_update"]["text"])
    assert "\n- **Numbers:** from recorded evidence (backend unavailable: metrics file " in text


def _movers(lead_s: float) -> dict:
    onset = pd.Timestamp("2026-11-20T10:42:15Z")
    return {"onset": {"time": onset.isoformat(), "first_movers": [
        {"series": "memory{service=payments}", "signal": "memory", "service": "payments",
         "onset": (onset - pd.Timedelta("20min")).isoformat()},
        {"series": "db_pool_utilization{service=payments}", "signal": "db_pool_utilization",
         "service": "payments", "onset": (onset - pd.Timedelta(seconds=lead_s)).isoformat()},
    ]}}


def test_early_signal_only_when_it_would_page_before_the_impact() -> None:
    from incident_lib.stages.notes import early_signal

    assert early_signal(_movers(30)) is None  # 30 s of lead: a 5m `for:` fires far too late
    assert early_signal(_movers(30), alert_for="0s")["signal"] == "db_pool_utilization"
    sig = early_signal(_movers(600))
    assert sig["signal"] == "db_pool_utilization" and sig["lead_s"] == 600
    assert early_signal(_movers(600), alert_for="15m") is None
    assert early_signal({"onset": {"time": None, "first_movers": []}}) is None


def test_a_recommendation_without_target_renders_as_bold_text(demo_run: Path,
                                                              tmp_path: Path) -> None:
    """`**investigate **` (a space before the closing stars) is not bold in Markdown."""
    from incident_lib.stages.postmortem import render_report

    run = _copy(demo_run, tmp_path / "r", full=True)
    fw = run / "findings" / "five_whys.json"
    doc = json.loads(fw.read_text())
    doc["data"]["decision"].update(decision="investigate", target="")
    fw.write_text(json.dumps(doc))
    text = Path(render_report(Run(run))).read_text()
    lines = [ln for ln in text.splitlines() if "Recommend" in ln]
    assert lines and all("**investigate**" in ln for ln in lines), lines
