"""The front door: investigate an alert or a service window in one call, open a run, replay
it, search past incidents. `incident_lib` re-exports these; the CLI is built on them.

    import incident_lib as il
    run = il.investigate(service="payments", start="2026-11-20T10:00:00Z",
                         end="2026-11-20T12:00:00Z", data="runs/.data/demo-s42-n200000")
    print(run.outcome, run.report_path)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .core.config import load_config
from .core.errors import InputError
from .core.storage import runs_root
from .demo.generator import generate_demo
from .kb.similar import similar_incidents as _similar
from .pipeline.alerts import incident_from_alert, incident_from_cli, load_alert_file
from .pipeline.replay import ReplayResult, replay_run
from .pipeline.runner import (
    DEFAULT_CELL_TIMEOUT,
    create_demo_run,
    create_run,
    demo_data_dir,
    execute,
)
from .runs.folder import DEMO_RUN_ID, Run, resolve_run

__all__ = ["investigate", "open_run", "replay", "similar_incidents", "demo_config"]


def _load(config: str | Path | dict[str, Any] | None, data: str | Path | None) -> dict[str, Any]:
    if isinstance(config, dict):
        if "sources" not in config:
            raise InputError("config has no 'sources' section: add sources.metrics/logs/changes")
        return {"_base": str(Path.cwd()), **config}
    if config is None and data is None:
        return demo_config()
    return load_config(config, data)


def demo_config() -> dict[str, Any]:
    """The config of the bundled demo telemetry (generated on first use)."""
    data = demo_data_dir()
    if not (data / "incident.yaml").is_file():
        generate_demo(data)
    return load_config(data_dir=data)


def investigate(
    service: str | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    *,
    alert: dict[str, Any] | str | Path | None = None,
    config: str | Path | dict[str, Any] | None = None,
    data: str | Path | None = None,
    incident_id: str | None = None,
    cell_timeout: int = DEFAULT_CELL_TIMEOUT,
    replace: bool = False,
) -> Run:
    """Investigate an alert (payload or file) or a service window end to end; return the run."""
    cfg = _load(config, data)
    if alert is not None:
        payload = alert if isinstance(alert, dict) else load_alert_file(alert)
        inc = incident_from_alert(payload, cfg, incident_id=incident_id)
    else:
        if not service or start is None or end is None:
            raise InputError("investigate() needs alert=..., or service=, start= and end=")
        inc = incident_from_cli(service, str(start), str(end), cfg, incident_id)
    path = create_run(inc, replace=replace)
    execute(path, cell_timeout=cell_timeout)
    return Run(path)


def open_run(run_dir: str | Path | None = None) -> Run:
    """Open a run folder or id; empty/None opens the demo incident (created on first use)."""
    if run_dir:
        p = Path(run_dir)
        return Run(p if (p / "incident.json").is_file() else resolve_run(str(run_dir)))
    path = runs_root() / DEMO_RUN_ID
    if not (path / "incident.json").is_file():
        path = create_demo_run()
    return Run(path)


def replay(run: str | Path | Run, new_id: str | None = None, *,
           cell_timeout: int = DEFAULT_CELL_TIMEOUT) -> ReplayResult:
    """Re-execute a run offline from its recorded evidence and compare the findings."""
    path = run.path if isinstance(run, Run) else resolve_run(str(run))
    return replay_run(path, new_id, cell_timeout=cell_timeout)


def similar_incidents(run: str | Path | Run, kb_dir: str | Path | None = None,
                      top: int = 5) -> pd.DataFrame:
    """Past incidents from the knowledge base most similar to a run, with why they match."""
    r = run if isinstance(run, Run) else Run(resolve_run(str(run)))
    return _similar(r, kb_dir, top)
