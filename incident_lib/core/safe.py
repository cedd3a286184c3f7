"""Render untrusted text (log lines, alert labels) inert in Markdown."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

__all__ = ["clean_text", "md_inline", "md_code", "md_fence", "md_table", "table_frame",
           "fmt_number", "fmt_scalar", "strip_controls", "MAX_LINE"]

MAX_LINE = 500
# C0/C1 controls except tab/newline, ANSI escape sequences, bidi and zero-width controls.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# Only what is active in CommonMark/GFM inline text is escaped, so text reads well raw,
# pasted and rendered: emphasis/code/link/table/strikethrough openers, a `_` that is not
# inside a word, `<` that could open a tag or autolink, `&` that would form an entity, and a
# backslash that would escape what follows. Bare URLs go into code spans (no autolinks).
_ALWAYS = re.compile(r"[`*\[|~]")
_BACKSLASH = re.compile(r"\\(?=[!-/:-@\[-`{-~]|$)")
_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
_ENTITY = re.compile(r"&(?=#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]{0,31};)")
_URL = re.compile(r"\S*(?:://|www\.)\S*", re.I)
_MD_LEADING = re.compile(r"^(\s*)(>|[-=+#]+(?=\s|$)|\d+[.)](?=\s|$))")


def strip_controls(text: str) -> str:
    """text without ANSI sequences and control/bidi/zero-width characters (any length)."""
    return _CTRL.sub("", _ANSI.sub("", text))


def clean_text(value: Any, max_len: int = MAX_LINE) -> str:
    """Strip ANSI/control/bidi characters and cut to max_len characters (marking the cut)."""
    s = "" if value is None else str(value)
    s = _ANSI.sub("", s)
    s = _CTRL.sub("", s)
    if len(s) > max_len:
        s = s[:max_len] + f"… [cut, {len(s)} chars]"
    return s


def md_inline(value: Any, max_len: int = 200) -> str:
    """Untrusted text as inline Markdown: one line, inert in CommonMark/GFM and still readable.

    Escapes only what would be active (see _ALWAYS and friends); `>`, `_` inside words and
    `&` that forms no entity stay as they are. URL-like words become code spans.
    """
    s = clean_text(value, max_len).replace("\r", " ").replace("\n", " ").replace("\t", " ")
    parts: list[str] = []
    pos = 0
    for m in _URL.finditer(s):
        parts.append(_escape_text(s[pos:m.start()]))
        parts.append(md_code(m.group(0), max_len))
        pos = m.end()
    parts.append(_escape_text(s[pos:]))
    return _MD_LEADING.sub(_escape_leading, "".join(parts))


def _escape_text(s: str) -> str:
    s = _BACKSLASH.sub(r"\\\\", s)
    s = _ALWAYS.sub(lambda m: "\\" + m.group(0), s)
    s = _UNDERSCORE.sub(r"\\_", s)
    s = _TAG_OPEN.sub(r"\\<", s)
    return _ENTITY.sub(r"\\&", s)


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


def fmt_number(val: float) -> str:
    """A table number for people: 503 not 503.0, 284,600,000 not 2.846e+08, 0.1038, 6.587."""
    if pd.isna(val):
        return ""
    if float(val).is_integer() and abs(val) < 1e15:
        return f"{int(val):,}" if abs(val) >= 10_000 else str(int(val))
    if abs(val) >= 10_000:
        return f"{val:,.0f}"
    return f"{val:.4g}" if abs(val) >= 1e-3 else f"{val:.2e}"


def fmt_scalar(val: Any) -> Any:
    """Missing -> '', floats via fmt_number, times and durations as text; anything else as is."""
    if val is pd.NaT or (not isinstance(val, str | bytes) and _isna_scalar(val)):
        return ""
    if isinstance(val, float):
        return fmt_number(val)
    if isinstance(val, pd.Timestamp):
        return val.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(val, pd.Timedelta):
        return _fmt_td(val)
    return val


def _cell(val: Any, code: bool = False) -> str:
    val = fmt_scalar(val)
    if code:
        return md_code(val, 160)
    return md_inline(val, 160)


def _isna_scalar(val: Any) -> bool:
    try:
        return bool(pd.isna(val)) if not isinstance(val, list | dict | tuple) else False
    except (TypeError, ValueError):
        return False


def _fmt_td(td: pd.Timedelta) -> str:
    s = int(round(td.total_seconds()))
    sign, s = ("-", -s) if s < 0 else ("", s)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return sign + (f"{h}h{m:02d}m" if h else f"{m}m{sec:02d}s" if m else f"{sec}s")


def md_code(value: Any, max_len: int = 200) -> str:
    """Untrusted text as an inline code span (safe inside table cells too)."""
    s = clean_text(value, max_len).replace("\r", " ").replace("\n", " ").replace("|", "¦")
    if not s:
        return ""
    ticks = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (ticks + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"
