"""Embedded default backend for logs and changes: NDJSON/Parquet (and text logs); the metrics
file is read by filemetrics.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from ..core.errors import SourceError
from ..core.redact import redact_text
from .base import CHANGE_COLUMNS, LOG_COLUMNS, QueryResult
from .filemetrics import _check_file
from .records import epoch_unit, flat_table, flatten, row_time, units_note
from .tables import parse_json
from .textlogs import TextLog, is_text_log

__all__ = [
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














_BATCH_LINES = 100_000
def _tolerant_batches(path: Path, time_field: str, warnings: list[str]) -> Iterator[pa.Table]:
    """Line-by-line NDJSON reader: skips malformed lines, naming them by line number."""
    rows: list[dict[str, Any]] = []
    bad = 0
    units: set[str] = set()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = parse_json(line)
                if not isinstance(obj, dict):
                    raise ValueError("not an object")
                obj = flatten(obj)
                obj[time_field] = row_time(obj[time_field], units)
                rows.append(obj)
            except (ValueError, KeyError, TypeError) as exc:
                bad += 1
                if len(warnings) < 20:  # the reason may quote the line: personal data redacted
                    msg = f"{path.name}:{lineno}: skipped malformed line ({exc})"
                    warnings.append(redact_text(msg[:300])[:200])
            if len(rows) >= _BATCH_LINES:
                yield _rows_table(rows, time_field)
                rows = []
    if rows:
        yield _rows_table(rows, time_field)
    if units:
        warnings.insert(0, units_note(path, time_field, units))
    if bad > len(warnings):
        warnings.append(f"{path.name}: {bad} malformed lines skipped in all")


def _rows_table(rows: list[dict[str, Any]], time_field: str) -> pa.Table:
    df = pd.DataFrame(rows)
    df[time_field] = pd.to_datetime(df[time_field], utc=True)
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return pa.Table.from_pandas(df, preserve_index=False)


MAX_OPENERS = 1000  # `{` + `[` on one line beyond which Arrow's parser is not trusted


def _has_deep_line(path: Path, limit: int = MAX_OPENERS, block_size: int = 1 << 24) -> bool:
    """Whether a line holds more than `limit` `{`/`[` (an upper bound of its nesting depth).
    Arrow's JSON parser recurses per level and crashes the process (SIGSEGV) somewhere past
    10,000 levels; such a file goes to the line-by-line reader, which skips and names that
    line. Counted with numpy a block at a time: opener positions against line ends."""
    carry = 0  # openers of the line still open at the end of the previous block
    with open(path, "rb") as fh:
        while block := fh.read(block_size):
            a = np.frombuffer(block, np.uint8)
            opens = np.flatnonzero((a == 0x7B) | (a == 0x5B))
            upto = np.searchsorted(opens, np.flatnonzero(a == 0x0A))  # openers before each end
            per_line = np.diff(upto, prepend=0)
            if len(per_line):
                per_line[0] += carry
                carry = len(opens) - int(upto[-1])
            else:
                carry += len(opens)
            if (len(per_line) and per_line.max() > limit) or carry > limit:
                return True
    return False


def _arrow_batches(path: Path, time_field: str) -> Iterator[pa.Table]:
    """Streaming NDJSON/Parquet reader (bounded memory); raises ArrowInvalid on bad input."""
    if path.suffix == ".parquet":
        try:  # a damaged Parquet file is an error, never re-read as text
            pf = pq.ParquetFile(path)
            for batch in pf.iter_batches(batch_size=_BATCH_LINES):
                yield pa.Table.from_batches([batch])
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"{path} is not a readable Parquet file "
                              f"({' '.join(str(exc).split())[:120]}): export it again") from None
        return
    if _has_deep_line(path):
        raise pa.ArrowInvalid(f"a line nests more than {MAX_OPENERS} levels")
    opts = pj.ParseOptions(
        explicit_schema=pa.schema([(time_field, pa.timestamp("ms", tz="UTC"))]),
        unexpected_field_behavior="infer",
    )
    reader = pj.open_json(path, parse_options=opts,
                          read_options=pj.ReadOptions(block_size=1 << 24))
    for batch in reader:
        yield pa.Table.from_batches([batch])


class _TableFile:
    _text: TextLog | None = None  # a text log (format detected or given), else NDJSON/Parquet

    def __init__(self, path: str | Path, fields: dict[str, str], what: str) -> None:
        self.path = _check_file(Path(path), what)
        self.fields = dict(fields)

    def _frames(
        self, start: pd.Timestamp, end: pd.Timestamp, columns: list[str], warnings: list[str]
    ) -> Iterator[pd.DataFrame]:
        """Batches of rows in [start, end] as normalised frames (tolerant on malformed input)."""
        if self.path.stat().st_size == 0:
            warnings.append(f"{self.path.name}: file is empty")
            return
        if self._text is not None:
            yield from self._filtered(self._text.batches(self.fields, warnings), start, end,
                                      columns)
            return
        try:
            yield from self._filtered(_arrow_batches(self.path, self.fields["time"]),
                                      start, end, columns)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            raise _Restart() from None

    def _filtered(self, tables: Iterator[pa.Table], start: pd.Timestamp, end: pd.Timestamp,
                  columns: list[str]) -> Iterator[pd.DataFrame]:
        tf = self.fields["time"]
        lo = pa.scalar(start.to_pydatetime(), pa.timestamp("ms", tz="UTC"))
        hi = pa.scalar(end.to_pydatetime(), pa.timestamp("ms", tz="UTC"))
        for table in tables:
            table = flat_table(table)
            if tf not in table.column_names or not table.num_rows:
                continue
            ts = self._times(table.column(tf))
            table = table.set_column(table.column_names.index(tf), tf, ts)
            table = table.filter(pc.and_(pc.greater_equal(ts, lo), pc.less_equal(ts, hi)))
            if not table.num_rows:
                continue
            out = {}
            for col in columns:
                src = self.fields.get(col)
                if src and src in table.column_names:
                    out[col] = table.column(src).to_pandas()
                else:
                    out[col] = pd.Series([None] * table.num_rows, dtype=object)
            df = pd.DataFrame(out)
            df["time"] = pd.to_datetime(df["time"], utc=True)
            yield df

    def _times(self, col: pa.ChunkedArray) -> pa.ChunkedArray:
        """A time column as ms timestamps; epoch numbers by their inferred unit (noted)."""
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            valid = pc.drop_null(col)
            if len(valid):
                unit = epoch_unit(float(pc.max(pc.abs(valid)).as_py()))
                self._units.add(unit)
                if pa.types.is_integer(col.type):  # exact integer arithmetic (ns > 2**53)
                    col = pc.cast(col, pa.int64())
                    col = (pc.multiply(col, 1000) if unit == "s" else col if unit == "ms"
                           else pc.divide(col, 1000 if unit == "us" else 1_000_000))
                else:
                    scale = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "ns": 1e-6}[unit]
                    col = pc.cast(pc.multiply(col, scale), pa.int64(), safe=False)
            return pc.cast(col, pa.timestamp("ms", tz="UTC"))
        return pc.cast(col, pa.timestamp("ms", tz="UTC"), safe=False)  # sub-ms cut, not fatal

    def _scan(self, start: pd.Timestamp, end: pd.Timestamp, columns: list[str],
              consume: Any) -> list[str]:
        """Feed every batch to consume(frame); on malformed input restart tolerantly."""
        warnings: list[str] = []
        self._units: set[str] = set()
        try:
            for df in self._frames(start, end, columns, warnings):
                consume(df)
        except _Restart:
            consume(None)  # reset the consumer's state
            warnings = []
            tables = _tolerant_batches(self.path, self.fields["time"], warnings)
            for df in self._filtered(tables, start, end, columns):
                consume(df)
        if self._units:
            warnings.insert(0, units_note(self.path, self.fields["time"], self._units))
        return warnings

    def _slice(
        self, start: pd.Timestamp, end: pd.Timestamp, columns: list[str]
    ) -> tuple[pd.DataFrame, list[str]]:
        parts: list[pd.DataFrame] = []

        def keep(df: pd.DataFrame | None) -> None:
            if df is None:
                parts.clear()
            else:
                parts.append(df)

        warnings = self._scan(start, end, columns, keep)
        if parts:
            return pd.concat(parts, ignore_index=True), warnings
        empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
        empty["time"] = pd.to_datetime(pd.Series([], dtype="datetime64[ms, UTC]"))
        return empty, warnings


class _Restart(Exception):
    """Internal: the fast reader met malformed input; read again tolerantly."""


class FilesLogSource(_TableFile):
    """Logs from an NDJSON (or Parquet) file with ECS field names, or a text log file whose
    format is detected (or given as a loghub header format): see `textlogs`."""

    backend = "files"

    def __init__(
        self, path: str | Path, fields: dict[str, str] | None = None, fmt: str | None = None
    ) -> None:
        super().__init__(path, fields or ECS_LOG_FIELDS, "logs")
        if fmt or (self.path.stat().st_size and is_text_log(self.path, self.fields["time"])):
            try:
                self._text = TextLog(self.path, fmt)
            except ValueError as exc:
                raise SourceError(f"sources.logs.format: {exc}") from None

    def read_logs(
        self,
        start: pd.Timestamp,
        end: pd.Timestamp,
        *,
        services: list[str] | None = None,
        limit: int | None = None,
    ) -> QueryResult:
        """Lines in [start, end], optionally for some services, uniformly sampled to limit.

        The file is streamed in batches; with a limit, each line gets a seeded random priority
        and the `limit` lowest are kept (a uniform sample, memory bounded by limit + a batch).
        """
        state: dict[str, Any] = {"kept": None, "matched": 0, "rng": np.random.default_rng(0)}

        def consume(df: pd.DataFrame | None) -> None:
            if df is None:
                state.update(kept=None, matched=0, rng=np.random.default_rng(0))
                return
            if services:
                df = df[df["service"].isin(services)]
            state["matched"] += len(df)
            if limit is not None:
                df = df.assign(_u=state["rng"].random(len(df)))
            kept = df if state["kept"] is None else pd.concat([state["kept"], df],
                                                              ignore_index=True)
            if limit is not None and len(kept) > limit:
                kept = kept.nsmallest(limit, "_u")
            state["kept"] = kept

        warnings = self._scan(start, end, LOG_COLUMNS, consume)
        df = state["kept"]
        if df is None:
            df, _ = self._slice(end + pd.Timedelta("1s"), end, LOG_COLUMNS)
        matched = state["matched"]
        sampling = "all lines"
        if limit is not None and matched > limit:
            sampling = f"uniform random sample (seed 0) of {limit} out of {matched}"
        df = df.drop(columns=["_u"], errors="ignore")
        df = df.sort_values("time", kind="stable").reset_index(drop=True)
        query = (
            f"files:{self.path.name} {self.fields['time']} in [{start.isoformat()}, "
            f"{end.isoformat()}]" + (f" service in {sorted(services)}" if services else "")
        )
        notes = {"matched": matched, "read": len(df), "sampling": sampling}
        if self._text is not None:
            notes["format"] = self._text.describe()
        return QueryResult(df[LOG_COLUMNS], query, self.backend, warnings=warnings, notes=notes)

    def count_over_time(
        self, start: pd.Timestamp, end: pd.Timestamp, interval: str, by: list[str]
    ) -> QueryResult:
        """Line counts per interval bucket and the `by` columns."""
        parts: list[pd.Series] = []

        def consume(df: pd.DataFrame | None) -> None:
            if df is None:
                parts.clear()
                return
            df = df.assign(time=df["time"].dt.floor(interval))
            parts.append(df.groupby(["time", *by], dropna=False).size())

        warnings = self._scan(start, end, ["time", *by], consume)
        if parts:
            total = pd.concat(parts).groupby(level=list(range(len(by) + 1)), dropna=False).sum()
            counts = total.rename("count").reset_index()
        else:
            counts = pd.DataFrame(columns=["time", *by, "count"])
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
