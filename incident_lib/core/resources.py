"""Files shipped with the package (the notebooks and report templates), found with
importlib.resources so a plain `pip install` works from any folder."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import InputError

__all__ = ["notebooks_dir", "templates_dir", "notebook_file"]


def _bundled(name: str) -> Path:
    folder = Path(str(resources.files("incident_lib.bundled").joinpath(name)))
    if not folder.is_dir():
        raise InputError(f"the installed incident_lib has no {name}/ folder: reinstall the "
                         "package (pip install incident_lib)")
    return folder.resolve()


def notebooks_dir() -> Path:
    """The folder holding the four stage notebooks."""
    return _bundled("notebooks")


def templates_dir() -> Path:
    """The folder holding the Jinja2 report templates."""
    return _bundled("templates")


def notebook_file(name: str) -> Path:
    """One bundled notebook by file name (e.g. 01_triage.ipynb); InputError when absent."""
    path = notebooks_dir() / name
    if not path.is_file():
        raise InputError(f"notebook {name} is missing from the installed package: reinstall it")
    return path
