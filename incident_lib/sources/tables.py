"""Reading user exports (CSV / NDJSON) through a column mapping: files, times, errors.

Shared by the table readers for logs, metrics and spans. Every error names the file, the line
(header = line 1; CSV rows are counted as one line each) and the mapped field, and says how
to fix it. Files are chosen by a glob; only files whose time range overlaps the asked window
are parsed: the range of a file is probed from its first and last 16 KiB (exports are written
in time order, give or take the `file_slack`, default 5 minutes), so a day of data is not
parsed for a 20-minute window.
"""

from __future__ import annotations

import csv
import glob
import io
import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ..core.errors import SourceError

__all__ = ["expand_paths", "parse_times", "read_csv_columns", "csv_header", "ndjson_records",
           "overlapping", "dig", "TIME_UNITS"]

TIME_UNITS = ("s", "ms", "us", "ns")
_PROBE = 1 << 14


def path_patterns(path: str | list[str]) -> list[str]:
    """`sources.<kind>.path` as a list: one file or glob, or a list of them (e.g. the export
    of the incident and a fault-free export in another folder)."""
    return [str(x) for x in path] if isinstance(path, list | tuple) else [str(path)]


def expand_paths(pattern: str | list[str], what: str) -> list[Path]:
    """The files a path or glob (or a list of them) names, sorted and unique; SourceError when
    none exist."""
    pats = path_patterns(pattern)
    paths = sorted({Path(p) for pat in pats for p in glob.glob(pat, recursive=True)
                    if Path(p).is_file()})
    if not paths:
        raise SourceError(f"{what}: no file matches {', '.join(pats)}: fix sources.{what}.path "
                          "(a file or a glob such as log/*.csv, or a list of them)")
    return paths


def parse_times(values: pd.Series, unit: str | None, path: Path, field: str, column: str,
                first_line: int = 2) -> tuple[pd.Series, list[str]]:
    """Values -> tz-aware UTC times; rows that do not parse become NaT, named in warnings.

    unit s|ms|us|ns reads numbers as epoch times; otherwise ISO-8601 text (naive = UTC).
    All rows unparseable: SourceError naming file, line, field and the fix.
    """
    if unit is not None and unit not in TIME_UNITS:
        raise SourceError(f"{path.name}: time_unit {unit!r} for field {field!r} is invalid: use "
                          f"{', '.join(TIME_UNITS)} or leave it out for ISO-8601 text")
    if unit:
        num = pd.to_numeric(values, errors="coerce")
        out = pd.to_datetime(num, unit=unit, utc=True, errors="coerce")
    else:
        out = pd.to_datetime(values.astype("string"), utc=True, format="ISO8601",
                             errors="coerce")
    bad = out.isna() & values.notna()
    if values.isna().any():
        bad |= values.isna()
    warnings: list[str] = []
    if bad.any():
        pos = int(bad.to_numpy().nonzero()[0][0])
        shown = str(values.iloc[pos])[:40]
        how = f"epoch {unit}" if unit else "ISO-8601 (or set time_unit: s|ms|us|ns)"
        msg = (f"{path.name}:{first_line + pos}: field {field!r} (column {column!r}) value "
               f"{shown!r} is not a time: expected {how}")
        if bad.all():
            raise SourceError(msg)
        warnings.append(f"{msg}; {int(bad.sum())} row(s) without a time skipped")
    return out, warnings


def csv_header(path: Path) -> list[str]:
    """The CSV header's column names."""
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        return next(csv.reader(fh), [])


