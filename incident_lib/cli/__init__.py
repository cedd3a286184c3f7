"""`incident ...` commands: thin wrappers over the library (see incident_lib.api)."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
