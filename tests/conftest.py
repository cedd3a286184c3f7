"""Shared fixtures: one demo dataset and one full demo run per test session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs/ folder outside the checkout (INCIDENT_RUNS_DIR) for the whole session."""
    d = tmp_path_factory.mktemp("runs")
    os.environ["INCIDENT_RUNS_DIR"] = str(d)
    return d


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo telemetry (default size and seed)."""
    from incident_lib.demo.generator import generate_demo

    return generate_demo(tmp_path_factory.mktemp("demo") / "data")


@pytest.fixture(scope="session")
def truth(demo_data: Path) -> dict:
    """The ground truth the investigation never reads."""
    return json.loads((demo_data / "truth.json").read_text())


@pytest.fixture(scope="session")
def demo_run(runs_dir: Path, demo_data: Path) -> Path:
    """The demo incident investigated end to end through the real runner (papermill)."""
    from incident_lib.core.config import load_config
    from incident_lib.pipeline.alerts import incident_from_alert
    from incident_lib.pipeline.runner import create_run, execute

    payload = json.loads((demo_data / "alert.json").read_text())
    inc = incident_from_alert(payload, load_config(data_dir=demo_data), incident_id="e2e-demo")
    path = create_run(inc)
    status = execute(path)
    assert status["state"] == "ok", status
    return path
