"""Each stage runs whole in one call and agrees with what its notebook wrote."""

from __future__ import annotations

import shutil
from pathlib import Path

from incident_lib.runs.folder import Run
from incident_lib.stages import correlation, five_whys, postmortem, triage


def test_triage_run_without_saving_agrees_with_the_notebook(demo_run: Path) -> None:
    run = Run(demo_run)
    saved = run.triage()
    fresh = triage.run(run, save=False)
    assert saved is not None
    assert fresh.onset.time == saved.onset.time
    assert fresh.impact.affected_services == saved.impact.affected_services
    assert fresh.severity and saved.severity and fresh.severity.level == saved.severity.level
    assert fresh.status_update and fresh.status_update.text == saved.status_update.text


def test_all_stages_in_one_call_each_reproduce_the_findings(demo_run: Path,
                                                            tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(demo_run, copy, ignore=shutil.ignore_patterns("findings", "report.md"))
    run = Run(copy)
    tri = triage.run(run)
    cor = correlation.run(run)
    why = five_whys.run(run)
    pm = postmortem.run(run)
    orig = Run(demo_run)
    assert tri.to_dict()["onset"] == orig.findings("triage")["onset"]
    assert [s.service for s in cor.suspects] == [s["service"] for s in
                                                 orig.findings("correlation")["suspects"]]
    assert why.decision is not None and why.decision.target == "chg-1004 on payments"
    assert pm.report == "report.md"
    assert "chg-1004" in (copy / "report.md").read_text()
