"""Triage on the demo incident with one bad sample: numbers stay right, and it says so."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from incident_lib.core.config import load_config
from incident_lib.pipeline.alerts import incident_from_alert
from incident_lib.pipeline.runner import create_run
from incident_lib.runs.folder import Run
from incident_lib.stages import triage


def _impact(data: Path, root: Path, run_id: str) -> tuple[dict, str]:
    payload = json.loads((data / "alert.json").read_text())
    inc = incident_from_alert(payload, load_config(data_dir=data), incident_id=run_id)
    run = Run(create_run(inc, root=root))
    sig = triage.golden_signals(run)
    onset = triage.detect_onset(run, sig)
    impact = triage.measure_impact(run, sig, onset)
    return impact.data, sig.markdown + impact.markdown


@pytest.mark.parametrize("bad", ["+Inf", "NaN"])
def test_one_non_finite_sample_keeps_impact_right_and_is_named(
        demo_data: Path, tmp_path: Path, bad: str) -> None:
    clean, _ = _impact(demo_data, tmp_path / "runs", "clean")
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    alert = pd.Timestamp(json.loads((data / "alert.json").read_text())["alerts"][0]["startsAt"])
    target = (alert - pd.Timedelta("1h")).timestamp()
    om = (data / "metrics.om").read_text().splitlines()
    pat = re.compile(r'^http_requests_total\{service="frontend",status="200"\} \S+ (\S+)$')
    hits = [i for i, ln in enumerate(om) if (m := pat.match(ln)) and
            abs(float(m.group(1)) - target) < 8]
    assert len(hits) == 1
    om[hits[0]] = re.sub(r"\} \S+ ", f"}} {bad} ", om[hits[0]])
    (data / "metrics.om").write_text("\n".join(om) + "\n")

    got, md = _impact(data, tmp_path / "runs", "bad")
    # the denominator keeps its 200s: impact within 1 point of the clean run (was 92% vs ~5%)
    assert got["customer_error_share"] == pytest.approx(clean["customer_error_share"], abs=0.01)
    assert got["affected_services"] == clean["affected_services"]
    assert 'http_requests_total{service="frontend",status="200"}' in md.replace("\\_", "_")
    assert "Evidence health:" in md and "NaN/Inf samples" in md
    assert got["caveats"] and "NaN/Inf" in got["caveats"][0]


def _series(svc: str, t0: pd.Timestamp, bad: tuple[pd.Timestamp, pd.Timestamp | None],
            n: int = 90) -> pd.DataFrame:
    """p99 latency every minute: 0.1 s +- noise, 2 s inside `bad` (end None: still bad)."""
    times = [t0 + pd.Timedelta(minutes=i) for i in range(n)]
    vals = [2.0 if bad[0] <= t and (bad[1] is None or t < bad[1]) else 0.1 + 0.01 * (i % 3)
            for i, t in enumerate(times)]
    return pd.DataFrame({"time": times, "service": svc, "value": vals})


def test_an_excursion_that_recovered_before_the_alert_is_not_the_onset() -> None:
    """An earlier, finished episode (the previous fault) must not date this incident."""
    from types import SimpleNamespace

    from incident_lib.core.signals import signals
    from incident_lib.report.display import Section

    t0 = pd.Timestamp("2026-01-01T10:00:00Z")
    alert = t0 + pd.Timedelta("80min")
    old = _series("old", t0, (t0 + pd.Timedelta("60min"), t0 + pd.Timedelta("66min")))
    now = _series("now", t0, (alert - pd.Timedelta("3min"), None))
    frames = {"latency_p99": pd.concat([old, now], ignore_index=True)}
    run = SimpleNamespace(signals=signals(), incident=SimpleNamespace(
        alert_ts=alert, service="now", end_ts=t0 + pd.Timedelta("90min")))
    out = triage.detect_onset(run, Section("Signals", "", {"frames": frames}))  # type: ignore[arg-type]
    assert out.data["time"] == alert - pd.Timedelta("3min")
    assert out.data["affected"] == ["now"]
    assert "old" in out.markdown  # still shown: it moved, earlier and apart
