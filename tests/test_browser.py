"""Browser test: JupyterLab on loopback, 01_triage run in Debian's chromium via Playwright."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from tests.cli.test_lab import start_lab
from tests.conftest import ROOT

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOT = ROOT / "docs" / "triage.png"


def _chromium() -> str:
    """Debian's chromium (Playwright cannot download its own here); fail in CI if missing."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the playwright Python package is not installed")
    if not Path(path).is_file():
        _missing(f"chromium not found ({path}); apt-get install chromium")
    return path


def _missing(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser test cannot run in CI: {why}")
    pytest.skip(why)


def _prompts(page) -> list[str]:  # noqa: ANN001 - playwright Page
    """The code cells' prompts: '[ ]:' not run, '[*]:' queued or running, '[3]:' done."""
    return list(page.evaluate("""() => [...document.querySelectorAll(
        '.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim())"""))


def _code_prompts_done(page) -> bool:  # noqa: ANN001 - playwright Page
    """True when every code cell shows an execution count and none is queued."""
    ps = _prompts(page)
    return bool(ps) and all(re.fullmatch(r"\[\d+\]:", p) for p in ps)


def _error_texts(page) -> list[str]:  # noqa: ANN001 - playwright Page
    """Texts of stderr/error outputs (JupyterLab renders tracebacks as stderr)."""
    loc = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    return [loc.nth(i).inner_text() for i in range(loc.count())]


def test_triage_runs_in_jupyterlab_and_shows_severity_and_plot(
    tmp_path: Path, demo_data: Path
) -> None:
    chromium = _chromium()
    from playwright.sync_api import expect, sync_playwright

    t0 = time.monotonic()
    with start_lab(tmp_path, demo_data) as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{lab.base}/lab/tree/01_triage.ipynb?token={lab.token}")
            page.locator(".jp-NotebookPanel .jp-CodeCell").first.wait_for(timeout=60_000)
            # The status bar names our kernelspec and says Idle once the kernel is connected.
            expect(page.locator(".jp-StatusBar-TextItem[title^='Change kernel']")).to_have_text(
                "Python 3 (incident_lib) | Idle", timeout=60_000)
            for _attempt in range(2):  # a click racing the kernel's startup can be lost
                page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
                page.locator(".lm-Menu-itemLabel",
                             has_text=re.compile(r"^Run All Cells$")).click()
                started = time.monotonic()
                while time.monotonic() - started < 15 and all(p == "[ ]:" for p in
                                                               _prompts(page)):
                    page.wait_for_timeout(300)
                if not all(p == "[ ]:" for p in _prompts(page)):
                    break
            deadline = time.monotonic() + 100
            while not _code_prompts_done(page):
                if time.monotonic() > deadline:
                    page.screenshot(path=str(tmp_path / "timeout.png"))
                    raise AssertionError(f"cells did not finish within 100 s: {_prompts(page)}"
                                         f"\n{_error_texts(page)}\n{lab.log.read_text()[-3000:]}")
                page.wait_for_timeout(500)

            # No error output anywhere in the notebook, and no traceback text.
            outputs = page.locator(".jp-OutputArea-output")
            assert outputs.count() >= 8
            texts = _error_texts(page)
            assert not [t for t in texts if "Error" in t or "Traceback" in t], texts

            # The first screen after Run All: the status now, with severity and action.
            page.locator(".jp-NotebookPanel .jp-Cell").first.scroll_into_view_if_needed()
            status = page.locator(".incident-section", has=page.locator(
                "h3", has_text=re.compile(r"^Status now$")))
            expect(status).to_be_in_viewport()
            expect(status).to_contain_text(re.compile(r"Monitoring: checkout 5xx"))
            expect(status).to_contain_text(re.compile(r"\(P1"))
            expect(status).to_contain_text(re.compile(r"Current action: keep the rollback"))
            expect(status).to_contain_text(re.compile(r"Next update: \d\d:\d\d UTC"))
            # `incident lab` itself turns the news prompt off (no toast over the notebook)
            assert page.get_by_text(re.compile("Jupyter news", re.I)).count() == 0
            _shot(page, tmp_path, "lab_first_screen.png")
            _visible_text_is_clean(page.evaluate("""() => [...document.querySelectorAll(
                '.jp-OutputArea-output')].map(o => o.innerText).join('\\n')"""))

            # The severity (rendered HTML of the Section) and the first plot are visible.
            severity = page.locator(".incident-section", has=page.locator(
                "h3", has_text=re.compile(r"^Severity$")))
            severity.scroll_into_view_if_needed()
            expect(severity).to_be_visible()
            expect(severity).to_contain_text(re.compile(r"P1 \(high\)"))
            images = page.locator(".jp-OutputArea-output img")
            assert images.count() >= 1, ("no figure in the outputs: the plot cell must display "
                                         "triage.plot()'s Figure (see docs/notebooks.md)")
            plot = images.first
            plot.scroll_into_view_if_needed()
            expect(plot).to_be_visible()
            width = plot.evaluate("img => img.naturalWidth")
            assert width >= 600, width
            assert not errors, errors

            # Screenshot: the severity at the top, then changes and the golden-signals plot.
            page.evaluate("""() => {
                const s = [...document.querySelectorAll('.incident-section h3')]
                    .find(h => h.textContent.trim() === 'Severity');
                s.scrollIntoView({block: 'start'});
            }""")
            page.wait_for_timeout(300)
            shot = tmp_path / "triage.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 50_000
            if os.environ.get("INCIDENT_UPDATE_SCREENSHOT") == "1":
                SCREENSHOT.parent.mkdir(exist_ok=True)
                shutil.copyfile(shot, SCREENSHOT)

            # Save, then check the executed notebook itself: no error outputs, findings written.
            page.keyboard.press("Control+s")
            saved = lab.notebooks / "01_triage.ipynb"
            deadline = time.monotonic() + 30
            while True:
                nb = nbformat.read(saved, as_version=4)
                code = [c for c in nb.cells if c.cell_type == "code"]
                if all(c.execution_count for c in code):
                    break
                assert time.monotonic() < deadline, "the notebook was not saved"
                time.sleep(0.5)
        finally:
            browser.close()
    kinds = [o.output_type for c in code for o in c.outputs]
    assert "error" not in kinds
    pngs = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 1
    assert (lab.runs / "demo-payments" / "findings" / "triage.json").is_file()
    assert time.monotonic() - t0 < 120


def test_exported_html_hides_code_until_asked_and_shows_figures(tmp_path: Path) -> None:
    chromium = _chromium()
    import matplotlib.pyplot as plt
    from playwright.sync_api import expect, sync_playwright

    from incident_lib.report.display import Figure, Section
    from incident_lib.report.export import export_html
    from tests.report.test_export import _notebook

    fig, ax = plt.subplots(figsize=(4, 2))
    ax.plot([0, 1, 2], [0, 2, 1])
    ax.set_title("Errors: 5xx share")
    png = tmp_path / "plot.png"
    fig.savefig(png)
    plt.close(fig)
    nb = _notebook(tmp_path / "01_triage.ipynb", "1. Triage",
                   [Section("Severity", "**P1 (SEV1, critical)**")]
                   + [Section(f"Part {i}", "text\n\n" * 40) for i in range(5)],
                   Figure(png, "Golden signals"))
    out = export_html(nb, tmp_path / "01_triage.html")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(out.as_uri())
            code = page.get_by_text("section_1 = stage.compute_1(run)")
            expect(code).to_be_hidden()
            expect(page.get_by_text("P1 (SEV1, critical)")).to_be_visible()
            img = page.locator(".jp-OutputArea-output img").first
            img.scroll_into_view_if_needed()
            expect(img).to_be_visible()
            assert img.evaluate("i => i.naturalWidth") > 100
            page.get_by_role("link", name="Part 4").click()
            expect(page.locator("h3", has_text="Part 4")).to_be_in_viewport()
            page.get_by_role("button", name="Show code").click()
            expect(code).to_be_visible()
            assert [u for u in requests if not u.startswith("file:")] == []
        finally:
            browser.close()


ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:work|tmp|home|root|usr|var|opt|Users)/")
RAW_MARKUP = ("\\_", "&gt;", "&lt;", "&amp;", "PosixPath(")


