"""What Run.record keeps and what it redacts in recorded evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from incident_lib.core.model import Incident
from incident_lib.runs.folder import Run
from incident_lib.sources.base import QueryResult

CARD = "4111111111111111"  # Luhn-valid, all digits: also a possible span id


@pytest.fixture
def run(tmp_path: Path) -> Run:
    inc = Incident(id="rec", title="t", service="web", start="2026-11-20T10:00:00Z",
                   end="2026-11-20T11:00:00Z")
    (tmp_path / "incident.json").write_text(json.dumps(inc.to_dict()))
    return Run(tmp_path)


def test_trace_and_span_ids_are_kept_while_text_is_redacted(run: Run) -> None:
    """A generated id that looks like a card number is an id: redacting it to <card> made
    unrelated spans share a parent, and the call graph gained edges no trace has."""
    spans = pd.DataFrame({
        "trace_id": ["t1", "t1", "t2"], "span_id": [CARD, "5500000000000004", "0a1"],
        "parent_id": [None, CARD, "5500000000000004"], "service": ["a", "b", "c"],
        "operation": [f"pay with {CARD}", "get", "get"]})
    run.record("spans", QueryResult(spans, "spans", "files"), "correlation")
    got = run.evidence("spans")
    assert got["span_id"].tolist() == [CARD, "5500000000000004", "0a1"]
    assert got["parent_id"].tolist()[1:] == [CARD, "5500000000000004"]
    assert got["operation"].iloc[0] == "pay with <card>"


def test_log_trace_ids_are_kept_too(run: Run) -> None:
    logs = pd.DataFrame({"time": pd.to_datetime(["2026-11-20T10:01:00Z"]), "service": ["a"],
                         "message": [f"card {CARD} declined"], "trace_id": [CARD]})
    run.record("logs", QueryResult(logs, "logs", "files"), "correlation")
    got = run.evidence("logs")
    assert got["trace_id"].iloc[0] == CARD and got["message"].iloc[0] == "card <card> declined"
