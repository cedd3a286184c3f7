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
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..core.config import load_config, resolve_sources
from ..core.errors import InputError
from ..core.model import parse_time
from ..core.storage import slug, validate_incident_id
from ..pipeline.alerts import (
    check_service,
    dedupe_key,
    known_services,
    resolved_time,
    services_where,
    validate_payload,
)
from .queues import open_queue
from .runs_http import run_routes
from .worker import DEFAULT_WORKERS, WorkerPool

__all__ = ["create_app", "incident_id_for", "clean_token", "header_timeout_protocol",
           "DEFAULT_MAX_BODY", "HEADER_TIMEOUT"]

# Alertmanager sends every alert of a group in one body (~0.9 KiB each with realistic labels
# and annotations) and never retries a 4xx: 16 MiB holds ~18,000 alerts. Bound it on the
# Alertmanager side with `max_alerts` in webhook_config (see README).
DEFAULT_MAX_BODY = 16 << 20
HEADER_TIMEOUT = 10.0  # seconds a client may take to send its request headers
BODY_TIMEOUT = 30.0  # seconds a client may take to send its body
SERVICES_TTL = 60.0  # seconds the known-service list is reused when validating a webhook


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
    """The resolve time of a `resolved` notification: latest endsAt, else the receipt time."""

    return resolved_time(payload)


PREVIOUS_FIELD = "_previous_incident"


def _earliest(payload: dict[str, Any]) -> Any:
    return min(parse_time(a["startsAt"], "startsAt") for a in payload["alerts"])


def _episode(queue: Any, base: str, payload: dict[str, Any]) -> tuple[str, str | None]:
    """The job key for this notification, and the incident it follows when it is a re-fire.

    One alert group is one incident per episode: a `firing` notification whose alerts start
    after a resolved episode began opens a new investigation (key <base>-<n>) linked to the
    previous one; repeats and resolves go to the latest episode that started before them.
    """
    starts = _earliest(payload)
    job, key, n = queue.get(base), base, 1
    while job is not None:
        nxt = queue.get(f"{base}-{n + 1}")
        if nxt is None or _earliest(nxt.payload) > starts:
            break
        job, key, n = nxt, f"{base}-{n + 1}", n + 1
    if (job is not None and job.resolved_at and payload.get("status") == "firing"
            and starts > _earliest(job.payload)):
        return f"{base}-{n + 1}", job.incident_id
    return key, (job.payload.get(PREVIOUS_FIELD) if job is not None else None)


def clean_token(raw: str, name: str) -> str:
    """The webhook token without surrounding whitespace (a trailing newline from `echo` or a
    secret file would make every request 401); says so on stderr when it trimmed."""
    token = raw.strip()
    if token != raw:
        print(f"incident serve: warning: {name} had leading/trailing whitespace; it was trimmed "
              "(Alertmanager trims credentials_file the same way)", file=sys.stderr)
    return token


