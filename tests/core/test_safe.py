"""Untrusted text is inert in Markdown, by construction, and still reads well raw."""

from __future__ import annotations

import html
import re

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from incident_lib.core.safe import clean_text, md_code, md_fence, md_inline, md_table
from incident_lib.report.display import html_table, md_to_html

HOSTILE = [
    '<script>alert(1)</script> [x](javascript:y) **b** | # h',
    "<img src=x onerror=alert(2)> &amp; &#60; &lt;b&gt;",
    "_em_ *em* __strong__ ~~gone~~ ~x~ `code` ``two``",
    "see https://evil.example/x?a=1 and www.evil.example now",
    "C:\\dir\\file \\*not bold\\* trailing\\",
    "<http://autolink.example> <mail@example.com> <!-- c --> <?php ?>",
    "[ref]: /url 'title' ![img](x.png) [a][ref]",
    "1. not a list",
    "- not a list either",
    "> not a quote",
    "# not a heading",
    "a\\_b snake_case_name _lead trail_ x_ _x",
    "cache_ttl_seconds 300 -> 120, p99 85 -> 210 ms, a < b & c > d",
    "could not acquire connection within <*>: pool exhausted (<*> in use)",
]


def _text_of(rendered: str) -> str:
    """Visible text of rendered HTML (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", rendered)).strip()


def _tags(rendered: str) -> set[str]:
    return {t.lower() for t in re.findall(r"<\s*/?\s*([A-Za-z][A-Za-z0-9]*)", rendered)}


@pytest.mark.parametrize("text", HOSTILE)
def test_inline_text_renders_as_itself_in_commonmark_gfm(text: str) -> None:
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    out = md.render(md_inline(text, 500))
    assert _tags(out) <= {"p", "code"}, out
    assert _text_of(out) == text.strip() or _text_of(out).replace("¦", "|") == text.strip()


@pytest.mark.parametrize("text", HOSTILE)
def test_inline_text_renders_as_itself_in_lab_and_html(text: str) -> None:
    out = md_to_html(md_inline(text, 500))
    assert _tags(out) <= {"p", "code"}, out
    assert _text_of(out) == text.strip()


def test_plain_text_stays_readable_raw() -> None:
    s = md_inline("inventory: cache_ttl_seconds 300 -> 120 (a < b, R&D)")
    assert s == "inventory: cache_ttl_seconds 300 -> 120 (a < b, R&D)"
    assert "&gt;" not in md_inline("x -> y") and "\\_" not in md_inline("signal_error_rate")


def test_urls_become_code_spans() -> None:
    assert md_inline("see https://x.example/a now") == "see `https://x.example/a` now"


def test_fence_longer_than_backticks_inside() -> None:
    out = md_fence(["a ```` b", "c"])
    assert out.startswith("`````text\n") and out.endswith("\n`````")


def test_ansi_control_and_bidi_are_stripped() -> None:
    s = clean_text("\x1b[31mred\x1b[0m \u202eevil\u202c \x00nul\x07")
    assert s == "red evil nul"


def test_long_lines_are_cut() -> None:
    s = clean_text("x" * 1_000_000)
    assert len(s) < 600 and "[cut, 1000000 chars]" in s


def test_code_span_and_table_cells() -> None:
    assert md_code("a`b") == "``a`b``"
    table = md_table([{"msg": "x | y\nz"}], code_columns=["msg"])
    assert table.splitlines()[2] == "| `x ¦ y z` |"


def test_table_cells_stay_in_their_column() -> None:
    md = MarkdownIt("commonmark").enable("table")
    out = md.render(md_table([{"a": "x | y", "b": "<b>z</b>"}]))
    assert out.count("<td>") == 2 and "<b>" not in out


@pytest.mark.parametrize(("value", "text"), [
    (503.0, "503"), (2.846e8, "284,600,000"), (16040.2, "16,040"), (0.10376, "0.1038"),
    (float("nan"), ""), (pd.NaT, ""), (pd.Timedelta("30min"), "30m00s"), (6.587, "6.587"),
])
def test_table_cells_read_like_numbers_people_write(value: object, text: str) -> None:
    assert md_table([{"v": value}]).splitlines()[2] == f"| {text} |"
    assert f">{text}<" in html_table([{"v": value}])
