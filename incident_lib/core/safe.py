"""Render untrusted text (log lines, alert labels) inert in Markdown."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

__all__ = ["clean_text", "md_inline", "md_code", "md_fence", "md_table", "table_frame",
           "MAX_LINE"]

MAX_LINE = 500
# C0/C1 controls except tab/newline, ANSI escape sequences, bidi and zero-width controls.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_MD_LEADING = re.compile(r"^(\s*)(>|[-=+#]+(?=\s|$)|\d+[.)](?=\s|$))")


def clean_text(value: Any, max_len: int = MAX_LINE) -> str:
    """Strip ANSI/control/bidi characters and cut to max_len characters (marking the cut)."""
    s = "" if value is None else str(value)
    s = _ANSI.sub("", s)
    s = _CTRL.sub("", s)
    if len(s) > max_len:
        s = s[:max_len] + f"… [cut, {len(s)} chars]"
    return s


def md_inline(value: Any, max_len: int = 200) -> str:
    """Untrusted text as inline Markdown: one line, HTML and Markdown syntax escaped."""
    s = clean_text(value, max_len).replace("\r", " ").replace("\n", " ").replace("\t", " ")
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    s = s.replace("://", ":\\/\\/").replace("www.", "www\\.")  # no autolinks
    return _MD_LEADING.sub(_escape_leading, s)


def _escape_leading(m: re.Match[str]) -> str:
    mark = m.group(2)
    if mark[0].isdigit():
        return f"{m.group(1)}{mark[:-1]}\\{mark[-1]}"
    return f"{m.group(1)}\\{mark}"


def md_fence(lines: Iterable[Any] | str, lang: str = "text", max_len: int = MAX_LINE) -> str:
    """Untrusted lines in a fenced block longer than any backtick run inside."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    cleaned = [clean_text(x, max_len).replace("\r", "") for x in lines]
    body = "\n".join(cleaned)
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


def table_frame(
    rows: pd.DataFrame | Sequence[dict[str, Any]], columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Rows as a DataFrame restricted to the wanted columns that exist (shared by renderers)."""
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]
    return df


def md_table(
    rows: pd.DataFrame | Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    max_rows: int = 20,
    code_columns: Sequence[str] = (),
) -> str:
    """A Markdown table with every cell escaped; long tables are cut with a count."""
    df = table_frame(rows, columns)
    if df.empty:
        return "_(no rows)_\n"
    cols = list(df.columns)
    out = ["| " + " | ".join(md_inline(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for rec in df.head(max_rows).itertuples(index=False):
        cells = []
        for col, val in zip(cols, rec, strict=True):
            cells.append(_cell(val, code=col in code_columns))
        out.append("| " + " | ".join(cells) + " |")
    text = "\n".join(out) + "\n"
    if len(df) > max_rows:
        text += f"\n_{len(df) - max_rows} more rows not shown ({len(df)} in all)._\n"
    return text


def _cell(val: Any, code: bool = False) -> str:
    if isinstance(val, float):
        if pd.isna(val):
            return ""
        return f"{val:.4g}"
    if isinstance(val, pd.Timestamp):
        return val.strftime("%Y-%m-%d %H:%M:%S")
    if code:
        return md_code(val, 160)
    return md_inline(val, 160)


def md_code(value: Any, max_len: int = 200) -> str:
    """Untrusted text as an inline code span (safe inside table cells too)."""
    s = clean_text(value, max_len).replace("\r", " ").replace("\n", " ").replace("|", "¦")
    if not s:
        return ""
    ticks = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (ticks + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"