def read_csv_columns(path: Path, columns: dict[str, str], what: str,
                     optional: set[str] | None = None,
                     warnings: list[str] | None = None) -> pd.DataFrame:
    """The mapped columns of one CSV as strings, renamed to field names.

    `columns` maps field -> CSV column. A required column the file lacks raises SourceError
    naming the file, line 1 and the field; optional fields come back as all-None. A row with
    a different number of values than the header is skipped and named in `warnings`.
    """
    header = csv_header(path)
    optional = optional or set()
    for fld, col in columns.items():
        if col not in header and fld not in optional:
            raise SourceError(f"{path.name}:1: column {col!r} for field {fld!r} is missing "
                              f"(columns: {', '.join(header[:12])}): fix sources.{what}."
                              f"fields.{fld}")
    present = sorted({c for c in columns.values() if c in header})
    if not present:
        return pd.DataFrame({f: pd.Series([], dtype=object) for f in columns})
    bad: list[Any] = []

    def skip(row: Any) -> str:
        bad.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            path, read_options=pacsv.ReadOptions(block_size=1 << 22),
            convert_options=pacsv.ConvertOptions(
                include_columns=present,
                column_types={c: pa.string() for c in present},
                strings_can_be_null=True),
            parse_options=pacsv.ParseOptions(newlines_in_values=True,
                                             invalid_row_handler=skip))
    except pa.ArrowInvalid as exc:
        raise SourceError(f"{path.name}: not a readable CSV ({str(exc)[:160]}): fix the file "
                          f"or sources.{what}.format") from None
    if bad and warnings is not None:
        first = bad[0]
        line = f":{first.number}" if getattr(first, "number", None) else ""
        warnings.append(f"{path.name}{line}: row has {first.actual_columns} values, the header "
                        f"{first.expected_columns}: {len(bad)} such row(s) skipped")
    df = table.to_pandas()
    return pd.DataFrame({f: (df[c] if c in df.columns else pd.Series([None] * len(df),
                                                                       dtype=object))
                         for f, c in columns.items()})


def parse_json(text: str | bytes) -> Any:
    """json.loads for untrusted text: nesting too deep for the parser (a hostile line of
    thousands of `{`) is a ValueError like any other malformed JSON, not a RecursionError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def dig(obj: Any, path: str) -> Any:
    """obj[a][b] for a dotted path `a.b` (a literal key containing dots wins)."""
    if not isinstance(obj, dict):
        return None
    if path in obj:
        return obj[path]
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def ndjson_records(path: Path, warnings: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per NDJSON line; malformed lines are skipped and named."""
    bad = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = parse_json(line)
            except ValueError as exc:
                obj, why = None, str(exc)[:60]
            else:
                why = "not a JSON object"
            if not isinstance(obj, dict):
                bad += 1
                if bad <= 5:
                    warnings.append(f"{path.name}:{lineno}: skipped line ({why})")
                continue
            yield lineno, obj
    if bad > 5:
        warnings.append(f"{path.name}: {bad} malformed lines skipped in all")


def _probe_lines(path: Path) -> tuple[list[str], list[str]]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(_PROBE).decode("utf-8", "replace").splitlines()
        if size > 2 * _PROBE:
            fh.seek(size - _PROBE)
            tail = fh.read().decode("utf-8", "replace").splitlines()[1:]
        else:
            tail = []
    if size > _PROBE:
        head = head[:-1]  # the last line may be cut
    return head, tail


@lru_cache(maxsize=4096)
def _probe(path: str, mtime: float, size: int, fmt: str, column: str,
           unit: str | None) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    head, tail = _probe_lines(Path(path))
    values: list[Any] = []
    if fmt == "csv":
        if not head:
            return None
        rows = list(csv.reader(io.StringIO("\n".join(head[:1] + head[1:] + tail))))
        if not rows or column not in rows[0]:
            return None
        i = rows[0].index(column)
        values = [r[i] for r in rows[1:] if len(r) > i]
    else:
        for line in head + tail:
            try:
                obj = parse_json(line)
            except ValueError:
                continue
            values.append(dig(obj, column))
    ser = pd.Series(values, dtype=object).dropna()
    if ser.empty:
        return None
    try:
        times, _ = parse_times(ser, unit, Path(path), "time", column)
    except SourceError:
        return None
    times = times.dropna()
    return (times.min(), times.max()) if len(times) else None


def overlapping(paths: list[Path], start: pd.Timestamp, end: pd.Timestamp, fmt: str,
                column: str, unit: str | None, slack: pd.Timedelta) -> list[Path]:
    """The files whose probed time range (widened by slack) overlaps [start, end].

    A file whose range cannot be probed is kept (read in full): never silently skipped.
    """
    out = []
    for p in paths:
        st = p.stat()
        rng = _probe(str(p), st.st_mtime, st.st_size, fmt, column, unit)
        if rng is None or (rng[0] - slack <= end and rng[1] + slack >= start):
            out.append(p)
    return out
