"""OpenMetrics parsing and Prometheus-compatible evaluation on hand-made series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from incident_lib.core.errors import SourceError
from incident_lib.sources.openmetrics import (
    Series,
    _histogram_quantile,
    _rate,
    evaluate,
    parse_openmetrics,
)


def test_rate_extrapolates_like_prometheus() -> None:
    # samples every 15 s, +30 per sample = 2/s; a 60 s window holding 4 samples (45 s covered)
    s = Series({}, np.array([5.0, 20.0, 35.0, 50.0, 65.0]),
               np.array([1000.0, 1030, 1060, 1090, 1120]))
    r = _rate(s, np.array([60.0]), 60.0)
    # samples at 5..50 in [0, 60]: increase 90 over 45 s; extrapolated to start (5 s < 1.1*15)
    # and to end (10 s < 16.5): 90 * (60/45) / 60 = 2.0
    assert r[0] == pytest.approx(2.0)
    # a counter starting at 0 is not extrapolated before its first sample (durationToZero)
    z = Series({}, s.t, s.v - 1000)
    assert _rate(z, np.array([60.0]), 60.0)[0] == pytest.approx(90 * 55 / 45 / 60)


def test_rate_handles_counter_reset() -> None:
    s = Series({}, np.array([0.0, 15, 30, 45, 60]), np.array([100.0, 130, 160, 10, 40]))
    r = _rate(s, np.array([60.0]), 60.0)
    # increase = 40 - 100 + 160 (reset compensation) = 100 over 60 s
    assert r[0] == pytest.approx(100 / 60)


def test_rate_needs_two_samples() -> None:
    s = Series({}, np.array([0.0]), np.array([1.0]))
    assert np.isnan(_rate(s, np.array([30.0]), 60.0)[0])


def test_histogram_quantile_interpolates_in_bucket() -> None:
    b = [(0.1, np.array([50.0])), (0.5, np.array([90.0])), (1.0, np.array([100.0])),
         (np.inf, np.array([100.0]))]
    # rank 0.99*100 = 99 lies in (0.5, 1.0] holding 10: 0.5 + 0.5 * 9/10
    assert _histogram_quantile(0.99, b)[0] == pytest.approx(0.95)
    # rank in +Inf bucket -> upper bound of the last finite bucket
    b2 = [(0.1, np.array([1.0])), (np.inf, np.array([100.0]))]
    assert _histogram_quantile(0.5, b2)[0] == pytest.approx(0.1)


def test_parse_skips_bad_lines_with_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "m.om"
    f.write_text('# TYPE up gauge\nup{job="a"} 1 100\nup{job="a" 1 115\nup{job="a"} 1\n'
                 'up{job="a"} 0 130\n# EOF\n')
    store = parse_openmetrics(f)
    assert len(store.series["up"][0].t) == 2
    assert any("m.om:3" in w for w in store.warnings)
    assert any("m.om:4" in w and "no timestamp" in w for w in store.warnings)


def test_parse_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "m.om"
    f.write_text("")
    with pytest.raises(SourceError, match="holds no samples"):
        parse_openmetrics(f)


def test_label_escapes(tmp_path: Path) -> None:
    f = tmp_path / "m.om"
    f.write_text('x{a="q\\"uote\\\\back",b="n\\nl"} 1 10\n')
    s = parse_openmetrics(f).series["x"][0]
    assert s.labels == {"a": 'q"uote\\back', "b": "n\nl"}


def test_ratio_and_sum_by(tmp_path: Path) -> None:
    f = tmp_path / "m.om"
    lines = []
    for t in range(0, 300, 15):
        lines.append(f'req_total{{service="a",status="200"}} {t * 9} {t}')
        lines.append(f'req_total{{service="a",status="500"}} {t} {t}')
    f.write_text("\n".join(lines) + "\n")
    store = parse_openmetrics(f)
    spec = {"op": "ratio", "range": 60,
            "num": {"op": "rate_sum", "metric": "req_total", "match": {"status": "~5.."},
                    "by": ["service"]},
            "den": {"op": "rate_sum", "metric": "req_total", "by": ["service"]}}
    df = evaluate(store, spec, np.array([120.0, 180.0]))
    assert list(df["service"]) == ["a", "a"]
    assert df["value"].to_numpy() == pytest.approx([0.1, 0.1])


def _ratio_file(tmp_path: Path, bad_value: str) -> Path:
    """A 10% error ratio; one sample of the 200s counter at t=600 is replaced by bad_value."""
    f = tmp_path / "m.om"
    lines = []
    for t in range(0, 1800, 15):
        ok = bad_value if t == 600 else str(t * 9)
        lines.append(f'req_total{{service="a",status="200"}} {ok} {t}')
        lines.append(f'req_total{{service="a",status="500"}} {t} {t}')
    f.write_text("\n".join(lines) + "\n")
    return f


@pytest.mark.parametrize("bad_value", ["+Inf", "NaN", "-Inf"])
def test_a_non_finite_sample_never_skews_a_sum_and_its_series_is_named(
        tmp_path: Path, bad_value: str) -> None:
    store = parse_openmetrics(_ratio_file(tmp_path, bad_value))
    spec = {"op": "ratio", "range": 60,
            "num": {"op": "rate_sum", "metric": "req_total", "match": {"status": "~5.."},
                    "by": ["service"]},
            "den": {"op": "rate_sum", "metric": "req_total", "by": ["service"]}}
    grid = np.arange(120.0, 1800.0, 15.0)
    flagged: list[str] = []
    df = evaluate(store, spec, grid, flagged)
    # every point that is reported is the true 10%; the points whose window holds the bad
    # sample are missing (Prometheus: the sum is NaN), never 100% from a lost denominator
    assert df["value"].to_numpy() == pytest.approx(np.full(len(df), 0.1))
    missing = sorted(set(grid) - {t.timestamp() for t in df["time"]})
    assert missing and min(missing) >= 600 and max(missing) <= 660
    assert flagged == [f'req_total{{service="a",status="200"}}: {len(missing)} of '
                       f'{len(grid)} points non-finite']


def test_an_overlong_metrics_line_is_skipped_and_counted(tmp_path: Path) -> None:
    from incident_lib.sources import openmetrics

    f = tmp_path / "m.om"
    with open(f, "w") as fh:
        fh.write('up{job="a"} 1 100\n')
        fh.write("\x00" * (openmetrics.MAX_LINE * 40))  # a NUL region with no newline
        fh.write('\nup{job="a"} 0 130\n')
    store = parse_openmetrics(f)
    assert list(store.series["up"][0].t) == [100.0, 130.0]
    assert store.warnings[0] == f"m.om:2: skipped line (longer than {openmetrics.MAX_LINE} " \
                                "characters)"
