"""Metric anomalies ranked across services: incident window against a robust baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .onset import find_excursion, robust_baseline

__all__ = ["rank_anomalies"]


def rank_anomalies(
    frames: dict[str, pd.DataFrame],
    units: dict[str, str],
    directions: dict[str, str],
    baseline: tuple[pd.Timestamp, pd.Timestamp],
    incident: tuple[pd.Timestamp, pd.Timestamp],
    ref_time: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One row per (signal, service): baseline and incident medians, robust z, score, onset.

    frames maps signal name -> long frame (time, service, value). Score is in [0, 1]:
    1 - exp(-|z| / 10) where z is the robust z of the incident-window median.
    """
    rows = []
    b0, b1 = baseline
    i0, i1 = incident
    for signal, df in frames.items():
        if df is None or df.empty:
            continue
        unit = units.get(signal, "")
        direction = directions.get(signal, "up")
        for service, g in df.groupby("service"):
            s = g.set_index("time")["value"].astype(float)
            base = s[(s.index >= b0) & (s.index < b1)].to_numpy()
            inc = s[(s.index >= i0) & (s.index <= i1)].to_numpy()
            if len(base) < 4 or len(inc) < 2:
                continue
            med, scale = robust_baseline(base, unit)
            inc_med = float(np.nanmedian(inc))
            z = (inc_med - med) / scale if scale > 0 else 0.0
            signed = z if direction == "up" else (-z if direction == "down" else abs(z))
            exc = find_excursion(s, unit=unit, direction=direction, ref_time=ref_time,
                                 baseline_end=b1)
            onset = exc.onset if exc is not None and exc.onset <= i1 else None
            score = float(1 - np.exp(-max(signed, 0.0) / 10.0))
            if exc is None:
                score = min(score, 0.3)  # no sustained excursion: weak evidence at most
            rows.append({
                "signal": signal, "service": str(service), "unit": unit,
                "baseline": med, "incident": inc_med,
                "change_pct": (inc_med - med) / abs(med) * 100 if med else np.nan,
                "z": float(z), "score": score,
                "onset": onset, "peak": exc.peak if exc is not None else np.nan,
                "recovered": exc.recovered if exc is not None else None,
            })
    if not rows:
        return pd.DataFrame(columns=["signal", "service", "unit", "baseline", "incident",
                                     "change_pct", "z", "score", "onset", "peak", "recovered"])
    out = pd.DataFrame(rows)
    out["onset_sort"] = pd.to_datetime(out["onset"], utc=True)
    out = out.sort_values(["score", "onset_sort"], ascending=[False, True], na_position="last")
    return out.drop(columns="onset_sort").reset_index(drop=True)
