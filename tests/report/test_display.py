"""Rich display: Section HTML is readable and inert, tables are cut with a count, figures show."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from incident_lib.core.errors import StageError
from incident_lib.core.safe import md_fence, md_inline, md_table
from incident_lib.report.display import Figure, Section, html_table, md_to_html

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "[click](javascript:alert(3))",
    "![x](data:text/html;base64,PHNjcmlwdD4=)",
    '"><svg onload=alert(4)>',
    "<a href='http://evil'>x</a>",
]
ALLOWED_TAGS = {"div", "h3", "p", "strong", "em", "code", "pre", "table", "thead", "tbody", "tr",
                "th", "td", "ul", "ol", "li", "a", "del", "br", "hr", "img"}


class _Tags(HTMLParser):
    """Collect every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(markup: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Tags()
    p.feed(markup)
    return p.tags


def _assert_inert(markup: str) -> None:
    for tag, attrs in _tags(markup):
        assert tag in ALLOWED_TAGS, tag
        assert tag not in {"img", "a"} or not any(
            str(v).lower().startswith(("javascript:", "data:", "http")) for v in attrs.values()
        ), (tag, attrs)
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)


def test_section_html_has_title_and_rendered_markdown() -> None:
    s = Section("Severity", "**P1 (SEV1, critical)** (policy rule 1): share = 0.1 >= 0.05")
    out = s._repr_html_()
    assert out.startswith("<div class='incident-section'")
    assert "<h3>Severity</h3>" in out
    assert "<strong>P1 (SEV1, critical)</strong> (policy rule 1): share = 0.1 &gt;= 0.05" in out


def test_section_markdown_is_unchanged() -> None:
    s = Section("Onset", "**Onset: 10:43**")
    assert s._repr_markdown_() == "### Onset\n\n**Onset: 10:43**"
    assert repr(s) == "Onset\n**Onset: 10:43**"
    assert Section("T", "m", {"k": 1})["k"] == 1


@pytest.mark.parametrize("evil", HOSTILE)
def test_untrusted_text_stays_inert_inline_in_tables_and_fences(evil: str) -> None:
    md = (f"- label: {md_inline(evil)}\n\n"
          + md_table([{"service": evil, "message": evil}], code_columns=["message"])
          + "\n" + md_fence([evil, "```", evil]))
    out = Section(f"title {evil}", md)._repr_html_()
    _assert_inert(out)
    assert not [t for t, _ in _tags(out) if t in {"img", "a", "svg", "script"}]


def test_raw_html_in_markdown_is_shown_as_text() -> None:
    md = "before <b onclick=x()>bold</b> after\n\n<div>\n<script>alert(1)</script>\n</div>\n"
    out = md_to_html(md)
    _assert_inert(out)
    assert "&lt;b onclick=x()&gt;bold&lt;/b&gt;" in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out


def test_entities_from_md_inline_are_not_double_escaped() -> None:
    out = md_to_html(md_inline("a <b> & c"))
    assert "a &lt;b&gt; &amp; c" in out
    assert "&amp;lt;" not in out


def test_unsafe_link_schemes_are_disarmed() -> None:
    out = md_to_html("[a](javascript:alert(1)) [b](https://runbooks.example/x) "
                     "![c](data:text/html,x)")
    assert "javascript:" not in out and "data:text/html" not in out
    assert '<a href="https://runbooks.example/x">b</a>' in out


def test_markdown_table_truncation_count_survives_in_html() -> None:
    df = pd.DataFrame({"service": [f"svc{i}" for i in range(25)], "score": range(25)})
    out = Section("Suspects", md_table(df, max_rows=10))._repr_html_()
    assert out.count("<tr>") == 11  # header + 10 rows
    assert "15 more rows not shown (25 in all)." in out
    assert '<td style="text-align:left">svc0</td>' in out
    assert '<td style="text-align:right">0</td>' in out


def test_html_table_escapes_formats_and_counts() -> None:
    df = pd.DataFrame({
        "time": [pd.Timestamp("2026-11-20T10:40:00Z")] * 30,
        "value": [0.123456] * 29 + [float("nan")],
        "message": ["<script>x</script>\nsecond line"] * 30,
    })
    out = html_table(df, max_rows=5)
    _assert_inert(out)
    assert out.count("<tr>") == 6
    assert "2026-11-20 10:40:00" in out and ">0.1235<" in out
    assert "&lt;script&gt;x&lt;/script&gt; second line" in out
    assert out.endswith("<p><em>25 more rows not shown (30 in all).</em></p>")
    assert html_table(df.iloc[:0]) == "<p><em>(no rows)</em></p>"
    assert "more rows" not in html_table(df, max_rows=30)
    assert html_table([{"a": 1, "b": 2}], columns=["b", "zzz"]).count("<th ") == 1


def test_five_whys_markdown_renders_as_nested_list() -> None:
    md = ("1. **Why did checkout fail?** payments answered 5xx\n"
          "    - evidence `signal_error_rate`: 0.46 vs 0.002\n"
          "2. **Why?** **Hypothesis (no evidence):** pool too small")
    out = md_to_html(md)
    assert out.count("<li>") == 3 and "<ol>" in out and "<ul>" in out
    assert "<code>signal_error_rate</code>" in out


def test_figure_shows_the_saved_png(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [1, 0])
    out = tmp_path / "plot.png"
    fig.savefig(out)
    f = Figure(out, "Golden signals", fig)
    assert f._repr_png_() == (out.read_bytes(), {"alt": "Golden signals"})
    assert repr(f) == f"<Figure: Golden signals ({out})>"
    assert f.axes == fig.axes  # the matplotlib figure's attributes pass through
    out.unlink()  # no file: rendered from the figure instead
    png = Figure(out, "Golden signals", fig).png()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 500
    with pytest.raises(StageError, match="neither a saved file nor a figure"):
        Figure(None, "empty")._repr_png_()
    with pytest.raises(AttributeError):
        _ = Figure(None, "empty").savefig
    plt.close(fig)


def test_figure_is_what_ipython_displays(tmp_path: Path) -> None:
    from IPython.core.formatters import DisplayFormatter

    out = tmp_path / "p.png"
    out.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    data, meta = DisplayFormatter().format(Figure(out, "Golden signals: demo"))
    assert data["image/png"] == b"\x89PNG\r\n\x1a\nfake"
    assert meta == {"image/png": {"alt": "Golden signals: demo"}}
    data, _ = DisplayFormatter().format(Section("T", "| a |\n|---|\n| 1 |\n"))
    assert {"text/html", "text/markdown", "text/plain"} <= set(data)
