"""nbconvert exports of executed notebooks: Markdown (inputs hidden) and standalone HTML."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path

import nbformat
from traitlets.config import Config

from ..core.errors import InputError
from ..core.storage import atomic_write_bytes, atomic_write_text

__all__ = ["export_markdown", "export_html", "export_run_html", "add_toc",
           "inline_images"]

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


def export_html(
    notebook: Path | Sequence[Path],
    out: Path,
    *,
    title: str | None = None,
    base_dir: Path | None = None,
) -> Path:
    """Self-contained HTML for people without Jupyter: code hidden, contents, figures inline.

    One notebook or several (combined in order, e.g. the four stages of a run). Code cells are
    hidden by default with a "Show code" toggle; headings get a table of contents; images are
    embedded as data URIs (outputs' relative <img> links too, resolved inside base_dir, by
    default the first notebook's folder) and no script or style is fetched from the network.
    """
    import jinja2
    from nbconvert import HTMLExporter

    paths = [Path(notebook)] if isinstance(notebook, str | Path) else [Path(p) for p in notebook]
    if not paths:
        raise InputError("export_html needs at least one notebook")
    nb = _combine([nbformat.read(p, as_version=4) for p in paths])
    name = title or (paths[0].stem if len(paths) == 1 else out.stem)
    c = Config()
    c.TemplateExporter.exclude_input_prompt = True
    c.TemplateExporter.exclude_output_prompt = True
    c.HTMLExporter.embed_images = True
    exporter = HTMLExporter(config=c)
    exporter.extra_loaders = [jinja2.DictLoader({_TEMPLATE_NAME: _TEMPLATE})]
    exporter.template_file = _TEMPLATE_NAME
    body, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": name}, "incident_title": name})
    base = Path(base_dir) if base_dir is not None else paths[0].parent
    atomic_write_text(out, add_toc(inline_images(body, base)))
    return out


def export_run_html(run_dir: Path, out: Path | None = None) -> Path | None:
    """<run>/investigation.html from the run's executed notebooks (None if there are none)."""
    run_dir = Path(run_dir)
    order = ["01_triage", "02_correlation", "03_five_whys", "04_postmortem"]
    found = [run_dir / "notebooks" / f"{n}.ipynb" for n in order]
    found = [p for p in found if p.is_file()]
    if not found:
        return None
    return export_html(found, out or run_dir / "investigation.html",
                       title=f"Investigation {run_dir.name}", base_dir=run_dir)


_IMG = re.compile(r"""(<img\b[^>]*?\bsrc=)(["'])([^"'>]+)\2""", re.I)
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
         ".svg": "image/svg+xml"}
MAX_INLINE_BYTES = 10_000_000


def inline_images(body: str, base_dir: Path) -> str:
    """Replace <img src="relative/file.png"> by data URIs for files inside base_dir."""
    import base64
    from urllib.parse import unquote

    root = Path(base_dir).resolve()

    def _swap(m: re.Match[str]) -> str:
        src = html.unescape(m.group(3))
        if re.match(r"^[a-z][a-z0-9+.-]*:|^/|^#", src, re.I):  # data:, http:, absolute
            return m.group(0)
        path = (root / unquote(src.split("?")[0].split("#")[0])).resolve()
        mime = _MIME.get(path.suffix.lower())
        if (mime is None or not path.is_relative_to(root) or not path.is_file()
                or path.stat().st_size > MAX_INLINE_BYTES):
            return m.group(0)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f"{m.group(1)}{m.group(2)}data:{mime};base64,{data}{m.group(2)}"

    return _IMG.sub(_swap, body)


