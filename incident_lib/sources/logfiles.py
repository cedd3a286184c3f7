"""Logs from user exports (CSV or NDJSON) through a field mapping, as LOG_COLUMNS.

incident.yaml:

    sources:
      logs:
        kind: files
        format: csv                 # csv | ndjson (without `format`: the ECS NDJSON reader)
        path: log/*_log.csv         # file or glob, relative to incident.yaml
        fields:                     # log field -> CSV column or NDJSON dotted key
          time: Timestamp
          pod: PodName              # or service: ...; service comes from pod via the pod rule
          message: Log
          trace_id: TraceID         # optional: level, host, status, service, pod
        time_unit: null             # s|ms|us|ns for epoch numbers; omit for ISO-8601 text
        message_format: docker_json # plain | docker_json ({"log": "...\\n", ...}) | cri
        level_from_message: true    # default: true when no level field is mapped
        structured: true            # lines that are JSON objects: message/level from keys
        multiline: true             # join stack-trace lines to their event (default true)

Rules (generic, documented so a user can predict them):
- docker_json: the message column holds the container runtime's JSON object; its `log` key
  (or `message_key`) is the line, trailing newline removed. cri: `<time> <stream> <P|F> <line>`;
  the prefix is removed.
- level from the message: the first of the first six whitespace-separated tokens that is a
  level word in upper case (TRACE DEBUG INFO NOTICE WARN WARNING ERROR ERR FATAL SEVERE
  CRITICAL CRIT, optionally in [] or () or followed by : or ,), or a `level=<word>` token in
  any case (logfmt). Normalised to lower case (warning -> warn, err/severe -> error,
  notice -> info, crit -> critical). No match: level is None (not guessed).
- structured lines (default on; `structured: false` turns it off): a line (after the
  runtime's wrapper is removed) that is a JSON object with a message key (`message`, `msg`,
  `@m`, `event`) is read as that message; its level is the first of `level`, `severity`,
  `log.level`, `lvl`, `levelname`, `loglevel`, `@l` (words as above, plus Information /
  Verbose; another word of up to 16 ASCII letters in lower case, such as syslog's emerg;
  numbers as pino/bunyan: 10 trace ... 60 fatal; NaN, other numbers or text: no level),
  else the prefix rule on the message; an error field (`error`, `err`, `exception`,
  `error.message`; an object's `message`) is kept as `<message> (error: <text>)`. Other
  keys (request ids, sessions) are dropped, so they do not split templates. A mapped level
  column wins over the JSON key. Logrus/zap, Python JSON formatters, pino/bunyan and ECS
  write such lines.
- multi-line: per pod (or host), in time order, a line matching one of `continuation`
  (default: whitespace then `at `, `Caused by:`, `Suppressed:`, `... N more`, or a qualified
  Java throwable class name such as `java.lang.IllegalStateException: ...`) is appended to the
  event before it, which keeps its time and level.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import SourceError
from .base import LOG_COLUMNS, QueryResult, uniform_sample
from .podmap import pod_rule
from .tables import (
    dig,
    expand_paths,
    ndjson_records,
    overlapping,
    parse_json,
    parse_times,
    path_patterns,
    read_csv_columns,
)

__all__ = ["TableLogSource", "level_from_message", "join_multiline", "DEFAULT_CONTINUATION"]

_LEVELS = {"TRACE": "trace", "DEBUG": "debug", "INFO": "info", "NOTICE": "info",
           "WARN": "warn", "WARNING": "warn", "ERROR": "error", "ERR": "error",
           "FATAL": "fatal", "SEVERE": "error", "CRITICAL": "critical", "CRIT": "critical"}
_LEVEL_TOKEN = re.compile(r"[\[(]?(" + "|".join(sorted(_LEVELS, key=len, reverse=True))
                          + r")[\])]?[:,]?")
_LOGFMT = re.compile(r"(?i)level=\"?([a-z]+)\"?")
DEFAULT_CONTINUATION = [
    r"\s+at\s", r"\s*Caused by:", r"\s*Suppressed:", r"\s*\.\.\. \d+ (?:more|common frames)",
    r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+(?:Exception|Error|Throwable)(?::|$)",
]
_CRI = re.compile(r"\S+ (?:stdout|stderr) [PF] ?")
_MESSAGE_KEYS = ("message", "msg", "@m", "event")
_LEVEL_KEYS = ("level", "severity", "log.level", "lvl", "levelname", "loglevel", "@l")
_ERROR_KEYS = ("error", "err", "exception", "error.message")
_JSON_LEVELS = {**{k.lower(): v for k, v in _LEVELS.items()}, "information": "info",
                "verbose": "trace"}
_NUMERIC_LEVELS = {10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal"}
_FORMATS = ("plain", "docker_json", "cri")


def level_from_message(messages: pd.Series) -> pd.Series:
    """The level word in each message's prefix (rule in the module docstring), else None."""

    def one(msg: Any) -> str | None:
        if not isinstance(msg, str):
            return None
        for tok in msg[:300].split(None, 6)[:6]:
            m = _LEVEL_TOKEN.fullmatch(tok)
            if m:
                return _LEVELS[m.group(1)]
            m = _LOGFMT.fullmatch(tok)
            if m:
                word = m.group(1).upper()
                return _LEVELS.get(word, word.lower())
        return None

    return messages.map(one).astype(object)


