"""Spans from files: CSV, NDJSON or OTLP JSON, read through a field mapping.

incident.yaml:

    sources:
      spans:
        kind: files
        format: csv                 # csv | ndjson | otlp
        path: trace/*_trace.csv     # file or glob, relative to incident.yaml
        fields:                     # span field -> column (csv) or dotted key (ndjson)
          trace_id: TraceID
          span_id: SpanID
          parent_id: ParentID
          pod: PodName              # or service: ...; service comes from pod via the pod rule
          operation: OperationName
          start: StartTimeUnixNano
          end: EndTimeUnixNano      # or duration: Duration (with duration_unit)
        time_unit: ns               # start/end as epoch numbers (s|ms|us|ns); omit for ISO text
        duration_unit: us           # when only a duration is mapped (s|ms|us|ns)
        root_parent: [root, ""]     # parent values that mean "no parent" (also empty/null)

OTLP JSON (the collector's file exporter: one ExportTraceServiceRequest per file or per line)
needs no field mapping: service.name and k8s.pod.name come from the resource attributes, the
status from status.code (2 = error, anything else = ok).

Checks: a span whose parent is not in the data read is kept and counted (notes["orphans"]);
spans in a parent cycle are dropped and named (file:line), and the result is marked partial.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import SourceError
from ..core.model import span_key
from .base import SPAN_COLUMNS, QueryResult
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

__all__ = ["FilesSpanSource", "NoSpanSource", "find_cycles"]

_UNIT_MS = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "ns": 1e-6}
_STATUS = {"error": "error", "err": "error", "2": "error", "status_code_error": "error",
           "true": "error", "ok": "ok", "1": "ok", "0": "ok", "unset": "ok",
           "status_code_ok": "ok", "status_code_unset": "ok", "false": "ok"}


def _empty() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series([], dtype=object) for c in SPAN_COLUMNS})
    df["start"] = pd.to_datetime(pd.Series([], dtype="datetime64[ns, UTC]"))
    df["duration_ms"] = pd.Series([], dtype=float)
    return df


class NoSpanSource:
    """Stands in when no spans are configured: an empty frame and a warning, never fake data."""

    backend = "none"

    def spans(self, start: pd.Timestamp, end: pd.Timestamp, *,
              services: list[str] | None = None, limit: int | None = None) -> QueryResult:
        """An empty span frame saying that no spans are configured."""
        return QueryResult(_empty(), "spans: none configured", self.backend,
                           warnings=["no spans configured"], notes={"missing": ["spans"]})


class FilesSpanSource:
    """Spans from CSV / NDJSON / OTLP JSON files (see the module docstring for the mapping)."""

    backend = "files"

    def __init__(self, spec: dict[str, Any]) -> None:
        self.format = str(spec.get("format") or "csv")
        if self.format not in ("csv", "ndjson", "otlp"):
            raise SourceError(f"spans: format {self.format[:20]!r} is unknown: use csv, ndjson "
                              "or otlp")
        self.pattern: str | list[str] = spec["path"]
        self.label = ", ".join(p.rsplit("/", 1)[-1] for p in path_patterns(spec["path"]))
        self.fields: dict[str, str] = dict(spec.get("fields") or {})
        if self.format != "otlp":
            for need in ("trace_id", "span_id", "start"):
                if need not in self.fields:
                    raise SourceError(f"spans: fields.{need} is missing: map it to the column "
                                      "that holds it")
            if "service" not in self.fields and "pod" not in self.fields:
                raise SourceError("spans: fields.service or fields.pod is missing: map one")
            if "end" not in self.fields and "duration" not in self.fields:
                raise SourceError("spans: fields.end or fields.duration is missing: map one")
        self.time_unit = spec.get("time_unit")
        self.duration_unit = str(spec.get("duration_unit") or "ms")
        if self.duration_unit not in _UNIT_MS:
            raise SourceError(f"spans: duration_unit {self.duration_unit[:10]!r} is invalid: "
                              "use s, ms, us or ns")
        self.roots = {str(v) for v in (spec.get("root_parent") or ["root"])} | {""}
        self.slack = pd.Timedelta(spec.get("file_slack") or "5min")
        self.rule = pod_rule(spec)

    def spans(self, start: pd.Timestamp, end: pd.Timestamp, *,
              services: list[str] | None = None, limit: int | None = None) -> QueryResult:
        """Spans starting in [start, end] (columns SPAN_COLUMNS), oldest first."""
        paths = expand_paths(self.pattern, "spans")
        warnings: list[str] = []
        if self.format != "otlp":
            paths = overlapping(paths, start, end, self.format, self.fields["start"],
                                self.time_unit, self.slack)
        parts = [self._read(p, warnings) for p in paths]
        df = pd.concat(parts, ignore_index=True) if parts else _empty()
        df = df[(df["start"] >= start) & (df["start"] <= end)]
        partial = False
        cyc = find_cycles(df)
        if cyc.any():
            first = df.loc[cyc, "_where"].iloc[0]
            warnings.append(f"{first}: span {df.loc[cyc, 'span_id'].iloc[0]!r} is in a parent "
                            f"cycle; {int(cyc.sum())} span(s) in cycles dropped")
            df = df[~cyc]
            partial = True
        known = set(span_key(df["trace_id"], df["span_id"]))
        up = span_key(df["trace_id"], df["parent_id"])
        orphan = up.notna() & ~up.isin(known)
        if orphan.any():
            warnings.append(f"{int(orphan.sum())} span(s) name a parent that is not in the "
                            f"data read (truncated traces or the window edge), e.g. "
                            f"{df.loc[orphan, '_where'].iloc[0]}")
        if services:
            df = df[df["service"].isin(services)]
        matched = len(df)
        df = df.sort_values("start", kind="stable")
        if limit is not None and len(df) > limit:
            df = df.head(limit)
            warnings.append(f"spans capped at {limit} of {matched}")
            partial = True
        notes = {"files": [p.name for p in paths][:50], "files_read": len(paths),
                 "matched": matched, "read": len(df),
                 "orphans": int(orphan.sum()), "cycles": int(cyc.sum())}
        query = (f"files:{self.label} spans start in [{start.isoformat()}, "
                 f"{end.isoformat()}]" + (f" service in {sorted(services)}" if services else ""))
        out = df[SPAN_COLUMNS].reset_index(drop=True)
        return QueryResult(out, query, self.backend, warnings=warnings, partial=partial,
                           notes=notes)

    def services(self) -> list[str]:
        """Services that own a span in the files (a CSV is read for its service or pod column
        only), mapped by the pod rule as the spans are."""
        names: set[str] = set()
        for p in expand_paths(self.pattern, "spans"):
            if self.format == "csv":
                cols = {f: self.fields[f] for f in ("service", "pod") if f in self.fields}
                raw = read_csv_columns(p, cols, "spans", optional={"pod"} if "service" in cols
                                       else set(), warnings=[])
                svc = self._pod_service(raw)[1]
            else:
                svc = self._read(p, [])["service"]
            names.update(str(v) for v in svc.dropna().unique() if str(v))
        return sorted(names)

    def _pod_service(self, raw: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        """Pod and service of each row: the mapped service, else the pod by the pod rule."""
        pod = raw["pod"].astype(object) if "pod" in raw.columns else pd.Series(
            [None] * len(raw), dtype=object)
        if "service" in raw.columns:
            service = raw["service"].astype(object)
            if pod.notna().any():
                service = service.where(service.notna(), self.rule.map(pod))
        else:
            service = self.rule.map(pod)
        return pod, service

    def _read(self, path: Path, warnings: list[str]) -> pd.DataFrame:
        if self.format == "otlp":
            return self._finish(_otlp_frame(path, warnings), path, warnings, unit="ns",
                                first_line=1)
        if self.format == "csv":
            raw = read_csv_columns(path, self.fields, "spans",
                                   optional={"parent_id", "status", "operation"},
                                   warnings=warnings)
            raw["_line"] = np.arange(len(raw)) + 2
        else:
            rows = [{"_line": n, **{f: dig(o, c) for f, c in self.fields.items()}}
                    for n, o in ndjson_records(path, warnings)]
            raw = pd.DataFrame(rows, columns=["_line", *self.fields])
        return self._finish(raw, path, warnings, unit=self.time_unit, first_line=2)

    def _finish(self, raw: pd.DataFrame, path: Path, warnings: list[str], unit: str | None,
                first_line: int) -> pd.DataFrame:
        if raw.empty:
            return _empty().assign(_where=pd.Series([], dtype=object))
        col = self.fields.get("start", "startTimeUnixNano")
        start, w = parse_times(raw["start"], unit, path, "start", col, first_line)
        warnings += w
        if "end" in raw.columns:
            end, w = parse_times(raw["end"], unit, path, "end", self.fields.get("end", "end"),
                                 first_line)
            warnings += w
            dur = (end - start).dt.total_seconds() * 1000.0
        else:
            dur = pd.to_numeric(raw["duration"], errors="coerce") * _UNIT_MS[self.duration_unit]
        pod, service = self._pod_service(raw)
        parent = raw["parent_id"].astype(object) if "parent_id" in raw.columns else None
        if parent is None:
            parent = pd.Series([None] * len(raw), dtype=object)
        parent = parent.where(parent.notna() & ~parent.astype(str).isin(self.roots), None)
        status = raw["status"] if "status" in raw.columns else pd.Series([None] * len(raw))
        status = status.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
                            else _STATUS.get(str(v).strip().lower(), "error"
                                             if str(v).strip()[:1] == "5" else "ok"))
        op = raw["operation"] if "operation" in raw.columns else pd.Series([None] * len(raw))
        lines = raw["_line"] if "_line" in raw.columns else pd.Series(range(len(raw)))
        df = pd.DataFrame({
            "trace_id": raw["trace_id"].astype(object), "span_id": raw["span_id"].astype(object),
            "parent_id": parent, "service": service, "pod": pod, "operation": op.astype(object),
            "start": start, "duration_ms": dur.astype(float), "status": status.astype(object),
            "_where": [f"{path.name}:{n}" for n in lines]})
        return df[df["start"].notna()]


def find_cycles(df: pd.DataFrame) -> pd.Series:
    """Boolean mask of spans whose parent chain loops back (self-parent included); span ids
    are read within their trace (core.model.span_key)."""
    own = span_key(df["trace_id"], df["span_id"])
    parent = dict(zip(own, span_key(df["trace_id"], df["parent_id"]), strict=False))
    state: dict[Any, int] = {}  # 1 = on the current path, 2 = done (no cycle), 3 = in a cycle
    for sid in parent:
        path = []
        cur = sid
        while cur is not None and cur in parent and state.get(cur) is None:
            state[cur] = 1
            path.append(cur)
            cur = parent[cur]
        looped = cur is not None and state.get(cur) == 1
        verdict_cycle = looped or (cur is not None and state.get(cur) == 3)
        for s in path:
            state[s] = 3 if verdict_cycle else 2
    return own.map(lambda s: state.get(s) == 3).astype(bool)


def _attr_value(v: dict[str, Any]) -> Any:
    for k in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if k in v:
            return v[k]
    return None


def _otlp_docs(path: Path, warnings: list[str]) -> list[tuple[int, dict[str, Any]]]:
    text = path.read_text("utf-8", errors="replace")
    try:
        doc = parse_json(text)
        return [(1, doc)] if isinstance(doc, dict) else []
    except ValueError:
        return list(ndjson_records(path, warnings))


def _otlp_frame(path: Path, warnings: list[str]) -> pd.DataFrame:
    rows = []
    for lineno, doc in _otlp_docs(path, warnings):
        if "resourceSpans" not in doc:
            raise SourceError(f"{path.name}:{lineno}: field 'resourceSpans' is missing: not "
                              "OTLP JSON (use format: ndjson or csv with a field mapping)")
        for rs in doc.get("resourceSpans") or []:
            attrs = {a.get("key"): _attr_value(a.get("value") or {})
                     for a in (rs.get("resource") or {}).get("attributes") or []}
            for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
                for sp in ss.get("spans") or []:
                    code = (sp.get("status") or {}).get("code")
                    rows.append({
                        "_line": lineno, "trace_id": sp.get("traceId"),
                        "span_id": sp.get("spanId"), "parent_id": sp.get("parentSpanId") or None,
                        "service": attrs.get("service.name"), "pod": attrs.get("k8s.pod.name"),
                        "operation": sp.get("name"), "start": sp.get("startTimeUnixNano"),
                        "end": sp.get("endTimeUnixNano"),
                        # OTLP always has a status: absent/UNSET/OK are not errors
                        "status": "error" if str(code) in ("2", "STATUS_CODE_ERROR")
                        else "ok"})
    return pd.DataFrame(rows, columns=["_line", "trace_id", "span_id", "parent_id", "service",
                                       "pod", "operation", "start", "end", "status"])
