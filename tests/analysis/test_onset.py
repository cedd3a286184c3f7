"""Onset on hand-made series: exact expected times."""

from __future__ import annotations

import numpy as np
import pandas as pd

from incident_lib.analysis.onset import find_excursion, held_level, range_check


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


def test_gradual_leak_onset_is_the_knee_not_the_threshold_crossing() -> None:
    rng = np.random.default_rng(3)
    v = 300e6 + 6e6 * rng.standard_normal(400)
    v[200:] += np.minimum(np.arange(200) * 4.4e6, 212e6)  # leak from point 200 = 00:50:00
    exc = find_excursion(_series(v), unit="bytes")
    assert exc is not None
    # the walk-back alone stops at 00:51:45 (threshold crossing); the ruptures knee: 00:49:45
    assert exc.onset == pd.Timestamp("2026-01-01T00:49:45Z")
    late = find_excursion(_series(v), unit="bytes", gradual=pd.Timedelta("1D"))
    assert late is not None and late.onset == pd.Timestamp("2026-01-01T00:51:45Z")


def _two_days(incident: bool) -> pd.Series:
    rng = np.random.default_rng(4)
    idx = pd.date_range("2026-01-01T00:00Z", periods=2 * 288, freq="5min")
    day = (np.arange(576) % 288) / 288
    v = 100 + 50 * np.sin(2 * np.pi * (day - 0.25)) + rng.normal(0, 2, 576)  # peak at 12:00
    if incident:
        v[288 + 204:288 + 220] += 40  # day 2, 17:00 to 18:20
    return pd.Series(v, index=idx)


def test_daily_peak_is_not_an_incident_with_a_seasonal_baseline() -> None:
    s = _two_days(incident=False)
    base_end = pd.Timestamp("2026-01-02T06:00Z")  # baseline ends in the night trough
    assert find_excursion(s, unit="req/s", baseline_end=base_end) is None
    # the same day without yesterday to compare with: the daily peak looks like an incident
    today = s[s.index >= pd.Timestamp("2026-01-02T00:00Z")]
    assert find_excursion(today, unit="req/s", baseline_end=base_end) is not None


def test_incident_on_top_of_the_daily_cycle_has_exact_onset() -> None:
    exc = find_excursion(_two_days(incident=True), unit="req/s",
                         baseline_end=pd.Timestamp("2026-01-02T16:00Z"))
    assert exc is not None
    assert exc.onset == pd.Timestamp("2026-01-02T17:00Z")
    assert exc.recovered == pd.Timestamp("2026-01-02T18:20Z")


def test_blip_long_before_the_alert_is_not_the_onset() -> None:
    v = np.full(400, 0.01)
    v[100:106] = 0.03  # 90 s excursion at 00:25, recovered 30 min before the alert
    ref = pd.Timestamp("2026-01-01T01:00:00Z")
    assert find_excursion(_series(v), unit="ratio", ref_time=ref,
                          baseline_end=pd.Timestamp("2026-01-01T00:20:00Z")) is None
    v[236:300] = 0.2  # the incident: 00:59:00 onwards
    exc = find_excursion(_series(v), unit="ratio", ref_time=ref,
                         baseline_end=pd.Timestamp("2026-01-01T00:20:00Z"))
    assert exc is not None and exc.onset == pd.Timestamp("2026-01-01T00:59:00Z")


def test_held_level_is_the_highest_level_kept_for_a_minute() -> None:
    v = np.full(40, 1.0)
    v[10] = 9.0  # one scrape: not held
    v[20:25] = 3.0  # five points at 15 s = 60 s at 3.0
    v[30:33] = 5.0  # 30 s at 5.0: not held for a minute
    assert held_level(_series(v)) == 3.0
    assert held_level(_series(v[:4])) is None  # shorter than a minute


def test_heavy_tailed_latency_back_at_a_level_it_held_is_within_its_range() -> None:
    """The gateway's p99 of a real export: ~1 s with minutes at ~2.2 s in normal operation;
    the alert's minutes at 2.3 s are no customer impact. Four minutes at 3.5 s are."""
    v = np.full(240, 0.97)
    v[30:42] = 2.2  # 3 min at 2.2 s in the baseline
    v[200:216] = 2.3
    split = pd.Timestamp("2026-01-01T00:45:00Z")  # point 180
    r = range_check(_series(v), split, unit="seconds")
    assert r["judged"] and not r["beyond"]
    assert (r["baseline_range"], r["level"]) == (2.2, 2.3)
    v[200:216] = 3.5
    r = range_check(_series(v), split, unit="seconds")
    assert r["beyond"] and r["level"] == 3.5


def test_error_rate_leaving_a_flat_baseline_is_beyond_and_down_signals_turn() -> None:
    rng = np.random.default_rng(3)
    err = np.abs(0.002 + 0.0005 * rng.standard_normal(240))
    err[190:210] = 0.08
    split = pd.Timestamp("2026-01-01T00:45:00Z")
    assert range_check(_series(err), split, unit="ratio")["beyond"]
    ok = np.full(240, 0.999)
    ok[190:210] = 0.9  # success rate falling: worse is down
    assert range_check(_series(ok), split, unit="ratio", direction="down")["beyond"]
    assert not range_check(_series(ok), split, unit="ratio")["beyond"]  # read as "up"


def test_minutes_of_baseline_do_not_judge_a_range() -> None:
    v = np.full(120, 0.5)
    v[110:] = 0.95  # a level never seen in 27 minutes: still no range to judge against
    r = range_check(_series(v), pd.Timestamp("2026-01-01T00:27:30Z"), unit="seconds")
    assert r == {**r, "judged": False, "beyond": False} and r["baseline_minutes"] == 27.2
