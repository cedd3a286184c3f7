"""OpenMetrics text: a tolerant parser and an in-process evaluator with Prometheus semantics.

The evaluator covers what signals.yaml uses: selectors with = and =~ matchers, rate() with
Prometheus' extrapolation, sum by, a ratio of two aggregated vectors, and histogram_quantile.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from ..core.errors import SourceError

__all__ = ["Series", "MetricStore", "parse_openmetrics", "evaluate", "LOOKBACK_S"]

LOOKBACK_S = 300.0
MAX_LINE = 1 << 16  # characters; a longer "line" (e.g. a NUL-filled region) is malformed
_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+(?P<ts>\S+))?"
    r"(?:\s+#.*)?$"
)
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


@dataclass
class Series:
    """One time series: labels, sorted times (epoch seconds) and values."""

    labels: dict[str, str]
    t: np.ndarray
    v: np.ndarray
    _adj: np.ndarray | None = field(default=None, repr=False)
    _bad: np.ndarray | None = field(default=None, repr=False)

    def reset_adjusted(self) -> np.ndarray:
        """Values with counter resets compensated (as Prometheus' rate loop does).

        Resets next to a non-finite sample are not accumulated, so one NaN/Inf sample spoils
        only the rate windows that contain it (see nonfinite_before), as in Prometheus.
        """
        if self._adj is None:
            v = self.v
            drops = np.zeros_like(v)
            if len(v) > 1:
                fin = np.isfinite(v)
                dec = (v[1:] < v[:-1]) & fin[1:] & fin[:-1]
                drops[1:] = np.where(dec, v[:-1], 0.0)
            self._adj = v + np.cumsum(drops)
        return self._adj

    def nonfinite_before(self) -> np.ndarray:
        """nonfinite_before()[i] = number of NaN/Inf samples among v[:i] (length len(v)+1)."""
        if self._bad is None:
            self._bad = np.concatenate([[0], np.cumsum(~np.isfinite(self.v))])
        return self._bad

    def describe(self, name: str) -> str:
        """name{labels} as PromQL prints it."""
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{name}{{{inner}}}"


@dataclass
class MetricStore:
    """Parsed samples by metric name, plus parse warnings (with line numbers)."""

    series: dict[str, list[Series]]
    types: dict[str, str]
    warnings: list[str]

    def names(self) -> list[str]:
        """Sample names present."""
        return sorted(self.series)

    def label_values(self, label: str) -> list[str]:
        """Distinct values of a label across all series."""
        vals = {s.labels[label] for ss in self.series.values() for s in ss if label in s.labels}
        return sorted(vals)

    def time_range(self) -> tuple[float, float] | None:
        """Earliest and latest sample time (epoch seconds)."""
        lo, hi = math.inf, -math.inf
        for ss in self.series.values():
            for s in ss:
                if len(s.t):
                    lo, hi = min(lo, s.t[0]), max(hi, s.t[-1])
        return None if lo == math.inf else (lo, hi)


def _unescape(value: str) -> str:
    return value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def parse_openmetrics(path: str | Path, max_warnings: int = 20) -> MetricStore:
    """Parse an OpenMetrics/Prometheus text file; bad lines are skipped with a warning."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"metrics file {path} does not exist: run `incident demo` or fix "
                          "the path")
    raw: dict[str, dict[tuple, tuple[list[float], list[float]]]] = defaultdict(dict)
    types: dict[str, str] = {}
    warnings: list[str] = []
    bad = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in _capped_lines(fh):
            if line is None:
                bad += 1
                if len(warnings) < max_warnings:
                    warnings.append(f"{path.name}:{lineno}: skipped line (longer than "
                                    f"{MAX_LINE} characters)")
                continue
            if not line or line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 4 and parts[1] == "TYPE":
                    types[parts[2]] = parts[3].strip()
                continue
            m = _SAMPLE.match(line)
            labels: dict[str, str] = {}
            ok = m is not None
            if ok and m.group("labels"):
                body, pos = m.group("labels"), 0
                while pos < len(body):
                    lm = _LABEL.match(body, pos)
                    if not lm:
                        ok = False
                        break
                    labels[lm.group(1)] = _unescape(lm.group(2))
                    pos = lm.end()
            try:
                value = float(m.group("value")) if ok else math.nan
                ts = float(m.group("ts")) if ok and m.group("ts") else math.nan
            except ValueError:
                ok = False
            if not ok or math.isnan(ts):
                bad += 1
                if len(warnings) < max_warnings:
                    why = "no timestamp" if ok else "not a valid sample"
                    warnings.append(f"{path.name}:{lineno}: skipped line ({why}): {line[:80]!r}")
                continue
            key = tuple(sorted(labels.items()))
            ts_list, v_list = raw[m.group("name")].setdefault(key, ([], []))
            ts_list.append(ts)
            v_list.append(value)
    if bad > len(warnings):
        warnings.append(f"{path.name}: {bad} bad lines skipped in all")
    series: dict[str, list[Series]] = {}
    for name, by_key in raw.items():
        lst = []
        for key, (ts_list, v_list) in by_key.items():
            t = np.asarray(ts_list, dtype=float)
            v = np.asarray(v_list, dtype=float)
            order = np.argsort(t, kind="stable")
            lst.append(Series(dict(key), t[order], v[order]))
        series[name] = lst
    if not series:
        raise SourceError(f"metrics file {path} holds no samples with timestamps")
    return MetricStore(series, types, warnings)


