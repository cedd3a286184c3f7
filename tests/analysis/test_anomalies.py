"""Metric anomalies ranked across services on hand-made frames: exact scores and onsets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from incident_lib.analysis.anomalies import rank_anomalies

T0 = pd.Timestamp("2026-01-01T00:00Z")


def _frame(values: dict[str, np.ndarray]) -> pd.DataFrame:
    idx = pd.date_range(T0, periods=len(next(iter(values.values()))), freq="15s")
    return pd.concat([pd.DataFrame({"time": idx, "service": svc, "value": v})
                      for svc, v in values.items()], ignore_index=True)


def test_step_on_one_service_ranks_first_with_exact_onset() -> None:
    rng = np.random.default_rng(5)
    api = 0.01 + 0.001 * rng.standard_normal(480)
    api[300:] += 0.2  # 01:15:00
    web = 0.01 + 0.001 * rng.standard_normal(480)
    out = rank_anomalies({"error_rate": _frame({"api": api, "web": web})},
                         {"error_rate": "ratio"}, {"error_rate": "up"},
                         (T0, T0 + pd.Timedelta("70min")),
                         (T0 + pd.Timedelta("75min"), T0 + pd.Timedelta("120min")),
                         ref_time=T0 + pd.Timedelta("80min"))
    assert list(out["service"]) == ["api", "web"]
    top, rest = out.iloc[0], out.iloc[1]
    assert top["score"] > 0.99 and top["onset"] == T0 + pd.Timedelta("75min")
    assert abs(top["incident"] - 0.21) < 0.002
    assert rest["score"] < 0.3 and pd.isna(rest["onset"])


def test_direction_down_only_counts_drops() -> None:
    v = np.full(480, 50.0)
    v[300:] = 80.0  # a rise on a `down` signal is not an anomaly
    out = rank_anomalies({"traffic": _frame({"api": v})}, {"traffic": "req/s"},
                         {"traffic": "down"}, (T0, T0 + pd.Timedelta("70min")),
                         (T0 + pd.Timedelta("75min"), T0 + pd.Timedelta("120min")))
    assert out["score"].iat[0] == 0.0 and pd.isna(out["onset"].iat[0])
