"""Rich display for notebook outputs: Markdown (for export) and HTML (for JupyterLab)."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import StageError
from ..core.safe import clean_text, fmt_scalar, strip_controls, table_frame

__all__ = ["Section", "Figure", "md_to_html", "html_table", "HTML_MAX_ROWS"]

HTML_MAX_ROWS = 20
_SECTION_STYLE = "max-width:100%;overflow-x:auto"


@lru_cache(maxsize=1)
def _markdown() -> Any:
    """A mistune renderer that escapes raw HTML and drops unsafe link schemes."""
    import mistune

    class _InertHTMLRenderer(mistune.HTMLRenderer):
        """mistune's renderer with raw HTML (inline and block) shown as text."""

        def inline_html(self, text: str) -> str:
            """Raw inline HTML becomes visible text."""
            return html.escape(text)

        def block_html(self, text: str) -> str:
            """Raw HTML blocks become a paragraph of visible text."""
            return f"<p>{html.escape(text.strip())}</p>\n"

    return mistune.create_markdown(renderer=_InertHTMLRenderer(escape=False),
                                   plugins=["table", "strikethrough"])


_CELL = re.compile(r"<(td|th)>(.*?)</\1>", re.S)
_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*)?\.?\d+(?:e[-+]?\d+)?%?|x\d+(?:\.\d+)?", re.I)


def md_to_html(markdown: str) -> str:
    """Render Markdown to HTML with raw HTML escaped and javascript:/data: links disarmed."""
    return _CELL.sub(_align, str(_markdown()(strip_controls(markdown or ""))))


def _align(m: re.Match[str]) -> str:
    """Numbers right, text left (JupyterLab right-aligns every table cell by default)."""
    side = "right" if _NUMBER.fullmatch(m.group(2).strip()) else "left"
    return f'<{m.group(1)} style="text-align:{side}">{m.group(2)}</{m.group(1)}>'


def html_table(
    rows: pd.DataFrame | Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    max_rows: int = HTML_MAX_ROWS,
) -> str:
    """An HTML table with every cell escaped; long tables are cut with a count."""
    df = table_frame(rows, columns)
    if df.empty:
        return "<p><em>(no rows)</em></p>"
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)
    body = []
    for rec in df.head(max_rows).itertuples(index=False):
        body.append("<tr>" + "".join(f"<td>{_esc(_fmt(v))}</td>" for v in rec) + "</tr>")
    out = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    out = _CELL.sub(_align, out)
    if len(df) > max_rows:
        out += (f"<p><em>{len(df) - max_rows} more rows not shown "
                f"({len(df)} in all).</em></p>")
    return out


def _esc(value: Any) -> str:
    return html.escape(clean_text(value, 160).replace("\n", " "), quote=True)


def _fmt(val: Any) -> Any:
    return fmt_scalar(val)


@dataclass
class Section:
    """A titled piece of findings: data for code, Markdown for people."""

    title: str
    markdown: str
    data: dict[str, Any] = field(default_factory=dict)

    def _repr_markdown_(self) -> str:
        return f"### {self.title}\n\n{self.markdown}"

    def _repr_html_(self) -> str:
        """The same content as HTML for JupyterLab and the HTML export (untrusted text inert)."""
        return (f"<div class='incident-section' style='{_SECTION_STYLE}'>"
                f"<h3>{html.escape(clean_text(self.title))}</h3>\n{md_to_html(self.markdown)}</div>")

    def __repr__(self) -> str:
        return f"{self.title}\n{self.markdown}"

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


@dataclass
class Figure:
    """A plot shown inline as PNG in notebooks and exports (matplotlib's Agg shows nothing)."""

    path: Path | None
    title: str
    figure: Any = None  # the matplotlib Figure, when there is one

    def png(self) -> bytes:
        """The PNG bytes: the saved file if present, else the figure rendered now."""
        if self.path is not None and Path(self.path).is_file():
            return Path(self.path).read_bytes()
        if self.figure is None:
            raise StageError(f"figure {self.title!r} has neither a saved file nor a figure")
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=90)
        return buf.getvalue()

    def _repr_png_(self) -> tuple[bytes, dict[str, str]]:
        return self.png(), {"alt": self.title}

    def __repr__(self) -> str:
        where = f" ({self.path})" if self.path is not None else ""
        return f"<Figure: {self.title}{where}>"

    def __getattr__(self, name: str) -> Any:
        """Anything else (savefig, axes ...) is the matplotlib figure's."""
        fig = self.__dict__.get("figure")
        if fig is None:
            raise AttributeError(name)
        return getattr(fig, name)
