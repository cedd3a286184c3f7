"""Personal data redaction."""

from __future__ import annotations

import pandas as pd

from incident_lib.core.redact import redact_series, redact_text


def test_redact_text() -> None:
    s = "user bob@example.org from 10.1.2.3 paid with 4111-1111-1111-1111 order 1234567890123"
    assert redact_text(s) == "user <email> from <ip> paid with <card> order 1234567890123"


def test_redact_series_matches_text() -> None:
    vals = ["card 4111 1111 1111 1111", "ip 192.168.0.1 ok", "no pii 12345", None]
    out = redact_series(pd.Series(vals, dtype=object))
    assert list(out[:3]) == ["card <card>", "ip <ip> ok", "no pii 12345"]
    assert pd.isna(out[3])
