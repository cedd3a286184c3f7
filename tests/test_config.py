"""Config: optional changes/spans, signals and the pod rule carried into every run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from incident_lib.alerts import incident_from_cli
from incident_lib.config import load_config, resolve_sources
from incident_lib.errors import InputError
from incident_lib.run import Run
from incident_lib.runner import create_run

YAML = """\
signals_preset: pod_csv
signals:
  errors: {kind: counter, unit: req/s, role: error_rate, column: Errors}
pod_service: {pattern: '(?P<service>[a-z]+)_[0-9]+'}
sources:
  metrics: {kind: files, format: csv, layout: wide, path: "m/*.csv",
            fields: {time: t, pod: pod}, time_unit: s}
  logs: {kind: files, format: csv, path: "l/*.csv", fields: {time: t, pod: pod, message: msg}}
"""


def _data(tmp_path: Path, text: str = YAML) -> Path:
    (tmp_path / "m").mkdir()
    (tmp_path / "l").mkdir()
    (tmp_path / "m" / "a.csv").write_text("t,pod,Errors,CpuUsage(m)\n1800000000,api_1,0,5\n")
    (tmp_path / "l" / "a.csv").write_text("t,pod,msg\n2027-01-15T08:00:00Z,api_1,x\n")
    (tmp_path / "incident.yaml").write_text(text)
    return tmp_path


def test_sources_carry_signals_and_pod_rule(tmp_path: Path) -> None:
    sources, _ = resolve_sources(load_config(data_dir=_data(tmp_path)))
    assert sources["changes"]["kind"] == "none" and sources["spans"]["kind"] == "none"
    assert sources["metrics"]["signals_preset"] == "pod_csv"
    assert sources["logs"]["pod_service"]["pattern"].startswith("(?P<service>")
    assert sources["metrics"]["path"] == str(tmp_path / "m" / "*.csv")


def test_run_exposes_declared_signals_and_empty_spans(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INCIDENT_RUNS_DIR", str(tmp_path / "runs"))
    cfg = load_config(data_dir=_data(tmp_path))
    inc = incident_from_cli("api", "2027-01-15T07:00:00Z", "2027-01-15T09:00:00Z", cfg, "t1")
    run = Run(create_run(inc))
    assert run.signals["errors"].role == "error_rate" and "cpu" in run.signals
    res = run.spans.spans(inc.start_ts, inc.end_ts)
    assert res.empty and res.warnings == ["no spans configured"]
    assert run.changes.changes(inc.start_ts, inc.end_ts).warnings == ["no changes configured"]
    assert run.metrics.services() == ["api"]
    logs = run.logs.read_logs(inc.start_ts, inc.end_ts).frame
    assert logs["service"].tolist() == ["api"] and logs["time"].iloc[0] == pd.Timestamp(
        "2027-01-15T08:00:00Z")


def test_bad_signal_fails_when_the_incident_opens(tmp_path: Path) -> None:
    cfg = load_config(data_dir=_data(tmp_path, YAML.replace("role: error_rate", "role: errs")))
    with pytest.raises(InputError, match=r"signals.errors.role 'errs' is invalid"):
        resolve_sources(cfg)
