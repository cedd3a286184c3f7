"""Core data: Incident, Severity, findings envelope."""

from __future__ import annotations

import enum
import html
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from .errors import InputError
from .safe import clean_text, md_inline

__all__ = ["Incident", "Severity", "DEFAULT_SEVERITY_SCALE", "parse_time", "iso",
           "FINDINGS_SCHEMA", "span_key"]

FINDINGS_SCHEMA = "incident_lib.findings/v1"


# One scale (P0 worst .. P4) with, per level, its SEV equivalent and a name; configurable with
# `severity_scale:` in the config. Defaults follow the playbooks: P0 critical (production down,
# payments broken), P1 high, P2 medium, P3 low; SEV-1 (complete outage) is P0.
DEFAULT_SEVERITY_SCALE: dict[str, dict[str, str]] = {
    "P0": {"sev": "SEV1", "name": "critical"},
    "P1": {"sev": "SEV2", "name": "high"},
    "P2": {"sev": "SEV3", "name": "medium"},
    "P3": {"sev": "SEV4", "name": "low"},
    "P4": {"sev": "SEV4", "name": "no user impact"},
}


def _key(text: str) -> str:
    return str(text).strip().lower().replace("-", "").replace(" ", "")


class Severity(enum.IntEnum):
    """Incident severity on the P0 (worst) to P4 scale."""

    P0 = 0
    P1 = 1
    P2 = 2
    P3 = 3
    P4 = 4

    @classmethod
    def parse(cls, value: str | int | Severity,
              scale: dict[str, dict[str, str]] | None = None) -> Severity:
        """Parse P0-P4, 0-4, or a SEV level or name of the scale (first match wins)."""
        if isinstance(value, Severity):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 4:
            return cls(value)
        text = _key(value)
        if text.startswith("p") and text[1:] in {"0", "1", "2", "3", "4"}:
            return cls(int(text[1:]))
        if text in {"0", "1", "2", "3", "4"}:
            return cls(int(text))
        for level, spec in (scale or DEFAULT_SEVERITY_SCALE).items():
            if text in (_key(spec.get("sev", "")), _key(spec.get("name", ""))):
                return cls.parse(level)
        raise InputError(
            f"severity {str(value)[:40]!r} is unknown: use P0-P4, a SEV level or a name of "
            "the severity scale (critical/high/medium/low by default)"
        )

    def label_in(self, scale: dict[str, dict[str, str]] | None = None) -> str:
        """One scale in one string, e.g. 'P1 (high)'."""
        name = ((scale or DEFAULT_SEVERITY_SCALE).get(self.name) or {}).get("name")
        return f"{self.name} ({name})" if name else self.name

    def sev_in(self, scale: dict[str, dict[str, str]] | None = None) -> str | None:
        """The SEV level this maps to in the scale (None if unmapped)."""
        return ((scale or DEFAULT_SEVERITY_SCALE).get(self.name) or {}).get("sev")

    @property
    def label(self) -> str:
        """Human label on the default scale, e.g. 'P1 (high)'."""
        return self.label_in()


def parse_time(value: str | datetime | pd.Timestamp, field_name: str = "time") -> pd.Timestamp:
    """Parse an ISO-8601 time (UTC assumed if naive) or raise InputError naming the field."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"{field_name} {str(value)[:40]!r} is not a time: use ISO-8601 like "
            "2026-11-20T10:42:00Z"
        ) from exc
    if ts is pd.NaT or pd.isna(ts):
        raise InputError(f"{field_name} is empty: use ISO-8601 like 2026-11-20T10:42:00Z")
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.tz_convert("UTC")


def iso(ts: pd.Timestamp | datetime | None) -> str | None:
    """Format a time as ISO-8601 UTC with a Z, or None."""
    if ts is None or (isinstance(ts, float) and pd.isna(ts)) or ts is pd.NaT:
        return None
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return t.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def span_key(trace_ids: pd.Series, ids: pd.Series) -> pd.Series:
    """A span id made unique across traces: the W3C and OpenTelemetry ids are random 64-bit
    values, but Zipkin v1 exports and many span tables number spans within each trace, so
    span 2 of one trace is not span 2 of another. Links between spans (parent, the span a
    log line names) are read through this key; None where the id is missing."""
    tid = trace_ids.astype(object).where(trace_ids.notna(), "")
    key = tid.astype(str) + "\x1f" + ids.astype(str)
    return key.where(ids.notna(), None).astype(object)


@dataclass
class Incident:
    """What is being investigated: read by every notebook from runs/<id>/incident.json."""

    id: str
    title: str
    service: str
    start: str
    end: str
    alert_time: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    source: str = "cli"
    group_key: str | None = None
    resolved_at: str | None = None
    previous_incident: str | None = None  # the resolved episode of the same alert group
    sources: dict[str, Any] = field(default_factory=dict)
    topology: dict[str, Any] = field(default_factory=dict)
    severity_policy: list[dict[str, Any]] | None = None
    created: str = field(default_factory=lambda: iso(datetime.now(UTC)) or "")

    @property
    def start_ts(self) -> pd.Timestamp:
        """Window start as a UTC timestamp."""
        return parse_time(self.start, "start")

    @property
    def end_ts(self) -> pd.Timestamp:
        """Window end as a UTC timestamp."""
        return parse_time(self.end, "end")

    @property
    def alert_ts(self) -> pd.Timestamp | None:
        """Alert time as a UTC timestamp, if the incident came from an alert."""
        return parse_time(self.alert_time, "alert_time") if self.alert_time else None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for incident.json."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incident:
        """Load from incident.json content."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def _rows(self) -> list[tuple[str, str]]:
        return [
            ("Incident", self.id),
            ("Title", self.title),
            ("Service", self.service),
            ("Window", f"{self.start} to {self.end}"),
            ("Alert", self.alert_time or "none (opened by hand)"),
        ] + ([("Follows", f"{self.previous_incident} (the same alert group fired again "
                          "after it resolved)")] if self.previous_incident else [])

    def _repr_markdown_(self) -> str:
        rows = self._rows()
        body = "\n".join(f"| {k} | {md_inline(v)} |" for k, v in rows)
        return "| | |\n|---|---|\n" + body + "\n"

    def _repr_html_(self) -> str:
        rows = self._rows()
        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(clean_text(v))}</td></tr>"
            for k, v in rows
        )
        return f"<table>{cells}</table>"
