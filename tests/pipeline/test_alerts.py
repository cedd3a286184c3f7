"""Alert payloads and CLI times: every field a user can get wrong is named in a one-line error."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from incident_lib.core.config import load_config
from incident_lib.core.errors import InputError
from incident_lib.pipeline.alerts import (
    MIN_WINDOW,
    incident_from_alert,
    incident_from_cli,
    resolved_time,
    validate_payload,
)

NOW = pd.Timestamp("2026-11-20T12:00:00Z")


def _alert(**over: Any) -> dict[str, Any]:
    alert = {"status": "firing", "labels": {"alertname": "HighErrorRate", "service": "payments"},
             "annotations": {}, "startsAt": "2026-11-20T10:47:00Z",
             "endsAt": "0001-01-01T00:00:00Z"}
    alert.update(over)
    return {"version": "4", "status": alert["status"], "receiver": "incident",
            "groupKey": "{}:{alertname=\"HighErrorRate\"}", "alerts": [alert],
            "commonLabels": {}, "commonAnnotations": {}, "groupLabels": {}}


@pytest.mark.parametrize("field, value, needle", [
    ("startsAt", 1763635620, "startsAt must be an RFC 3339 time string"),
    ("startsAt", 1763635620000000000, "startsAt must be an RFC 3339 time string"),
    ("startsAt", "now", "startsAt 'now' is not an RFC 3339 time"),
    ("startsAt", "2026-11-20 10:47", "is not an RFC 3339 time"),
    ("startsAt", "0001-01-01T00:00:00Z", "is before 1990-01-01"),
    ("startsAt", "9999-12-31T00:00:00Z", "is in the future"),
    ("startsAt", "1970-01-01T00:00:00Z", "is before 1990-01-01"),
])
def test_alert_times_are_strict_rfc3339_in_a_plausible_range(field: str, value: Any,
                                                             needle: str) -> None:
    with pytest.raises(InputError, match=needle) as err:
        validate_payload(_alert(**{field: value}))
    assert "alerts[0]." + field in str(err.value)


def test_a_future_alert_is_refused() -> None:
    soon = (pd.Timestamp.now(tz="UTC") + pd.Timedelta("1h")).strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(InputError, match="startsAt .* is in the future"):
        validate_payload(_alert(startsAt=soon))


@pytest.mark.parametrize("field, value", [
    ("version", 4), ("receiver", ["incident"]), ("groupKey", 7), ("status", True),
])
def test_wrong_json_types_name_the_field(field: str, value: Any) -> None:
    payload = _alert()
    payload[field] = value
    with pytest.raises(InputError, match=f"'{field}'"):
        validate_payload(payload)


def test_resolved_with_garbage_ends_at_is_refused() -> None:
    payload = _alert(status="resolved", endsAt="garbage")
    with pytest.raises(InputError, match=r"alerts\[0\]\.endsAt 'garbage' is not an RFC 3339"):
        validate_payload(payload)


@pytest.mark.parametrize("ends", [None, "", "0001-01-01T00:00:00Z"])
def test_resolve_time_is_the_receipt_time_when_ends_at_is_unset(ends: str | None) -> None:
    payload = _alert(status="resolved", endsAt=ends)
    if ends is None:
        del payload["alerts"][0]["endsAt"]
    validate_payload(payload)
    assert resolved_time(payload, NOW) == "2026-11-20T12:00:00Z"
    received = pd.Timestamp.now(tz="UTC")
    got = pd.Timestamp(resolved_time(payload))  # the default receipt time is now, not 1970
    assert abs(got - received) < pd.Timedelta("1min")


def test_resolve_time_is_the_latest_ends_at() -> None:
    payload = _alert(status="resolved", endsAt="2026-11-20T11:05:00Z")
    second = copy.deepcopy(payload["alerts"][0])
    second["endsAt"] = "2026-11-20T11:20:30.123456789Z"
    payload["alerts"].append(second)
    validate_payload(payload)
    assert resolved_time(payload, NOW) == "2026-11-20T11:20:30Z"


def test_resolved_ends_before_starts_is_refused() -> None:
    with pytest.raises(InputError, match="endsAt is before its startsAt"):
        validate_payload(_alert(status="resolved", endsAt="2026-11-20T09:00:00Z"))


def test_alert_window_is_never_shorter_than_the_minimum(demo_data: Path) -> None:
    payload = json.loads((demo_data / "alert.json").read_text())
    starts = pd.Timestamp(payload["alerts"][0]["startsAt"])
    inc = incident_from_alert(payload, load_config(data_dir=demo_data), incident_id="x",
                              received=starts + pd.Timedelta("1s"))
    assert inc.end_ts - inc.alert_ts >= MIN_WINDOW
    assert inc.alert_ts <= inc.end_ts


@pytest.mark.parametrize("start, end, needle", [
    ("now", "now", "is not after --start"),
    ("-1", "2026-11-20T12:00:00Z", "--start '-1' is not a time"),
    ("1763635620", "2026-11-20T12:00:00Z", "--start '1763635620' is not a time"),
    ("0001-01-01T00:00:00Z", "2026-11-20T12:00:00Z", "--start '0001-01-01T00:00:00Z' is "
                                                     "outside 1990"),
    ("2026-11-20T09:00:00Z", "9999-12-31T00:00:00Z", "--end '9999-12-31T00:00:00Z' is outside"),
    ("2026-11-20T09:00:00", "2026-11-20T12:00:00Z", "has no time zone"),
    ("2026-11-20T10:00:00Z", "2026-11-20T10:00:01Z", "at least 5 min"),
])
def test_cli_times_give_one_clear_error(demo_data: Path, start: str, end: str,
                                        needle: str) -> None:
    with pytest.raises(InputError, match=needle.replace("(", r"\(")):
        incident_from_cli("payments", start, end, load_config(data_dir=demo_data))
