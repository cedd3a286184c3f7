"""Suspect ranking on a hand-made three-service chain: exact order and breakdown."""

from __future__ import annotations

import numpy as np
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


def _rows(rows: list[tuple]) -> pd.DataFrame:
    """Anomaly rows (signal, service, baseline, incident, score, onset offset in minutes)."""
    return pd.DataFrame([{"signal": s, "service": v, "unit": "", "baseline": b,
                          "incident": i, "z": 20.0, "score": sc,
                          "onset": ONSET + pd.Timedelta(minutes=m)}
                         for s, v, b, i, sc, m in rows])


NO_TPL = pd.DataFrame(columns=["service", "template_id", "template", "level", "status",
                               "baseline_count", "incident_count", "weight"])


def _tpl_rows(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"service": s, "template_id": f"T{i}", "template": t, "level": "error",
                          "status": "new", "baseline_count": 0, "incident_count": 40,
                          "weight": 1.0} for i, (s, t) in enumerate(rows)])


def test_outage_of_the_deepest_service_without_change_beats_a_decoy_deploy() -> None:
    an = _rows([("error_rate", "db", 0.0, 0.3, 1.0, 0), ("error_rate", "api", 0.0, 0.3, 1.0, 0),
                ("error_rate", "web", 0.0, 0.1, 0.9, 0.25)])
    tpl = _tpl_rows([("api", "query failed: connection to db refused <*>")])
    ranked = rank_suspects(an, tpl, _changes(), CALLS, ONSET)
    assert [(s["service"], s["change_id"]) for s in ranked[:3]] == [
        ("db", None), ("api", "c2"), ("web", "c3")]
    assert ranked[0]["breakdown"] == {"metrics": 0.3, "logs": 0.2, "dependency": 0.25,
                                      "change": 0.0}
    api = ranked[1]
    assert api["breakdown"]["metrics"] == 0.15  # a victim's own evidence counts half
    assert any("victim of failures of its dependencies: db" in e["text"]
               for e in api["evidence"])


def test_traffic_surge_names_the_entrypoint_and_no_change() -> None:
    an = _rows([("traffic", "web", 40.0, 120.0, 0.95, -3), ("traffic", "api", 20.0, 60.0, 0.9, -3),
                ("error_rate", "api", 0.0, 0.15, 1.0, 0), ("latency_p99", "web", 0.2, 5, 1.0, 0)])
    tpl = _tpl_rows([("web", "call to api failed: 503 <*>")])
    ranked = rank_suspects(an, tpl, _changes().iloc[2:], CALLS, ONSET)
    top = ranked[0]
    assert (top["service"], top["change_id"]) == ("web", None)
    assert any(e["text"].startswith("traffic surge starts here") for e in top["evidence"])
    api = next(s for s in ranked if s["service"] == "api")
    assert any("traffic change arriving from its caller(s): web" in e["text"]
               for e in api["evidence"])


def test_callee_named_by_callers_errors_is_the_suspect_even_without_own_errors() -> None:
    # certificate expiry: the callee's traffic collapses, its callers log x509 errors naming it
    an = _rows([("traffic", "db", 30.0, 3.0, 0.8, 0), ("error_rate", "api", 0.0, 0.3, 1.0, 0),
                ("error_rate", "web", 0.0, 0.1, 0.9, 0)])
    tpl = _tpl_rows([("api", "call to db failed: x509: certificate has expired <*>")])
    ranked = rank_suspects(an, tpl, _changes(), CALLS, ONSET)
    assert (ranked[0]["service"], ranked[0]["change_id"]) == ("db", None)
    assert {e["text"] for e in ranked[0]["evidence"] if e["kind"] == "log"} == {
        "named in new or surging error logs of api"}


def test_noisy_neighbour_on_a_shared_host() -> None:
    calls = {**CALLS, "batch": []}
    an = _rows([("cpu", "batch", 0.1, 1.9, 1.0, -2), ("latency_p99", "db", 0.01, 0.5, 1.0, 0),
                ("error_rate", "api", 0.0, 0.1, 0.9, 0.25)])
    tpl = _tpl_rows([("db", "worker threads starved <*>"), ("api", "db timed out <*>")])
    for coloc, text in (({"node-4": ["db", "batch"]}, "CPU burnt by a service on the same host"),
                        (None, "hypothesis: shared host")):
        ranked = rank_suspects(an, tpl, _changes().iloc[2:], calls, ONSET, colocated=coloc)
        assert [s["service"] for s in ranked[:2]] == ["batch", "db"]
        assert any(text in e["text"] for e in ranked[1]["evidence"])


def test_leak_deploy_long_before_impact_counts_from_the_first_anomaly() -> None:
    an = _rows([("memory", "api", 3e8, 5e8, 1.0, -13), ("error_rate", "api", 0.0, 0.3, 1.0, 0),
                ("error_rate", "web", 0.0, 0.1, 0.9, 0)])
    ch = pd.DataFrame([{"time": ONSET - pd.Timedelta("14min"), "service": "api",
                        "type": "deploy", "id": "leak", "description": "api v3"},
                       {"time": ONSET - pd.Timedelta("2min"), "service": "web",
                        "type": "deploy", "id": "decoy", "description": "web v9"}])
    ranked = rank_suspects(an, NO_TPL, ch, CALLS, ONSET)
    assert (ranked[0]["service"], ranked[0]["change_id"]) == ("api", "leak")
    assert ranked[0]["breakdown"]["change"] == round(0.25 * np.exp(-0.1), 4)  # 1 min lead
    assert ranked[0]["margin"] > 0.3


def test_equal_scores_share_a_rank_and_have_no_margin() -> None:
    """Two services with identical evidence tie: same rank, margin 0, not ordered by merit."""
    import pandas as pd

    from incident_lib.analysis.suspects import rank_suspects

    an = pd.DataFrame({"signal": ["error_rate", "error_rate"], "service": ["zeta", "alpha"],
                       "baseline": [0.01, 0.01], "incident": [0.2, 0.2], "z": [9.0, 9.0],
                       "score": [0.9, 0.9], "unit": ["ratio", "ratio"],
                       "onset": [pd.Timestamp("2026-01-01T10:00:00Z")] * 2})
    empty_t = pd.DataFrame(columns=["service", "template", "weight", "status", "level",
                                    "baseline_count", "incident_count", "template_id"])
    empty_c = pd.DataFrame(columns=["time", "service", "type", "id", "description"])
    out = rank_suspects(an, empty_t, empty_c, {}, pd.Timestamp("2026-01-01T10:00:00Z"))
    assert [s["rank"] for s in out] == [1, 1]
    assert all(s["margin"] == 0.0 for s in out)
