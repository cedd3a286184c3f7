"""One exception hierarchy for the whole package (httpx style)."""

from __future__ import annotations

__all__ = ["IncidentError", "InputError", "SourceError", "QueryError", "StageError"]


class IncidentError(Exception):
    """Base class of every error raised on purpose by incident_lib."""


class InputError(IncidentError):
    """Bad user input (flags, alert files, ids): the CLI prints one line and exits 2."""


class SourceError(IncidentError):
    """A telemetry backend failed (unreachable, bad answer, malformed data)."""


class QueryError(SourceError):
    """A backend rejected a query; the message shows the query."""


class StageError(IncidentError):
    """A notebook stage could not produce its findings."""
