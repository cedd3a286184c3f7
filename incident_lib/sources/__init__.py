"""Telemetry backends behind small protocols; pick one per kind from the config."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .base import (
    ChangeSource,
    LogSource,
    MetricSource,
    QueryError,
    QueryResult,
    SourceError,
)

__all__ = [
    "MetricSource",
    "LogSource",
    "ChangeSource",
    "QueryResult",
    "SourceError",
    "QueryError",
    "make_metric_source",
    "make_log_source",
    "make_change_source",
]


def _kind(spec: dict[str, Any], what: str) -> str:
    kind = spec.get("kind")
    if not kind:
        raise InputError(f"sources.{what}.kind is missing: use files, prometheus or elasticsearch")
    return str(kind)


def make_metric_source(spec: dict[str, Any]) -> MetricSource:
    """A MetricSource from a config spec (kind: files | prometheus)."""
    kind = _kind(spec, "metrics")
    if kind == "files":
        from .files import FilesMetricSource

        return FilesMetricSource(spec["path"])
    if kind == "bundle":
        from .bundle import BundleMetricSource

        return BundleMetricSource(spec["path"])
    if kind == "prometheus":
        from .prometheus import PrometheusMetricSource

        return PrometheusMetricSource.from_spec(spec)
    raise InputError(f"sources.metrics.kind {kind[:30]!r} is unknown: use files, prometheus "
                     "or bundle")


def make_log_source(spec: dict[str, Any]) -> LogSource:
    """A LogSource from a config spec (kind: files | elasticsearch)."""
    kind = _kind(spec, "logs")
    if kind == "files":
        from .files import FilesLogSource

        return FilesLogSource(spec["path"], spec.get("fields"))
    if kind == "bundle":
        from .bundle import BundleLogSource

        return BundleLogSource(spec["path"])
    if kind == "elasticsearch":
        from .elasticsearch import ElasticsearchLogSource

        return ElasticsearchLogSource.from_spec(spec)
    raise InputError(f"sources.logs.kind {kind[:30]!r} is unknown: use files, elasticsearch "
                     "or bundle")


def make_change_source(spec: dict[str, Any]) -> ChangeSource:
    """A ChangeSource from a config spec (kind: files | elasticsearch)."""
    kind = _kind(spec, "changes")
    if kind == "files":
        from .files import FilesChangeSource

        return FilesChangeSource(spec["path"], spec.get("fields"))
    if kind == "bundle":
        from .bundle import BundleChangeSource

        return BundleChangeSource(spec["path"])
    if kind == "elasticsearch":
        from .elasticsearch import ElasticsearchChangeSource

        return ElasticsearchChangeSource.from_spec(spec)
    raise InputError(f"sources.changes.kind {kind[:30]!r} is unknown: use files, "
                     "elasticsearch or bundle")
