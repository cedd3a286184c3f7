"""Onset and recovery of a metric excursion: robust baseline, sustained excursion, walk back.

Method, per series:
1. Seasonality. When the series reaches back more than one season (default one day) before
   the point examined, each value is compared with the value one season earlier (seasonal
   naive difference, re-centred on the baseline median), so a daily peak is not an incident.
   A shorter window cannot see a day, so the baseline level is taken from its last 30 minutes
   (robust to the slow drift a daily cycle causes inside a few hours) and the scale from the
   whole baseline (1.4826 x MAD, floored per unit so a flat baseline does not make noise look
   like signal).
2. Detection. A point is high above level + k_high x scale; an excursion needs `sustain`
   (60 s) of consecutive high points, so a single-scrape blip is not an incident. With a
   reference time (the alert), the excursion at or last before it is taken, if it was still
   high within `lookback` (15 min) of it: an alert fires on an ongoing condition, so a blip
   that recovered long before is background noise, not the incident's onset.
3. Onset. Walk back from the first high point while above level + k_low x scale: exact for
   steps and fast ramps. A gradual departure (taking more than `gradual`, 5 min, to reach
   80% of its peak: a leak, a creeping saturation) crosses that line late, so the knee is
   located with ruptures (binary segmentation, cost `clinear`: continuous piecewise-linear,
   one break) on the <= 40 points before the first high point, and the onset moves back to
   the knee when the points from the knee on sit a robust sigma above the level (for a step
   the knee is the step, so nothing moves). ruptures is used only there: on the whole series
   its change points answer "where does the mean change most", not "when did this excursion
   start", and would cost many model fits per series (~30 series x ~750 points per run).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Excursion", "find_excursion", "robust_baseline", "deseasonalize", "held_level",
           "range_check", "RANGE_FACTOR", "MIN_RANGE_BASELINE"]

# Smallest meaningful change per unit, so a flat baseline does not make noise look like signal.
ABS_FLOOR = {"ratio": 0.005, "seconds": 0.02, "req/s": 0.5, "cores": 0.05, "bytes": 5e6}


@dataclass
class Excursion:
    """A sustained departure from baseline: when it began, peaked and ended."""

    onset: pd.Timestamp
    peak_time: pd.Timestamp
    peak: float
    baseline: float
    scale: float
    threshold: float
    recovered: pd.Timestamp | None
    direction: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        for k in ("onset", "peak_time", "recovered"):
            d[k] = None if d[k] is None else pd.Timestamp(d[k]).isoformat()
        return d


def robust_baseline(values: np.ndarray, unit: str = "") -> tuple[float, float]:
    """Median and a floored robust scale (1.4826 * MAD) of baseline values."""
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return float("nan"), float("nan")
    med = float(np.median(v))
    mad = float(np.median(np.abs(v - med))) * 1.4826
    floor = max(ABS_FLOOR.get(unit, 0.0) / 3.0, 0.02 * abs(med), 1e-9)
    return med, max(mad, floor)


def find_excursion(
    series: pd.Series,
    *,
    unit: str = "",
    direction: str = "up",
    ref_time: pd.Timestamp | None = None,
    baseline_end: pd.Timestamp | None = None,
    k_high: float = 4.5,
    k_low: float = 3.0,
    sustain: pd.Timedelta = pd.Timedelta("60s"),
    lookback: pd.Timedelta = pd.Timedelta("15min"),
    season: pd.Timedelta | None = pd.Timedelta("1D"),
    gradual: pd.Timedelta = pd.Timedelta("5min"),
) -> Excursion | None:
    """The sustained excursion at (or last before) ref_time, or the largest one; None if none.

    The baseline is the series before baseline_end (default: ref_time - 20 min, else the first
    40%). A point is high above median + k_high*scale; an excursion needs `sustain` of high
    points; its onset is found by walking back while above median + k_low*scale.
    """
    s = series.dropna().sort_index()
    if len(s) < 8:
        return None
    t = s.index
    v = s.to_numpy(dtype=float)
    if baseline_end is None:
        baseline_end = ref_time - pd.Timedelta("20min") if ref_time is not None else None
    base_mask = t < baseline_end if baseline_end is not None else np.arange(len(v)) < len(v) * 0.4
    if base_mask.sum() < 8:
        base_mask = np.arange(len(v)) < max(8, int(len(v) * 0.3))
    v, known = deseasonalize(t, v, base_mask, season)
    if (base_mask & known).sum() >= 8:
        base_mask = base_mask & known
    med, scale = robust_baseline(v[base_mask], unit)
    recent = base_mask & (t >= t[base_mask][-1] - pd.Timedelta("30min"))
    if recent.sum() >= 8:
        med = float(np.median(v[recent]))
    sign = -1.0 if direction == "down" else 1.0
    dev = sign * (v - med)
    if direction == "both":
        dev = np.abs(v - med)
    floor = ABS_FLOOR.get(unit, 0.0)
    hi_thr = max(k_high * scale, floor)
    lo_thr = max(k_low * scale, floor / 2)
    high = dev > hi_thr
    runs = _runs(high)
    cands = []
    for a, b in runs:  # inclusive indexes
        if t[b] - t[a] < sustain:
            continue
        cands.append((a, b))
    if not cands:
        return None
    if ref_time is not None:
        near = [(a, b) for a, b in cands if t[a] <= ref_time + pd.Timedelta("5min")
                and t[b] >= ref_time - lookback]
        if not near:
            return None
        a, b = near[-1] if not any(t[x] <= ref_time <= t[y] for x, y in near) else next(
            (x, y) for x, y in near if t[x] <= ref_time <= t[y])
    else:
        a, b = max(cands, key=lambda ab: float(dev[ab[0]:ab[1] + 1].sum()))
    on = a
    while on > 0 and dev[on - 1] > lo_thr:
        on -= 1
    peak_i = a + int(np.argmax(dev[a:b + 1]))
    rise = np.nonzero(dev[on:b + 1] >= 0.8 * dev[peak_i])[0]
    if len(rise) and t[on + int(rise[0])] - t[on] > gradual:
        on = _knee(dev, on, a, scale)
    rec = None
    i = b + 1
    while i < len(v):
        if dev[i] <= lo_thr:
            j = i
            while j < len(v) and dev[j] <= lo_thr and t[j] - t[i] < pd.Timedelta("2min"):
                j += 1
            if j >= len(v) or t[j] - t[i] >= pd.Timedelta("2min"):
                rec = t[i]
                break
            i = j
        i += 1
    return Excursion(
        onset=t[on],
        peak_time=t[peak_i],
        peak=float(v[peak_i]),
        baseline=med,
        scale=scale,
        threshold=med + sign * hi_thr,
        recovered=rec,
        direction=direction,
    )


def deseasonalize(t: pd.DatetimeIndex, v: np.ndarray, base_mask: np.ndarray,
                  season: pd.Timedelta | None) -> tuple[np.ndarray, np.ndarray]:
    """v minus its value one season earlier (re-centred) where history allows, and where."""
    known = np.zeros(len(v), dtype=bool)
    if season is None or len(v) < 8 or t[-1] - t[0] <= season:
        return v, known
    ti = np.asarray((t - t[0]).total_seconds(), dtype=float)
    prev = np.interp(ti - season.total_seconds(), ti, v, left=np.nan)
    known = np.isfinite(prev)
    if known.sum() < 8:
        return v, np.zeros(len(v), dtype=bool)
    ref = base_mask & known
    level = float(np.median(v[ref])) if ref.any() else float(np.median(v[known]))
    out = np.full_like(v, level)  # points without a season of history are not judged
    out[known] = v[known] - prev[known] + level
    return out, known


def _knee(dev: np.ndarray, on: int, first_high: int, scale: float) -> int:
    """Onset of a gradual departure: first point after the ruptures `clinear` knee > 1 sigma."""
    import ruptures as rpt

    lo = max(0, first_high - 40)
    seg = dev[lo:first_high + 1]
    if len(seg) < 6:
        return on
    try:
        bkps = rpt.Binseg(model="clinear", min_size=2, jump=1).fit(seg).predict(n_bkps=1)
    except Exception:  # noqa: BLE001 - a failed refinement keeps the walk-back onset
        return on
    if not bkps or bkps[0] >= len(seg):
        return on
    knee = lo + bkps[0]  # first point of the second (departing) segment
    while knee < on and dev[knee] <= 0.5 * scale:
        knee += 1
    if knee < on and np.median(dev[knee:on + 1]) > scale:
        return knee
    return on


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    out, start = [], None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        elif not m and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, len(mask) - 1))
    return out


# A customer-facing series shows impact only beyond the range it held in its baseline: its
# level held for `sustain` must pass the highest level it held as long in the baseline by a
# quarter (of that level's distance from the median) and by the unit's floor. Judged only on a
# baseline of at least MIN_RANGE_BASELINE: minutes of a heavy-tailed series do not show its
# range (13 one-minute samples of a bimodal p99 can miss its upper mode entirely).
RANGE_FACTOR = 1.25
MIN_RANGE_BASELINE = pd.Timedelta("30min")


def held_level(series: pd.Series, sustain: pd.Timedelta = pd.Timedelta("60s")) -> float | None:
    """The highest level a series held for `sustain` (every point of a run of that length at
    or above it); None when the series is shorter than `sustain`."""
    s = series.dropna().sort_index()
    if len(s) < 2 or s.index[-1] - s.index[0] < sustain:
        return None
    t = np.asarray((s.index - s.index[0]).total_seconds(), dtype=float)
    v = s.to_numpy(dtype=float)
    best = None
    j = 0
    for i in range(len(v)):  # run [i, j]: the first j with t[j] - t[i] >= sustain
        j = max(j, i)
        while j < len(v) and t[j] - t[i] < sustain.total_seconds():
            j += 1
        if j >= len(v):
            break
        low = float(v[i:j + 1].min())
        best = low if best is None else max(best, low)
    return best


def range_check(series: pd.Series, split: pd.Timestamp, *, unit: str = "",
                direction: str = "up", sustain: pd.Timedelta = pd.Timedelta("60s"),
                min_baseline: pd.Timedelta = MIN_RANGE_BASELINE) -> dict[str, Any]:
    """Did the series, from `split` on, hold a level beyond the range it held before?

    {judged, beyond, level, baseline_range, baseline_median, baseline_minutes}: levels are
    held for `sustain` (held_level, on the series turned so that "worse" is up), compared
    with the baseline's as RANGE_FACTOR x its distance from the baseline median plus the
    unit's floor. Not judged (beyond False) with less than `min_baseline` of baseline.
    """
    s = series.dropna().sort_index().astype(float)
    base, after = s[s.index < split], s[s.index >= split]
    covered = (base.index[-1] - base.index[0]) if len(base) > 1 else pd.Timedelta(0)
    out: dict[str, Any] = {"judged": False, "beyond": False, "level": None,
                           "baseline_range": None, "baseline_median": None,
                           "baseline_minutes": round(covered.total_seconds() / 60, 1)}
    if covered < min_baseline:
        return out
    sign = -1.0 if direction == "down" else 1.0
    med = float(base.median())
    dev_base = held_level(sign * (base - med), sustain)
    dev_after = held_level(sign * (after - med), sustain)
    if dev_base is None or dev_after is None:
        return out
    floor = ABS_FLOOR.get(unit, 0.0)
    bound = max(RANGE_FACTOR * max(dev_base, 0.0), max(dev_base, 0.0) + floor)
    return {**out, "judged": True, "beyond": bool(dev_after > bound),
            "level": med + sign * dev_after, "baseline_range": med + sign * dev_base,
            "baseline_median": med}
