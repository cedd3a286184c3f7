"""The outcome of an investigation: incident, no incident found (with the strongest
deviation), or inconclusive (naming what is missing); a cause only with a clear lead."""

from __future__ import annotations

import numpy as np
import pandas as pd

from incident_lib.analysis.outcome import (
    corroboration_of,
    decide_outcome,
    root_cause_claim,
    strongest_deviation,
)

T0 = pd.Timestamp("2026-01-01T09:00Z")


def _series(svc: str, values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"time": T0 + pd.to_timedelta(np.arange(len(values)) * 15, "s"),
                         "service": svc, "value": values})


def test_strongest_deviation_finds_a_short_latency_bump_not_noise() -> None:
    rng = np.random.default_rng(1)
    lat = 0.085 + rng.normal(0, 0.003, 360)
    lat[200:215] = 0.21  # ~4 min at 2.5x: the one real event in a quiet window
    err = np.abs(rng.normal(0.002, 0.0005, 360))
    err[100] = 0.05  # a single-scrape blip is not a deviation
    frames = {"latency_p99": _series("inventory", lat), "error_rate": _series("web", err)}
    sd = strongest_deviation(frames, {"latency_p99": "seconds", "error_rate": "ratio"},
                             {"latency_p99": "up", "error_rate": "up"})
    assert sd is not None
    assert (sd["signal"], sd["service"]) == ("latency_p99", "inventory")
    assert abs(pd.Timestamp(sd["peak_time"]) - (T0 + pd.Timedelta(seconds=207 * 15))) \
        < pd.Timedelta("3min")
    assert "85 ms" in sd["text"] and "210 ms" in sd["text"] and "inventory" in sd["text"]


def test_no_series_no_deviation() -> None:
    assert strongest_deviation({"x": pd.DataFrame()}, {}, {}) is None


def _decide(**kw: object) -> dict:
    args = {"onset": None, "alerted": False, "evidence_rows": {"changes": 3, "log_volume": 10},
            "metric_rows": {"error_rate": 100, "latency_p99": 100}, "strongest": None}
    return decide_outcome(**{**args, **kw})


def test_every_query_empty_is_inconclusive_no_data() -> None:
    out = _decide(evidence_rows={"changes": 0, "log_volume": 0},
                  metric_rows={"error_rate": 0, "latency_p99": 0})
    assert out["kind"] == "inconclusive" and "no data in the window" in out["reasons"][0]


def test_nothing_recorded_yet_is_judged_on_the_onset_alone() -> None:
    assert _decide(evidence_rows={}, metric_rows={})["kind"] == "no_incident"
    assert _decide(evidence_rows={}, metric_rows={}, onset="2026-01-01T10:00Z")["kind"] \
        == "incident"


def test_logs_without_metrics_is_inconclusive() -> None:
    out = _decide(metric_rows={"error_rate": 0})
    assert out["kind"] == "inconclusive" and "no metric data" in out["reasons"][0]


def test_alert_without_excursion_is_inconclusive_not_no_incident() -> None:
    assert _decide(alerted=True)["kind"] == "inconclusive"


def test_quiet_window_is_no_incident_and_keeps_the_deviation() -> None:
    sd = {"text": "inventory latency_p99 85 ms -> 209 ms"}
    out = _decide(strongest=sd)
    assert out["kind"] == "no_incident" and out["strongest_deviation"] == sd
    assert any("golden signals" in c for c in out["checked"])


def test_onset_is_an_incident() -> None:
    out = _decide(onset="2026-01-01T10:42:15Z", affected=["payments"])
    assert out["kind"] == "incident" and "10:42:15" in out["reasons"][0]


ONSET = "2026-01-01T10:42:15Z"
WITHIN = [{"series": "latency_p99{service=web}", "judged": True, "beyond": False}]
LOGS = {"measured": ["9,000 log lines of the window (30,000 in the baseline)"], "found": []}


def test_an_onset_is_the_first_estimate_before_logs_and_spans_are_read() -> None:
    assert _decide(onset=ONSET, range_checks=WITHIN)["kind"] == "incident"
    assert _decide(onset=ONSET, corroboration=LOGS)["kind"] == "incident"  # old findings


def test_the_first_estimate_says_it_is_one_until_a_customer_signal_confirms_it() -> None:
    """The triage screen comes before the logs and spans are read: an onset on internal
    services alone must read as provisional there, not as a confirmed incident."""
    out = _decide(onset=ONSET, affected=["inventory"], range_checks=WITHIN)
    said = " ".join(out["reasons"])
    assert out["provisional"] and "first estimate" in said and "logs and spans" in said
    beyond = [{**WITHIN[0], "beyond": True}]
    out = _decide(onset=ONSET, range_checks=beyond)
    said = " ".join(out["reasons"])
    assert not out["provisional"] and "first estimate" not in said and "left the range" in said
    assert not _decide(onset=ONSET, range_checks=WITHIN, corroboration=LOGS)["provisional"]