def header_timeout_protocol(seconds: float) -> type:
    """uvicorn's h11 protocol, closing connections whose request headers take > seconds."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11(H11Protocol):
        _deadline: Any = None

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()  # headers never completed: drop the connection

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutH11


# -- worker pool --------------------------------------------------------------------------


# -- HTTP app -----------------------------------------------------------------------------


def create_app(config: str | Path, runs_dir: str | Path, token: str, *,
               workers: int = DEFAULT_WORKERS, max_body: int = DEFAULT_MAX_BODY,
               cell_timeout: int = 600, start_workers: bool = True,
               token_env: str = "INCIDENT_WEBHOOK_TOKEN", read_token: str | None = None,
               runs_behind_proxy: bool = False,
               worker_module: str = "incident_lib.service.worker") -> Any:
    """The Starlette app: POST /webhook, GET /healthz, GET /metrics, GET /incidents/{id}, and
    GET /runs/... (runs_http.py) when a read token is given or the server sits behind the
    team's proxy.

    The queue is the config's `queue:` (service/queues.py: SQLite by default, PostgreSQL for
    replicas); `worker_module` is the module each worker child runs (tests plug in a cheap one).
    """
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from .metrics import CONTENT_TYPE_LATEST, ServiceMetrics

    token = clean_token(token, token_env)
    if not token:
        raise InputError("the webhook token is empty: set INCIDENT_WEBHOOK_TOKEN (or the "
                         "variable named by --token-env)")
    runs = Path(runs_dir).resolve()
    runs.mkdir(parents=True, exist_ok=True)
    if read_token is not None and hmac.compare_digest(read_token.encode(), token.encode()):
        raise InputError("the runs read token equals the webhook token: use a separate one")
    served = (run_routes(runs, read_token or None)
              if read_token or runs_behind_proxy else [])
    queue = open_queue(load_config(config), runs)
    pool = WorkerPool(queue, Path(config).resolve(), runs, workers, cell_timeout, token_env,
                      worker_module=worker_module)
    metrics = ServiceMetrics(queue, pool)
    pool.on_finish = metrics.job_finished
    expected = f"Bearer {token}".encode()

    def _authorized(request: Request) -> bool:
        got = request.headers.get("authorization", "").encode("utf-8", "replace")
        return hmac.compare_digest(got, expected)

    def _error(code: int, msg: str) -> JSONResponse:
        return JSONResponse({"error": msg}, status_code=code)

    known: dict[str, Any] = {"at": -SERVICES_TTL, "services": [], "refreshing": False,
                             "ready": threading.Event()}

    def _refresh_services() -> None:
        """Known services from the metrics backend (parsing a file or asking Prometheus takes
        seconds: done at startup and then in the background, never in a request)."""
        try:
            sources, _ = resolve_sources(load_config(config))
            known.update(at=time.monotonic(), services=known_services(sources),
                         where=services_where(sources))
        except Exception:  # noqa: BLE001 - unknown services are then checked by the worker
            known.update(at=time.monotonic())
        finally:
            known["refreshing"] = False
            known["ready"].set()

    def _check(body: bytes) -> tuple[dict[str, Any], str, str, str | None]:
        """Parse and validate fully (in a worker thread: large groups never block the loop)."""
        payload = validate_payload(json.loads(body))
        payload.pop(PREVIOUS_FIELD, None)  # set only here, never by the sender
        key, previous = _episode(queue, dedupe_key(payload), payload)
        if previous:
            payload[PREVIOUS_FIELD] = previous
        incident_id = incident_id_for(payload, key)
        resolved = _resolved_at(payload)
        if time.monotonic() - known["at"] > SERVICES_TTL and not known["refreshing"]:
            known["refreshing"] = True
            threading.Thread(target=_refresh_services, daemon=True).start()
        known["ready"].wait(5.0)  # only right after startup; then the list is never empty-waited
        labels = {**payload["alerts"][0]["labels"], **payload["commonLabels"]}
        check_service(labels.get("service") or labels.get("job") or labels.get("app") or "",
                      known["services"], known.get("where", "the metrics backend"))
        return payload, key, incident_id, resolved

    async def _read_body(request: Request) -> bytes | None:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body):
            return None
        chunks, size = [], 0
        deadline = time.monotonic() + BODY_TIMEOUT
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                return None
            if time.monotonic() > deadline:
                raise ClientDisconnect()
            chunks.append(chunk)
        return b"".join(chunks)

    async def webhook(request: Request) -> JSONResponse:
        response = await _webhook(request)
        metrics.webhooks.labels(code=str(response.status_code)).inc()
        return response

    async def _webhook(request: Request) -> JSONResponse:
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
            payload, key, incident_id, resolved = await run_in_threadpool(_check, body)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return _error(400, "body is not valid JSON (Alertmanager webhook v4 expected)")
        except InputError as exc:
            return _error(400, " ".join(str(exc).split())[:300])
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            return _error(400, f"payload does not match Alertmanager webhook v4 "
                               f"({type(exc).__name__})")
        except Exception:  # noqa: BLE001 - the queue failed while reading the group's jobs
            return _error(503, "the queue is unavailable, retry later")
        try:
            job, created = await run_in_threadpool(queue.submit, key, incident_id, payload,
                                                   resolved)
        except Exception:  # noqa: BLE001 - a storage fault is transient: Alertmanager retries
            return _error(503, "the queue is unavailable, retry later")
        pool.notify()
        return JSONResponse({"incident_id": job.incident_id, "state": job.state,
                             "duplicate": not created, "notifications": job.notifications,
                             "previous_incident": job.payload.get(PREVIOUS_FIELD),
                             "status_url": f"/incidents/{job.incident_id}"}, status_code=202)

    async def health(request: Request) -> JSONResponse:
        try:
            await run_in_threadpool(queue.ping)
            counts = await run_in_threadpool(queue.counts)
        except Exception:  # noqa: BLE001 - health must answer
            return JSONResponse({"ok": False, "queue": "unreachable",
                                 "error": "queue unavailable"}, status_code=503)
        return JSONResponse({"ok": True, "queue": "reachable", "workers": pool.size,
                             "busy": pool.busy(), "warm": pool.warm(), "jobs": counts})

    async def metrics_page(request: Request) -> Response:
        body = await run_in_threadpool(metrics.render)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

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
        known["refreshing"] = True  # in the background: never delays startup
        threading.Thread(target=_refresh_services, daemon=True).start()
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
                Route("/metrics", metrics_page, methods=["GET"]),
                Route("/incidents/{incident_id}", incident, methods=["GET"]), *served],
        lifespan=lifespan,
    )
    app.state.queue = queue
    app.state.pool = pool
    app.state.metrics = metrics
    return app


# -- child process: one investigation -----------------------------------------------------
