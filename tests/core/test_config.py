"""Config is validated when it is loaded: a bad severity policy or source kind is one clear
ConfigError naming the file, the rule and the field, before any run exists."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from incident_lib.core.config import load_config, resolve_sources, validate_severity_policy
from incident_lib.core.errors import ConfigError, InputError
from incident_lib.pipeline.alerts import incident_from_cli
from incident_lib.pipeline.runner import create_run
from incident_lib.runs.folder import Run


def _write(tmp: Path, **extra: object) -> Path:
    cfg = {"sources": {k: {"kind": "files", "path": "."} for k in ("metrics", "logs",
                                                                   "changes")}, **extra}
    p = tmp / "incident.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


@pytest.mark.parametrize(("policy", "needle"), [
    ([{"level": "P9"}], "rule 1: severity 'P9' is unknown"),
    ([{"level": "P1"}, {"level": "P2", "error_share": 0.1}], "rule 2: unknown condition"),
    ([{"level": "P1", "customer_error_share_min": "lots"}], "must be a number"),
    ([{"customer_error_share_min": 0.1}], "rule 1 needs a level"),
    ({"level": "P1"}, "must be a non-empty list"),
])
def test_bad_severity_policy_is_refused_at_load(tmp_path: Path, policy: object,
                                                needle: str) -> None:
    path = _write(tmp_path, severity_policy=policy)
    with pytest.raises(ConfigError, match=needle) as err:
        load_config(path)
    assert str(path) in str(err.value) and isinstance(err.value, InputError)


def test_unknown_source_kind_is_refused_at_load(tmp_path: Path) -> None:
    path = _write(tmp_path)
    cfg = yaml.safe_load(path.read_text())
    cfg["sources"]["logs"]["kind"] = "splunk"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="sources.logs.kind is 'splunk'"):
        load_config(path)


def test_policy_travels_in_its_own_field_not_in_the_topology(demo_data: Path,
                                                             tmp_path: Path) -> None:
    cfg = load_config(data_dir=demo_data)
    cfg["severity_policy"] = validate_severity_policy([{"level": "P2"}])
    inc = incident_from_cli("payments", "2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z", cfg)
    assert inc.severity_policy == [{"level": "P2"}]
    assert "severity_policy" not in inc.topology


CANARY = "canary-pw-5d1e8c0b77"


@pytest.mark.parametrize("url", [
    f"http://admin:{CANARY}@127.0.0.1:9/",
    f"https://{CANARY}@prom.example:9090",
    f"http://127.0.0.1:9/?access_token={CANARY}",
    f"http://127.0.0.1:9/?password={CANARY}",
])
def test_credentials_in_a_backend_url_are_refused_without_echoing_them(
        tmp_path: Path, demo_data: Path, url: str) -> None:
    cfg = yaml.safe_load((demo_data / "incident.yaml").read_text())
    cfg["sources"]["metrics"] = {"kind": "prometheus", "url": url}
    (tmp_path / "incident.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(InputError, match="sources.metrics.url holds credentials") as err:
        load_config(tmp_path / "incident.yaml")
    assert CANARY not in str(err.value)


def test_credentials_url_leaves_no_trace_in_any_output(tmp_path: Path, demo_data: Path) -> None:
    """The CLI refuses it in one line (stderr without the secret) and writes no run at all."""
    data = tmp_path / "data"
    data.mkdir()
    for f in ("metrics.om", "logs.ndjson", "changes.ndjson", "topology.yaml", "alert.json"):
        (data / f).symlink_to(demo_data / f)
    cfg = yaml.safe_load((demo_data / "incident.yaml").read_text())
    cfg["sources"]["logs"] = {"kind": "elasticsearch", "url": f"http://u:{CANARY}@127.0.0.1:9",
                              "index": "logs-*"}
    (data / "incident.yaml").write_text(yaml.safe_dump(cfg))
    exe = Path(sys.executable).with_name("incident")
    env = {**os.environ, "INCIDENT_RUNS_DIR": str(tmp_path / "runs")}
    res = subprocess.run([str(exe), "run", "--alert", str(data / "alert.json"), "--data",
                          str(data)], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "sources.logs.url holds credentials" in \
        res.stderr
    assert CANARY not in res.stderr + res.stdout
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_an_incident_built_by_hand_with_a_credentials_url_is_never_written(
        tmp_path: Path, demo_data: Path) -> None:
    from incident_lib.pipeline.alerts import incident_from_alert
    from incident_lib.pipeline.runner import create_run

    payload = json.loads((demo_data / "alert.json").read_text())
    inc = incident_from_alert(payload, load_config(data_dir=demo_data), incident_id="creds")
    sources = {**inc.sources, "metrics": {"kind": "prometheus",
                                          "url": f"http://a:{CANARY}@127.0.0.1:9"}}
    with pytest.raises(InputError, match="holds credentials"):
        create_run(dataclasses.replace(inc, sources=sources), root=tmp_path / "runs")
    assert not (tmp_path / "runs" / "creds").exists()
# --- bring your own data: optional changes/spans, declared signals, pod rule -------------

BYO_YAML = """\
signals_preset: default
signals:
  errors: {kind: counter, unit: req/s, role: error_rate, column: Errors}
