"""Jinja2 rendering for Markdown reports: every value is escaped unless marked safe."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from ..core.resources import templates_dir as _bundled_templates
from ..core.safe import md_code, md_fence, md_inline, md_table

__all__ = ["render_template", "templates_dir", "fmt_time", "fmt_pct", "fmt_duration"]


def templates_dir() -> Path:
    """The bundled templates/ folder."""
    return _bundled_templates()


def _finalize(value: Any) -> Any:
    if isinstance(value, Markup):
        return value
    if value is None:
        return ""
    return md_inline(value, 400)


def fmt_time(value: Any, fmt: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    """Format an ISO time for humans ('' if missing)."""
    if value is None or value == "" or (isinstance(value, float) and pd.isna(value)):
        return ""
    return pd.Timestamp(value).tz_convert("UTC").strftime(fmt)


def fmt_pct(value: Any, digits: int = 1) -> str:
    """0.1234 -> '12.3%'."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "n/a"
    return f"{float(value) * 100:.{digits}f}%"


def fmt_duration(seconds: Any) -> str:
    """Seconds -> '45s', '4m45s', '40m', '1h02m', '2d03h' (exact to the second below an hour)."""
    if seconds is None or (isinstance(seconds, float) and pd.isna(seconds)):
        return "n/a"
    s = int(round(float(seconds)))
    sign, s = ("-", -s) if s < 0 else ("", s)
    if s < 60:
        return f"{sign}{s}s"
    m, sec = divmod(s, 60)
    if m < 60:
        return f"{sign}{m}m{sec:02d}s" if sec else f"{sign}{m}m"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{sign}{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{sign}{d}d{h:02d}h"


@lru_cache(maxsize=4)
def _env(folder: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=False,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fence"] = lambda v, lang="text": Markup(md_fence(v, lang))
    env.filters["table"] = lambda rows, columns=None, max_rows=20, code=(): Markup(
        md_table(rows, columns, max_rows, code))
    env.filters["time"] = lambda v, fmt="%Y-%m-%d %H:%M:%S UTC": fmt_time(v, fmt)
    env.filters["hm"] = lambda v: fmt_time(v, "%H:%M UTC")
    env.filters["pct"] = fmt_pct
    env.filters["duration"] = fmt_duration
    env.filters["trusted"] = Markup  # for text built by the library from trusted pieces
    env.filters["code"] = lambda v: Markup(md_code(v))
    return env


def render_template(name: str, context: dict[str, Any], folder: Path | None = None) -> str:
    """Render templates/<name> with escaping finalize and the report filters."""
    return _env(str(folder or templates_dir())).get_template(name).render(**context)
