"""Telemetry backends behind small protocols; pick one per kind from the config."""

from __future__ import annotations

import importlib
from typing import Any

from ..core.errors import InputError
from .base import (
    ChangeSource,
    LogSource,
    MetricSource,
    QueryError,
    QueryResult,
    SourceError,
    SpanSource,
)

__all__ = [
    "MetricSource",
    "LogSource",
    "ChangeSource",
    "SpanSource",
    "QueryResult",
    "SourceError",
    "QueryError",
    "make_metric_source",
    "make_log_source",
    "make_change_source",
    "make_span_source",
]


# kind -> "module:Class" per telemetry kind; classes are imported only when used.
_BACKENDS: dict[str, dict[str, str]] = {
    "metrics": {"files": ".filemetrics:FilesMetricSource",
                "prometheus": ".prometheus:PrometheusMetricSource",
                "bundle": ".bundle:BundleMetricSource"},
    "logs": {"files": ".files:FilesLogSource",
             "elasticsearch": ".elasticsearch:ElasticsearchLogSource",
             "bundle": ".bundle:BundleLogSource"},
    "changes": {"files": ".files:FilesChangeSource",
                "elasticsearch": ".elasticsearch:ElasticsearchChangeSource",
                "bundle": ".bundle:BundleChangeSource",
                "none": ".base:NoChangeSource"},
    "spans": {"files": ".spans:FilesSpanSource",
              "none": ".spans:NoSpanSource"},
}
# files backends whose `format:` is a table format read user exports through a field mapping
# (tables.py); any other logs `format` is a text-log header format (sources/logformats.py)
_TABLES = {"metrics": ".tablemetrics:TableMetricSource", "logs": ".logfiles:TableLogSource",
           "spans": ".spans:FilesSpanSource"}
_TABLE_FORMATS = {"metrics": {"csv"}, "logs": {"csv", "ndjson"}}


def _table(what: str, spec: dict[str, Any]) -> bool:
    return spec.get("kind") == "files" and (
        what == "spans" or str(spec.get("format")) in _TABLE_FORMATS.get(what, set()))


def _make(what: str, spec: dict[str, Any] | None) -> Any:
    kinds = _BACKENDS[what]
    if not isinstance(spec, dict):
        raise InputError(f"sources.{what} is missing in the incident: declare it with a kind "
                         f"({', '.join(kinds)})")
    kind = spec.get("kind")
    if not kind:
        raise InputError(f"sources.{what}.kind is missing: use {', '.join(kinds)}")
    target = kinds.get(str(kind))
    if target is None:
        raise InputError(f"sources.{what}.kind {str(kind)[:30]!r} is unknown: use "
                         f"{', '.join(kinds)}")
    if _table(what, spec):
        target = _TABLES[what]
    module, name = target.split(":")
    cls = getattr(importlib.import_module(module, __package__), name)
    if kind == "none":
        return cls()
    if _table(what, spec):
        return cls(spec)
    if kind == "files" and what == "metrics":
        return cls(spec["path"], signals=spec)
    if kind == "files":
        if what == "logs":
            return cls(spec["path"], spec.get("fields"), spec.get("format"))
        return cls(spec["path"]) if what == "metrics" else cls(spec["path"], spec.get("fields"))
    if kind == "bundle":
        return cls(spec["path"])
    return cls.from_spec(spec)


def make_metric_source(spec: dict[str, Any]) -> MetricSource:
    """A MetricSource from a config spec (kind: files | prometheus | bundle)."""
    return _make("metrics", spec)


def make_log_source(spec: dict[str, Any]) -> LogSource:
    """A LogSource from a config spec (kind: files | elasticsearch | bundle)."""
    return _make("logs", spec)


def make_change_source(spec: dict[str, Any]) -> ChangeSource:
    """A ChangeSource from a config spec (kind: files | elasticsearch | bundle | none)."""
    return _make("changes", spec)


def make_span_source(spec: dict[str, Any] | None) -> SpanSource:
    """A SpanSource from a config spec (kind: files | none); no spec: none (empty, stated)."""
    return _make("spans", spec or {"kind": "none"})
