"""Severity policy, the P0-P4 scale and its configurable mapping to SEV levels and names."""

from __future__ import annotations

import pytest

from incident_lib.analysis.severity import assess_severity
from incident_lib.core.config import DEFAULT_SEVERITY_POLICY
from incident_lib.core.errors import InputError
from incident_lib.core.model import DEFAULT_SEVERITY_SCALE, Severity


@pytest.mark.parametrize("text,level", [("P0", 0), ("P1", 1), ("sev1", 0), ("SEV-2", 1),
                                        ("critical", 0), ("high", 1), ("medium", 2),
                                        ("low", 3), (4, 4), (0, 0)])
def test_aliases_follow_the_default_scale(text: str | int, level: int) -> None:
    assert Severity.parse(text) == Severity(level)


def test_scale_is_configurable_for_parsing_and_labels() -> None:
    scale = {**DEFAULT_SEVERITY_SCALE, "P1": {"sev": "SEV1", "name": "major"}}
    assert Severity.parse("major", scale) == Severity.P1
    assert Severity.P1.label_in(scale) == "P1 (major)"


def test_label_is_one_scale_only() -> None:
    assert Severity.P0.label == "P0 (critical)"
    assert Severity.P1.label == "P1 (high)"
    assert "SEV" not in Severity.P2.label


def test_unknown_severity_is_an_input_error() -> None:
    with pytest.raises(InputError, match="use P0-P4"):
        Severity.parse("urgent")


@pytest.mark.parametrize("impact,level,rule", [
    ({"customer_error_share": 0.60, "affected_services": ["a"]}, "P0", 1),
    ({"customer_error_share": 0.10, "affected_services": ["a"]}, "P1", 2),
    ({"customer_error_share": 0.03, "affected_services": ["a", "b", "c"]}, "P1", 3),
    ({"customer_error_share": 0.03, "affected_services": ["a"]}, "P2", 4),
    ({"customer_error_share": 0.0, "customer_latency_ratio": 4.0, "affected_services": ["a"]},
     "P2", 5),
    ({"customer_error_share": 0.0, "affected_services": ["a"]}, "P3", 6),
    ({"customer_error_share": 0.0, "affected_services": []}, "P4", 7),
])
def test_default_policy(impact: dict, level: str, rule: int) -> None:
    sev = assess_severity(impact, DEFAULT_SEVERITY_POLICY)
    assert (sev["level"], sev["rule"]) == (level, rule)


def test_custom_policy_with_alias_levels_and_sev() -> None:
    policy = [{"level": "critical", "customer_error_share_min": 0.5}, {"level": "medium"}]
    assert assess_severity({"customer_error_share": 0.2}, policy)["level"] == "P2"
    sev = assess_severity({"customer_error_share": 0.6}, policy)
    assert (sev["level"], sev["label"], sev["sev"]) == ("P0", "P0 (critical)", "SEV1")