def _capped_lines(fh: IO[str]) -> Any:
    """(line number, line without newline) pairs; None for a line over MAX_LINE characters,
    which is skipped without being held in memory."""
    lineno = 0
    while True:
        line = fh.readline(MAX_LINE + 1)
        if not line:
            return
        lineno += 1
        if len(line) > MAX_LINE and not line.endswith("\n"):
            while line and not line.endswith("\n"):  # skip the rest of the long line
                line = fh.readline(1 << 20)
            yield lineno, None
            continue
        yield lineno, line.rstrip("\n")


def _matches(labels: dict[str, str], match: dict[str, str]) -> bool:
    for k, want in match.items():
        have = labels.get(k, "")
        if want.startswith("~"):
            if not re.fullmatch(want[1:], have):
                return False
        elif have != want:
            return False
    return True


def _rate(s: Series, grid: np.ndarray, rng: float) -> np.ndarray:
    """Prometheus extrapolatedRate (2.x: closed range [t-rng, t]) at each grid time."""
    lo = np.searchsorted(s.t, grid - rng, side="left")
    hi = np.searchsorted(s.t, grid, side="right") - 1
    out = np.full(len(grid), np.nan)
    ok = (hi - lo) >= 1
    if not ok.any():
        return out
    lo, hi, g = lo[ok], hi[ok], grid[ok]
    adj = s.reset_adjusted()
    result = adj[hi] - adj[lo]
    t0, t1, v0 = s.t[lo], s.t[hi], s.v[lo]
    sampled = t1 - t0
    avg = sampled / (hi - lo)
    to_start = t0 - (g - rng)
    to_end = g - t1
    with np.errstate(divide="ignore", invalid="ignore"):
        to_zero = np.where((result > 0) & (v0 >= 0), sampled * (v0 / result), np.inf)
    to_start = np.minimum(to_start, to_zero)
    thr = avg * 1.1
    interval = sampled + np.where(to_start < thr, to_start, avg / 2)
    interval = interval + np.where(to_end < thr, to_end, avg / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        val = result * (interval / sampled) / rng
    bad = s.nonfinite_before()
    val[(bad[hi + 1] - bad[lo]) > 0] = np.nan  # a NaN/Inf sample in the window spoils it
    out[ok] = val
    return out


def _instant(s: Series, grid: np.ndarray) -> np.ndarray:
    """Last sample within the 5-minute lookback at each grid time."""
    hi = np.searchsorted(s.t, grid, side="right") - 1
    out = np.full(len(grid), np.nan)
    ok = hi >= 0
    ok[ok] = s.t[hi[ok]] >= grid[ok] - LOOKBACK_S
    out[ok] = s.v[hi[ok]]
    return out


def _present(s: Series, grid: np.ndarray, rng: float, rate: bool) -> np.ndarray:
    """Where a series has a point at all (NaN from a NaN sample is present, as in Prometheus)."""
    hi = np.searchsorted(s.t, grid, side="right") - 1
    if rate:
        return (hi - np.searchsorted(s.t, grid - rng, side="left")) >= 1
    ok = hi >= 0
    ok[ok] = s.t[hi[ok]] >= grid[ok] - LOOKBACK_S
    return ok


def _sum_by(
    store: MetricStore, spec: dict[str, Any], grid: np.ndarray, rng: float, by: list[str],
    flagged: list[str] | None = None,
) -> dict[tuple, np.ndarray]:
    """sum by (...): a NaN/Inf point of any member makes the sum non-finite (Prometheus);
    the series responsible are appended to flagged."""
    metric = spec["metric"]
    match = spec.get("match", {})
    rate = spec["op"] == "rate_sum"
    groups: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for s in store.series.get(metric, []):
        if not _matches(s.labels, match):
            continue
        vals = _rate(s, grid, rng) if rate else _instant(s, grid)
        present = _present(s, grid, rng, rate)
        bad = present & ~np.isfinite(vals)
        if bad.any() and flagged is not None:
            desc = f"{s.describe(metric)}: {int(bad.sum())} of {len(grid)} points non-finite"
            if desc not in flagged:
                flagged.append(desc)
        groups[tuple(s.labels.get(b, "") for b in by)].append((vals, present))
    out = {}
    for key, pairs in groups.items():
        stack = np.vstack([v for v, _ in pairs])
        present = np.vstack([p for _, p in pairs])
        total = np.where(present, stack, 0.0).sum(axis=0)
        out[key] = np.where(present.any(axis=0), total, np.nan)
    return out


def _histogram_quantile(q: float, buckets: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """Prometheus bucketQuantile, vectorised over time."""
    buckets = sorted(buckets, key=lambda b: b[0])
    les = np.array([b[0] for b in buckets])
    counts = np.vstack([b[1] for b in buckets])  # (n_buckets, n_times)
    n_t = counts.shape[1]
    out = np.full(n_t, np.nan)
    if len(les) < 2 or not math.isinf(les[-1]):
        return out
    for j in range(n_t):
        c = counts[:, j]
        if np.isnan(c).any():
            continue
        c = np.maximum.accumulate(c)  # ensureMonotonic
        total = c[-1]
        if total == 0 or math.isnan(total):
            continue
        rank = q * total
        b = int(np.searchsorted(c, rank, side="left"))
        if b == len(les) - 1:
            out[j] = les[-2]
            continue
        if b == 0 and les[0] <= 0:
            out[j] = les[0]
            continue
        start = 0.0 if b == 0 else les[b - 1]
        end = les[b]
        prev = 0.0 if b == 0 else c[b - 1]
        cnt = c[b] - prev
        r = rank - prev
        out[j] = start + (end - start) * (r / cnt) if cnt > 0 else end
    return out


def _eval(store: MetricStore, spec: dict[str, Any], grid: np.ndarray, rng: float,
          flagged: list[str] | None = None):
    op = spec["op"]
    by = list(spec.get("by", []))
    if op in ("rate_sum", "gauge_sum"):
        return by, _sum_by(store, spec, grid, rng, by, flagged)
    if op == "ratio":
        by_n, num = _eval(store, spec["num"], grid, rng, flagged)
        by_d, den = _eval(store, spec["den"], grid, rng, flagged)
        out = {}
        for key, n in num.items():
            if key in den:
                d = den[key]
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[key] = n / d
        return by_n, out
    if op == "histogram_quantile":
        per = _sum_by(store, {**spec, "op": "rate_sum"}, grid, rng, [*by, "le"], flagged)
        grouped: dict[tuple, list[tuple[float, np.ndarray]]] = defaultdict(list)
        for key, arr in per.items():
            try:
                le = float(key[-1])
            except ValueError:
                continue
            grouped[key[:-1]].append((le, arr))
        return by, {k: _histogram_quantile(float(spec["q"]), b) for k, b in grouped.items()}
    raise SourceError(f"files signal op {op!r} is not supported")


def evaluate(store: MetricStore, spec: dict[str, Any], grid: np.ndarray,
             flagged: list[str] | None = None) -> pd.DataFrame:
    """Evaluate a files signal definition at grid times (epoch s) -> long frame (finite values).

    Points made non-finite by NaN/Inf samples are dropped; the series holding those samples
    are appended to `flagged` (name{labels}: how many points) so the caller can say so.
    """
    rng = float(spec.get("range", 60))
    by, result = _eval(store, spec, grid, rng, flagged)
    frames = []
    times = pd.to_datetime(grid, unit="s", utc=True)
    for key, arr in sorted(result.items()):
        present = np.isfinite(arr)  # absent points and 0/0 are dropped (both backends agree)
        if not present.any():
            continue
        df = pd.DataFrame({"time": times[present], "value": arr[present]})
        for name, val in zip(by, key, strict=True):
            df[name] = val
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["time", *by, "value"])
    out = pd.concat(frames, ignore_index=True)
    return out[["time", *by, "value"]]