def _combine(notebooks: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    """One notebook holding every cell of `notebooks` in order (cell ids made unique)."""
    combined = nbformat.v4.new_notebook(metadata=dict(notebooks[0].metadata))
    combined.metadata.pop("papermill", None)
    for i, nb in enumerate(notebooks):
        for j, cell in enumerate(nb.cells):
            cell = nbformat.from_dict(cell)
            if "id" in cell:
                cell["id"] = f"nb{i}-{j}"
            combined.cells.append(cell)
    return combined


_HEADING = re.compile(r"<h([1-3])((?:\s[^>]*)?)>(.*?)</h\1>", re.S | re.I)
_ID_ATTR = re.compile(r"""\sid\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)
_TAG = re.compile(r"<[^>]*>")
TOC_MARK = "<!-- incident-toc -->"


def add_toc(body: str) -> str:
    """Give every h1-h3 an id and put a table of contents where TOC_MARK is (or after <main>)."""
    seen: set[str] = set()
    entries: list[tuple[int, str, str]] = []

    def _visit(m: re.Match[str]) -> str:
        level, attrs, inner = int(m.group(1)), m.group(2), m.group(3)
        text = _TAG.sub("", inner)
        text = html.unescape(text).replace("\u00b6", "").strip()
        found = _ID_ATTR.search(attrs)
        given = html.unescape(found.group(1) or found.group(2) or "") if found else ""
        base = given or re.sub(r"[^\w-]+", "-", text.lower()).strip("-") or "section"
        anchor, k = base, 1
        while anchor in seen:
            k += 1
            anchor = f"{base}-{k}"
        seen.add(anchor)
        if found and anchor != given:  # a duplicate id: renumber it and its own anchor link
            attrs = _ID_ATTR.sub("", attrs)
            inner = inner.replace(f'href="#{found.group(1) or found.group(2)}"',
                                  f'href="#{html.escape(anchor, quote=True)}"')
        if not found or anchor != given:
            attrs = f'{attrs} id="{html.escape(anchor, quote=True)}"'
        if text and not (entries and entries[-1][2] == text):  # "## X" then Section "X"
            entries.append((level, anchor, text))
        return f"<h{level}{attrs}>{inner}</h{level}>"

    body = _HEADING.sub(_visit, body)
    items = "".join(
        f'<li class="toc-h{lvl}"><a href="#{html.escape(anchor, quote=True)}">'
        f"{html.escape(text)}</a></li>"
        for lvl, anchor, text in entries)
    nav = (f'<nav class="incident-toc" aria-label="Contents"><strong>Contents</strong>'
           f"<ul>{items}</ul></nav>")
    if TOC_MARK in body:
        return body.replace(TOC_MARK, nav, 1)
    return body.replace("<main>", "<main>" + nav, 1)


_TEMPLATE_NAME = "incident_lib_report.html.j2"
# The lab template without CDN scripts (require.js, MathJax, mermaid): readable offline and
# without calling out; code cells hidden unless "Show code" is pressed.
_TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<style type="text/css">
body:not(.show-code) .jp-CodeCell .jp-Cell-inputWrapper { display: none; }
body:not(.show-code) .jp-CodeCell:not(:has(.jp-OutputArea-output)) { display: none; }
.incident-header { display: flex; gap: 1em; align-items: center; padding: 0.5em 1em;
  border-bottom: 1px solid #ddd; font-family: var(--jp-ui-font-family, sans-serif); }
.incident-header .incident-title { font-size: 1.2em; font-weight: bold; margin: 0; flex: 1; }
.incident-toc { padding: 0.5em 1em; font-family: var(--jp-ui-font-family, sans-serif);
  font-size: 0.9em; }
.incident-toc ul { list-style: none; margin: 0.3em 0; padding: 0; }
.incident-toc .toc-h2 { padding-left: 1.2em; }
.incident-toc .toc-h3 { padding-left: 2.4em; }
@media (min-width: 1200px) {
  .incident-toc { position: fixed; top: 3.2em; left: 0; width: 260px; bottom: 0;
    overflow-y: auto; border-right: 1px solid #ddd; }
  main { margin-left: 270px; }
}
@media print { .incident-toc, .incident-header button { display: none; } main { margin: 0; } }
.jp-OutputArea-output img { max-width: 100%; height: auto; }
</style>
{%- endblock extra_css -%}
{%- block data_png scoped -%}
{%- set alt = output | get_metadata('alt', 'image/png') -%}
{%- if alt -%}{{ super() | replace('<img ', '<img alt="' ~ (alt | escape_html) ~ '" ', 1) }}
{%- else -%}{{ super() }}{%- endif -%}
{%- endblock data_png -%}
{%- block body_header -%}
{{ super() }}
<header class="incident-header"><div class="incident-title">{{ resources.incident_title
  | escape_html_keep_quotes }}</div>
<button type="button" onclick="document.body.classList.toggle('show-code')">Show code</button>
</header>
""" + TOC_MARK + r"""
{%- endblock body_header -%}
"""
