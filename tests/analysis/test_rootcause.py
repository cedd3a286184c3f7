"""Combining evidence kinds: scaled per kind, ties share a rank, abstains without evidence."""

from __future__ import annotations

import pandas as pd

from incident_lib.analysis.rootcause import (
    RankConfig,
    evidence_table,
    rank_services,
    root_cause_of,
)

GATES = {"metric": 3.0, "error_share": 0.01}
CFG = RankConfig(kinds=("metric", "error_share"), gates=GATES, min_score=1.0, min_margin=0.25)


def _table(rows: dict[str, dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows).T.rename_axis("service")


def test_two_views_beat_one_huge_view() -> None:
    t = _table({"loud": {"metric": 5000.0, "error_share": 0.0},
                "culprit": {"metric": 50.0, "error_share": 0.4}})
    r = rank_services(t, CFG)
    # the loud metric counts at most 1: being singled out by two kinds wins
    assert list(r["service"]) == ["culprit", "loud"]
    assert r["metric"].max() == 1.0


def test_equal_scores_tie_and_no_root_cause_is_stated() -> None:
    t = _table({"zeta": {"metric": 20.0, "error_share": 0.2},
                "alpha": {"metric": 20.0, "error_share": 0.2},
                "mid": {"metric": 6.0, "error_share": 0.0}})
    r = rank_services(t, CFG)
    assert r.set_index("service").loc[["alpha", "zeta"], "rank"].tolist() == [1, 1]
    assert r.set_index("service").loc["mid", "rank"] == 3
    d = root_cause_of(r, CFG)
    assert d["root_cause"] is None and d["ties"] == ["alpha", "zeta"]


def test_nothing_past_the_gates_names_no_root_cause() -> None:
    t = _table({"a": {"metric": 2.0, "error_share": 0.001}, "b": {"metric": 1.0,
                                                                   "error_share": 0.0}})
    r = rank_services(t, CFG)
    assert r.empty
    assert root_cause_of(r, CFG)["root_cause"] is None


def test_clear_lead_is_stated() -> None:
    t = _table({"a": {"metric": 40.0, "error_share": 0.3}, "b": {"metric": 8.0,
                                                                  "error_share": 0.0}})
    r = rank_services(t, CFG)
    d = root_cause_of(r, CFG)
    assert d["root_cause"] == "a"
    # the lead it was stated on: its score over the next service's
    scores = r.set_index("service")["score"]
    assert d["lead"] == scores["a"] - scores.get("b", 0.0)


def test_victim_of_a_worse_callee_is_marked_and_can_be_scaled() -> None:
    t = _table({"caller": {"metric": 30.0, "error_share": 0.2},
                "callee": {"metric": 40.0, "error_share": 0.3}})
    calls = {"caller": ["callee"]}
    cfg = RankConfig(kinds=("metric", "error_share"), gates=GATES, victim_factor=0.5)
    r = rank_services(t, cfg, calls=calls).set_index("service")
    assert r.loc["caller", "victim_of"] == ["callee"]
    assert r.loc["caller", "score"] < r.loc["callee", "score"] / 2 + 1e-9


def test_missing_kind_is_absent_not_zero() -> None:
    me = pd.DataFrame({"service": ["a"], "pod": ["a-1"], "signal": ["cpu"],
                       "role": ["saturation"], "unit": [""], "baseline": [1.0],
                       "incident": [9.0], "z": [12.0], "over_peak": [3.0],
                       "onset": [pd.Timestamp("2026-01-01T10:00:00Z")]})
    t = evidence_table(metrics=me)
    assert list(t.columns) == ["metric"]  # no logs, names or traces: not measured
    r = rank_services(t, CFG)
    assert pd.isna(r.loc[0, "error_share"])


def test_metric_kind_reads_own_state_past_the_baselines_peak() -> None:
    """A latency excursion propagates to callers: it does not single out a service; a pod's
    own resource (saturation) past anything its baseline showed does."""
    t0 = pd.Timestamp("2026-01-01T10:00:00Z")
    me = pd.DataFrame({"service": ["caller", "callee", "callee"], "pod": ["c-1", "d-1", "d-1"],
                       "signal": ["p99", "cpu", "p99"],
                       "role": ["latency", "saturation", "latency"], "unit": [""] * 3,
                       "baseline": [1.0] * 3, "incident": [9.0] * 3, "z": [90.0, 4.0, 80.0],
                       "over_peak": [40.0, 12.0, 30.0], "onset": [t0] * 3})
    t = evidence_table(metrics=me)
    assert t.loc["callee", "metric"] == 12.0
    assert "caller" not in t.index or t.loc["caller", "metric"] == 0.0
