"""Finished (and running) investigations served read-only by `incident serve`:
`GET /runs/` lists runs, `GET /runs/<id>/` lists a run's report, investigation.html, executed
notebooks and their Markdown exports, and `GET /runs/<id>/<file>` returns one of them.

Read access has its own token (INCIDENT_READ_TOKEN by default, never the webhook token): a
browser sends it as the password of HTTP Basic auth (any user name), a script as
`Authorization: Bearer <token>`. Teams that put the server behind their own authenticating
proxy start it with `--runs-behind-proxy` instead (see README).

Paths are resolved safely: the id must be a valid incident id, every path segment a plain
name (no `..`, no hidden files), the resolved file must stay inside the run folder (a symlink
pointing out of it is refused) and have an allowed type. Every answer carries a
Content-Security-Policy without scripts (HTML files are also sandboxed), so HTML or SVG
exported from evidence can never run code in the team's browsers.
"""

from __future__ import annotations

import hmac
import json
import mimetypes
from base64 import b64decode
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import escape

from ..core.errors import InputError
from ..core.storage import validate_incident_id

__all__ = ["run_routes", "CSP", "SERVED_TYPES"]

CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
       "font-src 'self' data:; script-src 'none'; object-src 'none'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
SERVED_TYPES = {".md": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8",
                ".ipynb": "application/x-ipynb+json", ".png": "image/png",
                ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
            "X-Frame-Options": "DENY"}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
td,th{{padding:.2rem .8rem;text-align:left}}code{{background:#f3f3f3}}</style></head>
<body>{body}</body></html>
"""


def _state(run: Path) -> dict[str, Any]:
    try:
        return json.loads((run / "status.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def _title(run: Path) -> str:
    try:
        return str(json.loads((run / "incident.json").read_text("utf-8")).get("title", ""))
    except (OSError, ValueError):
        return ""


def resolve_in_run(runs: Path, run_id: str, rel: str = "") -> Path | None:
    """The file (or, for rel "", the run folder) if it is safe to serve, else None."""
    try:
        validate_incident_id(run_id)
    except InputError:
        return None
    root = runs / run_id
    if root.is_symlink() or not root.is_dir():
        return None
    root = root.resolve()
    if root.parent != runs:
        return None
    if not rel:
        return root
    parts = rel.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
        return None
    try:
        target = root.joinpath(*parts).resolve(strict=True)
        target.relative_to(root)  # a symlink leading out of the run is refused
    except (OSError, ValueError, RuntimeError):
        return None
    if not target.is_file() or target.suffix.lower() not in SERVED_TYPES:
        return None
    return target


def _listing(run: Path) -> list[tuple[str, str]]:
    """(relative path, what it is) of the files a responder wants, in reading order."""
    out = []
    if (run / "report.md").is_file():
        out.append(("report.md", "the report (Markdown)"))
    if (run / "investigation.html").is_file():
        out.append(("investigation.html", "the investigation as one page"))
    nbs = run / "notebooks"
    for nb in sorted(nbs.glob("*.ipynb")) if nbs.is_dir() else []:
        if nb.name.startswith("."):
            continue
        out.append((f"notebooks/{nb.name}", "executed notebook"))
        if nb.with_suffix(".md").is_file():
            out.append((f"notebooks/{nb.with_suffix('.md').name}", "its Markdown export"))
    return out


def run_routes(runs_dir: Path, read_token: str | None) -> list[Any]:
    """Starlette routes for /runs; read_token None means: no auth here (behind a proxy)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
    from starlette.routing import Route

    runs = Path(runs_dir).resolve()
    bearer = f"Bearer {read_token}".encode() if read_token else None
    secret = read_token.encode() if read_token else None

    def _authorized(request: Request) -> bool:
        if bearer is None or secret is None:
            return True
        got = request.headers.get("authorization", "")
        if got.lower().startswith("basic "):
            try:
                _, _, password = b64decode(got[6:].strip(), validate=True).partition(b":")
            except ValueError:
                return False
            return hmac.compare_digest(password, secret)
        return hmac.compare_digest(got.encode("utf-8", "replace"), bearer)

    def _denied() -> Response:
        return Response("read access needs the runs token (INCIDENT_READ_TOKEN)\n", 401,
                        headers={**_HEADERS, "WWW-Authenticate":
                                 'Basic realm="incident runs", charset="UTF-8"'},
                        media_type="text/plain")

    def _missing() -> Response:
        return Response("not found\n", 404, headers=_HEADERS, media_type="text/plain")

    def _page(title: str, body: str) -> HTMLResponse:
        return HTMLResponse(_PAGE.format(title=escape(title), body=body), headers=_HEADERS)

    def _index_body(run: Path) -> str:
        st = _state(run)
        rows = "".join(f'<tr><td><a href="{quote(rel)}">{escape(rel)}</a></td>'
                       f"<td>{escape(what)}</td></tr>" for rel, what in _listing(run))
        stages = ", ".join(f"{escape(k)}: {escape(v.get('state', '?'))}"
                           for k, v in (st.get("stages") or {}).items())
        return (f"<h1>Incident <code>{escape(run.name)}</code></h1>"
                f"<p>{escape(_title(run))}</p>"
                f"<p>State: <b>{escape(st.get('state') or 'not started')}</b>"
                f"{' (finished ' + str(escape(st['ended'])) + ')' if st.get('ended') else ''}"
                f"<br>Stages: {stages or 'none yet'}</p>"
                f"<table><tr><th>File</th><th></th></tr>{rows}</table>"
                + ("" if rows else "<p>No report yet: the investigation is still running. "
                   "Reload in a minute.</p>"))

    async def runs_index(request: Request) -> Response:
        if not _authorized(request):
            return _denied()

        def listing() -> str:
            items = sorted((d for d in runs.iterdir() if d.is_dir() and not d.is_symlink()
                            and not d.name.startswith(".") and (d / "incident.json").is_file()),
                           key=lambda d: d.name)
            return "".join(f'<li><a href="{quote(d.name)}/">{escape(d.name)}</a> '
                           f"{escape(_state(d).get('state') or '')}</li>" for d in items)

        items = await run_in_threadpool(listing)
        return _page("Incident runs", f"<h1>Incident runs</h1><ul>{items}</ul>")

    async def run_index(request: Request) -> Response:
        if not _authorized(request):
            return _denied()
        run = resolve_in_run(runs, request.path_params["run_id"])
        if run is None:
            return _missing()
        if not request.url.path.endswith("/"):
            return RedirectResponse(f"{quote(run.name)}/", 308, headers=_HEADERS)
        body = await run_in_threadpool(_index_body, run)
        return _page(f"Incident {run.name}", body)

    async def run_file(request: Request) -> Response:
        if not _authorized(request):
            return _denied()
        target = resolve_in_run(runs, request.path_params["run_id"], request.path_params["rel"])
        if target is None:
            return _missing()
        suffix = target.suffix.lower()
        headers = dict(_HEADERS)
        if suffix == ".html":
            headers["Content-Security-Policy"] = f"{CSP}; sandbox"
        if suffix == ".ipynb":
            headers["Content-Disposition"] = f"attachment; filename=\"{target.name}\""
        return FileResponse(target, media_type=SERVED_TYPES[suffix] or
                            mimetypes.guess_type(target.name)[0], headers=headers)

    return [Route("/runs/", runs_index, methods=["GET"]),
            Route("/runs/{run_id}", run_index, methods=["GET"]),
            Route("/runs/{run_id}/", run_index, methods=["GET"]),
            Route("/runs/{run_id}/{rel:path}", run_file, methods=["GET"])]
