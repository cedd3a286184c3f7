"""nbconvert exports of executed notebooks: Markdown (inputs hidden) and standalone HTML."""

from __future__ import annotations

from pathlib import Path

import nbformat
from traitlets.config import Config

from ..storage import atomic_write_bytes, atomic_write_text

__all__ = ["export_markdown", "export_html"]

_PRIORITY = ["text/markdown", "image/png", "image/svg+xml", "text/plain", "text/html"]


def export_markdown(notebook: Path, out: Path) -> Path:
    """Write out (Markdown) plus out_files/ figures; DataFrames as Markdown, never raw HTML."""
    from nbconvert import MarkdownExporter

    c = Config()
    c.NbConvertBase.display_data_priority = _PRIORITY
    c.TemplateExporter.exclude_input = True
    c.TemplateExporter.exclude_input_prompt = True
    c.TemplateExporter.exclude_output_prompt = True
    exporter = MarkdownExporter(config=c)
    files_dir = out.parent / f"{out.stem}_files"
    nb = nbformat.read(notebook, as_version=4)
    body, resources = exporter.from_notebook_node(
        nb, resources={"output_files_dir": files_dir.name, "unique_key": out.stem})
    for name, data in (resources.get("outputs") or {}).items():
        atomic_write_bytes(out.parent / name, data)
    atomic_write_text(out, body)
    return out


def export_html(notebook: Path, out: Path) -> Path:
    """Self-contained HTML with code hidden (figures inline) for people without Jupyter."""
    from nbconvert import HTMLExporter

    c = Config()
    c.TemplateExporter.exclude_input = True
    c.TemplateExporter.exclude_input_prompt = True
    c.TemplateExporter.exclude_output_prompt = True
    c.HTMLExporter.embed_images = True
    body, _ = HTMLExporter(config=c).from_notebook_node(nbformat.read(notebook, as_version=4))
    atomic_write_text(out, body)
    return out
