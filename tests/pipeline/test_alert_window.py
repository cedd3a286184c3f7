"""The investigation window of an alert: from --start/--end (or "now"), not a fixed 75 min."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from incident_lib.core.errors import InputError
from incident_lib.pipeline.alerts import incident_from_alert

STARTS = "2026-03-01T10:00:00Z"


def _payload() -> dict:
    return {"version": "4", "status": "firing", "groupKey": "g", "receiver": "r",
            "alerts": [{"status": "firing", "labels": {"alertname": "Slow", "service": "api"},
                        "annotations": {}, "startsAt": STARTS}]}


def _config(tmp_path: Path) -> dict:
    (tmp_path / "m.om").write_text("# EOF\n")
    return {"_base": str(tmp_path), "sources": {
        "metrics": {"kind": "files", "path": "m.om"},
        "logs": {"kind": "files", "path": "m.om"}}}


def test_end_and_start_given(tmp_path: Path) -> None:
    inc = incident_from_alert(_payload(), _config(tmp_path), start="2026-03-01T09:40:00Z",
                              end="2026-03-01T10:04:00Z")
    assert (inc.start_ts, inc.end_ts) == (pd.Timestamp("2026-03-01T09:40:00Z"),
                                          pd.Timestamp("2026-03-01T10:04:00Z"))
    assert inc.alert_ts == pd.Timestamp(STARTS)
    assert inc.sources["changes"] == {"kind": "none"}  # changes are optional


def test_end_now(tmp_path: Path) -> None:
    before = pd.Timestamp(datetime.now(UTC)).floor("s")
    payload = _payload()
    payload["alerts"][0]["startsAt"] = (before - pd.Timedelta("3h")).isoformat()
    inc = incident_from_alert(payload, _config(tmp_path), end="now")
    assert inc.end_ts >= before
    assert inc.end_ts - inc.alert_ts > pd.Timedelta("75min")  # not capped at 75 minutes


def test_end_before_start_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--end"):
        incident_from_alert(_payload(), _config(tmp_path), end="2026-03-01T07:00:00Z")
