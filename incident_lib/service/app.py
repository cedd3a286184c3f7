"""`incident serve`: Alertmanager webhook receiver, durable queue, bounded worker pool.

The HTTP side (Starlette under uvicorn) only authenticates, validates and enqueues, then
answers 202. Worker threads take jobs from the SQLite queue and run each investigation in a
child process (service/worker.py) that dies with the server (PR_SET_PDEATHSIG); on restart,
jobs left `running` are queued again and re-executed once.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..core.model import iso, parse_time
from ..core.storage import slug, validate_incident_id
from ..pipeline.alerts import dedupe_key, validate_payload
from .jobqueue import JobQueue, queue_path
from .worker import DEFAULT_WORKERS, WorkerPool

__all__ = ["create_app", "incident_id_for", "DEFAULT_MAX_BODY"]

DEFAULT_MAX_BODY = 1 << 20  # 1 MiB; Alertmanager payloads are a few KiB


def incident_id_for(payload: dict[str, Any], key: str) -> str:
    """A safe incident id from untrusted labels: <alertname>-<service>-<start>-<key>."""

    alerts = payload["alerts"]
    labels = {**alerts[0]["labels"], **payload["commonLabels"]}
    service = labels.get("service") or labels.get("job") or labels.get("app")
    if not service:
        raise InputError("alert has no 'service' (or job/app) label: add one to the alerting "
                         "rule so the investigation knows where to look")
    starts = min(parse_time(a["startsAt"], "startsAt") for a in alerts)
    name = slug(labels.get("alertname", "alert"), 30)
    return validate_incident_id(f"{name}-{slug(service, 30)}-{starts:%Y%m%dt%H%M}-{key[:6]}")


def _resolved_at(payload: dict[str, Any]) -> str | None:
    """The resolve time of a `resolved` notification (latest endsAt), else None."""

    if payload.get("status") != "resolved":
        return None
    ends = []
    for a in payload["alerts"]:
        try:
            ends.append(parse_time(a.get("endsAt", ""), "endsAt"))
        except InputError:
            continue
    return iso(max(ends)) if ends else iso(time.time())


# -- worker pool --------------------------------------------------------------------------


# -- HTTP app -----------------------------------------------------------------------------


def create_app(config: str | Path, runs_dir: str | Path, token: str, *,
               workers: int = DEFAULT_WORKERS, max_body: int = DEFAULT_MAX_BODY,
               cell_timeout: int = 600, start_workers: bool = True,
               token_env: str = "INCIDENT_WEBHOOK_TOKEN") -> Any:
    """The Starlette app: POST /webhook, GET /healthz, GET /incidents/{id}."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    if not token:
        raise InputError("the webhook token is empty: set INCIDENT_WEBHOOK_TOKEN (or the "
                         "variable named by --token-env)")
    runs = Path(runs_dir).resolve()
    runs.mkdir(parents=True, exist_ok=True)
    queue = JobQueue(queue_path(runs))
    pool = WorkerPool(queue, Path(config).resolve(), runs, workers, cell_timeout, token_env)
    expected = f"Bearer {token}".encode()

    def _authorized(request: Request) -> bool:
        got = request.headers.get("authorization", "").encode("utf-8", "replace")
        return hmac.compare_digest(got, expected)

    def _error(code: int, msg: str) -> JSONResponse:
        return JSONResponse({"error": msg}, status_code=code)

    async def _read_body(request: Request) -> bytes | None:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body):
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def webhook(request: Request) -> JSONResponse:
        if not _authorized(request):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        try:
            body = await _read_body(request)
        except ClientDisconnect:
            return _error(400, "the client disconnected before sending the whole body")
        if body is None:
            return _error(413, f"body larger than {max_body} bytes")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return _error(400, "body is not valid JSON (Alertmanager webhook v4 expected)")
        try:
            payload = validate_payload(payload)
            key = dedupe_key(payload)
            incident_id = incident_id_for(payload, key)
            resolved = _resolved_at(payload)
        except InputError as exc:
            return _error(400, " ".join(str(exc).split())[:300])
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            return _error(400, f"payload does not match Alertmanager webhook v4 "
                               f"({type(exc).__name__})")
        try:
            job, created = await run_in_threadpool(queue.submit, key, incident_id, payload,
                                                   resolved)
        except Exception:  # noqa: BLE001 - a storage fault is transient: Alertmanager retries
            return _error(503, "the queue is unavailable, retry later")
        pool.notify()
        return JSONResponse({"incident_id": job.incident_id, "state": job.state,
                             "duplicate": not created, "notifications": job.notifications,
                             "status_url": f"/incidents/{job.incident_id}"}, status_code=202)

    async def health(request: Request) -> JSONResponse:
        try:
            counts = await run_in_threadpool(queue.counts)
        except Exception:  # noqa: BLE001 - health must answer
            return _error(503, "queue unavailable")
        return JSONResponse({"ok": True, "workers": pool.size, "busy": pool.busy(),
                             "warm": pool.warm(), "jobs": counts})

    async def incident(request: Request) -> JSONResponse:
        if not _authorized(request):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        job = await run_in_threadpool(queue.by_incident, request.path_params["incident_id"])
        if job is None:
            return _error(404, "no such incident")
        return JSONResponse(job.public())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if start_workers:
            pool.start()
        try:
            yield
        finally:
            pool.stop()
            queue.close()

    app = Starlette(
        routes=[Route("/webhook", webhook, methods=["POST"]),
                Route("/api/v2/alerts/webhook", webhook, methods=["POST"]),
                Route("/healthz", health, methods=["GET"]),
                Route("/incidents/{incident_id}", incident, methods=["GET"])],
        lifespan=lifespan,
    )
    app.state.queue = queue
    app.state.pool = pool
    return app


# -- child process: one investigation -----------------------------------------------------
