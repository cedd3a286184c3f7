"""Severity policy and aliases."""

from __future__ import annotations

import pytest

from incident_lib.analysis.severity import assess_severity
from incident_lib.core.config import DEFAULT_SEVERITY_POLICY
from incident_lib.core.errors import InputError
from incident_lib.core.model import Severity


@pytest.mark.parametrize("text,level", [("P1", 1), ("sev2", 2), ("SEV-3", 3), ("critical", 1),
                                        ("high", 2), ("medium", 3), ("low", 4), (4, 4)])
def test_aliases(text: str | int, level: int) -> None:
    assert Severity.parse(text) == Severity(level)


def test_unknown_severity_is_an_input_error() -> None:
    with pytest.raises(InputError, match="use P1-P4"):
        Severity.parse("urgent")


@pytest.mark.parametrize("impact,level,rule", [
    ({"customer_error_share": 0.10, "affected_services": ["a"]}, "P1", 1),
    ({"customer_error_share": 0.03, "affected_services": ["a", "b", "c"]}, "P1", 2),
    ({"customer_error_share": 0.03, "affected_services": ["a"]}, "P2", 3),
    ({"customer_error_share": 0.0, "customer_latency_ratio": 4.0, "affected_services": ["a"]},
     "P2", 4),
    ({"customer_error_share": 0.0, "affected_services": ["a"]}, "P3", 5),
    ({"customer_error_share": 0.0, "affected_services": []}, "P4", 6),
])
def test_default_policy(impact: dict, level: str, rule: int) -> None:
    sev = assess_severity(impact, DEFAULT_SEVERITY_POLICY)
    assert (sev["level"], sev["rule"]) == (level, rule)


def test_custom_policy_with_alias_levels() -> None:
    policy = [{"level": "critical", "customer_error_share_min": 0.5}, {"level": "medium"}]
    assert assess_severity({"customer_error_share": 0.2}, policy)["level"] == "P3"
    assert assess_severity({"customer_error_share": 0.6}, policy)["label"].startswith("P1 (SEV1")
