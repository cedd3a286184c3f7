"""Embedded default metrics backend: one OpenMetrics text file, the named signals evaluated
in-process with Prometheus semantics (see openmetrics.py)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import InputError, SourceError
from ..core.signals import Signal, signal_set
from .base import QueryResult, nonfinite_warning, time_grid
from .openmetrics import MetricStore, evaluate, parse_openmetrics

__all__ = ["FilesMetricSource"]


def _check_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise SourceError(f"{what} file {path} does not exist: run `incident demo` or fix the path")
    return path


@lru_cache(maxsize=4)
def _load_store(path: str, mtime: float, size: int) -> MetricStore:
    return parse_openmetrics(path)


class FilesMetricSource:
    """Signals evaluated in-process on one OpenMetrics text file."""

    backend = "files"

    def __init__(self, path: str | Path, signals: dict[str, Any] | None = None) -> None:
        self.path = _check_file(Path(path), "metrics")
        self.signals: dict[str, Signal] = signal_set(signals)

    @property
    def store(self) -> MetricStore:
        """The parsed file (cached while the file is unchanged)."""
        st = self.path.stat()
        return _load_store(str(self.path), st.st_mtime, st.st_size)

    def services(self) -> list[str]:
        """Distinct `service` label values."""
        return self.store.label_values("service")

    def query_signal(
        self,
        signal: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        step: float,
        filters: dict[str, str] | None = None,
    ) -> QueryResult:
        """Evaluate a named signal over [start, end] every step seconds."""
        sig = self.signals.get(signal)
        if sig is None:
            raise InputError(f"signal {signal[:40]!r} is not declared: use one of "
                             f"{', '.join(sorted(self.signals))}")
        spec = _with_filters(sig.files, filters or {})
        grid = time_grid(start, end, step)
        query = f"files:{self.path.name} {json.dumps(spec, sort_keys=True)} step={step:g}s"
        warnings = list(self.store.warnings)
        absent = sorted(m for m in _metric_names(spec) if m not in self.store.series)
        if not spec or absent:
            why = ", ".join(absent) if absent else "no files definition"
            warnings.append(f"signal {signal}: {why} not in {self.path.name}: reported as "
                            "missing, not 0")
            frame = pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]"),
                                  "service": pd.Series([], dtype=object),
                                  "value": pd.Series([], dtype=float)})
            return QueryResult(frame, query, self.backend, warnings=warnings,
                               notes={"missing": [signal]})
        flagged: list[str] = []
        frame = evaluate(self.store, spec, grid, flagged)
        warnings += _sparse_counters(self.store, spec, signal)
        notes: dict[str, Any] = {}
        if flagged:
            notes["nonfinite_series"] = flagged[:20]
            warnings.insert(0, nonfinite_warning(flagged))
        return QueryResult(frame, query, self.backend, warnings=warnings, notes=notes)


def _sparse_counters(store: Any, spec: dict[str, Any], signal: str) -> list[str]:
    """Warn when a rate range holds fewer than 2 samples (e.g. 60-s scrapes with [1m]).

    Prometheus answers such a rate with nothing; so does this evaluator (parity), but the
    user is told why and how to declare the signal instead of seeing an unexplained gap.
    """
    out = []
    ops = [spec] + [spec[k] for k in ("num", "den") if isinstance(spec.get(k), dict)]
    for op in ops:
        if op.get("op") not in ("rate_sum", "histogram_quantile") or "metric" not in op:
            continue
        rng = float(op.get("range", spec.get("range", 60)))
        gaps = [float(np.median(np.diff(x.t))) for x in store.series.get(op["metric"], [])
                if len(x.t) > 2]
        if gaps and float(np.median(gaps)) * 2 > rng:
            need = int(4 * float(np.median(gaps)))
            out.append(f"signal {signal}: {op['metric']} is sampled every "
                       f"~{float(np.median(gaps)):.0f} s but its rate range is {rng:.0f} s "
                       f"(fewer than 2 samples): values are missing; declare the signal with "
                       f"range: {need} (PromQL [{need}s])")
    return out


def _metric_names(spec: dict[str, Any]) -> list[str]:
    """Every metric name an OpenMetrics signal definition reads."""
    names = [str(spec["metric"])] if "metric" in spec else []
    for side in ("num", "den"):
        if isinstance(spec.get(side), dict):
            names += _metric_names(spec[side])
    return names


def _with_filters(spec: dict[str, Any], filters: dict[str, str]) -> dict[str, Any]:
    if not filters:
        return spec
    out = dict(spec)
    if "metric" in out:
        out["match"] = {**out.get("match", {}), **filters}
    for side in ("num", "den"):
        if side in out:
            out[side] = _with_filters(out[side], filters)
    return out
