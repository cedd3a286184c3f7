"""Metrics from CSV exports (wide: a column a metric; long: timestamp, entity, metric, value).

incident.yaml:

    signals: {cpu: {column: CpuUsage(m), ...}}   # declared (docs/bring-your-own-data.md)
    sources:
      metrics:
        kind: files
        format: csv
        layout: wide                # wide | long
        path: metric/*_metric.csv   # file or glob; every file is one or more entities
        fields: {time: TimeStamp, pod: PodName}      # wide (or service: instead of pod)
        # long: {time: timestamp, pod: entity, metric: metric, value: value}
        time_unit: s                # s|ms|us|ns for epoch numbers; omit for ISO-8601 text
        lookback: 5min              # a sample stands for the grid points up to this long after

Each declared signal names its source in the file: `column:` (wide) or `metric:` (long), with
`kind` gauge (value as is) or counter (per-second rate between consecutive samples of a pod,
a drop counted as a reset, so 60-s sampled counters work), `scale` (multiplier, e.g. 0.001 for
millicores -> cores) and `agg` across a service's pods (sum | mean | max; default sum for
counters, mean for gauges). A signal whose column/metric is in no file is MISSING: an empty
frame, a warning and notes["missing"], never zeros. A column present in some files only gives
a partial result naming the files without it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import InputError, SourceError
from ..core.signals import Signal, signal_set
from .base import QueryResult, time_grid
from .podmap import pod_rule
from .tables import csv_header, expand_paths, parse_times, path_patterns, read_csv_columns

__all__ = ["TableMetricSource"]

_AGG = ("sum", "mean", "max")


@lru_cache(maxsize=256)
def _load(path: str, mtime: float, size: int, fields: tuple[tuple[str, str], ...],
          unit: str | None) -> tuple[pd.DataFrame, tuple[str, ...]]:
    cols = dict(fields)
    ragged: list[str] = []
    df = read_csv_columns(Path(path), cols, "metrics",
                          optional={f for f in cols if f not in ("time", "entity")},
                          warnings=ragged)
    times, warnings = parse_times(df["time"], unit, Path(path), "time", cols["time"])
    warnings = ragged + warnings
    df["time"] = times
    return df[df["time"].notna()].reset_index(drop=True), tuple(warnings)


class TableMetricSource:
    """MetricSource over CSV exports, evaluating the deployment's declared signals."""

    backend = "files"

    def __init__(self, spec: dict[str, Any]) -> None:
        self.pattern: str | list[str] = spec["path"]
        self.label = ", ".join(p.rsplit("/", 1)[-1] for p in path_patterns(spec["path"]))
        self.layout = str(spec.get("layout") or "wide")
        if self.layout not in ("wide", "long"):
            raise SourceError(f"metrics: layout {self.layout[:20]!r} is unknown: use wide or "
                              "long")
        self.fields: dict[str, str] = dict(spec.get("fields") or {})
        needed = ["time"] + (["metric", "value"] if self.layout == "long" else [])
        for need in needed:
            if need not in self.fields:
                raise SourceError(f"metrics: fields.{need} is missing: map it to the column "
                                  "that holds it")
        if "pod" not in self.fields and "service" not in self.fields:
            raise SourceError("metrics: fields.pod or fields.service is missing: map the "
                              "column naming the entity")
        self.entity_field = "pod" if "pod" in self.fields else "service"
        self.time_unit = spec.get("time_unit")
        self.lookback = pd.Timedelta(spec.get("lookback") or "5min")
        self.signals: dict[str, Signal] = signal_set(spec)
        self.rule = pod_rule(spec)

    def _files(self) -> list[Path]:
        return expand_paths(self.pattern, "metrics")

    def _frame(self, path: Path, columns: dict[str, str]) -> tuple[pd.DataFrame, list[str]]:
        st = path.stat()
        df, w = _load(str(path), st.st_mtime, st.st_size, tuple(sorted(columns.items())),
                      self.time_unit)
        return df, list(w)

    def services(self) -> list[str]:
        """Distinct services (entities mapped by the pod rule)."""
        cols = {"time": self.fields["time"], "entity": self.fields[self.entity_field]}
        names: set[str] = set()
        for p in self._files():
            df, _ = self._frame(p, cols)
            names.update(str(v) for v in df["entity"].dropna().unique())
        if self.entity_field == "pod":
            return sorted({self.rule.service_of(n) for n in names})
        return sorted(names)

    def _samples(self, sig: Signal) -> tuple[pd.DataFrame, list[str], list[str]]:
        """time, entity, value rows for one signal; warnings; files lacking its column."""
        table = sig.table or {}
        base = {"time": self.fields["time"], "entity": self.fields[self.entity_field]}
        parts, warnings, lacking = [], [], []
        for p in self._files():
            if self.layout == "wide":
                col = str(table["column"])
                header = csv_header(p)
                if col not in header:
                    lacking.append(p.name)
                    continue
                # one read per file for every declared column it has (cached)
                wanted = {f"c:{s.table['column']}": str(s.table["column"])
                          for s in self.signals.values()
                          if s.table and s.table.get("column") in header}
                df, w = self._frame(p, {**base, **wanted})
                df = df.assign(value=df[f"c:{col}"])
            else:
                df, w = self._frame(p, {**base, "metric": self.fields["metric"],
                                        "value": self.fields["value"]})
                df = df[df["metric"] == str(table["metric"])]
            warnings += w
            parts.append(df[["time", "entity", "value"]])
        out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["time", "entity", "value"])
        return out, warnings, lacking

    def query_signal(self, signal: str, start: pd.Timestamp, end: pd.Timestamp, step: float,
                     filters: dict[str, str] | None = None) -> QueryResult:
        """The signal per service on a grid of step seconds over [start, end]."""
        sig = self.signals.get(signal)
        if sig is None:
            raise InputError(f"signal {signal[:40]!r} is not declared: use one of "
                             f"{', '.join(sorted(self.signals))}")
        table = sig.table or {}
        src = table.get("column" if self.layout == "wide" else "metric")
        query = (f"files:{self.label} {self.layout} "
                 f"{'column' if self.layout == 'wide' else 'metric'}={src!r} kind={sig.kind} "
                 f"step={step:g}s")
        empty = pd.DataFrame({"time": pd.to_datetime(pd.Series([], dtype="datetime64[ns, UTC]")),
                              "service": pd.Series([], dtype=object),
                              "value": pd.Series([], dtype=float)})
        if not src:
            return _missing(empty, query, signal, f"signal {signal}: no "
                            f"{'column' if self.layout == 'wide' else 'metric'} declared")
        raw, warnings, lacking = self._samples(sig)
        raw = raw.assign(value=pd.to_numeric(raw["value"], errors="coerce")).dropna(
            subset=["value"])
        if raw.empty:
            why = (f"signal {signal}: {src!r} is in no file" if lacking or self.layout == "wide"
                   else f"signal {signal}: metric {src!r} has no samples")
            return _missing(empty, query, signal, why)
        partial = False
        if lacking:
            partial = True
            warnings.append(f"signal {signal}: column {src!r} missing in {len(lacking)} "
                            f"file(s), e.g. {lacking[0]}: those entities have no data")
        raw["value"] = raw["value"].astype(float) * float(table.get("scale", 1.0))
        raw["service"] = (self.rule.map(raw["entity"]) if self.entity_field == "pod"
                          else raw["entity"])
        if filters:
            for k, v in filters.items():
                if k in ("service", "pod"):
                    raw = raw[raw["service" if k == "service" else "entity"] == v]
        lo = start - self.lookback - pd.Timedelta(seconds=step)
        raw = raw[(raw["time"] >= lo) & (raw["time"] <= end)]
        if sig.kind == "counter":
            raw = _rates(raw)
        frame = _on_grid(raw, time_grid(start, end, step), self.lookback,
                         str(table.get("agg") or ("sum" if sig.kind == "counter" else "mean")))
        return QueryResult(frame, query, self.backend, warnings=warnings, partial=partial)


