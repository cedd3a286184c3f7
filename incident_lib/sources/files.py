"""Embedded default backend: NDJSON/Parquet logs, one OpenMetrics file, NDJSON changes."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from ..errors import SourceError
from ..signals import get_signal
from .base import CHANGE_COLUMNS, LOG_COLUMNS, QueryResult, time_grid
from .openmetrics import MetricStore, evaluate, parse_openmetrics

__all__ = [
    "FilesMetricSource",
    "FilesLogSource",
    "FilesChangeSource",
    "ECS_LOG_FIELDS",
    "ECS_CHANGE_FIELDS",
]

ECS_LOG_FIELDS = {
    "time": "@timestamp",
    "service": "service.name",
    "level": "log.level",
    "message": "message",
    "host": "host.name",
    "trace_id": "trace.id",
    "status": "http.response.status_code",
}
ECS_CHANGE_FIELDS = {
    "time": "@timestamp",
    "service": "service.name",
    "type": "change.type",
    "id": "change.id",
    "description": "change.description",
    "version": "service.version",
    "author": "user.name",
}


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

    def __init__(self, path: str | Path) -> None:
        self.path = _check_file(Path(path), "metrics")

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
        sig = get_signal(signal)
        spec = _with_filters(sig.files, filters or {})
        grid = time_grid(start, end, step)
        frame = evaluate(self.store, spec, grid)
        query = f"files:{self.path.name} {json.dumps(spec, sort_keys=True)} step={step:g}s"
        return QueryResult(frame, query, self.backend, warnings=list(self.store.warnings))


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


def _read_ndjson(path: Path, time_field: str) -> tuple[pa.Table, list[str]]:
    """Read NDJSON fast with pyarrow; on a malformed line fall back to a tolerant reader."""
    opts = pj.ParseOptions(
        explicit_schema=pa.schema([(time_field, pa.timestamp("ms", tz="UTC"))]),
        unexpected_field_behavior="infer",
    )
    try:
        read = pj.ReadOptions(block_size=1 << 24)
        return pj.read_json(path, parse_options=opts, read_options=read), []
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    rows, warnings, bad = [], [], 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("not an object")
                obj[time_field] = pd.Timestamp(obj[time_field])
                if obj[time_field].tzinfo is None:
                    obj[time_field] = obj[time_field].tz_localize("UTC")
                rows.append(obj)
            except (ValueError, KeyError, TypeError) as exc:
                bad += 1
                if len(warnings) < 20:
                    warnings.append(f"{path.name}:{lineno}: skipped malformed line ({exc})"[:200])
    if bad > len(warnings):
        warnings.append(f"{path.name}: {bad} malformed lines skipped in all")
    if not rows:
        return pa.table({time_field: pa.array([], pa.timestamp("ms", tz="UTC"))}), warnings
    df = pd.DataFrame(rows)
    df[time_field] = pd.to_datetime(df[time_field], utc=True)
    return pa.Table.from_pandas(df, preserve_index=False), warnings


@lru_cache(maxsize=4)
def _load_table(path: str, mtime: float, size: int, time_field: str) -> tuple[pa.Table, tuple]:
    p = Path(path)
    if p.suffix == ".parquet":
        return pq.read_table(p), ()
    if size == 0:
        return pa.table({time_field: pa.array([], pa.timestamp("ms", tz="UTC"))}), (
            f"{p.name}: file is empty",
        )
    table, warnings = _read_ndjson(p, time_field)
    return table, tuple(warnings)


class _TableFile:
    def __init__(self, path: str | Path, fields: dict[str, str], what: str) -> None:
        self.path = _check_file(Path(path), what)
        self.fields = dict(fields)

    def _table(self) -> tuple[pa.Table, list[str]]:
        st = self.path.stat()
        table, warnings = _load_table(str(self.path), st.st_mtime, st.st_size, self.fields["time"])
        return table, list(warnings)

    def _slice(
        self, start: pd.Timestamp, end: pd.Timestamp, columns: list[str]
    ) -> tuple[pd.DataFrame, list[str]]:
        table, warnings = self._table()
        tf = self.fields["time"]
        if table.num_rows:
            ts = table.column(tf).cast(pa.timestamp("ms", tz="UTC"))
            lo = pa.scalar(start.to_pydatetime(), pa.timestamp("ms", tz="UTC"))
            hi = pa.scalar(end.to_pydatetime(), pa.timestamp("ms", tz="UTC"))
            table = table.filter(pc.and_(pc.greater_equal(ts, lo), pc.less_equal(ts, hi)))
        out = {}
        for col in columns:
            src = self.fields.get(col)
            if src and src in table.column_names:
                out[col] = table.column(src).to_pandas()
            else:
                out[col] = pd.Series([None] * table.num_rows, dtype=object)
        df = pd.DataFrame(out)
        if len(df):
            df["time"] = pd.to_datetime(df["time"], utc=True)
        else:
            df["time"] = pd.to_datetime(pd.Series([], dtype="datetime64[ms, UTC]"))
        return df, warnings


class FilesLogSource(_TableFile):
    """Logs from an NDJSON (or Parquet) file with ECS field names."""

    backend = "files"

    def __init__(self, path: str | Path, fields: dict[str, str] | None = None) -> None:
        super().__init__(path, fields or ECS_LOG_FIELDS, "logs")

    def read_logs(
        self,
        start: pd.Timestamp,
        end: pd.Timestamp,
        *,
        services: list[str] | None = None,
        limit: int | None = None,
    ) -> QueryResult:
        """Lines in [start, end], optionally for some services, uniformly sampled to limit."""
        df, warnings = self._slice(start, end, LOG_COLUMNS)
        if services:
            df = df[df["service"].isin(services)]
        matched = len(df)
        sampling = "all lines"
        if limit is not None and matched > limit:
            idx = np.sort(np.random.default_rng(0).choice(matched, size=limit, replace=False))
            df = df.iloc[idx]
            sampling = f"uniform random sample (seed 0) of {limit} out of {matched}"
        df = df.sort_values("time", kind="stable").reset_index(drop=True)
        query = (
            f"files:{self.path.name} {self.fields['time']} in [{start.isoformat()}, "
            f"{end.isoformat()}]" + (f" service in {sorted(services)}" if services else "")
        )
        notes = {"matched": matched, "read": len(df), "sampling": sampling}
        return QueryResult(df, query, self.backend, warnings=warnings, notes=notes)

    def count_over_time(
        self, start: pd.Timestamp, end: pd.Timestamp, interval: str, by: list[str]
    ) -> QueryResult:
        """Line counts per interval bucket and the `by` columns."""
        df, warnings = self._slice(start, end, ["time", *by])
        df["time"] = df["time"].dt.floor(interval)
        counts = df.groupby(["time", *by], dropna=False).size().rename("count").reset_index()
        query = f"files:{self.path.name} count per {interval} by {by} in [{start}, {end}]"
        return QueryResult(counts, query, self.backend, warnings=warnings)


class FilesChangeSource(_TableFile):
    """Change events (deploys, config, feature flags) from NDJSON."""

    backend = "files"

    def __init__(self, path: str | Path, fields: dict[str, str] | None = None) -> None:
        super().__init__(path, fields or ECS_CHANGE_FIELDS, "changes")

    def changes(self, start: pd.Timestamp, end: pd.Timestamp) -> QueryResult:
        """Change events in [start, end], oldest first."""
        df, warnings = self._slice(start, end, CHANGE_COLUMNS)
        df = df.sort_values("time", kind="stable").reset_index(drop=True)
        query = (f"files:{self.path.name} {self.fields['time']} in [{start.isoformat()}, "
                 f"{end.isoformat()}]")
        return QueryResult(df, query, self.backend, warnings=warnings)
