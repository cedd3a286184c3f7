"""Plain-text log files for the files backend: detect (or take) the format, parse, batch.

A logs file that is not Parquet and whose first line is not an NDJSON object with the
configured time field (a `.log` file, a docker json-file log, a CRI log, syslog, ...) is read
line by line: the format is detected from its first lines (``logformats.detect_format``) or
given as a loghub header format (``sources.logs.format`` in the config), multi-line events
are joined, and the events become rows with the configured (ECS) field names. Times without a
year (RFC 3164 syslog, klog, logcat) take the year of the file's modification time; times
without a zone are UTC. Events whose time cannot be parsed are counted and skipped.
"""

from __future__ import annotations

import re
import warnings as _warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from .logformats import Detected, HeaderFormat, Record, compile_header_format, detect_format
from .logformats import iter_records as _iter_records
from .tables import parse_json

__all__ = ["is_text_log", "TextLog"]

_BATCH = 100_000
_YEAR = re.compile(r"\d{4}")
_ACCESS_TIME = re.compile(r"^(\d{1,2}/\w{3}/\d{4}):")
_KLOG_TIME = re.compile(r"^(\d\d)(\d\d) ")


def is_text_log(path: Path, time_field: str) -> bool:
    """True if the file is read as a text log rather than NDJSON/Parquet (see module doc)."""
    if path.suffix == ".parquet":
        return False
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            s = line.strip()
            if not s:
                continue
            if not s.startswith("{"):
                return True
            try:
                obj = parse_json(s)
            except ValueError:
                return False  # malformed NDJSON: the tolerant NDJSON reader reports it
            return isinstance(obj, dict) and time_field not in obj
    return False


def parse_times(values: list[str | None], year: int) -> pd.Series:
    """UTC timestamps of header time strings (NaT where unparseable)."""
    fixed = []
    for v in values:
        if v is None:
            fixed.append(None)
            continue
        v = _ACCESS_TIME.sub(r"\1 ", v)
        if not _YEAR.search(v):
            v = str(year) + " " + _KLOG_TIME.sub(r"\1-\2 ", v)
        fixed.append(v)
    s = pd.Series(fixed, dtype=object)
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        t = pd.to_datetime(s, utc=True, errors="coerce")  # one format inferred: fast
        rest = t.isna() & s.notna()
        if rest.any():
            t[rest] = pd.to_datetime(s[rest], utc=True, errors="coerce", format="mixed")
    return t


class TextLog:
    """One text log file: its format (detected or given) and its events as Arrow batches."""

    def __init__(self, path: Path, fmt: str | None = None) -> None:
        self.path = path
        self.format: Detected | HeaderFormat
        if fmt:
            self.format = compile_header_format(fmt)
        else:
            with open(path, encoding="utf-8", errors="replace", newline="\n") as fh:
                self.format = detect_format(fh)
        self.year = datetime.fromtimestamp(path.stat().st_mtime, UTC).year
        self.lines = self.matched = self.events = self.no_time = 0

    def describe(self) -> str:
        """'format: detected rfc3164 (200 of 200 sample lines); 1998 of 2000 lines matched'."""
        name = (f"loghub header {self.format.fmt!r}" if isinstance(self.format, HeaderFormat)
                else f"detected {self.format.describe()}")
        return f"{name}; {self.matched} of {self.lines} lines matched, {self.events} events"

    def records(self) -> Iterator[Record]:
        """Every event of the file, streaming (multi-line events joined)."""
        self.lines = self.matched = self.events = 0
        with open(self.path, encoding="utf-8", errors="replace", newline="\n") as fh:
            for rec in _iter_records(fh, self.format):
                self.lines += rec.lines
                self.matched += rec.lines if rec.matched else 0
                self.events += 1
                yield rec

    def batches(self, fields: dict[str, str], warnings: list[str]) -> Iterator[pa.Table]:
        """Events as tables with the configured field names; events without a time skipped."""
        self.no_time = 0
        cols = ("time", "service", "level", "message", "host", "status")
        buf: dict[str, list[str | None]] = {c: [] for c in cols}
        for rec in self.records():
            for c in cols:
                buf[c].append(getattr(rec, c))
            if len(buf["time"]) >= _BATCH:
                yield self._table(buf, fields)
                buf = {c: [] for c in cols}
        if buf["time"]:
            yield self._table(buf, fields)
        if self.no_time:
            warnings.append(f"{self.path.name}: {self.no_time} of {self.events} events have no "
                            "parseable time and were skipped")

    def _table(self, buf: dict[str, list[str | None]], fields: dict[str, str]) -> pa.Table:
        times = parse_times(buf["time"], self.year).astype("datetime64[ms, UTC]")
        ok = times.notna().to_numpy()
        self.no_time += int((~ok).sum())
        data: dict[str, object] = {fields.get("time", "time"): times[ok].reset_index(drop=True)}
        for c, vals in buf.items():
            if c != "time" and c in fields:
                data[fields[c]] = pd.Series(vals, dtype=object)[ok].reset_index(drop=True)
        return pa.Table.from_pandas(pd.DataFrame(data), preserve_index=False)
