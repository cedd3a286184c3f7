"""Typed findings of each stage: dataclasses that round-trip findings/<stage>.json.

Each stage writes its findings inside the versioned envelope (FINDINGS_SCHEMA); readers load
them as these classes instead of chaining `.get()` on dicts. Keys a newer writer adds that a
class does not know yet are kept in `extra` and written back unchanged, so a round trip never
loses data. Tabular records (first movers, change events, templates, anomalies) stay lists of
plain dicts: their columns follow the evidence tables.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

from .errors import StageError

__all__ = [
    "Findings", "Onset", "Impact", "SeverityFinding", "StatusUpdate", "TriageFindings",
    "Evidence", "Suspect", "CorrelationFindings", "WhyEvidence", "Why", "Decision",
    "FiveWhysFindings", "PostmortemFindings", "STAGE_FINDINGS", "load_findings",
]

T = TypeVar("T", bound="Findings")
Record = dict[str, Any]


def _convert(tp: Any, value: Any) -> Any:
    """Build typed values from JSON for the annotation tp (dataclasses, lists, optionals)."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            return _convert(arg, value)
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return [_convert(item, v) for v in value]
    if isinstance(tp, type) and issubclass(tp, Findings):
        if not isinstance(value, dict):
            raise StageError(f"{tp.__name__} expects an object, got {type(value).__name__}")
        return tp.from_dict(value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Findings):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass
class Findings:
    """Base: from_dict/to_dict with unknown keys kept in `extra` (round trip is lossless)."""

    _hints: ClassVar[dict[type, dict[str, Any]]] = {}

    @classmethod
    def _types(cls) -> dict[str, Any]:
        if cls not in Findings._hints:
            Findings._hints[cls] = typing.get_type_hints(cls)
        return Findings._hints[cls]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Load from the JSON object of this part of the findings."""
        hints = cls._types()
        known = {f.name for f in dataclasses.fields(cls) if f.name != "extra"}
        kwargs = {k: _convert(hints[k], v) for k, v in data.items() if k in known}
        obj = cls(**kwargs)
        obj.extra = {k: v for k, v in data.items() if k not in known}
        obj._present = set(data)
        return obj

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: known fields (those loaded, or all for a new object) plus extra."""
        present = getattr(self, "_present", None)
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "extra" or (present is not None and f.name not in present
                                     and getattr(self, f.name) == _default(f)):
                continue
            out[f.name] = _plain(getattr(self, f.name))
        out.update(self.extra)
        return out


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _extra() -> Any:
    return field(default_factory=dict, repr=False, compare=False)


# --- triage --------------------------------------------------------------------------------


@dataclass
class Onset(Findings):
    """When the impact began (None: no sustained change found) and which series moved first."""

    time: str | None = None
    ref_time: str | None = None
    first_movers: list[Record] = field(default_factory=list)
    extra: dict[str, Any] = _extra()


@dataclass
class Impact(Findings):
    """Measured impact on the customer-facing services over the incident window."""

    onset: str | None = None
    recovered: str | None = None
    as_of: str | None = None
    status: str | None = None
    duration_s: float | None = None
    entrypoints: list[str] = field(default_factory=list)
    affected_services: list[str] = field(default_factory=list)
    customer_error_share: float | None = None
    failed_requests: int | None = None
    total_requests: int | None = None
    customer_latency_ratio: float | None = None
    no_error_data: bool | None = None  # True: no error-rate signal, so no error share at all
    per_service: list[Record] = field(default_factory=list)
    users_affected: Any = None
    extra: dict[str, Any] = _extra()


@dataclass
class SeverityFinding(Findings):
    """The severity level, the rule of the policy that set it, and why."""

    level: str = "P4"
    label: str = ""
    rule: int | None = None
    reasons: list[str] = field(default_factory=list)
    measured: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = _extra()


@dataclass
class StatusUpdate(Findings):
    """A status update as posted: text, colour, state, next update time."""

    text: str = ""
    color: str = ""
    state: str = ""
    next_update: str | None = None
    extra: dict[str, Any] = _extra()


