"""One exception hierarchy for the whole package (httpx style).

IncidentError
  InputError        bad user input: flags, alert files, ids, config, notes (CLI exit 2)
    ConfigError     a config file or setting is invalid (names the field and the fix)
  SourceError       a telemetry backend failed (unreachable, bad answer, malformed data)
    QueryError      a backend rejected a query (the message shows the query)
  StageError        a notebook stage could not produce its findings
  RunLocked         another process is executing this run
"""

from __future__ import annotations

__all__ = ["IncidentError", "InputError", "ConfigError", "SourceError", "QueryError",
           "StageError", "RunLocked"]


class IncidentError(Exception):
    """Base class of every error raised on purpose by incident_lib."""


class InputError(IncidentError, ValueError):
    """Bad user input (flags, alert files, ids): the CLI prints one line and exits 2."""


class ConfigError(InputError):
    """A config file or setting is invalid: the message names the field and the fix."""


class SourceError(IncidentError):
    """A telemetry backend failed (unreachable, bad answer, malformed data)."""


class QueryError(SourceError):
    """A backend rejected a query; the message shows the query."""


class StageError(IncidentError):
    """A notebook stage could not produce its findings."""


class RunLocked(IncidentError):
    """Another process is executing this run."""
