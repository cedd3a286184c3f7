"""5 Whys cite evidence or say hypothesis; the rollback-or-fix decision tree."""

from __future__ import annotations

import pandas as pd
import pytest

from incident_lib.analysis.whys import call_path, five_whys, rollback_or_fix

ONSET = pd.Timestamp("2026-01-01T01:00Z")


def _suspect(**kw: object) -> dict:
    base = {"service": "api", "change_id": "c2", "change": "api v2", "change_type": "deploy",
            "change_time": (ONSET - pd.Timedelta("3min")).isoformat(), "score": 0.9,
            "evidence": [{"kind": "change", "text": "deploy c2 3 min before onset"}]}
    return {**base, **kw}


def test_call_path() -> None:
    calls = {"web": ["api", "cache"], "api": ["db"]}
    assert call_path(calls, "web", "db") == ["web", "api", "db"]
    assert call_path(calls, "db", "web") == []


def test_whys_without_data_are_hypotheses() -> None:
    whys = five_whys("web", [], pd.DataFrame(columns=["service", "signal", "score"]),
                     pd.DataFrame(), {}, {})
    assert len(whys) == 5
    assert whys[0]["status"] == "hypothesis"
    assert all(w["status"] == "hypothesis" for w in whys)


def test_whys_with_evidence_are_facts() -> None:
    an = pd.DataFrame([{"service": "web", "signal": "error_rate", "score": 0.9, "unit": "ratio",
                        "baseline": 0.001, "incident": 0.2, "onset": ONSET}])
    whys = five_whys("web", [_suspect()], an, pd.DataFrame(), {"web": ["api"]},
                     {"changes": "changes query"})
    assert whys[0]["status"] == "fact"
    assert "0.10% in baseline -> 20.00%" in whys[0]["evidence"][0]["numbers"]
    change_why = next(w for w in whys if w["question"].startswith("Why did this start"))
    assert change_why["status"] == "fact"
    assert change_why["evidence"][0]["query"] == "changes query"


@pytest.mark.parametrize("sev,suspect,fix,decision,rule", [
    ("P1", None, None, "roll back", "critical impact"),
    ("P2", _suspect(), None, "roll back", "change shortly before onset"),
    ("P2", _suspect(change_id=None, change_time=None, change_type=None), 10, "fix forward",
     "fix < 15 min"),
    ("P3", _suspect(change_id=None, change_time=None, change_type=None), 45, "roll back",
     "fix > 30 min"),
    ("P3", None, None, "roll back", "default"),
])
def test_rollback_or_fix(sev: str, suspect: dict | None, fix: float | None, decision: str,
                         rule: str) -> None:
    out = rollback_or_fix(sev, suspect, ONSET, fix)
    assert out["decision"] == decision and rule in out["rule"]
