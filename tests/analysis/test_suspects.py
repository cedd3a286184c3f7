"""Suspect ranking on a hand-made three-service chain: exact order and breakdown."""

from __future__ import annotations

import pandas as pd

from incident_lib.analysis.suspects import rank_suspects

ONSET = pd.Timestamp("2026-01-01T01:00Z")
CALLS = {"web": ["api"], "api": ["db"], "db": []}


def _anoms() -> pd.DataFrame:
    rows = [("error_rate", "web", 0.9), ("error_rate", "api", 0.95), ("latency_p99", "db", 0.2)]
    return pd.DataFrame([{"signal": s, "service": v, "unit": "ratio", "baseline": 0.01,
                          "incident": 0.3, "z": 50.0, "score": sc, "onset": ONSET}
                         for s, v, sc in rows])


def _tpl() -> pd.DataFrame:
    return pd.DataFrame([{"service": "api", "template_id": "T1", "template": "boom <*>",
                          "level": "error", "status": "new", "baseline_count": 0,
                          "incident_count": 50, "weight": 1.0}])


def _changes() -> pd.DataFrame:
    return pd.DataFrame([
        {"time": ONSET - pd.Timedelta("3min"), "service": "api", "type": "deploy",
         "id": "c2", "description": "api v2"},
        {"time": ONSET - pd.Timedelta("1min"), "service": "web", "type": "feature_flag",
         "id": "c3", "description": "flag"},
        {"time": ONSET - pd.Timedelta("2h"), "service": "db", "type": "config", "id": "c1",
         "description": "old"},
        {"time": ONSET + pd.Timedelta("10min"), "service": "api", "type": "rollback",
         "id": "c4", "description": "after onset"},
    ])


def test_deepest_anomalous_service_with_recent_deploy_ranks_first() -> None:
    ranked = rank_suspects(_anoms(), _tpl(), _changes(), CALLS, ONSET)
    assert [(s["service"], s["change_id"]) for s in ranked] == [
        ("api", "c2"), ("web", "c3"), ("db", None)]
    top = ranked[0]
    assert top["breakdown"]["dependency"] == 0.25  # nothing it calls is anomalous
    assert top["breakdown"]["logs"] == 0.2
    assert ranked[1]["breakdown"]["dependency"] == 0.05  # web's callee api is anomalous
    assert {e["kind"] for e in top["evidence"]} == {"metric", "log", "dependency", "change"}


def test_changes_after_onset_or_long_before_are_ignored() -> None:
    ranked = rank_suspects(_anoms(), _tpl(), _changes(), CALLS, ONSET)
    db = next(s for s in ranked if s["service"] == "db")
    assert db["change_id"] is None  # c1 is 2 h before onset
    assert all(s["change_id"] != "c4" for s in ranked)
