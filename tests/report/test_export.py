"""HTML export of executed notebooks: code hidden, contents, figures inline, nothing fetched."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
from IPython.core.formatters import DisplayFormatter

from incident_lib.core.safe import md_inline, md_table
from incident_lib.report.display import Figure, Section
from incident_lib.report.export import (
    add_toc,
    export_html,
    export_markdown,
    export_run_html,
    inline_images,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _result(obj: object, n: int) -> nbformat.NotebookNode:
    data, meta = DisplayFormatter().format(obj)
    if "image/png" in data:  # nbformat stores PNGs base64-encoded, as the kernel sends them
        import base64

        data["image/png"] = base64.b64encode(data["image/png"]).decode()
    return nbformat.v4.new_output("execute_result", data=data, metadata=meta, execution_count=n)


def _notebook(path: Path, title: str, sections: list[Section], figure: Figure | None = None,
              ) -> Path:
    """A small executed notebook: intro Markdown, then code cells showing the sections."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# {title}\n\nWhat this answers."))
    for i, sec in enumerate(sections, start=1):
        cell = nbformat.v4.new_code_cell(f"section_{i} = stage.compute_{i}(run)\nsection_{i}",
                                         execution_count=i)
        cell.outputs.append(_result(sec, i))
        nb.cells.append(cell)
    if figure is not None:
        cell = nbformat.v4.new_code_cell("fig = triage.plot(run)\nfig", execution_count=99)
        cell.outputs.append(_result(figure, 99))
        nb.cells.append(cell)
    nb.cells.append(nbformat.v4.new_code_cell("stage.save(run)", execution_count=100))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


