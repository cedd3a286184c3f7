"""Onset on hand-made series: exact expected times."""

from __future__ import annotations

import numpy as np
import pandas as pd

from incident_lib.analysis.onset import find_excursion


def _series(values: np.ndarray) -> pd.Series:
    idx = pd.date_range("2026-01-01T00:00Z", periods=len(values), freq="15s")
    return pd.Series(values, index=idx)


def test_step_onset_and_recovery_are_exact() -> None:
    rng = np.random.default_rng(1)
    v = 0.01 + 0.001 * rng.standard_normal(400)
    v[240:320] += 0.3  # onset at point 240 = 01:00:00, back at 320 = 01:20:00
    exc = find_excursion(_series(v), unit="ratio")
    assert exc is not None
    assert exc.onset == pd.Timestamp("2026-01-01T01:00:00Z")
    assert exc.recovered == pd.Timestamp("2026-01-01T01:20:00Z")
    assert exc.peak > 0.3


def test_noise_only_has_no_onset() -> None:
    rng = np.random.default_rng(2)
    assert find_excursion(_series(0.01 + 0.001 * rng.standard_normal(400)), unit="ratio") is None


def test_short_blip_is_not_an_incident() -> None:
    v = np.full(400, 0.01)
    v[200:202] = 0.5  # 30 s < 60 s sustain
    assert find_excursion(_series(v), unit="ratio") is None


def test_ref_time_picks_the_excursion_near_the_alert() -> None:
    v = np.full(400, 0.01)
    v[50:70] = 0.4  # an earlier, unrelated excursion
    v[300:340] = 0.4
    exc = find_excursion(_series(v), unit="ratio",
                         ref_time=pd.Timestamp("2026-01-01T01:20:00Z"),
                         baseline_end=pd.Timestamp("2026-01-01T00:10:00Z"))
    assert exc is not None and exc.onset == pd.Timestamp("2026-01-01T01:15:00Z")


def test_ramp_walks_back_to_first_departure() -> None:
    v = np.full(400, 1.0)
    v[200:260] = 1.0 + np.linspace(0.6, 30, 60)  # slow start, then clearly high
    exc = find_excursion(_series(v), unit="req/s")
    assert exc is not None and exc.onset == pd.Timestamp("2026-01-01T00:50:00Z")
