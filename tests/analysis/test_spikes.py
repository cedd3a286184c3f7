"""What changed in logs: new and surging templates, over-represented values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from incident_lib.analysis.spikes import compare_counts, template_changes, what_changed

T0 = pd.Timestamp("2026-01-01T00:00Z")


def _logs() -> pd.DataFrame:
    rows = []
    for m in range(120):  # 60 min baseline, 60 min incident
        t = T0 + pd.Timedelta(minutes=m)
        rows += [(t, "api", "info", "T1", "GET <*>")] * 10
        rows += [(t, "api", "warn", "T2", "slow <*>")] * (1 if m < 60 else 6)
        if m >= 60:
            rows += [(t, "db", "error", "T3", "pool exhausted <*>")] * 2
    return pd.DataFrame(rows, columns=["time", "service", "level", "template_id", "template"])


def test_new_and_surging_templates() -> None:
    out = template_changes(_logs(), (T0, T0 + pd.Timedelta("60min")),
                           (T0 + pd.Timedelta("60min"), T0 + pd.Timedelta("120min")))
    assert list(out["template_id"]) == ["T3", "T2"]
    new, surge = out.iloc[0], out.iloc[1]
    assert (new["status"], new["baseline_count"], new["incident_count"]) == ("new", 0, 120)
    assert surge["status"] == "surging" and surge["q_value"] < 1e-6
    assert surge["rate_ratio"] > 5


def test_compare_counts_bh() -> None:
    out = compare_counts(pd.Series({"a": 10, "b": 10}), pd.Series({"a": 10, "b": 40}), 10, 10)
    row = out.set_index("key")
    assert row.loc["a", "p_value"] > 0.4 and row.loc["b", "p_value"] < 1e-4
    assert (out["q_value"] >= out["p_value"]).all()


def test_what_changed_finds_value_and_pair() -> None:
    logs = _logs()
    base = logs[logs["time"] < T0 + pd.Timedelta("60min")]
    inc = logs[logs["time"] >= T0 + pd.Timedelta("60min")]
    out = what_changed(base, inc, ["service", "level"], 60, 60)
    vals = set(zip(out["field"], out["value"], strict=True))
    assert ("service", "db") in vals and ("level", "error") in vals
    assert ("service & level", "db & error") in vals
    assert ("service & level", "api & info") not in vals


def test_effect_size_columns() -> None:
    out = compare_counts(pd.Series({"a": 10, "b": 0}), pd.Series({"a": 40, "b": 12}), 10, 10)
    row = out.set_index("key")
    assert abs(row.loc["a", "rate_ratio"] - 40 / 10.5) < 1e-9
    assert abs(row.loc["a", "log2_ratio"] - np.log2(40 / 10.5)) < 1e-9
    assert abs(row.loc["a", "ratio_ci_low"] - 2.1686) < 1e-4  # exact 95% bound: >= 2.17x
    assert abs(row.loc["b", "rate_ratio"] - 24.0) < 1e-9  # new key: 12 / (0 + 0.5)
    assert abs(row.loc["b", "ratio_ci_low"] - 3.5265) < 1e-4


def test_template_changes_without_levels() -> None:
    """Logs without a level (None or NaN: CSV exports often have none) must not crash."""
    logs = _logs()
    for missing in (None, np.nan):
        logs["level"] = missing
        out = template_changes(logs, (T0, T0 + pd.Timedelta("60min")),
                               (T0 + pd.Timedelta("60min"), T0 + pd.Timedelta("120min")))
        assert set(out["template_id"]) == {"T2", "T3"}
        assert set(out["level"]) == {""}


def test_compare_counts_equals_scipy_binomtest_per_key() -> None:
    """The vectorised test gives what scipy.stats.binomtest gives key by key: the one-sided
    p-value and the exact (Clopper-Pearson) lower bound turned into a rate ratio."""
    rng = np.random.default_rng(7)
    k0 = rng.integers(0, 200, 300)
    k1 = rng.integers(0, 200, 300)
    k0[:5], k1[:5] = 0, [0, 1, 2, 50, 0]
    keys = [f"t{i}" for i in range(300)]
    out = compare_counts(pd.Series(k0, index=keys), pd.Series(k1, index=keys), 17.0, 6.0)
    share = 6.0 / 23.0
    for r in out.itertuples():
        a, b = int(r.incident_count), int(r.baseline_count)
        if a + b == 0:
            assert r.p_value == 1.0 and r.ratio_ci_low == 0.0
            continue
        res = stats.binomtest(a, a + b, share, alternative="greater")
        lo = res.proportion_ci(confidence_level=0.95, method="exact").low
        assert r.p_value == pytest.approx(res.pvalue, rel=1e-9, abs=1e-300)
        assert r.ratio_ci_low == pytest.approx(lo / (1 - lo) * 17.0 / 6.0, rel=1e-9, abs=1e-12)
