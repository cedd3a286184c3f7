"""Config: credentials written into backend URLs are refused before anything is written."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from incident_lib.config import load_config
from incident_lib.errors import InputError

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
    from incident_lib.alerts import incident_from_alert
    from incident_lib.runner import create_run

    payload = json.loads((demo_data / "alert.json").read_text())
    inc = incident_from_alert(payload, load_config(data_dir=demo_data), incident_id="creds")
    sources = {**inc.sources, "metrics": {"kind": "prometheus",
                                          "url": f"http://a:{CANARY}@127.0.0.1:9"}}
    with pytest.raises(InputError, match="holds credentials"):
        create_run(dataclasses.replace(inc, sources=sources), root=tmp_path / "runs")
    assert not (tmp_path / "runs" / "creds").exists()
