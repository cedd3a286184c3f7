"""Scenario generator: every fault type writes parseable data whose truth the metrics show."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from incident_lib.analysis.onset import find_excursion
from incident_lib.demo.scenarios import FAULTS, generate_scenario
from incident_lib.pipeline.alerts import validate_payload
from incident_lib.sources.filemetrics import FilesMetricSource

# where the injected fault shows first in the golden signals (signal, service, direction)
VISIBLE = {
    "bad_deploy": ("error_rate", "checkout", "up"),
    "db_pool_exhaustion": ("db_pool_utilization", "inventory", "up"),
    "memory_leak_oom": ("error_rate", "payments", "up"),
    "downstream_outage": ("error_rate", "postgres", "up"),
    "traffic_surge": ("error_rate", "inventory", "up"),
    "config_flag_change": ("error_rate", "frontend", "up"),
    "certificate_expiry": ("error_rate", "checkout", "up"),
    "disk_full": ("error_rate", "inventory", "up"),
    "noisy_neighbour": ("error_rate", "payments", "up"),
}


def test_nine_fault_types() -> None:
    assert set(FAULTS) == set(VISIBLE) and len(FAULTS) == 9


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_scenario_files_parse_and_metrics_show_the_truth(fault: str, tmp_path: Path) -> None:
    out = generate_scenario(tmp_path / fault, fault, seed=2, size=3000)
    truth = json.loads((out / "truth.json").read_text())
    assert truth["fault"] == fault and truth["seed"] == 2
    assert set(truth) >= {"onset", "alert", "root_cause_service", "root_cause_change",
                          "affected_services", "decoy_changes"}
    onset = pd.Timestamp(truth["onset"])
    assert pd.Timedelta("4min") <= pd.Timestamp(truth["alert"]) - onset <= pd.Timedelta("6min")
    payload = validate_payload(json.loads((out / "alert.json").read_text()))
    assert payload["alerts"][0]["startsAt"] == truth["alert"]
    changes = [json.loads(x) for x in (out / "changes.ndjson").read_text().splitlines()]
    ids = {c["change.id"]: c for c in changes}
    assert set(truth["decoy_changes"]) <= set(ids) and len(truth["decoy_changes"]) == 4
    assert all(ids[d]["service.name"] != truth["root_cause_service"]
               for d in truth["decoy_changes"])
    near = [d for d in truth["decoy_changes"]  # one decoy lands shortly before the onset
            if pd.Timedelta(0) < onset - pd.Timestamp(ids[d]["@timestamp"])
            <= pd.Timedelta("12min")]
    assert len(near) == 1
    if truth["root_cause_change"]:
        rc = ids[truth["root_cause_change"]]
        assert rc["service.name"] == truth["root_cause_service"]
        assert pd.Timestamp(rc["@timestamp"]) < onset
    topo = yaml.safe_load((out / "topology.yaml").read_text())
    src = FilesMetricSource(out / "metrics.om")
    assert truth["root_cause_service"] in src.services()
    assert set(topo["calls"]) == set(src.services())
    lines = (out / "logs.ndjson").read_text().splitlines()
    assert len(lines) >= 3000 and json.loads(lines[0])["@timestamp"].endswith("Z")
    signal, svc, direction = VISIBLE[fault]
    frame = src.query_signal(signal, onset - pd.Timedelta("100min"),
                             onset + pd.Timedelta("20min"), 15.0, {"service": svc}).frame
    exc = find_excursion(frame.set_index("time")["value"], unit="ratio", direction=direction,
                         ref_time=pd.Timestamp(truth["alert"]))
    assert exc is not None
    assert abs((exc.onset - onset).total_seconds()) <= 60, (exc.onset, onset)


def test_seeds_move_the_onset_and_the_decoys(tmp_path: Path) -> None:
    a = json.loads((generate_scenario(tmp_path / "a", "disk_full", seed=1, size=2000)
                    / "truth.json").read_text())
    b = json.loads((generate_scenario(tmp_path / "b", "disk_full", seed=3, size=2000)
                    / "truth.json").read_text())
    assert (a["onset"], a["decoy_changes"]) != (b["onset"], b["decoy_changes"]) or \
        a["alert"] != b["alert"]


def test_disk_full_errors_come_from_one_host(tmp_path: Path) -> None:
    out = generate_scenario(tmp_path / "d", "disk_full", seed=1, size=20000)
    logs = pd.read_json(out / "logs.ndjson", lines=True)
    full = logs[logs["message"].str.contains("No space left on device")]
    assert len(full) > 20 and set(full["host.name"]) == {"inventory-7f9c-b"}


def test_unknown_fault_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        generate_scenario(tmp_path, "cosmic_rays")


def test_one_scenario_through_the_runner_names_the_expired_callee(
        runs_dir: Path, tmp_path: Path) -> None:
    from incident_lib.core.config import load_config
    from incident_lib.pipeline.alerts import incident_from_alert
    from incident_lib.pipeline.runner import create_run, execute

    data = generate_scenario(tmp_path / "cert", "certificate_expiry", seed=1, size=20000)
    payload = json.loads((data / "alert.json").read_text())
    inc = incident_from_alert(payload, load_config(data_dir=data), incident_id="scenario-cert")
    path = create_run(inc)
    assert execute(path, export=False)["state"] == "ok"
    cor = json.loads((path / "findings" / "correlation.json").read_text())["data"]
    top = cor["suspects"][0]
    assert (top["service"], top["change_id"]) == ("inventory", None)
    assert "named in new or surging error logs of checkout, frontend" in {
        e["text"] for e in top["evidence"]}
