"""incident_lib: incident investigation as reproducible, parameterized Jupyter notebooks."""

from __future__ import annotations

from .errors import IncidentError, InputError, QueryError, SourceError, StageError
from .model import Incident, Severity
from .run import Run, open_run

__all__ = [
    "Incident",
    "Severity",
    "Run",
    "open_run",
    "IncidentError",
    "InputError",
    "SourceError",
    "QueryError",
    "StageError",
    "__version__",
]
__version__ = "0.1.0"