def test_moves_the_logs_and_spans_do_not_confirm_are_no_incident() -> None:
    """One internal service's p99 moved; the customer-facing p99 stayed in its range and the
    logs of the window show nothing: the background of ~50 series, not an incident."""
    out = _decide(onset=ONSET, affected=["inventory"], range_checks=WITHIN,
                  corroboration=LOGS)
    assert out["kind"] == "no_incident"
    assert "inventory" in out["reasons"][0] and "9,000 log lines" in out["reasons"][0]
    assert "no customer-facing signal left the range" in out["reasons"][0]


def test_without_logs_or_spans_unconfirmed_moves_are_inconclusive() -> None:
    out = _decide(onset=ONSET, alerted=True, affected=["inventory"], range_checks=WITHIN,
                  corroboration={"measured": [], "found": []})
    assert out["kind"] == "inconclusive" and "no logs or spans" in out["reasons"][0]
    why = "the 4,890 spans read could not be compared with a baseline"
    out = _decide(onset=ONSET, range_checks=WITHIN,
                  corroboration={"measured": [], "found": [], "unmeasured": [why]})
    assert out["kind"] == "inconclusive" and out["reasons"][0].endswith(f", and {why}")
    short = [{**WITHIN[0], "judged": False}]
    out = _decide(onset=ONSET, range_checks=short, corroboration={"measured": [], "found": []})
    assert "too short to judge" in out["reasons"][0]


def test_a_saturated_pod_nothing_else_confirms_is_inconclusive_not_no_incident() -> None:
    """A pod pinned at its CPU limit, with no errors, no changed operation and no customer
    signal out of range: not "no incident found" (something did saturate), not an incident
    either (nothing shows harm): inconclusive, naming the pod."""
    sat = {**LOGS, "saturated": ["food-1: cpu 0.005 cores to 0.5 cores, 30 times the largest "
                                 "deviation of its baseline"]}
    out = _decide(onset=ONSET, affected=["inventory"], range_checks=WITHIN, corroboration=sat)
    assert out["kind"] == "inconclusive"
    said = " ".join(out["reasons"])
    assert "food-1: cpu 0.005 cores to 0.5 cores" in said and "9,000 log lines" in said


def test_logs_confirming_a_fault_or_a_customer_signal_beyond_its_range_is_an_incident() -> None:
    found = {**LOGS, "found": ["payments: error lines 1991 of 8051 (baseline 0 of 17020)"]}
    out = _decide(onset=ONSET, range_checks=WITHIN, corroboration=found)
    assert out["kind"] == "incident" and "error lines 1991 of 8051" in " ".join(out["reasons"])
    beyond = [{**WITHIN[0], "beyond": True}]
    out = _decide(onset=ONSET, range_checks=beyond, corroboration=LOGS)
    assert out["kind"] == "incident"
    assert "latency_p99{service=web} left the range" in " ".join(out["reasons"])


def test_corroboration_counts_what_passes_the_ranking_gates() -> None:
    le = pd.DataFrame({"service": ["payments", "cart"], "lines_baseline": [17020, 500],
                       "lines_incident": [8051, 200], "errors_baseline": [0, 1],
                       "errors_incident": [1991, 2], "error_share_delta": [0.24, 0.0]})
    be = pd.DataFrame({"service": ["orders", "cart"], "behaviour": [0.35, 0.1],
                       "context": ["POST /orders", "GET /cart"],
                       "emission": ["call payments POST /pay", "log 'cart read'"],
                       "base_share": [0.0, 0.5], "incident_share": [0.4, 0.62],
                       "base_executions": [300, 80], "incident_executions": [120, 40]})
    c = corroboration_of(le, be, error_gate=0.01, behaviour_gate=0.2)
    assert c["measured"] == ["8,251 log lines of the window (17,520 in the baseline)",
                             "operations of 2 services in the spans"]
    assert c["found"] == ["orders in POST /orders: call payments POST /pay in 40% of 120 "
                          "executions (normal 0% of 300)",
                          "payments: error lines 1991 of 8051 (baseline 0 of 17020)"]
    assert corroboration_of(None, None, error_gate=0.01, behaviour_gate=0.2) == {
        "measured": [], "looked_for": [], "found": [], "unmeasured": [], "saturated": []}