class _Doc(HTMLParser):
    """ids, TOC links, images and scripts of an exported page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.toc: list[str] = []
        self.imgs: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.links: list[dict[str, str | None]] = []
        self._in_nav = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "nav":
            self._in_nav = True
        elif tag == "a" and self._in_nav:
            self.toc.append(str(a["href"]))
        elif tag == "img":
            self.imgs.append(str(a.get("src")))
        elif tag == "script":
            self.scripts.append(a)
        elif tag == "link":
            self.links.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav":
            self._in_nav = False


def _doc(path: Path) -> tuple[str, _Doc]:
    text = path.read_text()
    d = _Doc()
    d.feed(text)
    return text, d


def test_code_is_hidden_by_default_with_a_show_code_toggle(tmp_path: Path) -> None:
    nb = _notebook(tmp_path / "01.ipynb", "1. Triage", [Section("Severity", "**P1**")])
    text, _ = _doc(export_html(nb, tmp_path / "01.html"))
    assert "body:not(.show-code) .jp-CodeCell .jp-Cell-inputWrapper { display: none; }" in text
    assert "classList.toggle('show-code')" in text and ">Show code</button>" in text
    assert "show-code" not in re.search(r"<body[^>]*>", text).group(0)  # hidden at first
    assert "section_1 = stage.compute_1(run)" in re.sub(r"<[^>]+>", "", text)  # still there
    assert "<strong>P1</strong>" in text


def test_table_of_contents_links_every_heading_to_a_unique_id(tmp_path: Path) -> None:
    nb = _notebook(tmp_path / "01.ipynb", "1. Triage",
                   [Section("Golden signals", "x"), Section("Onset", "y"),
                    Section("Impact", "z"), Section("Onset", "again")])
    text, d = _doc(export_html(nb, tmp_path / "01.html"))
    assert len(d.ids) == len(set(d.ids))
    assert d.toc and all(h.startswith("#") and h[1:] in d.ids for h in d.toc)
    nav = re.search(r"<nav class=\"incident-toc\".*?</nav>", text, re.S).group(0)
    labels = re.findall(r">([^<>]+)</a></li>", nav)
    assert labels == ["1. Triage", "Golden signals", "Onset", "Impact", "Onset"]
    assert d.toc[2] != d.toc[4]  # the second "Onset" has its own anchor


def test_figures_are_inline_and_nothing_is_fetched(tmp_path: Path) -> None:
    (tmp_path / "report_files").mkdir()
    (tmp_path / "report_files" / "golden_signals.png").write_bytes(PNG)
    (tmp_path.parent / "outside.png").write_bytes(PNG)
    fig = Figure(tmp_path / "report_files" / "golden_signals.png", "Golden signals")
    report = Section("Report", "![plot](report_files/golden_signals.png)\n\n"
                               "![other](../outside.png) ![web](https://example.com/x.png)")
    nb = _notebook(tmp_path / "notebooks" / "04.ipynb", "4. Postmortem", [report], fig)
    text, d = _doc(export_html(nb, tmp_path / "out.html", base_dir=tmp_path))
    inline = [s for s in d.imgs if s.startswith("data:image/png;base64,")]
    assert len(inline) == 2  # the displayed Figure and the report's relative link
    assert re.search(r'<img alt="Golden signals"[^>]*src="data:image/png;base64,', text)
    assert "../outside.png" in d.imgs  # outside base_dir: never read
    assert "https://example.com/x.png" in d.imgs  # remote: left alone, not fetched by us
    assert d.scripts == [] and "cdnjs" not in text and "require.js" not in text
    assert not [x for x in d.links if str(x.get("href", "")).startswith("http")]


def test_untrusted_text_in_outputs_stays_inert(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    sec = Section("Changes in the window", md_table([{"description": evil}]) +
                  f"\nlabel: {md_inline(evil)}")
    nb = _notebook(tmp_path / "01.ipynb", "1. Triage", [sec])
    text, d = _doc(export_html(nb, tmp_path / "01.html"))
    assert d.scripts == [] and "x" not in d.imgs
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_several_notebooks_make_one_page_in_order(tmp_path: Path) -> None:
    a = _notebook(tmp_path / "a.ipynb", "1. Triage", [Section("Severity", "P1")])
    b = _notebook(tmp_path / "b.ipynb", "2. Correlation", [Section("Suspects", "payments")])
    text, d = _doc(export_html([a, b], tmp_path / "all.html", title="Investigation x"))
    assert text.index("1. Triage") < text.index("2. Correlation")
    assert "<title>Investigation x</title>" in text
    assert '<div class="incident-title">Investigation x</div>' in text
    assert len(d.ids) == len(set(d.ids))


def test_run_export_writes_investigation_html(tmp_path: Path) -> None:
    assert export_run_html(tmp_path) is None
    for i, name in enumerate(["01_triage", "02_correlation", "03_five_whys", "04_postmortem"]):
        _notebook(tmp_path / "notebooks" / f"{name}.ipynb", f"{i + 1}. {name}",
                  [Section("S", str(i))])
    out = export_run_html(tmp_path)
    assert out == tmp_path / "investigation.html"
    text = out.read_text()
    positions = [text.index(f"{i + 1}. {n}") for i, n in enumerate(
        ["01_triage", "02_correlation", "03_five_whys", "04_postmortem"])]
    assert positions == sorted(positions)
    assert f"Investigation {tmp_path.name}" in text


def test_add_toc_and_inline_images_units(tmp_path: Path) -> None:
    body = ("<main><h1>Top</h1><h2 id='a'>A</h2><h3>A</h3><h3 id=\"a\">Dup</h3>"
            "<h2>x &amp; y<a class='anchor-link' href='#'>¶</a></h2></main>")
    out = add_toc(body)
    assert '<li class="toc-h1"><a href="#top">Top</a></li>' in out
    assert '<li class="toc-h2"><a href="#a">A</a></li>' in out
    assert "toc-h3\"><a href=\"#a-2\">A<" not in out  # "## A" then "### A": listed once
    assert '<a href="#a-3">Dup</a>' in out and 'id="a-3"' in out
    assert '<a href="#x-y">x &amp; y</a>' in out
    (tmp_path / "f.png").write_bytes(PNG)
    html = '<img src="f.png"><img src="missing.png"><img src="f.txt"><img src="/etc/x.png">'
    res = inline_images(html, tmp_path)
    assert res.count("data:image/png;base64,") == 1
    assert '"missing.png"' in res and '"f.txt"' in res and '"/etc/x.png"' in res


def test_markdown_export_keeps_markdown_tables(tmp_path: Path) -> None:
    sec = Section("Suspects", md_table([{"service": "payments", "score": 0.9}]))
    nb = _notebook(tmp_path / "02.ipynb", "2. Correlation", [sec])
    md = export_markdown(nb, tmp_path / "02.md").read_text()
    assert "| service | score |" in md
    assert "<table" not in md and "incident-section" not in md
    assert "compute_1" not in md  # inputs hidden


def test_demo_run_investigation_html(demo_run: Path, tmp_path: Path) -> None:
    out = export_run_html(demo_run, tmp_path / "investigation.html")
    text, d = _doc(out)
    assert "P1 (high)" in text
    assert ("most likely root cause is <strong>payments</strong>" in text
            or "leading suspect (not confirmed) is <strong>payments</strong>" in text)
    toc = re.search(r"<nav class=\"incident-toc\".*?</nav>", text, re.S).group(0)
    for title in ("1. Triage", "2. Correlation", "3. Root cause", "4. Postmortem",
                  "Severity", "Suspects", "5 Whys"):
        assert title in toc, title
    assert any(s.startswith("data:image/png;base64,") for s in d.imgs)
    assert not [s for s in d.imgs if not s.startswith("data:")]
    assert d.scripts == []


ANSI_BIDI = "\x1b[31mRED\x1b[0m \u202eevil\u202c zero\u200bwidth \x07bell"
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def test_ansi_and_bidi_are_stripped_from_every_html_output(tmp_path: Path) -> None:
    from incident_lib.core.model import Incident

    inc = Incident(id="x", title=ANSI_BIDI, service="svc", start="2026-11-20T09:00:00Z",
                   end="2026-11-20T10:00:00Z")
    sec = Section(ANSI_BIDI, f"raw markdown {ANSI_BIDI}")
    for out in (inc._repr_html_(), sec._repr_html_()):
        assert not _CONTROLS.search(out), repr(out)
        assert "RED" in out and "evil" in out
    # a text/html output written by anything else is cleaned when the page is exported
    nb = _notebook(tmp_path / "01.ipynb", "1. Triage", [sec])
    raw = nbformat.read(nb, as_version=4)
    raw.cells[1].outputs[0]["data"]["text/html"] = f"<p>{ANSI_BIDI}</p>"
    nbformat.write(raw, nb)
    text = export_html(nb, tmp_path / "01.html").read_text()
    assert not _CONTROLS.search(text)
    assert "RED" in text
