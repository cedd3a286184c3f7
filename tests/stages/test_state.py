"""The current state reported to responders follows the timeline: rollback, recovery, resolve."""

from __future__ import annotations

from incident_lib.stages.state import current_state, mitigation_of

INC = {"kind": "incident", "reasons": ["impact began"]}
IMPACT = {"onset": "2026-11-20T10:42:15Z", "recovered": None, "as_of": "2026-11-20T12:02:00Z",
          "status": "ongoing"}
CHANGES = [
    {"time": "2026-11-20T10:40:00Z", "type": "deploy", "id": "chg-1004", "service": "payments"},
    {"time": "2026-11-20T11:20:00Z", "type": "rollback", "id": "chg-1005",
     "service": "payments"},
]


def test_rollback_and_recovery_mean_monitoring_with_both_times() -> None:
    st = current_state(outcome=INC, impact={**IMPACT, "recovered": "2026-11-20T11:22:45Z",
                                            "status": "mitigated"},
                       severity="P1", changes=CHANGES, recommendation="roll back chg-1004")
    assert (st["color"], st["state"]) == ("🟡", "Monitoring")
    assert "rollback chg-1005 on payments applied at 11:20 UTC" in st["summary"]
    assert "recovery seen at 11:22:45 UTC" in st["summary"]
    assert "checking" not in st["action"]  # not the stale "checking deploy ..." any more
    assert st["every_min"] == 30 and st["next_update"] == "2026-11-20T12:32:00Z"


def test_rollback_without_recovery_is_still_degraded() -> None:
    st = current_state(outcome=INC, impact=IMPACT, severity="P1", changes=CHANGES)
    assert st["state"] == "Identified" and "still degraded as of 12:02 UTC" in st["summary"]
    assert st["every_min"] == 15


def test_identified_when_the_cause_is_stated_and_nothing_applied() -> None:
    st = current_state(outcome=INC, impact=IMPACT, severity="P2", changes=CHANGES[:1],
                       recommendation="roll back chg-1004 on payments", cause_stated=True)
    assert st["state"] == "Identified" and st["action"] == "roll back chg-1004 on payments"
    weak = current_state(outcome=INC, impact=IMPACT, severity="P2", changes=CHANGES[:1],
                         recommendation="roll back chg-1004 on payments")
    assert weak["state"] == "Investigating"


def test_resolved_is_final() -> None:
    st = current_state(outcome=INC, impact=IMPACT, severity="P1", changes=CHANGES,
                       resolved_at="2026-11-20T12:10:00Z")
    assert st["state"] == "Resolved" and st["next_update"] is None and st["color"] == "🟢"


def test_cadence_follows_severity() -> None:
    p3 = current_state(outcome=INC, impact=IMPACT, severity="P3", changes=[])
    assert p3["every_min"] == 60 and p3["next_update"] == "2026-11-20T13:02:00Z"
    p4 = current_state(outcome=INC, impact=IMPACT, severity="P4", changes=[])
    assert p4["next_update"] is None
    custom = current_state(outcome=INC, impact=IMPACT, severity="P3", changes=[],
                           cadence={"P3": 20})
    assert custom["every_min"] == 20


def test_no_incident_recommends_nothing() -> None:
    st = current_state(outcome={"kind": "no_incident", "reasons": []}, impact=IMPACT,
                       severity="P4", changes=CHANGES, recommendation="roll back chg-1004")
    assert st["state"] == "No incident found" and st["action"].startswith("none")
    assert st["next_update"] is None


def test_mitigation_needs_an_onset_and_comes_after_it() -> None:
    assert mitigation_of(CHANGES, None) is None
    assert mitigation_of(CHANGES, "2026-11-20T11:30:00Z") is None
    assert mitigation_of(CHANGES, IMPACT["onset"])["id"] == "chg-1005"


def test_a_first_estimate_is_reported_as_unconfirmed() -> None:
    """Before the logs and spans are read, an onset on internal services alone is only a
    first estimate: the status says so instead of a bare "ongoing"."""
    first = {**INC, "provisional": True}
    st = current_state(outcome=first, impact=IMPACT, severity="P3", changes=[])
    assert st["state"] == "Investigating"
    assert "first estimate" in st["summary"] and "logs and spans" in st["summary"]
    assert "first estimate" not in current_state(outcome=INC, impact=IMPACT, severity="P3",
                                                 changes=[])["summary"]
