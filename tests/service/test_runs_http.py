"""GET /runs/...: its own read token, safe path resolution, no scripts from evidence."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from incident_lib.core.errors import InputError
from incident_lib.service.app import create_app
from incident_lib.service.runs_http import CSP, run_routes

READ = "read-token-4242"
BEARER = {"Authorization": f"Bearer {READ}"}
EVIL_HTML = ('<html><body><h1>Investigation</h1><script>document.title="pwned"</script>'
             '<img src=x onerror="alert(1)"></body></html>')


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """runs/ with one finished run, a secret file beside runs/, and hostile symlinks."""
    root = tmp_path / "runs"
    run = root / "checkout-errors-1"
    (run / "notebooks").mkdir(parents=True)
    (run / "incident.json").write_text(json.dumps({"id": run.name,
                                                   "title": "<b>HighErrorRate</b> <script>x"}))
    (run / "status.json").write_text(json.dumps({"state": "ok", "ended": "2026-11-20T12:03:00Z",
                                                 "stages": {"triage": {"state": "ok"}}}))
    (run / "report.md").write_text("# Postmortem\n\nroot cause: payments\n")
    (run / "investigation.html").write_text(EVIL_HTML)
    (run / "notebooks" / "01_triage.ipynb").write_text('{"cells": []}')
    (run / "notebooks" / "01_triage.md").write_text("# Triage\n")
    (run / ".lock").write_text("")
    (tmp_path / "secret.md").write_text("SECRET-OUTSIDE")
    (run / "escape.md").symlink_to(tmp_path / "secret.md")
    (run / "notebooks" / "up").symlink_to(tmp_path)
    (root / "linked-run").symlink_to(tmp_path)
    return root


@pytest.fixture
def client(runs: Path) -> TestClient:
    return TestClient(Starlette(routes=run_routes(runs, READ)))


def test_run_page_lists_report_html_and_notebooks(client: TestClient) -> None:
    r = client.get("/runs/checkout-errors-1/", headers=BEARER)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for rel in ("report.md", "investigation.html", "notebooks/01_triage.ipynb",
                "notebooks/01_triage.md"):
        assert f'href="{rel}"' in r.text
        assert client.get(f"/runs/checkout-errors-1/{rel}", headers=BEARER).status_code == 200
    assert "<b>HighErrorRate</b>" not in r.text and "&lt;b&gt;HighErrorRate" in r.text
    assert "<script" not in r.text and "State: <b>ok</b>" in r.text
    assert client.get("/runs/", headers=BEARER).text.count('href="checkout-errors-1/"') == 1


def test_read_needs_its_token_as_bearer_or_basic_password(client: TestClient) -> None:
    url = "/runs/checkout-errors-1/report.md"
    r = client.get(url)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    basic = base64.b64encode(f"anyone:{READ}".encode()).decode()
    r = client.get(url, headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200 and "root cause: payments" in r.text
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    bad = base64.b64encode(b"anyone:nope").decode()
    assert client.get(url, headers={"Authorization": f"Basic {bad}"}).status_code == 401


@pytest.mark.parametrize("path", [
    "/runs/checkout-errors-1/../secret.md",
    "/runs/checkout-errors-1/%2e%2e/secret.md",
    "/runs/checkout-errors-1/escape.md",  # a symlink out of the run
    "/runs/checkout-errors-1/notebooks/up/secret.md",  # a symlinked folder out of the run
    "/runs/linked-run/secret.md",  # a run folder that is a symlink
    "/runs/linked-run/",
    "/runs/checkout-errors-1/.lock",
    "/runs/checkout-errors-1/incident.json",  # not a served type
    "/runs/..%2fsecret.md/",
    "/runs/Checkout/",  # not a valid incident id
    "/runs/checkout-errors-1/notebooks/%00.md",
])
def test_no_path_leaves_the_run_folder(client: TestClient, path: str) -> None:
    r = client.get(path, headers=BEARER)
    assert r.status_code == 404, (path, r.status_code)
    assert "SECRET-OUTSIDE" not in r.text


def test_html_is_served_with_a_csp_that_blocks_scripts(client: TestClient) -> None:
    r = client.get("/runs/checkout-errors-1/investigation.html", headers=BEARER)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "default-src 'none'" in csp and csp.endswith("sandbox")
    assert r.headers["x-content-type-options"] == "nosniff"
    page = client.get("/runs/checkout-errors-1/", headers=BEARER)
    assert page.headers["content-security-policy"] == CSP
    nb = client.get("/runs/checkout-errors-1/notebooks/01_triage.ipynb", headers=BEARER)
    assert nb.headers["content-disposition"].startswith("attachment")


def test_app_serves_runs_only_with_a_separate_read_token(runs: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "incident.yaml"
    cfg.write_text("sources: {}\n")
    with pytest.raises(InputError, match="separate"):
        create_app(cfg, runs, "same-token", read_token="same-token", start_workers=False)
    plain = TestClient(create_app(cfg, runs, "hook-token", start_workers=False))
    assert plain.get("/runs/checkout-errors-1/").status_code == 404  # not served at all
    app = TestClient(create_app(cfg, runs, "hook-token", read_token=READ, start_workers=False))
    hook = {"Authorization": "Bearer hook-token"}
    assert app.get("/runs/checkout-errors-1/", headers=hook).status_code == 401
    assert app.get("/runs/checkout-errors-1/", headers=BEARER).status_code == 200
    proxy = TestClient(create_app(cfg, runs, "hook-token", runs_behind_proxy=True,
                                  start_workers=False))
    assert proxy.get("/runs/checkout-errors-1/report.md").status_code == 200
    assert os.environ.get("INCIDENT_READ_TOKEN") is None
