"""Windows: without a measured onset none is invented (not `alert - 15 min`)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from incident_lib.core.findings import TriageFindings
from incident_lib.stages.common import windows

START, END = pd.Timestamp("2026-11-20T09:00Z"), pd.Timestamp("2026-11-20T10:30Z")
RUN = SimpleNamespace(incident=SimpleNamespace(start_ts=START, end_ts=END,
                                               alert_ts=END - pd.Timedelta("10min")))


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