def _visible_text_is_clean(text: str) -> None:
    for raw in RAW_MARKUP:
        assert raw not in text, raw
    m = ABSOLUTE_PATH.search(text)
    assert m is None, text[max(0, m.start() - 80):m.end() + 80]


def _shot(page, tmp_path: Path, name: str) -> None:  # noqa: ANN001 - playwright Page
    shot = tmp_path / name
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000
    if os.environ.get("INCIDENT_UPDATE_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / name)


def test_investigation_html_first_screen_shows_status_severity_action(
    demo_run: Path, tmp_path: Path
) -> None:
    """What a person sees first in investigation.html: status, severity, the action."""
    chromium = _chromium()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto((demo_run / "investigation.html").as_uri())
            summary = page.locator(".incident-summary")
            for label, value in (("Status:", re.compile(r"Monitoring: rollback chg-1005")),
                                 ("Severity:", re.compile(r"P1")),
                                 ("Recommended action:",
                                  re.compile(r"roll back chg-1004 on payments")),
                                 ("Next update:", re.compile(r"\d\d:\d\d UTC"))):
                item = summary.locator("li", has_text=label)
                expect(item).to_be_in_viewport(ratio=1.0)
                expect(item).to_contain_text(value)
            _visible_text_is_clean(page.evaluate("() => document.body.innerText"))
            _shot(page, tmp_path, "investigation.png")
        finally:
            browser.close()


def test_report_md_first_screen_rendered(demo_run: Path, tmp_path: Path) -> None:
    """report.md rendered as a wiki would (CommonMark + tables): the first screen reads well."""
    chromium = _chromium()
    from markdown_it import MarkdownIt
    from playwright.sync_api import expect, sync_playwright

    body = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(
        (demo_run / "report.md").read_text())
    page_html = tmp_path / "report.html"
    page_html.write_text("<!doctype html><meta charset='utf-8'><style>body{font-family:"
                         "sans-serif;max-width:1100px;margin:1em auto;line-height:1.4}"
                         "</style>" + body)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(page_html.as_uri())
            for label in ("Status:", "Severity:", "Recommended action:", "Next update:"):
                expect(page.locator("li", has_text=label).first).to_be_in_viewport(ratio=1.0)
            _visible_text_is_clean(page.evaluate("() => document.body.innerText"))
            _shot(page, tmp_path, "report.png")
        finally:
            browser.close()


def test_served_run_opens_in_chromium_and_evidence_scripts_never_run(tmp_path: Path) -> None:
    """`incident serve` with a read token: the run page lists the report, the one-page HTML and
    the notebooks; a script smuggled into the HTML (e.g. from a log line) does not run."""
    chromium = _chromium()
    import json

    from playwright.sync_api import expect, sync_playwright

    from tests.prom_servers import start_server

    runs = tmp_path / "runs"
    run = runs / "checkout-errors-1"
    (run / "notebooks").mkdir(parents=True)
    (run / "incident.json").write_text(json.dumps({"id": run.name, "title": "HighErrorRate"}))
    (run / "status.json").write_text(json.dumps({"state": "ok", "ended": "2026-11-20T12:03:00Z",
                                                 "stages": {"triage": {"state": "ok"}}}))
    (run / "report.md").write_text("# Postmortem\n\nroot cause: payments\n")
    (run / "notebooks" / "01_triage.ipynb").write_text('{"cells": []}')
    (run / "investigation.html").write_text(
        "<!doctype html><html><head><title>Investigation</title></head><body>"
        "<h1>Investigation checkout-errors-1</h1><pre>log: <script>document.title='pwned';"
        "document.body.dataset.pwned='1'</script></pre>"
        "<img src=x onerror=\"document.body.dataset.pwned='2'\"></body></html>")
    config = tmp_path / "incident.yaml"
    config.write_text("sources: {}\n")
    srv = start_server(tmp_path / "serve", config=config, runs=runs, token="hook-token",
                       workers=1, extra_env={"INCIDENT_READ_TOKEN": "read-token"})
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                         args=CHROMIUM_ARGS)
            try:
                anon = browser.new_context()  # no credentials: the Basic challenge, 401
                assert anon.request.get(f"{srv.url}/runs/{run.name}/").status == 401
                ctx = browser.new_context(http_credentials={"username": "team",
                                                            "password": "read-token"})
                page = ctx.new_page()
                csp: list[str] = []
                page.on("console", lambda m: csp.append(m.text))
                assert page.goto(f"{srv.url}/runs/{run.name}/").status == 200
                for name in ("report.md", "investigation.html", "notebooks/01_triage.ipynb"):
                    expect(page.get_by_role("link", name=name)).to_be_visible()
                page.get_by_role("link", name="investigation.html").click()
                heading = page.get_by_role("heading", name=re.compile("Investigation"))
                expect(heading).to_be_visible()
                assert page.title() == "Investigation"
                assert page.evaluate("() => document.body.dataset.pwned") is None
                assert any("Blocked script execution" in m or "Content Security Policy" in m
                           for m in csp), csp  # the browser says it refused the script
                page.go_back()
                page.get_by_role("link", name="report.md").click()
                expect(page.get_by_text("root cause: payments")).to_be_visible()
            finally:
                browser.close()
    finally:
        srv.stop()