def _json_level(value: Any) -> str | None:
    """A level from a JSON value: a level word (another short word kept in lower case, so
    syslog's `emerg` or `alert` still count), a pino/bunyan number; anything else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _NUMERIC_LEVELS.get(int(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _JSON_LEVELS:
            return _JSON_LEVELS[word]
        return word if word.isalpha() and word.isascii() and len(word) <= 16 else None
    return None


def structured_line(line: Any) -> tuple[str, str | None] | None:
    """(message, level or None) of a line that is a JSON object with a message key, else None
    (rule in the module docstring). The values are only read as text, never interpreted."""
    if not isinstance(line, str) or not line.lstrip().startswith("{"):
        return None
    try:
        obj = parse_json(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    text = next((v for k in _MESSAGE_KEYS if isinstance(v := dig(obj, k), str)), None)
    if text is None:
        return None
    for key in _ERROR_KEYS:
        err = dig(obj, key)
        if isinstance(err, dict):
            err = err.get("message", err.get("msg"))
        if isinstance(err, str) and err.strip():
            text = f"{text} (error: {err.strip()})"
            break
    level = next((lv for k in _LEVEL_KEYS if (lv := _json_level(dig(obj, k))) is not None), None)
    return text, level


def join_multiline(df: pd.DataFrame, continuation: list[str] | None = None) -> pd.DataFrame:
    """Rows whose message continues the previous event (same host) folded into that event.

    df has LOG_COLUMNS and is in time order per host; the result keeps the event's fields.
    """
    if df.empty:
        return df
    rx = re.compile("(?:" + "|".join(continuation or DEFAULT_CONTINUATION) + ")")
    msg = df["message"].astype(str)
    cont = msg.map(lambda m: rx.match(m[:400]) is not None).to_numpy()
    if not cont.any():
        return df
    host = df["host"].astype(str).to_numpy()
    same = np.r_[False, host[1:] == host[:-1]]
    cont = cont & same
    event = np.cumsum(~cont)
    agg = {c: "first" for c in df.columns if c != "message"}
    out = df.assign(_e=event).groupby("_e", sort=False).agg(
        {**agg, "message": lambda s: "\n".join(s.astype(str))})
    return out.reset_index(drop=True)[df.columns]


class TableLogSource:
    """LogSource over CSV / NDJSON exports with a field mapping (see the module docstring)."""

    backend = "files"

    def __init__(self, spec: dict[str, Any]) -> None:
        self.format = str(spec.get("format"))
        if self.format not in ("csv", "ndjson"):
            raise SourceError(f"logs: format {self.format[:20]!r} is unknown: use csv or ndjson")
        self.pattern: str | list[str] = spec["path"]
        self.label = ", ".join(p.rsplit("/", 1)[-1] for p in path_patterns(spec["path"]))
        self.fields: dict[str, str] = dict(spec.get("fields") or {})
        for need in ("time", "message"):
            if need not in self.fields:
                raise SourceError(f"logs: fields.{need} is missing: map it to the column that "
                                  "holds it")
        unknown = set(self.fields) - {*LOG_COLUMNS, "pod"}
        if unknown:
            raise SourceError(f"logs: fields.{sorted(unknown)[0]} is not a log field: use "
                              f"{', '.join([*LOG_COLUMNS, 'pod'])}")
        self.time_unit = spec.get("time_unit")
        self.message_format = str(spec.get("message_format") or "plain")
        if self.message_format not in _FORMATS:
            raise SourceError(f"logs: message_format {self.message_format[:20]!r} is unknown: "
                              f"use {', '.join(_FORMATS)}")
        self.message_key = str(spec.get("message_key") or "log")
        self.level_rule = bool(spec.get("level_from_message", "level" not in self.fields))
        self.multiline = bool(spec.get("multiline", True))
        self.structured = bool(spec.get("structured", True))
        self.continuation = spec.get("continuation") or None
        self.slack = pd.Timedelta(spec.get("file_slack") or "5min")
        self.rule = pod_rule(spec)

    def _read(self, path: Path, warnings: list[str]) -> pd.DataFrame:
        if self.format == "csv":
            raw = read_csv_columns(path, self.fields, "logs", warnings=warnings)
            raw["_line"] = np.arange(len(raw)) + 2
        else:
            rows = [{"_line": n, **{f: dig(o, c) for f, c in self.fields.items()}}
                    for n, o in ndjson_records(path, warnings)]
            raw = pd.DataFrame(rows, columns=["_line", *self.fields])
        if raw.empty:
            return pd.DataFrame(columns=LOG_COLUMNS)
        times, w = parse_times(raw["time"], self.time_unit, path, "time", self.fields["time"])
        warnings += w
        msg = raw["message"].map(self._unwrap)
        parsed = msg.map(structured_line) if self.structured else None
        has = parsed.notna().to_numpy() if parsed is not None else np.zeros(len(msg), bool)
        if has.any():
            msg = msg.where(~has, parsed.map(lambda p: p[0] if p else None))
        pod = raw["pod"] if "pod" in raw.columns else None
        if "service" in raw.columns:
            service = raw["service"].astype(object)
            if pod is not None:
                service = service.where(service.notna(), self.rule.map(pod))
        elif pod is not None:
            service = self.rule.map(pod)
        else:
            raise SourceError(f"{path.name}:1: field 'service' is not mapped: map fields.service "
                              "or fields.pod")
        host = pod if pod is not None else raw.get("host")
        if "level" in raw.columns:
            level = raw["level"].map(lambda v: v.strip().lower() if isinstance(v, str) and
                                     v.strip() else None)
        elif self.level_rule:
            level = level_from_message(msg)
            if has.any():
                own = parsed.map(lambda p: p[1] if p else None)
                level = own.where(own.notna(), level)
        else:
            level = pd.Series([None] * len(raw), dtype=object)
        df = pd.DataFrame({
            "time": times, "service": service.astype(object), "level": level.astype(object),
            "message": msg, "host": (host if host is not None else pd.Series(
                [None] * len(raw))).astype(object),
            "trace_id": raw["trace_id"].astype(object) if "trace_id" in raw else None,
            "status": raw["status"].astype(object) if "status" in raw else None})
        return df[df["time"].notna()]

    def _unwrap(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if self.message_format == "docker_json":
            try:
                obj = parse_json(value)
            except ValueError:
                return value  # not wrapped after all: keep the text as it is
            inner = dig(obj, self.message_key) if isinstance(obj, dict) else None
            value = inner if isinstance(inner, str) else value
        elif self.message_format == "cri":
            m = _CRI.match(value)
            value = value[m.end():] if m else value
        return value.rstrip("\r\n")

    def _window(self, start: pd.Timestamp, end: pd.Timestamp,
                services: list[str] | None) -> tuple[pd.DataFrame, list[str], list[Path]]:
        paths = overlapping(expand_paths(self.pattern, "logs"), start, end, self.format,
                            self.fields["time"], self.time_unit, self.slack)
        warnings: list[str] = []
        parts = [self._read(p, warnings) for p in paths]
        parts = [p for p in parts if len(p)]
        if not parts:
            empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in LOG_COLUMNS})
            empty["time"] = pd.to_datetime(pd.Series([], dtype="datetime64[ns, UTC]"))
            return empty, warnings, paths
        df = pd.concat(parts, ignore_index=True)
        df = df[(df["time"] >= start) & (df["time"] <= end)]
        df = df.sort_values(["host", "time"], kind="stable", na_position="first")
        if self.multiline:
            df = join_multiline(df.reset_index(drop=True), self.continuation)
        if services:
            df = df[df["service"].isin(services)]
        for col in ("service", "level", "host", "trace_id", "status"):
            df[col] = df[col].astype(object).where(df[col].notna(), None)
        return df.reset_index(drop=True), warnings, paths

    def read_logs(self, start: pd.Timestamp, end: pd.Timestamp, *,
                  services: list[str] | None = None, limit: int | None = None) -> QueryResult:
        """Events in [start, end] (stack traces joined), uniformly sampled (seed 0) to limit."""
        df, warnings, paths = self._window(start, end, services)
        matched = len(df)
        df, sampled = uniform_sample(df, limit)
        sampling = (f"uniform random sample (seed 0) of {limit} out of {matched}" if sampled
                    else "all lines")
        df = df.sort_values("time", kind="stable").reset_index(drop=True)
        query = (f"files:{self.label} {self.fields['time']} in "
                 f"[{start.isoformat()}, {end.isoformat()}]"
                 + (f" service in {sorted(services)}" if services else ""))
        notes = {"matched": matched, "read": len(df), "sampling": sampling,
                 "files": [p.name for p in paths][:50], "files_read": len(paths),
                 "level": "mapped" if "level" in self.fields else (
                     ("from the line's JSON level key, else the message prefix"
                      if self.structured else "from message prefix")
                     if self.level_rule else "none")}
        return QueryResult(df[LOG_COLUMNS], query, self.backend, warnings=warnings, notes=notes)

    def count_over_time(self, start: pd.Timestamp, end: pd.Timestamp, interval: str,
                        by: list[str]) -> QueryResult:
        """Event counts per interval bucket and the `by` columns (a missing level is None)."""
        df, warnings, _ = self._window(start, end, None)
        df = df.assign(time=df["time"].dt.floor(interval))
        counts = df.groupby(["time", *by], dropna=False).size().rename("count").reset_index()
        query = (f"files:{self.label} count per {interval} by {by} in "
                 f"[{start}, {end}]")
        return QueryResult(counts, query, self.backend, warnings=warnings)
