"""Backend protocols and the result type every source returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..core.errors import QueryError, SourceError

__all__ = [
    "QueryResult",
    "uniform_sample",
    "MetricSource",
    "LogSource",
    "ChangeSource",
    "SpanSource",
    "NoChangeSource",
    "SourceError",
    "QueryError",
    "LOG_COLUMNS",
    "CHANGE_COLUMNS",
    "SPAN_COLUMNS",
    "MAX_POINTS",
    "choose_step",
    "time_grid",
    "nonfinite_warning",
]

# Normalised column names every LogSource / ChangeSource returns.
LOG_COLUMNS = ["time", "service", "level", "message", "host", "trace_id", "status"]
CHANGE_COLUMNS = ["time", "service", "type", "id", "description", "version", "author"]
# start: tz-aware UTC; parent_id None for roots; status "error" / "ok" / None when unknown.
SPAN_COLUMNS = ["trace_id", "span_id", "parent_id", "service", "pod", "operation", "start",
                "duration_ms", "status"]


@dataclass
class QueryResult:
    """A query's answer plus what is needed to trust it (query text, partial, warnings)."""

    frame: pd.DataFrame
    query: str
    backend: str
    warnings: list[str] = field(default_factory=list)
    partial: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when the backend returned no data (a finding, not an error)."""
        return self.frame.empty


@runtime_checkable
class MetricSource(Protocol):
    """Evaluates named signals (declared per deployment; see signals.yaml) over a time range.

    A signal the source lacks comes back as an empty frame, its name listed in
    notes["missing"] and a warning: never as zeros.
    """

    backend: str

    def query_signal(
        self,
        signal: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        step: float,
        filters: dict[str, str] | None = None,
    ) -> QueryResult:
        """Long frame with columns time, service, value (optionally pod, other labels)."""
        ...

    def services(self) -> list[str]:
        """Known service names."""
        ...


@runtime_checkable
class LogSource(Protocol):
    """Log lines with ECS fields, plus pushed-down counts."""

    backend: str

    def read_logs(
        self,
        start: pd.Timestamp,
        end: pd.Timestamp,
        *,
        services: list[str] | None = None,
        limit: int | None = None,
    ) -> QueryResult:
        """Raw lines (columns LOG_COLUMNS), capped at limit; notes say read/matched/sampling."""
        ...

    def count_over_time(
        self, start: pd.Timestamp, end: pd.Timestamp, interval: str, by: list[str]
    ) -> QueryResult:
        """Counts per time bucket and the `by` columns (from LOG_COLUMNS)."""
        ...


@runtime_checkable
class ChangeSource(Protocol):
    """Deploys, config changes and feature flags."""

    backend: str

    def changes(self, start: pd.Timestamp, end: pd.Timestamp) -> QueryResult:
        """Change events (columns CHANGE_COLUMNS) in [start, end]."""
        ...


@runtime_checkable
class SpanSource(Protocol):
    """Trace spans (one row a span)."""

    backend: str

    def spans(
        self,
        start: pd.Timestamp,
        end: pd.Timestamp,
        *,
        services: list[str] | None = None,
        limit: int | None = None,
    ) -> QueryResult:
        """Spans starting in [start, end] (columns SPAN_COLUMNS); notes say orphans/cycles."""
        ...


class NoChangeSource:
    """Stands in when no changes are configured: empty, and says so (changes are optional)."""

    backend = "none"

    def changes(self, start: pd.Timestamp, end: pd.Timestamp) -> QueryResult:
        """No change events, with the warning that none are configured."""
        frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in CHANGE_COLUMNS})
        frame["time"] = pd.to_datetime(pd.Series([], dtype="datetime64[ns, UTC]"))
        return QueryResult(frame, "changes: none configured", self.backend,
                           warnings=["no changes configured"], notes={"missing": ["changes"]})


MAX_POINTS = 11_000


def choose_step(
    start: pd.Timestamp, end: pd.Timestamp, target_points: int = 1000, min_step: float = 15.0
) -> float:
    """A step (seconds, multiple of min_step) giving at most target_points (< 11,000) points."""
    span = max((end - start).total_seconds(), min_step)
    target = min(target_points, MAX_POINTS - 1)
    mult = max(1, math.ceil(span / target / min_step))
    return float(mult * min_step)


def time_grid(start: pd.Timestamp, end: pd.Timestamp, step: float) -> np.ndarray:
    """Evaluation times (epoch seconds) aligned to multiples of step, inside [start, end]."""
    s = math.ceil(start.timestamp() / step) * step
    e = end.timestamp()
    if s > e:
        return np.array([], dtype=float)
    n = math.floor((e - s) / step + 1e-9)
    return s + step * np.arange(n + 1, dtype=float)


def nonfinite_warning(series: list[str]) -> str:
    """The one warning both metric backends give when NaN/Inf samples spoiled some points."""
    names = "; ".join(series[:3]) + (f"; and {len(series) - 3} more" if len(series) > 3 else "")
    return (f"non-finite samples (NaN/Inf) in {len(series)} series: {names}. Points they "
            "touch are dropped (a sum with a NaN is NaN), so these numbers have gaps")


def uniform_sample(df: pd.DataFrame, limit: int | None) -> tuple[pd.DataFrame, bool]:
    """At most `limit` rows, drawn uniformly at random with seed 0 (the same rows on every
    read), in their original order; and whether it sampled."""
    if limit is None or len(df) <= limit:
        return df, False
    keep = np.sort(np.random.default_rng(0).choice(len(df), size=limit, replace=False))
    return df.iloc[keep], True
