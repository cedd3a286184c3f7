"""incident_lib: incident investigation as reproducible, parameterized Jupyter notebooks.

    import incident_lib as il
    run = il.investigate(service="payments", start="...", end="...", config="incident.yaml")
    run = il.investigate(alert=payload)           # an Alertmanager webhook v4 payload
    run = il.open_run("runs/<incident-id>")       # what the notebooks call
    il.replay(run); il.similar_incidents(run)
"""

from __future__ import annotations

from .api import demo_config, investigate, open_run, replay, similar_incidents
from .core.errors import (
    ConfigError,
    IncidentError,
    InputError,
    QueryError,
    RunLocked,
    SourceError,
    StageError,
)
from .core.model import Incident, Severity
from .runs.folder import Run

__all__ = [
    "investigate",
    "open_run",
    "replay",
    "similar_incidents",
    "demo_config",
    "Incident",
    "Severity",
    "Run",
    "IncidentError",
    "InputError",
    "ConfigError",
    "SourceError",
    "QueryError",
    "StageError",
    "RunLocked",
    "__version__",
]
__version__ = "0.1.0"
