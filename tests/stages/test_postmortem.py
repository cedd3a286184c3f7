"""The report's Root cause section: what a reader sees when no cause is stated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from incident_lib.runs.folder import Run
from incident_lib.stages.postmortem import render_report


def _edit(path: Path, change: dict) -> None:
    env = json.loads(path.read_text())
    for key, value in change.items():
        target = env["data"]
        *parents, last = key.split(".")
        for p in parents:
            target = target[p]
        target[last] = value
    path.write_text(json.dumps(env))


def test_unstated_cause_shows_the_service_ranking_beside_the_suspects(demo_run: Path,
                                                                       tmp_path: Path) -> None:
    """The suspects table leads with payments, the service ranking (which decides whether a
    cause is stated) with checkout and no clear lead: the reader sees both, and why."""
    run = tmp_path / "r"
    shutil.copytree(demo_run, run, ignore=shutil.ignore_patterns(".lock"))
    ranking = [{"rank": 1, "service": "checkout", "score": 1.0,
                "kinds": {"behaviour": 1.0}, "victim_of": []},
               {"rank": 2, "service": "payments", "score": 0.82,
                "kinds": {"error_share": 0.5, "behaviour": 0.32}, "victim_of": ["db"]}]
    _edit(run / "findings" / "correlation.json",
          {"root_cause": None, "service_ranking.ranking": ranking,
           "service_ranking.root_cause": None,
           "service_ranking.reason": "top score 1.00 below 2.00"})
    _edit(run / "findings" / "five_whys.json", {"root_cause.stated": False})
    render_report(Run(run))
    text = (run / "report.md").read_text()
    section = text.split("## Root cause")[1].split("## 5 Whys")[0]
    assert "Suspected, not confirmed: payments" in section
    assert "**Service ranking**" in section and "top score 1.00 below 2.00" in section
    assert "| 1 | checkout | 1 | behaviour 1.00 |" in section
    assert "| 2 | payments | 0.82 | error_share 0.50, behaviour 0.32; victim of db |" in section


def test_stated_cause_shows_no_second_ranking(demo_run: Path) -> None:
    text = (demo_run / "report.md").read_text()
    section = text.split("## Root cause")[1].split("## 5 Whys")[0]
    assert "payments" in section and "**Service ranking**" not in section
