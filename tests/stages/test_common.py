"""Windows: without a measured onset none is invented (not `alert - 15 min`)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from incident_lib.core.findings import TriageFindings
from incident_lib.stages.common import windows

START, END = pd.Timestamp("2026-11-20T09:00Z"), pd.Timestamp("2026-11-20T10:30Z")
RUN = SimpleNamespace(incident=SimpleNamespace(start_ts=START, end_ts=END,
                                               alert_ts=END - pd.Timedelta("10min"),
                                               topology={"alert_for": "30m"}))


def test_no_onset_splits_the_window_and_says_so() -> None:
    w = windows(TriageFindings.from_dict({"onset": {"time": None}, "impact": {}}), RUN)
    assert w["onset_known"] is False
    assert w["incident"][0] != END - pd.Timedelta("15min")
    assert w["incident"][0] != RUN.incident.alert_ts - pd.Timedelta("15min")
    assert w["baseline"] == (START, START + (END - START) / 2)
    assert w["incident"] == (START + (END - START) / 2, END)


def test_onset_gives_baseline_before_and_incident_to_recovery() -> None:
    onset, rec = "2026-11-20T10:00:00Z", "2026-11-20T10:20:00Z"
    w = windows(TriageFindings.from_dict({"onset": {"time": onset},
                                          "impact": {"recovered": rec}}), RUN)
    assert w["onset_known"] is True
    assert w["baseline"] == (START, pd.Timestamp(onset) - pd.Timedelta("5min"))
    assert w["incident"] == (pd.Timestamp(onset), pd.Timestamp(rec))


def test_an_onset_long_before_the_alert_does_not_widen_the_window() -> None:
    """alert_for 5m (default): the window starts 7 minutes before the alert, and says why."""
    run = SimpleNamespace(incident=SimpleNamespace(start_ts=START, end_ts=END,
                                                   alert_ts=END - pd.Timedelta("10min"),
                                                   topology={}))
    onset = "2026-11-20T09:30:00Z"  # 50 minutes before the alert at 10:20
    w = windows(TriageFindings.from_dict({"onset": {"time": onset}, "impact": {}}), run)
    assert w["incident"] == (pd.Timestamp("2026-11-20T10:13Z"), END)
    assert w["baseline"] == (START, pd.Timestamp("2026-11-20T10:08Z"))
    assert w["anchored_on_alert"] is True
    assert w["earliest_excursion"] == pd.Timestamp(onset)
    near = windows(TriageFindings.from_dict({"onset": {"time": "2026-11-20T10:15:00Z"},
                                             "impact": {}}), run)
    assert near["incident"][0] == pd.Timestamp("2026-11-20T10:15Z")  # within the lead: as is
    assert near["anchored_on_alert"] is False


def test_an_onset_measured_after_the_alert_starts_the_window_at_the_alert() -> None:
    """An alert fires while its condition holds: the incident is on at the alert even when the
    alert service's own series moved later (the fault's first minutes outside the window)."""
    run = SimpleNamespace(incident=SimpleNamespace(start_ts=START, end_ts=END,
                                                   alert_ts=pd.Timestamp("2026-11-20T10:00Z"),
                                                   topology={}))
    later = "2026-11-20T10:03:00Z"
    w = windows(TriageFindings.from_dict({"onset": {"time": later}, "impact": {}}), run)
    assert w["incident"] == (pd.Timestamp("2026-11-20T10:00Z"), END)
    assert w["baseline"] == (START, pd.Timestamp("2026-11-20T09:55Z"))
    assert w["onset_after_alert"] is True
    assert w["measured_onset"] == pd.Timestamp(later)
