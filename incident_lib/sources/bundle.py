"""Offline backend: replays a run's recorded evidence/ (parquet + index.json query text)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..core.errors import SourceError
from .base import CHANGE_COLUMNS, LOG_COLUMNS, QueryResult, uniform_sample

__all__ = ["BundleMetricSource", "BundleLogSource", "BundleChangeSource", "load_evidence"]

BACKEND = "bundle"


def _evidence_dir(path: str | Path) -> Path:
    p = Path(path)
    if p.name != "evidence" and (p / "evidence").is_dir():
        p = p / "evidence"
    if not (p / "index.json").is_file():
        raise SourceError(f"bundle {p} has no index.json: point kind: bundle at a run's "
                          "evidence/ folder")
    return p.resolve()


@lru_cache(maxsize=16)
def _load(path: str, mtime: float, size: int) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def load_evidence(folder: str | Path, name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A recorded evidence frame (a copy) and its index entry (query text, notes, warnings)."""
    folder = _evidence_dir(folder)
    index = json.loads((folder / "index.json").read_text("utf-8"))
    f = folder / f"{name}.parquet"
    if name not in index or not f.is_file():
        raise SourceError(f"bundle {folder} has no evidence {name!r}: the original run did not "
                          "record it, so it cannot be replayed offline")
    st = f.stat()
    return _load(str(f), st.st_mtime, st.st_size).copy(), dict(index[name])


def _utc(df: pd.DataFrame) -> pd.DataFrame:
    if "time" in df.columns:
        df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


