"""Numbers for people: durations, percentages and times as a responder reads them."""

from __future__ import annotations

import pytest

from incident_lib.report.render import fmt_duration, fmt_pct, fmt_time


@pytest.mark.parametrize(("seconds", "text"), [
    (285, "4m45s"), (2430.0, "40m30s"), (45, "45s"), (2400, "40m"), (3720, "1h02m"),
    (0, "0s"), (None, "n/a"), (float("nan"), "n/a"), (-90, "-1m30s"), (3 * 86400, "3d00h"),
])
def test_durations_are_exact_and_compact(seconds: float | None, text: str) -> None:
    assert fmt_duration(seconds) == text


def test_pct_and_time() -> None:
    assert fmt_pct(0.10376) == "10.4%" and fmt_pct(None) == "n/a"
    assert fmt_time("2026-11-20T10:42:15Z") == "2026-11-20 10:42:15 UTC"
    assert fmt_time(None) == ""
