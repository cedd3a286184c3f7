"""Incident timeline from changes, detected onset/recovery and alert times."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["build_timeline"]


def build_timeline(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sort events (time, event, source), dropping ones without a time, stable by insertion."""
    rows = [e for e in events if e.get("time")]
    for e in rows:
        e["time"] = pd.Timestamp(e["time"]).tz_convert("UTC").isoformat()
    return sorted(rows, key=lambda e: pd.Timestamp(e["time"]))
