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
    # the numbers say whose they are and which statistic they are
    ev = whys[0]["evidence"][0]
    assert ev["service"] == "web" and ev["evidence"] == "signal_error_rate"
    assert "median 0.10% in the baseline -> median 20.00% in the incident window" in ev["numbers"]
    change_why = next(w for w in whys if w["question"].startswith("Why did this start"))
    assert change_why["status"] == "fact"
    assert change_why["evidence"][0]["query"] == "changes query"


@pytest.mark.parametrize("sev,suspect,fix,decision,rule", [
    ("P1", None, None, "roll back", "critical impact"),
    ("P2", _suspect(), None, "roll back", "change shortly before onset"),
    ("P2", _suspect(change_id=None, change_time=None, change_type=None), 10, "fix forward",
     "fix < 15 min"),
    ("P3", _suspect(change_time=(ONSET - pd.Timedelta("2h")).isoformat()), 45, "roll back",
     "fix > 30 min"),
    ("P1", _suspect(change_id=None, change_time=None, change_type=None), None, "mitigate",
     "no change on the suspect"),
    # the playbook's tree: not critical, no recent deployment, root cause not known ->
    # investigate more (a rollback of "the last change" when none is known is made up)
    ("P3", None, None, "investigate", "cause not known"),
    ("P3", _suspect(change_time=(ONSET - pd.Timedelta("2h")).isoformat(), score=0.3), None,
     "investigate", "cause not known"),
])
def test_rollback_or_fix(sev: str, suspect: dict | None, fix: float | None, decision: str,
                         rule: str) -> None:
    out = rollback_or_fix(sev, suspect, ONSET, fix)
    assert out["decision"] == decision and rule in out["rule"]


def test_culprit_off_the_call_path_and_blamed_by_callers() -> None:
    an = pd.DataFrame([
        {"service": "web", "signal": "error_rate", "score": 0.9, "unit": "ratio",
         "baseline": 0.001, "incident": 0.2, "onset": ONSET},
        {"service": "batch", "signal": "cpu", "score": 1.0, "unit": "cores",
         "baseline": 0.1, "incident": 1.9, "onset": ONSET - pd.Timedelta("2min")},
    ])
    top = _suspect(service="batch", change_id=None, change=None, change_type=None,
                   change_time=None, evidence=[{"kind": "dependency",
                                                "text": "anomalous, nothing explains it"}])
    whys = five_whys("web", [top], an, pd.DataFrame(), {"web": ["api"], "batch": []}, {})
    assert whys[1]["answer"] == ("batch is not on web's call path but moved first "
                                 "(anomalous, nothing explains it).")
    assert whys[1]["status"] == "fact"  # cites batch's cpu
    assert whys[2]["answer"] == ("cpu{service='batch'} went from median 0.1 cores in the "
                                 "baseline -> median 1.9 cores in the incident window, from "
                                 "00:58:00.")
    assert [w["status"] for w in whys[3:]] == ["hypothesis", "hypothesis"]
    assert whys[3]["answer"].startswith("No change on batch was recorded")


def test_callers_errors_naming_the_culprit_are_cited() -> None:
    tpl = pd.DataFrame([{"service": "web", "template_id": "T1", "status": "new",
                         "template": "call to api failed: x509: certificate has expired",
                         "baseline_count": 0, "incident_count": 30}])
    top = _suspect(change_id=None, change=None, change_type=None, change_time=None)
    whys = five_whys("web", [top], pd.DataFrame(columns=["service", "signal", "score"]), tpl,
                     {"web": ["api"]}, {})
    assert whys[2]["question"] == "Why did api fail?"
    assert "its callers' new errors name it: 'call to api failed: x509" in whys[2]["answer"]
    assert whys[2]["evidence"][0]["numbers"] == ("0 lines in baseline -> 30 in the incident "
                                                 "window (new)")


def test_a_culprit_found_by_its_behaviour_is_explained_by_it_not_by_a_failure_first() -> None:
    """No metric or template moved on the callee: the whys cite what its executions did (from
    the spans read) and do not claim it "failed first"."""
    text = ("in /quote: log: quote ready in 0% of 40 executions (normal 100% of 60)")
    sus = _suspect(service="pricing", change_id=None, change=None, change_type=None,
                   change_time=None, evidence=[{"kind": "behaviour", "text": text}])
    whys = five_whys("web", [sus], pd.DataFrame(columns=["service", "signal", "score"]),
                     pd.DataFrame(), {"web": ["pricing"]}, {"spans": "spans 10:00-10:30"})
    second, third = whys[1], whys[2]
    assert "failed first" not in second["answer"]
    assert "web -> pricing" in second["answer"]
    assert third["status"] == "fact"
    cited = third["evidence"][0]
    assert (cited["evidence"], cited["service"], cited["numbers"]) == ("spans", "pricing", text)
    assert cited["query"] == "spans 10:00-10:30"
    assert "No signal of pricing itself" not in third["answer"]
    # off the call path: said so, and no "moved first" that nothing measured
    off = five_whys("web", [sus], pd.DataFrame(columns=["service", "signal", "score"]),
                    pd.DataFrame(), {"web": ["cart"]}, {"spans": "spans 10:00-10:30"})
    assert "not on web's call path" in off[1]["answer"] and "moved first" not in off[1]["answer"]


def test_a_culprit_found_by_its_slow_links_is_explained_by_the_wire() -> None:
    """Only the calls to and from `pricing` slowed (a network delay): the whys say so and cite
    the span numbers; they do not claim pricing "failed first" or behaved differently."""
    text = ("calls pricing -> db: 100% of 40 slower than normal on the wire (link time p50 "
            "1.6 ms -> 121.6 ms, baseline p95 2.2 ms over 60 calls)")
    sus = _suspect(service="pricing", change_id=None, change=None, change_type=None,
                   change_time=None, evidence=[{"kind": "trace_link", "text": text}])
    whys = five_whys("web", [sus], pd.DataFrame(columns=["service", "signal", "score"]),
                     pd.DataFrame(), {"web": ["pricing"]}, {"spans": "spans 10:00-10:30"})
    second, third = whys[1], whys[2]
    assert "failed first" not in second["answer"]
    assert "slowed on the wire" in second["answer"] and "web -> pricing" in second["answer"]
    assert third["status"] == "fact"
    cited = third["evidence"][0]
    assert (cited["evidence"], cited["service"], cited["numbers"]) == ("spans", "pricing", text)
    assert "No signal of pricing itself" not in third["answer"]
    assert "changed what it does" not in second["answer"]