def test_a_pod_saturated_past_the_metric_gate_is_named_and_nothing_below_it() -> None:
    me = pd.DataFrame({"service": ["food", "route", "web"], "pod": ["food-1", "route-1", "web-1"],
                       "signal": ["cpu", "cpu", "latency_p99"],
                       "role": ["saturation", "saturation", "latency"],
                       "unit": ["cores", "cores", "seconds"], "baseline": [0.005, 0.01, 0.2],
                       "incident": [0.5, 0.03, 9.0], "over_peak": [29.7, 1.2, 80.0]})
    c = corroboration_of(None, None, error_gate=0.01, behaviour_gate=0.2, saturation=me,
                         metric_gate=10.0)
    assert c["saturated"] == ["food-1: cpu 0.005 cores to 0.5 cores, 30 times the largest "
                              "deviation of its baseline"]
    assert c["found"] == []  # own saturation alone does not confirm a fault


def _sus(score: float, margin: float) -> dict:
    return {"service": "payments", "change_id": "c1", "score": score, "margin": margin,
            "evidence": [{"kind": "change", "text": "deploy c1"}]}


def test_no_cause_without_an_incident() -> None:
    claim = root_cause_claim({"kind": "no_incident"}, {"suspects": [_sus(0.9, 0.5)]})
    assert claim["stated"] is False and claim["service"] is None


def test_cause_stated_only_with_score_and_lead() -> None:
    inc = {"kind": "incident"}
    assert root_cause_claim(inc, {"suspects": [_sus(0.9, 0.5)]})["stated"] is True
    assert root_cause_claim(inc, {"suspects": [_sus(0.9, 0.05)]})["stated"] is False
    assert root_cause_claim(inc, {"suspects": [_sus(0.5, 0.5)]})["confidence"] == "low"


def test_correlation_verdict_wins_when_present() -> None:
    inc = {"kind": "incident"}
    tied = root_cause_claim(inc, {"suspects": [_sus(0.9, 0.5)], "root_cause": None,
                                  "ties": ["payments", "checkout"]})
    assert tied["stated"] is False and "tied: payments, checkout" in tied["why"]
    named = root_cause_claim(inc, {"suspects": [_sus(0.6, 0.1)], "root_cause": "payments",
                                   "ties": []})
    assert named["stated"] is True


def test_a_single_service_at_the_top_is_not_a_tie() -> None:
    """The ranking lists the services sharing rank 1: one of them means a clear leader."""
    inc = {"kind": "incident"}
    named = root_cause_claim(inc, {"suspects": [_sus(0.9, 0.5)], "root_cause": "payments",
                                   "ties": ["payments"], "root_cause_reason": "score 3.2"})
    assert named["stated"] is True and "score 3.2" in named["why"]
    unstated = root_cause_claim(inc, {"suspects": [_sus(0.9, 0.5)], "root_cause": None,
                                      "ties": ["payments"],
                                      "root_cause_reason": "top score 2.63 below 3.00"})
    assert unstated["stated"] is False and "tied" not in unstated["why"]
    assert "top score 2.63 below 3.00" in unstated["why"]


def test_only_links_past_the_ranking_gate_confirm_a_fault() -> None:
    """13% of calls past the baseline p95 with the median unchanged is sampling noise on a
    busy edge (the ranking's gate leaves it out); all calls 120 ms late is a fault."""
    links = pd.DataFrame([
        {"caller": "seat", "callee": "order", "base_calls": 167, "incident_calls": 229,
         "base_p50_ms": 2.8, "base_p95_ms": 19.6, "incident_p50_ms": 2.7, "slow_share": 0.13,
         "sig": 4.9, "effect": 0.034},
        {"caller": "cart", "callee": "price", "base_calls": 100, "incident_calls": 100,
         "base_p50_ms": 1.6, "base_p95_ms": 2.2, "incident_p50_ms": 121.6, "slow_share": 1.0,
         "sig": 50.0, "effect": 0.93}])
    c = corroboration_of(None, None, error_gate=0.01, behaviour_gate=0.2, links=links,
                         link_gate=0.2)
    assert c["found"] == ["calls cart -> price: 100% of 100 slower than normal on the wire "
                          "(link time p50 1.6 ms -> 121.6 ms, baseline p95 2.2 ms over 100 "
                          "calls)"]
    assert c["measured"] == ["2 call edges between services in the spans"]
    quiet = corroboration_of(None, None, error_gate=0.01, behaviour_gate=0.2,
                             links=links.iloc[:1], link_gate=0.2)
    assert quiet["found"] == [] and quiet["looked_for"] == ["call slower on the wire"]