@dataclass
class TriageFindings(Findings):
    """findings/triage.json: signals queried, onset, impact, severity, changes, status."""

    signals: dict[str, Any] = field(default_factory=dict)
    no_data: list[str] = field(default_factory=list)
    # signals the telemetry lacks (never shown as 0), and impact roles without any signal
    missing: list[str] = field(default_factory=list)
    onset: Onset = field(default_factory=Onset)
    impact: Impact = field(default_factory=Impact)
    severity: SeverityFinding | None = None
    changes: list[Record] = field(default_factory=list)
    status_update: StatusUpdate | None = None
    similar_incidents: dict[str, Any] | None = None
    extra: dict[str, Any] = _extra()


# --- correlation ---------------------------------------------------------------------------


@dataclass
class Evidence(Findings):
    """One piece of evidence for a suspect: its kind, the evidence query it cites, the text."""

    kind: str = ""
    evidence: str | None = None
    text: str = ""
    extra: dict[str, Any] = _extra()


@dataclass
class Suspect(Findings):
    """A ranked suspect: a service, optionally a change on it, the score and its evidence."""

    service: str = ""
    change_id: str | None = None
    change: str | None = None
    change_time: str | None = None
    change_type: str | None = None
    score: float = 0.0
    breakdown: dict[str, float] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    rank: int = 0
    margin: float | None = None
    extra: dict[str, Any] = _extra()


@dataclass
class CorrelationFindings(Findings):
    """findings/correlation.json: windows, log statistics, templates, anomalies, suspects."""

    windows: dict[str, list[str | None]] = field(default_factory=dict)
    logs: dict[str, Any] = field(default_factory=dict)
    templates: list[Record] = field(default_factory=list)
    what_changed: list[Record] = field(default_factory=list)
    anomalies: list[Record] = field(default_factory=list)
    changes_near_onset: list[Record] = field(default_factory=list)
    suspects: list[Suspect] = field(default_factory=list)
    # the service stated as root cause (None: no incident or inconclusive), why, and the
    # services tied at the top of the service ranking (analysis.rootcause)
    root_cause: str | None = None
    root_cause_reason: str | None = None
    ties: list[str] = field(default_factory=list)
    service_ranking: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = _extra()

    @property
    def top(self) -> Suspect | None:
        """The leading suspect, if any."""
        return self.suspects[0] if self.suspects else None


# --- five whys -----------------------------------------------------------------------------


@dataclass
class WhyEvidence(Findings):
    """An evidence citation in the 5 Whys: evidence name, query text, the numbers."""

    evidence: str = ""
    query: str | None = None
    numbers: str | None = None
    extra: dict[str, Any] = _extra()


@dataclass
class Why(Findings):
    """One why: question, answer, cited evidence, and whether it is fact or hypothesis."""

    n: int = 0
    question: str = ""
    answer: str = ""
    evidence: list[WhyEvidence] = field(default_factory=list)
    status: str = ""
    extra: dict[str, Any] = _extra()


@dataclass
class Decision(Findings):
    """Rollback-or-fix: the decision, the rule that made it, its target and why."""

    decision: str = ""
    rule: str = ""
    target: str | None = None
    why: str = ""
    extra: dict[str, Any] = _extra()


@dataclass
class FiveWhysFindings(Findings):
    """findings/five_whys.json: the chain of whys and the decision."""

    whys: list[Why] = field(default_factory=list)
    decision: Decision | None = None
    extra: dict[str, Any] = _extra()


# --- postmortem ----------------------------------------------------------------------------


@dataclass
class PostmortemFindings(Findings):
    """findings/postmortem.json: the report file and what evidence was missing or partial."""

    report: str = "report.md"
    missing: list[Record] = field(default_factory=list)
    partial: list[Record] = field(default_factory=list)
    extra: dict[str, Any] = _extra()


STAGE_FINDINGS: dict[str, type[Findings]] = {
    "triage": TriageFindings,
    "correlation": CorrelationFindings,
    "five_whys": FiveWhysFindings,
    "postmortem": PostmortemFindings,
}


def load_findings(stage: str, data: dict[str, Any] | None) -> Findings | None:
    """The typed findings of a stage from its JSON data (None stays None)."""
    if data is None:
        return None
    if stage not in STAGE_FINDINGS:
        raise StageError(f"unknown stage {stage!r}: use one of {', '.join(STAGE_FINDINGS)}")
    return STAGE_FINDINGS[stage].from_dict(data)