def _missing(empty: pd.DataFrame, query: str, signal: str, why: str) -> QueryResult:
    return QueryResult(empty, query, "files", warnings=[f"{why}: reported as missing, not 0"],
                       notes={"missing": [signal]})


def _rates(raw: pd.DataFrame) -> pd.DataFrame:
    """Per-second increase between consecutive samples of each entity (a drop = reset)."""
    parts = []
    for _, g in raw.sort_values("time").groupby("entity", sort=False):
        t = (g["time"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
        v = g["value"].to_numpy()
        if len(v) < 2:
            continue
        dv = np.diff(v)
        dv = np.where(dv < 0, v[1:], dv)
        dt = np.diff(t)
        ok = dt > 0
        parts.append(g.iloc[1:][ok].assign(value=dv[ok] / dt[ok]))
    return pd.concat(parts, ignore_index=True) if parts else raw.iloc[:0]


def _on_grid(raw: pd.DataFrame, grid: np.ndarray, lookback: pd.Timedelta,
             agg: str) -> pd.DataFrame:
    """Last sample at or before each grid time (within lookback) per entity, then agg per
    service."""
    if agg not in _AGG:
        raise InputError(f"signal agg {agg[:10]!r} is invalid: use {', '.join(_AGG)}")
    cols = {"time": pd.Series([], dtype="datetime64[ns, UTC]"),
            "service": pd.Series([], dtype=object), "value": pd.Series([], dtype=float)}
    if raw.empty or not len(grid):
        return pd.DataFrame(cols)
    g = pd.DataFrame({"time": pd.to_datetime(grid, unit="s", utc=True)})
    g["time"] = g["time"].astype("datetime64[ns, UTC]")
    parts = []
    for (svc, ent), s in raw.sort_values("time").groupby(["service", "entity"], sort=False):
        s = s[["time", "value"]].assign(time=s["time"].astype("datetime64[ns, UTC]"))
        m = pd.merge_asof(g, s, on="time", direction="backward", tolerance=lookback)
        parts.append(m.dropna(subset=["value"]).assign(service=svc, entity=ent))
    if not parts:
        return pd.DataFrame(cols)
    out = pd.concat(parts, ignore_index=True)
    out = out.groupby(["time", "service"], as_index=False)["value"].agg(agg)
    return out[["time", "service", "value"]].sort_values(["service", "time"]).reset_index(
        drop=True)