def _in_range(df: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    return (df["time"] >= start) & (df["time"] <= end)


def _recorded(meta: dict[str, Any], frame: pd.DataFrame, warnings: list[str]) -> QueryResult:
    """The frame answered with the original query's text, backend, notes and warnings."""
    return QueryResult(frame, str(meta.get("query", "")), str(meta.get("backend", BACKEND)),
                       warnings=list(meta.get("warnings") or []) + warnings,
                       partial=bool(meta.get("partial", False)),
                       notes=dict(meta.get("notes") or {}))


class BundleMetricSource:
    """Signals replayed from evidence/signal_<name>.parquet."""

    backend = BACKEND

    def __init__(self, path: str | Path) -> None:
        self.path = _evidence_dir(path)

    def services(self) -> list[str]:
        """Service names seen in any recorded signal."""
        out: set[str] = set()
        index = json.loads((self.path / "index.json").read_text("utf-8"))
        for name in index:
            if name.startswith("signal_"):
                df, _ = load_evidence(self.path, name)
                if "service" in df.columns:
                    out.update(str(s) for s in df["service"].dropna().unique())
        return sorted(out)

    def query_signal(
        self,
        signal: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        step: float,
        filters: dict[str, str] | None = None,
    ) -> QueryResult:
        """The recorded frame of the signal, cut to [start, end] and filtered by labels."""
        df, meta = load_evidence(self.path, f"signal_{signal}")
        df = _utc(df)
        warnings: list[str] = []
        keep = _in_range(df, start, end) if len(df) else pd.Series([], dtype=bool)
        for k, v in (filters or {}).items():
            if k not in df.columns:
                return QueryResult(df.iloc[:0].reset_index(drop=True), str(meta.get("query")),
                                   BACKEND, [f"replay: label {k!r} was not recorded"])
            keep &= df[k].astype(str) == str(v)
        recorded_step = _step_of(df)
        if recorded_step and abs(recorded_step - step) > 1e-9:
            warnings.append(f"replay: recorded at step {recorded_step:g}s, asked {step:g}s; "
                            "the recorded points are returned")
        if len(df) and not keep.all():
            warnings.append("replay: recorded points cut to the asked range")
        return _recorded(meta, df[keep].reset_index(drop=True) if len(df) else df, warnings)


def _step_of(df: pd.DataFrame) -> float | None:
    if "time" not in df.columns or df["time"].nunique() < 2:
        return None
    t = pd.Series(np.sort(df["time"].unique()))
    return float(t.diff().dt.total_seconds().median())


class BundleLogSource:
    """Log lines replayed from evidence/logs.parquet (as recorded: possibly redacted)."""

    backend = BACKEND

    def __init__(self, path: str | Path, name: str = "logs") -> None:
        self.path = _evidence_dir(path)
        self.name = name

    def _frame(self) -> tuple[pd.DataFrame, dict[str, Any]]:
        df, meta = load_evidence(self.path, self.name)
        for col in LOG_COLUMNS:
            if col not in df.columns:
                df[col] = None
        df = df[LOG_COLUMNS]
        if "message" in df.columns:
            df["message"] = df["message"].astype(object)
        return _utc(df), meta

    def read_logs(
        self,
        start: pd.Timestamp,
        end: pd.Timestamp,
        *,
        services: list[str] | None = None,
        limit: int | None = None,
    ) -> QueryResult:
        """Recorded lines in [start, end]; the original notes when every recorded line is asked."""
        df, meta = self._frame()
        keep = _in_range(df, start, end)
        if services:
            keep &= df["service"].isin(services)
        matched = int(keep.sum())
        out = df[keep]
        if matched == len(df) and (limit is None or limit >= matched):
            return _recorded(meta, out.reset_index(drop=True), [])
        out, sampled = uniform_sample(out, limit)
        sampling = (f"uniform random sample (seed 0) of {limit} out of {matched} recorded"
                    if sampled else "all recorded lines")
        out = out.sort_values("time", kind="stable").reset_index(drop=True)
        query = (f"bundle:{self.path.parent.name}/evidence/{self.name}.parquet time in "
                 f"[{start.isoformat()}, {end.isoformat()}]"
                 + (f" service in {sorted(services)}" if services else ""))
        warnings = [f"replay: a subset of the recorded lines (recorded query: "
                    f"{str(meta.get('query', ''))[:200]})"]
        notes = {"matched": matched, "read": len(out), "sampling": sampling}
        return QueryResult(out, query, BACKEND, warnings=warnings,
                           partial=bool(meta.get("partial", False)), notes=notes)

    def count_over_time(
        self, start: pd.Timestamp, end: pd.Timestamp, interval: str, by: list[str]
    ) -> QueryResult:
        """Recorded counts (pushed-down evidence) if any match, else counted from recorded lines."""
        rec = self._recorded_counts(interval, by)
        if rec is not None:
            df, meta = rec
            keep = (df["time"] >= start.floor(interval)) & (df["time"] <= end)
            warnings = [] if keep.all() else ["replay: recorded counts cut to the asked range"]
            return _recorded(meta, df[keep].reset_index(drop=True), warnings)
        df, meta = self._frame()
        df = df[_in_range(df, start, end)][["time", *by]].copy()
        df["time"] = df["time"].dt.floor(interval)
        counts = df.groupby(["time", *by], dropna=False).size().rename("count").reset_index()
        query = f"bundle:{self.name} count per {interval} by {by} in [{start}, {end}]"
        warnings = ["replay: counted from the recorded lines (no recorded counts), which may "
                    "be sampled or cover a shorter window"]
        return QueryResult(counts, query, BACKEND,
                           warnings=list(meta.get("warnings") or []) + warnings)

    def _recorded_counts(self, interval: str, by: list[str]
                         ) -> tuple[pd.DataFrame, dict[str, Any]] | None:
        """Recorded evidence with columns time, *by, count at this interval (e.g. log_volume)."""
        index = json.loads((self.path / "index.json").read_text("utf-8"))
        for name in sorted(index):
            f = self.path / f"{name}.parquet"
            if not f.is_file() or pq.read_schema(f).names != ["time", *by, "count"]:
                continue
            df, meta = load_evidence(self.path, name)
            df = _utc(df)
            times = pd.Series(np.sort(df["time"].unique()))
            step = pd.Timedelta(interval)
            if len(times) and (times != times.dt.floor(interval)).any():
                continue
            if len(times) > 1 and times.diff().min() != step:
                continue
            return df, meta
        return None


class BundleChangeSource:
    """Change events replayed from evidence/changes.parquet."""

    backend = BACKEND

    def __init__(self, path: str | Path, name: str = "changes") -> None:
        self.path = _evidence_dir(path)
        self.name = name

    def changes(self, start: pd.Timestamp, end: pd.Timestamp) -> QueryResult:
        """Recorded change events in [start, end], oldest first."""
        df, meta = load_evidence(self.path, self.name)
        for col in CHANGE_COLUMNS:
            if col not in df.columns:
                df[col] = None
        df = _utc(df[CHANGE_COLUMNS])
        keep = _in_range(df, start, end) if len(df) else pd.Series([], dtype=bool)
        warnings = [] if keep.all() else ["replay: recorded changes cut to the asked range"]
        out = df[keep].sort_values("time", kind="stable").reset_index(drop=True)
        return _recorded(meta, out, warnings)
