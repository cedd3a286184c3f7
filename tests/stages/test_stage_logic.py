"""The arithmetic inside the stages, on small frames whose answers are known by hand:
impact measurement, the baseline/incident windows, the exact-count merge, the early signal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from incident_lib.core.findings import Onset, TriageFindings
from incident_lib.core.model import Incident
from incident_lib.report.display import Section
from incident_lib.runs.folder import Run
from incident_lib.stages import correlation, triage
from incident_lib.stages.common import windows
from incident_lib.stages.notes import early_signal

T0 = pd.Timestamp("2026-11-20T10:00:00Z")


@pytest.fixture
def run(tmp_path: Path) -> Run:
    inc = Incident(id="logic", title="t", service="web", start=T0.isoformat(),
                   end=(T0 + pd.Timedelta("60min")).isoformat(),
                   topology={"entrypoints": ["web"]})
    (tmp_path / "incident.json").write_text(json.dumps(inc.to_dict()))
    return Run(tmp_path)


def _series(values: np.ndarray, service: str = "web", step: int = 60) -> pd.DataFrame:
    times = T0 + pd.to_timedelta(np.arange(len(values)) * step, unit="s")
    return pd.DataFrame({"time": times, "service": service, "value": values})


def test_impact_counts_failed_customer_requests(run: Run) -> None:
    # 10 req/s all hour; 50% failing from minute 20 to minute 29 (10 samples of 60 s)
    err = np.full(60, 0.0)
    err[20:30] = 0.5
    frames = {"error_rate": _series(err), "traffic": _series(np.full(60, 10.0)),
              "latency_p99": _series(np.r_[np.full(20, 0.1), np.full(10, 0.4),
                                           np.full(30, 0.1)])}
    onset_t, rec_t = T0 + pd.Timedelta("20min"), T0 + pd.Timedelta("29min")
    movers = pd.DataFrame([{"series": "error_rate{service=web}", "signal": "error_rate",
                            "service": "web", "onset": onset_t, "baseline": 0.0, "peak": 0.5,
                            "recovered": rec_t, "impact": True}])
    sig = Section("s", "", {"frames": frames, "no_data": []})
    onset = Section("o", "", {"time": onset_t, "movers": movers, "affected": ["web"]})
    imp = triage.measure_impact(run, sig, onset).data
    assert imp["status"] == "mitigated" and imp["recovered"] == "2026-11-20T10:29:00Z"
    assert imp["failed_requests"] == 10 * 0.5 * 10 * 60  # samples x share x rps x step
    assert imp["total_requests"] == 10 * 10 * 60
    assert imp["customer_error_share"] == pytest.approx(0.5)
    assert imp["customer_latency_ratio"] == pytest.approx(4.0)  # 0.4 s vs 0.1 s baseline
    assert imp["duration_s"] == 9 * 60


def test_windows_split_at_onset_with_a_five_minute_guard(run: Run) -> None:
    tri = TriageFindings.from_dict({"onset": {"time": "2026-11-20T10:20:00Z"},
                                    "impact": {"recovered": "2026-11-20T10:29:00Z"}})
    w = windows(tri, run)
    assert w["baseline"] == (T0, T0 + pd.Timedelta("15min"))
    assert w["incident"] == (T0 + pd.Timedelta("20min"), T0 + pd.Timedelta("29min"))


def test_early_signal_is_a_saturation_ratio_that_moved_before_onset() -> None:
    movers = [{"series": "memory{service=a}", "signal": "memory", "service": "a",
               "onset": "2026-11-20T10:10:00Z"},
              {"series": "db_pool_utilization{service=a}", "signal": "db_pool_utilization",
               "service": "a", "onset": "2026-11-20T10:15:00Z"}]
    tri = TriageFindings(onset=Onset(time="2026-11-20T10:20:00Z", first_movers=movers))
    assert early_signal(tri)["signal"] == "db_pool_utilization"
    late = TriageFindings(onset=Onset(time="2026-11-20T10:12:00Z", first_movers=movers))
    assert early_signal(late) is None  # the pool moved after the impact began
    assert early_signal(TriageFindings()) is None  # no onset, no advice


class _Pushdown:
    """A backend that counts field values exactly (what Elasticsearch aggregations return)."""

    def __call__(self, baseline: tuple, incident: tuple, fields: list[str]) -> object:
        from incident_lib.sources.base import QueryResult

        rows = [{"field": "service", "value": "pay", "baseline_count": 100,
                 "incident_count": 900},
                {"field": "service", "value": "web", "baseline_count": 1000,
                 "incident_count": 1000}]
        return QueryResult(pd.DataFrame(rows), "terms aggregation", "test")


def test_exact_counts_replace_the_sample_for_pushed_down_fields(run: Run) -> None:
    t_b, t_i = T0 + pd.Timedelta("5min"), T0 + pd.Timedelta("35min")
    sample = pd.DataFrame({"time": [t_b] * 3 + [t_i] * 3, "service": ["web"] * 6,
                           "template_id": ["a", "a", "a", "a", "b", "b"]})
    ctx = Section("w", "", {"baseline": (T0, T0 + pd.Timedelta("30min")),
                            "incident": (T0 + pd.Timedelta("30min"),
                                         T0 + pd.Timedelta("60min"))})
    base, inc = sample.iloc[:3], sample.iloc[3:]
    out = correlation._with_exact_counts(run, ctx, base, inc, ["service", "template_id"],
                                         30.0, 30.0, _Pushdown())
    svc = out[out["field"] == "service"].set_index("value")
    assert svc.loc["pay", "baseline_count"] == 100 and svc.loc["pay", "incident_count"] == 900
    assert svc.loc["pay", "rate_ratio"] == pytest.approx(9.0, rel=0.01)
    assert (out["q_value"] >= out["p_value"] - 1e-12).all()  # one BH correction over all
    assert "web" not in svc.index  # same rate in both windows: not over-represented
    assert set(out["field"]) == {"service"}  # 2 sampled lines of template b are not evidence


def test_impact_with_only_non_impact_movers_does_not_crash(run: Run) -> None:
    """The onset can come from a saturation series alone (every impact excursion was an
    earlier episode): impact is measured from that mover instead of raising on max([])."""
    frames = {"error_rate": _series(np.full(60, 0.001)), "traffic": _series(np.full(60, 10.0)),
              "latency_p99": _series(np.full(60, 0.1))}
    onset_t, rec_t = T0 + pd.Timedelta("20min"), T0 + pd.Timedelta("35min")
    movers = pd.DataFrame([{"series": "memory{service=web}", "signal": "memory",
                            "service": "web", "onset": onset_t, "baseline": 1e8, "peak": 9e8,
                            "recovered": rec_t, "impact": False}])
    sig = Section("s", "", {"frames": frames, "no_data": []})
    onset = Section("o", "", {"time": onset_t, "movers": movers, "affected": []})
    imp = triage.measure_impact(run, sig, onset).data
    assert imp["recovered"] == "2026-11-20T10:35:00Z" and imp["status"] == "mitigated"
    assert imp["affected_services"] == [] and imp["duration_s"] == 15 * 60
