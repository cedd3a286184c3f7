"""Severity from measured impact by a configurable, ordered policy."""

from __future__ import annotations

from typing import Any

from ..core.config import POLICY_CONDITIONS as _CONDITIONS
from ..core.errors import ConfigError
from ..core.model import Severity

__all__ = ["assess_severity"]


def assess_severity(impact: dict[str, Any], policy: list[dict[str, Any]],
                    scale: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """First policy rule whose thresholds the impact meets -> {level, label, sev, rule, reasons}."""
    measured = {
        "customer_error_share": float(impact.get("customer_error_share") or 0.0),
        "customer_latency_ratio": float(impact.get("customer_latency_ratio") or 1.0),
        "affected_services": float(len(impact.get("affected_services") or [])),
    }
    for i, rule in enumerate(policy):
        reasons = []
        ok = True
        for key, threshold in rule.items():
            if key == "level":
                continue
            if key not in _CONDITIONS:
                raise ConfigError(f"severity policy rule {i + 1}: unknown condition {key!r}")
            field, text = _CONDITIONS[key]
            if measured[field] >= float(threshold):
                reasons.append(f"{text} = {measured[field]:.4g} >= {threshold}")
            else:
                ok = False
                break
        if ok:
            level = Severity.parse(rule["level"], scale)
            return {
                "level": level.name,
                "label": level.label_in(scale),
                "sev": level.sev_in(scale),
                "rule": i + 1,
                "reasons": reasons or ["no impact threshold met (default level)"],
                "measured": measured,
            }
    level = Severity.P4
    return {"level": level.name, "label": level.label_in(scale), "sev": level.sev_in(scale),
            "rule": None,
            "reasons": ["no rule matched"], "measured": measured}
