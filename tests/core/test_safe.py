"""Untrusted text is inert in Markdown."""

from __future__ import annotations

from incident_lib.core.safe import clean_text, md_code, md_fence, md_inline, md_table


def test_fence_longer_than_backticks_inside() -> None:
    out = md_fence(["a ```` b", "c"])
    assert out.startswith("`````text\n") and out.endswith("\n`````")


def test_ansi_control_and_bidi_are_stripped() -> None:
    s = clean_text("\x1b[31mred\x1b[0m \u202eevil\u202c \x00nul\x07")
    assert s == "red evil nul"


def test_long_lines_are_cut() -> None:
    s = clean_text("x" * 1_000_000)
    assert len(s) < 600 and "[cut, 1000000 chars]" in s


def test_inline_escapes_html_and_markdown() -> None:
    s = md_inline('<script>alert(1)</script> [x](javascript:y) **b** | # h')
    assert "<" not in s and "&lt;script&gt;" in s
    assert "\\[x\\]" in s and "\\*\\*b\\*\\*" in s and "\\|" in s


def test_code_span_and_table_cells() -> None:
    assert md_code("a`b") == "``a`b``"
    table = md_table([{"msg": "x | y\nz"}], code_columns=["msg"])
    assert table.splitlines()[2] == "| `x ¦ y z` |"