pod_service: {pattern: '(?P<service>[a-z]+)_[0-9]+'}
sources:
  metrics: {kind: files, format: csv, layout: wide, path: "m/*.csv",
            fields: {time: t, pod: pod}, time_unit: s}
  logs: {kind: files, format: csv, path: "l/*.csv", fields: {time: t, pod: pod, message: msg}}
"""


def _byo_data(tmp_path: Path, text: str = BYO_YAML) -> Path:
    (tmp_path / "m").mkdir()
    (tmp_path / "l").mkdir()
    (tmp_path / "m" / "a.csv").write_text("t,pod,Errors,CpuUsage(m)\n1800000000,api_1,0,5\n")
    (tmp_path / "l" / "a.csv").write_text("t,pod,msg\n2026-01-15T08:00:00Z,api_1,x\n")
    (tmp_path / "incident.yaml").write_text(text)
    return tmp_path


def test_sources_carry_signals_and_pod_rule(tmp_path: Path) -> None:
    sources, _ = resolve_sources(load_config(data_dir=_byo_data(tmp_path)))
    assert sources["changes"]["kind"] == "none" and sources["spans"]["kind"] == "none"
    assert sources["metrics"]["signals_preset"] == "default"
    assert sources["logs"]["pod_service"]["pattern"].startswith("(?P<service>")
    assert sources["metrics"]["path"] == str(tmp_path / "m" / "*.csv")


def test_a_service_known_only_to_the_spans_opens_an_investigation(tmp_path: Path) -> None:
    # The entry service of an export often has spans and logs but no per-pod metric file:
    # that is a missing signal for the report to state, not an unknown service. A name no
    # source knows is still refused, naming where it looked.
    data = _byo_data(tmp_path, BYO_YAML + """\
  spans: {kind: files, format: csv, path: "s/*.csv", time_unit: s,
          fields: {trace_id: tid, span_id: sid, parent_id: pid, pod: pod, start: t, end: e}}
""")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "a.csv").write_text("tid,sid,pid,pod,t,e\n"
                                          "t1,s1,,web_1,1800000000,1800000001\n"
                                          "t1,s2,s1,api_1,1800000000,1800000001\n")
    cfg = load_config(data_dir=data)
    inc = incident_from_cli("web", "2026-01-15T07:00:00Z", "2026-01-15T09:00:00Z", cfg, "t2")
    assert inc.service == "web"
    with pytest.raises(InputError, match=r"service 'nope' is unknown to the metrics and the "
                                         r"spans: use one of api, web"):
        incident_from_cli("nope", "2026-01-15T07:00:00Z", "2026-01-15T09:00:00Z", cfg, "t3")


def test_run_exposes_declared_signals_and_empty_spans(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INCIDENT_RUNS_DIR", str(tmp_path / "runs"))
    cfg = load_config(data_dir=_byo_data(tmp_path))
    inc = incident_from_cli("api", "2026-01-15T07:00:00Z", "2026-01-15T09:00:00Z", cfg, "t1")
    run = Run(create_run(inc))
    assert run.signals["errors"].role == "error_rate" and "cpu" in run.signals
    res = run.spans.spans(inc.start_ts, inc.end_ts)
    assert res.empty and res.warnings == ["no spans configured"]
    assert run.changes.changes(inc.start_ts, inc.end_ts).warnings == ["no changes configured"]
    assert run.metrics.services() == ["api"]
    logs = run.logs.read_logs(inc.start_ts, inc.end_ts).frame
    assert logs["service"].tolist() == ["api"] and logs["time"].iloc[0] == pd.Timestamp(
        "2026-01-15T08:00:00Z")


def test_bad_signal_fails_when_the_incident_opens(tmp_path: Path) -> None:
    bad = BYO_YAML.replace("role: error_rate", "role: errs")
    cfg = load_config(data_dir=_byo_data(tmp_path, bad))
    with pytest.raises(InputError, match=r"signals.errors.role 'errs' is invalid"):
        resolve_sources(cfg)
