"""Typed findings: lossless round trip of what the notebooks wrote, typed reads, new keys kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from incident_lib.core.errors import StageError
from incident_lib.core.findings import (
    CorrelationFindings,
    Suspect,
    TriageFindings,
    load_findings,
)
from incident_lib.runs.folder import STAGES, Run


def test_every_stage_round_trips_the_demo_findings_exactly(demo_run: Path) -> None:
    for stage in STAGES:
        data = json.loads((demo_run / "findings" / f"{stage}.json").read_text())["data"]
        typed = load_findings(stage, data)
        assert typed is not None and typed.to_dict() == data, stage


def test_typed_reads_match_the_json(demo_run: Path) -> None:
    run = Run(demo_run)
    raw_tri, raw_cor = run.findings("triage"), run.findings("correlation")
    tri, cor = run.triage(), run.correlation()
    assert isinstance(tri, TriageFindings) and isinstance(cor, CorrelationFindings)
    assert tri.onset.time == raw_tri["onset"]["time"] == "2026-11-20T10:42:15Z"
    assert tri.severity is not None and tri.severity.level == raw_tri["severity"]["level"]
    assert isinstance(cor.top, Suspect)
    assert (cor.top.service, cor.top.change_id) == ("payments", "chg-1004")
    assert cor.top.evidence[0].text == raw_cor["suspects"][0]["evidence"][0]["text"]


def test_keys_a_newer_writer_adds_survive_a_round_trip() -> None:
    data = {"suspects": [{"service": "a", "score": 0.5, "rank": 1, "root_cause_p": 0.9}],
            "outcome": {"kind": "incident"}}
    cor = CorrelationFindings.from_dict(data)
    assert cor.extra == {"outcome": {"kind": "incident"}}
    assert cor.suspects[0].extra == {"root_cause_p": 0.9}
    assert cor.to_dict() == data


def test_new_findings_write_every_field() -> None:
    out = TriageFindings().to_dict()
    assert out["onset"] == {"time": None, "ref_time": None, "first_movers": []}
    assert out["severity"] is None and out["changes"] == []


def test_a_malformed_part_is_a_stage_error() -> None:
    with pytest.raises(StageError, match="Onset expects an object"):
        TriageFindings.from_dict({"onset": "10:42"})
    with pytest.raises(StageError, match="unknown stage"):
        load_findings("nope", {})


def test_triage_missing_signals_round_trip() -> None:
    from incident_lib.core.findings import TriageFindings

    data = {"missing": ["error_rate (no signal)"],
            "impact": {"customer_error_share": None, "no_error_data": True}}
    f = TriageFindings.from_dict(data)
    assert f.missing == ["error_rate (no signal)"] and f.impact.no_error_data is True
    assert f.impact.customer_error_share is None
    assert f.to_dict() == data
